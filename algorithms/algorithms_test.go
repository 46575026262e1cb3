package algorithms

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistry(t *testing.T) {
	for _, n := range Names() {
		a, err := New(n)
		require.NoError(t, err)
		assert.Equal(t, n, a.Name())
		assert.NotEmpty(t, Describe(n))
		_, isPolicy := a.(Policy)
		_, isBound := a.(Bound)
		assert.True(t, isPolicy != isBound, "%s is exactly one of Policy, Bound", n)
		for _, p := range Params(a) {
			assert.NotEmpty(t, p.Doc, "%s.%s has no doc", n, p.Key)
			require.NoError(t, Set(a, p.Key, p.Default), "%s.%s: default %q must read back", n, p.Key, p.Default)
		}
	}
	_, err := New("fastest")
	assert.ErrorContains(t, err, `unknown algorithm "fastest" (known: xen-precopy`)
}

func TestSet(t *testing.T) {
	w := NewMicrowiper()
	require.NoError(t, Set(w, "stripe_pages", "64"))
	require.NoError(t, Set(w, "order", "false"))
	assert.Equal(t, int64(64), w.P.StripePages)
	assert.False(t, w.P.Order)
	assert.ErrorContains(t, Set(w, "stripes", "1"), `unknown parameter "stripes" (known: stripe_pages, bandwidth`)
	assert.ErrorContains(t, Set(w, "stripe_pages", "many"), "want an integer")
	assert.ErrorContains(t, Set(w, "stripe_pages", "-1"), "want 0 (automatic) to 2147483648")
	assert.ErrorContains(t, Set(w, "bandwidth", "guess"), "want measured or link")
	q := NewQemuPrecopy()
	require.NoError(t, Set(q, "downtime_limit", "30ms"))
	assert.Equal(t, "30ms", q.P.DowntimeLimit.String())
	assert.ErrorContains(t, Set(q, "downtime_limit", "30"), "want a duration")
	assert.ErrorContains(t, Set(q, "throttle_max", "100"), "<= 99")
	assert.Equal(t, `{"step":"0s","horizon":"0s"}`, ParamsJSON(NewOracle()))
	assert.Equal(t, `{"max_rounds":29,"min_pages":50,"max_factor":3,"batch_pages":1024,"skip":true,"guest":"pv"}`, ParamsJSON(NewXenPrecopy()))
}

// TestParamRanges: every numeric parameter of every algorithm refuses the
// extremes of its type (a stripe of 2^63-1 pages used to panic, a cap of
// 2^63-1 bytes/s to overflow into a negative rate), and the refused value
// does not stick.
func TestParamRanges(t *testing.T) {
	for _, name := range Names() {
		a, err := New(name)
		require.NoError(t, err)
		for _, p := range Params(a) {
			var extremes []string
			switch p.Type {
			case "int", "int64":
				extremes = []string{"9223372036854775807", "-1", "-9223372036854775808"}
			case "duration":
				extremes = []string{"2562047h", "-1ns"}
			default:
				continue
			}
			for _, v := range extremes {
				t.Run(name+"."+p.Key+"="+v, func(t *testing.T) {
					err := Set(a, p.Key, v)
					require.Error(t, err)
					assert.Contains(t, err.Error(), "want")
					for _, q := range Params(a) {
						if q.Key == p.Key {
							assert.Equal(t, p.Default, q.Default, "a refused value must not stick")
						}
					}
				})
			}
		}
	}
}

// TestMicrowiperStripeLongerThanMemory: the largest stripe allowed is one
// stripe of all memory, not an overflow.
func TestMicrowiperStripeLongerThanMemory(t *testing.T) {
	w := NewMicrowiper()
	require.NoError(t, Set(w, "stripe_pages", "2147483648"))
	w.Begin(Migration{Pages: 100, PageSize: 4096, LinkBps: 1e9})
	assert.Equal(t, int64(100), w.StripePages())
	r := &Round{Number: 2, ToSend: []int32{1, 5, 99}, Dirtied: []int32{5, 99}, Last: RoundStats{Number: 1, DurationNS: 1e6, Sent: 100}}
	assert.NotPanics(t, func() { w.PlanRound(r) })
}

