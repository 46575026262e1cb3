package replay

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/microwiper/microwiper/internal/splitmix"
	"github.com/microwiper/microwiper/tracefmt"
)

// DirtyModel says what a trace row (t, p) means for dirtying; see docs/DESIGN.md
// "Time model". E is the trace's epoch.
type DirtyModel string

const (
	// Continuous: p is being written throughout the epoch (t-E, t]: dirty
	// from t-E+1 ns, and a send of p up to t leaves it dirty. The default
	// for epoch traces.
	Continuous DirtyModel = "continuous"
	// Once: dirtied once, at t - E + SplitMix64(p XOR t) mod E.
	Once DirtyModel = "once"
	// End: dirtied once, at t.
	End DirtyModel = "end"
	// Exact: dirtied at t, the real write time (uffd-wp-sync traces).
	Exact DirtyModel = "exact"
)

// DefaultDirtyModel is exact for traces whose t is the real write time
// (uffd-wp-sync) and continuous for the rest.
func DefaultDirtyModel(backend string) DirtyModel {
	if backend == tracefmt.BackendUffdSync {
		return Exact
	}
	return Continuous
}

// ParseDirtyModel checks a --dirty value.
func ParseDirtyModel(s string) (DirtyModel, error) {
	switch d := DirtyModel(s); d {
	case Continuous, Once, End, Exact:
		return d, nil
	}
	return "", fmt.Errorf("dirty model %q: want continuous, once, end or exact", s)
}

// AfterTrace says what the workload does once the migration outlasts the
// trace.
type AfterTrace string

const (
	// Loop replays the written span of the trace again and again (see
	// buildSchedule for the period): a workload keeps running. The default.
	Loop AfterTrace = "loop"
	// Idle stops writing.
	Idle AfterTrace = "idle"
)

// ParseAfterTrace checks an --after-trace value.
func ParseAfterTrace(s string) (AfterTrace, error) {
	switch a := AfterTrace(s); a {
	case Loop, Idle:
		return a, nil
	}
	return "", fmt.Errorf("after-trace %q: want loop or idle", s)
}

// TimeModel places a trace's writes in migration time.
type TimeModel struct {
	// Dirty is the reading of a row; "" means DefaultDirtyModel.
	Dirty DirtyModel
	// After is what happens past the trace's end; "" means Loop.
	After AfterTrace
	// StartNS is the trace time at which the migration starts. Writes
	// before it happened before the migration: they only make pages hold
	// data.
	StartNS int64
	// Speed is trace time per migration time; 0 means 1.
	Speed float64
}

func (tm TimeModel) withDefaults(h tracefmt.Header) TimeModel {
	if tm.Dirty == "" {
		tm.Dirty = DefaultDirtyModel(h.Backend)
	}
	if tm.After == "" {
		tm.After = Loop
	}
	if tm.Speed == 0 {
		tm.Speed = 1
	}
	return tm
}

// Check reports the first bad field.
func (tm TimeModel) Check() error {
	if _, err := ParseDirtyModel(string(tm.Dirty)); tm.Dirty != "" && err != nil {
		return err
	}
	if _, err := ParseAfterTrace(string(tm.After)); tm.After != "" && err != nil {
		return err
	}
	if tm.StartNS < 0 {
		return fmt.Errorf("start %dns: want 0 or later", tm.StartNS)
	}
	if tm.Speed < 0 || math.IsNaN(tm.Speed) || math.IsInf(tm.Speed, 0) || (tm.Speed != 0 && tm.Speed < 1e-6) || tm.Speed > 1e6 {
		return fmt.Errorf("speed %g: want a factor between 1e-6 and 1e6", tm.Speed)
	}
	return nil
}

// kind is what a group of events does to its pages.
type kind uint8

const (
	// writeAt dirties the pages at one instant (once, end, exact).
	writeAt kind = iota
	// beginEpoch starts an epoch under the continuous reading: the pages are
	// written, and stay dirty (being written) until the matching endEpoch.
	beginEpoch
	// endEpoch closes an epoch under the continuous reading: the pages are
	// written for the last time in it and stop being written.
	endEpoch
)

// schedule is one pass of the trace as groups of pages dirtied at the same
// trace time: group g dirties pages[lo[g]:hi[g]] at t[g], as kind[g] says
// (nil: all writeAt). Groups are in time order; within one time their order
// does not matter for versions (each page's version grows by one per
// event), and an endEpoch goes before a beginEpoch.
type schedule struct {
	t      []int64
	lo, hi []int64
	kind   []kind
	pages  []int32
	zero   []uint64 // zero marks of pages, bit per entry (Trace.Zero); nil if none
	period int64    // loop period: the written span, first epoch's start to last epoch's end; 0 if the trace cannot loop
}

