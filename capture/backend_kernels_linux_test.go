package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/microwiper/microwiper/tracefmt"
)

// Kernels as the backends see them. Debian 12's 6.1 and Ubuntu 22.04's
// 5.15 lack WP_ASYNC and PAGEMAP_SCAN (6.7) and WP_UNPOPULATED (6.4).
var (
	kernel618NoSoftDirty = Features{Kernel: "6.18", Userfaultfd: true, WriteProtect: true, WPUnpopulated: true, WPAsync: true, PagemapScan: true}
	kernel61             = Features{Kernel: "6.1.0-57-amd64", Userfaultfd: true, WriteProtect: true, SoftDirty: true}
	kernel515NoSoftDirty = Features{Kernel: "5.15", Userfaultfd: true, WriteProtect: true}
	kernel54             = Features{Kernel: "5.4", Userfaultfd: true}
)

func TestBackendChoice(t *testing.T) {
	cases := []struct {
		name string
		f    Features
		best string
		// errors of the explicit backends, "" when it works
		async, sync, soft string
	}{
		{"6.18 without soft-dirty", kernel618NoSoftDirty, "uffd-wp-async", "", "",
			"backend soft-dirty: kernel 6.18 lacks soft-dirty bits (CONFIG_MEM_SOFT_DIRTY: pagemap bit 55 never sets): use --backend uffd-wp-async"},
		{"6.1", kernel61, "soft-dirty",
			"backend uffd-wp-async: kernel 6.1.0-57-amd64 lacks UFFD_FEATURE_WP_ASYNC (Linux 6.7), UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4), the PAGEMAP_SCAN ioctl (Linux 6.7): use --backend soft-dirty",
			"", ""},
		{"5.15 without soft-dirty", kernel515NoSoftDirty, "uffd-wp-sync",
			"use --backend uffd-wp-sync", "", "lacks soft-dirty bits"},
		{"5.4", kernel54, "",
			"none works here", "lacks userfaultfd write-protect, UFFD_FEATURE_PAGEFAULT_FLAG_WP (Linux 5.7): none works here", "none works here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.f.Best()
			if c.best == "" {
				require.ErrorIs(t, err, ErrNotSupported)
				assert.ErrorContains(t, err, "no capture backend works on kernel 5.4")
			} else {
				require.NoError(t, err)
				assert.Equal(t, c.best, b)
			}
			for backend, want := range map[string]string{"uffd-wp-async": c.async, "uffd-wp-sync": c.sync, "soft-dirty": c.soft} {
				err := c.f.Check(backend)
				if want == "" {
					assert.NoError(t, err, backend)
					continue
				}
				require.ErrorIs(t, err, ErrNotSupported, backend)
				assert.ErrorContains(t, err, want, backend)
			}
		})
	}
}

// On the kernel at hand: the automatic choice is the first of the
// preference order that works, and it is what the trace records.
func TestSelectBackendHere(t *testing.T) {
	f := KernelFeatures()
	t.Logf("kernel features: %+v", f)
	b, reason, err := SelectBackend("")
	if err != nil {
		t.Skipf("no backend on this kernel: %v", err)
	}
	for _, p := range preference {
		if p == b {
			break
		}
		assert.Error(t, f.Check(p), "%s works here but %s was chosen", p, b)
	}
	assert.Contains(t, reason, f.Kernel)
	for _, name := range Backends {
		_, _, err := SelectBackend(name)
		assert.Equal(t, f.Check(name) == nil, err == nil, name)
	}
	_, _, err = SelectBackend("nonsense")
	assert.ErrorContains(t, err, `backend "nonsense"`)

	needUffdWP(t, b)
	w := newWriter(t, "-pages", "64", "-threads", "1", "-phases", "1", "-phase", "50ms", "-gap", "0s", "-settle", "300ms")
	out := filepath.Join(t.TempDir(), "t.parquet")
	st, err := Record(context.Background(), Target{Cmd: w.cmd}, Options{Epoch: 50 * time.Millisecond, Output: out})
	require.NoError(t, err)
	assert.Equal(t, "exit", st.Stopped)
	h, _, err := tracefmt.ReadAll(out)
	require.NoError(t, err)
	assert.Equal(t, b, h.Backend, "the trace records the backend chosen")
}

// knownPattern runs the writer's phases under a capture and scores the
// trace, as TestRecallPrecision does, with the writer's extra arguments.
func knownPattern(t *testing.T, backend string, launch bool, extra ...string) score {
	return knownPatternBlocks(t, backend, launch, 1, extra...)
}

