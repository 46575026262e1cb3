package algorithms

import (
	"fmt"
	"math"
	"slices"
)

// MicrowiperParams tune Microwiper (Du et al., "Microwiper: Efficient
// Memory Propagation in Live Migration of Virtual Machines", ICPP 2010).
// The paper retrofitted Xen's xc_domain_save, so the Xen constants are
// kept; the stripe size, the bandwidth estimate and the stop rule are not
// fully specified in the paper and are reconstructions, marked as such.
type MicrowiperParams struct {
	// StripePages is the stripe length in pages. 0 means pages/1024, at
	// least 1. Reconstruction: the paper's only example is a 128 MB VM
	// (32768 pages) with 32-page stripes, i.e. 1024 stripes.
	StripePages int64 `param:"stripe_pages" doc:"pages per stripe; 0 = memory pages/1024, min 1 (reconstruction: the paper's 128 MB VM used 32-page stripes = 1024 stripes)"`
	// Bandwidth picks the estimate the summed stripe rates are compared
	// with: "measured" is the last round's throughput (the link rate when
	// that round sent nothing); "link" is the configured link rate.
	// Reconstruction: the paper compares against "the bandwidth" without
	// saying how it is obtained.
	Bandwidth string `param:"bandwidth" doc:"bandwidth estimate: measured (last round's throughput, else link) or link (reconstruction)"`
	// Order walks stripes coldest first; off walks them in index order.
	Order bool `param:"order" doc:"send stripes coldest first (off: stripe index order)"`
	// Throttle holds back the stripes after the walk's summed rate exceeds
	// the bandwidth estimate; off sends every pending page.
	Throttle bool `param:"throttle" doc:"hold back stripes once their summed rate exceeds bandwidth (off: send all)"`
	// Skip is Xen's batch peek within admitted stripes.
	Skip bool `param:"skip" doc:"skip pages re-dirtied since the round began, as Xen does"`
	// MaxRounds, MinPages, MaxFactor and BatchPages are Xen's (see
	// XenPrecopyParams). The stop test counts sent + skipped pages, not held
	// ones (reconstruction: held pages start the next round at once).
	MaxRounds  int   `param:"max_rounds" doc:"Xen's DEF_MAX_ITERS = 29"`
	MinPages   int64 `param:"min_pages" doc:"Xen's 50-page test on sent+skipped (held pages not counted; reconstruction)"`
	MaxFactor  int64 `param:"max_factor" doc:"Xen's DEF_MAX_FACTOR = 3"`
	BatchPages int   `param:"batch_pages" doc:"Xen's MAX_BATCH_SIZE = 1024"`
}

// DefaultMicrowiperParams returns the reconstruction's defaults.
func DefaultMicrowiperParams() MicrowiperParams {
	return MicrowiperParams{Bandwidth: "measured", Order: true, Throttle: true, Skip: true,
		MaxRounds: 29, MinPages: 50, MaxFactor: 3, BatchPages: 1024}
}

// Check reports the first bad field.
func (p MicrowiperParams) Check() error {
	if p.StripePages < 0 || p.StripePages > MaxPagesParam {
		return fmt.Errorf("stripe_pages = %d: want 0 (automatic) to %d", p.StripePages, int64(MaxPagesParam))
	}
	if p.Bandwidth != "measured" && p.Bandwidth != "link" {
		return fmt.Errorf("bandwidth = %q: want measured or link", p.Bandwidth)
	}
	return checkXen(p.MaxRounds, p.MinPages, p.MaxFactor, p.BatchPages)
}

// Microwiper orders stripes of pages coldest first and holds back the hot
// stripes whose summed rewriting rate exceeds the bandwidth.
//
// A stripe's rate is its pages dirtied during the last round over that
// round's length (pages/s). Round 1 has no rates and sends every page in
// page order, as Xen does. From round 2 the stripes holding pages to send
// are walked coldest first (ties by stripe index), their rates summed; the
// stripe whose rate takes the sum above the bandwidth estimate (pages/s)
// and all after it are held back: their pages stay pending and join the
// next round, which starts at once. Admitted stripes are sent one after
// another, each in page order, with Xen's batch peek. The stop test is
// Xen's.
type Microwiper struct {
	P MicrowiperParams

	m      Migration
	stripe int64
	count  []int32 // pages dirtied during the last round, per stripe
	spans  []span
	order  []int32
}

