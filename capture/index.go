package capture

import (
	"fmt"
	"sort"
	"sync"

	"github.com/microwiper/microwiper/tracefmt"
)

// Index maps the captured memory to a dense page space [0, Pages()).
// Indexes are handed out in the order ranges are first seen and never move,
// so a trace's page numbers stay valid while mappings and processes come and
// go: a new range gets the next free indexes (extending the last region when
// it continues it, as a growing heap does), and a range mapped again at an
// address seen before gets its old indexes back.
//
// Memory lives in spaces: the private memory of one address space (one
// process between its start or exec and its exit or next exec), addressed
// by virtual address; or one shared memory object (shared anonymous memory,
// SysV or POSIX shm, a memfd), addressed by its offset in the object, so that
// every process mapping the object, at whatever address, names the same
// pages. Cover, Page and Append work on the default space, the only one of a
// single-process tracker.
type Index struct {
	// mu orders the changes a process follower makes with the reads of
	// Pages and Regions by the trace writer.
	mu       sync.Mutex
	pageSize uint64
	regions  []tracefmt.Region // in dense order
	coord    []uint64          // each region's first page in its space's coordinates
	key      []spaceKey        // each region's space
	spaces   map[spaceKey]*space
	pages    int64
}

// spaceKey names a space: asid for private memory, dev and ino for a shared
// object (asid 0).
type spaceKey struct {
	asid     uint64
	dev, ino uint64
}

func (k spaceKey) shared() bool { return k.asid == 0 && k.ino != 0 }

// object is the Region.Object name of a shared space.
func (k spaceKey) object() string {
	if !k.shared() {
		return ""
	}
	return fmt.Sprintf("shmem:%d:%d:%d", k.dev>>20, k.dev&(1<<20-1), k.ino)
}

// owner says which process a space's regions belong to.
type owner struct {
	pid  int
	comm string
}

type space struct {
	owner  owner
	byAddr []int // indexes into regions, sorted by coordinate
}

// NewIndex returns an empty index for pages of pageSize bytes.
func NewIndex(pageSize uint64) *Index {
	return &Index{pageSize: pageSize, spaces: map[spaceKey]*space{}}
}

// PageSize is the page size in bytes.
func (x *Index) PageSize() uint64 { return x.pageSize }

// Pages is the size of the dense space.
func (x *Index) Pages() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.pages
}

// Regions returns a copy of the region table, sorted by first page.
func (x *Index) Regions() []tracefmt.Region {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]tracefmt.Region(nil), x.regions...)
}

// Cover gives every page of m an index in the default space and reports
// whether the dense space grew.
func (x *Index) Cover(m Mapping) bool { return x.cover(spaceKey{}, owner{}, m, m.Start, m.End, 0) }

// Page returns the index of the default space's page holding addr.
func (x *Index) Page(addr uint64) (int64, bool) { return x.page(spaceKey{}, addr) }

// Append appends the indexes of the default space's pages of [start, end)
// to dst. Pages without an index are skipped.
func (x *Index) Append(dst []int64, start, end uint64) []int64 {
	return x.appendRange(dst, spaceKey{}, start, end)
}

func (x *Index) end(i int) uint64 { return x.coord[i] + uint64(x.regions[i].Pages)*x.pageSize }

func (x *Index) space(k spaceKey, o owner) *space {
	s := x.spaces[k]
	if s == nil {
		s = &space{owner: o}
		x.spaces[k] = s
	}
	return s
}

// find returns the position in s.byAddr of the first region ending after c.
func (x *Index) find(s *space, c uint64) int {
	return sort.Search(len(s.byAddr), func(i int) bool { return x.end(s.byAddr[i]) > c })
}

// cover gives the pages [start, end) of space k (in its coordinates) an
// index. m is the mapping they were seen in, and addr = coordinate + delta
// there.
func (x *Index) cover(k spaceKey, o owner, m Mapping, start, end, delta uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	start, end = start&^(x.pageSize-1), (end+x.pageSize-1)&^(x.pageSize-1)
	s := x.space(k, o)
	grew := false
	a := start
	i := x.find(s, start)
	for a < end {
		next := end
		if i < len(s.byAddr) {
			r := s.byAddr[i]
			if x.coord[r] <= a {
				a = x.end(r)
				i++
				continue
			}
			next = min(next, x.coord[r])
		}
		x.add(k, s, a, next, m, delta)
		grew = true
		// add inserted or extended a region ending at next; re-find our place.
		i = x.find(s, next)
		a = next
	}
	return grew
}

