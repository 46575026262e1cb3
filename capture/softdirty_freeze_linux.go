package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// freezer stops every thread of a process while a soft-dirty scan reads the
// bits and clears them. The kernel has no atomic read-and-clear for
// soft-dirty: a page still clean when its pagemap entry is read, written
// before clear_refs runs, loses its bit to the clear and the write is never
// seen. With 4 threads writing and 50 ms epochs this lost 2% of the writes
// in a TCG guest (make test-kernels). CRIU freezes its target for the same
// reason. The threads are stopped with PTRACE_SEIZE and PTRACE_INTERRUPT,
// which, unlike SIGSTOP, the target's parent and shell never see; a
// signal that arrives meanwhile is delivered at the detach.
//
// Our own child (a launched command) is stopped with SIGSTOP and SIGCONT
// instead: we are its parent, so no one else sees the stop, while a ptrace
// stop of a child can be consumed by the Go runtime's wait for it (os/exec
// waits with wait4 where pidfds are not fully supported, as on 6.1), which
// would end cmd.Wait early with a "stopped" status.
//
// If the threads cannot be stopped (no CAP_SYS_PTRACE, a debugger already
// attached), scans run unfrozen and a warning says writes may be missed.
type freezer struct {
	pid    int
	child  bool
	t      *tracer
	log    *slog.Logger
	warned bool
}

func newFreezer(pid int, log *slog.Logger) *freezer {
	return &freezer{pid: pid, child: parentPid(pid) == os.Getpid(), t: newTracer(), log: log}
}

func (f *freezer) close() { f.t.stop() }

// do runs fn with every thread of the process stopped. A process that
// ended meanwhile gives ErrTargetGone, whatever fn read: its memory may
// have been half torn down, and a page gone looks like a page discarded.
func (f *freezer) do(fn func() error) error {
	err := f.doFrozen(fn)
	if processGone(f.pid) {
		return fmt.Errorf("pid %d exited during a scan: %w", f.pid, ErrTargetGone)
	}
	return err
}

// processGone tells whether every thread of pid has exited or is exiting
// (PF_EXITING is set before the memory is torn down).
func processGone(pid int) bool {
	tids, err := threads(pid)
	if err != nil {
		return true
	}
	for _, tid := range tids {
		if !exiting(tid) && !pfExiting(tid) {
			return false
		}
	}
	return true
}

// pfExiting reads PF_EXITING from the flags of /proc/TID/stat.
func pfExiting(tid int) bool {
	const pfExitingFlag = 0x4
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", tid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExitingFlag != 0
}

func (f *freezer) doFrozen(fn func() error) error {
	if allStopped(f.pid) {
		// A launched command not released yet, or a stopped process.
		return fn()
	}
	if f.child {
		return f.doSignals(fn)
	}
	var ferr error
	err := f.t.do(func() error {
		stopped := map[int]unix.Signal{} // tid -> signal to deliver at detach
		defer func() {
			for tid, sig := range stopped {
				release(tid, sig)
			}
			// Threads that exited while seized, whichever way we lost
			// sight of them, are traced zombies until we wait for them.
			if tids, err := threads(f.pid); err == nil {
				for _, tid := range tids {
					if threadState(tid) == 'Z' && ourThread(tracerPid(tid)) {
						var ws unix.WaitStatus
						unix.Wait4(tid, &ws, unix.WALL|unix.WNOHANG, nil)
					}
				}
			}
		}()
		// Threads may be created while we stop the others: list again
		// until a pass finds none new.
		for pass := 0; ferr == nil; pass++ {
			tids, err := threads(f.pid)
			if err != nil {
				return procErr(err)
			}
			fresh := 0
			for _, tid := range tids {
				if _, ok := stopped[tid]; ok {
					continue
				}
				if err := f.stop(tid, stopped); err != nil {
					ferr = err
					break
				}
				fresh++
			}
			if fresh == 0 || pass > 100 {
				break
			}
		}
		if ferr != nil {
			return nil // run fn unfrozen, below, after the detach
		}
		return fn()
	})
	if err != nil || ferr == nil {
		return err
	}
	if !f.warned {
		f.warned = true
		f.log.Warn("soft-dirty: cannot stop the target's threads during scans: writes between a scan's read and its clear may be missed", "pid", f.pid, "err", ferr)
	}
	return fn()
}

