//go:build linux

// Command bench is the fixed CPU benchmark `make traces` runs both inside
// each guest, just before its workload starts, and on the host: the ratio of
// the two times is the guest's slowdown, recorded in the trace as
// guest_slowdown. It is statically linked, so the very same code runs in
// both places.
//
// The work is fixed and mixes what the traced workloads do: an integer hash
// chain; random read-modify-writes over a 32 MiB buffer (TCG's soft MMU
// translates every access); first touches of freshly mapped memory (page
// faults, the kernel zeroing pages: how a workload's memory grows); and
// cheap system calls (a server's or a compiler's way into the kernel).
// Under TCG the last two slow down far more than plain computation, so a
// benchmark of computation alone would understate the slowdown of real
// programs. It prints one line,
//
//	microwiper-bench cpu_ns=N wall_ns=N sum=X
//
// where cpu_ns is the process's user+system CPU time (immune to other
// processes on a shared host) and sum keeps the work from being optimised
// away.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

const (
	hashSteps = 60_000_000
	bufBytes  = 32 << 20
	memSteps  = 6_000_000
	mapBytes  = 32 << 20
	mapRounds = 4
	syscallsN = 300_000
	pageBytes = 4096
)

func main() {
	start := time.Now()
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < hashSteps; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		x += uint64(i)
	}
	buf := make([]uint64, bufBytes/8)
	for i := range buf {
		buf[i] = uint64(i)
	}
	idx := x
	for i := 0; i < memSteps; i++ {
		idx = idx*6364136223846793005 + 1442695040888963407
		j := (idx >> 20) % uint64(len(buf))
		buf[j] = buf[j]*31 + idx
		x += buf[j]
	}
	for r := 0; r < mapRounds; r++ {
		m, err := syscall.Mmap(-1, 0, mapBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: mmap:", err)
			os.Exit(1)
		}
		for i := 0; i < len(m); i += pageBytes {
			m[i] = byte(i + r)
		}
		x += uint64(m[len(m)-pageBytes])
		if err := syscall.Munmap(m); err != nil {
			fmt.Fprintln(os.Stderr, "bench: munmap:", err)
			os.Exit(1)
		}
	}
	for i := 0; i < syscallsN; i++ {
		x += uint64(syscall.Getppid())
	}
	wall := time.Since(start)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("microwiper-bench cpu_ns=%d wall_ns=%d sum=%x\n", cpu.Nanoseconds(), wall.Nanoseconds(), x)
}
