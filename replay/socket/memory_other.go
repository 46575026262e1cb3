//go:build !linux

package socket

// allocBytes allocates n bytes on the Go heap (no mmap here); touch
// writes every page now, for the reason mapMemory gives.
func allocBytes(n uint64, touch bool) ([]byte, error) {
	b := make([]byte, n)
	if touch {
		for i := 0; i < len(b); i += 4096 {
			b[i] = 0
		}
	}
	return b, nil
}

// freeBytes leaves the memory to the garbage collector.
func freeBytes(b []byte) {}