// stop seizes and interrupts one thread and waits for it to stop. A thread
// already stopped under our own ptrace (a launched command before its
// release) counts as stopped; a thread that exits meanwhile is skipped.
func (f *freezer) stop(tid int, stopped map[int]unix.Signal) error {
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(tid), 0, 0, 0, 0); e != 0 {
		switch {
		case e == unix.ESRCH:
			return nil
		case e == unix.EPERM && ourThread(tracerPid(tid)) && threadState(tid) == 't':
			// Held stopped by another of our threads (a launched command
			// before its release). Traced by us but running, it is not
			// frozen: that is an error below, and scans run unfrozen.
			return nil
		case e == unix.EPERM && exiting(tid):
			// A zombie thread (the leader of an exiting process, or a
			// thread between exit and reaping) runs no more code.
			return nil
		}
		return fmt.Errorf("seize thread %d: %w", tid, e)
	}
	stopped[tid] = 0
	if err := unix.PtraceInterrupt(tid); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil // exiting: release reaps it
		}
		return fmt.Errorf("interrupt thread %d: %w", tid, err)
	}
	// Peek first: when we are also the real parent (a launched command),
	// consuming the leader's exit here would steal it from the caller's
	// cmd.Wait. A leader's exit is left alone; a stop, or another
	// thread's exit (which only its tracer can reap), is consumed.
	// A thread in uninterruptible sleep stops when it wakes: the scan
	// waits for it.
	var info unix.Siginfo
	gone, err := waitThread(tid, func() error {
		return unix.Waitid(unix.P_PID, tid, &info, unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT|unix.WALL, nil)
	})
	if err != nil {
		return err
	}
	if gone {
		delete(stopped, tid)
		return nil
	}
	const cldExited, cldKilled, cldDumped = 1, 2, 3
	if c := info.Code; (c == cldExited || c == cldKilled || c == cldDumped) && tid == f.pid && f.child {
		delete(stopped, tid)
		return nil
	}
	var ws unix.WaitStatus
	gone, err = waitThread(tid, func() error {
		_, err := unix.Wait4(tid, &ws, unix.WALL, nil)
		return err
	})
	if err != nil {
		return err
	}
	if gone {
		delete(stopped, tid)
		return nil
	}
	switch {
	case ws.Exited() || ws.Signaled():
		delete(stopped, tid)
	case ws.Stopped() && ws.StopSignal() != unix.SIGTRAP && uint32(ws)>>16 != unix.PTRACE_EVENT_STOP:
		// A signal on its way in (not a group stop, not our interrupt):
		// deliver it when we let go.
		stopped[tid] = ws.StopSignal()
	}
	return nil
}

// waitThread runs wait, a waitid or wait4 for thread tid, again until a
// signal does not interrupt it; gone is true when there is no tid left to
// wait for (ECHILD: it has exited and been reaped).
func waitThread(tid int, wait func() error) (gone bool, err error) {
	for {
		err := wait()
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("wait for thread %d: %w", tid, err)
		}
		return false, nil
	}
}

// doSignals stops our child with SIGSTOP, waits until every thread is
// stopped, runs fn and continues the child.
func (f *freezer) doSignals(fn func() error) error {
	if err := unix.Kill(f.pid, unix.SIGSTOP); err != nil {
		return fmt.Errorf("stop pid %d: %w", f.pid, procErr(err))
	}
	defer unix.Kill(f.pid, unix.SIGCONT)
	// As the parent we are told when the group stop is complete (every
	// thread stopped), or the child exits; WNOWAIT leaves both to be
	// collected by cmd.Wait, which asks for exits only.
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, f.pid, &info, unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil && !f.warned {
			f.warned = true
			f.log.Warn("soft-dirty: cannot wait for the target to stop: scanning anyway", "pid", f.pid, "err", err)
		}
		break
	}
	return fn()
}

// allStopped tells whether every thread of pid is stopped (by a signal or
// under ptrace) or exiting.
func allStopped(pid int) bool {
	tids, err := threads(pid)
	if err != nil || len(tids) == 0 {
		return false
	}
	for _, tid := range tids {
		switch threadState(tid) {
		case 'T', 't', 'Z', 'X', 0:
		default:
			return false
		}
	}
	return true
}

// threadState is the state letter of /proc/TID/stat (0 when gone).
func threadState(tid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", tid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// parentPid reads the parent's pid from /proc/PID/stat (0 when unknown).
func parentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// release detaches a seized thread. PTRACE_DETACH works only on a stopped
// tracee: one still running (a failed wait) is interrupted and waited for
// first, so that no thread is ever left stopped or traced.
func release(tid int, sig unix.Signal) {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(tid), 0, uintptr(sig), 0, 0)
	if e != unix.ESRCH || !ourThread(tracerPid(tid)) {
		return
	}
	if exiting(tid) || pfExiting(tid) {
		// It exited while seized: a traced zombie stays until its tracer
		// waits for it, and holds up the whole process's end. Never our
		// child (children are stopped with signals), so this only hands
		// it back to its parent. An exiting thread is a zombie soon.
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(tid, &ws, unix.WALL, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		return
	}
	if unix.PtraceInterrupt(tid) != nil {
		return
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(tid, &ws, unix.WALL, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(tid), 0, uintptr(sig), 0, 0)
}

// threads lists the thread ids of pid.
func threads(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// ourThread tells whether tid is a thread of this process (the launch
// code's tracer thread, which keeps a launched command stopped).
func ourThread(tid int) bool {
	if tid == 0 {
		return false
	}
	_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid))
	return err == nil
}

// exiting tells whether a thread is gone or a zombie.
func exiting(tid int) bool {
	st := threadState(tid)
	return st == 0 || st == 'Z' || st == 'X'
}

// tracerPid reads a thread's TracerPid (0 when untraced or unreadable).
func tracerPid(tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
