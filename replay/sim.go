package replay

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/microwiper/microwiper/algorithms"
)

// Config is everything about a run except the trace and the algorithm.
type Config struct {
	// Link is the network.
	Link Link
	// Time places the trace's writes in migration time.
	Time TimeModel
	// ResumeOverheadNS is added to the downtime after the final round
	// (--resume-overhead).
	ResumeOverheadNS int64
	// Seed and Rep label the run; the simulator uses no randomness.
	Seed, Rep int64
	// MaxNS and MaxRounds bound a migration that never converges (QEMU
	// without auto-converge can go on forever): once a round would start
	// at or after MaxNS of migration time, or after MaxRounds rounds, the
	// engine forces the final round and marks the result ForcedStop. 0
	// means the defaults: ten times the time to send memory once (at least
	// a minute), and 10000 rounds.
	MaxNS     int64
	MaxRounds int
}

// Defaults for Config.MaxNS and Config.MaxRounds.
const (
	DefaultMaxMemoryTimes = 10
	MinMaxNS              = int64(60e9)
	DefaultMaxRounds      = 10000
)

// Check reports the first bad field.
func (c Config) Check() error {
	if err := c.Link.Check(); err != nil {
		return err
	}
	if c.ResumeOverheadNS < 0 {
		return fmt.Errorf("resume overhead %dns: want 0 or more", c.ResumeOverheadNS)
	}
	return c.Time.Check()
}

// Engine runs one migration of a trace under an algorithm.
type Engine interface {
	// Name is the engine's name in results ("sim").
	Name() string
	// Run migrates tr under alg (a fresh algorithms.Policy or Bound).
	Run(ctx context.Context, tr *Trace, alg algorithms.Algorithm, cfg Config) (*Result, error)
}

// Sim is the virtual-time engine: deterministic, the same inputs give the
// same Result.
type Sim struct{}

// Name is "sim".
func (Sim) Name() string { return "sim" }

// Run simulates the migration. It fails only on bad input or a policy that
// breaks the seam's contract.
func (Sim) Run(ctx context.Context, tr *Trace, alg algorithms.Algorithm, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := tr.Header.Check(); err != nil {
		return nil, fmt.Errorf("trace %s: %w", tr.Name, err)
	}
	if tr.Header.Pages > math.MaxInt32 {
		return nil, fmt.Errorf("trace %s has %d pages: the simulator handles at most %d", tr.Name, tr.Header.Pages, math.MaxInt32)
	}
	ev, err := NewEvents(tr, cfg.Time)
	if err != nil {
		return nil, err
	}
	res := NewResult(tr, alg, "sim", cfg)
	switch a := alg.(type) {
	case algorithms.Policy:
		s := newSim(tr, ev, cfg, a)
		if err := s.run(ctx, res); err != nil {
			return nil, err
		}
	case *algorithms.Oracle:
		if err := runOracle(ctx, tr, ev, cfg, a, res); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("algorithm %s: the simulator cannot run a %T", alg.Name(), alg)
	}
	for i := range res.RoundRows {
		res.RoundRows[i].RunID = res.RunID
	}
	return res, nil
}

// NewResult fills in a Result's identifying fields.
func NewResult(tr *Trace, alg algorithms.Algorithm, engine string, cfg Config) *Result {
	r := &Result{
		Trace:        tr.Name,
		Algorithm:    alg.Name(),
		Params:       algorithms.ParamsJSON(alg),
		Engine:       engine,
		Link:         cfg.Link.Name(),
		BandwidthBps: cfg.Link.Bps,
		RTTNS:        cfg.Link.RTTNS,
		DirtyModel:   string(DirtyModelFor(tr, cfg.Time)),
		Seed:         cfg.Seed,
		Rep:          cfg.Rep,
	}
	tm := cfg.Time.withDefaults(tr.Header)
	r.RunID = runID(r.Trace, r.Algorithm, r.Params, r.Engine, r.Link, fmt.Sprint(r.RTTNS, cfg.Link.HeaderBytes),
		r.DirtyModel, string(tm.After), fmt.Sprint(tm.StartNS, tm.Speed, cfg.ResumeOverheadNS, r.Seed, r.Rep))
	return r
}

// sim is one simulated migration. Pages are int32 indices; bitmaps are
// []uint64 with page p at word p>>6, bit p&63.
type sim struct {
	tr   *Trace
	ev   *Events
	cfg  Config
	pol  algorithms.Policy
	n    int64
	mig  algorithms.Migration
	zero bool // zero pages cost a header only

	srcVer, dstVer []uint32 // dirtying count per page; version last sent
	dirty          []uint64 // the dirty log: dirtied since the round began
	pend           []uint64 // held back or left unsent, still to send
	hasData        []uint64 // pages that are not zero pages
	dirtyCount     int64    // pages set in dirty
	events         int64

	now      int64
	sent     int64
	sentByte int64

	toSend, dirtied []int32 // round buffers, valid until the next round
	bufs            *simBufs
	batch           []int32
}

