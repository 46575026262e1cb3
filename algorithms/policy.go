package algorithms

// Migration describes the migration a policy plans. The engine fills it in
// once, before round 1.
type Migration struct {
	// Pages is the memory size in pages; each must be sent at least once.
	Pages int64
	// PageSize is the page size in bytes.
	PageSize int64
	// HeaderBytes is the per-page framing sent with every page.
	HeaderBytes int64
	// LinkBps is the link bandwidth in bits per second.
	LinkBps int64
	// RTTNS is the link's round-trip time; the switch-over pays one (live
	// rounds are pipelined over one stream).
	RTTNS int64
}

// PageBits is what one full page costs on the link, in bits.
func (m Migration) PageBits() int64 { return (m.PageSize + m.HeaderBytes) * 8 }

// LinkPagesPerSec is the link rate in full pages per second.
func (m Migration) LinkPagesPerSec() float64 { return float64(m.LinkBps) / float64(m.PageBits()) }

// Traits are properties of a policy that change how the engine charges the
// link.
type Traits struct {
	// ZeroPages: a page that never held data (not in the initial image and
	// never written) is sent as a header only (QEMU's zero-page detection).
	ZeroPages bool
	// ZeroPageNS is the time the source spends on each zero page besides
	// its header's transfer: QEMU reads the whole page to find it zero
	// (buffer_is_zero), at CPU speed, outside the rate limit. A pass over
	// mostly-zero memory is then slower than its bytes say, and QEMU's
	// bandwidth sample (bytes over time) falls.
	ZeroPageNS int64
}

// Capped is a policy with its own cap on the live rounds' rate, distinct
// from the link: QEMU's max-bandwidth. The cap limits what the policy
// sends while the workload runs; the link (the engine's bandwidth) is the
// physical rate, which the final round may use in full. Engines derive
// their non-convergence bound from the slower of the two.
type Capped interface {
	// LiveCapBps is the cap in bits/s; 0 means none.
	LiveCapBps() int64
}

// RoundStats summarises one finished round.
type RoundStats struct {
	// Number is the round number, from 1.
	Number int
	// StartNS and DurationNS place the round in migration time.
	StartNS, DurationNS int64
	// Sent, Skipped and Held count pages sent, skipped by the peek, and held
	// back by the plan.
	Sent, Skipped, Held int64
	// Dirtied is the number of distinct pages dirtied during the round.
	Dirtied int64
	// Bytes is what the round put on the link.
	Bytes int64
}

// ThroughputBps is the round's measured throughput in bits per second
// (bytes over the round's duration), 0 for an empty round.
func (s RoundStats) ThroughputBps() float64 {
	if s.DurationNS <= 0 {
		return 0
	}
	return float64(s.Bytes) * 8 * 1e9 / float64(s.DurationNS)
}

// Round is what a policy sees at the start of a round.
type Round struct {
	// Number is this round's number, from 1.
	Number int
	// NowNS is the migration time elapsed.
	NowNS int64
	// SentPages and SentBytes are totals over all earlier rounds.
	SentPages, SentBytes int64
	// ToSend lists, ascending, every page that needs sending: dirtied since
	// the previous round began, or held back, or left unsent.
	ToSend []int32
	// Dirtied lists, ascending, the pages dirtied during the previous round
	// (the dirty log just read and cleared); nil in round 1.
	Dirtied []int32
	// Last is the previous round; zero in round 1.
	Last RoundStats
}

// Plan is a policy's answer at a round start.
type Plan struct {
	// Stop pauses the workload now and runs the final round.
	Stop bool
	// Order lists the pages to send this round, each from ToSend and at most
	// once. Pages of ToSend not listed are held back.
	Order []int32
	// Peek skips, before each batch, the batch's pages that were dirtied
	// since the round began (Xen's peek of the dirty log).
	Peek bool
	// PeekSendsHeader, with Peek, sends the pages the peek finds dirty as
	// header-only records carrying no content instead of skipping them
	// (Xen's allocate-only records for HVM guests in round 1): they count
	// as sent, cost a header each, and stay dirty.
	PeekSendsHeader bool
	// BatchPages is the number of selected pages per batch; the engine
	// peeks and calls BeforeBatch once per batch. 0 means 1024.
	BatchPages int
	// RateBps caps this round's sending rate; 0 or above the link means the
	// link rate.
	RateBps int64
	// ThrottlePct is the workload throttle in percent (0 to 99) from now on:
	// the trace clock runs at (100 - ThrottlePct)% of its speed.
	ThrottlePct int
}

// Batch is what a policy sees before each batch of a live round.
type Batch struct {
	// Round is the current round's number.
	Round int
	// NowNS is the migration time elapsed.
	NowNS int64
	// SentPages and SentBytes are totals so far, this round included.
	SentPages, SentBytes int64
	// Remaining is the number of pages of this round's Order not yet sent
	// or skipped.
	Remaining int64
	// DirtyPages is the number of distinct pages in the dirty log now
	// (dirtied since the round began).
	DirtyPages int64
	// ThrottlePct is the workload throttle in effect; a policy may change
	// it (0 to 99) and the engine applies it from now on (QEMU's periodic
	// bitmap sync can step auto-converge in the middle of a pass).
	ThrottlePct int
	// Sync, set by the policy, syncs the dirty log now without stopping:
	// the round ends here and its unsent pages stay pending, joining the
	// dirtied ones in the next round's ToSend (QEMU's mid-pass bitmap sync,
	// after which it goes on from where it was). It is ignored before a
	// round's first batch, which follows a sync already. Stop wins over it.
	Sync bool
	// RemainingDirty, when not nil, counts the remaining pages that are
	// also in the dirty log, so Remaining + DirtyPages - RemainingDirty()
	// is what a sync now would leave to send. It costs O(Remaining): call
	// it only when Remaining is small. An engine may leave it nil; policies
	// then use Remaining + DirtyPages as an upper bound.
	RemainingDirty func() int64
}

// Policy is a live-migration algorithm. See the package comment for the
// order of calls. A Policy value is used for one migration at a time;
// Begin resets it.
type Policy interface {
	// Name is the policy's registry name ("xen-precopy").
	Name() string
	// Begin prepares a migration and returns the policy's traits.
	Begin(m Migration) Traits
	// PlanRound decides, at a round start, to stop or what to send.
	PlanRound(r *Round) Plan
	// BeforeBatch runs before each batch of a live round; true stops the
	// round now and starts the final round.
	BeforeBatch(b *Batch) bool
}

// Bound is a lower bound computed from the future trace rather than a
// policy; only the simulator runs it.
type Bound interface {
	// Name is the bound's registry name ("oracle").
	Name() string
	// IsBound marks the type; it does nothing.
	IsBound()
}
