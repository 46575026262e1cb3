package socket

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/microwiper/microwiper/internal/splitmix"
)

// pageMemory is a memory image of pages. On Linux it is page-aligned
// anonymous memory outside the Go heap, so a multi-GiB buffer costs the
// garbage collector nothing and is returned to the kernel the moment a
// session ends (memory_linux.go); elsewhere it is a Go slice.
type pageMemory struct {
	data     []byte
	pageSize int
}

// held counts the bytes holdBytes has handed out and dropBytes not yet
// returned, so tests can check that a session frees all it held.
var heldBytes atomic.Int64

func holdBytes(n uint64, touch bool) ([]byte, error) {
	b, err := allocBytes(n, touch)
	if err == nil {
		heldBytes.Add(int64(len(b)))
	}
	return b, err
}

func dropBytes(b []byte) {
	if b != nil {
		heldBytes.Add(-int64(len(b)))
		freeBytes(b)
	}
}

// maxMapBytes bounds one memory image (64 TiB), far above any budget, so
// the size arithmetic below cannot overflow an int.
const maxMapBytes = 1 << 46

// mapMemory allocates pages of pageSize bytes, every page written once now,
// as a destination VM's memory is allocated before it receives:
// first-touch faults (tens of microseconds a page in a VM whose own memory
// is backed lazily) would otherwise land inside measured rounds.
func mapMemory(pages uint64, pageSize int) (*pageMemory, error) {
	n := pages * uint64(pageSize)
	if n == 0 || n > maxMapBytes || n/uint64(pageSize) != pages {
		return nil, fmt.Errorf("map %d pages of %d bytes: size out of range", pages, pageSize)
	}
	b, err := holdBytes(n, true)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes of memory: %w", n, err)
	}
	return &pageMemory{data: b, pageSize: pageSize}, nil
}

func (m *pageMemory) unmap() {
	dropBytes(m.data)
	m.data = nil
}

func (m *pageMemory) page(p uint64) []byte {
	off := p * uint64(m.pageSize)
	return m.data[off : off+uint64(m.pageSize) : off+uint64(m.pageSize)]
}

// fillPage writes the content of page p at version v: a splitmix64 stream
// seeded by (p, v), so every write makes every word of the page differ and
// a torn or stale copy cannot pass for the current one.
func fillPage(dst []byte, p, v uint64) {
	x := splitmix.Mix(p ^ splitmix.Mix(v^0x6d6963726f777072))
	for i := 0; i+8 <= len(dst); i += 8 {
		x += 0x9E3779B97F4A7C15
		z := (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		binary.LittleEndian.PutUint64(dst[i:], z^(z>>31))
	}
}
