package capture

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernels before 6.7 have no PAGEMAP_SCAN, and kernels before 6.4 cannot
// write-protect pages never touched (WP_UNPOPULATED). The uffd-wp-sync
// backend still runs there (write protection of anonymous memory exists
// since 5.7) with the two fallbacks of this file:
//
//   - scanPagemap answers the presence queries (queryData, queryPresent)
//     by reading pagemap entries, 8 bytes a page, instead of one ioctl.
//     The shared zero page (a read of a never-written page maps it) is
//     recognised by its PFN, which pagemap shows only to CAP_SYS_ADMIN;
//     without it such pages count as holding data.
//   - firstTouch finds the pages that became present since the last scan:
//     a first write to a page that was never touched (or was discarded)
//     allocates it writable without any fault we can see, so presence is
//     the only trace it leaves. Those pages are reported with the scan's
//     time and protected from then on.

// zeroPFNs are the page frames of the shared zero page and the huge zero
// page (0 when unknown).
type zeroPFNs struct {
	small, huge uint64
}

var (
	zeroOnce sync.Once
	zeroPFN  zeroPFNs
)

// probeZeroPFNs maps a page, reads it (which maps the zero page) and reads
// the PFN back; the same for a 2 MiB-aligned huge page, which maps the
// huge zero page when transparent huge pages are on.
func probeZeroPFNs() zeroPFNs {
	zeroOnce.Do(func() {
		f, err := os.Open("/proc/self/pagemap")
		if err != nil {
			return
		}
		defer f.Close()
		pfnAt := func(addr uintptr) uint64 {
			var b [8]byte
			if _, err := f.ReadAt(b[:], int64(addr/uintptr(os.Getpagesize()))*8); err != nil {
				return 0
			}
			e, _ := DecodePagemap(b[:])
			if !e[0].Present() {
				return 0
			}
			return e[0].PFN()
		}
		const huge = 2 << 20
		mem, err := unix.Mmap(-1, 0, 2*huge, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return
		}
		defer unix.Munmap(mem)
		base := uintptr(unsafe.Pointer(&mem[0]))
		off := int((huge - base%huge) % huge)
		unix.Madvise(mem[off:off+huge], unix.MADV_HUGEPAGE)
		// Loads the compiler cannot drop: each maps a zero page.
		touchSink += mem[off] + mem[len(mem)-1] + mem[0]
		zeroPFN.huge = pfnAt(base + uintptr(off))
		small := pfnAt(base + uintptr(len(mem)-1))
		if off != 0 {
			small = pfnAt(base)
		}
		zeroPFN.small = small
		if zeroPFN.huge == zeroPFN.small {
			zeroPFN.huge = 0
		}
	})
	return zeroPFN
}

// touchSink keeps reads of memory from being optimised away.
var touchSink byte

func (z zeroPFNs) isZero(pfn uint64) bool {
	if pfn == 0 {
		return false
	}
	return pfn == z.small || z.huge != 0 && pfn >= z.huge && pfn < z.huge+512
}

// scanPagemap is pageScanner.scan for kernels without PAGEMAP_SCAN. It
// evaluates the present, swapped and zero-page categories only.
func (s *pageScanner) scanPagemap(q scanQuery, start, end uint64, fn func(start, end uint64)) error {
	if q.flags != 0 || (q.mask|q.anyOf|q.inverted)&^(pageIsPresent|pageIsSwapped|pageIsPFNZero) != 0 {
		return fmt.Errorf("page query %+v needs PAGEMAP_SCAN (Linux 6.7): %w", q, ErrNotSupported)
	}
	ps := uint64(os.Getpagesize())
	z := probeZeroPFNs()
	if s.raw == nil {
		s.raw = make([]byte, 8<<13)
	}
	runStart, inRun := uint64(0), false
	for a := start; a < end; {
		n := min((end-a)/ps, uint64(len(s.raw)/8))
		b := s.raw[:n*8]
		if _, err := s.f.ReadAt(b, int64(a/ps*8)); err != nil {
			return fmt.Errorf("read pagemap at %#x: %w", a, procErr(err))
		}
		es, _ := DecodePagemap(b)
		for i, e := range es {
			var cat uint64
			if e.Present() {
				cat |= pageIsPresent
				if z.isZero(e.PFN()) {
					cat |= pageIsPFNZero
				}
			}
			if e.Swapped() {
				cat |= pageIsSwapped
			}
			c := cat ^ q.inverted
			match := c&q.mask == q.mask && (q.anyOf == 0 || c&q.anyOf != 0)
			addr := a + uint64(i)*ps
			switch {
			case match && !inRun:
				runStart, inRun = addr, true
			case !match && inRun:
				fn(runStart, addr)
				inRun = false
			}
		}
		a += n * ps
	}
	if inRun {
		fn(runStart, end)
	}
	return nil
}

// firstTouch tracks, for the sync backend before Linux 6.4, the runs of
// pages present at the last scan.
type firstTouch struct {
	present spanSet
	now     spanSet
}

// seed adds the pages present in s now, before s is protected: a page that
// becomes present later is a first touch.
func (ft *firstTouch) seed(ps *pageScanner, s span) error {
	return ps.scan(queryPresent, s.start, s.end, func(a, b uint64) {
		ft.present = ft.present.add(span{a, b})
	})
}

// newPages returns the runs of pages present now in the registered ranges
// and not at the last call, and remembers the present set. A page
// discarded and touched again counts as new.
func (ft *firstTouch) newPages(ps *pageScanner, ranges spanSet) ([]span, error) {
	ft.now = ft.now[:0]
	for _, s := range ranges {
		// ranges are ascending and disjoint, and so are the runs.
		if err := ps.scan(queryPresent, s.start, s.end, func(a, b uint64) {
			if n := len(ft.now); n > 0 && ft.now[n-1].end == a {
				ft.now[n-1].end = b
				return
			}
			ft.now = append(ft.now, span{a, b})
		}); err != nil {
			return nil, err
		}
	}
	var fresh []span
	for _, r := range ft.now {
		fresh = append(fresh, ft.present.minus(r)...)
	}
	ft.present, ft.now = ft.now, ft.present
	return fresh, nil
}

// scanFirstTouches adds the sync tracker's first touches since the last
// scan to pending and protects them.
func (t *uffdTracker) scanFirstTouches() error {
	if t.first == nil {
		return nil
	}
	fresh, err := t.first.newPages(t.ps, t.registered)
	if err != nil {
		return fmt.Errorf("find first touches of pid %d: %w", t.pid, err)
	}
	for _, s := range fresh {
		if err := t.protect(s); err != nil {
			if _, gone := readMaps(t.pid); gone != nil {
				return gone
			}
			return err
		}
		t.pending = t.appendPages(t.pending, s.start, s.end)
	}
	return nil
}
