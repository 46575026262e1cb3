package algorithms

import (
	"fmt"
	"strings"
)

// Algorithm is anything the registry hands out: a Policy or a Bound, both
// Tunable.
type Algorithm interface {
	Name() string
	Tunable
}

// Doc is a one-line description of each registered algorithm.
var docs = map[string]string{
	"xen-precopy":   "Xen 3.3-4.5 xc_domain_save pre-copy: pfn order, batch peek, 29 rounds / 50 pages / 3x memory stop test",
	"xen-v2":        "Xen >= 4.6 migration v2 simple_precopy_policy: at most 5 live rounds; once < 50 pages are dirty they still go live, then suspend; no skipping",
	"qemu-precopy":  "QEMU pre-copy: page order, zero pages as headers, max-bandwidth cap, switch-over when remaining < throughput x downtime-limit; optional auto-converge",
	"microwiper":    "Microwiper (ICPP 2010), reconstructed on the Xen skeleton: stripes coldest first, hot stripes held back while their summed rate exceeds bandwidth",
	"stop-and-copy": "pause and send everything: the downtime ceiling",
	"oracle":        "knows the future: lower bound on downtime over switch-over times (min and curve); not an algorithm",
}

var constructors = map[string]func() Algorithm{
	"xen-precopy":   func() Algorithm { return NewXenPrecopy() },
	"xen-v2":        func() Algorithm { return NewXenV2() },
	"qemu-precopy":  func() Algorithm { return NewQemuPrecopy() },
	"microwiper":    func() Algorithm { return NewMicrowiper() },
	"stop-and-copy": func() Algorithm { return NewStopAndCopy() },
	"oracle":        func() Algorithm { return NewOracle() },
}

// names is the registry order: baselines first, then the paper's policy,
// then the bounds.
var names = []string{"xen-precopy", "xen-v2", "qemu-precopy", "microwiper", "stop-and-copy", "oracle"}

// Names lists every registered algorithm.
func Names() []string { return append([]string(nil), names...) }

// Describe returns the one-line description of a registered algorithm.
func Describe(name string) string { return docs[name] }

// New returns a fresh algorithm with default parameters.
func New(name string) (Algorithm, error) {
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown algorithm %q (known: %s)", name, strings.Join(names, ", "))
	}
	return c(), nil
}
