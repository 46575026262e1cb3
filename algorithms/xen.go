package algorithms

import "fmt"

// XenPrecopyParams are the constants of Xen 3.3-4.5's xc_domain_save
// (tools/libxc/xc_domain_save.c), the paper's baseline.
type XenPrecopyParams struct {
	// MaxRounds: after this many live rounds the final round runs.
	// DEF_MAX_ITERS = 29; the test is iter >= max_iters with iter from 1.
	MaxRounds int `param:"max_rounds" doc:"stop after this many live rounds (DEF_MAX_ITERS = 29)"`
	// MinPages: a round that sent plus skipped fewer pages than this ends
	// the live phase ("sent_this_iter + skip_this_iter < 50").
	MinPages int64 `param:"min_pages" doc:"stop when a round sent+skipped fewer pages (xc_domain_save: 50)"`
	// MaxFactor: stop once total pages sent exceed this many times memory
	// (DEF_MAX_FACTOR = 3).
	MaxFactor int64 `param:"max_factor" doc:"stop when total sent > factor x memory pages (DEF_MAX_FACTOR = 3)"`
	// BatchPages: selected pages per batch, and peek granularity
	// (MAX_BATCH_SIZE = 1024).
	BatchPages int `param:"batch_pages" doc:"pages per batch; the dirty log is peeked before each (MAX_BATCH_SIZE = 1024)"`
	// Skip: peek the dirty log before each batch and skip pages dirtied
	// again since the round began (XEN_DOMCTL_SHADOW_OP_PEEK into to_skip).
	// Off only to measure its effect.
	Skip bool `param:"skip" doc:"skip pages re-dirtied since the round began (SHADOW_OP_PEEK); off only for experiments"`
	// Guest is the guest type, pv or hvm. xc_domain_save treats HVM
	// guests' round 1 differently: superpages = !!hvm makes dont_skip true
	// in iter 1, so a page the peek finds re-dirtied is not skipped but
	// goes as an allocate-only record (XEN_DOMCTL_PFINFO_XALLOC: its pfn,
	// no data) that counts in sent_this_iter. The paper's era is PV.
	Guest string `param:"guest" doc:"pv or hvm: HVM's round 1 sends re-dirtied pages as pfn-only records that count as sent (xc_domain_save superpages); default pv"`
}

// DefaultXenPrecopyParams returns xc_domain_save's constants.
func DefaultXenPrecopyParams() XenPrecopyParams {
	return XenPrecopyParams{MaxRounds: 29, MinPages: 50, MaxFactor: 3, BatchPages: 1024, Skip: true, Guest: GuestPV}
}

// Guest types of XenPrecopyParams.Guest.
const (
	GuestPV  = "pv"
	GuestHVM = "hvm"
)

// Check reports the first bad field.
func (p XenPrecopyParams) Check() error {
	if p.Guest != GuestPV && p.Guest != GuestHVM {
		return fmt.Errorf("guest = %q: want pv or hvm", p.Guest)
	}
	return checkXen(p.MaxRounds, p.MinPages, p.MaxFactor, p.BatchPages)
}

// XenPrecopy is Xen's legacy pre-copy: every page in pfn order in round 1,
// then the dirty log of the previous round, each in pfn order, skipping
// pages re-dirtied since the round began, until the stop test holds. It
// sends zero pages in full.
type XenPrecopy struct {
	P XenPrecopyParams
	m Migration
}

// NewXenPrecopy returns the policy with default parameters.
func NewXenPrecopy() *XenPrecopy { return &XenPrecopy{P: DefaultXenPrecopyParams()} }

func (x *XenPrecopy) Name() string            { return "xen-precopy" }
func (x *XenPrecopy) ParamStruct() any        { return &x.P }
func (x *XenPrecopy) Check() error            { return x.P.Check() }
func (x *XenPrecopy) BeforeBatch(*Batch) bool { return false }

func (x *XenPrecopy) Begin(m Migration) Traits {
	x.m = m
	return Traits{}
}

func (x *XenPrecopy) PlanRound(r *Round) Plan {
	if xenStop(r, x.m.Pages, x.P.MaxRounds, x.P.MinPages, x.P.MaxFactor) {
		return Plan{Stop: true}
	}
	plan := Plan{Order: r.ToSend, Peek: x.P.Skip, BatchPages: x.P.BatchPages}
	if r.Number == 1 && x.P.Guest == GuestHVM {
		plan.PeekSendsHeader = plan.Peek
	}
	return plan
}

