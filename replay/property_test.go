package replay

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomTrace draws a small trace: up to 200 pages, up to 40 epochs at
// irregular times, an optional initial image.
func randomTrace(r *rand.Rand) *Trace {
	pages := 1 + r.Int64N(200)
	E := ms * (1 + r.Int64N(20))
	tr := NewTrace("rand", tracefmt.Header{PageSize: 4096, Pages: pages, EpochNS: E, Backend: tracefmt.BackendSynthetic})
	if r.IntN(2) == 0 {
		var img []int32
		for p := int32(0); int64(p) < pages; p++ {
			if r.IntN(2) == 0 {
				img = append(img, p)
			}
		}
		_ = tr.SetInitial(img)
	}
	t := int64(0)
	for range r.IntN(40) {
		t += E * (1 + r.Int64N(3))
		var ps []int32
		density := r.Float64()
		for p := int32(0); int64(p) < pages; p++ {
			if r.Float64() < density*density {
				ps = append(ps, p)
			}
		}
		_ = tr.AddEpoch(t, ps)
	}
	return tr
}

func randomConfig(r *rand.Rand) Config {
	models := []DirtyModel{Continuous, Once, End, Exact}
	return Config{
		Link: Link{Bps: msPage / (1 + r.Int64N(8)) * (1 + r.Int64N(8)), RTTNS: r.Int64N(2) * ms, HeaderBytes: 16 * r.Int64N(2)},
		Time: TimeModel{Dirty: models[r.IntN(4)], After: []AfterTrace{Loop, Idle}[r.IntN(2)],
			StartNS: r.Int64N(3) * 7 * ms, Speed: []float64{0.5, 1, 1, 3}[r.IntN(4)]},
		ResumeOverheadNS: r.Int64N(2) * ms,
		MaxNS:            10e9,
	}
}

// randomPolicy returns a policy with drawn parameters, so that the
// property covers skipping, holding, small batches and throttling.
func randomPolicy(r *rand.Rand, name string) algorithms.Algorithm {
	a, _ := algorithms.New(name)
	set := func(k, v string) {
		if err := algorithms.Set(a, k, v); err != nil {
			panic(err)
		}
	}
	switch name {
	case "xen-precopy":
		set("batch_pages", fmt.Sprint(1+r.IntN(16)))
		set("min_pages", fmt.Sprint(r.IntN(60)))
		set("skip", fmt.Sprint(r.IntN(4) != 0))
		set("guest", []string{"pv", "hvm"}[r.IntN(2)])
	case "xen-v2":
		set("min_pages", fmt.Sprint(r.IntN(20)))
		set("batch_pages", fmt.Sprint(1+r.IntN(16)))
	case "microwiper":
		set("stripe_pages", fmt.Sprint(r.IntN(16)))
		set("batch_pages", fmt.Sprint(1+r.IntN(16)))
		set("min_pages", fmt.Sprint(r.IntN(60)))
		set("order", fmt.Sprint(r.IntN(2) == 0))
		set("throttle", fmt.Sprint(r.IntN(4) != 0))
		set("skip", fmt.Sprint(r.IntN(2) == 0))
		set("bandwidth", []string{"measured", "link"}[r.IntN(2)])
		set("rate", []string{"last", "mean"}[r.IntN(2)])
		set("held", []string{"next", "final", "cool"}[r.IntN(3)])
		set("stop", []string{"xen", "held", "shrink"}[r.IntN(3)])
	case "qemu-precopy":
		set("buffer_delay", fmt.Sprintf("%dms", 1+r.IntN(20)))
		set("downtime_limit", fmt.Sprintf("%dms", 1+r.IntN(20)))
		set("max_wait", "1ms")
		set("auto_converge", fmt.Sprint(r.IntN(2) == 0))
		set("sync_period", fmt.Sprintf("%dms", r.IntN(30)))
		set("max_bandwidth", fmt.Sprint(r.Int64N(3)*1_000_000))
	}
	return a
}

var policies = []string{"xen-precopy", "xen-v2", "qemu-precopy", "microwiper", "stop-and-copy"}