// span is one stripe's pages within ToSend: ToSend[lo:hi].
type span struct {
	stripe int64
	count  int32
	lo, hi int
}

// NewMicrowiper returns the policy with default parameters.
func NewMicrowiper() *Microwiper { return &Microwiper{P: DefaultMicrowiperParams()} }

func (w *Microwiper) Name() string            { return "microwiper" }
func (w *Microwiper) ParamStruct() any        { return &w.P }
func (w *Microwiper) Check() error            { return w.P.Check() }
func (w *Microwiper) BeforeBatch(*Batch) bool { return false }

// StripePages is the stripe length in effect after Begin.
func (w *Microwiper) StripePages() int64 { return w.stripe }

func (w *Microwiper) Begin(m Migration) Traits {
	w.m = m
	w.stripe = w.P.StripePages
	if w.stripe == 0 {
		w.stripe = max(m.Pages/1024, 1)
	}
	// A stripe longer than memory is one stripe: memory itself.
	w.stripe = min(w.stripe, max(m.Pages, 1))
	w.count = make([]int32, (m.Pages+w.stripe-1)/w.stripe)
	if int64(cap(w.order)) < m.Pages {
		w.order = make([]int32, 0, m.Pages)
	}
	return Traits{}
}

func (w *Microwiper) PlanRound(r *Round) Plan {
	if xenStop(r, w.m.Pages, w.P.MaxRounds, w.P.MinPages, w.P.MaxFactor) {
		return Plan{Stop: true}
	}
	plan := Plan{Peek: w.P.Skip, BatchPages: w.P.BatchPages}
	if r.Number == 1 || (!w.P.Order && !w.P.Throttle) {
		plan.Order = r.ToSend
		return plan
	}
	// Both lists are ascending, so a moving stripe boundary replaces a
	// division per page.
	clear(w.count)
	st, end := int64(0), w.stripe
	for _, p := range r.Dirtied {
		for int64(p) >= end {
			st, end = st+1, end+w.stripe
		}
		w.count[st]++
	}
	w.spans = w.spans[:0]
	for i := 0; i < len(r.ToSend); {
		st := int64(r.ToSend[i]) / w.stripe
		end := (st + 1) * w.stripe
		j := i + 1
		for j < len(r.ToSend) && int64(r.ToSend[j]) < end {
			j++
		}
		w.spans = append(w.spans, span{stripe: st, count: w.count[st], lo: i, hi: j})
		i = j
	}
	if w.P.Order {
		// Rates share one divisor (the last round's length), so ordering by
		// count is ordering by rate.
		slices.SortFunc(w.spans, func(a, b span) int {
			if a.count != b.count {
				return int(a.count - b.count)
			}
			return int(a.stripe - b.stripe)
		})
	}
	bw := w.m.LinkPagesPerSec()
	if w.P.Bandwidth == "measured" {
		if t := r.Last.ThroughputBps(); t > 0 {
			bw = t / float64(w.m.PageBits())
		}
	}
	w.order = w.order[:0]
	sum := 0.0
	for _, sp := range w.spans {
		if w.P.Throttle {
			sum += rate(sp.count, r.Last.DurationNS)
			if sum > bw {
				break
			}
		}
		w.order = append(w.order, r.ToSend[sp.lo:sp.hi]...)
	}
	plan.Order = w.order
	return plan
}

// rate is pages per second; a round of zero length makes any dirtying
// infinitely fast.
func rate(pages int32, durNS int64) float64 {
	if pages == 0 {
		return 0
	}
	if durNS <= 0 {
		return math.Inf(1)
	}
	return float64(pages) * 1e9 / float64(durNS)
}