// xenStop is xc_domain_save's test after each live round, evaluated at the
// next round's start on the round just finished: it ran max_rounds rounds,
// or sent + skipped fewer than min_pages, or everything sent so far exceeds
// max_factor times memory. The rate-limit clause of the original is
// compiled out there and absent here.
func xenStop(r *Round, pages int64, maxRounds int, minPages, maxFactor int64) bool {
	if r.Number <= 1 {
		return false
	}
	return r.Last.Number >= maxRounds ||
		r.Last.Sent+r.Last.Skipped < minPages ||
		r.SentPages > maxFactor*pages
}

func checkXen(maxRounds int, minPages, maxFactor int64, batch int) error {
	return firstErr(
		inRange("max_rounds", int64(maxRounds), 1, MaxRoundsParam),
		inRange("min_pages", minPages, 0, MaxPagesParam),
		inRange("max_factor", maxFactor, 1, 1<<20),
		inRange("batch_pages", int64(batch), 1, MaxBatchParam))
}

// XenV2Params are the constants of Xen >= 4.6's migration v2
// simple_precopy_policy (tools/libs/guest/xg_sr_save.c).
type XenV2Params struct {
	// MaxRounds is the number of live rounds, round 1 included
	// (SPP_MAX_ITERATIONS = 5).
	MaxRounds int `param:"max_rounds" doc:"live rounds at most, round 1 included (SPP_MAX_ITERATIONS = 5)"`
	// MinPages: when fewer pages than this were dirtied during the
	// previous round (SPP_TARGET_DIRTY_COUNT = 50: dirty_count < 50), the
	// policy decides to stop, but send_memory_live still sends that dirty
	// set live before it returns and the domain is suspended.
	MinPages int64 `param:"min_pages" doc:"last live round once fewer pages than this are dirty (SPP_TARGET_DIRTY_COUNT = 50)"`
	// BatchPages is the batch length (MAX_BATCH_SIZE = 1024); v2 never
	// skips, so it only sets how often the engine looks at the log.
	BatchPages int `param:"batch_pages" doc:"pages per batch (MAX_BATCH_SIZE = 1024); v2 does not skip"`
}

// DefaultXenV2Params returns the migration v2 constants.
func DefaultXenV2Params() XenV2Params {
	return XenV2Params{MaxRounds: 5, MinPages: 50, BatchPages: 1024}
}

// XenV2 is Xen's migration v2 pre-copy with the default policy: round 1
// sends every page, later rounds the pages dirtied during the previous one,
// no skipping and no traffic cap. send_memory_live asks the policy after
// reading the log and sends the dirty set whatever it answers: so when
// fewer than MinPages are dirty, that set still goes in one more live
// round, and only the pages dirtied during it are left for the suspended
// domain. After MaxRounds live rounds it suspends without reading the log
// again.
type XenV2 struct {
	P    XenV2Params
	m    Migration
	last bool // the round under way is the one the policy chose to end with
}

// NewXenV2 returns the policy with default parameters.
func NewXenV2() *XenV2 { return &XenV2{P: DefaultXenV2Params()} }

func (x *XenV2) Name() string            { return "xen-v2" }
func (x *XenV2) ParamStruct() any        { return &x.P }
func (x *XenV2) BeforeBatch(*Batch) bool { return false }
func (x *XenV2) Check() error            { return checkXen(x.P.MaxRounds, x.P.MinPages, 1, x.P.BatchPages) }

func (x *XenV2) Begin(m Migration) Traits {
	x.m = m
	x.last = false
	return Traits{}
}

func (x *XenV2) PlanRound(r *Round) Plan {
	if r.Number > 1 {
		if x.last || r.Number > x.P.MaxRounds || len(r.ToSend) == 0 {
			return Plan{Stop: true}
		}
		x.last = int64(len(r.ToSend)) < x.P.MinPages
	}
	return Plan{Order: r.ToSend, BatchPages: x.P.BatchPages}
}

// StopAndCopyParams tune the stop-and-copy ceiling.
type StopAndCopyParams struct {
	// ZeroPages sends never-written pages as headers only, as QEMU would;
	// off (Xen's legacy behaviour) by default.
	ZeroPages bool `param:"zero_pages" doc:"send never-written pages as a header only (QEMU-like); default off (Xen-like)"`
}

// StopAndCopy pauses at once and sends all memory: the downtime ceiling.
type StopAndCopy struct{ P StopAndCopyParams }

// NewStopAndCopy returns the policy with default parameters.
func NewStopAndCopy() *StopAndCopy { return &StopAndCopy{} }

func (s *StopAndCopy) Name() string            { return "stop-and-copy" }
func (s *StopAndCopy) ParamStruct() any        { return &s.P }
func (s *StopAndCopy) Begin(Migration) Traits  { return Traits{ZeroPages: s.P.ZeroPages} }
func (s *StopAndCopy) PlanRound(*Round) Plan   { return Plan{Stop: true} }
func (s *StopAndCopy) BeforeBatch(*Batch) bool { return false }