// TestXenStop checks each clause of the stop test on the round just
// finished.
func TestXenStop(t *testing.T) {
	x := NewXenPrecopy()
	x.Begin(Migration{Pages: 100, PageSize: 4096, LinkBps: 1e9})
	to := []int32{1, 2, 3}
	for _, tc := range []struct {
		name string
		r    Round
		stop bool
	}{
		{"round 1 never stops", Round{Number: 1, ToSend: to}, false},
		{"busy round goes on", Round{Number: 2, ToSend: to, Last: RoundStats{Number: 1, Sent: 40, Skipped: 10}}, false},
		{"fewer than 50 sent+skipped", Round{Number: 2, ToSend: to, Last: RoundStats{Number: 1, Sent: 40, Skipped: 9}}, true},
		{"29 rounds", Round{Number: 30, ToSend: to, Last: RoundStats{Number: 29, Sent: 100}}, true},
		{"28 rounds", Round{Number: 29, ToSend: to, Last: RoundStats{Number: 28, Sent: 100}}, false},
		{"3x memory", Round{Number: 5, SentPages: 301, ToSend: to, Last: RoundStats{Number: 4, Sent: 100}}, true},
		{"exactly 3x", Round{Number: 5, SentPages: 300, ToSend: to, Last: RoundStats{Number: 4, Sent: 100}}, false},
	} {
		p := x.PlanRound(&tc.r)
		assert.Equal(t, tc.stop, p.Stop, tc.name)
		if !p.Stop {
			assert.Equal(t, to, p.Order, tc.name)
			assert.True(t, p.Peek, tc.name)
			assert.Equal(t, 1024, p.BatchPages, tc.name)
		}
	}
}

// TestMicrowiperPlan: 32 pages in stripes of 8 at a link of 1000 pages/s
// (bandwidth=link). The last round lasted 10 ms and dirtied stripe 0 fully
// (800 pages/s), stripe 1 once (100/s), stripe 3 three times (300/s);
// 60 pages were sent, so Xen's stop test does not fire.
// Walk coldest first over the stripes holding pages to send (0, 1, 3):
// 1 (100), 3 (400), 0 (1200 > 1000: held).
func TestMicrowiperPlan(t *testing.T) {
	w := NewMicrowiper()
	require.NoError(t, Set(w, "stripe_pages", "8"))
	require.NoError(t, Set(w, "bandwidth", "link"))
	w.Begin(Migration{Pages: 32, PageSize: 4096, LinkBps: 4096 * 8 * 1000})
	dirtied := []int32{0, 1, 2, 3, 4, 5, 6, 7, 9, 24, 25, 26}
	r := Round{Number: 2, ToSend: dirtied, Dirtied: dirtied, Last: RoundStats{Number: 1, Sent: 60, DurationNS: 10e6}}
	p := w.PlanRound(&r)
	assert.Equal(t, []int32{9, 24, 25, 26}, p.Order)
	require.NoError(t, Set(w, "throttle", "false"))
	p = w.PlanRound(&r)
	assert.Equal(t, []int32{9, 24, 25, 26, 0, 1, 2, 3, 4, 5, 6, 7}, p.Order, "order alone: coldest first, nothing held")
	require.NoError(t, Set(w, "throttle", "true"))
	require.NoError(t, Set(w, "order", "false"))
	p = w.PlanRound(&r)
	assert.Equal(t, []int32{0, 1, 2, 3, 4, 5, 6, 7, 9}, p.Order, "index order: 0 (800/s), 1 (900/s) admitted, 3 (1200/s) held")
	require.NoError(t, Set(w, "throttle", "false"))
	p = w.PlanRound(&r)
	assert.Equal(t, dirtied, p.Order, "both off: plain pre-copy")
}

