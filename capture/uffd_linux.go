package capture

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userfaultfd and PAGEMAP_SCAN ABI (include/uapi/linux/userfaultfd.h and
// fs.h). golang.org/x/sys/unix v0.50.0 has none of it.
const (
	uffdAPI          = 0xAA
	uffdUserModeOnly = 1

	uffdioAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioUnregister   = 0x8010AA01 // _IOR(0xAA, 0x01, struct uffdio_range)
	uffdioWriteprotect = 0xC018AA06 // _IOWR(0xAA, 0x06, struct uffdio_writeprotect)

	uffdioRegisterModeWP     = 1 << 1
	uffdioWriteprotectModeWP = 1 << 0

	uffdFeaturePagefaultFlagWP = 1 << 0
	uffdFeatureThreadID        = 1 << 8
	uffdFeatureWPUnpopulated   = 1 << 13
	uffdFeatureWPAsync         = 1 << 15

	uffdEventPagefault  = 0x12
	uffdPagefaultFlagWP = 1 << 1
	uffdMsgSize         = 32

	pagemapScan = 0xC0606610 // _IOWR('f', 16, struct pm_scan_arg)

	pageIsWPAllowed = 1 << 0
	pageIsWritten   = 1 << 1
	pageIsFile      = 1 << 2
	pageIsPresent   = 1 << 3
	pageIsSwapped   = 1 << 4
	pageIsPFNZero   = 1 << 5
	pageIsHuge      = 1 << 6

	pmScanWPMatching   = 1 << 0
	pmScanCheckWPAsync = 1 << 1
)

type uffdioAPIArg struct {
	API, Features, Ioctls uint64
}

type uffdioRange struct {
	Start, Len uint64
}

type uffdioRegisterArg struct {
	Range  uffdioRange
	Mode   uint64
	Ioctls uint64
}

type uffdioWriteprotectArg struct {
	Range uffdioRange
	Mode  uint64
}

// pageRegion is struct page_region: a run of pages sharing categories.
type pageRegion struct {
	Start, End, Categories uint64
}

// pmScanArg is struct pm_scan_arg.
type pmScanArg struct {
	Size             uint64
	Flags            uint64
	Start            uint64
	End              uint64
	WalkEnd          uint64
	Vec              uint64
	VecLen           uint64
	MaxPages         uint64
	CategoryInverted uint64
	CategoryMask     uint64
	CategoryAnyOf    uint64
	ReturnMask       uint64
}

func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

// uffdFeatureNames names the features we may need, for error messages.
var uffdFeatureNames = map[uint64]string{
	uffdFeatureWPAsync:         "UFFD_FEATURE_WP_ASYNC",
	uffdFeatureWPUnpopulated:   "UFFD_FEATURE_WP_UNPOPULATED",
	uffdFeaturePagefaultFlagWP: "UFFD_FEATURE_PAGEFAULT_FLAG_WP",
}

// probeKernel checks, in our own process, that the kernel has what a uffd
// backend needs, before anything touches the target: userfaultfd with the
// wanted features, and the PAGEMAP_SCAN ioctl.
func probeKernel(features uint64, backend string) error {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, uintptr(unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly), 0, 0)
	if errno != 0 {
		if errno == unix.ENOSYS {
			return missingFeature(backend, "userfaultfd (CONFIG_USERFAULTFD)")
		}
		return fmt.Errorf("backend %s: probe userfaultfd: %w", backend, errno)
	}
	defer unix.Close(int(fd))
	api := uffdioAPIArg{API: uffdAPI}
	if _, err := ioctlPtr(int(fd), uffdioAPI, unsafe.Pointer(&api)); err != nil {
		return fmt.Errorf("backend %s: probe UFFDIO_API: %w", backend, err)
	}
	if err := checkFeatures(backend, features, api.Features); err != nil {
		return err
	}
	if features&uffdFeatureWPAsync != 0 {
		if err := probePagemapScan(); err != nil {
			if errors.Is(err, ErrNotSupported) {
				return missingFeature(backend, "the PAGEMAP_SCAN ioctl")
			}
			return fmt.Errorf("backend %s: %w", backend, err)
		}
	}
	return nil
}

// checkFeatures names the first wanted userfaultfd feature the kernel
// lacks.
func checkFeatures(backend string, want, have uint64) error {
	for _, bit := range []uint64{uffdFeaturePagefaultFlagWP, uffdFeatureWPUnpopulated, uffdFeatureWPAsync} {
		if want&bit != 0 && have&bit == 0 {
			return missingFeature(backend, "userfaultfd write-protect feature "+uffdFeatureNames[bit])
		}
	}
	return nil
}

// missingFeature says what the kernel lacks and which backend to try.
func missingFeature(backend, what string) error {
	other := "uffd-wp-sync (needs no PAGEMAP_SCAN or WP_ASYNC) or soft-dirty"
	if backend == "uffd-wp-sync" {
		other = "soft-dirty (kernels with CONFIG_MEM_SOFT_DIRTY)"
	}
	return fmt.Errorf("backend %s: this kernel lacks %s (Linux ≥ 6.7 has it on x86-64 and arm64): try --backend %s: %w", backend, what, other, ErrNotSupported)
}

func probePagemapScan() error {
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return fmt.Errorf("open /proc/self/pagemap: %w", err)
	}
	defer f.Close()
	var buf [1]pageRegion
	arg := pmScanArg{Size: uint64(unsafe.Sizeof(pmScanArg{})), Vec: uint64(uintptr(unsafe.Pointer(&buf[0]))), VecLen: 1,
		CategoryAnyOf: pageIsPresent, ReturnMask: pageIsPresent}
	_, err = ioctlPtr(int(f.Fd()), pagemapScan, unsafe.Pointer(&arg))
	if errors.Is(err, unix.ENOTTY) {
		return fmt.Errorf("PAGEMAP_SCAN: %w", ErrNotSupported)
	}
	if err != nil {
		return fmt.Errorf("probe PAGEMAP_SCAN: %w", err)
	}
	return nil
}
