package capture

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCopyOnWriteRules drives the sharing rules of cow_linux.go on
// address spaces without processes: four private pages at 0x10000 of a
// parent, inherited by a child and a grandchild.
func TestCopyOnWriteRules(t *testing.T) {
	const ps, base = 4096, 0x10000
	idx := NewIndex(ps)
	cow := &cowState{}
	space := func(asid uint64, pid int, parent *uffdTracker) *uffdTracker {
		key := spaceKey{asid: asid}
		return &uffdTracker{idx: idx, cow: cow, key: key, fkey: spaceKey{asid: asid | 1<<63}, owner: owner{pid: pid},
			pageSz: ps, parent: parent, from: parent, views: []view{{start: base, end: base + 4*ps, key: key, perms: "rw-p"}}}
	}
	write := func(s *uffdTracker, page int) int64 {
		got := s.appendWritten(nil, base+uint64(page)*ps, base+uint64(page+1)*ps)
		require.Len(t, got, 1)
		return got[0]
	}
	holders := func(i int64) int32 { return cow.raw(i) - 1 }
	p := space(1, 100, nil)
	idx.cover(p.key, p.owner, Mapping{Start: base, End: base + 4*ps, Perms: "rw-p"}, base, base+4*ps, 0)
	require.False(t, p.cowActive(), "a lone process takes the path of a single-process capture")
	assert.Equal(t, int64(2), write(p, 2), "a page no one shares is written in place")

	c := space(2, 200, p)
	assert.Empty(t, c.inherit(nil, base, base+4*ps), "inherited pages need no row")
	c.parent = nil
	assert.Equal(t, int64(4), idx.Pages(), "the child's pages are its parent's")

	assert.Equal(t, int64(4), write(c, 0), "the child's write: its page leaves the shared index")
	assert.Equal(t, int64(5), write(p, 1), "the parent's write: its page leaves the shared index, the child keeps it")
	assert.Equal(t, int64(5), write(p, 1), "then it is the parent's own")
	assert.Equal(t, int64(6), write(c, 1), "an index inherited from another process is never written in place")
	assert.Equal(t, int64(0), write(p, 0), "the child left page 0: the parent has it alone")

	g := space(3, 300, c)
	assert.Empty(t, g.inherit(nil, base, base+4*ps))
	g.parent = nil
	assert.Equal(t, int32(3), holders(3), "page 3 is shared three ways")
	assert.Equal(t, int32(2), holders(4), "the child's own page 0 is shared with the grandchild")
	assert.Equal(t, int64(7), write(c, 0), "the child's page shared with the grandchild leaves it")
	c.dropShares()
	assert.Equal(t, int32(2), holders(3), "the child's end leaves page 3 to parent and grandchild")
	assert.Equal(t, int64(8), write(p, 3))
	g.dropShares()
	assert.Zero(t, cow.shared, "nothing is shared once the children are gone")
	assert.Equal(t, int64(8), write(p, 3))

	// A second child: the parent's pages leave their shared indexes for
	// their by-address ones, which no process maps any more.
	c2 := space(4, 400, p)
	c2.inherit(nil, base, base+4*ps)
	c2.parent = nil
	require.Equal(t, int32(2), holders(2))
	assert.Equal(t, int64(3), write(p, 3), "back to the index the first children left")
	assert.Equal(t, int64(1), write(p, 1))
	// A child that writes nothing gives back its pages on exit, and the
	// parent returns to the single-process path for pages it did not move.
	c2.dropShares()
	_, moved := p.over[uint64(base+2*ps)]
	assert.False(t, moved, "page 2 went back to the parent's by-address index")
	assert.Equal(t, int64(2), write(p, 2))
	// A third: the parent takes turns between two indexes per page.
	c3 := space(5, 500, p)
	c3.inherit(nil, base, base+4*ps)
	c3.parent = nil
	assert.Equal(t, int64(5), write(p, 1), "the index the parent had before")
	c3.dropShares()
	assert.Equal(t, int64(9), idx.Pages(), "four pages and five copies")

	owners := map[int64]int{}
	for _, r := range idx.Regions() {
		for i := int64(0); i < r.Pages; i++ {
			owners[r.FirstPage+i] = r.PID
		}
	}
	assert.Equal(t, map[int64]int{0: 100, 1: 100, 2: 100, 3: 100, 4: 200, 5: 100, 6: 200, 7: 200, 8: 100}, owners,
		"every new page is in its writer's regions")
}