func buildSchedule(tr *Trace, dm DirtyModel) *schedule {
	s := &schedule{pages: tr.Pages, zero: tr.Zero}
	n := len(tr.EpochT)
	E := tr.Header.EpochNS
	if n > 0 {
		// A loop repeats the span the trace saw written, from the start
		// of its first written epoch to the end of its last: the time
		// before the first written epoch is capture set-up (a whole-VM
		// capture reads every present page first), and repeating it would
		// put a write-free gap at every seam, where a pause finds nothing
		// dirty even though the workload never stopped writing.
		s.period = tr.EpochT[n-1] - max(0, tr.EpochT[0]-E)
	}
	switch dm {
	case End, Exact:
		s.t = tr.EpochT
		s.lo = tr.EpochOff[:n]
		s.hi = tr.EpochOff[1:]
	case Continuous:
		// Merge the epoch begins (t-E+1: the first instant of (t-E, t])
		// with the epoch ends (t+1: the first instant the page is no longer
		// being written); at equal times the end of the earlier epoch goes
		// first.
		s.t = make([]int64, 0, 2*n)
		s.lo = make([]int64, 0, 2*n)
		s.hi = make([]int64, 0, 2*n)
		s.kind = make([]kind, 0, 2*n)
		i, j := 0, 0 // next begin, next end
		for i < n || j < n {
			if i < n && (j >= n || tr.EpochT[i]-E+1 < tr.EpochT[j]+1) {
				s.t = append(s.t, tr.EpochT[i]-E+1)
				s.lo = append(s.lo, tr.EpochOff[i])
				s.hi = append(s.hi, tr.EpochOff[i+1])
				s.kind = append(s.kind, beginEpoch)
				i++
			} else {
				s.t = append(s.t, tr.EpochT[j]+1)
				s.lo = append(s.lo, tr.EpochOff[j])
				s.hi = append(s.hi, tr.EpochOff[j+1])
				s.kind = append(s.kind, endEpoch)
				j++
			}
		}
	case Once:
		type ev struct {
			t    int64
			p    int32
			zero bool
		}
		evs := make([]ev, 0, len(tr.Pages))
		for i := range n {
			t, ps := tr.Epoch(i)
			z := tr.zeros(tr.EpochOff[i])
			for j, p := range ps {
				off := splitmix.Mix(uint64(p)^uint64(t)) % uint64(E)
				evs = append(evs, ev{t - E + int64(off), p, z.At(j)})
			}
		}
		slices.SortFunc(evs, func(a, b ev) int {
			if c := cmp.Compare(a.t, b.t); c != 0 {
				return c
			}
			return cmp.Compare(a.p, b.p)
		})
		s.pages = make([]int32, len(evs))
		s.zero = nil
		if tr.ZeroRows > 0 {
			s.zero = make([]uint64, (len(evs)+63)/64)
		}
		for i, e := range evs {
			s.pages[i] = e.p
			if e.zero {
				s.zero[i>>6] |= 1 << (uint(i) & 63)
			}
			if i == 0 || e.t != evs[i-1].t {
				s.t = append(s.t, e.t)
				s.lo = append(s.lo, int64(i))
				s.hi = append(s.hi, int64(i))
			}
			s.hi[len(s.hi)-1]++
		}
	}
	return s
}

// events is the time model as a stream of dirtying events in migration
// time: groups of pages dirtied at one instant, in time order, with the
// trace clock scaled by speed, slowed by throttling, looping or idling past
// the trace's end, and stopped at the pause. Both engines drive it: the
// simulator pops groups as its virtual clock passes them, the socket
// engine as real time does.
type events struct {
	s     *schedule
	loop  bool
	speed float64

	cycle int64 // loop cycle of the next group
	g     int   // next group in the schedule

	// Trace time at migration time m >= m0 is tau0 + floor((m-m0)*rho).
	m0, tau0 int64
	rho      float64
	throttle int
	lost     float64 // trace time lost to throttling, ns
	paused   bool

	next int64 // migration time of the next group; math.MaxInt64 if none
}

// openEvents returns the event stream of tr under tm, positioned at
// migration time 0 (trace time tm.StartNS).
func openEvents(tr *Trace, tm TimeModel) (*events, error) {
	if err := tm.Check(); err != nil {
		return nil, err
	}
	tm = tm.withDefaults(tr.Header)
	e := &events{s: buildSchedule(tr, tm.Dirty), speed: tm.Speed, tau0: tm.StartNS, rho: tm.Speed}
	e.loop = tm.After == Loop && e.s.period > 0
	e.seek(tm.StartNS)
	return e, nil
}

// DirtyModelFor resolves the default dirty model of a trace.
func DirtyModelFor(tr *Trace, tm TimeModel) DirtyModel { return tm.withDefaults(tr.Header).Dirty }

// seek skips the groups before trace time start.
func (e *events) seek(start int64) {
	s := e.s
	if len(s.t) == 0 {
		e.next = math.MaxInt64
		return
	}
	if e.loop && start > s.t[len(s.t)-1] {
		e.cycle = (start - s.t[len(s.t)-1]) / s.period
	}
	for e.groupTime() < start {
		e.advance()
		if e.g >= len(s.t) {
			break
		}
	}
	e.next = e.migTime()
}

