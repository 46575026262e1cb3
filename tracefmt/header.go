package tracefmt

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// FormatVersion is the value of the microwiper.format metadata key.
const FormatVersion = "trace/v1"

// Metadata keys stored in the Parquet file's key-value metadata.
const (
	KeyFormat    = "microwiper.format"
	KeyPageSize  = "page_size"
	KeyPages     = "pages"
	KeyEpochNS   = "epoch_ns"
	KeyBackend   = "backend"
	KeyWorkload  = "workload"
	KeyKernel    = "kernel"
	KeyStartedAt = "started_at"
	KeyRegions   = "regions"
	// KeyGuestSlowdown is how many times slower than the hardware the
	// traced guest ran (a fixed benchmark's time in the guest over its
	// time on the host); absent when unknown.
	KeyGuestSlowdown = "guest_slowdown"
	// KeyFinished is "true" in the footer a writer's Close writes and
	// "false" in the segments it finishes before that: a directory whose
	// last file says "false" is a trace cut short (a killed capture). Files
	// from other writers lack the key and count as finished.
	KeyFinished = "microwiper.finished"
)

// Capture backends, the values of the backend metadata key.
const (
	BackendUffdAsync = "uffd-wp-async"
	BackendUffdSync  = "uffd-wp-sync"
	BackendSoftDirty = "soft-dirty"
	BackendSynthetic = "synthetic"
)

