package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Following a process tree. The mechanism is ptrace, kept attached
// (PTRACE_SEIZE) to every thread of every followed process for the whole
// capture, with PTRACE_O_TRACEFORK, TRACEVFORK, TRACECLONE and TRACEEXEC.
// Why ptrace rather than the alternatives:
//
//   - The kernel stops a new child before its first instruction and tells
//     us, so its address space is registered before it writes anything; an
//     exec is reported before the new program runs. Polling /proc, or the
//     netlink process connector, learns of a process after it has run, and
//     misses short-lived ones (a compiler living less than an epoch).
//   - userfaultfd's own UFFD_FEATURE_EVENT_FORK hands over a descriptor for
//     the child's memory, but neither its PID nor exec, which replaces the
//     memory the descriptor covers.
//   - A process about to exit stops once more (PTRACE_O_TRACEEXIT) with
//     its memory intact, for a last scan: a compiler that lives less than
//     an epoch still leaves its writes in the trace.
//   - Between events the tracees run free: no system call is traced, so
//     the steady cost is nil; each fork or exec costs one stop and an
//     injection (see BenchmarkForkLoop), each signal one stop.
//   - A seized tracee whose tracer dies is detached by the kernel and runs
//     on; new children of a seized tracee start with a trap, not a SIGSTOP
//     that a dying tracer could leave pending. So a SIGKILLed capture
//     leaves the tree unharmed.
//
// All ptrace requests for a tracee must come from the thread that attached
// it, so the follower owns one locked OS thread that runs every request and
// waits for every stop. Ending that thread detaches every tracee at once.
const followOptions = unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK |
	unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_TRACEEXIT

// wNoThread limits a wait to the children and tracees of the calling
// thread (__WNOTHREAD).
const wNoThread = 0x20000000

// follower launches or attaches, follows the tree and tells the tree
// tracker about address spaces as they appear and end.
type follower struct {
	work   chan func()
	quit   chan struct{}
	exited chan struct{} // the tracer goroutine has ended
	tid    int           // the tracer thread
	follow bool
	async  bool
	tree   *treeTracker
	log    *slog.Logger

	// Owned by the tracer thread.
	tasks    map[int]*task // every traced thread
	procs    map[int]bool  // followed processes (thread-group ids) alive
	root     int
	rootCmd  *exec.Cmd
	rootGone bool
	// A launched root's end: its exit error, then rootExited closes.
	rootErr    error
	rootExited chan struct{}
	copies     sync.WaitGroup // copying a launched command's output
	cgroup     string
	skipped    map[int]bool // cgroup members refused or gone
	// setup, when set, starts tracking a stopped process instead of the
	// injection (the soft-dirty backend, which follows one process).
	setup func(pid int) error

	done     chan struct{} // closed when the root and every followed process are gone
	doneOnce sync.Once
}

type task struct {
	tid, tgid int
	// stopsOnly: a child of another part of our own program (a test's
	// exec.Cmd) that we attached to. A wait from the tracer thread would
	// reap it for good, so only its stops are collected here; its exit is
	// its parent's to collect, and shows here as ECHILD.
	stopsOnly bool
	dropCont  bool // suppress the SIGCONT we sent to resume a launched command
}

func newFollower(tree *treeTracker, follow, async bool, log *slog.Logger) *follower {
	f := &follower{work: make(chan func()), quit: make(chan struct{}), exited: make(chan struct{}),
		follow: follow, async: async, tree: tree, log: log,
		tasks: map[int]*task{}, procs: map[int]bool{}, skipped: map[int]bool{}, done: make(chan struct{}),
		rootExited: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread never exits, even when its locked goroutine
			// does, so it could not detach the tracees. While we hold it,
			// the loop's goroutine must get another thread.
			go f.loop(started)
			<-started
			runtime.UnlockOSThread()
			return
		}
		f.loop(started)
	}()
	<-started
	return f
}

