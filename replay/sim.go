package replay

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
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
	// MaxMemory bounds the memory a run may hold and MaxWork the work it
	// may do (CheckRun); 0 means DefaultMaxMemory and DefaultMaxWork.
	MaxMemory, MaxWork int64
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
	if c.ResumeOverheadNS < 0 || c.ResumeOverheadNS > MaxResumeOverheadNS {
		return fmt.Errorf("resume overhead %v: want 0 to %v", time.Duration(c.ResumeOverheadNS), time.Duration(MaxResumeOverheadNS))
	}
	if c.MaxNS < 0 || c.MaxNS > MaxSimNS || c.MaxRounds < 0 || c.MaxMemory < 0 || c.MaxWork < 0 {
		return fmt.Errorf("run bounds %d ns, %d rounds, %d B, %d steps: want 0 (default) or positive, at most %v of migration time", c.MaxNS, c.MaxRounds, c.MaxMemory, c.MaxWork, time.Duration(MaxSimNS))
	}
	return c.Time.Check()
}

// Engine runs one migration of a trace under an algorithm.
type Engine interface {
	// Name is the engine's name in results ("sim").
	Name() string
	// Run migrates tr under alg (a fresh algorithms.Policy or Bound).
	Run(ctx context.Context, tr *Trace, alg algorithms.Algorithm, cfg Config) (*results.Result, error)
}

// bound returns the limits past which the driver forces the final round
// of a migration that does not converge: Config.MaxNS and MaxRounds, or by
// default ten times the time to send all pages once (at least MinMaxNS) and
// DefaultMaxRounds. The time to send memory once is at the slower of the
// link and capBps, the policy's own cap on its live rounds (0: none): a
// migration capped at 20 MB/s on a 4 Gbit/s link must not be stopped as if
// it ran at 4 Gbit/s.
func (c Config) bound(pages, pageBits, capBps int64) (maxNS int64, maxRounds int) {
	maxNS, maxRounds = c.MaxNS, c.MaxRounds
	if maxNS <= 0 {
		bps := c.Link.Bps
		if capBps > 0 && capBps < bps {
			bps = capBps
		}
		once := transferNS(pages, pageBits, bps)
		maxNS = MinMaxNS
		if once < (1<<63-1)/DefaultMaxMemoryTimes {
			maxNS = max(DefaultMaxMemoryTimes*once, MinMaxNS)
		} else {
			maxNS = 1<<63 - 1
		}
	}
	if maxRounds <= 0 {
		maxRounds = DefaultMaxRounds
	}
	return maxNS, maxRounds
}

// LinkSim is the link kind of the simulator's results.
const LinkSim = "sim"

// Sim is the virtual-time engine: deterministic, the same inputs give the
// same Result.
type Sim struct{}

// Name is "sim".
func (Sim) Name() string { return "sim" }