// TestMicrowiperDefaultStripes: pages/1024, at least 1.
func TestMicrowiperDefaultStripes(t *testing.T) {
	for pages, want := range map[int64]int64{32768: 32, 1 << 20: 1024, 100: 1, 5000: 4} {
		w := NewMicrowiper()
		w.Begin(Migration{Pages: pages, PageSize: 4096, LinkBps: 1e9})
		assert.Equal(t, want, w.StripePages(), "pages=%d", pages)
	}
}

// TestQemuAutoConverge: with periods longer than sync_period in which more
// was dirtied than half of what was sent, the throttle goes 20, 30, ...
// after every second high period, and caps at 99; a low period resets the
// count.
func TestQemuAutoConverge(t *testing.T) {
	q := NewQemuPrecopy()
	require.NoError(t, Set(q, "auto_converge", "true"))
	q.Begin(Migration{Pages: 1000, PageSize: 4096, LinkBps: 1e9})
	many := make([]int32, 900)
	for i := range many {
		many[i] = int32(i)
	}
	now, sent := int64(0), int64(0)
	step := func(dirtied []int32) int {
		now += 1_100_000_000
		sent += 1000 * 4096
		p := q.PlanRound(&Round{Number: 2, NowNS: now, SentBytes: sent, ToSend: many, Dirtied: dirtied})
		return p.ThrottlePct
	}
	assert.Equal(t, 0, step(many))
	assert.Equal(t, 20, step(many))
	assert.Equal(t, 20, step(many))
	assert.Equal(t, 30, step(many))
	assert.Equal(t, 30, step(nil), "low period")
	assert.Equal(t, 30, step(many), "count restarted")
	assert.Equal(t, 40, step(many))
	for range 40 {
		step(many)
	}
	assert.Equal(t, 99, q.ThrottlePct())
}

// FuzzSet: no key or value panics, and an accepted value reads back through
// Params and Set unchanged.
func FuzzSet(f *testing.F) {
	f.Add("microwiper", "stripe_pages", "64")
	f.Add("qemu-precopy", "downtime_limit", "300ms")
	f.Add("xen-precopy", "skip", "false")
	f.Add("oracle", "step", "-1s")
	f.Fuzz(func(t *testing.T, name, key, value string) {
		a, err := New(name)
		if err != nil {
			return
		}
		if Set(a, key, value) != nil {
			return
		}
		for _, p := range Params(a) {
			if p.Key == key {
				b, _ := New(name)
				if err := Set(b, key, p.Default); err != nil {
					t.Fatalf("%s.%s = %q accepted, but its formatted form %q is refused: %v", name, key, value, p.Default, err)
				}
				if ParamsJSON(a) != ParamsJSON(b) {
					t.Fatalf("%s.%s = %q does not round-trip: %s vs %s", name, key, value, ParamsJSON(a), ParamsJSON(b))
				}
			}
		}
	})
}

func pages(n int) []int32 {
	ps := make([]int32, n)
	for i := range ps {
		ps[i] = int32(i)
	}
	return ps
}

// TestQemuHighCountSurvivesLowPeriod: ram.c steps the throttle at the
// second high period and resets the count only then, so high, low, high
// throttles. 4096-byte pages, trigger 50%, checks at least 1 s apart.
//
// r2 at 1.5 s: 600 pages dirtied = 2,457,600 B > 50% of 4,000,000 B sent →
// high (count 1). r3 at 3 s: 100 pages = 409,600 B, not > 2,000,000 → low
// (count stays 1). r4 at 4.5 s: 600 pages again → high, count 2 → throttle
// 20%. To send stays 500 pages = 2,048,000 B, above the switch-over
// threshold (4,000,000 B / 1.5 s × 0.3 s = 800,000 B), so no round stops.
func TestQemuHighCountSurvivesLowPeriod(t *testing.T) {
	q := NewQemuPrecopy()
	q.P.AutoConverge = true
	q.Begin(Migration{Pages: 1000, PageSize: 4096, LinkBps: 1e9})
	q.PlanRound(&Round{Number: 1, ToSend: pages(1000)})
	for i, c := range []struct {
		atNS, sent int64
		dirtied    int
		throttle   int
	}{{1.5e9, 4e6, 600, 0}, {3e9, 8e6, 100, 0}, {4.5e9, 12e6, 600, 20}} {
		p := q.PlanRound(&Round{Number: i + 2, NowNS: c.atNS, SentBytes: c.sent, ToSend: pages(500), Dirtied: pages(c.dirtied)})
		require.False(t, p.Stop, "round %d", i+2)
		assert.Equal(t, c.throttle, p.ThrottlePct, "round %d", i+2)
	}
}

