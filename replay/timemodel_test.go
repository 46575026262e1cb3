package replay

import (
	"testing"

	"github.com/microwiper/microwiper/internal/splitmix"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type popped struct {
	m     int64
	pages []int32
}

// drain pops every group due by until (migration ns).
func drain(e *events, until int64) []popped {
	var out []popped
	for e.NextNS() <= until {
		m, _, ps := e.Pop()
		out = append(out, popped{m / ms, append([]int32(nil), ps...)})
	}
	return out
}

func newEvents(t *testing.T, tr *Trace, tm TimeModel) *events {
	t.Helper()
	e, err := openEvents(tr, tm)
	require.NoError(t, err)
	return e
}

// TestSplitmix64 checks docs/DESIGN.md's mixer against the published first
// output of SplitMix64 seeded with 0.
func TestSplitmix64(t *testing.T) {
	assert.Equal(t, uint64(0xE220A8397B1DCDAF), splitmix.Mix(0))
}

// Epochs are 10 ms; rows (10 ms, {1,2}) and (30 ms, {2}).
func twoEpochs(t *testing.T) *Trace {
	return newTestTrace(t, 4, epoch{10, []int32{1, 2}}, epoch{30, []int32{2}})
}

// TestContinuousBeginsAndEnds: a row (t, p) is p being written throughout
// (t-E, t]: its epoch begins at t-E+1 ns and ends at t+1 ns, the first
// instant p is no longer written.
func TestContinuousBeginsAndEnds(t *testing.T) {
	e := newEvents(t, twoEpochs(t), TimeModel{Dirty: Continuous, After: Idle})
	type ev struct {
		ns    int64
		k     kind
		pages []int32
	}
	var got []ev
	for e.NextNS() < 1e12 {
		m, k, ps := e.Pop()
		got = append(got, ev{m, k, append([]int32(nil), ps...)})
	}
	assert.Equal(t, []ev{
		{1, beginEpoch, []int32{1, 2}}, {10*ms + 1, endEpoch, []int32{1, 2}},
		{20*ms + 1, beginEpoch, []int32{2}}, {30*ms + 1, endEpoch, []int32{2}},
	}, got)
}

func TestEndAndExact(t *testing.T) {
	for _, dm := range []DirtyModel{End, Exact} {
		e := newEvents(t, twoEpochs(t), TimeModel{Dirty: dm, After: Idle})
		assert.Equal(t, []popped{{10, []int32{1, 2}}, {30, []int32{2}}}, drain(e, 1e12), dm)
	}
}

// TestOnce: each row is dirtied once at t - E + SplitMix64(p XOR t) mod E.
func TestOnce(t *testing.T) {
	tr := twoEpochs(t)
	e := newEvents(t, tr, TimeModel{Dirty: Once, After: Idle})
	type ev struct{ t, p int64 }
	var got []ev
	for e.NextNS() < 1e12 {
		m, _, ps := e.Pop()
		for _, p := range ps {
			got = append(got, ev{m, int64(p)})
		}
	}
	at := func(t, p int64) int64 { return t - epochMS + int64(splitmix.Mix(uint64(p)^uint64(t))%uint64(epochMS)) }
	want := []ev{{at(10*ms, 1), 1}, {at(10*ms, 2), 2}, {at(30*ms, 2), 2}}
	if want[0].t > want[1].t {
		want[0], want[1] = want[1], want[0]
	}
	assert.Equal(t, want, got)
	for _, w := range want {
		assert.GreaterOrEqual(t, w.t, int64(0))
	}
}

// TestLoop: the trace repeats its written span, (0, 30] ms: period 30 ms.
func TestLoop(t *testing.T) {
	e := newEvents(t, twoEpochs(t), TimeModel{Dirty: End})
	assert.Equal(t, []popped{{10, []int32{1, 2}}, {30, []int32{2}}, {40, []int32{1, 2}}, {60, []int32{2}}, {70, []int32{1, 2}}}, drain(e, 70*ms))
}

// TestLoopSkipsSetup: a trace whose first written epoch ends at 40 ms
// (E = 10 ms) loops its written span (30, 60] ms, so the period is
// 60 - 30 = 30 ms: End rows come at 40, 60, then 40+30 = 70, 60+30 = 90,
// 40+60 = 100 ms. Under continuous, the second pass's first epoch begins
// at 30+30 ms + 1 ns, the instant the last epoch (50, 60] ends, so the
// seam is never write-free. With the last epoch's time as the period
// (60 ms) it would begin at 91 ms and leave (61, 91) ms clean.
func TestLoopSkipsSetup(t *testing.T) {
	late := func() *Trace {
		return newTestTrace(t, 4, epoch{40, []int32{1, 2}}, epoch{60, []int32{2}})
	}
	e := newEvents(t, late(), TimeModel{Dirty: End})
	assert.Equal(t, []popped{{40, []int32{1, 2}}, {60, []int32{2}}, {70, []int32{1, 2}}, {90, []int32{2}}, {100, []int32{1, 2}}}, drain(e, 100*ms))

	e = newEvents(t, late(), TimeModel{Dirty: Continuous})
	type ev struct {
		ns int64
		k  kind
	}
	var got []ev
	for e.NextNS() <= 61*ms+1 {
		m, k, _ := e.Pop()
		got = append(got, ev{m, k})
	}
	assert.Equal(t, []ev{
		{30*ms + 1, beginEpoch}, {40*ms + 1, endEpoch}, {50*ms + 1, beginEpoch},
		{60*ms + 1, endEpoch}, {60*ms + 1, beginEpoch},
	}, got)
}

// TestStartSpeed: starting at trace time 15 ms skips the 10 ms epoch (its
// pages only gain data); at speed 2 the 30 ms epoch lands at (30-15)/2 =
// 7.5 ms of migration time.
func TestStartSpeed(t *testing.T) {
	e := newEvents(t, twoEpochs(t), TimeModel{Dirty: End, After: Idle, StartNS: 15 * ms, Speed: 2})
	var pre []int32
	e.Prehistory(func(_ kind, ps []int32) { pre = append(pre, ps...) })
	assert.Equal(t, []int32{1, 2}, pre)
	assert.Equal(t, int64(7_500_000), e.NextNS())
	assert.Equal(t, 1, len(drain(e, 1e12)))
}

// TestThrottle: a 50% throttle from 0 halves the trace clock, so the 10 ms
// epoch comes at 20 ms; pausing at 20 ms has lost 10 ms of trace time, and
// nothing happens after the pause.
func TestThrottle(t *testing.T) {
	e := newEvents(t, twoEpochs(t), TimeModel{Dirty: End})
	e.SetThrottle(0, 50)
	assert.Equal(t, 20*ms, e.NextNS())
	drain(e, 20*ms)
	e.Pause(20 * ms)
	assert.InDelta(t, float64(10*ms), e.LostNS(), 1)
	assert.Equal(t, int64(10*ms), e.TraceNS(99*ms))
	assert.Empty(t, drain(e, 1e15))
}

// TestStartBeyondTraceLoops: starting at 65 ms of a 30 ms looping trace
// lands in its third pass: next events at 70 ms (10 + 2×30) and 90 ms.
func TestStartBeyondTraceLoops(t *testing.T) {
	e := newEvents(t, twoEpochs(t), TimeModel{Dirty: End, StartNS: 65 * ms})
	assert.Equal(t, []popped{{5, []int32{1, 2}}, {25, []int32{2}}}, drain(e, 25*ms))
}

func TestTimeModelErrors(t *testing.T) {
	for _, tm := range []TimeModel{{Dirty: "sometimes"}, {After: "forever"}, {StartNS: -1}, {Speed: -1}, {Speed: 1e9}} {
		_, err := openEvents(twoEpochs(t), tm)
		assert.Error(t, err, "%+v", tm)
	}
}
