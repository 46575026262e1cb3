package capture

import (
	"fmt"
	"log/slog"
	"os/exec"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

func (o *TrackerOptions) prepare() (string, error) {
	// An empty Backend picks the best the kernel offers; a named one is
	// checked against the kernel's features (backend_select_linux.go).
	b, _, err := SelectBackend(o.Backend)
	if err != nil {
		return "", err
	}
	if err := o.Filter.Check(); err != nil {
		return "", err
	}
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	return b, nil
}

// Attach starts tracking a running process. The target is stopped only for
// the few system calls of the injection.
func Attach(pid int, opts TrackerOptions, log *slog.Logger) (Tracker, error) {
	b, err := opts.prepare()
	if err != nil {
		return nil, err
	}
	log = logger(log)
	if b == tracefmt.BackendSoftDirty {
		return newSoftDirtyTracker(pid, opts, log)
	}
	t := newTracer()
	defer t.stop()
	sync := b == tracefmt.BackendUffdSync
	fd, err := attachUffd(t, pid, !sync)
	if err != nil {
		return nil, err
	}
	return newUffdTracker(pid, fd, sync, opts, log)
}

// Launch starts cmd and tracks it from its first instruction after exec:
// the command is started stopped, its memory registered, then let go. The
// caller waits for cmd as usual.
func Launch(cmd *exec.Cmd, opts TrackerOptions, log *slog.Logger) (Tracker, error) {
	b, err := opts.prepare()
	if err != nil {
		return nil, err
	}
	log = logger(log)
	t := newTracer()
	defer t.stop()
	l, err := launch(t, cmd)
	if err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	var tr Tracker
	if b == tracefmt.BackendSoftDirty {
		tr, err = newSoftDirtyTracker(pid, opts, log)
	} else {
		sync := b == tracefmt.BackendUffdSync
		var fd int
		fd, err = l.inject(!sync)
		if err == nil {
			tr, err = newUffdTracker(pid, fd, sync, opts, log)
		}
	}
	if err != nil {
		l.kill()
		return nil, fmt.Errorf("set up capture of %s: %w", cmd.Path, err)
	}
	if err := l.detach(); err != nil {
		tr.Close()
		l.kill()
		return nil, err
	}
	return tr, nil
}
