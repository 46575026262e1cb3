package algorithms

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
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
	// Rate is how a stripe's rewriting rate is estimated. Reconstruction:
	// the paper speaks of a stripe's "dirty rate" without saying over what
	// window. "last" is its pages dirtied during the last round over that
	// round's length; "mean" is its pages dirtied over all rounds since
	// round 1 over their summed length, which damps a burst.
	Rate string `param:"rate" doc:"stripe rate estimate: last (the last round's dirtying) or mean (all rounds since round 1); reconstruction"`
	// Held is the fate of the pages of a held-back stripe. Reconstruction:
	// the paper says only that the next iteration starts at once. "next":
	// they join the next round's pending set and the walk decides again;
	// "final": a stripe once held stays held until the final round (the
	// paper's "leave the hot pages to the last iteration"); "cool": a held
	// stripe stays held until a round passes in which none of its pages
	// was dirtied, then it rejoins the walk.
	Held string `param:"held" doc:"fate of held stripes: next (rejoin the next round's walk), final (wait for the final round) or cool (rejoin once a round leaves them clean); reconstruction"`
	// Stop is the stop test. Reconstruction: the paper keeps Xen's loop
	// and does not say how held pages count. "xen": Xen's on sent +
	// skipped; "held": Xen's with held pages counted as well, so a round
	// that holds many pages is not mistaken for a quiet one; "shrink":
	// Xen's, or stop as soon as the held set has stopped shrinking (held
	// in the last round >= held in the round before, both > 0), because
	// further rounds cannot make the final round smaller.
	Stop string `param:"stop" doc:"stop test: xen (sent+skipped < min_pages), held (sent+skipped+held < min_pages) or shrink (xen, or the held set stopped shrinking); reconstruction"`
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
	return MicrowiperParams{Bandwidth: "measured", Rate: "last", Held: "next", Stop: "xen", Order: true, Throttle: true, Skip: true,
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
	if p.Rate != "last" && p.Rate != "mean" {
		return fmt.Errorf("rate = %q: want last or mean", p.Rate)
	}
	if p.Held != "next" && p.Held != "final" && p.Held != "cool" {
		return fmt.Errorf("held = %q: want next, final or cool", p.Held)
	}
	if p.Stop != "xen" && p.Stop != "held" && p.Stop != "shrink" {
		return fmt.Errorf("stop = %q: want xen, held or shrink", p.Stop)
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
//
// That is the default reading. The paper leaves four choices open; each
// is a parameter (stripe_pages, rate, held, stop) and each combination a
// variant named by VariantName, e.g. microwiper/stripes-32+avg-rate+held-final.
// Every reading other than the default is a reconstruction too.
type Microwiper struct {
	P MicrowiperParams

	m      Migration
	stripe int64
	count  []int64 // pages dirtied during the last round, per stripe
	spans  []span
	order  []int32

	// State of the non-default readings, reset by Begin.
	seen     int     // the last round number planned (state advances once per round)
	cum      []int64 // rate=mean: pages dirtied per stripe over all rounds
	cumNS    int64   // rate=mean: the summed length of those rounds
	held     []bool  // held=final|cool: the stripes held back until the end or until they cool
	prevHeld int64   // stop=shrink: pages held in the round before the last
}

// span is one stripe's pages within ToSend: ToSend[lo:hi].
type span struct {
	stripe int64
	count  int64
	lo, hi int
}

// NewMicrowiper returns the policy with default parameters.
func NewMicrowiper() *Microwiper { return &Microwiper{P: DefaultMicrowiperParams()} }

// Name is "microwiper" for the default reading and the variant's name
// otherwise, so that results, benchmark lines and reports keep variants
// apart.
func (w *Microwiper) Name() string            { return VariantName(w.P) }
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
	n := (m.Pages + w.stripe - 1) / w.stripe
	w.count = make([]int64, n)
	if int64(cap(w.order)) < m.Pages {
		w.order = make([]int32, 0, m.Pages)
	}
	w.seen, w.cumNS, w.prevHeld = 0, 0, 0
	w.cum, w.held = nil, nil
	if w.P.Rate == "mean" {
		w.cum = make([]int64, n)
	}
	if w.P.Held != "next" {
		w.held = make([]bool, n)
	}
	return Traits{}
}

func (w *Microwiper) PlanRound(r *Round) Plan {
	// State advances once per round, so that planning a round twice (as
	// tests do) plans it alike.
	fresh := r.Number > w.seen
	w.seen = r.Number
	if w.stop(r, fresh) {
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
	est, durNS := w.count, r.Last.DurationNS
	if w.cum != nil {
		if fresh {
			for i, c := range w.count {
				w.cum[i] += c
			}
			w.cumNS += r.Last.DurationNS
		}
		est, durNS = w.cum, w.cumNS
	}
	if w.P.Held == "cool" {
		for i, h := range w.held {
			if h && w.count[i] == 0 {
				w.held[i] = false
			}
		}
	}
	w.spans = w.spans[:0]
	for i := 0; i < len(r.ToSend); {
		st := int64(r.ToSend[i]) / w.stripe
		end := (st + 1) * w.stripe
		j := i + 1
		for j < len(r.ToSend) && int64(r.ToSend[j]) < end {
			j++
		}
		if w.held == nil || !w.held[st] {
			w.spans = append(w.spans, span{stripe: st, count: est[st], lo: i, hi: j})
		}
		i = j
	}
	if w.P.Order {
		// Rates share one divisor (the last round's length, or the summed
		// length), so ordering by count is ordering by rate.
		slices.SortFunc(w.spans, func(a, b span) int {
			if c := cmp.Compare(a.count, b.count); c != 0 {
				return c
			}
			return cmp.Compare(a.stripe, b.stripe)
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
	for k, sp := range w.spans {
		if w.P.Throttle {
			sum += rate(sp.count, durNS)
			if sum > bw {
				if w.held != nil {
					for _, h := range w.spans[k:] {
						w.held[h.stripe] = true
					}
				}
				break
			}
		}
		w.order = append(w.order, r.ToSend[sp.lo:sp.hi]...)
	}
	plan.Order = w.order
	return plan
}

// stop is the stop test of the reading in effect, on the round just
// finished.
func (w *Microwiper) stop(r *Round, fresh bool) bool {
	last := r.Last
	if w.P.Stop == "held" {
		// Held pages count as the round's work: fold them into Skipped for
		// Xen's test.
		last.Skipped += last.Held
	}
	rr := *r
	rr.Last = last
	stop := xenStop(&rr, w.m.Pages, w.P.MaxRounds, w.P.MinPages, w.P.MaxFactor)
	if w.P.Stop == "shrink" && r.Number > 1 {
		prev := w.prevHeld
		if fresh {
			w.prevHeld = r.Last.Held
		}
		stop = stop || (r.Last.Held > 0 && prev > 0 && r.Last.Held >= prev)
	}
	return stop
}

// rate is pages per second; a round of zero length makes any dirtying
// infinitely fast.
func rate(pages int64, durNS int64) float64 {
	if pages == 0 {
		return 0
	}
	if durNS <= 0 {
		return math.Inf(1)
	}
	return float64(pages) * 1e9 / float64(durNS)
}

// The variant names. Each reading of the four open choices has a name
// part; the default reading's parts are left out of a variant's name.
var (
	ratePart = map[string]string{"last": "last-rate", "mean": "avg-rate"}
	heldPart = map[string]string{"next": "held-next", "final": "held-final", "cool": "held-cool"}
	stopPart = map[string]string{"xen": "xen-stop", "held": "held-stop", "shrink": "shrink-stop"}
)

// VariantName names the reading p makes of the paper's four open choices:
// "microwiper" for the default, else "microwiper/" and the parts that
// differ from it joined by "+", in the order stripes, rate, held, stop:
// stripes-N (N pages per stripe; the default paper-stripes is pages/1024),
// avg-rate, held-final or held-cool, held-stop or shrink-stop. The other
// parameters (order, throttle, skip, bandwidth and Xen's constants) are
// not part of the name.
func VariantName(p MicrowiperParams) string {
	var parts []string
	if p.StripePages != 0 {
		parts = append(parts, "stripes-"+strconv.FormatInt(p.StripePages, 10))
	}
	if p.Rate != "last" && ratePart[p.Rate] != "" {
		parts = append(parts, ratePart[p.Rate])
	}
	if p.Held != "next" && heldPart[p.Held] != "" {
		parts = append(parts, heldPart[p.Held])
	}
	if p.Stop != "xen" && stopPart[p.Stop] != "" {
		parts = append(parts, stopPart[p.Stop])
	}
	if len(parts) == 0 {
		return "microwiper"
	}
	return "microwiper/" + strings.Join(parts, "+")
}

// ParseVariant reads a variant name: "microwiper/" and parts joined by
// "+", in any order, each choice at most once; default parts
// (paper-stripes, last-rate, held-next, xen-stop) are allowed.
func ParseVariant(name string) (MicrowiperParams, error) {
	p := DefaultMicrowiperParams()
	rest, ok := strings.CutPrefix(name, "microwiper/")
	if !ok || rest == "" {
		return p, fmt.Errorf("variant %q: want microwiper/ and parts joined by +, e.g. microwiper/stripes-32+avg-rate+held-final", name)
	}
	set := map[string]bool{}
	once := func(choice, part string) error {
		if set[choice] {
			return fmt.Errorf("variant %q: %s chosen twice (%s)", name, choice, part)
		}
		set[choice] = true
		return nil
	}
	find := func(m map[string]string, part string) (string, bool) {
		for k, v := range m {
			if v == part {
				return k, true
			}
		}
		return "", false
	}
	for _, part := range strings.Split(rest, "+") {
		var err error
		switch {
		case part == "paper-stripes":
			err = once("stripes", part)
		case strings.HasPrefix(part, "stripes-"):
			n, perr := strconv.ParseInt(strings.TrimPrefix(part, "stripes-"), 10, 64)
			if perr != nil || n < 1 || n > MaxPagesParam {
				return p, fmt.Errorf("variant %q: %s: want stripes-N with 1 <= N <= %d pages", name, part, int64(MaxPagesParam))
			}
			p.StripePages = n
			err = once("stripes", part)
		default:
			if v, ok := find(ratePart, part); ok {
				p.Rate, err = v, once("rate", part)
			} else if v, ok := find(heldPart, part); ok {
				p.Held, err = v, once("held", part)
			} else if v, ok := find(stopPart, part); ok {
				p.Stop, err = v, once("stop", part)
			} else {
				return p, fmt.Errorf("variant %q: unknown part %q (known: paper-stripes, stripes-N, last-rate, avg-rate, held-next, held-final, held-cool, xen-stop, held-stop, shrink-stop)", name, part)
			}
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// Variants lists the named variants of the default reproduction matrix:
// every combination of the stripe choice (paper-stripes, stripes-32), the
// rate estimate, the fate of held pages and the stop test, the default
// ("microwiper") first; then the stripe sweep stripes-8 to stripes-256 on
// the default reading of the other three.
func Variants() []string {
	var out []string
	for _, st := range []int64{0, 32} {
		for _, rate := range []string{"last", "mean"} {
			for _, held := range []string{"next", "final", "cool"} {
				for _, stop := range []string{"xen", "held", "shrink"} {
					p := DefaultMicrowiperParams()
					p.StripePages, p.Rate, p.Held, p.Stop = st, rate, held, stop
					out = append(out, VariantName(p))
				}
			}
		}
	}
	for _, st := range []int64{8, 16, 64, 128, 256} {
		p := DefaultMicrowiperParams()
		p.StripePages = st
		out = append(out, VariantName(p))
	}
	return out
}
