package capture

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// selfTracker tracks this test process through a userfaultfd made here, so
// the kernel semantics can be checked step by step without a second
// process. Async mode never blocks a writer, so tracking ourselves is safe.
func selfTracker(t *testing.T, size int, before func(buf []byte)) (*uffdTracker, []byte) {
	t.Helper()
	needUffdWP(t, "uffd-wp-async")
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Munmap(buf) })
	if before != nil {
		before(buf)
	}
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	require.Zero(t, errno)
	// Only mappings of exactly this size: the buffer, not the Go heap.
	opts := TrackerOptions{Filter: Filter{MinBytes: uint64(size)}}
	tr, err := newUffdTracker(os.Getpid(), int(fd), false, opts, logger(nil))
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr, buf
}

// bufPages returns the buffer pages (0-based) among dense pages.
func bufPages(tr *uffdTracker, buf []byte, dense []int64) []int {
	base := uint64(uintptr(unsafe.Pointer(&buf[0])))
	var out []int
	for _, p := range dense {
		for _, r := range tr.idx.Regions() {
			if p >= r.FirstPage && p < r.FirstPage+r.Pages {
				a := r.StartAddr + uint64(p-r.FirstPage)*tr.pageSz
				if a >= base && a < base+uint64(len(buf)) {
					out = append(out, int((a-base)/tr.pageSz))
				}
			}
		}
	}
	return out
}

func scanBuf(t *testing.T, tr *uffdTracker, buf []byte) []int {
	t.Helper()
	sc, err := tr.Scan()
	require.NoError(t, err)
	return bufPages(tr, buf, sc.Pages)
}

func TestSelfAsyncSemantics(t *testing.T) {
	const size = 97 << 20 // an odd size no other mapping has
	ps := os.Getpagesize()
	tr, buf := selfTracker(t, size, func(buf []byte) {
		buf[3*ps] = 1
		buf[4*ps] = 1
		touchSink += buf[6*ps] // a read maps the shared zero page: still a zero page
	})
	assert.Equal(t, []int{3, 4}, bufPages(tr, buf, tr.Initial()), "initial image: the pages holding data")
	assert.Empty(t, scanBuf(t, tr, buf))

	buf[5*ps] = 1
	buf[20*ps+100] = 1
	buf[21*ps-1] = 1 // last byte of page 20
	assert.Equal(t, []int{5, 20}, scanBuf(t, tr, buf))
	assert.Empty(t, scanBuf(t, tr, buf), "pages are protected again after a scan")

	touchSink += buf[7*ps] // a read is not a write
	assert.Empty(t, scanBuf(t, tr, buf))

	buf[5*ps] = 2
	assert.Equal(t, []int{5}, scanBuf(t, tr, buf))

	// MADV_DONTNEED on written-then-protected pages: the content becomes
	// zero, which a migration destination must learn.
	require.NoError(t, unix.Madvise(buf[5*ps:6*ps], unix.MADV_DONTNEED))
	got := scanBuf(t, tr, buf)
	t.Logf("after MADV_DONTNEED of page 5: scan reports %v", got)
	assert.Equal(t, []int{5}, got, "a discarded page reads as written")
	assert.Empty(t, scanBuf(t, tr, buf))
}

func TestSelfNewMapping(t *testing.T) {
	const size = 93 << 20
	ps := os.Getpagesize()
	tr, _ := selfTracker(t, size, nil)
	before := tr.idx.Pages()
	// A mapping made after the start: the pages written before the next
	// scan registers it count as written at that scan.
	buf2, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	defer unix.Munmap(buf2)
	buf2[2*ps] = 1
	sc, err := tr.Scan()
	require.NoError(t, err)
	assert.True(t, sc.Grew)
	assert.Equal(t, before+int64(size/ps), tr.idx.Pages(), "the new mapping got indexes after the old ones")
	assert.Equal(t, []int{2}, bufPages(tr, buf2, sc.Pages))
	buf2[9*ps] = 1
	assert.Equal(t, []int{9}, scanBuf(t, tr, buf2))

	// Unmapped: no longer scanned, indexes kept.
	require.NoError(t, unix.Munmap(buf2))
	sc, err = tr.Scan()
	require.NoError(t, err)
	assert.Empty(t, bufPages(tr, buf2, sc.Pages))
	assert.Equal(t, before+int64(size/ps), tr.idx.Pages())
}

func TestSelfHugePage(t *testing.T) {
	const size = 91 << 20
	ps := os.Getpagesize()
	huge := 0
	tr, buf := selfTracker(t, size, func(buf []byte) {
		// 2 MiB-aligned part of the buffer, backed by a huge page if THP allows.
		if err := unix.Madvise(buf, unix.MADV_HUGEPAGE); err != nil {
			t.Skipf("MADV_HUGEPAGE: %v", err)
		}
		for i := 0; i < len(buf); i += ps {
			buf[i] = 1
		}
		huge = anonHugeKB(t, uint64(uintptr(unsafe.Pointer(&buf[0]))))
	})
	t.Logf("buffer has %d KiB of huge pages before capture", huge)
	if huge == 0 {
		t.Skip("needs transparent huge pages (THP enabled=madvise or always)")
	}
	assert.Len(t, bufPages(tr, buf, tr.Initial()), size/ps)
	assert.Empty(t, scanBuf(t, tr, buf))
	buf[1000*ps+7] = 2
	buf[3000*ps] = 2
	assert.Equal(t, []int{1000, 3000}, scanBuf(t, tr, buf), "a write splits the huge page: 4 KiB precision")
	assert.Empty(t, scanBuf(t, tr, buf))
}

func anonHugeKB(t *testing.T, addr uint64) int {
	b, err := os.ReadFile("/proc/self/smaps")
	require.NoError(t, err)
	var in bool
	kb := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			a := strings.SplitN(f[0], "-", 2)
			s, _ := strconv.ParseUint(a[0], 16, 64)
			e, _ := strconv.ParseUint(a[1], 16, 64)
			in = addr >= s && addr < e
		}
		if in && len(f) > 1 && f[0] == "AnonHugePages:" {
			kb, _ = strconv.Atoi(f[1])
		}
	}
	return kb
}

func TestMissingFeatureMessages(t *testing.T) {
	err := checkFeatures("uffd-wp-async", uffdFeatures(false), uffdFeatureWPUnpopulated)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotSupported)
	assert.Contains(t, err.Error(), "UFFD_FEATURE_WP_ASYNC")
	assert.Contains(t, err.Error(), "try --backend uffd-wp-sync")

	err = checkFeatures("uffd-wp-sync", uffdFeatureWPUnpopulated|uffdFeaturePagefaultFlagWP, uffdFeaturePagefaultFlagWP)
	assert.ErrorContains(t, err, "UFFD_FEATURE_WP_UNPOPULATED")
	assert.ErrorContains(t, err, "try --backend soft-dirty")

	assert.NoError(t, checkFeatures("uffd-wp-async", uffdFeatures(false), ^uint64(0)))
	assert.ErrorContains(t, missingFeature("uffd-wp-async", "the PAGEMAP_SCAN ioctl"), "lacks the PAGEMAP_SCAN ioctl")
}