// knownPatternBlocks scores in blocks of block pages: a block is written in
// a phase if any of its pages is.
func knownPatternBlocks(t *testing.T, backend string, launch bool, block int, extra ...string) score {
	t.Helper()
	args := append([]string{"-pages", "4096", "-threads", "2", "-phases", "3", "-phase", "400ms", "-gap", "700ms"}, extra...)
	want := expectedSum(t, args...)
	out := filepath.Join(t.TempDir(), "trace.parquet")
	opts := Options{TrackerOptions: TrackerOptions{Backend: backend}, Epoch: 50 * time.Millisecond, Output: out, SegmentEvery: time.Second}
	w := captureWriter(t, launch, 500*time.Millisecond, opts, nil, args...)
	w.finish(t)
	assert.Equal(t, want, w.sum)
	slack, before := 600*time.Millisecond, time.Duration(0)
	// Sync rows carry fault times, except first touches found by presence
	// before Linux 6.4, which carry the scan's time as epoch rows do.
	firstTouchByScan := !KernelFeatures().WPUnpopulated && slices.Contains(extra, "-populate=false")
	if backend == tracefmt.BackendUffdSync && !firstTouchByScan {
		slack, before = 50*time.Millisecond, 20*time.Millisecond
	}
	if block == 1 {
		return scoreTrace(t, out, w.writerRun, before, slack)
	}
	return scoreTraceBlocks(t, out, w.writerRun, before, slack, block)
}

// Soft-dirty bits of a transparent huge page live in its PMD, and a write
// to a huge page write-protected by clear_refs does not split it: the
// backend sees writes at 2 MiB granularity, where the uffd backends split
// the page and see 4 KiB. Scored in 2 MiB blocks, soft-dirty is exact; in
// pages, its precision is the fraction of each written huge page written.
func TestSoftDirtyHugePage(t *testing.T) {
	needUffdWP(t, tracefmt.BackendSoftDirty)
	const block = 2 << 20 / 4096
	sc := knownPatternBlocks(t, tracefmt.BackendSoftDirty, false, block, "-huge", "-pages", "16384")
	t.Logf("attach/softdirty/hugepage-in-2MiB-blocks: %s", sc)
	assert.GreaterOrEqual(t, sc.recall(), 0.99, "recall: %s", sc)
	assert.GreaterOrEqual(t, sc.precision(), 0.99, "precision: %s", sc)
}

// Pages never touched before the capture: their first writes allocate
// them. Before Linux 6.4 (no WP_UNPOPULATED) the sync backend sees those
// only by presence; soft-dirty sees them as new dirty pages.
func TestKnownPatternUnpopulated(t *testing.T) {
	kernelMatrixTest(t)
	for _, backend := range Backends {
		t.Run(backend, func(t *testing.T) {
			needUffdWP(t, backend)
			sc := knownPattern(t, backend, false, "-populate=false")
			t.Logf("attach/%s/unpopulated: %s", backend, sc)
			assert.GreaterOrEqual(t, sc.recall(), 0.99, "recall: %s", sc)
			assert.GreaterOrEqual(t, sc.precision(), 0.99, "precision: %s", sc)
		})
	}
}