// TestQemuPeriodicSync: from QEMU 9.2, with auto-converge, a timer ticking
// every 5 s syncs the bitmap when no sync happened since its last tick and
// the first pass is over; each such sync runs the throttle check. 100,000
// pages of 4096 B, 100 Mbit/s (12.5 MB/s).
//
// Syncs: round 1 at 0 (1), round 2 at 1 s (2). One long pass follows.
// Tick 5 s: a sync happened since the start (2 != 0): nothing.
// Tick 10 s: none since 5 s → sync (round 3). The period runs from 0
// (round 2 at 1 s checked nothing: a check needs more than 1 s since the
// last): 20,000 pages dirtied = 81,920,000 B > 50% of 125,000,000 B sent →
// high (count 1). Tick 15 s: none since 10 s → sync (round 4). Period
// 10..15 s: 20,000 more pages = 81,920,000 B > 50% of 62,500,000 B → high,
// count 2 → throttle 20% in the middle of the pass. QEMU 9.1 has no timer:
// no sync, and the throttle stays 0 until the pass ends.
func TestQemuPeriodicSync(t *testing.T) {
	for _, c := range []struct {
		version  string
		syncs    []bool
		throttle int
	}{
		{"9.2", []bool{false, true, true}, 20},
		{"10.1", []bool{false, true, true}, 20},
		{"9.1", []bool{false, false, false}, 0},
		{"8.2.1", []bool{false, false, false}, 0},
	} {
		q := NewQemuPrecopy()
		q.P.AutoConverge = true
		require.NoError(t, Set(q, "qemu_version", c.version))
		q.Begin(Migration{Pages: 100000, PageSize: 4096, LinkBps: 1e8})
		q.PlanRound(&Round{Number: 1, ToSend: pages(100000)})
		q.PlanRound(&Round{Number: 2, NowNS: 1e9, SentBytes: 12.5e6, ToSend: pages(100000)})
		round, throttle := 2, 0
		for i, b := range []struct {
			atNS, sent, dirty int64
		}{{5e9, 62.5e6, 10000}, {10e9, 125e6, 20000}, {15e9, 187.5e6, 20000}} {
			batch := &Batch{Round: round, NowNS: b.atNS, SentBytes: b.sent, Remaining: 50000, DirtyPages: b.dirty}
			assert.False(t, q.BeforeBatch(batch))
			assert.Equal(t, c.syncs[i], batch.Sync, "QEMU %s tick %d", c.version, i+1)
			if batch.Sync {
				round++
				p := q.PlanRound(&Round{Number: round, NowNS: b.atNS, SentBytes: b.sent, ToSend: pages(100000), Dirtied: pages(int(b.dirty))})
				require.False(t, p.Stop)
				throttle = p.ThrottlePct
			}
		}
		assert.Equal(t, c.throttle, throttle, "QEMU %s", c.version)
	}
	q := NewQemuPrecopy()
	assert.Error(t, Set(q, "qemu_version", "nine"))
}