// TestNoLostUpdate: over random traces and every policy, at the end every
// page's destination version equals its source version. The source
// versions are recounted here from a fresh event stream up to the pause,
// independently of the engine's own bookkeeping, when no throttle moved
// the trace clock.
func TestNoLostUpdate(t *testing.T) {
	cases := 300
	if testing.Short() {
		cases = 60
	}
	r := rand.New(rand.NewPCG(4, 2010))
	throttled := 0
	for i := range cases {
		tr := randomTrace(r)
		cfg := randomConfig(r)
		for _, name := range policies {
			pol := randomPolicy(r, name)
			s, err := newSim(tr, cfg)
			require.NoError(t, err)
			res := NewResult(tr, pol, "sim", LinkSim, cfg)
			require.NoError(t, s.run(context.Background(), pol.(algorithms.Policy), res))
			require.Zero(t, res.LostPages, "case %d %s %s", i, name, algorithms.ParamsJSON(pol))
			var sent int64
			for _, row := range res.RoundRows {
				sent += row.PagesSent
			}
			require.Equal(t, res.PagesSent, sent, "rows add up")
			require.GreaterOrEqual(t, res.PagesSent, tr.Header.Pages, "every page sent once")
			if res.Slowdown != 0 {
				throttled++
				continue
			}
			pause := res.RoundRows[len(res.RoundRows)-1].StartNS
			want := make([]uint32, tr.Header.Pages)
			for p := range want {
				want[p] = 1
			}
			ev2, _ := openEvents(tr, cfg.Time)
			for ev2.NextNS() <= pause {
				_, _, ps := ev2.Pop()
				for _, p := range ps {
					want[p]++
				}
			}
			require.Equal(t, want, s.dstVer, "case %d %s: destination versions", i, name)
		}
	}
	t.Logf("%d runs throttled by auto-converge", throttled)
	assert.Positive(t, throttled, "auto-converge never engaged: the property misses throttling")
}

// TestMicrowiperPlainPrecopy: with stripe order and throttling off,
// microwiper is Xen pre-copy, round for round; with skip off as well it is
// pre-copy without skipping.
func TestMicrowiperPlainPrecopy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 100 {
		tr := randomTrace(r)
		cfg := randomConfig(r)
		for _, skip := range []string{"true", "false"} {
			xen := runAlg(t, tr, "xen-precopy", cfg, "skip", skip)
			mw := runAlg(t, tr, "microwiper", cfg, "order", "false", "throttle", "false", "skip", skip)
			require.Equal(t, rowsOf(xen), rowsOf(mw), "case %d skip=%s", i, skip)
			require.Equal(t, xen.DowntimeNS, mw.DowntimeNS)
			require.Equal(t, xen.BytesSent, mw.BytesSent)
		}
	}
}

// TestMicrowiperHolds guards the property above: with throttling on, some
// random case must hold pages back, or the comparison proves nothing.
func TestMicrowiperHolds(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	held := 0
	for range 100 {
		tr := randomTrace(r)
		cfg := randomConfig(r)
		res := runAlg(t, tr, "microwiper", cfg, "stripe_pages", "4", "min_pages", "1")
		for _, row := range res.RoundRows {
			held += int(row.PagesHeld)
		}
	}
	assert.Positive(t, held)
}

// TestDeterminism: two runs of every algorithm give byte-identical result
// files.
func TestDeterminism(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	tr := randomTrace(r)
	cfg := randomConfig(r)
	cfg.Time.Dirty = Once
	var dirs [2]string
	for k := range dirs {
		var rs []*results.Result
		for _, name := range algorithms.Names() {
			rs = append(rs, runAlg(t, tr, name, cfg))
		}
		dirs[k] = t.TempDir()
		require.NoError(t, results.Write(dirs[k], rs))
	}
	// Each directory holds one result set; its file names carry the time
	// of writing, its contents must not.
	for _, f := range []string{"runs-*.parquet", "rounds-*.parquet", "bench-*.txt", "summary-*.json"} {
		var data [2][]byte
		for k, dir := range dirs {
			m, err := filepath.Glob(filepath.Join(dir, f))
			require.NoError(t, err)
			require.Len(t, m, 1, f)
			data[k], err = os.ReadFile(m[0])
			require.NoError(t, err)
		}
		assert.True(t, bytes.Equal(data[0], data[1]), "%s differs between runs", f)
	}
	d, err := results.Read(dirs[0])
	require.NoError(t, err)
	assert.Len(t, d.Runs, len(algorithms.Names()))
	assert.NotEmpty(t, d.Rounds)
}