// Prehistory calls fn with the groups written before the migration
// started, in time order.
func (e *events) Prehistory(fn func(k kind, pages []int32)) {
	end := e.g
	if e.cycle > 0 {
		end = len(e.s.t)
	}
	for g := 0; g < end && g < len(e.s.t); g++ {
		fn(e.s.kindOf(g), e.s.pages[e.s.lo[g]:e.s.hi[g]])
	}
}

// prehistoryZeros calls fn with the writes before the migration started
// and their zero marks, in the order that leaves each page's last write
// last: looping, the previous cycle's groups from the current one on,
// then this cycle's before it.
func (e *events) prehistoryZeros(fn func(pages []int32, z Zeros)) {
	n := len(e.s.t)
	cur := min(e.g, n)
	group := func(g int) { fn(e.s.pages[e.s.lo[g]:e.s.hi[g]], e.s.zerosOf(g)) }
	if e.cycle > 0 {
		for g := cur; g < n; g++ {
			group(g)
		}
	}
	for g := range cur {
		group(g)
	}
}

// zerosOf returns group g's zero marks.
func (s *schedule) zerosOf(g int) Zeros {
	if s.zero == nil {
		return Zeros{}
	}
	return Zeros{bits: s.zero, off: s.lo[g]}
}

func (s *schedule) kindOf(g int) kind {
	if s.kind == nil {
		return writeAt
	}
	return s.kind[g]
}

func (e *events) groupTime() int64 {
	if e.g >= len(e.s.t) {
		return math.MaxInt64
	}
	return e.s.t[e.g] + e.cycle*e.s.period
}

func (e *events) advance() {
	e.g++
	if e.g == len(e.s.t) && e.loop {
		e.g = 0
		e.cycle++
	}
}

// traceAt is the trace time at migration time m >= m0.
func (e *events) traceAt(m int64) int64 {
	if e.rho == 1 {
		return e.tau0 + (m - e.m0)
	}
	return e.tau0 + int64(float64(m-e.m0)*e.rho)
}

// migTime is the first migration time at which the next group has
// happened: the least m >= m0 with traceAt(m) >= its time.
func (e *events) migTime() int64 {
	tau := e.groupTime()
	if tau == math.MaxInt64 || e.paused {
		return math.MaxInt64
	}
	if tau <= e.tau0 {
		return e.m0
	}
	if e.rho == 1 {
		return e.m0 + (tau - e.tau0)
	}
	d := float64(tau-e.tau0) / e.rho
	if d > 9e18 {
		return math.MaxInt64
	}
	m := e.m0 + int64(math.Ceil(d))
	for m > e.m0 && e.traceAt(m-1) >= tau {
		m--
	}
	for e.traceAt(m) < tau {
		m++
	}
	return m
}

// NextNS is the migration time of the next group of events,
// math.MaxInt64 when there is none (idle past the trace, or paused).
func (e *events) NextNS() int64 { return e.next }

// Pop returns the next group: its migration time, its kind and the pages
// it dirties (a read-only view valid until the stream is dropped).
func (e *events) Pop() (int64, kind, []int32) {
	m, k, ps, _ := e.popZeros()
	return m, k, ps
}

// popZeros is Pop with the group's zero marks.
func (e *events) popZeros() (int64, kind, []int32, Zeros) {
	m := e.next
	k := e.s.kindOf(e.g)
	ps := e.s.pages[e.s.lo[e.g]:e.s.hi[e.g]]
	z := e.s.zerosOf(e.g)
	e.advance()
	e.next = e.migTime()
	return m, k, ps, z
}

// TraceNS is the trace time at migration time m (m not before the last
// throttle change or pause).
func (e *events) TraceNS(m int64) int64 {
	if e.paused {
		return e.tau0
	}
	return e.traceAt(m)
}

// SetThrottle slows the trace clock to (100-pct)% of its speed from
// migration time now on. Pop every group due by now first.
func (e *events) SetThrottle(now int64, pct int) {
	if pct == e.throttle || e.paused {
		return
	}
	e.rebase(now)
	e.throttle = pct
	e.rho = e.speed * float64(100-pct) / 100
	e.next = e.migTime()
}

// Throttle is the throttle in effect, in percent.
func (e *events) Throttle() int { return e.throttle }

func (e *events) rebase(now int64) {
	tau := e.traceAt(now)
	e.lost += float64(now-e.m0)*e.speed - float64(tau-e.tau0)
	e.m0, e.tau0 = now, tau
}

// Pause stops the trace clock at migration time now (stop-and-copy): no
// more events.
func (e *events) Pause(now int64) {
	if e.paused {
		return
	}
	e.rebase(now)
	e.paused = true
	e.next = math.MaxInt64
}

// LostNS is the trace time lost to throttling so far (up to the last
// throttle change or the pause).
func (e *events) LostNS() float64 { return e.lost }