// Region maps a run of the dense page index back to the address range of
// the captured process it came from.
type Region struct {
	// FirstPage is the dense index of the region's first page.
	FirstPage int64 `json:"first_page"`
	// Pages is the region's length in pages.
	Pages int64 `json:"pages"`
	// StartAddr is the virtual address of the region's first page.
	StartAddr uint64 `json:"start_addr"`
	// Perms is the mapping's permission string from /proc/PID/maps ("rw-p").
	Perms string `json:"perms"`
	// Path is the mapping's path or pseudo-path ("[heap]"), empty if anonymous.
	Path string `json:"path"`
	// PID and Comm name the process whose address space holds the range
	// (for a shared object, the first process seen mapping it); zero and
	// empty in traces of one process recorded before process trees.
	PID  int    `json:"pid,omitempty"`
	Comm string `json:"comm,omitempty"`
	// Object names the backing object of shared memory ("shmem:DEV:INODE",
	// one for every process mapping it, whose pages therefore appear once);
	// empty for private memory. Offset is then the object offset of the
	// range's first page, and StartAddr the address in process PID.
	Object string `json:"object,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
	// ExitNS is the trace time at which the range's address space ended
	// (the process exited or called exec): its pages are never written
	// again and their memory is free from then on. 0 while alive at the end.
	ExitNS int64 `json:"exit_ns,omitempty"`
	// RAMBlock names the VM RAM block the region holds (QEMU's "pc.ram",
	// "0000:00:02.0/vga.vram"), for whole-VM captures; empty otherwise.
	RAMBlock string `json:"ram_block,omitempty"`
	// RAMOffset is the region's offset in the VM's RAM address space
	// (QEMU's ram_addr_t); meaningful only with RAMBlock (absent means 0).
	RAMOffset uint64 `json:"ram_offset,omitempty"`
}

// Header is the typed form of a trace's metadata.
type Header struct {
	// PageSize is the page size in bytes (4096 on x86-64).
	PageSize int64
	// Pages is the memory size in pages: every page in [0, Pages) must be
	// migrated once, written or not.
	Pages int64
	// EpochNS is the capture epoch in nanoseconds: a row (t, p) means p was
	// written at least once in (t-EpochNS, t].
	EpochNS int64
	// Backend names how the trace was recorded (Backend* constants).
	Backend string
	// Workload is the command line of the traced process.
	Workload string
	// Kernel is the kernel release the trace was captured on.
	Kernel string
	// StartedAt is the wall-clock time the capture began.
	StartedAt time.Time
	// Regions maps the dense page index back to address ranges; may be empty
	// for synthetic traces.
	Regions []Region
	// GuestSlowdown is how many times slower than the hardware the traced
	// guest ran (under an emulator such as QEMU TCG); 0 means unknown.
	// Replaying with the trace running this many times faster than
	// migration time plays the workload at hardware speed.
	GuestSlowdown float64
}

// MemoryBytes is the traced memory size in bytes.
func (h Header) MemoryBytes() int64 { return h.Pages * h.PageSize }

// Check reports the first inconsistency in h, or nil.
func (h Header) Check() error {
	switch {
	case h.PageSize <= 0 || h.PageSize&(h.PageSize-1) != 0 || h.PageSize > MaxPageSize:
		return fmt.Errorf("metadata %s = %d: want a positive power of two up to %d (1 GiB)", KeyPageSize, h.PageSize, MaxPageSize)
	case h.Pages <= 0:
		return fmt.Errorf("metadata %s = %d: want a positive page count", KeyPages, h.Pages)
	case h.Pages > MaxMemoryBytes/h.PageSize:
		return fmt.Errorf("metadata %s = %d of %d bytes: memory above %d bytes (2^62)", KeyPages, h.Pages, h.PageSize, int64(MaxMemoryBytes))
	case h.EpochNS <= 0:
		return fmt.Errorf("metadata %s = %d: want a positive epoch", KeyEpochNS, h.EpochNS)
	case h.Backend == "":
		return fmt.Errorf("metadata %s is empty", KeyBackend)
	case h.GuestSlowdown != 0 && !(h.GuestSlowdown >= MinGuestSlowdown && h.GuestSlowdown <= MaxGuestSlowdown): // NaN fails both
		return fmt.Errorf("metadata %s = %g: want a factor between %g and %g", KeyGuestSlowdown, h.GuestSlowdown, float64(MinGuestSlowdown), float64(MaxGuestSlowdown))
	}
	var next int64
	for i, r := range h.Regions {
		if r.Pages <= 0 || r.FirstPage < next || r.FirstPage+r.Pages > h.Pages {
			return fmt.Errorf("metadata %s[%d] = pages [%d, %d): want sorted, disjoint, non-empty ranges inside [0, %d)",
				KeyRegions, i, r.FirstPage, r.FirstPage+r.Pages, h.Pages)
		}
		next = r.FirstPage + r.Pages
	}
	return nil
}

// MaxPageSize is the largest page size a header may declare (x86's 1 GiB
// huge page), and MaxMemoryBytes the most memory (pages × page size): both
// far above any machine, and low enough that byte counts derived from them
// do not overflow int64.
const (
	MaxPageSize    = 1 << 30
	MaxMemoryBytes = 1 << 62
)

// MinGuestSlowdown and MaxGuestSlowdown bound GuestSlowdown: a guest a
// hundred times faster than its host, or a million times slower, is a
// measurement gone wrong.
const (
	MinGuestSlowdown = 0.01
	MaxGuestSlowdown = 1e6
)

// MetadataKeys lists the metadata keys in the order files store them;
// KeyGuestSlowdown is stored only when known.
var MetadataKeys = []string{KeyFormat, KeyPageSize, KeyPages, KeyEpochNS, KeyBackend, KeyWorkload, KeyKernel, KeyStartedAt, KeyRegions, KeyGuestSlowdown}

// Metadata returns the header as key-value metadata, the form Parquet files
// store (and CSV traces carry as comments).
func (h Header) Metadata() (map[string]string, error) {
	regions := h.Regions
	if regions == nil {
		regions = []Region{}
	}
	rj, err := json.Marshal(regions)
	if err != nil {
		return nil, fmt.Errorf("encode regions: %w", err)
	}
	started := ""
	if !h.StartedAt.IsZero() {
		started = h.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	m := map[string]string{
		KeyFormat:    FormatVersion,
		KeyPageSize:  strconv.FormatInt(h.PageSize, 10),
		KeyPages:     strconv.FormatInt(h.Pages, 10),
		KeyEpochNS:   strconv.FormatInt(h.EpochNS, 10),
		KeyBackend:   h.Backend,
		KeyWorkload:  h.Workload,
		KeyKernel:    h.Kernel,
		KeyStartedAt: started,
		KeyRegions:   string(rj),
	}
	if h.GuestSlowdown != 0 {
		m[KeyGuestSlowdown] = strconv.FormatFloat(h.GuestSlowdown, 'g', -1, 64)
	}
	return m, nil
}

// ParseMetadata builds a header from key-value metadata; lookup returns a
// key's value. It checks the result with Check.
func ParseMetadata(lookup func(string) (string, bool)) (Header, error) {
	var h Header
	format, ok := lookup(KeyFormat)
	if !ok {
		return h, fmt.Errorf("metadata key %s missing: not a microwiper trace (convert foreign data with 'microwiper trace convert')", KeyFormat)
	}
	if format != FormatVersion {
		return h, fmt.Errorf("metadata %s = %q: this build reads %s only", KeyFormat, format, FormatVersion)
	}
	ints := []struct {
		key string
		dst *int64
	}{{KeyPageSize, &h.PageSize}, {KeyPages, &h.Pages}, {KeyEpochNS, &h.EpochNS}}
	for _, f := range ints {
		v, ok := lookup(f.key)
		if !ok {
			return h, fmt.Errorf("metadata key %s missing", f.key)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return h, fmt.Errorf("metadata %s = %q: not an integer", f.key, v)
		}
		*f.dst = n
	}
	h.Backend, _ = lookup(KeyBackend)
	h.Workload, _ = lookup(KeyWorkload)
	h.Kernel, _ = lookup(KeyKernel)
	if v, _ := lookup(KeyStartedAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return h, fmt.Errorf("metadata %s = %q: not an RFC 3339 time", KeyStartedAt, v)
		}
		h.StartedAt = t
	}
	if v, ok := lookup(KeyGuestSlowdown); ok {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x == 0 {
			return h, fmt.Errorf("metadata %s = %q: want a factor between %g and %g", KeyGuestSlowdown, v, float64(MinGuestSlowdown), float64(MaxGuestSlowdown))
		}
		h.GuestSlowdown = x
	}
	if v, _ := lookup(KeyRegions); v != "" {
		if err := json.Unmarshal([]byte(v), &h.Regions); err != nil {
			return h, fmt.Errorf("metadata %s: %w", KeyRegions, err)
		}
	}
	return h, h.Check()
}
