//go:build unix

package replay

import "syscall"

// cpuNS is the process's user+system CPU time. The benchmarks report it
// next to wall time because the machine they run on is shared: wall time
// includes waiting for a core.
func cpuNS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