// BenchmarkScanBackend is one epoch's scan of a process with 1 GiB mapped
// and populated, nothing written between scans, for each backend the
// kernel offers: the fixed cost of an epoch (make test-kernels reports it
// per kernel).
func BenchmarkScanBackend(b *testing.B) {
	pages := 1 << 30 / os.Getpagesize()
	for _, backend := range Backends {
		b.Run("backend="+backend+"/mapped=1GiB", func(b *testing.B) {
			needUffdWP(b, backend)
			w := newWriter(b, "-mode", "hold", "-pages", strconv.Itoa(pages), "-populate=true")
			require.NoError(b, w.cmd.Start())
			defer func() { w.stdin.Close(); w.cmd.Wait() }()
			w.readBuffer(b)
			start := time.Now()
			tr, err := Attach(w.cmd.Process.Pid, TrackerOptions{Backend: backend}, nil)
			require.NoError(b, err)
			defer tr.Close()
			b.Logf("attach %s to 1 GiB: %v", backend, time.Since(start))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Scan(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The soft-dirty scans' freezer stops every thread of a running target and
// lets it go unharmed: the writer still computes its checksum, and its
// threads are really stopped while frozen. A process not our child is
// stopped with ptrace, our child with SIGSTOP.
func TestFreezer(t *testing.T) {
	kernelMatrixTest(t)
	needUffdWP(t, "uffd-wp-sync") // root and ptrace
	for _, child := range []bool{false, true} {
		t.Run(map[bool]string{false: "ptrace", true: "child"}[child], func(t *testing.T) {
			args := []string{"-pages", "2048", "-threads", "4", "-phases", "3", "-phase", "300ms", "-gap", "100ms"}
			want := expectedSum(t, args...)
			w := newWriter(t, append(args, "-settle", "200ms")...)
			if !child {
				// A shell in between: the writer is its child, not ours.
				w.cmd.Args = append([]string{"sh", "-c", `"$0" "$@" & wait`, w.cmd.Path}, w.cmd.Args[1:]...)
				w.cmd.Path = "/bin/sh"
			}
			require.NoError(t, w.cmd.Start())
			w.readBuffer(t)
			pid := w.cmd.Process.Pid
			if !child {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
				require.NoError(t, err)
				pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
				require.NoError(t, err, "children of the shell: %q", b)
			}
			f := newFreezer(pid, logger(nil))
			assert.Equal(t, child, f.child)
			defer f.close()
			done := make(chan struct{})
			go func() { defer close(done); w.readRest(t) }() // closes on t.Fatal too
			n := 0
		loop:
			for {
				select {
				case <-done:
					break loop
				default:
				}
				err := f.do(func() error {
					tids, err := threads(pid)
					if err != nil {
						return err
					}
					for _, tid := range tids {
						st, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/stat")
						if err != nil {
							continue
						}
						s := string(st)
						state := s[strings.LastIndexByte(s, ')')+2]
						if state != 't' && state != 'T' && state != 'Z' && state != 'X' {
							// exit_group's SIGKILL wakes stopped threads:
							// a process on its way out is not frozen.
							time.Sleep(100 * time.Millisecond)
							if exiting(pid) || exiting(tid) {
								return nil
							}
							return fmt.Errorf("thread %d in state %c while frozen", tid, state)
						}
					}
					return nil
				})
				if err != nil && !errors.Is(err, ErrTargetGone) {
					require.NoError(t, err)
				}
				n++
				time.Sleep(50 * time.Millisecond) // an epoch
			}
			waited := make(chan error, 1)
			go func() { waited <- w.cmd.Wait() }()
			select {
			case err := <-waited:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				syscall.Kill(pid, syscall.SIGKILL)
				w.cmd.Process.Kill()
				t.Fatalf("the writer did not end: left stopped? state %c", threadState(pid))
			}
			assert.Equal(t, want, w.sum)
			assert.False(t, f.warned, "the freezer fell back to unfrozen scans")
			t.Logf("froze the writer %d times", n)
		})
	}
}

// On a fake pagemap (any kernel): soft-dirty reports only pages holding
// data (a mapping grown or merged since the last clear is soft-dirty as a
// whole, untouched pages included), leaves out the shared zero page, and
// reports a page that lost its data (discarded) as written.
func TestSoftDirtyDataPages(t *testing.T) {
	const ps = 4096
	pm := fakePagemap{}
	maps := []Mapping{{Start: 0x10000, End: 0x18000, Perms: "rw-p", Path: "[heap]"}}
	tr := &softDirtyTracker{pagemap: pm, closer: io.NopCloser(nil), refs: filepath.Join(t.TempDir(), "clear_refs"),
		idx: NewIndex(ps), pageSz: ps, buf: make([]byte, 64),
		maps: func() ([]Mapping, error) { return maps, nil }, log: logger(nil)}
	tr.data.zero, tr.data.probed = zeroPFNs{small: 0x777}, true
	P, D := PagemapEntry(pmPresent), PagemapEntry(pmSoftDirty)
	zero := P | 0x777
	pm[0x10], pm[0x11], pm[0x12] = P|0x100, P|0x101, zero
	_, err := tr.scan(true)
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1}, tr.out, "initial image: data, not the zero page")

	// The whole mapping reads soft-dirty (VM_SOFTDIRTY after a merge):
	// only pages with data count.
	for p := uint64(0x10); p < 0x18; p++ {
		pm[p] |= D
	}
	sc, err := tr.Scan()
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1}, sc.Pages)

	// Page 1 discarded: no data, no bit. It reads as written, once.
	for p := uint64(0x10); p < 0x18; p++ {
		pm[p] &^= D
	}
	delete(pm, 0x11)
	sc, err = tr.Scan()
	require.NoError(t, err)
	assert.Equal(t, []int64{1}, sc.Pages)
	sc, err = tr.Scan()
	require.NoError(t, err)
	assert.Empty(t, sc.Pages)

	// Unmapped pages are not discards.
	maps[0].End = 0x10000 + ps
	sc, err = tr.Scan()
	require.NoError(t, err)
	assert.Empty(t, sc.Pages)
}

// A launched command is frozen first while the launch still holds it
// stopped (the soft-dirty initial scan), then running.
func TestFreezerLaunched(t *testing.T) {
	kernelMatrixTest(t)
	needUffdWP(t, "uffd-wp-sync")
	args := []string{"-pages", "2048", "-threads", "4", "-phases", "2", "-phase", "300ms", "-gap", "100ms", "-settle", "100ms"}
	want := expectedSum(t, args...)
	w := newWriter(t, args...)
	tc := newTracer()
	defer tc.stop()
	l, err := launch(tc, w.cmd)
	require.NoError(t, err)
	f := newFreezer(w.cmd.Process.Pid, logger(nil))
	defer f.close()
	ran := false
	require.NoError(t, f.do(func() error { ran = true; return nil }))
	assert.True(t, ran)
	require.NoError(t, l.detach())
	w.readBuffer(t)
	done := make(chan struct{})
	go func() { defer close(done); w.readRest(t) }() // closes on t.Fatal too
	n := 0
	for {
		select {
		case <-done:
			require.NoError(t, w.cmd.Wait())
			assert.Equal(t, want, w.sum)
			assert.False(t, f.warned)
			t.Logf("froze %d times", n)
			return
		case <-time.After(50 * time.Millisecond):
		}
		err := f.do(func() error { return nil })
		if err != nil && !errors.Is(err, ErrTargetGone) {
			require.NoError(t, err)
		}
		n++
	}
}

// BenchmarkFreeze is the pause soft-dirty adds to each scan: stopping and
// releasing every thread of a target (4 threads writing), by ptrace (not
// our child) and by SIGSTOP (our child).
func BenchmarkFreeze(b *testing.B) {
	needUffdWP(b, "uffd-wp-sync")
	for _, child := range []bool{false, true} {
		b.Run(map[bool]string{false: "how=ptrace", true: "how=sigstop"}[child], func(b *testing.B) {
			w := newWriter(b, "-mode", "bench", "-threads", "4", "-pages", "64", "-duration", "30s")
			if !child {
				w.cmd.Args = append([]string{"sh", "-c", `"$0" "$@" & wait`, w.cmd.Path}, w.cmd.Args[1:]...)
				w.cmd.Path = "/bin/sh"
			}
			require.NoError(b, w.cmd.Start())
			defer func() { w.cmd.Process.Kill(); w.cmd.Wait() }()
			w.readBuffer(b)
			pid := w.cmd.Process.Pid
			if !child {
				bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
				require.NoError(b, err)
				pid, err = strconv.Atoi(strings.TrimSpace(string(bs)))
				require.NoError(b, err)
				defer syscall.Kill(pid, syscall.SIGKILL)
			}
			f := newFreezer(pid, logger(nil))
			defer f.close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				require.NoError(b, f.do(func() error { return nil }))
			}
			b.StopTimer()
			assert.False(b, f.warned)
		})
	}
}

