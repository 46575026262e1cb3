package algorithms

import (
	"fmt"
	"strconv"
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

// Describe returns the one-line description of a registered algorithm or
// of a Microwiper variant.
func Describe(name string) string {
	if _, err := ParseVariant(name); err == nil {
		return "Microwiper reconstruction variant: " + Reading(name)
	}
	return docs[name]
}

// Base is the registered algorithm a name belongs to: "microwiper" for a
// Microwiper variant, the name itself otherwise.
func Base(name string) string {
	if strings.HasPrefix(name, "microwiper/") {
		return "microwiper"
	}
	return name
}

// New returns a fresh algorithm with default parameters. A Microwiper
// variant name (see VariantName) returns Microwiper with that reading's
// parameters as its defaults.
func New(name string) (Algorithm, error) {
	if strings.HasPrefix(name, "microwiper/") {
		p, err := ParseVariant(name)
		if err != nil {
			return nil, err
		}
		return &Microwiper{P: p}, nil
	}
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown algorithm %q (known: %s)", name, strings.Join(names, ", "))
	}
	return c(), nil
}

// Reading spells out the four readings of a Microwiper variant name
// ("microwiper" included), empty for any other name.
func Reading(name string) string {
	p := DefaultMicrowiperParams()
	if name != "microwiper" {
		var err error
		if p, err = ParseVariant(name); err != nil {
			return ""
		}
	}
	st := strconv.FormatInt(p.StripePages, 10)
	if p.StripePages == 0 {
		st = "0 (pages/1024)"
	}
	return fmt.Sprintf("stripe_pages=%s, rate=%s, held=%s, stop=%s", st, p.Rate, p.Held, p.Stop)
}
