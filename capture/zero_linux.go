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

// dropZeroPages returns the pages of pages (ascending dense indexes) whose
// content is not all zero, reading runs of adjacent pages at a time from
// the memory of the process that holds each region (mem(pid); pid 0 for a
// region of the target process itself). A page present in the page tables
// may hold only zeros: a transparent huge page is present as a whole, while
// the guest or program wrote only part of it. A migration that checks
// content (QEMU) sends those as zero pages. Pages that cannot be read are
// kept.
func dropZeroPages(mem func(pid int) io.ReaderAt, idx *Index, pages []int64) (kept []int64, zero int) {
	ps := int64(idx.PageSize())
	regions := idx.Regions()
	buf := make([]byte, 1<<20)
	kept = make([]int64, 0, len(pages))
	for i := 0; i < len(pages); {
		p := pages[i]
		r := sort.Search(len(regions), func(k int) bool { return regions[k].FirstPage+regions[k].Pages > p })
		if r == len(regions) || p < regions[r].FirstPage {
			kept = append(kept, p)
			i++
			continue
		}
		reg := regions[r]
		// The run: adjacent pages in the same region, at most len(buf).
		j := i + 1
		for j < len(pages) && pages[j] == pages[j-1]+1 && pages[j] < reg.FirstPage+reg.Pages && int64(j-i)*ps < int64(len(buf)) {
			j++
		}
		addr := reg.StartAddr + uint64((p-reg.FirstPage)*ps)
		b := buf[:int64(j-i)*ps]
		m := mem(reg.PID)
		if m == nil {
			kept = append(kept, pages[i:j]...)
			i = j
			continue
		}
		if _, rerr := m.ReadAt(b, int64(addr)); rerr != nil {
			// Unmapped since the scan, or not readable: keep the pages; the
			// error says nothing about their content.
			kept = append(kept, pages[i:j]...)
			i = j
			continue
		}
		for k := i; k < j; k++ {
			off := int64(k-i) * ps
			if allZero(b[off : off+ps]) {
				zero++
			} else {
				kept = append(kept, pages[k])
			}
		}
		i = j
	}
	return kept, zero
}

// nonZeroInitial drops the all-zero pages from the initial image of a
// capture of process pid (and, in a process tree, of the processes its
// regions name).
func nonZeroInitial(pid int, idx *Index, pages []int64) ([]int64, int, error) {
	files := map[int]*os.File{}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	mem := func(p int) io.ReaderAt {
		if p == 0 {
			p = pid
		}
		if p <= 0 {
			return nil
		}
		f, ok := files[p]
		if !ok {
			f, _ = os.Open(fmt.Sprintf("/proc/%d/mem", p))
			files[p] = f
		}
		if f == nil {
			return nil
		}
		return f
	}
	// A process that is gone (a short command already exited) keeps its
	// pages; the capture loop reports its exit.
	kept, zero := dropZeroPages(mem, idx, pages)
	return kept, zero, nil
}