func newSim(tr *Trace, ev *Events, cfg Config, pol algorithms.Policy) *sim {
	n := tr.Header.Pages
	words := (n + 63) / 64
	bufs, _ := bufPool.Get().(*simBufs)
	if bufs == nil {
		bufs = new(simBufs)
	}
	s := &sim{tr: tr, ev: ev, cfg: cfg, pol: pol, n: n,
		srcVer: grow32(&bufs.srcVer, n), dstVer: grow32(&bufs.dstVer, n),
		dirty: grow64(&bufs.dirty, words), pend: grow64(&bufs.pend, words), hasData: grow64(&bufs.hasData, words),
		toSend: bufs.toSend[:0], dirtied: bufs.dirtied[:0], bufs: bufs,
		mig: algorithms.Migration{Pages: n, PageSize: tr.Header.PageSize, HeaderBytes: cfg.Link.HeaderBytes,
			LinkBps: cfg.Link.Bps, RTTNS: cfg.Link.RTTNS},
	}
	// Every page starts at version 1 at the source and 0 (nothing) at the
	// destination, so an unsent page is a lost update.
	for i := range s.srcVer {
		s.srcVer[i] = 1
	}
	setAll(s.pend, n)
	if tr.HasInitial {
		for _, p := range tr.Initial {
			s.hasData[p>>6] |= 1 << (uint(p) & 63)
		}
	} else {
		setAll(s.hasData, n)
	}
	ev.Prehistory(func(ps []int32) {
		for _, p := range ps {
			s.hasData[p>>6] |= 1 << (uint(p) & 63)
		}
	})
	return s
}

// simBufs are a simulation's per-page arrays, pooled so that a sweep of
// runs reuses them instead of faulting in fresh memory each time.
type simBufs struct {
	srcVer, dstVer       []uint32
	dirty, pend, hasData []uint64
	toSend, dirtied      []int32
}

var bufPool sync.Pool

// grow32 returns (*b)[:n] cleared, reallocating when too small.
func grow32(b *[]uint32, n int64) []uint32 {
	if int64(cap(*b)) < n {
		*b = make([]uint32, n)
	}
	*b = (*b)[:n]
	clear(*b)
	return *b
}

func grow64(b *[]uint64, n int64) []uint64 {
	if int64(cap(*b)) < n {
		*b = make([]uint64, n)
	}
	*b = (*b)[:n]
	clear(*b)
	return *b
}

// release returns the arrays to the pool; s must not be used after.
func (s *sim) release() {
	s.bufs.toSend, s.bufs.dirtied = s.toSend, s.dirtied
	bufPool.Put(s.bufs)
	s.bufs = nil
}

func setAll(b []uint64, n int64) {
	for i := range b {
		b[i] = math.MaxUint64
	}
	if r := n & 63; r != 0 {
		b[len(b)-1] = 1<<uint(r) - 1
	}
}

// applyUntil applies, in time order, every dirtying event due at or before
// migration time now.
func (s *sim) applyUntil(now int64) {
	for s.ev.next <= now {
		_, ps := s.ev.Pop()
		src, dirty := s.srcVer, s.dirty
		added := uint64(0)
		for _, p := range ps {
			src[p]++
			w, sh := p>>6, uint(p)&63
			d := dirty[w]
			added += ^d >> sh & 1
			dirty[w] = d | 1<<sh
		}
		if s.zero {
			// Only zero-page detection needs to know which pages hold data.
			has := s.hasData
			for _, p := range ps {
				has[p>>6] |= 1 << (uint(p) & 63)
			}
		}
		s.dirtyCount += int64(added)
		s.events += int64(len(ps))
	}
}

// readLog reads and clears the dirty log into toSend and dirtied.
func (s *sim) readLog() {
	if int64(cap(s.toSend)) < s.n {
		// Round 1 lists every page: size the buffer once instead of
		// growing it.
		s.toSend = make([]int32, 0, s.n)
	}
	s.toSend, s.dirtied = ReadLog(s.dirty, s.pend, s.toSend, s.dirtied)
	s.dirtyCount = 0
}

