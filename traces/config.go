package traces

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// Kind names a generator.
type Kind string

// The generators. See the package comment for what each one models.
const (
	Uniform Kind = "uniform"
	HotCold Kind = "hotcold"
	Sweep   Kind = "sweep"
	Phase   Kind = "phase"
	WWS     Kind = "wws"
)

var allKinds = []Kind{Uniform, HotCold, Sweep, Phase, WWS}

// Kinds lists every generator kind.
func Kinds() []Kind { return slices.Clone(allKinds) }

// Defaults for zero Config fields.
const (
	DefaultPageSize = 4096
	DefaultEpoch    = 100 * time.Millisecond
	DefaultSkew     = 1.2
	DefaultCluster  = 8
	DefaultHotShare = 0.9
)

// Limits that keep a mistyped flag from asking for hours of work or
// gigabytes of memory.
const (
	// MaxPages bounds the memory size: the generator keeps 4 bytes a page.
	MaxPages = 1 << 28
	// maxWrites bounds the random page writes drawn over the whole trace.
	maxWrites = 1e10
	// maxEpochs bounds the number of epochs.
	maxEpochs = 1e8
)

// Config describes one synthetic trace. Zero-valued optional fields take
// the defaults listed on each field. Field names match the flags of
// 'microwiper trace gen', and Check's errors name those flags.
type Config struct {
	// Kind selects the generator.
	Kind Kind
	// Pages is the memory size in pages (required).
	Pages int64
	// PageSize is the page size in bytes; 0 means DefaultPageSize.
	PageSize int64
	// Duration is the trace length; it holds Duration/Epoch epochs.
	Duration time.Duration
	// Epoch is the observation epoch; 0 means DefaultEpoch.
	Epoch time.Duration
	// Intensity is the mean number of page writes per second (for sweep:
	// pages swept per second); 0 means Pages/10.
	Intensity float64
	// Seed selects the pseudo-random sequence.
	Seed uint64
	// Initial is the fraction of pages listed in the initial image; 0
	// writes no initial-image rows, which means every page holds data.
	Initial float64

	// Skew is the Zipf exponent of hotcold (> 1); 0 means DefaultSkew.
	Skew float64
	// Cluster is the run length in pages of hotcold's ranked runs and of
	// wws's hot runs; 0 means DefaultCluster.
	Cluster int64
	// WorkingSet is phase's working set in pages; 0 means Pages/8.
	WorkingSet int64
	// PhaseLength is how long phase's working set stays in one place; 0
	// means Duration/4.
	PhaseLength time.Duration
	// HotPages is the size of wws's hot set in pages; 0 means Pages/64.
	HotPages int64
	// HotShare is the share of wws's writes that go to the hot set; 0
	// means DefaultHotShare. Each hot page is written at least once in
	// every epoch whatever the share.
	HotShare float64
}

// withDefaults fills the zero optional fields.
func (c Config) withDefaults() Config {
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Epoch == 0 {
		c.Epoch = DefaultEpoch
	}
	if c.Intensity == 0 {
		c.Intensity = float64(c.Pages) / 10
	}
	if c.Skew == 0 {
		c.Skew = DefaultSkew
	}
	if c.Cluster == 0 {
		c.Cluster = DefaultCluster
	}
	if c.WorkingSet == 0 {
		c.WorkingSet = max(c.Pages/8, 1)
	}
	if c.PhaseLength == 0 {
		c.PhaseLength = max(c.Duration/4, c.Epoch)
	}
	if c.HotPages == 0 {
		c.HotPages = max(c.Pages/64, 1)
	}
	if c.HotShare == 0 {
		c.HotShare = DefaultHotShare
	}
	return c
}

