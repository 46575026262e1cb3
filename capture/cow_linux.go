package capture

// Copy-on-write sharing in a followed tree. After fork, parent and child
// map the same physical page at every private address that held data,
// until one of them writes it: the kernel then gives the writer a copy and
// leaves the other side the original. The trace follows the same rule,
// with one index standing for one physical page:
//
//   - A forked child's private pages that held data at the fork take no
//     index of their own: they are the parent's (no row at the fork).
//   - The first write to a page still shared, by either side, gives the
//     writer's page a new index in its own regions, with the write row;
//     the other side keeps the old index and needs no row, since its
//     content did not change and a migration has sent it, or will, under
//     the old index.
//   - A page whose index is its own and no longer shared is written in
//     place. A page leaving an index takes one of its own at the same
//     address that no process maps any more, if there is one, before a
//     new one (see writePage). An index inherited from another process is never written in
//     place, even once the other side has left it: rows always fall in the
//     writer's regions, at the cost of one index that is no longer mapped
//     (a parent writes a page, then the child writes its copy).
//
// Which side wrote is known from each process's own write protection
// (every process has its userfaultfd), with no cost per epoch beyond the
// pages written. Physical frame numbers (/proc/PID/pagemap as root) were
// the other way, and were rejected: comparing them costs a read of both
// processes' pagemap over all shared memory every epoch, and a frame
// number changes without any write when the kernel migrates, compacts,
// collapses into a huge page or swaps in a page, which would split pages
// still shared. The parent is scanned at the fork stop, so its writes from
// before the fork, which the child inherited, land on the shared index.

// cowPage is the index of a private page that differs from its address
// space's own by-address index: inherited from a parent, shared with a
// child, or given anew when the page left a shared index.
type cowPage struct {
	idx int64
	own bool // in this process's regions
}

// cowState is what a tree's address spaces know of each other, under the
// tree tracker's lock.
type cowState struct {
	// holders says, by index, how many processes map it once it has been
	// shared: n+1 for n processes (n may fall to 1 or 0 as they leave it),
	// and 0 for an index never shared, which its owner alone maps. 4 bytes
	// per index up to the highest shared one, cheaper than a map in both
	// memory and time.
	holders []int32
	shared  int // indexes two processes or more map
}

func (c *cowState) raw(idx int64) int32 {
	if idx < int64(len(c.holders)) {
		return c.holders[idx]
	}
	return 0
}

func (c *cowState) set(idx int64, v int32) {
	if n := idx + 1 - int64(len(c.holders)); n > 0 {
		c.holders = append(c.holders, make([]int32, n)...)
	}
	if old := c.holders[idx]; old >= 3 && v < 3 {
		c.shared--
	} else if old < 3 && v >= 3 {
		c.shared++
	}
	c.holders[idx] = v
}

// isShared reports whether two processes or more map index idx.
func (c *cowState) isShared(idx int64) bool { return c.raw(idx) >= 3 }

// free reports whether no process maps index idx any more.
func (c *cowState) free(idx int64) bool { return c.raw(idx) == 1 }

// share adds a process to those mapping index idx.
func (c *cowState) share(idx int64) {
	r := c.raw(idx)
	if r == 0 {
		r = 2 // its owner
	}
	c.set(idx, r+1)
}

// take makes a process the one to map free index idx.
func (c *cowState) take(idx int64) { c.set(idx, c.raw(idx)+1) }

// release removes a process from those mapping index idx.
func (c *cowState) release(idx int64) {
	if r := c.raw(idx); r >= 2 {
		c.set(idx, r-1)
	}
}

// cowActive reports whether writes need the per-page rules.
func (t *uffdTracker) cowActive() bool {
	return t.cow != nil && (len(t.over) > 0 || t.cow.shared > 0 || t.lazy)
}

// privateIndex returns the index the page at private address a has now.
func (t *uffdTracker) privateIndex(a uint64) (int64, bool) {
	if e, ok := t.over[a]; ok {
		return e.idx, true
	}
	return t.idx.page(t.key, a)
}

