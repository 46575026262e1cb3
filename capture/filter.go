package capture

import (
	"fmt"
	"path"
	"strings"
)

// AnonPath is the name a Filter uses for mappings with no path.
const AnonPath = "[anon]"

// Filter narrows capture to part of the address space, for example a
// hypervisor's guest RAM. The zero Filter keeps every private writable
// mapping.
type Filter struct {
	// Paths keeps only mappings whose path matches one of these patterns
	// (path.Match syntax, so "/dev/shm/*" works; "[heap]", "[stack]" and
	// AnonPath name the pseudo-mappings). Empty keeps all.
	Paths []string
	// MinBytes keeps only mappings at least this long.
	MinBytes uint64
	// Ranges, when set, keeps exactly these address ranges and nothing
	// else (Paths and MinBytes are then ignored): a VM's RAM blocks, which
	// need not fill their mappings. Their order is the order of the dense
	// page space (see TrackerOptions).
	Ranges []Range
}

// Range is an address range [Start, End) the capture keeps: one of a VM's
// RAM blocks, recorded in the trace's region table.
type Range struct {
	Start, End uint64
	// Block is the RAM block's name ("pc.ram") and Offset its offset in
	// QEMU's RAM address space (ram_addr_t).
	Block  string
	Offset uint64
}

// pieces returns the parts of m the filter keeps; m must be Eligible.
func (f Filter) pieces(m Mapping) []span {
	if len(f.Ranges) == 0 {
		return []span{{m.Start, m.End}}
	}
	var out []span
	for _, r := range f.Ranges {
		if s, e := max(r.Start, m.Start), min(r.End, m.End); s < e {
			out = append(out, span{s, e})
		}
	}
	return out
}

// Check reports a malformed pattern.
func (f Filter) Check() error {
	for _, r := range f.Ranges {
		if r.End <= r.Start {
			return fmt.Errorf("range %s [%#x, %#x): empty", r.Block, r.Start, r.End)
		}
	}
	for _, p := range f.Paths {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("region pattern %q: %w", p, err)
		}
	}
	return nil
}

// Eligible reports whether m is captured: writable, private or a shared
// memory object (Mapping.Shared), not a kernel pseudo-mapping, and kept by
// the filter.
func (f Filter) Eligible(m Mapping) bool {
	if !m.Writable() || !(m.Private() || m.Shared()) || kernelSpecial[m.Path] || m.Size() == 0 {
		return false
	}
	if len(f.Ranges) > 0 {
		return len(f.pieces(m)) > 0
	}
	if m.Size() < f.MinBytes {
		return false
	}
	if len(f.Paths) == 0 {
		return true
	}
	name := m.Path
	if name == "" {
		name = AnonPath
	}
	name = strings.TrimSuffix(name, " (deleted)")
	for _, p := range f.Paths {
		if ok, _ := path.Match(p, name); ok || p == name {
			return true
		}
	}
	return false
}

func (f Filter) zero() bool { return len(f.Paths) == 0 && f.MinBytes == 0 && len(f.Ranges) == 0 }

// String describes the filter as the command line gives it.
func (f Filter) String() string {
	var parts []string
	if len(f.Ranges) > 0 {
		parts = append(parts, fmt.Sprintf("%d RAM blocks of a VM (--qemu-qmp)", len(f.Ranges)))
	}
	for _, p := range f.Paths {
		parts = append(parts, fmt.Sprintf("--region %q", p))
	}
	if f.MinBytes > 0 {
		parts = append(parts, fmt.Sprintf("--min-region %d B", f.MinBytes))
	}
	if len(parts) == 0 {
		return "the default filter (private writable and shared memory)"
	}
	return strings.Join(parts, " ")
}