// Check reports the first bad field of c (after defaults), naming its flag.
func (c Config) Check() error {
	c = c.withDefaults()
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case !slices.Contains(allKinds, c.Kind):
		return fmt.Errorf("kind %q unknown: want one of %s", c.Kind, kindList())
	case c.Pages <= 0 || c.Pages > MaxPages:
		return fmt.Errorf("pages = %d: want 1 to %d", c.Pages, int64(MaxPages))
	case c.PageSize <= 0 || c.PageSize&(c.PageSize-1) != 0:
		return fmt.Errorf("page-size = %d: want a positive power of two", c.PageSize)
	case c.Epoch <= 0:
		return fmt.Errorf("epoch = %v: want a positive duration", c.Epoch)
	case c.Duration < c.Epoch:
		return fmt.Errorf("duration = %v: want at least one epoch (%v)", c.Duration, c.Epoch)
	case int64(c.Duration/c.Epoch) > maxEpochs:
		return fmt.Errorf("duration = %v holds %d epochs of %v: more than %d; raise -epoch or lower -duration",
			c.Duration, c.Duration/c.Epoch, c.Epoch, int64(maxEpochs))
	case !finite(c.Intensity) || c.Intensity < 0:
		return fmt.Errorf("intensity = %v: want a finite number of page writes per second ≥ 0", c.Intensity)
	case !finite(c.Initial) || c.Initial < 0 || c.Initial > 1:
		return fmt.Errorf("initial = %v: want a fraction in [0, 1]", c.Initial)
	case !finite(c.Skew) || c.Skew <= 1:
		return fmt.Errorf("skew = %v: want a Zipf exponent > 1", c.Skew)
	case c.Cluster < 1 || c.Cluster > c.Pages:
		return fmt.Errorf("cluster = %d: want 1 to pages (%d)", c.Cluster, c.Pages)
	case c.WorkingSet < 1 || c.WorkingSet > c.Pages:
		return fmt.Errorf("working-set = %d: want 1 to pages (%d)", c.WorkingSet, c.Pages)
	case c.PhaseLength <= 0:
		return fmt.Errorf("phase = %v: want a positive duration", c.PhaseLength)
	case c.HotPages < 1 || c.HotPages > c.Pages:
		return fmt.Errorf("hot-pages = %d: want 1 to pages (%d)", c.HotPages, c.Pages)
	case !finite(c.HotShare) || c.HotShare < 0 || c.HotShare > 1:
		return fmt.Errorf("hot-share = %v: want a fraction in [0, 1]", c.HotShare)
	}
	if c.Kind != Sweep {
		total := c.Intensity * c.Duration.Seconds()
		if c.Kind == WWS {
			total += float64(c.HotPages) * float64(c.Duration/c.Epoch)
		}
		if total > maxWrites {
			return fmt.Errorf("intensity × duration = %.3g page writes: more than %.0g; lower -intensity or -duration", total, float64(maxWrites))
		}
	}
	return nil
}

func kindList() string {
	s := make([]string, len(allKinds))
	for i, k := range allKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Workload is the trace's workload string: the kind and every parameter
// that shapes the rows, so the trace can be regenerated from it.
func (c Config) Workload() string {
	c = c.withDefaults()
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	s := fmt.Sprintf("synthetic:%s pages=%d duration=%v epoch=%v intensity=%s seed=%d",
		c.Kind, c.Pages, c.Duration, c.Epoch, f(c.Intensity), c.Seed)
	if c.Initial > 0 {
		s += " initial=" + f(c.Initial)
	}
	switch c.Kind {
	case HotCold:
		s += fmt.Sprintf(" skew=%s cluster=%d", f(c.Skew), c.Cluster)
	case Phase:
		s += fmt.Sprintf(" working-set=%d phase=%v", c.WorkingSet, c.PhaseLength)
	case WWS:
		s += fmt.Sprintf(" hot-pages=%d hot-share=%s cluster=%d", c.HotPages, f(c.HotShare), c.Cluster)
	}
	return s
}

// Header is the trace header a generator for c writes. StartedAt stays
// zero so that the same Config gives byte-identical files.
func (c Config) Header() tracefmt.Header {
	c = c.withDefaults()
	return tracefmt.Header{
		PageSize: c.PageSize,
		Pages:    c.Pages,
		EpochNS:  int64(c.Epoch),
		Backend:  tracefmt.BackendSynthetic,
		Workload: c.Workload(),
	}
}