// writePage returns the index a write to the private page at a lands on.
// A page leaving an index it shares, or one it inherited, goes to an index
// of its own at a that no process maps any more (its by-address one, or
// the last it was given), else to a new one: a process that forks child
// after child, each living a while, takes turns between two indexes per
// page rather than a new one per child.
func (t *uffdTracker) writePage(a uint64, v view) int64 {
	cur, own, on := int64(0), false, false
	if e, ok := t.over[a]; ok {
		cur, own, on = e.idx, e.own, true
	}
	if on && own && !t.cow.isShared(cur) {
		return cur
	}
	base, hasBase := t.idx.page(t.key, a)
	if !on && hasBase {
		if !t.cow.isShared(base) {
			return base
		}
		cur, on = base, true
	}
	if on {
		t.cow.release(cur)
	}
	j := int64(-1)
	if alt, ok := t.alt[a]; hasBase && (!on || base != cur) && t.cow.free(base) {
		j = base
	} else if ok && (!on || alt != cur) && t.cow.free(alt) {
		j = alt
	}
	if j >= 0 {
		t.cow.take(j)
	} else {
		j = t.idx.fresh(t.fkey, t.owner, v.perms, v.path, a)
		t.grew = true
		if t.alt == nil {
			t.alt = map[uint64]int64{}
		}
		t.alt[a] = j
	}
	if t.over == nil {
		t.over = map[uint64]cowPage{}
	}
	t.over[a] = cowPage{idx: j, own: true}
	return j
}

// appendWritten appends the indexes of the pages of [start, end) written
// since the last scan (or present when their range was registered anew).
func (t *uffdTracker) appendWritten(dst []int64, start, end uint64) []int64 {
	if !t.cowActive() {
		return t.appendPages(dst, start, end)
	}
	i := searchViews(t.views, start)
	for ; i < len(t.views) && t.views[i].start < end; i++ {
		v := t.views[i]
		a, b := max(start, v.start), min(end, v.end)
		if v.key != t.key {
			dst = t.idx.appendRange(dst, v.key, a-v.delta, b-v.delta)
			continue
		}
		for p := a &^ (t.pageSz - 1); p < b; p += t.pageSz {
			dst = append(dst, t.writePage(p, v))
		}
	}
	return dst
}

// writtenPage is appendWritten for the one page at addr (sync faults).
func (t *uffdTracker) writtenPage(addr uint64) (int64, bool) {
	if !t.cowActive() {
		return t.page(addr)
	}
	i := searchViews(t.views, addr)
	if i == len(t.views) || addr < t.views[i].start {
		return 0, false
	}
	v := t.views[i]
	if v.key != t.key {
		return t.idx.page(v.key, addr-v.delta)
	}
	return t.writePage(addr, v), true
}

// inherit makes the data pages of a forked child's private range s, which
// the child has not run since the fork, share the parent's indexes. A page
// the parent has no index for gets one of the child's, present (appended
// to dst). The range itself takes no index.
func (t *uffdTracker) inherit(dst []int64, start, end uint64) []int64 {
	par := t.parent
	i := searchViews(t.views, start)
	for ; i < len(t.views) && t.views[i].start < end; i++ {
		v := t.views[i]
		if v.key != t.key {
			continue
		}
		for a := max(start, v.start); a < min(end, v.end); a += t.pageSz {
			if _, ok := t.over[a]; ok {
				continue
			}
			if t.over == nil {
				t.over = map[uint64]cowPage{}
			}
			p, ok := par.privateIndex(a)
			if !ok {
				j := t.idx.fresh(t.fkey, t.owner, v.perms, v.path, a)
				t.over[a] = cowPage{idx: j, own: true}
				dst = append(dst, j)
				continue
			}
			t.over[a] = cowPage{idx: p}
			if _, ok := par.over[a]; !ok {
				if par.over == nil {
					par.over = map[uint64]cowPage{}
				}
				par.over[a] = cowPage{idx: p, own: true}
			}
			t.cow.share(p)
		}
	}
	return dst
}

// dropShares gives back every index this address space shares, when it
// ends.
func (t *uffdTracker) dropShares() {
	if t.cow == nil {
		return
	}
	par := t.from
	for a, e := range t.over {
		if t.cow.raw(e.idx) < 2 {
			continue // never shared
		}
		t.cow.release(e.idx)
		// A page its parent now maps alone at its by-address index goes
		// back to the untracked state, so that a parent whose children
		// have all ended costs no more than a lone process.
		if par == nil || e.own || t.cow.raw(e.idx) != 2 {
			continue
		}
		if pe, ok := par.over[a]; ok && pe.own && pe.idx == e.idx {
			if p, ok := par.idx.page(par.key, a); ok && p == e.idx {
				delete(par.over, a)
				t.cow.set(e.idx, 0)
			}
		}
	}
	t.over, t.from = nil, nil
}
