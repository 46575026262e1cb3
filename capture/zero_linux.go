package capture

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
)

var zeroPage = make([]byte, 1<<16)

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// memOf returns the memory of the process that holds a region (pid 0: the
// target itself), nil when it cannot be opened. retry asks for a fresh
// handle after a read through the last one failed: a process that exec'd
// has a new address space, and a handle on /proc/PID/mem stays bound to
// the one it was opened on.
type memOf func(pid int, retry bool) io.ReaderAt

// zeroCheck reads pages (dense indexes, best ascending: adjacent pages are
// read together) and sets zero[k] when pages[k] holds only zeros; it
// returns how many do. A page that cannot be read (unmapped since the
// scan, its process gone, a region whose address space ended) is not
// zero: the error says nothing about its content. buf is the read buffer,
// a multiple of the page size.
func zeroCheck(mem memOf, idx *Index, pages []int64, buf []byte, zero []bool) (n int) {
	ps := int64(idx.PageSize())
	regions := idx.Regions()
	for i := 0; i < len(pages); {
		p := pages[i]
		r := sort.Search(len(regions), func(k int) bool { return regions[k].FirstPage+regions[k].Pages > p })
		if r == len(regions) || p < regions[r].FirstPage || regions[r].ExitNS > 0 {
			zero[i] = false
			i++
			continue
		}
		reg := regions[r]
		// The run: adjacent pages in the same region, at most len(buf).
		j := i + 1
		for j < len(pages) && pages[j] == pages[j-1]+1 && pages[j] < reg.FirstPage+reg.Pages && int64(j-i)*ps < int64(len(buf)) {
			j++
		}
		addr := int64(reg.StartAddr + uint64((p-reg.FirstPage)*ps))
		b := buf[:int64(j-i)*ps]
		ok := false
		if m := mem(reg.PID, false); m != nil {
			if _, err := m.ReadAt(b, addr); err == nil {
				ok = true
			} else if m = mem(reg.PID, true); m != nil {
				_, err = m.ReadAt(b, addr)
				ok = err == nil
			}
		}
		for k := i; k < j; k++ {
			off := int64(k-i) * ps
			zero[k] = ok && allZero(b[off:off+ps])
			if zero[k] {
				n++
			}
		}
		i = j
	}
	return n
}

// dropZeroPages returns the pages of pages (ascending dense indexes) whose
// content is not all zero. A page present in the page tables may hold
// only zeros: a transparent huge page is present as a whole, while the
// guest or program wrote only part of it. A migration that checks content
// (QEMU) sends those as zero pages. Pages that cannot be read are kept.
func dropZeroPages(mem memOf, idx *Index, pages []int64) (kept []int64, zero int) {
	mask := make([]bool, len(pages))
	zero = zeroCheck(mem, idx, pages, make([]byte, 1<<20), mask)
	kept = make([]int64, 0, len(pages)-zero)
	for k, p := range pages {
		if !mask[k] {
			kept = append(kept, p)
		}
	}
	return kept, zero
}

// procMem opens the memory of a capture's processes read-only through
// /proc/PID/mem and keeps each open between epochs. pid is the target,
// the process of regions that name none.
type procMem struct {
	pid   int
	files map[int]*os.File
}

func newProcMem(pid int) *procMem { return &procMem{pid: pid, files: map[int]*os.File{}} }

func (m *procMem) mem(p int, retry bool) io.ReaderAt {
	if p == 0 {
		p = m.pid
	}
	if p <= 0 {
		return nil
	}
	f, ok := m.files[p]
	if ok && !retry {
		if f == nil {
			return nil
		}
		return f
	}
	if f != nil {
		f.Close()
	}
	// A retry after a failed read may, in a rare race, open a new process
	// that took the PID of one that just exited; the pages it reads belong
	// to an address space that ended, whose region the tracker closes at
	// its next scan.
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", p))
	if err != nil {
		f = nil
	}
	m.files[p] = f
	if f == nil {
		return nil
	}
	return f
}

func (m *procMem) close() {
	for p, f := range m.files {
		if f != nil {
			f.Close()
		}
		delete(m.files, p)
	}
}

// nonZeroInitial drops the all-zero pages from the initial image of a
// capture of process pid (and, in a process tree, of the processes its
// regions name).
func nonZeroInitial(pid int, idx *Index, pages []int64) ([]int64, int, error) {
	m := newProcMem(pid)
	defer m.close()
	// A process that is gone (a short command already exited) keeps its
	// pages; the capture loop reports its exit.
	kept, zero := dropZeroPages(m.mem, idx, pages)
	return kept, zero, nil
}

// writeZeros checks, after each scan, which of the pages the scan reported
// written hold only zeros (Options.ZeroWrites).
type writeZeros struct {
	m    *procMem
	buf  []byte
	mask []bool
}

func newWriteZeros(pid int) *writeZeros {
	return &writeZeros{m: newProcMem(pid), buf: make([]byte, 1<<20)}
}

// check returns zero flags parallel to pages (valid until the next call)
// and how many are set.
func (z *writeZeros) check(idx *Index, pages []int64) ([]bool, int) {
	if cap(z.mask) < len(pages) {
		z.mask = make([]bool, len(pages))
	}
	z.mask = z.mask[:len(pages)]
	n := zeroCheck(z.m.mem, idx, pages, z.buf, z.mask)
	return z.mask, n
}

func (z *writeZeros) close() { z.m.close() }
