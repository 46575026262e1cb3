package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"golang.org/x/sys/unix"
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
		m := mem(reg.PID, false)
		if m != nil {
			if _, err := m.ReadAt(b, addr); err == nil {
				ok = true
			} else if m = mem(reg.PID, true); m != nil {
				_, err = m.ReadAt(b, addr)
				ok = err == nil
			}
		}
		for k := i; k < j; k++ {
			off := int64(k-i) * ps
			page := b[off : off+ps]
			if !ok && m != nil && j-i > 1 {
				// One unreadable page fails the whole run: read the
				// run's pages one by one.
				_, err := m.ReadAt(page, addr+off)
				zero[k] = err == nil && allZero(page)
			} else {
				zero[k] = ok && allZero(page)
			}
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
// written hold only zeros (Options.ZeroWrites). Written pages are mostly
// scattered and mostly hold data, so reading each whole (one pread of
// /proc/PID/mem a page) would cost a system call and a 4 KiB copy per
// page. Instead process_vm_readv reads the first prefixBytes of up to
// maxIov pages in one call; only the pages whose prefix is zero are read
// whole, in a second batched call. Both are reads: the target is never
// written.
type writeZeros struct {
	pid    int
	m      *procMem // fallback where process_vm_readv is refused
	noVM   bool
	mask   []bool
	owner  []int // per page: the pid holding it, -1 when it cannot be read
	addr   []uint64
	cand   []int // pages whose prefix is zero
	prefix []byte
	full   []byte
	local  []unix.Iovec
	remote []unix.RemoteIovec
	buf    []byte // fallback read buffer
}

const (
	// prefixBytes is read of every page first: data pages rarely start
	// with 64 zero bytes.
	prefixBytes = 64
	// maxIov is the kernel's limit on iovecs per call (UIO_MAXIOV).
	maxIov = 1024
	// fullPages bounds a batch of whole-page reads (1 MiB of 4 KiB pages).
	fullPages = 256
)

func newWriteZeros(pid int) *writeZeros {
	return &writeZeros{pid: pid, m: newProcMem(pid), prefix: make([]byte, maxIov*prefixBytes),
		local: make([]unix.Iovec, maxIov), remote: make([]unix.RemoteIovec, maxIov)}
}

// check returns zero flags parallel to pages (valid until the next call)
// and how many are set.
func (z *writeZeros) check(idx *Index, pages []int64) ([]bool, int) {
	if cap(z.mask) < len(pages) {
		z.mask = make([]bool, len(pages))
		z.owner = make([]int, len(pages))
		z.addr = make([]uint64, len(pages))
	}
	z.mask, z.owner, z.addr = z.mask[:len(pages)], z.owner[:len(pages)], z.addr[:len(pages)]
	if z.noVM {
		if z.buf == nil {
			z.buf = make([]byte, 1<<20)
		}
		return z.mask, zeroCheck(z.m.mem, idx, pages, z.buf, z.mask)
	}
	ps := int(idx.PageSize())
	if z.full == nil || len(z.full) != fullPages*ps {
		z.full = make([]byte, fullPages*ps)
	}
	z.locate(idx, pages)
	// Prefixes: runs of pages of one process, maxIov at a time.
	z.cand = z.cand[:0]
	for i := 0; i < len(pages); {
		if z.owner[i] < 0 {
			z.mask[i] = false
			i++
			continue
		}
		j := i + 1
		for j < len(pages) && j-i < maxIov && z.owner[j] == z.owner[i] {
			j++
		}
		got := z.read(z.owner[i], z.addr[i:j], prefixBytes, z.prefix)
		if got < 0 {
			// process_vm_readv refused (no such call, or a policy forbids
			// it): read through /proc/PID/mem from now on.
			z.noVM = true
			return z.check(idx, pages)
		}
		for k := i; k < j; k++ {
			z.mask[k] = false
			off := (k - i) * prefixBytes
			if k-i < got && allZero(z.prefix[off:off+prefixBytes]) {
				z.cand = append(z.cand, k)
			}
		}
		// A page that could not be read ends the call's transfer: the
		// pages after it are read by the next call.
		if got < j-i {
			z.owner[i+got] = -1
			j = i + got + 1
		}
		i = j
	}
	// Whole pages, for the candidates only.
	n := 0
	for c := 0; c < len(z.cand); {
		k0 := z.cand[c]
		d := c + 1
		for d < len(z.cand) && d-c < fullPages && z.owner[z.cand[d]] == z.owner[k0] {
			d++
		}
		addrs := z.cand[c:d]
		// One local buffer, filled in order; adjacent pages are one
		// remote range.
		remote := z.remote[:0]
		for x, k := range addrs {
			if x > 0 && z.addr[k] == z.addr[addrs[x-1]]+uint64(ps) {
				remote[len(remote)-1].Len += ps
				continue
			}
			remote = append(remote, unix.RemoteIovec{Base: uintptr(z.addr[k]), Len: ps})
		}
		local := z.local[:1]
		local[0] = unix.Iovec{Base: &z.full[0]}
		local[0].SetLen(len(addrs) * ps)
		got := readv(z.owner[k0], local, remote, ps)
		for x, k := range addrs {
			if x < got && allZero(z.full[x*ps:(x+1)*ps]) {
				z.mask[k] = true
				n++
			}
		}
		if got < len(addrs) {
			d = c + max(got, 0) + 1
		}
		c = d
	}
	return z.mask, n
}

// locate finds each page's process and address; pages outside every
// region, or in a region whose address space ended, get owner -1.
func (z *writeZeros) locate(idx *Index, pages []int64) {
	ps := int64(idx.PageSize())
	regions := idx.Regions()
	r := -1
	for k, p := range pages {
		if r < 0 || p < regions[r].FirstPage || p >= regions[r].FirstPage+regions[r].Pages {
			r = sort.Search(len(regions), func(i int) bool { return regions[i].FirstPage+regions[i].Pages > p })
			if r == len(regions) || p < regions[r].FirstPage {
				r = -1
				z.owner[k] = -1
				continue
			}
		}
		reg := regions[r]
		pid := reg.PID
		if pid == 0 {
			pid = z.pid
		}
		if reg.ExitNS > 0 || pid <= 0 {
			z.owner[k] = -1
			continue
		}
		z.owner[k] = pid
		z.addr[k] = reg.StartAddr + uint64((p-reg.FirstPage)*ps)
	}
}

// read reads size bytes at each of addrs of process pid into dst, back to
// back, and returns how many entries were read whole; -1 when the call is
// refused altogether.
func (z *writeZeros) read(pid int, addrs []uint64, size int, dst []byte) int {
	remote := z.remote[:len(addrs)]
	for x, a := range addrs {
		remote[x] = unix.RemoteIovec{Base: uintptr(a), Len: size}
	}
	local := z.local[:1]
	local[0] = unix.Iovec{Base: &dst[0]}
	local[0].SetLen(len(addrs) * size)
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	switch {
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		return -1
	case err != nil || n < 0:
		return 0
	}
	return n / size
}

// readv is one process_vm_readv call; it returns how many entries of size
// bytes were transferred whole (0 on any error: the first entry failed,
// or the process is gone).
func readv(pid int, local []unix.Iovec, remote []unix.RemoteIovec, size int) int {
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil || n < 0 {
		return 0
	}
	return n / size
}

func (z *writeZeros) close() { z.m.close() }