// loop is the tracer thread. It never unlocks: when it returns, the thread
// exits, and with it every ptrace attachment.
func (f *follower) loop(started chan<- struct{}) {
	runtime.LockOSThread()
	f.tid = unix.Gettid()
	if f.tid == unix.Getpid() {
		panic("capture: process follower on the main thread")
	}
	defer close(f.exited)
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	close(started)
	// Events come in bursts (fork, exec, exit of a short command): after
	// one, look again soon rather than wait for SIGCHLD, whose way through
	// the Go runtime to this thread can take longer than the event.
	hot := time.NewTimer(time.Hour)
	defer hot.Stop()
	var lastEvent time.Time
	for {
		select {
		case fn := <-f.work:
			fn()
		case <-sigchld:
		case <-tick.C:
		case <-hot.C:
		case <-f.quit:
			return
		}
		if f.poll() {
			lastEvent = time.Now()
		}
		if time.Since(lastEvent) < 10*time.Millisecond {
			hot.Reset(200 * time.Microsecond)
		}
	}
}

// do runs fn on the tracer thread.
func (f *follower) do(fn func() error) error {
	errc := make(chan error, 1)
	select {
	case f.work <- func() { errc <- fn() }:
		return <-errc
	case <-f.exited:
		return errors.New("process follower has stopped")
	}
}

// stop ends the tracer thread, detaching every tracee; they run on. It
// returns once the thread is gone, so the caller may wait for them.
func (f *follower) stop() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
	<-f.exited
	task := fmt.Sprintf("/proc/self/task/%d", f.tid)
	for i := 0; i < 2000; i++ {
		if _, err := os.Stat(task); err != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	f.log.Warn("tracer thread still alive 2 s after it ended", "tid", f.tid)
}

func (f *follower) markDone() { f.doneOnce.Do(func() { close(f.done) }) }

func (f *follower) checkDone() {
	if f.cgroup == "" && f.rootGone && len(f.procs) == 0 {
		f.markDone()
	}
}

