package capture

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/microwiper/microwiper/tracefmt"
)

// Features is what the running kernel offers the backends, probed in our
// own process (nothing touches a target).
type Features struct {
	// Kernel is the release (uname -r).
	Kernel string
	// Userfaultfd: the userfaultfd syscall (CONFIG_USERFAULTFD, Linux 4.3).
	Userfaultfd bool
	// WriteProtect: UFFD_FEATURE_PAGEFAULT_FLAG_WP, write protection of
	// anonymous memory (Linux 5.7).
	WriteProtect bool
	// WPUnpopulated: UFFD_FEATURE_WP_UNPOPULATED, protection of pages
	// never touched (Linux 6.4).
	WPUnpopulated bool
	// WPAsync: UFFD_FEATURE_WP_ASYNC, faults resolved in the kernel
	// (Linux 6.7).
	WPAsync bool
	// PagemapScan: the PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7).
	PagemapScan bool
	// SoftDirty: pagemap bit 55 sets on write (CONFIG_MEM_SOFT_DIRTY,
	// Linux 3.11; x86-64, s390, powerpc, riscv since 6.x; not arm64).
	SoftDirty bool
}

var (
	featuresOnce sync.Once
	features     Features
)

// KernelFeatures probes the running kernel once and caches the answer.
func KernelFeatures() Features {
	featuresOnce.Do(func() { features = probeFeatures() })
	return features
}

func probeFeatures() Features {
	f := Features{Kernel: kernelRelease()}
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, uintptr(unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly), 0, 0)
	if errno == 0 {
		f.Userfaultfd = true
		// UFFDIO_API with no features asked returns every feature the
		// kernel knows.
		api := uffdioAPIArg{API: uffdAPI}
		if _, err := ioctlPtr(int(fd), uffdioAPI, unsafe.Pointer(&api)); err == nil {
			f.WriteProtect = api.Features&uffdFeaturePagefaultFlagWP != 0
			f.WPUnpopulated = api.Features&uffdFeatureWPUnpopulated != 0
			f.WPAsync = api.Features&uffdFeatureWPAsync != 0
		}
		unix.Close(int(fd))
	}
	f.PagemapScan = probePagemapScan() == nil
	f.SoftDirty = probeSoftDirty() == nil
	return f
}

// missing names what backend needs and the kernel lacks, with the Linux
// version that brought it; "" when nothing is missing.
func (f Features) missing(backend string) string {
	var m []string
	if !f.Userfaultfd && backend != tracefmt.BackendSoftDirty {
		return "userfaultfd (CONFIG_USERFAULTFD, Linux 4.3)"
	}
	switch backend {
	case tracefmt.BackendUffdAsync:
		if !f.WPAsync {
			m = append(m, "UFFD_FEATURE_WP_ASYNC (Linux 6.7)")
		}
		if !f.WPUnpopulated {
			m = append(m, "UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4)")
		}
		if !f.PagemapScan {
			m = append(m, "the PAGEMAP_SCAN ioctl (Linux 6.7)")
		}
	case tracefmt.BackendUffdSync:
		// WP_UNPOPULATED and PAGEMAP_SCAN help but have fallbacks
		// (pagemap reads; first touches found by presence).
		if !f.WriteProtect {
			m = append(m, "userfaultfd write-protect, UFFD_FEATURE_PAGEFAULT_FLAG_WP (Linux 5.7)")
		}
	case tracefmt.BackendSoftDirty:
		if !f.SoftDirty {
			m = append(m, "soft-dirty bits (CONFIG_MEM_SOFT_DIRTY: pagemap bit 55 never sets)")
		}
	}
	return strings.Join(m, ", ")
}

// preference is the automatic choice's order: async costs the target one
// in-kernel fault per page and epoch and us one ioctl; soft-dirty costs a
// pagemap read of every captured page and a clear_refs walk of the whole
// process per epoch; sync stops the writing thread on every first write.
var preference = []string{tracefmt.BackendUffdAsync, tracefmt.BackendSoftDirty, tracefmt.BackendUffdSync}

// Best is the backend to use when none is asked for: uffd-wp-async, else
// soft-dirty, else uffd-wp-sync.
func (f Features) Best() (string, error) {
	var why []string
	for _, b := range preference {
		m := f.missing(b)
		if m == "" {
			return b, nil
		}
		why = append(why, b+" needs "+m)
	}
	return "", fmt.Errorf("no capture backend works on kernel %s: %s: %w", f.Kernel, strings.Join(why, "; "), ErrNotSupported)
}

// Check tells whether backend can run here. The error names the missing
// kernel feature, the Linux version that has it, and a backend that works.
func (f Features) Check(backend string) error {
	m := f.missing(backend)
	if m == "" {
		return nil
	}
	alt := "none works here"
	for _, b := range preference {
		if b != backend && f.missing(b) == "" {
			alt = "use --backend " + b + " (or leave --backend out to pick the best available)"
			break
		}
	}
	return fmt.Errorf("backend %s: kernel %s lacks %s: %s: %w", backend, f.Kernel, m, alt, ErrNotSupported)
}

// SelectBackend resolves a requested backend name: "" or "auto" picks the
// best the kernel offers; a named one is checked. reason says why the
// automatic choice fell where it did ("" for a named backend).
func SelectBackend(requested string) (backend, reason string, err error) {
	f := KernelFeatures()
	if requested == "" || requested == "auto" {
		b, err := f.Best()
		if err != nil {
			return "", "", err
		}
		reason = "the best this kernel (" + f.Kernel + ") offers"
		if b != preference[0] {
			reason += "; " + preference[0] + " needs " + f.missing(preference[0])
		}
		return b, reason, nil
	}
	if _, err := (TrackerOptions{Backend: requested}).backend(); err != nil {
		return "", "", err
	}
	return requested, "", f.Check(requested)
}
