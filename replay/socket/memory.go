package socket

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/microwiper/microwiper/internal/splitmix"
)

// pageMemory is page-aligned anonymous memory outside the Go heap, so a
// multi-GiB buffer costs the garbage collector nothing and is returned to
// the kernel the moment a session ends.
type pageMemory struct {
	data     []byte
	pageSize int
}

func mapMemory(pages uint64, pageSize int) (*pageMemory, error) {
	n := pages * uint64(pageSize)
	if n == 0 || n > 1<<46 {
		return nil, fmt.Errorf("map %d pages of %d bytes: size out of range", pages, pageSize)
	}
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes of memory: %w", n, err)
	}
	// Huge pages where the kernel allows them, and every page written once
	// now, as a destination VM's memory is allocated before it receives:
	// first-touch faults (tens of microseconds a page in a VM whose own
	// memory is backed lazily) would otherwise land inside measured rounds.
	// MAP_POPULATE is not enough there: it maps pages without the write
	// that makes the hypervisor back them.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
	return &pageMemory{data: b, pageSize: pageSize}, nil
}

func (m *pageMemory) page(p uint64) []byte {
	off := p * uint64(m.pageSize)
	return m.data[off : off+uint64(m.pageSize) : off+uint64(m.pageSize)]
}

func (m *pageMemory) unmap() {
	if m.data != nil {
		_ = unix.Munmap(m.data)
		m.data = nil
	}
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
