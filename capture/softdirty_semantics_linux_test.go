package capture

import (
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The soft-dirty backend against uffd-wp-async, scenario by scenario, on
// this process's own memory (neither backend ever blocks a writer). Each
// scenario states what each backend reports; where they differ, the
// difference is the kernel's and is documented in capture/README.md. A
// backend the kernel lacks is skipped (make test-kernels runs both on
// Debian's 6.12, and soft-dirty on 6.1).

// selfBuffer is a mapping of this process under a tracker.
type selfBuffer struct {
	tr  Tracker
	buf []byte
}

func (b *selfBuffer) base() uint64 { return uint64(uintptr(unsafe.Pointer(&b.buf[0]))) }

// pages turns dense pages into pages of the buffer (0-based), ascending.
func (b *selfBuffer) pages(dense []int64) []int {
	ps := uint64(os.Getpagesize())
	var out []int
	for _, p := range dense {
		for _, r := range b.tr.Index().Regions() {
			if p >= r.FirstPage && p < r.FirstPage+r.Pages {
				a := r.StartAddr + uint64(p-r.FirstPage)*ps
				if a >= b.base() && a < b.base()+uint64(len(b.buf)) {
					out = append(out, int((a-b.base())/ps))
				}
			}
		}
	}
	return out
}

func (b *selfBuffer) scan(t *testing.T) []int {
	t.Helper()
	sc, err := b.tr.Scan()
	require.NoError(t, err)
	return b.pages(sc.Pages)
}

// startSelf maps size bytes (plus reserve bytes after them, left unmapped
// for the test to use), runs before on the buffer, then tracks mappings
// of at least size bytes (the buffer, not the Go heap) with backend.
func startSelf(t *testing.T, backend string, size, reserve int, before func([]byte)) *selfBuffer {
	t.Helper()
	needUffdWP(t, backend)
	raw, err := unix.Mmap(-1, 0, size+reserve, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	base := uintptr(unsafe.Pointer(&raw[0]))
	t.Cleanup(func() { unix.Syscall(unix.SYS_MUNMAP, base, uintptr(size+reserve), 0) })
	if reserve > 0 {
		_, _, errno := unix.Syscall(unix.SYS_MUNMAP, base+uintptr(size), uintptr(reserve), 0)
		require.Zero(t, errno)
	}
	buf := raw[:size:size]
	if before != nil {
		before(buf)
	}
	opts := TrackerOptions{Backend: backend, Filter: Filter{MinBytes: uint64(size)}}
	var tr Tracker
	switch backend {
	case "soft-dirty":
		tr, err = newSoftDirtyTracker(os.Getpid(), opts, logger(nil))
	case "uffd-wp-async":
		fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
		require.Zero(t, errno)
		tr, err = newUffdTracker(os.Getpid(), int(fd), false, opts, logger(nil))
	default:
		t.Fatalf("backend %s cannot track its own process", backend)
	}
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return &selfBuffer{tr: tr, buf: buf}
}

var selfBackends = []string{"soft-dirty", "uffd-wp-async"}

func forSelfBackends(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range selfBackends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// What both backends agree on: initial image, writes, reads, rescans,
// discards.
func TestSoftDirtySameAsUffd(t *testing.T) {
	const size = 89 << 20 // an odd size no other mapping has
	ps := os.Getpagesize()
	forSelfBackends(t, func(t *testing.T, backend string) {
		b := startSelf(t, backend, size, 0, func(buf []byte) {
			buf[3*ps] = 1
			buf[4*ps] = 1
			touchSink += buf[6*ps] // maps the shared zero page: no data
		})
		assert.Equal(t, []int{3, 4}, b.pages(b.tr.Initial()), "initial image: the pages holding data")
		assert.Empty(t, b.scan(t))

		b.buf[5*ps] = 1
		b.buf[20*ps+100] = 1
		b.buf[21*ps-1] = 1
		touchSink += b.buf[7*ps] // a read is not a write
		assert.Equal(t, []int{5, 20}, b.scan(t))
		assert.Empty(t, b.scan(t), "nothing written since the last scan")

		// A discarded page reads back as zeros: news to a destination.
		require.NoError(t, unix.Madvise(b.buf[4*ps:5*ps], unix.MADV_DONTNEED))
		assert.Equal(t, []int{4}, b.scan(t), "a discarded page counts as written")
		assert.Empty(t, b.scan(t))
	})
}

// clear_refs 4 clears the soft-dirty bits of the whole process: anyone else
// writing it (CRIU, a second capture, the program itself) erases the
// writes this capture has not scanned yet. uffd write protection is private
// to its userfaultfd and unaffected.
func TestSoftDirtyClearRefsIsProcessWide(t *testing.T) {
	const size = 87 << 20
	ps := os.Getpagesize()
	forSelfBackends(t, func(t *testing.T, backend string) {
		b := startSelf(t, backend, size, 0, nil)
		b.buf[8*ps] = 1
		require.NoError(t, os.WriteFile("/proc/self/clear_refs", []byte("4"), 0))
		got := b.scan(t)
		if backend == "soft-dirty" {
			assert.Empty(t, got, "an outside clear_refs erased the write")
		} else {
			assert.Equal(t, []int{8}, got, "uffd does not see clear_refs")
		}
	})
}

// A new mapping next to a captured one merges with it, and the kernel
// marks the whole merged mapping soft-dirty (VM_SOFTDIRTY) until the next
// clear: every page of the old part holding data reads as written. The
// same goes for a heap grown by brk. uffd never merges a registered
// mapping with an unregistered one: only the new mapping's pages count.
func TestSoftDirtyMergeMarksWholeMapping(t *testing.T) {
	const size, extra, guard = 85 << 20, 1 << 20, 1 << 20
	ps := os.Getpagesize()
	forSelfBackends(t, func(t *testing.T, backend string) {
		b := startSelf(t, backend, size, extra+guard, func(buf []byte) {
			for p := 0; p < 10; p++ {
				buf[p*ps] = 1
			}
		})
		assert.Empty(t, b.scan(t))
		// The buffer may already share its mapping with a neighbour below.
		before := mappingSize(t, b.base())
		end := b.base() + size
		// An inaccessible guard above the new mapping, so that it merges
		// with the buffer only, not with whatever lies above.
		_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(end+extra), guard, unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
		require.Zero(t, errno)
		_, _, errno = unix.Syscall6(unix.SYS_MMAP, uintptr(end), extra, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
		require.Zero(t, errno)
		merged := mappingSize(t, b.base())
		got := b.scan(t)
		if backend == "soft-dirty" {
			require.Equal(t, before+extra, merged, "the new mapping merged with the buffer")
			assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got, "the merge marked every page with data")
		} else {
			assert.Equal(t, before, merged, "a registered mapping does not merge")
			assert.Empty(t, got)
		}
		assert.Empty(t, b.scan(t), "the next scan is exact again")
	})
}

// mremap moves pages with their soft-dirty bits, and sets them; uffd drops
// the registration of a moved mapping (no UFFD_FEATURE_EVENT_REMAP), so the
// tracker registers it anew. Either way the moved pages with data count as
// written at their new address, once.
func TestSoftDirtyMremap(t *testing.T) {
	const size = 83 << 20
	ps := os.Getpagesize()
	forSelfBackends(t, func(t *testing.T, backend string) {
		b := startSelf(t, backend, size, 0, func(buf []byte) {
			for p := 0; p < 10; p++ {
				buf[p*ps] = 1
			}
		})
		assert.Empty(t, b.scan(t))
		dst, err := unix.Mmap(-1, 0, size, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		require.NoError(t, err)
		to := uintptr(unsafe.Pointer(&dst[0]))
		r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(b.base()), size, size, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, to, 0)
		require.Zero(t, errno)
		require.Equal(t, to, r)
		b.buf = dst // the same address, now holding the moved pages
		t.Cleanup(func() { unix.Munmap(b.buf) })
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, b.scan(t), "moved pages count as written where they are now")
		b.buf[11*ps] = 1
		assert.Equal(t, []int{11}, b.scan(t), "and are tracked there")
	})
}

// mappingSize is the size of the mapping holding addr in /proc/self/maps.
func mappingSize(t *testing.T, addr uint64) uint64 {
	ms, err := readMaps(os.Getpid())
	require.NoError(t, err)
	for _, m := range ms {
		if addr >= m.Start && addr < m.End {
			return m.End - m.Start
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return 0
}
