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
}

// Check reports a malformed pattern.
func (f Filter) Check() error {
	for _, p := range f.Paths {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("region pattern %q: %w", p, err)
		}
	}
	return nil
}

// Eligible reports whether m is captured: private, writable, not a kernel
// pseudo-mapping, and kept by the filter.
func (f Filter) Eligible(m Mapping) bool {
	if !m.Writable() || !m.Private() || kernelSpecial[m.Path] || m.Size() == 0 {
		return false
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