// The pre-6.4 sync fallback finds the pages of this process that became
// present between scans (through PAGEMAP_SCAN or pagemap reads, whichever
// the kernel has).
func TestFirstTouch(t *testing.T) {
	ps := os.Getpagesize()
	buf, err := unix.Mmap(-1, 0, 64*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	defer unix.Munmap(buf)
	base := uint64(uintptr(unsafe.Pointer(&buf[0])))
	sc, err := openPageScanner(os.Getpid())
	require.NoError(t, err)
	defer sc.Close()
	r := spanSet{{base, base + uint64(64*ps)}}
	page := func(p int) span { return span{base + uint64(p*ps), base + uint64((p+1)*ps)} }

	buf[1*ps], buf[2*ps] = 1, 1
	ft := &firstTouch{}
	require.NoError(t, ft.seed(sc, r[0]))
	fresh, err := ft.newPages(sc, r)
	require.NoError(t, err)
	assert.Empty(t, fresh, "pages present at the seed are not first touches")

	buf[5*ps] = 1
	touchSink += buf[9*ps] // a read maps the zero page: not a touch
	fresh, err = ft.newPages(sc, r)
	require.NoError(t, err)
	assert.Equal(t, []span{page(5)}, fresh)
	fresh, err = ft.newPages(sc, r)
	require.NoError(t, err)
	assert.Empty(t, fresh)

	// Discarded, then written again: a first touch again.
	require.NoError(t, unix.Madvise(buf[1*ps:2*ps], unix.MADV_DONTNEED))
	fresh, err = ft.newPages(sc, r)
	require.NoError(t, err)
	assert.Empty(t, fresh)
	buf[1*ps] = 2
	fresh, err = ft.newPages(sc, r)
	require.NoError(t, err)
	assert.Equal(t, []span{page(1)}, fresh)
}

// TestSyncFallbacks runs uffd-wp-sync on this kernel as if it were 6.1 (no
// PAGEMAP_SCAN, no WP_UNPOPULATED): the fallbacks get tested on the host
// too. Part of make test-kernels, to keep make test as fast as it was.
func TestSyncFallbacks(t *testing.T) {
	kernelMatrixTest(t)
	needUffdWP(t, tracefmt.BackendUffdSync)
	saved := KernelFeatures()
	t.Cleanup(func() { features = saved })
	features.PagemapScan, features.WPUnpopulated, features.WPAsync = false, false, false
	for _, populate := range []string{"-populate=true", "-populate=false"} {
		t.Run(populate, func(t *testing.T) {
			sc := knownPattern(t, tracefmt.BackendUffdSync, false, populate)
			t.Logf("attach/sync/as-6.1%s: %s", populate, sc)
			assert.GreaterOrEqual(t, sc.recall(), 0.99, "recall: %s", sc)
			assert.GreaterOrEqual(t, sc.precision(), 0.99, "precision: %s", sc)
		})
	}
}

// The pagemap fallback answers the presence queries as PAGEMAP_SCAN does,
// zero pages included (compared where the kernel has both; on older
// kernels, checked against what the test did).
func TestScanPagemapFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("zero pages are told apart by PFN, which needs CAP_SYS_ADMIN")
	}
	ps := os.Getpagesize()
	buf, err := unix.Mmap(-1, 0, 64*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	defer unix.Munmap(buf)
	base := uint64(uintptr(unsafe.Pointer(&buf[0])))
	buf[1*ps], buf[2*ps], buf[40*ps] = 1, 1, 1
	touchSink += buf[5*ps] + buf[6*ps] // zero pages
	sc, err := openPageScanner(os.Getpid())
	require.NoError(t, err)
	defer sc.Close()
	runs := func(scan func(q scanQuery, a, b uint64, fn func(a, b uint64)) error, q scanQuery) []span {
		var out []span
		require.NoError(t, scan(q, base, base+uint64(64*ps), func(a, b uint64) { out = append(out, span{a, b}) }))
		return out
	}
	pg := func(a, b int) span { return span{base + uint64(a*ps), base + uint64(b*ps)} }
	want := []span{pg(1, 3), pg(40, 41)}
	assert.Equal(t, want, runs(sc.scanPagemap, queryData), "pages with data, zero pages left out")
	assert.Equal(t, want, runs(sc.scanPagemap, queryPresent))
	if KernelFeatures().PagemapScan {
		assert.Equal(t, want, runs(sc.scan, queryData), "PAGEMAP_SCAN agrees")
		assert.Equal(t, want, runs(sc.scan, queryPresent))
	}
	err = sc.scanPagemap(queryWritten, base, base+uint64(ps), func(a, b uint64) {})
	assert.ErrorIs(t, err, ErrNotSupported)
}

// kernelMatrixTest skips a test that takes seconds unless make
// test-kernels runs it (on the host and in every guest), so that make test
// keeps its time.
func kernelMatrixTest(t *testing.T) {
	t.Helper()
	if os.Getenv("MICROWIPER_GUEST_TESTS") == "" {
		t.Skip("part of make test-kernels (MICROWIPER_GUEST_TESTS=1)")
	}
}

// The soft-dirty backend has no tree tracker; the follower still ends the
// target's space on its exit (a nil dereference once, found on 6.1).
func TestNoTreeForSoftDirty(t *testing.T) {
	var tree *treeTracker
	assert.NotPanics(t, func() { tree.endSpace(1); tree.flushSpace(1) })
}