func (s *sim) run(ctx context.Context, res *Result) error {
	maxNS, maxRounds := s.cfg.Bound(s.n, s.mig.PageBits())
	traits := s.pol.Begin(s.mig)
	s.zero = traits.ZeroPages
	var last algorithms.RoundStats
	var rows []RoundRow
	for round := 1; ; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		forced := round > maxRounds || s.now >= maxNS
		s.applyUntil(s.now)
		if n := len(rows); n > 0 {
			rows[n-1].PagesDirtied = s.dirtyCount
			last.Dirtied = s.dirtyCount
		}
		s.readLog()
		if n := len(rows); n > 0 {
			rows[n-1].RemainingDirty = int64(len(s.toSend))
		}
		r := algorithms.Round{Number: round, NowNS: s.now, SentPages: s.sent, SentBytes: s.sentByte,
			ToSend: s.toSend, Last: last}
		if round > 1 {
			r.Dirtied = s.dirtied
		}
		plan := s.pol.PlanRound(&r)
		if err := CheckThrottle(s.pol.Name(), round, &plan); err != nil {
			return err
		}
		s.ev.SetThrottle(s.now, plan.ThrottlePct)
		if plan.Stop {
			break
		}
		if forced {
			res.ForcedStop = true
			break
		}
		if err := TakeOrder(s.pol.Name(), round, plan.Order, s.pend, s.n); err != nil {
			return err
		}
		st, stopped := s.runRound(round, &plan)
		st.Held = int64(len(s.toSend) - len(plan.Order))
		rows = append(rows, RoundRow{Round: int64(round), StartNS: st.StartNS, DurationNS: st.DurationNS,
			PagesSent: st.Sent, PagesSkipped: st.Skipped, PagesHeld: st.Held, ThroughputBps: st.ThroughputBps()})
		last = st
		if stopped {
			// The final round starts right away: account the live round's
			// dirtying and leftovers now.
			s.applyUntil(s.now)
			rows[len(rows)-1].PagesDirtied = s.dirtyCount
			break
		}
	}
	// Final round: pause, then send every pending page in page order at the
	// link's full rate.
	s.ev.Pause(s.now)
	pauseAt := s.now
	s.readLog()
	if n := len(rows); n > 0 {
		rows[n-1].RemainingDirty = int64(len(s.toSend))
	}
	p := newPacer(s.cfg.Link.Bps, s.mig.PageBits(), s.cfg.Link.HeaderBytes*8)
	var bytesSent int64
	for _, pg := range s.toSend {
		bytesSent += s.send(pg, &p)
	}
	clear(s.pend)
	downtime := p.q + s.cfg.Link.RTTNS + s.cfg.ResumeOverheadNS
	final := RoundRow{Round: int64(len(rows) + 1), StartNS: pauseAt, DurationNS: downtime, PagesSent: int64(len(s.toSend))}
	if downtime > 0 {
		final.ThroughputBps = float64(bytesSent) * 8 * 1e9 / float64(downtime)
	}
	rows = append(rows, final)
	s.now = pauseAt + downtime

	res.RoundRows = rows
	res.Rounds = int64(len(rows))
	res.PagesSent = s.sent
	res.BytesSent = s.sentByte
	res.DowntimeNS = downtime
	res.TotalNS = s.now
	res.Events = s.events
	if pauseAt > 0 {
		res.Slowdown = s.ev.LostNS() / (float64(pauseAt) * s.ev.speed)
	}
	for i := range s.srcVer {
		if s.srcVer[i] != s.dstVer[i] {
			res.LostPages++
		}
	}
	s.release()
	return nil
}

// send puts page p on the link: it records the version sent and advances
// the pacer, and returns the bytes it cost.
func (s *sim) send(p int32, pc *pacer) int64 {
	s.dstVer[p] = s.srcVer[p]
	s.sent++
	if s.zero && s.hasData[p>>6]&(1<<(uint(p)&63)) == 0 {
		pc.zero()
		s.sentByte += s.cfg.Link.HeaderBytes
		return s.cfg.Link.HeaderBytes
	}
	pc.full()
	b := s.mig.PageSize + s.cfg.Link.HeaderBytes
	s.sentByte += b
	return b
}

// runRound sends one live round's plan in batches. It reports whether the
// policy stopped it before the end.
func (s *sim) runRound(round int, plan *algorithms.Plan) (algorithms.RoundStats, bool) {
	rate := s.cfg.Link.Bps
	if plan.RateBps > 0 && plan.RateBps < rate {
		rate = plan.RateBps
	}
	batchLen := plan.BatchPages
	if batchLen <= 0 {
		batchLen = 1024
	}
	st := algorithms.RoundStats{Number: round, StartNS: s.now}
	p := newPacer(rate, s.mig.PageBits(), s.cfg.Link.HeaderBytes*8)
	order := plan.Order
	start := s.now
	stopped := false
	var i int
	remainingDirty := func() int64 {
		var n int64
		for _, pg := range order[i:] {
			n += int64(s.dirty[pg>>6] >> (uint(pg) & 63) & 1)
		}
		return n
	}
	for i < len(order) {
		s.now = start + p.q
		s.applyUntil(s.now)
		b := algorithms.Batch{Round: round, NowNS: s.now, SentPages: s.sent, SentBytes: s.sentByte,
			Remaining: int64(len(order) - i), DirtyPages: s.dirtyCount, RemainingDirty: remainingDirty}
		if s.pol.BeforeBatch(&b) {
			stopped = true
			Unsend(order[i:], s.pend)
			break
		}
		// Select the batch against the log as it stands now (Xen peeks once
		// per batch), then send it with dirtying interleaved.
		var skipped int64
		s.batch, i, skipped = NextBatch(order, i, batchLen, plan.Peek, s.dirty, s.batch)
		st.Skipped += skipped
		for _, pg := range s.batch {
			if t := start + p.q; t >= s.ev.next {
				s.applyUntil(t)
			}
			st.Bytes += s.send(pg, &p)
		}
		st.Sent += int64(len(s.batch))
	}
	s.now = start + p.q
	if !stopped {
		s.now += s.cfg.Link.RTTNS
	}
	st.DurationNS = s.now - start
	return st, stopped
}