// TestQemuMidPassSync: when the pages left in the bitmap fall below the
// threshold but a sync finds more, QEMU merges the dirty log and goes on
// from where it was (ram_save_pending), and each round's order starts at
// the page after the last one sent.
//
// 1,000 pages of 4096 B, 1 Gbit/s, no cap, downtime limit 300 ms. Round 2
// at 1 s with 4,096,000 B sent: threshold = 4,096,000 B/s × 0.3 s =
// 1,228,800 B = 300 pages. Its order is pages 500..999 (the position after
// round 1's last page, 999, wraps to 0). A batch with 200 pages left (est
// 819,200 B < threshold) and 400 in the log, 50 of them among the 200:
// exact = 200 + 400 − 50 = 550 pages ≥ 300 → sync, no stop. The last page
// sent was 799, so round 3's order runs 800.. then wraps.
func TestQemuMidPassSync(t *testing.T) {
	q := NewQemuPrecopy()
	q.P.MaxBandwidth = 0
	q.Begin(Migration{Pages: 1000, PageSize: 4096, LinkBps: 1e9})
	p := q.PlanRound(&Round{Number: 1, ToSend: pages(1000)})
	require.Equal(t, pages(1000), p.Order)
	toSend := make([]int32, 0, 500)
	for pg := int32(500); pg < 1000; pg++ {
		toSend = append(toSend, pg)
	}
	p = q.PlanRound(&Round{Number: 2, NowNS: 1e9, SentBytes: 4096000, ToSend: toSend, Dirtied: toSend})
	require.False(t, p.Stop)
	require.Equal(t, toSend, p.Order, "the position after page 999 wraps to 0")

	b := &Batch{Round: 2, NowNS: 1e9, SentBytes: 4096000 + 300*4096, Remaining: 200, DirtyPages: 400,
		RemainingDirty: func() int64 { return 50 }}
	assert.False(t, q.BeforeBatch(b), "exact 550 pages is above the threshold")
	assert.True(t, b.Sync)

	// The sync's exact count: pages 0..99 and 700..999 (400 ≥ 300).
	var next []int32
	for pg := int32(0); pg < 1000; pg++ {
		if pg < 100 || pg >= 700 {
			next = append(next, pg)
		}
	}
	p = q.PlanRound(&Round{Number: 3, NowNS: 1e9, SentBytes: b.SentBytes, ToSend: next, Dirtied: next[:100]})
	require.False(t, p.Stop)
	require.Len(t, p.Order, 400)
	assert.Equal(t, []int32{800, 999, 0, 99, 700, 799}, []int32{p.Order[0], p.Order[199], p.Order[200], p.Order[299], p.Order[300], p.Order[399]})

	// Few pages left and a small log: below the threshold after the sync
	// too, so the switch-over comes without a sync.
	b = &Batch{Round: 3, NowNS: 1e9, SentBytes: b.SentBytes, Remaining: 3, DirtyPages: 10,
		RemainingDirty: func() int64 { return 1 }}
	assert.True(t, q.BeforeBatch(b))
	assert.False(t, b.Sync)
}

// mwPlan32 is TestMicrowiperPlan's setting: 32 pages in stripes of 8 at a
// link of 1000 pages/s (bandwidth=link), with the readings given.
func mwPlan32(t *testing.T, kv ...string) *Microwiper {
	t.Helper()
	w := NewMicrowiper()
	kv = append([]string{"stripe_pages", "8", "bandwidth", "link"}, kv...)
	for i := 0; i < len(kv); i += 2 {
		require.NoError(t, Set(w, kv[i], kv[i+1]))
	}
	w.Begin(Migration{Pages: 32, PageSize: 4096, LinkBps: 4096 * 8 * 1000})
	return w
}

func span32(lo, hi int32) []int32 {
	var out []int32
	for p := lo; p <= hi; p++ {
		out = append(out, p)
	}
	return out
}

