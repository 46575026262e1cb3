package socket

import (
	"encoding/binary"

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

// maxMapBytes bounds one memory image (64 TiB), far above any budget, so
// the size arithmetic below cannot overflow an int.
const maxMapBytes = 1 << 46

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
