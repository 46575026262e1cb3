//go:build !linux

package socket

import "fmt"

func mapMemory(pages uint64, pageSize int) (*pageMemory, error) {
	n := pages * uint64(pageSize)
	if n == 0 || n > maxMapBytes {
		return nil, fmt.Errorf("map %d pages of %d bytes: size out of range", pages, pageSize)
	}
	// Every page written once now, for the reason memory_linux.go gives.
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
	return &pageMemory{data: b, pageSize: pageSize}, nil
}

func (m *pageMemory) unmap() { m.data = nil }