// waitTask collects one wait status of tid. The tracer thread reaps a
// launched root itself: exec.Cmd.Wait, from any thread of ours, would
// also collect its ptrace stops.
func (f *follower) waitTask(tid int, block bool) (unix.WaitStatus, bool, error) {
	if t := f.tasks[tid]; t != nil && t.stopsOnly {
		opts := unix.WSTOPPED | unix.WALL | wNoThread
		if !block {
			opts |= unix.WNOHANG
		}
		for {
			var si unix.Siginfo
			err := unix.Waitid(unix.P_PID, tid, &si, opts, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return 0, false, err
			}
			// siginfo_t for SIGCHLD: si_pid at byte 16, si_status at 24.
			raw := (*[32]byte)(unsafe.Pointer(&si))
			pid := int32(binary.NativeEndian.Uint32(raw[16:]))
			status := binary.NativeEndian.Uint32(raw[24:])
			if pid == 0 {
				return 0, false, nil
			}
			return unix.WaitStatus(status<<8 | 0x7f), true, nil
		}
	}
	opts := unix.WALL | wNoThread
	if !block {
		opts |= unix.WNOHANG
	}
	for {
		var ws unix.WaitStatus
		n, err := unix.Wait4(tid, &ws, opts, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		return ws, n > 0, nil
	}
}

// poll handles every stop and exit waiting to be collected, and reports
// whether there was any.
func (f *follower) poll() (any bool) {
	for again := true; again; {
		again = false
		tids := make([]int, 0, len(f.tasks))
		for tid := range f.tasks {
			tids = append(tids, tid)
		}
		sort.Ints(tids)
		for _, tid := range tids {
			if f.tasks[tid] == nil {
				continue
			}
			ws, ok, err := f.waitTask(tid, false)
			if errors.Is(err, unix.ECHILD) {
				f.taskGone(tid)
				continue
			}
			if ok {
				f.handle(tid, ws)
				again, any = true, true
			}
		}
	}
	return any
}

func ptraceEvent(ws unix.WaitStatus) int { return int(ws>>16) & 0xff }

func isStopSignal(s unix.Signal) bool {
	return s == unix.SIGSTOP || s == unix.SIGTSTP || s == unix.SIGTTIN || s == unix.SIGTTOU
}

// handle acts on one wait status of a traced thread and resumes it.
func (f *follower) handle(tid int, ws unix.WaitStatus) {
	if ws.Exited() || ws.Signaled() {
		if tid == f.root && f.rootCmd != nil {
			f.rootErr = exitError(ws)
			close(f.rootExited)
			f.processGone(tid)
		}
		f.taskGone(tid)
		return
	}
	if !ws.Stopped() {
		return
	}
	sig := ws.StopSignal()
	f.log.Debug("ptrace stop", "tid", tid, "signal", sig, "event", ptraceEvent(ws))
	switch ev := ptraceEvent(ws); ev {
	case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
		if msg, err := unix.PtraceGetEventMsg(tid); err == nil {
			f.newChild(tid, int(msg))
		}
		f.resume(tid, 0)
	case unix.PTRACE_EVENT_EXEC:
		f.resume(tid, f.execed(tid))
	case unix.PTRACE_EVENT_EXIT:
		if t := f.tasks[tid]; t != nil && t.tgid == tid {
			f.tree.flushSpace(tid)
		}
		f.resume(tid, 0)
	case unix.PTRACE_EVENT_STOP:
		if isStopSignal(sig) {
			// Group-stop: stay stopped, as without us, until SIGCONT.
			ptraceReq(unix.PTRACE_LISTEN, tid, 0)
			return
		}
		f.resume(tid, 0)
	case 0:
		if sig == unix.SIGTRAP|0x80 {
			f.resume(tid, 0)
			return
		}
		if t := f.tasks[tid]; t != nil && sig == unix.SIGCONT && t.dropCont {
			t.dropCont = false
			f.resume(tid, 0)
			return
		}
		f.resume(tid, sig)
	default:
		f.resume(tid, 0)
	}
}

// ptraceReq makes a ptrace request with data (options for PTRACE_SEIZE).
func ptraceReq(req, tid int, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), 0, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (f *follower) resume(tid int, sig unix.Signal) {
	if err := unix.PtraceCont(tid, int(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
		f.log.Debug("resume traced thread", "tid", tid, "err", err)
	}
}

// taskGone forgets a thread that exited; a process whose leader exited is
// gone, and so is its memory.
func (f *follower) taskGone(tid int) {
	t := f.tasks[tid]
	delete(f.tasks, tid)
	if t == nil || t.tgid != tid {
		return
	}
	// Its other threads stay listed until collected: a traced thread's
	// exit is ours to reap, and its parent cannot collect the process
	// before.
	f.processGone(tid)
}

func (f *follower) processGone(pid int) {
	if f.procs[pid] {
		delete(f.procs, pid)
		f.tree.endSpace(pid)
	}
	if pid == f.root {
		f.rootGone = true
	}
	f.checkDone()
}

// waitFirstStop waits for a new tracee's first stop; false if it is gone.
func (f *follower) waitFirstStop(tid int) (unix.WaitStatus, bool) {
	for {
		ws, ok, err := f.waitTask(tid, true)
		if err != nil || !ok {
			return 0, false
		}
		if ws.Exited() || ws.Signaled() {
			return ws, false
		}
		if ws.Stopped() {
			return ws, true
		}
	}
}

// newChild takes on a task created by traced thread parent: a thread, a
// vfork child sharing its parent's memory until it execs, or a process
// with memory of its own, registered before its first instruction.
func (f *follower) newChild(parent, child int) {
	if _, known := f.tasks[child]; known {
		return
	}
	ws, ok := f.waitFirstStop(child)
	if !ok {
		return
	}
	var sig unix.Signal
	if ptraceEvent(ws) != unix.PTRACE_EVENT_STOP {
		sig = ws.StopSignal() // a signal came first: deliver it
	}
	tgid := readTgid(child)
	pt := f.tasks[parent]
	t := &task{tid: child, tgid: tgid}
	f.tasks[child] = t
	switch {
	case pt != nil && tgid == pt.tgid:
		// A thread: same process, same memory.
	case sameVM(parent, child):
		// vfork, or clone(CLONE_VM) without a thread group: it writes
		// its parent's memory, which is followed already, until it execs.
		f.procs[child] = true
	default:
		f.procs[child] = true
		from := 0
		if pt != nil {
			from = pt.tgid
		}
		if s := f.register(child, false, from); s != 0 {
			sig = s
		}
	}
	f.resume(child, sig)
}

// execed handles an exec: the old memory is gone, the new one is
// registered before the new program's first instruction. It returns a
// signal to deliver.
func (f *follower) execed(tid int) unix.Signal {
	if old, err := unix.PtraceGetEventMsg(tid); err == nil && int(old) != tid {
		delete(f.tasks, int(old))
	}
	for o, ot := range f.tasks {
		if ot.tgid == tid && o != tid {
			delete(f.tasks, o) // the exec ended every other thread
		}
	}
	if t := f.tasks[tid]; t != nil {
		t.tgid = tid
	}
	f.procs[tid] = true
	f.tree.endSpace(tid)
	sig, ok := f.leaveExec(tid)
	if !ok {
		return sig
	}
	if s := f.register(tid, false, 0); s != 0 {
		sig = s
	}
	return sig
}

// leaveExec moves a thread stopped at PTRACE_EVENT_EXEC, which is still
// inside execve, to the system call's exit, where the injector can run
// system calls of its own. It returns a signal that arrived meanwhile.
func (f *follower) leaveExec(tid int) (unix.Signal, bool) {
	var held unix.Signal
	for {
		if err := unix.PtraceSyscall(tid, 0); err != nil {
			return held, false
		}
		ws, ok := f.waitFirstStop(tid)
		if !ok {
			return held, false
		}
		switch {
		case ws.StopSignal() == unix.SIGTRAP|0x80:
			return held, true
		case ptraceEvent(ws) == 0:
			held = ws.StopSignal()
		}
	}
}

// register injects a userfaultfd into stopped process pid and hands it
// to the tree; parent, when not 0, is the process that just forked it and
// is stopped at the fork. It returns a signal that arrived meanwhile.
func (f *follower) register(pid int, interrupted bool, parent int) unix.Signal {
	fd, sig, err := injectUserfaultfd(pid, pid, f.async)
	if interrupted {
		// The injection restored the registers at the exit of its last
		// system call. A thread stopped in an interrupted system call
		// only restarts it on its way through signal handling, which
		// detaching forces and PTRACE_CONT does not: a trap stop makes it
		// pass there (the loop resumes it), else sleep(1) would see
		// -ERESTART_RESTARTBLOCK. A new child or a fresh exec is in no
		// system call.
		ptraceReq(unix.PTRACE_INTERRUPT, pid, 0)
	}
	if err != nil {
		if !errors.Is(err, ErrTargetGone) {
			f.log.Warn("process not captured", "pid", pid, "comm", readComm(pid), "err", err)
		}
		return sig
	}
	if err := f.tree.addChild(pid, fd, parent); err != nil && !errors.Is(err, ErrTargetGone) {
		f.log.Warn("process not captured", "pid", pid, "comm", readComm(pid), "err", err)
	}
	return sig
}

// seize attaches to every thread of pid (threads keep appearing while we
// do, so until a listing shows nothing new).
func (f *follower) seize(pid int) error {
	ppid := 0
	if st, err := readStat(pid); err == nil {
		ppid = st.ppid
	}
	ownChild := ppid == os.Getpid()
	for {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return ptraceErr(pid, procErr(err))
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || f.tasks[tid] != nil {
				continue
			}
			if err := ptraceReq(unix.PTRACE_SEIZE, tid, followOptions); err != nil {
				if errors.Is(err, unix.ESRCH) && tid != pid {
					continue // a thread that just ended
				}
				return ptraceErr(pid, err)
			}
			// Only the leader's exit is its parent's: its other threads'
			// are ours to collect, or the leader never becomes waitable.
			f.tasks[tid] = &task{tid: tid, tgid: pid, stopsOnly: ownChild && tid == pid}
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
}

// attach follows running process pid and, with follow, every process
// descended from it. On the tracer thread.
func (f *follower) attach(pid int) error {
	if err := checkTarget(pid); err != nil {
		return err
	}
	if !f.follow {
		fd, err := attachUffdHere(pid, f.async)
		if err != nil {
			return err
		}
		f.procs[pid] = true
		return f.tree.addSpace(pid, fd)
	}
	if err := checkSeccomp(pid); err != nil {
		return err
	}
	if err := f.seize(pid); err != nil {
		return err
	}
	if err := unix.PtraceInterrupt(pid); err != nil {
		return ptraceErr(pid, err)
	}
	var held unix.Signal
	for {
		ws, ok := f.waitFirstStop(pid)
		if !ok {
			f.taskGone(pid)
			return fmt.Errorf("attach to pid %d: %w", pid, ErrTargetGone)
		}
		switch ev := ptraceEvent(ws); ev {
		case unix.PTRACE_EVENT_STOP:
		case unix.PTRACE_EVENT_EXEC:
			if sig, ok := f.leaveExec(pid); !ok {
				f.taskGone(pid)
				return fmt.Errorf("attach to pid %d: %w", pid, ErrTargetGone)
			} else if sig != 0 {
				held = sig
			}
		case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
			if msg, err := unix.PtraceGetEventMsg(pid); err == nil {
				f.procs[pid] = true // the child needs its parent known
				f.newChild(pid, int(msg))
			}
		default:
			if ws.StopSignal() != unix.SIGTRAP|0x80 {
				held = ws.StopSignal() // a signal on its way in: deliver it after
			}
		}
		break
	}
	f.procs[pid] = true
	if sig := f.register(pid, true, 0); sig != 0 {
		held = sig
	}
	f.resume(pid, held)
	// Descendants alive now are followed too.
	for _, c := range childrenOf(pid) {
		if f.tasks[c] == nil {
			if err := f.attach(c); err != nil {
				f.log.Warn("descendant not captured", "pid", c, "err", err)
			}
		}
	}
	return nil
}

// launch starts cmd and follows it from its first instruction. It sets a
// parent-death signal, so the command ends with the capture even if the
// capture is killed.
func (f *follower) launch(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Ptrace = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	closeAfter, err := f.pipes(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	err = cmd.Start()
	for _, c := range closeAfter {
		c.Close()
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	fail := func(err error) error {
		cmd.Process.Kill()
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		return err
	}
	var ws unix.WaitStatus
	if _, err := wait4(pid, &ws); err != nil {
		return fail(err)
	}
	if !ws.Stopped() {
		return fail(fmt.Errorf("start %s: exited before its first instruction (status %v)", cmd.Path, ws))
	}
	f.root, f.rootCmd = pid, cmd
	if !f.follow {
		// As the traced child of PTRACE_TRACEME, stopped after exec.
		if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_TRACESYSGOOD); err != nil {
			return fail(fmt.Errorf("start %s: set ptrace options: %w", cmd.Path, err))
		}
		f.procs[pid] = true
		var err error
		if f.setup != nil {
			err = f.setup(pid)
		} else {
			var fd int
			if fd, _, err = injectUserfaultfd(pid, pid, f.async); err == nil {
				err = f.tree.addSpace(pid, fd)
			}
		}
		if err != nil {
			return fail(fmt.Errorf("set up capture of %s: %w", cmd.Path, err))
		}
		if err := unix.PtraceDetach(pid); err != nil {
			return fail(fmt.Errorf("detach from pid %d: %w", pid, err))
		}
		f.tasks[pid] = &task{tid: pid, tgid: pid} // waited for, not traced
		return nil
	}
	// PTRACE_TRACEME made us a plain tracer, whose new tracees would start
	// with a SIGSTOP that a killed capture could leave pending. Trade it
	// for a seizure: stop the command with SIGSTOP on its way out of the
	// stop, seize it stopped, register it, and continue it, hiding our
	// SIGCONT from it.
	if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
		return fail(fmt.Errorf("start %s: %w", cmd.Path, err))
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fail(fmt.Errorf("start %s: detach: %w", cmd.Path, err))
	}
	for {
		// Not traced now: its stop is reported with WUNTRACED only.
		if _, err := unix.Wait4(pid, &ws, unix.WALL|unix.WUNTRACED, nil); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fail(fmt.Errorf("start %s: wait: %w", cmd.Path, err))
		}
		if ws.Exited() || ws.Signaled() {
			return fail(fmt.Errorf("start %s: exited at once (status %v)", cmd.Path, ws))
		}
		if ws.Stopped() && ws.StopSignal() == unix.SIGSTOP {
			break
		}
	}
	if err := ptraceReq(unix.PTRACE_SEIZE, pid, followOptions); err != nil {
		return fail(fmt.Errorf("start %s: seize: %w", cmd.Path, err))
	}
	f.tasks[pid] = &task{tid: pid, tgid: pid, dropCont: true}
	if _, ok := f.waitFirstStop(pid); !ok {
		return fail(fmt.Errorf("start %s: exited at once", cmd.Path))
	}
	f.procs[pid] = true
	fd, _, err := injectUserfaultfd(pid, pid, f.async)
	if err == nil {
		err = f.tree.addSpace(pid, fd)
	}
	if err != nil {
		delete(f.tasks, pid)
		return fail(fmt.Errorf("set up capture of %s: %w", cmd.Path, err))
	}
	unix.Kill(pid, unix.SIGCONT)
	f.resume(pid, 0)
	return nil
}

// pipes gives cmd a pipe for each standard stream that is not a file, and
// copies through it, as exec.Cmd would if we let it wait for the command.
// It returns the command's ends, to close once it has started.
func (f *follower) pipes(cmd *exec.Cmd) ([]io.Closer, error) {
	var theirs []io.Closer
	if cmd.Stdin != nil {
		if _, ok := cmd.Stdin.(*os.File); !ok {
			r, w, err := os.Pipe()
			if err != nil {
				return theirs, err
			}
			src := cmd.Stdin
			go func() { io.Copy(w, src); w.Close() }()
			cmd.Stdin = r
			theirs = append(theirs, r)
		}
	}
	for _, dst := range []*io.Writer{&cmd.Stdout, &cmd.Stderr} {
		if *dst == nil {
			continue
		}
		if _, ok := (*dst).(*os.File); ok {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return theirs, err
		}
		out := *dst
		f.copies.Add(1)
		go func() { io.Copy(out, r); r.Close(); f.copies.Done() }()
		*dst = w
		theirs = append(theirs, w)
	}
	return theirs, nil
}

func exitError(ws unix.WaitStatus) error {
	switch {
	case ws.Signaled():
		return &ExitError{Code: -1, Signal: syscall.Signal(ws.Signal())}
	case ws.ExitStatus() != 0:
		return &ExitError{Code: ws.ExitStatus()}
	}
	return nil
}

// startCgroup checks a cgroup v2 directory and follows its members.
func (f *follower) startCgroup(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(abs, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w: give a cgroup v2 directory such as /sys/fs/cgroup/system.slice/NAME.service", dir, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("cgroup %s: not on a cgroup v2 file system: give a directory under /sys/fs/cgroup (unified hierarchy)", dir)
	}
	if _, err := os.Stat(filepath.Join(abs, "cgroup.procs")); err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(abs, "cgroup.type")); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroup %s is the root cgroup, which holds the whole system: give a container's or a service's cgroup", dir)
	}
	f.cgroup = abs
	f.pollCgroup()
	return nil
}

