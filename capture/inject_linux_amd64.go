package capture

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// injector runs system calls inside a stopped tracee. It must be used on
// the tracer thread. The tracee's registers are saved when it is created
// and restore puts them back exactly; between the two the thread executes
// only the injected system calls.
type injector struct {
	tid        int
	saved      unix.PtraceRegsAmd64
	sysAddr    uint64 // address of a syscall instruction in the tracee
	pendingSig unix.Signal
}

func newInjector(pid, tid int) (*injector, error) {
	in := &injector{tid: tid}
	if err := unix.PtraceGetRegsAmd64(tid, &in.saved); err != nil {
		return nil, fmt.Errorf("read registers of thread %d: %w", tid, err)
	}
	if in.saved.Cs != 0x33 {
		return nil, fmt.Errorf("thread %d runs 32-bit code (cs=%#x): only 64-bit targets can be attached: %w", tid, in.saved.Cs, ErrNotSupported)
	}
	addr, err := findSyscallInsn(pid)
	if err != nil {
		return nil, err
	}
	in.sysAddr = addr
	return in, nil
}

// findSyscallInsn finds the bytes 0f 05 (syscall) in executable memory of
// pid, preferring the vDSO, which every process has and nobody patches.
// Jumping there runs one syscall; we stop the thread right after it.
func findSyscallInsn(pid int) (uint64, error) {
	ms, err := readMaps(pid)
	if err != nil {
		return 0, err
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return 0, fmt.Errorf("open /proc/%d/mem: %w", pid, procErr(err))
	}
	defer mem.Close()
	try := func(m Mapping) (uint64, bool) {
		n := min(m.Size(), 1<<20)
		buf := make([]byte, n)
		k, _ := mem.ReadAt(buf, int64(m.Start))
		if i := bytes.Index(buf[:k], []byte{0x0f, 0x05}); i >= 0 {
			return m.Start + uint64(i), true
		}
		return 0, false
	}
	for _, m := range ms {
		if m.Path == "[vdso]" {
			if a, ok := try(m); ok {
				return a, nil
			}
		}
	}
	for _, m := range ms {
		if len(m.Perms) == 4 && m.Perms[2] == 'x' && m.Path != "[vsyscall]" {
			if a, ok := try(m); ok {
				return a, nil
			}
		}
	}
	return 0, fmt.Errorf("pid %d: no syscall instruction found in executable memory to inject through", pid)
}

// syscall runs one system call in the tracee and returns its result
// (negative errno on failure).
func (in *injector) syscall(nr uint64, args ...uint64) (int64, error) {
	regs := in.saved
	regs.Rip = in.sysAddr
	regs.Rax = nr
	// Not in a system call: otherwise the kernel's restart logic could
	// rewind rip when the thread resumes.
	regs.Orig_rax = ^uint64(0)
	dst := []*uint64{&regs.Rdi, &regs.Rsi, &regs.Rdx, &regs.R10, &regs.R8, &regs.R9}
	for i, a := range args {
		*dst[i] = a
	}
	if err := unix.PtraceSetRegsAmd64(in.tid, &regs); err != nil {
		return 0, fmt.Errorf("set registers of thread %d: %w", in.tid, err)
	}
	// Run to the system call's entry, then to its exit.
	for stops := 0; stops < 2; {
		if err := unix.PtraceSyscall(in.tid, 0); err != nil {
			return 0, fmt.Errorf("resume thread %d: %w", in.tid, err)
		}
		var ws unix.WaitStatus
		if _, err := wait4(in.tid, &ws); err != nil {
			return 0, err
		}
		switch {
		case ws.Exited() || ws.Signaled():
			return 0, fmt.Errorf("thread %d died during injection: %w", in.tid, ErrTargetGone)
		case !ws.Stopped():
			continue
		case ws.StopSignal() == unix.SIGTRAP|0x80:
			stops++
		case ws.TrapCause() > 0:
			// A ptrace event (e.g. group-stop notification): just go on.
		default:
			// A signal arrived for this thread. Hold it back and deliver it
			// on detach, so the target sees it as if we were never here.
			in.pendingSig = ws.StopSignal()
		}
	}
	if err := unix.PtraceGetRegsAmd64(in.tid, &regs); err != nil {
		return 0, fmt.Errorf("read registers of thread %d: %w", in.tid, err)
	}
	return int64(regs.Rax), nil
}

// restore puts the saved registers back.
func (in *injector) restore() error {
	if err := unix.PtraceSetRegsAmd64(in.tid, &in.saved); err != nil {
		return fmt.Errorf("restore registers of thread %d: %w", in.tid, err)
	}
	return nil
}

func wait4(tid int, ws *unix.WaitStatus) (int, error) {
	for {
		n, err := unix.Wait4(tid, ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("wait for thread %d: %w", tid, err)
		}
		return n, nil
	}
}

const (
	sysUserfaultfd = unix.SYS_USERFAULTFD
	sysClose       = unix.SYS_CLOSE
)

// injectUserfaultfd makes the stopped tracee create a userfaultfd, copies it
// into our process, and makes the tracee close its own copy. It leaves the
// tracee's registers as they were. sig is a signal that arrived meanwhile,
// to be delivered on detach.
func injectUserfaultfd(pid, tid int, userModeOK bool) (fd int, sig unix.Signal, err error) {
	in, err := newInjector(pid, tid)
	if err != nil {
		return -1, 0, err
	}
	defer func() {
		sig = in.pendingSig
		if rerr := in.restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	flags := uint64(unix.O_CLOEXEC | unix.O_NONBLOCK)
	tfd, err := in.syscall(sysUserfaultfd, flags)
	if err != nil {
		return -1, 0, err
	}
	if tfd == -int64(unix.EPERM) && userModeOK {
		// vm.unprivileged_userfaultfd = 0 and the target lacks
		// CAP_SYS_PTRACE: user-mode-only descriptors are still allowed,
		// and the async backend never delivers faults anyway.
		tfd, err = in.syscall(sysUserfaultfd, flags|uffdUserModeOnly)
		if err != nil {
			return -1, 0, err
		}
	}
	if tfd < 0 {
		e := unix.Errno(-tfd)
		if e == unix.EPERM {
			return -1, 0, fmt.Errorf("userfaultfd() in pid %d: %w (the target may run under a seccomp filter or lack the right to userfaultfd; vm.unprivileged_userfaultfd=0 needs CAP_SYS_PTRACE in the target)", pid, e)
		}
		return -1, 0, fmt.Errorf("userfaultfd() in pid %d: %w", pid, e)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		fd, err = unix.PidfdGetfd(pidfd, int(tfd), 0)
		unix.Close(pidfd)
	}
	if err != nil {
		fd = -1
		err = fmt.Errorf("copy userfaultfd out of pid %d (pidfd_getfd): %w", pid, err)
	}
	if r, cerr := in.syscall(sysClose, uint64(tfd)); cerr != nil || r != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		if cerr == nil {
			cerr = unix.Errno(-r)
		}
		return -1, 0, fmt.Errorf("close injected descriptor %d in pid %d: %w", tfd, pid, cerr)
	}
	return fd, 0, err
}
