package capture

// dataPages follows which captured pages hold data from one soft-dirty scan
// to the next, for two things the bits cannot tell:
//
//   - a page discarded (MADV_DONTNEED, MADV_FREE once reclaimed, a hole
//     punched) loses its pte and with it its soft-dirty bit, yet its content
//     changed to zeros, which a migration destination must learn; the
//     uffd-wp-async backend reports it as written, and so does this one:
//     a page with data at the last scan and none now counts as written;
//   - the shared zero page, which a read of a never-written page maps, is
//     not data (as PAGEMAP_SCAN's PAGE_IS_PFNZERO tells the uffd backends);
//     it is recognised by its PFN, which needs CAP_SYS_ADMIN.
type dataPages struct {
	prev, now []uint64 // addresses, ascending
	zero      zeroPFNs
	probed    bool
}

// begin starts a scan.
func (d *dataPages) begin() {
	if !d.probed {
		d.zero, d.probed = probeZeroPFNs(), true
	}
	d.prev, d.now = d.now, d.prev[:0]
}

// has tells whether the entry at addr holds data, and records it. Entries
// must come in ascending address order within a scan.
func (d *dataPages) has(addr uint64, e PagemapEntry) bool {
	if !e.HasData() || e.Present() && d.zero.isZero(e.PFN()) {
		return false
	}
	d.now = append(d.now, addr)
	return true
}

// discarded returns the pages that held data at the previous scan, hold
// none now, and are still mapped (an unmapped page is not observed any
// more).
func (d *dataPages) discarded(alive spanSet) []uint64 {
	var out []uint64
	j := 0
	for _, a := range d.prev {
		for j < len(d.now) && d.now[j] < a {
			j++
		}
		if (j == len(d.now) || d.now[j] != a) && alive.contains(a) {
			out = append(out, a)
		}
	}
	return out
}
