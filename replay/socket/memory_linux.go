package socket

import "golang.org/x/sys/unix"

// allocBytes maps n bytes of anonymous memory outside the Go heap, so a
// multi-GiB buffer costs the garbage collector nothing and freeBytes
// returns it to the kernel at once. touch writes every page now (see
// mapMemory), with huge pages where the kernel allows them; MAP_POPULATE
// is not enough in a VM: it maps pages without the write that makes the
// hypervisor back them.
func allocBytes(n uint64, touch bool) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	if touch {
		_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 0
		}
	}
	return b, nil
}

// freeBytes unmaps what allocBytes returned; nil is a no-op.
func freeBytes(b []byte) {
	if b != nil {
		_ = unix.Munmap(b)
	}
}
