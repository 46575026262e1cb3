package capture

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/microwiper/microwiper/tracefmt"
)

// proc watches the target's life: a launched command, an attached process
// or a cgroup, and what they fork.
type proc struct {
	f        *follower
	cmd      *exec.Cmd
	cmdDone  chan struct{}
	waitErr  error
	stopPoll chan struct{}
	once     sync.Once
	finished bool
}

func closeFD(fd int) { unix.Close(fd) }

func startTarget(target Target, opts TrackerOptions, noFollow bool, log *slog.Logger) (*proc, Tracker, error) {
	b, err := opts.prepare()
	if err != nil {
		return nil, nil, err
	}
	follow := !noFollow
	p := &proc{stopPoll: make(chan struct{}), cmdDone: make(chan struct{})}
	var tr Tracker
	var tree *treeTracker
	switch b {
	case tracefmt.BackendSoftDirty:
		if target.Cgroup != "" {
			return nil, nil, fmt.Errorf("backend soft-dirty captures one process, not a cgroup: use a uffd backend")
		}
		if follow {
			log.Warn("backend soft-dirty follows one process only: its children are not captured")
			follow = false
		}
	default:
		tree = newTreeTracker(opts, b == tracefmt.BackendUffdSync, log)
		tr = tree
	}
	f := newFollower(tree, follow, b == tracefmt.BackendUffdAsync, log)
	p.f = f
	if b == tracefmt.BackendSoftDirty {
		f.setup = func(pid int) error {
			sd, err := newSoftDirtyTracker(pid, opts, log)
			tr = sd
			return err
		}
	}
	switch {
	case target.Cmd != nil:
		p.cmd = target.Cmd
		if err := f.do(func() error { return f.launch(target.Cmd) }); err != nil {
			close(p.cmdDone)
			f.stop()
			return nil, nil, err
		}
		go func() {
			<-f.rootExited
			p.waitErr = f.rootErr
			close(p.cmdDone)
		}()
	case target.Cgroup != "":
		close(p.cmdDone)
		if err := f.do(func() error { return f.startCgroup(target.Cgroup) }); err != nil {
			f.stop()
			return nil, nil, err
		}
	default:
		close(p.cmdDone)
		if err := checkTarget(target.PID); err != nil {
			f.stop()
			return nil, nil, err
		}
		// Take the pidfd before attaching, so that a PID reused after the
		// target exits is never mistaken for it.
		pidfd, err := unix.PidfdOpen(target.PID, 0)
		if err != nil {
			f.stop()
			if errors.Is(err, unix.ESRCH) {
				return nil, nil, ptraceErr(target.PID, err)
			}
			return nil, nil, err
		}
		err = f.do(func() error {
			f.root = target.PID
			if f.setup != nil {
				f.procs[target.PID] = true
				return f.setup(target.PID)
			}
			return f.attach(target.PID)
		})
		if err != nil {
			unix.Close(pidfd)
			f.stop()
			if tree != nil {
				tree.Close()
			}
			return nil, nil, err
		}
		if !follow {
			go p.pollExit(pidfd, target.PID)
		} else {
			unix.Close(pidfd)
		}
	}
	return p, tr, nil
}

// pollExit watches an attached process we do not trace.
func (p *proc) pollExit(pidfd, pid int) {
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 200)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			p.f.do(func() error { p.f.processGone(pid); return nil })
			return
		}
		select {
		case <-p.stopPoll:
			return
		default:
		}
	}
}

// exited is closed when the target and every process followed from it
// have exited (a cgroup: when it is removed).
func (p *proc) exited() <-chan struct{} { return p.f.done }

func (p *proc) hasExited() bool {
	select {
	case <-p.f.done:
		return true
	default:
		return false
	}
}

// processes counts the address spaces captured.
func (p *proc) processes() int {
	if p.f.tree == nil {
		return 1
	}
	p.f.tree.mu.Lock()
	defer p.f.tree.mu.Unlock()
	return p.f.tree.seen
}

// poll picks up new members of a captured cgroup.
func (p *proc) poll() {
	if p.f.cgroup != "" {
		p.f.do(func() error { p.f.pollCgroup(); return nil })
	}
}

// finish ends the capture's hold on the target. Attached processes are
// left alone and run on. A launched command that outlives the capture
// (stopped by Duration, a signal or an error) is asked to stop, since we
// started it: SIGTERM, then SIGKILL after 10 s.
func (p *proc) finish(why string, log *slog.Logger) error {
	if p.finished {
		return p.waitErr
	}
	p.finished = true
	if p.cmd != nil {
		select {
		case <-p.cmdDone:
		default:
			if why != "exit" {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		select {
		case <-p.cmdDone:
		case <-time.After(10 * time.Second):
			log.Warn("launched command ignores SIGTERM; killing it", "pid", p.f.root)
			unix.Kill(p.f.root, unix.SIGKILL)
			<-p.cmdDone
		}
		// Its output, unless a descendant that lives on holds the pipe.
		copied := make(chan struct{})
		go func() { p.f.copies.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	// Ending the tracer thread detaches every process still followed.
	p.f.stop()
	return p.waitErr
}

func (p *proc) release() {
	p.once.Do(func() { close(p.stopPoll) })
	p.finish("error", slog.New(slog.DiscardHandler))
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return string(bytes.TrimRight(u.Release[:], "\x00"))
}
