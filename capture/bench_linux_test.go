package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// BenchmarkOverhead runs a memory-writing workload (one thread, 8-byte
// writes at random pages of a working set) for 2 s with and without
// capture, and reports its throughput. Compare epoch=none with the others
// for the slowdown. Mwrites/cpu-s counts the workload's whole CPU time,
// including process start, so compare it only between sub-benchmarks. The cost is one protection fault per written page per
// epoch, so it grows with the working set and shrinks with the epoch.
func BenchmarkOverhead(b *testing.B) {
	needUffdWP(b, "uffd-wp-async")
	for _, ws := range []int{64, 1024, 4096} {
		for _, epoch := range []string{"none", "10ms", "100ms", "1s"} {
			b.Run(fmt.Sprintf("ws=%dKiB/epoch=%s", ws*4, epoch), func(b *testing.B) {
				var writes, ns, cpu float64
				for i := 0; i < b.N; i++ {
					w := newWriter(b, "-mode", "bench", "-wait", "-threads", "1", "-pages", strconv.Itoa(ws), "-duration", "2s")
					require.NoError(b, w.cmd.Start())
					w.readBuffer(b)
					var wait func() (Stats, error)
					if epoch != "none" {
						d, _ := time.ParseDuration(epoch)
						var cancel context.CancelFunc
						wait, cancel = recordReady(b, Target{PID: w.cmd.Process.Pid},
							Options{Epoch: d, Output: filepath.Join(b.TempDir(), "t.parquet"), SegmentEvery: 5 * time.Second})
						defer cancel()
					}
					fmt.Fprintln(w.stdin, "go")
					line := <-w.lines
					f := strings.Fields(line)
					require.Len(b, f, 3, "writer said %q", line)
					n, _ := strconv.ParseFloat(f[1], 64)
					el, _ := strconv.ParseFloat(f[2], 64)
					writes += n
					ns += el
					w.cmd.Wait()
					if ru, ok := w.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
						cpu += float64(ru.Utime.Nano() + ru.Stime.Nano())
					}
					if wait != nil {
						_, err := wait()
						require.NoError(b, err)
					}
				}
				b.ReportMetric(writes/ns*1e3, "Mwrites/s")
				// Per CPU second of the workload (faults included): less
				// sensitive than wall time to other tenants of a shared machine.
				b.ReportMetric(writes/cpu*1e3, "Mwrites/cpu-s")
			})
		}
	}
}

