package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// tracer runs functions on one locked OS thread. Linux accepts ptrace
// requests for a tracee only from the thread that attached it, and Go
// moves goroutines between threads, so every ptrace call goes through here.
type tracer struct {
	work chan func()
}

func newTracer() *tracer {
	t := &tracer{work: make(chan func())}
	go func() {
		// Never unlocked: the thread dies with the goroutine, which keeps a
		// thread that once traced from serving other goroutines.
		runtime.LockOSThread()
		for f := range t.work {
			f()
		}
	}()
	return t
}

// do runs f on the tracer thread and waits for it.
func (t *tracer) do(f func() error) error {
	done := make(chan error, 1)
	t.work <- func() { done <- f() }
	return <-done
}

func (t *tracer) stop() { close(t.work) }

// procErr turns errors from /proc/PID files into ErrTargetGone when the
// process has gone.
func procErr(err error) error {
	// EOF: reading /proc/PID/pagemap of a process whose memory is gone.
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrTargetGone, err)
	}
	return err
}

// ptraceErr explains a failed attach.
func ptraceErr(pid int, err error) error {
	switch {
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("attach to pid %d: %w (no such process)", pid, ErrTargetGone)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		scope := "absent (Yama not built in)"
		if b, rerr := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); rerr == nil {
			scope = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("attach to pid %d: ptrace not permitted: run as root or grant CAP_SYS_PTRACE (setcap cap_sys_ptrace+ep microwiper), and check /proc/sys/kernel/yama/ptrace_scope (now %s; 0 or 1 lets a process trace its own user's processes, 3 forbids all); the target may also be traced already: %w", pid, scope, err)
	}
	return fmt.Errorf("attach to pid %d: %w", pid, err)
}
