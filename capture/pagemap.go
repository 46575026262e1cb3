package capture

import (
	"encoding/binary"
	"fmt"
)

// PagemapEntry is one 64-bit entry of /proc/PID/pagemap
// (Documentation/admin-guide/mm/pagemap.rst).
type PagemapEntry uint64

// Bits of a pagemap entry.
const (
	pmPresent   = 1 << 63
	pmSwapped   = 1 << 62
	pmFileShare = 1 << 61
	pmExclusive = 1 << 56
	pmSoftDirty = 1 << 55
	pmPFNMask   = 1<<55 - 1
)

// Present reports whether the page is in RAM.
func (e PagemapEntry) Present() bool { return e&pmPresent != 0 }

// Swapped reports whether the page is in swap.
func (e PagemapEntry) Swapped() bool { return e&pmSwapped != 0 }

// SoftDirty reports whether the page was written since soft-dirty bits were
// last cleared (clear_refs 4). Always false on kernels without
// CONFIG_MEM_SOFT_DIRTY.
func (e PagemapEntry) SoftDirty() bool { return e&pmSoftDirty != 0 }

// Exclusive reports whether the page is mapped only here.
func (e PagemapEntry) Exclusive() bool { return e&pmExclusive != 0 }

// FileShared reports whether the page is file-backed or shared anonymous.
func (e PagemapEntry) FileShared() bool { return e&pmFileShare != 0 }

// PFN is the page frame number (zero without CAP_SYS_ADMIN), or the swap
// type and offset when swapped.
func (e PagemapEntry) PFN() uint64 { return uint64(e) & pmPFNMask }

// HasData reports whether the page holds data (present or swapped out).
func (e PagemapEntry) HasData() bool { return e&(pmPresent|pmSwapped) != 0 }

// DecodePagemap decodes raw pagemap bytes (little-endian, 8 bytes a page).
func DecodePagemap(b []byte) ([]PagemapEntry, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("pagemap data of %d bytes: want a multiple of 8", len(b))
	}
	out := make([]PagemapEntry, len(b)/8)
	for i := range out {
		out[i] = PagemapEntry(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out, nil
}

// SoftDirtyPages returns the positions of the soft-dirty entries: pages
// written since the bits were cleared. An entry with no page can be
// soft-dirty too, when its whole mapping is new since the clear (the kernel
// marks a new mapping dirty): a new mapping's content is news to a migration
// destination, so it counts as written.
func SoftDirtyPages(entries []PagemapEntry) []int {
	var out []int
	for i, e := range entries {
		if e.SoftDirty() {
			out = append(out, i)
		}
	}
	return out
}