// layout gives the ranges indexes in space k (private memory addressed by
// virtual address), in the order given, before any mapping is seen, and
// names their regions after them.
func (x *Index) layout(k spaceKey, o owner, rs []Range) {
	for _, r := range rs {
		x.mu.Lock()
		first := len(x.regions)
		x.mu.Unlock()
		x.cover(k, o, Mapping{Start: r.Start, End: r.End, Perms: "rw-p", Path: r.Block}, r.Start, r.End, 0)
		x.mu.Lock()
		for i := first; i < len(x.regions); i++ {
			x.regions[i].RAMBlock = r.Block
			x.regions[i].RAMOffset = r.Offset + (x.regions[i].StartAddr - r.Start)
		}
		x.mu.Unlock()
	}
}

// add gives [start, end) of space k new indexes.
func (x *Index) add(k spaceKey, s *space, start, end uint64, m Mapping, delta uint64) {
	n := int64((end - start) / x.pageSize)
	if last := len(x.regions) - 1; last >= 0 {
		r := &x.regions[last]
		if x.key[last] == k && x.end(last) == start && r.Perms == m.Perms && r.Path == m.Path {
			r.Pages += n
			x.pages += n
			return
		}
	}
	r := tracefmt.Region{FirstPage: x.pages, Pages: n, StartAddr: start + delta, Perms: m.Perms, Path: m.Path,
		PID: s.owner.pid, Comm: s.owner.comm, Object: k.object()}
	if k.shared() {
		r.Offset = start
	}
	x.regions = append(x.regions, r)
	x.coord = append(x.coord, start)
	x.key = append(x.key, k)
	x.pages += n
	idx := len(x.regions) - 1
	j := sort.Search(len(s.byAddr), func(i int) bool { return x.coord[s.byAddr[i]] > start })
	s.byAddr = append(s.byAddr, 0)
	copy(s.byAddr[j+1:], s.byAddr[j:])
	s.byAddr[j] = idx
}

// fresh gives the page at address addr, which has an index in another
// space, a new one in space k, whose coordinates are addresses that may
// repeat (a page can leave a shared index more than once): its regions
// are found by exit only. Pages given in address order take one region.
func (x *Index) fresh(k spaceKey, o owner, perms, path string, addr uint64) int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := x.pages
	x.add(k, x.space(k, o), addr, addr+x.pageSize, Mapping{Perms: perms, Path: path}, 0)
	return p
}

// page returns the index of the page of space k holding coordinate c.
func (x *Index) page(k spaceKey, c uint64) (int64, bool) {
	s := x.spaces[k]
	if s == nil {
		return 0, false
	}
	i := x.find(s, c)
	if i == len(s.byAddr) {
		return 0, false
	}
	r := s.byAddr[i]
	if c < x.coord[r] {
		return 0, false
	}
	return x.regions[r].FirstPage + int64((c-x.coord[r])/x.pageSize), true
}

// appendRange appends the indexes of space k's pages of [start, end).
func (x *Index) appendRange(dst []int64, k spaceKey, start, end uint64) []int64 {
	s := x.spaces[k]
	if s == nil {
		return dst
	}
	for i := x.find(s, start); i < len(s.byAddr) && start < end; i++ {
		r := s.byAddr[i]
		if x.coord[r] >= end {
			break
		}
		a, b := max(start, x.coord[r]), min(end, x.end(r))
		first := x.regions[r].FirstPage + int64((a-x.coord[r])/x.pageSize)
		n := int64((b - a + x.pageSize - 1) / x.pageSize)
		for p := first; p < first+n; p++ {
			dst = append(dst, p)
		}
	}
	return dst
}

// exit marks the regions of space k as ended at tNS. It reports whether
// any region changed.
func (x *Index) exit(k spaceKey, tNS int64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.spaces[k]
	if s == nil {
		return false
	}
	changed := false
	for _, r := range s.byAddr {
		if x.regions[r].ExitNS == 0 {
			x.regions[r].ExitNS = max(tNS, 1)
			changed = true
		}
	}
	return changed
}
