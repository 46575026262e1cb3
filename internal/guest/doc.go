//go:build linux

// Package guest boots throwaway Linux guests under QEMU TCG, to run tests
// against kernels other than the host's and to drive real live migrations.
//
// Three steps, each usable alone:
//
//  1. FetchKernel(ctx, cacheDir, "linux-image-amd64") gets a Debian kernel
//     by package name: `apt-get download` into a cache directory, then
//     `dpkg-deb -x`, then `depmod -b` (Debian packages ship no
//     modules.dep). Meta-packages are followed to the image package
//     (linux-image-amd64 -> linux-image-6.1.0-57-amd64). The Debian archive
//     is the only source: no other network access. Results are cached in
//     DefaultCacheDir() (~/.cache/microwiper/guest, or
//     $MICROWIPER_GUEST_CACHE) as <pkg>.json plus the unpacked tree; a cache
//     hit needs no network. Delete <pkg>.json to refresh a meta-package.
//     Processes sharing the cache serialise on <cacheDir>/.lock.
//     Kernel.Config("CONFIG_MEM_SOFT_DIRTY") reads the build options.
//
//  2. Initramfs{Kernel, Modules, Files, Script}.Write(ctx, path) builds the
//     guest's whole root file system as one uncompressed newc cpio archive:
//     static busybox (busybox-static), the given Files (static binaries,
//     data), the listed kernel modules with their dependencies
//     (decompressed on the host with xz/zstd, since busybox insmod wants
//     plain .ko files), and an /init that mounts proc, sysfs, devtmpfs and
//     tmpfs, loads the modules, runs Script with busybox sh, prints
//     "microwiper-guest: exit <status>" (ExitMarker) and powers off. All of
//     the guest lives in RAM: size MemoryMiB for the archive plus the
//     workload. Program(hostPath, guestPath) gives the Files that run a
//     dynamically linked host program (Debian's redis-server, gcc's cc1)
//     in the guest: the program, its loader (PT_INTERP) and every shared
//     library it needs (DT_NEEDED, transitively, searched like the loader
//     does: DT_RUNPATH, then the multiarch directories), each at its host
//     path.
//
//  3. Start(ctx, Config{Kernel, Initrd, MemoryMiB, CPUs, Console, Output,
//     QMP, Incoming, Args}) runs qemu-system-x86_64 -accel tcg. The console
//     (ttyS0) goes to the Console file; Output, if set, is a raw second
//     serial port (ttyS1) for data. VM.WaitFor(ctx, marker) waits for a
//     readiness line on the console; VM.Wait waits for the guest to power
//     off; VM.ScriptExit gives Script's status; VM.Stop ends it (QMP quit,
//     else SIGTERM, then SIGKILL after 5 s) and is idempotent.
//
// No QEMU outlives its owner: QEMU runs in its own process group; it gets
// SIGKILL through Pdeathsig when the thread that started it dies (the
// starting goroutine holds its OS thread locked for QEMU's whole life, as
// Pdeathsig follows threads), so a test binary killed by Ctrl-C, a panic or
// a timeout takes its guests with it; cancelling Start's ctx kills the
// group; Stop reaps it. In tests, call t.Cleanup(func() { vm.Stop() })
// right after Start. Only processes this package started are ever
// signalled, by their own pid/pgid.
//
// TCG's translation buffer defaults to 1 GiB of host memory per guest;
// Config.TBSizeMiB defaults to 128 MiB instead, enough for busybox and Go
// binaries, so several guests fit on a shared machine.
//
// Dial(ctx, path) opens the QMP socket (Config.QMP) and negotiates
// capabilities; QMP.Execute(ctx, "migrate", map[string]any{"uri": ...})
// runs a command; events seen meanwhile are returned by QMP.Events.
//
// # For the ground-truth migration driver (vm)
//
// A source and a destination guest for a live migration:
//
//	k, _ := guest.FetchKernel(ctx, cache, "linux-image-amd64")
//	rd := guest.Initramfs{Kernel: k, Files: []guest.File{{Path: "/bin/work", Source: workBin}},
//		Script: "echo ready; exec /bin/work"}
//	rd.Write(ctx, dir+"/initrd")
//	src, _ := guest.Start(ctx, guest.Config{Kernel: k.Image(), Initrd: dir + "/initrd",
//		MemoryMiB: 1024, Console: dir + "/src.log", QMP: dir + "/src.qmp"})
//	defer src.Stop()
//	dst, _ := guest.Start(ctx, guest.Config{Kernel: k.Image(), Initrd: dir + "/initrd",
//		MemoryMiB: 1024, Console: dir + "/dst.log", QMP: dir + "/dst.qmp",
//		Incoming: "tcp:127.0.0.1:" + port})
//	defer dst.Stop()
//	src.WaitFor(ctx, "ready")
//	q, _ := guest.Dial(ctx, dir+"/src.qmp")
//	q.Execute(ctx, "migrate", map[string]any{"uri": "tcp:127.0.0.1:" + port})
//	// poll q.Execute(ctx, "query-migrate", nil) until "status" is "completed"
//
// Source and destination must get identical Config apart from Console,
// QMP and Incoming (same kernel, initrd, memory, CPUs, Args): QEMU checks
// the device state. The destination ignores its Kernel/Initrd contents
// but needs the same ROM sizes, so pass the same files. Use unique paths
// (t.TempDir()): other tests may run guests at the same time. The
// default machine is -machine pc -cpu max with -nodefaults and
// -no-reboot; add devices through Args. Modules for virtio devices
// (virtio_pci is built into 6.12 but a module in 6.1; virtio_blk,
// 9pnet_virtio and 9p are modules in both) go in Initramfs.Modules.
//
// The package is exercised by its tests (set MICROWIPER_GUEST_TESTS=1;
// they download linux-image-amd64 on first use) and by `make
// test-kernels`, which runs capture's tests inside guests.
package guest