// Run simulates the migration. It fails only on bad input or a policy that
// breaks the seam's contract.
func (Sim) Run(ctx context.Context, tr *Trace, alg algorithms.Algorithm, cfg Config) (*results.Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := tr.Header.Check(); err != nil {
		return nil, fmt.Errorf("trace %s: %w", tr.Name, err)
	}
	if tr.Header.Pages > math.MaxInt32 {
		return nil, fmt.Errorf("trace %s has %d pages: the simulator handles at most %d", tr.Name, tr.Header.Pages, math.MaxInt32)
	}
	if err := CheckRun(tr, alg, "sim", cfg); err != nil {
		return nil, err
	}
	res := NewResult(tr, alg, "sim", LinkSim, cfg)
	switch a := alg.(type) {
	case algorithms.Policy:
		s, err := newSim(tr, cfg)
		if err != nil {
			return nil, err
		}
		err = s.run(ctx, a, res)
		s.release()
		if err != nil {
			return nil, err
		}
	case *algorithms.Oracle:
		ev, err := openEvents(tr, cfg.Time)
		if err != nil {
			return nil, err
		}
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

// NewResult fills in a Result's identifying fields; link is the link kind
// (LinkSim, or the socket engine's loopback, netns, remote).
func NewResult(tr *Trace, alg algorithms.Algorithm, engine, link string, cfg Config) *results.Result {
	r := &results.Result{Run: results.Run{
		Trace:            tr.Name,
		TraceID:          tr.ID(),
		Algorithm:        alg.Name(),
		Params:           algorithms.ParamsJSON(alg),
		Engine:           engine,
		Link:             link,
		BandwidthBps:     cfg.Link.Bps,
		RTTNS:            cfg.Link.RTTNS,
		ResumeOverheadNS: cfg.ResumeOverheadNS,
		DirtyModel:       string(DirtyModelFor(tr, cfg.Time)),
		Seed:             cfg.Seed,
		Rep:              cfg.Rep,
	}}
	tm := cfg.Time.withDefaults(tr.Header)
	r.Speed = tm.Speed
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	r.RunID = results.ID(r.Trace, r.TraceID, r.Algorithm, r.Params, r.Engine, r.Link, i64(r.BandwidthBps), i64(r.RTTNS),
		i64(cfg.Link.HeaderBytes), r.DirtyModel, string(tm.After), fmt.Sprint(tm.StartNS, tm.Speed, cfg.ResumeOverheadNS, r.Seed, r.Rep))
	return r
}

// sim is the simulator's Machine: virtual time advanced by the pacer as
// pages go, versions per page at the source and the destination.
type sim struct {
	log    *Log
	cfg    Config
	n      int64
	mig    algorithms.Migration
	zero   bool  // zero pages cost a header only
	zeroNS int64 // and this much source time (Traits.ZeroPageNS)

	srcVer, dstVer []uint32 // dirtying count per page; version last sent
	hasData        []uint64 // pages that are not zero pages

	now   int64
	start int64 // the round's start
	pace  pacer
	bufs  *simBufs
}

func newSim(tr *Trace, cfg Config) (*sim, error) {
	n := tr.Header.Pages
	words := (n + 63) / 64
	bufs, _ := bufPool.Get().(*simBufs)
	if bufs == nil {
		bufs = new(simBufs)
	}
	s := &sim{cfg: cfg, n: n,
		srcVer: grow32(&bufs.srcVer, n), dstVer: grow32(&bufs.dstVer, n),
		hasData: grow64(&bufs.hasData, words), bufs: bufs,
		mig: algorithms.Migration{Pages: n, PageSize: tr.Header.PageSize, HeaderBytes: cfg.Link.HeaderBytes,
			LinkBps: cfg.Link.Bps, RTTNS: cfg.Link.RTTNS},
	}
	var err error
	if s.log, err = NewLog(tr, cfg.Time, s.write); err != nil {
		bufPool.Put(bufs)
		return nil, err
	}
	// Every page starts at version 1 at the source and 0 (nothing) at the
	// destination, so an unsent page is a lost update.
	for i := range s.srcVer {
		s.srcVer[i] = 1
	}
	if tr.HasInitial {
		for _, p := range tr.Initial {
			s.hasData[p>>6] |= 1 << (uint(p) & 63)
		}
	} else {
		setAll(s.hasData, n)
	}
	s.log.Prehistory(func(ps []int32, z Zeros) { markData(s.hasData, ps, z) })
	return s, nil
}

// run drives the migration, then counts the pages whose last version never
// reached the destination.
func (s *sim) run(ctx context.Context, pol algorithms.Policy, res *results.Result) error {
	if err := Drive(ctx, s, s.log, pol, s.mig, s.cfg, res); err != nil {
		return err
	}
	for i := range s.srcVer {
		if s.srcVer[i] != s.dstVer[i] {
			res.LostPages++
		}
	}
	return nil
}

// simBufs are a simulation's per-page arrays, pooled so that a sweep of
// runs reuses them instead of faulting in fresh memory each time.
type simBufs struct {
	srcVer, dstVer []uint32
	hasData        []uint64
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

// release returns the arrays to the pools; s must not be used after.
func (s *sim) release() {
	s.log.Release()
	bufPool.Put(s.bufs)
	s.bufs = nil
}

// write is a group of writes: the source's pages change.
func (s *sim) write(ps []int32, z Zeros) {
	src := s.srcVer
	for _, p := range ps {
		src[p]++
	}
	if s.zero {
		// Only zero-page detection needs to know which pages hold data.
		markData(s.hasData, ps, z)
	}
}

// markData records in has that a group of writes left its pages holding
// data, except those z marks as left all zeros: those are zero pages
// again.
func markData(has []uint64, ps []int32, z Zeros) {
	if !z.Any() {
		for _, p := range ps {
			has[p>>6] |= 1 << (uint(p) & 63)
		}
		return
	}
	for i, p := range ps {
		if z.At(i) {
			has[p>>6] &^= 1 << (uint(p) & 63)
		} else {
			has[p>>6] |= 1 << (uint(p) & 63)
		}
	}
}

// The simulator runs on one goroutine: its lock is a no-op.
func (s *sim) Lock()   {}
func (s *sim) Unlock() {}

func (s *sim) Start(_ context.Context, traits algorithms.Traits) error {
	s.zero, s.zeroNS = traits.ZeroPages, traits.ZeroPageNS
	return nil
}

func (s *sim) Now() int64 { return s.now }

func (s *sim) Sync(context.Context) error { return nil }

func (s *sim) Changed() {}

func (s *sim) StartRound(rateBps int64) error {
	s.start = s.now
	s.pace = newPacer(rateBps, s.mig.PageBits(), s.cfg.Link.HeaderBytes*8).withZeroScan(s.zeroNS)
	return nil
}

// Send puts pages on the link one after the other, applying each write
// due before a page's send starts (a page's content is captured then).
func (s *sim) Send(pages []int32) (int64, error) {
	var b int64
	l := s.log
	for _, pg := range pages {
		if t := s.start + s.pace.q; t >= l.ev.next {
			l.ApplyUntil(t)
		}
		b += s.send(pg, &s.pace)
	}
	s.now = s.start + s.pace.q
	return b, nil
}

// EndRound costs nothing: live rounds are pipelined.
func (s *sim) EndRound(context.Context, int) error { return nil }

// SendHeaders puts header-only records on the link: time passes, the
// destination's versions do not change.
func (s *sim) SendHeaders(pages []int32) (int64, error) {
	l := s.log
	for range pages {
		if t := s.start + s.pace.q; t >= l.ev.next {
			l.ApplyUntil(t)
		}
		s.pace.zero()
	}
	s.now = s.start + s.pace.q
	return int64(len(pages)) * s.cfg.Link.HeaderBytes, nil
}

// Final sends the pages at the link's full rate; the downtime is their
// transfer time plus the switch-over's round trip (the destination's
// acknowledgement that it may resume).
func (s *sim) Final(_ context.Context, _ int, pauseAt int64, pages []int32) (int64, int64, error) {
	p := newPacer(s.cfg.Link.Bps, s.mig.PageBits(), s.cfg.Link.HeaderBytes*8).withZeroScan(s.zeroNS)
	var b int64
	for _, pg := range pages {
		b += s.send(pg, &p)
	}
	d := p.q + s.cfg.Link.RTTNS
	s.now = pauseAt + d
	return d, b, nil
}

// send puts page p on the link: it records the version sent and advances
// the pacer, and returns the bytes it cost.
func (s *sim) send(p int32, pc *pacer) int64 {
	s.dstVer[p] = s.srcVer[p]
	if s.zero && s.hasData[p>>6]&(1<<(uint(p)&63)) == 0 {
		pc.zero()
		return s.cfg.Link.HeaderBytes
	}
	pc.full()
	return s.mig.PageSize + s.cfg.Link.HeaderBytes
}

var _ Machine = (*sim)(nil)