// BenchmarkFault measures one first write to a page: plain (a fresh
// anonymous page) and to a page protected by uffd-wp-async. Both are page
// faults; on a virtual machine with shadow page tables they cost far more
// than on bare metal, and this cost is what capture adds per page and epoch.
func BenchmarkFault(b *testing.B) {
	ps := os.Getpagesize()
	const n = 4096
	b.Run("kind=first-touch", func(b *testing.B) {
		for i := 0; i < b.N; i += n {
			b.StopTimer()
			buf, err := unix.Mmap(-1, 0, n*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			require.NoError(b, err)
			b.StartTimer()
			for p := 0; p < min(n, b.N-i); p++ {
				buf[p*ps]++
			}
			b.StopTimer()
			unix.Munmap(buf)
			b.StartTimer()
		}
	})
	b.Run("kind=uffd-wp-async", func(b *testing.B) {
		needUffdWP(b, "uffd-wp-async")
		tr, buf := selfTrackerB(b, 87<<20)
		for p := 0; p < n; p++ {
			buf[p*ps]++
		}
		b.ResetTimer()
		for i := 0; i < b.N; i += n {
			b.StopTimer()
			if _, err := tr.Scan(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for p := 0; p < min(n, b.N-i); p++ {
				buf[p*ps]++
			}
		}
	})
}

func selfTrackerB(b *testing.B, size int) (*uffdTracker, []byte) {
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(b, err)
	b.Cleanup(func() { unix.Munmap(buf) })
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	require.Zero(b, errno)
	tr, err := newUffdTracker(os.Getpid(), int(fd), false, TrackerOptions{Filter: Filter{MinBytes: uint64(size)}}, logger(nil))
	require.NoError(b, err)
	b.Cleanup(func() { tr.Close() })
	return tr, buf
}

// BenchmarkScan measures one epoch's scan of a process with 1, 4 or 16 GiB
// mapped, through the tracker (maps read, every registered range, dense
// index) and as one bare PAGEMAP_SCAN ioctl over the big mapping, in the
// same run. Nothing is written between scans: this is the walk's cost.
func BenchmarkScan(b *testing.B) {
	needUffdWP(b, "uffd-wp-async")
	cases := []struct {
		gib      int
		populate bool
	}{{1, true}, {4, true}, {16, false}}
	for _, c := range cases {
		state := "untouched"
		if c.populate {
			state = "populated"
		}
		b.Run(fmt.Sprintf("mapped=%dGiB/%s", c.gib, state), func(b *testing.B) {
			pages := c.gib << 30 / os.Getpagesize()
			w := newWriter(b, "-mode", "hold", "-pages", strconv.Itoa(pages), "-populate="+strconv.FormatBool(c.populate))
			require.NoError(b, w.cmd.Start())
			defer func() { w.stdin.Close(); w.cmd.Wait() }()
			w.readBuffer(b)
			pid := w.cmd.Process.Pid
			start := time.Now()
			tr, err := Attach(pid, TrackerOptions{}, nil)
			require.NoError(b, err)
			defer tr.Close()
			b.Logf("attach and register %d GiB: %v", c.gib, time.Since(start))
			ps, err := openPageScanner(pid)
			require.NoError(b, err)
			defer ps.Close()
			end := w.base + uint64(pages)*uint64(os.Getpagesize())
			b.Run("impl=raw-ioctl", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := ps.scan(queryWritten, w.base, end, func(a, b uint64) {}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("impl=tracker", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := tr.Scan(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkForkLoop measures what following a process tree costs a
// fork-heavy workload: a shell running 200 short processes (each a fork and
// an exec), uncaptured, captured as one process (--no-follow), and captured
// with every child followed. It reports the workload's wall time and CPU
// time per run and, for the followed case, the wall-time slowdown against
// --no-follow. Each stop waits for the tracer thread to be scheduled, so
// on a loaded machine the wall time grows with the load.
func BenchmarkForkLoop(b *testing.B) {
	needUffdWP(b, "uffd-wp-async")
	const script = `i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done`
	childCPU := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	run := func(b *testing.B, mode string) time.Duration {
		var total time.Duration
		cpu0 := childCPU()
		for i := 0; i < b.N; i++ {
			cmd := exec.Command("sh", "-c", script)
			start := time.Now()
			if mode == "none" {
				require.NoError(b, cmd.Run())
			} else {
				_, err := Record(context.Background(), Target{Cmd: cmd}, Options{Epoch: 100 * time.Millisecond,
					Output: filepath.Join(b.TempDir(), "t.parquet"), SegmentEvery: 5 * time.Second, NoFollow: mode == "no-follow"})
				require.NoError(b, err)
			}
			total += time.Since(start)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/run")
		// The workload's own CPU time (every process of the tree): what it
		// pays in faults and stops, apart from waiting for the tracer.
		b.ReportMetric(float64((childCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/run")
		return total / time.Duration(b.N)
	}
	var single time.Duration
	b.Run("uncaptured", func(b *testing.B) { run(b, "none") })
	b.Run("no-follow", func(b *testing.B) { single = run(b, "no-follow") })
	b.Run("follow", func(b *testing.B) {
		d := run(b, "follow")
		if single > 0 {
			b.ReportMetric(float64(d)/float64(single), "x-no-follow")
		}
	})
}

// BenchmarkScanShared measures one epoch's scan of a parent and a forked
// child that write copy-on-write pages they share (tree cow: 64 MiB
// private buffer, each side writing a third of its half, over and over),
// with the sharing rules (shared) and with every child given pages of
// its own as before them (own), and of the parent alone (no-follow). It
// reports the tracer thread's CPU time per scan, and per page reported,
// which a loaded machine inflates less than wall time.
func BenchmarkScanShared(b *testing.B) {
	needUffdWP(b, "uffd-wp-async")
	bin := treeBin(b)
	for _, mode := range []string{"no-follow", "own", "shared"} {
		b.Run("mode="+mode, func(b *testing.B) {
			cmd := exec.Command(bin, "cow", "16384", "1", "600000", "0", "200")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to end the child too
			p, tr, err := startTarget(Target{Cmd: cmd}, TrackerOptions{Start: time.Now()}, mode == "no-follow", logger(nil))
			require.NoError(b, err)
			if mode == "own" {
				tr.(*treeTracker).noShare = true
			}
			defer func() {
				unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
				<-p.cmdDone
				p.f.stop()
				tr.(*treeTracker).Close()
			}()
			// Past the fork and the first sweep of each side.
			time.Sleep(1500 * time.Millisecond)
			want := 2
			if mode == "no-follow" {
				want = 1
			}
			require.Equal(b, want, tr.(*treeTracker).live())
			for i := 0; i < 3; i++ {
				_, err := tr.Scan()
				require.NoError(b, err)
				time.Sleep(50 * time.Millisecond)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			pages := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				time.Sleep(50 * time.Millisecond)
				var r0, r1 unix.Rusage
				unix.Getrusage(unix.RUSAGE_THREAD, &r0)
				b.StartTimer()
				sc, err := tr.Scan()
				b.StopTimer()
				unix.Getrusage(unix.RUSAGE_THREAD, &r1)
				require.NoError(b, err)
				cpu += time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
				pages += len(sc.Pages)
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/scan")
			b.ReportMetric(float64(pages)/float64(b.N), "pages/scan")
			if pages > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(pages), "cpu-ns/page")
			}
			b.ReportMetric(float64(tr.Index().Pages()), "page-space")
		})
	}
}

// BenchmarkZeroCheck is the per-epoch content check of --zero-writes:
// pages of this process read through /proc/self/mem, as capture reads a
// target's, and compared with zeros. Written pages come in runs
// (contiguous: one read per 256 pages) or alone (scattered: every other
// page, one read each); data pages differ from zero in their first
// bytes, zero pages are compared whole.
func BenchmarkZeroCheck(b *testing.B) {
	ps := os.Getpagesize()
	const n = 16384 // 64 MiB
	buf, err := unix.Mmap(-1, 0, n*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(b, err)
	defer unix.Munmap(buf)
	start := uint64(uintptr(unsafe.Pointer(&buf[0])))
	x := NewIndex(uint64(ps))
	require.True(b, x.Cover(Mapping{Start: start, End: start + uint64(n*ps), Perms: "rw-p"}))
	for _, tc := range []struct {
		name      string
		scattered bool
		zero      bool
	}{
		{"pattern=contiguous/content=data", false, false},
		{"pattern=scattered/content=data", true, false},
		{"pattern=contiguous/content=zero", false, true},
		{"pattern=scattered/content=zero", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for p := range n {
				if tc.zero {
					clear(buf[p*ps : (p+1)*ps])
				} else {
					buf[p*ps] = byte(p | 1)
				}
			}
			var pages []int64
			for p := int64(0); p < n; p++ {
				if !tc.scattered || p%2 == 0 {
					pages = append(pages, p)
				}
			}
			z := newWriteZeros(os.Getpid())
			defer z.close()
			b.ResetTimer()
			checked := 0
			for i := 0; i < b.N; i++ {
				_, nz := z.check(x, pages)
				if tc.zero != (nz == len(pages)) {
					b.Fatalf("%d of %d pages found zero", nz, len(pages))
				}
				checked += len(pages)
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(checked)/s, "pages/s")
			b.ReportMetric(float64(checked*ps)/s/1e6, "MB/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