func cat32(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The two rounds the readings are told apart on. Round 2 is
// TestMicrowiperPlan's: stripe 0 (8 pages, 800/s) is held, 1 and 3 go.
// Round 3 (10 ms): stripe 0 has page 0 dirtied again (and its held pages
// pending), stripe 2 six pages, stripe 3 four pages.
var (
	mwDirtied2 = []int32{0, 1, 2, 3, 4, 5, 6, 7, 9, 24, 25, 26}
	mwRound2   = Round{Number: 2, ToSend: mwDirtied2, Dirtied: mwDirtied2, Last: RoundStats{Number: 1, Sent: 60, DurationNS: 10e6}}
	mwDirtied3 = cat32([]int32{0}, span32(16, 21), span32(24, 27))
	mwRound3   = Round{Number: 3, ToSend: cat32(span32(0, 7), span32(16, 21), span32(24, 27)), Dirtied: mwDirtied3,
		Last: RoundStats{Number: 2, Sent: 60, Held: 8, DurationNS: 10e6}}
)

// TestMicrowiperRate: round 3 under each rate estimate.
// last: s0 1 page (100/s), s3 4 (400/s), s2 6 (600/s); coldest first
// s0 (sum 100), s3 (500), s2 (1100 > 1000: held) → 0..7, 24..27.
// mean over rounds 2 and 3 (20 ms): s0 8+1 = 9 (450/s), s2 6 (300/s),
// s3 3+4 = 7 (350/s); s2 (300), s3 (650), s0 (1100: held) → 16..21, 24..27.
func TestMicrowiperRate(t *testing.T) {
	for _, tc := range []struct {
		rate string
		want []int32
	}{
		{"last", cat32(span32(0, 7), span32(24, 27))},
		{"mean", cat32(span32(16, 21), span32(24, 27))},
	} {
		w := mwPlan32(t, "rate", tc.rate)
		r2, r3 := mwRound2, mwRound3
		assert.Equal(t, []int32{9, 24, 25, 26}, w.PlanRound(&r2).Order, "round 2 has one round of history either way")
		assert.Equal(t, tc.want, w.PlanRound(&r3).Order, tc.rate)
		assert.Equal(t, tc.want, w.PlanRound(&r3).Order, "%s: planning a round again changes nothing", tc.rate)
	}
}

// TestMicrowiperHeld: stripe 0 is held in round 2. In round 3 (page 0
// dirtied again): next puts it back in the walk (as in TestMicrowiperRate,
// s2 is held instead); final and cool keep it out, so s3 (400/s) and s2
// (1000/s, not above the link) both go. Round 4 dirtied nothing and only
// s0 is pending: final still holds it (nothing to send); cool sees a clean
// round and lets it go.
func TestMicrowiperHeld(t *testing.T) {
	r4 := Round{Number: 4, ToSend: span32(0, 7), Last: RoundStats{Number: 3, Sent: 60, Held: 8, DurationNS: 10e6}}
	for _, tc := range []struct {
		held   string
		want3  []int32
		want4  []int32
		stop4  bool
		errMsg string
	}{
		{"next", cat32(span32(0, 7), span32(24, 27)), span32(0, 7), false, ""},
		{"final", cat32(span32(24, 27), span32(16, 21)), []int32{}, false, ""},
		{"cool", cat32(span32(24, 27), span32(16, 21)), span32(0, 7), false, ""},
	} {
		w := mwPlan32(t, "held", tc.held)
		r2, r3, r := mwRound2, mwRound3, r4
		assert.Equal(t, []int32{9, 24, 25, 26}, w.PlanRound(&r2).Order, tc.held)
		assert.Equal(t, tc.want3, w.PlanRound(&r3).Order, tc.held)
		p := w.PlanRound(&r)
		assert.False(t, p.Stop, tc.held)
		assert.Equal(t, tc.want4, append([]int32{}, p.Order...), tc.held)
	}
}

// TestMicrowiperStop: each stop test on a sequence of finished rounds
// (each sent 60 pages unless said otherwise).
func TestMicrowiperStop(t *testing.T) {
	rounds := []RoundStats{
		{Number: 1, Sent: 100},
		{Number: 2, Sent: 60, Held: 20},
		{Number: 3, Sent: 60, Held: 15},
		{Number: 4, Sent: 60, Held: 15},
		{Number: 5, Sent: 30, Skipped: 10, Held: 20},
	}
	for _, tc := range []struct {
		stop string
		// stops[i] is the decision at the start of round i+2 (after
		// rounds[i]).
		stops []bool
	}{
		// Xen's: only round 5's 30 + 10 < 50.
		{"xen", []bool{false, false, false, false, true}},
		// held counted: 30 + 10 + 20 = 60 >= 50 goes on.
		{"held", []bool{false, false, false, false, false}},
		// shrink: 20 → 15 shrinks; 15 → 15 does not (stop at round 5).
		{"shrink", []bool{false, false, false, true, true}},
	} {
		w := mwPlan32(t, "stop", tc.stop)
		for i, last := range rounds {
			r := Round{Number: last.Number + 1, ToSend: []int32{1}, SentPages: 10, Last: last}
			assert.Equal(t, tc.stops[i], w.PlanRound(&r).Stop, "%s after round %d", tc.stop, last.Number)
		}
	}
}

// TestVariantNames: every listed variant reads back to parameters that
// give the same name; the default reading is plain "microwiper"; default
// parts are accepted and dropped; bad names say what is wrong.
func TestVariantNames(t *testing.T) {
	vs := Variants()
	assert.Equal(t, "microwiper", vs[0])
	assert.Len(t, vs, 2*2*3*3+5)
	seen := map[string]bool{}
	for _, v := range vs {
		assert.False(t, seen[v], "%s listed twice", v)
		seen[v] = true
		a, err := New(v)
		require.NoError(t, err, v)
		assert.Equal(t, v, a.Name())
		assert.Equal(t, "microwiper", Base(v))
	}
	assert.True(t, seen["microwiper/stripes-32+avg-rate+held-final+shrink-stop"])
	// The two stripe readings at 4 GiB (2^20 pages): the paper's 32 pages
	// per 128 MB scaled with memory gives 1024 pages; fixed gives 32.
	for name, want := range map[string]int64{"microwiper": 1024, "microwiper/stripes-32": 32, "microwiper/stripes-256": 256} {
		a, err := New(name)
		require.NoError(t, err)
		w := a.(*Microwiper)
		w.Begin(Migration{Pages: 1 << 20, PageSize: 4096, LinkBps: 1e9})
		assert.Equal(t, want, w.StripePages(), name)
	}
	a, err := New("microwiper/paper-stripes+avg-rate+held-final")
	require.NoError(t, err)
	assert.Equal(t, "microwiper/avg-rate+held-final", a.Name())
	a, err = New("microwiper/xen-stop+last-rate")
	require.NoError(t, err)
	assert.Equal(t, "microwiper", a.Name())
	w := NewMicrowiper()
	require.NoError(t, Set(w, "held", "cool"))
	assert.Equal(t, "microwiper/held-cool", w.Name(), "a -param changes the name")
	for name, msg := range map[string]string{
		"microwiper/":                        "want microwiper/ and parts",
		"microwiper/fast":                    `unknown part "fast"`,
		"microwiper/stripes-0":               "want stripes-N with 1 <= N <=",
		"microwiper/stripes-9999999999999":   "want stripes-N with 1 <= N <=",
		"microwiper/stripes-x":               "want stripes-N",
		"microwiper/avg-rate+last-rate":      "rate chosen twice",
		"microwiper/held-final+held-cool":    "held chosen twice",
		"microwiper/stripes-8+paper-stripes": "stripes chosen twice",
	} {
		_, err := New(name)
		assert.ErrorContains(t, err, msg, name)
	}
	assert.ErrorContains(t, Set(NewMicrowiper(), "rate", "ewma"), "want last or mean")
	assert.ErrorContains(t, Set(NewMicrowiper(), "held", "never"), "want next, final or cool")
	assert.ErrorContains(t, Set(NewMicrowiper(), "stop", "now"), "want xen, held or shrink")
}
