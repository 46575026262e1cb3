package capture

import (
	"fmt"
	"os"
	"unsafe"
)

// pageScanner runs PAGEMAP_SCAN on one process's pagemap.
type pageScanner struct {
	f   *os.File
	vec []pageRegion
	raw []byte // pagemap entries, without PAGEMAP_SCAN
}

func openPageScanner(pid int) (*pageScanner, error) {
	name := fmt.Sprintf("/proc/%d/pagemap", pid)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, procErr(err))
	}
	// Small: a process tree opens one per process. A scan that finds more
	// runs than fit goes on from where the kernel stopped (WalkEnd).
	return &pageScanner{f: f, vec: make([]pageRegion, 512)}, nil
}

func (s *pageScanner) Close() error { return s.f.Close() }

// scanQuery is one PAGEMAP_SCAN request, minus the range and buffer.
type scanQuery struct {
	flags, inverted, mask, anyOf, ret uint64
}

var (
	// written: the pages written since they were last protected; protects
	// them again. Fails with EPERM if the range holds a mapping not
	// registered with async write protection.
	queryWritten = scanQuery{flags: pmScanWPMatching | pmScanCheckWPAsync, mask: pageIsWritten, ret: pageIsWritten}
	// holding data: present or swapped, and not the shared zero page. Only
	// before a range is write-protected: protecting an empty page installs
	// a marker that PAGEMAP_SCAN reports as swapped.
	queryData = scanQuery{inverted: pageIsPFNZero, mask: pageIsPFNZero, anyOf: pageIsPresent | pageIsSwapped, ret: pageIsPresent | pageIsSwapped}
	// present, and not the shared zero page.
	queryPresent = scanQuery{inverted: pageIsPFNZero, mask: pageIsPFNZero | pageIsPresent, ret: pageIsPresent}
)

// scan calls fn for every run [start, end) of matching pages in [start, end).
func (s *pageScanner) scan(q scanQuery, start, end uint64, fn func(start, end uint64)) error {
	if !KernelFeatures().PagemapScan {
		return s.scanPagemap(q, start, end, fn)
	}
	for start < end {
		arg := pmScanArg{
			Size: uint64(unsafe.Sizeof(pmScanArg{})), Flags: q.flags, Start: start, End: end,
			Vec: uint64(uintptr(unsafe.Pointer(&s.vec[0]))), VecLen: uint64(len(s.vec)),
			CategoryInverted: q.inverted, CategoryMask: q.mask, CategoryAnyOf: q.anyOf, ReturnMask: q.ret,
		}
		n, err := ioctlPtr(int(s.f.Fd()), pagemapScan, unsafe.Pointer(&arg))
		if err != nil {
			return err
		}
		for _, r := range s.vec[:n] {
			fn(r.Start, r.End)
		}
		if arg.WalkEnd <= start || arg.WalkEnd >= end {
			return nil
		}
		start = arg.WalkEnd
	}
	return nil
}
