package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// readMaps reads /proc/PID/maps. An empty file means the process has no
// address space left: it exited and is a zombie.
func readMaps(pid int) ([]Mapping, error) {
	name := fmt.Sprintf("/proc/%d/maps", pid)
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, procErr(err))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("read %s: empty: %w", name, ErrTargetGone)
	}
	ms, err := ParseMaps(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return ms, nil
}

// mapsFile rereads one process's /proc/PID/maps from an open descriptor,
// into a buffer kept between reads: one or two pread calls an epoch instead
// of the open, fstat and many small reads of os.ReadFile, which matters
// where system calls are dear (a VM).
type mapsFile struct {
	pid int
	f   *os.File
	buf []byte
}

func openMaps(pid int) (*mapsFile, error) {
	name := fmt.Sprintf("/proc/%d/maps", pid)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, procErr(err))
	}
	return &mapsFile{pid: pid, f: f, buf: make([]byte, 16<<10)}, nil
}

func (m *mapsFile) read() ([]Mapping, error) {
	n := 0
	for {
		k, err := m.f.ReadAt(m.buf[n:], int64(n))
		n += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read /proc/%d/maps: %w", m.pid, procErr(err))
		}
		if n == len(m.buf) {
			m.buf = append(m.buf, make([]byte, len(m.buf))...)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("read /proc/%d/maps: empty: %w", m.pid, ErrTargetGone)
	}
	ms, err := ParseMaps(bytes.NewReader(m.buf[:n]))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/maps: %w", m.pid, err)
	}
	return ms, nil
}

func (m *mapsFile) Close() error { return m.f.Close() }

// checkSeccomp refuses a target under a seccomp filter: the filter might
// kill it for the injected userfaultfd() call, and no check from outside
// can tell which action the filter takes.
func checkSeccomp(pid int) error {
	name := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("attach to pid %d: %w", pid, procErr(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Seccomp:"); ok && strings.TrimSpace(v) == "2" {
			return fmt.Errorf("attach to pid %d: the process runs under a seccomp filter, which could kill it for the injected userfaultfd() call: launch it under capture instead (microwiper capture -- cmd), or without the filter: %w", pid, ErrNotSupported)
		}
	}
	return nil
}

// attachUffd gets a userfaultfd for pid's address space by injection. The
// target's thread is stopped only for the injection; other threads run on.
func attachUffd(t *tracer, pid int, userModeOK bool) (fd int, err error) {
	err = t.do(func() error {
		var err error
		fd, err = attachUffdHere(pid, userModeOK)
		return err
	})
	return fd, err
}

// attachUffdHere is attachUffd on the calling thread, which must be locked.
func attachUffdHere(pid int, userModeOK bool) (fd int, err error) {
	if err := checkSeccomp(pid); err != nil {
		return -1, err
	}
	err = func() error {
		if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, unix.PTRACE_O_TRACESYSGOOD, 0, 0); e != 0 {
			return ptraceErr(pid, e)
		}
		var sig unix.Signal
		defer func() {
			// Detach whatever happened, delivering any signal we held back.
			unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(sig), 0, 0)
		}()
		if err := unix.PtraceInterrupt(pid); err != nil {
			return ptraceErr(pid, err)
		}
		var ws unix.WaitStatus
		if _, err := wait4(pid, &ws); err != nil {
			return err
		}
		if ws.Exited() || ws.Signaled() {
			return fmt.Errorf("attach to pid %d: %w", pid, ErrTargetGone)
		}
		if ws.Stopped() && ws.TrapCause() <= 0 && ws.StopSignal() != unix.SIGTRAP {
			// We caught a signal on its way in: deliver it on detach.
			sig = ws.StopSignal()
		}
		var err error
		var held unix.Signal
		fd, held, err = injectUserfaultfd(pid, pid, userModeOK)
		if held != 0 {
			sig = held
		}
		return err
	}()
	return fd, err
}

// launched is a command started stopped under ptrace at its first
// instruction after exec.
type launched struct {
	cmd *exec.Cmd
	t   *tracer
}

// launch starts cmd traced. The fork must happen on the tracer thread: the
// child's PTRACE_TRACEME makes that thread its tracer.
func launch(t *tracer, cmd *exec.Cmd) (*launched, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Ptrace = true
	err := t.do(func() error {
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", cmd.Path, err)
		}
		var ws unix.WaitStatus
		if _, err := wait4(cmd.Process.Pid, &ws); err != nil {
			return err
		}
		if !ws.Stopped() {
			return fmt.Errorf("start %s: exited before its first instruction (status %v)", cmd.Path, ws)
		}
		if err := unix.PtraceSetOptions(cmd.Process.Pid, unix.PTRACE_O_TRACESYSGOOD); err != nil {
			return fmt.Errorf("start %s: set ptrace options: %w", cmd.Path, err)
		}
		return nil
	})
	if err != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
			t.do(func() error { cmd.Wait(); return nil })
		}
		return nil, err
	}
	return &launched{cmd: cmd, t: t}, nil
}

// inject gets the userfaultfd; the command stays stopped.
func (l *launched) inject(userModeOK bool) (fd int, err error) {
	err = l.t.do(func() error {
		var err error
		fd, _, err = injectUserfaultfd(l.cmd.Process.Pid, l.cmd.Process.Pid, userModeOK)
		return err
	})
	return fd, err
}

// detach lets the command run.
func (l *launched) detach() error {
	return l.t.do(func() error {
		if err := unix.PtraceDetach(l.cmd.Process.Pid); err != nil {
			return fmt.Errorf("detach from pid %d: %w", l.cmd.Process.Pid, err)
		}
		return nil
	})
}

// kill ends a command that could not be set up.
func (l *launched) kill() {
	l.cmd.Process.Kill()
	l.t.do(func() error { l.cmd.Wait(); return nil })
}
