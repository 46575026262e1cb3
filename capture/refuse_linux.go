package capture

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// pfKthread is PF_KTHREAD in /proc/PID/stat's flags.
const pfKthread = 0x00200000

// procStat is what checkTarget needs from /proc/PID/stat.
type procStat struct {
	state byte
	ppid  int
	flags uint64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, procErr(err)
	}
	return parseStat(string(b))
}

// parseStat parses /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat %q: no ')' after the command name", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 7 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("stat %q: want state, ppid, ... flags after the command name", s)
	}
	ppid, err1 := strconv.Atoi(f[1])
	flags, err2 := strconv.ParseUint(f[6], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("stat %q: bad ppid or flags", s)
	}
	return procStat{state: f[0][0], ppid: ppid, flags: flags}, nil
}

// checkTarget refuses processes a capture must not touch: init, the
// capture itself and its ancestors (stopping one could stop us: a shell
// waiting for us, our own threads), kernel threads (no user memory), and
// zombies (no memory left).
func checkTarget(pid int) error {
	switch {
	case pid <= 0:
		return fmt.Errorf("pid %d: want a process id", pid)
	case pid == 1:
		return fmt.Errorf("pid 1 is init: capture refuses it, since stopping or write-protecting it would stall the whole system; capture the service itself (its pid, or its cgroup with --cgroup)")
	case pid == os.Getpid():
		return fmt.Errorf("pid %d is this capture's own process: give another process, or launch the workload after --", pid)
	}
	for a, hops := os.Getppid(), 0; a > 1 && hops < 4096; hops++ {
		if a == pid {
			return fmt.Errorf("pid %d is an ancestor of this capture (%s): capturing it could deadlock with the capture waiting for it; run the workload from another shell, or after --", pid, readComm(pid))
		}
		st, err := readStat(a)
		if err != nil {
			break
		}
		a = st.ppid
	}
	st, err := readStat(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w (no such process)", pid, err)
	}
	switch {
	case st.flags&pfKthread != 0:
		return fmt.Errorf("pid %d (%s) is a kernel thread: it has no user memory to capture", pid, readComm(pid))
	case st.state == 'Z' || st.state == 'X':
		return fmt.Errorf("pid %d (%s) is a zombie: it has exited and only waits for its parent to collect its status, so there is no memory to capture: %w", pid, readComm(pid), ErrTargetGone)
	}
	return nil
}
