package capture

import (
	"sort"

	"github.com/microwiper/microwiper/tracefmt"
)

// Index maps the target's page addresses to a dense page space [0, Pages()).
// Indexes are handed out in the order address ranges are first seen and
// never move, so a trace's page numbers stay valid while mappings come and
// go: a new range gets the next free indexes (extending the last region when
// it continues it, as a growing heap does), and a range mapped again at an
// address seen before gets its old indexes back.
type Index struct {
	pageSize uint64
	regions  []tracefmt.Region // in dense order
	byAddr   []int             // indexes into regions, sorted by StartAddr
	pages    int64
}

// NewIndex returns an empty index for pages of pageSize bytes.
func NewIndex(pageSize uint64) *Index { return &Index{pageSize: pageSize} }

// PageSize is the page size in bytes.
func (x *Index) PageSize() uint64 { return x.pageSize }

// Pages is the size of the dense space.
func (x *Index) Pages() int64 { return x.pages }

// Regions returns the region table, sorted by first page. The caller must
// not modify it.
func (x *Index) Regions() []tracefmt.Region { return x.regions }

func (x *Index) end(r tracefmt.Region) uint64 { return r.StartAddr + uint64(r.Pages)*x.pageSize }

// Cover gives every page of m an index and reports whether the space grew.
func (x *Index) Cover(m Mapping) bool {
	start, end := m.Start&^(x.pageSize-1), (m.End+x.pageSize-1)&^(x.pageSize-1)
	grew := false
	a := start
	i := sort.Search(len(x.byAddr), func(i int) bool { return x.end(x.regions[x.byAddr[i]]) > start })
	for a < end {
		next := end
		if i < len(x.byAddr) {
			r := x.regions[x.byAddr[i]]
			if r.StartAddr <= a {
				a = x.end(r)
				i++
				continue
			}
			if r.StartAddr < next {
				next = r.StartAddr
			}
		}
		x.add(a, next, m)
		grew = true
		// add inserted or extended a region ending at next; re-find our place.
		i = sort.Search(len(x.byAddr), func(i int) bool { return x.end(x.regions[x.byAddr[i]]) > next })
		a = next
	}
	return grew
}

// add gives [start, end) new indexes.
func (x *Index) add(start, end uint64, m Mapping) {
	n := int64((end - start) / x.pageSize)
	if k := len(x.regions) - 1; k >= 0 {
		last := &x.regions[k]
		if x.end(*last) == start && last.Perms == m.Perms && last.Path == m.Path {
			last.Pages += n
			x.pages += n
			return
		}
	}
	x.regions = append(x.regions, tracefmt.Region{
		FirstPage: x.pages, Pages: n, StartAddr: start, Perms: m.Perms, Path: m.Path,
	})
	x.pages += n
	k := len(x.regions) - 1
	j := sort.Search(len(x.byAddr), func(i int) bool { return x.regions[x.byAddr[i]].StartAddr > start })
	x.byAddr = append(x.byAddr, 0)
	copy(x.byAddr[j+1:], x.byAddr[j:])
	x.byAddr[j] = k
}

// Page returns the index of the page holding addr.
func (x *Index) Page(addr uint64) (int64, bool) {
	i := sort.Search(len(x.byAddr), func(i int) bool { return x.end(x.regions[x.byAddr[i]]) > addr })
	if i == len(x.byAddr) {
		return 0, false
	}
	r := x.regions[x.byAddr[i]]
	if addr < r.StartAddr {
		return 0, false
	}
	return r.FirstPage + int64((addr-r.StartAddr)/x.pageSize), true
}

// Append appends the indexes of the pages of [start, end) to dst. Pages
// without an index are skipped.
func (x *Index) Append(dst []int64, start, end uint64) []int64 {
	i := sort.Search(len(x.byAddr), func(i int) bool { return x.end(x.regions[x.byAddr[i]]) > start })
	for ; i < len(x.byAddr) && start < end; i++ {
		r := x.regions[x.byAddr[i]]
		if r.StartAddr >= end {
			break
		}
		s, e := max(start, r.StartAddr), min(end, x.end(r))
		first := r.FirstPage + int64((s-r.StartAddr)/x.pageSize)
		n := int64((e - s + x.pageSize - 1) / x.pageSize)
		for p := first; p < first+n; p++ {
			dst = append(dst, p)
		}
	}
	return dst
}