// TestOracleIsLowerBound: on random traces the oracle's downtime is at
// most every policy's, when its horizon covers their switch-over times.
// QEMU is left out when zero pages (header-only sends) or throttling make
// its final round cheaper than the oracle's model of it.
func TestOracleIsLowerBound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 150 {
		tr := randomTrace(r)
		cfg := randomConfig(r)
		var rs []*results.Result
		var latest int64
		for _, name := range policies {
			pol := randomPolicy(r, name)
			res, err := Sim{}.Run(context.Background(), tr, pol, cfg)
			require.NoError(t, err)
			if name == "qemu-precopy" && (tr.HasInitial || res.Slowdown != 0) {
				continue
			}
			rs = append(rs, res)
			latest = max(latest, res.RoundRows[len(res.RoundRows)-1].StartNS)
		}
		o := runAlg(t, tr, "oracle", cfg, "horizon", fmt.Sprintf("%dns", latest+1))
		for _, res := range rs {
			require.LessOrEqual(t, o.DowntimeNS, res.DowntimeNS, "case %d: oracle above %s %s", i, res.Algorithm, res.Params)
		}
	}
}

// TestConcurrentRuns: runs share pooled buffers; concurrent runs must give
// the same results as sequential ones.
func TestConcurrentRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	tr := randomTrace(r)
	cfg := randomConfig(r)
	want := map[string]*results.Result{}
	for _, name := range algorithms.Names() {
		want[name] = runAlg(t, tr, name, cfg)
	}
	errs := make(chan error, 4*len(want))
	for range 4 {
		for _, name := range algorithms.Names() {
			go func() {
				alg, _ := algorithms.New(name)
				res, err := Sim{}.Run(context.Background(), tr, alg, cfg)
				if err == nil && (res.DowntimeNS != want[name].DowntimeNS || res.PagesSent != want[name].PagesSent || res.LostPages != 0) {
					err = fmt.Errorf("%s: concurrent run differs", name)
				}
				errs <- err
			}()
		}
	}
	for range 4 * len(want) {
		require.NoError(t, <-errs)
	}
}

// TestDowntimeFloor: over random traces, every policy and every reading,
// the downtime is at least the final round's transfer time plus the RTT
// plus the resume overhead, so it is never 0 while the final set is
// non-empty or the RTT or overhead is not. Under the continuous reading, a
// page written in every epoch (contiguous epochs, looping) is never clean
// at a pause after its first epoch began.
func TestDowntimeFloor(t *testing.T) {
	cases := 300
	if testing.Short() {
		cases = 60
	}
	r := rand.New(rand.NewPCG(5, 9))
	hotChecked := 0
	for i := range cases {
		tr := randomTrace(r)
		cfg := randomConfig(r)
		hot := int32(-1)
		if i%2 == 0 {
			// Rebuild the trace with contiguous epochs and a page in all.
			h := tr.Header
			tr = NewTrace("hot", h)
			hot = int32(r.Int64N(h.Pages))
			for k := int64(1); k <= 1+r.Int64N(20); k++ {
				ps := []int32{hot}
				for p := int32(0); int64(p) < h.Pages; p++ {
					if p != hot && r.IntN(4) == 0 {
						ps = append(ps, p)
					}
				}
				slices.Sort(ps)
				require.NoError(t, tr.AddEpoch(k*h.EpochNS, ps))
			}
			cfg.Time.Dirty, cfg.Time.After = Continuous, Loop
		}
		pageBits := (tr.Header.PageSize + cfg.Link.HeaderBytes) * 8
		for _, name := range policies {
			pol := randomPolicy(r, name)
			s, err := newSim(tr, cfg)
			require.NoError(t, err)
			res := NewResult(tr, pol, "sim", LinkSim, cfg)
			require.NoError(t, s.run(context.Background(), pol.(algorithms.Policy), res))
			final := res.RoundRows[len(res.RoundRows)-1]
			cost := pageBits
			if name == "qemu-precopy" {
				cost = cfg.Link.HeaderBytes * 8 // a zero page is a header only
			}
			floor := transferNS(final.PagesSent, cost, cfg.Link.Bps) + cfg.Link.RTTNS + cfg.ResumeOverheadNS
			require.GreaterOrEqual(t, res.DowntimeNS, floor, "case %d %s: %d final pages", i, name, final.PagesSent)
			if final.PagesSent > 0 && cost > 0 || cfg.Link.RTTNS > 0 || cfg.ResumeOverheadNS > 0 {
				require.Positive(t, res.DowntimeNS, "case %d %s", i, name)
			}
			if hot >= 0 && final.StartNS+cfg.Time.StartNS > 0 {
				require.Contains(t, s.log.toSend, hot, "case %d %s: page %d is written in every epoch but clean at the pause %d ns",
					i, name, hot, final.StartNS)
				hotChecked++
			}
			s.release()
		}
	}
	t.Logf("%d runs checked the hot page", hotChecked)
	assert.Positive(t, hotChecked)
}
