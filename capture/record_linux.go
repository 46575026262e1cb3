package capture

import (
	"bytes"
	"errors"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc watches the target's life.
type proc struct {
	cmd      *exec.Cmd
	done     chan struct{}
	once     sync.Once
	waitErr  error
	stopPoll chan struct{}
}

func startTarget(target Target, opts TrackerOptions, log *slog.Logger) (*proc, Tracker, error) {
	p := &proc{done: make(chan struct{}), stopPoll: make(chan struct{})}
	if target.Cmd != nil {
		tr, err := Launch(target.Cmd, opts, log)
		if err != nil {
			return nil, nil, err
		}
		p.cmd = target.Cmd
		go func() {
			p.waitErr = p.cmd.Wait()
			close(p.done)
		}()
		return p, tr, nil
	}
	// Take the pidfd before attaching, so that a PID reused after the
	// target exits is never mistaken for it.
	pidfd, err := unix.PidfdOpen(target.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, nil, ptraceErr(target.PID, err)
		}
		return nil, nil, err
	}
	tr, err := Attach(target.PID, opts, log)
	if err != nil {
		unix.Close(pidfd)
		return nil, nil, err
	}
	go func() {
		defer unix.Close(pidfd)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 200)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				close(p.done)
				return
			}
			select {
			case <-p.stopPoll:
				return
			default:
			}
		}
	}()
	return p, tr, nil
}

func (p *proc) exited() <-chan struct{} { return p.done }

func (p *proc) hasExited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// finish ends the capture's hold on the target. An attached process is
// left alone. A launched command that outlives the capture (stopped by
// Duration or a signal) is asked to stop, since we started it: SIGTERM,
// then SIGKILL after 10 s.
func (p *proc) finish(why string, log *slog.Logger) error {
	if p.cmd == nil {
		return nil
	}
	if !p.hasExited() && why != "exit" {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		log.Warn("launched command ignores SIGTERM; killing it", "pid", p.cmd.Process.Pid)
		p.cmd.Process.Kill()
		<-p.done
	}
	return p.waitErr
}

func (p *proc) release() {
	p.once.Do(func() { close(p.stopPoll) })
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return string(bytes.TrimRight(u.Release[:], "\x00"))
}