// pollCgroup follows the members of the cgroup not yet followed.
func (f *follower) pollCgroup() {
	b, err := os.ReadFile(filepath.Join(f.cgroup, "cgroup.procs"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			f.log.Warn("cgroup removed: capture ends", "cgroup", f.cgroup)
			f.markDone()
		}
		return
	}
	for _, field := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(field)
		if err != nil || f.tasks[pid] != nil || f.skipped[pid] {
			continue
		}
		if err := f.attach(pid); err != nil {
			if tracerOf(pid) == f.tid { // TracerPid names the thread
				continue // ours already: its parent's fork event is on its way
			}
			f.skipped[pid] = true
			if !errors.Is(err, ErrTargetGone) {
				f.log.Warn("cgroup member not captured", "pid", pid, "comm", readComm(pid), "err", err)
			}
		}
	}
}

// sameVM reports whether two tasks share one address space (kcmp KCMP_VM).
func sameVM(a, b int) bool {
	const kcmpVM = 1
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), kcmpVM, 0, 0, 0)
	return e == 0 && r == 0
}

// statusField reads one field of /proc/PID/status.
func statusField(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readTgid(tid int) int {
	n, err := strconv.Atoi(statusField(tid, "Tgid"))
	if err != nil {
		return tid
	}
	return n
}

func tracerOf(pid int) int {
	n, _ := strconv.Atoi(statusField(pid, "TracerPid"))
	return n
}

func readComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// childrenOf lists the children of every thread of pid.
func childrenOf(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	sort.Ints(out)
	return out
}
