package capture

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/microwiper/microwiper/tracefmt"
)

// probeSoftDirty tells whether the kernel tracks soft-dirty bits, by
// writing a page of our own and reading its bit back: without
// CONFIG_MEM_SOFT_DIRTY clear_refs accepts "4" but the bit never sets.
func probeSoftDirty() error {
	const notSupported = "backend soft-dirty: kernel built without CONFIG_MEM_SOFT_DIRTY (pagemap bit 55 never sets): use --backend uffd-wp-async (the default) or uffd-wp-sync: %w"
	ps := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("probe soft-dirty: %w", err)
	}
	defer unix.Munmap(mem)
	mem[0] = 1
	if err := os.WriteFile("/proc/self/clear_refs", []byte("4"), 0); err != nil {
		return fmt.Errorf(notSupported+" (write /proc/self/clear_refs: %v)", ErrNotSupported, err)
	}
	mem[0] = 2
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return fmt.Errorf("probe soft-dirty: %w", err)
	}
	defer f.Close()
	var b [8]byte
	addr := uintptr(unsafe.Pointer(&mem[0]))
	if _, err := f.ReadAt(b[:], int64(addr/uintptr(ps))*8); err != nil {
		return fmt.Errorf("probe soft-dirty: read pagemap: %w", err)
	}
	e, _ := DecodePagemap(b[:])
	if !e[0].SoftDirty() {
		return fmt.Errorf(notSupported, ErrNotSupported)
	}
	return nil
}

// softDirtyTracker is the soft-dirty backend. Each epoch it reads the
// pagemap entries of the captured ranges, then clears every soft-dirty bit
// of the process. Writes landing between the read and the clear are missed:
// soft-dirty has no atomic read-and-clear.
type softDirtyTracker struct {
	pid     int
	pagemap io.ReaderAt
	closer  io.Closer
	maps    func() ([]Mapping, error)
	refs    string
	idx     *Index
	filter  Filter
	known   spanSet
	initial []int64
	out     []int64
	buf     []byte
	pageSz  uint64
	log     *slog.Logger
	data    dataPages // softdirty_data_linux.go
	frz     *freezer  // softdirty_freeze_linux.go; nil: scans run unfrozen
}

func newSoftDirtyTracker(pid int, opts TrackerOptions, log *slog.Logger) (*softDirtyTracker, error) {
	if err := probeSoftDirty(); err != nil {
		return nil, err
	}
	if len(opts.Filter.Ranges) > 0 {
		return nil, fmt.Errorf("backend soft-dirty captures whole mappings, not address ranges (a VM's RAM blocks): use --backend uffd-wp-async: %w", ErrNotSupported)
	}
	name := fmt.Sprintf("/proc/%d/pagemap", pid)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, procErr(err))
	}
	ps := uint64(os.Getpagesize())
	t := &softDirtyTracker{pid: pid, pagemap: f, closer: f, maps: func() ([]Mapping, error) { return readMaps(pid) }, refs: fmt.Sprintf("/proc/%d/clear_refs", pid), idx: NewIndex(ps),
		filter: opts.Filter, pageSz: ps, buf: make([]byte, 8<<16), log: log, frz: newFreezer(pid, log)}
	if err := t.frz.do(func() error { _, err := t.scan(true); return err }); err != nil {
		t.Close()
		return nil, err
	}
	t.initial = append(t.initial, t.out...)
	return t, nil
}

func (t *softDirtyTracker) Backend() string  { return tracefmt.BackendSoftDirty }
func (t *softDirtyTracker) Initial() []int64 { return t.initial }
func (t *softDirtyTracker) Index() *Index    { return t.idx }
func (t *softDirtyTracker) Close() error {
	if t.frz != nil {
		t.frz.close()
	}
	return t.closer.Close()
}

func (t *softDirtyTracker) Scan() (Scan, error) {
	var grew bool
	scan := func() (err error) { grew, err = t.scan(false); return err }
	var err error
	if t.frz != nil {
		err = t.frz.do(scan)
	} else {
		err = scan()
	}
	return Scan{Pages: t.out, Grew: grew}, err
}

// scan reads the entries of every eligible range: at the start, the pages
// holding data; later, the soft-dirty pages, and every page holding data in
// a range not seen before.
func (t *softDirtyTracker) scan(initial bool) (bool, error) {
	ms, err := t.maps()
	if err != nil {
		return false, err
	}
	t.out = t.out[:0]
	t.data.begin()
	grew := false
	var alive spanSet
	for _, m := range ms {
		if !t.filter.Eligible(m) {
			continue
		}
		s := span{m.Start, m.End}
		alive = alive.add(s)
		// Pages of the mapping not seen before (a new mapping, or a grown
		// heap's new part) count when they hold data.
		var fresh spanSet
		for _, f := range t.known.minus(s) {
			fresh = fresh.add(f)
		}
		if t.idx.Cover(m) {
			grew = true
		}
		for a := s.start; a < s.end; {
			n := min((s.end-a)/t.pageSz, uint64(len(t.buf)/8))
			b := t.buf[:n*8]
			if _, err := t.pagemap.ReadAt(b, int64(a/t.pageSz*8)); err != nil {
				return grew, fmt.Errorf("read /proc/%d/pagemap at %#x: %w", t.pid, a, procErr(err))
			}
			es, _ := DecodePagemap(b)
			for i, e := range es {
				addr := a + uint64(i)*t.pageSz
				isNew := initial || fresh.contains(addr)
				// Only pages holding data: a mapping new or grown since
				// the last clear is soft-dirty as a whole (VM_SOFTDIRTY),
				// its untouched pages included. Discards: t.data.
				has := t.data.has(addr, e)
				if has && (isNew || e.SoftDirty()) {
					if p, ok := t.idx.Page(addr); ok {
						t.out = append(t.out, p)
					}
				}
			}
			a += n * t.pageSz
		}
	}
	t.known = alive
	for _, addr := range t.data.discarded(alive) {
		if p, ok := t.idx.Page(addr); ok {
			t.out = append(t.out, p)
		}
	}
	if err := os.WriteFile(t.refs, []byte("4"), 0); err != nil {
		return grew, fmt.Errorf("clear soft-dirty bits (%s): %w", t.refs, procErr(err))
	}
	slices.Sort(t.out)
	t.out = slices.Compact(t.out)
	return grew, nil
}
