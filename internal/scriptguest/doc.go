//go:build linux

// Package scriptguest is how the long-running programs under scripts/
// (groundtruth, vmtraces, zerocost) set up the QEMU guests they measure,
// where they do it the same way: the one Debian kernel all their guests
// boot, the static build of scripts/groundtruth/workload that runs inside
// a guest, and a guest that `microwiper capture --qemu-qmp` can attach to.
// The guests themselves are internal/guest's.
package scriptguest
