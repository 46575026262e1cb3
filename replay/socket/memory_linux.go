package socket

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func mapMemory(pages uint64, pageSize int) (*pageMemory, error) {
	n := pages * uint64(pageSize)
	if n == 0 || n > maxMapBytes {
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

func (m *pageMemory) unmap() {
	if m.data != nil {
		_ = unix.Munmap(m.data)
		m.data = nil
	}
}
