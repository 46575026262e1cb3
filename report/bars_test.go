package report

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
)

func sum(n int, median, lo, hi float64) Summary { return Summary{N: n, Median: median, Lo: lo, Hi: hi} }

var nan = math.NaN()

func TestBarChartBars(t *testing.T) {
	two := []barSeries{{Label: "a"}, {Label: "b"}}
	for _, tc := range []struct {
		name  string
		chart barChart
		want  []bar
	}{
		{
			name: "one bar per cell with a value, in its series' slot",
			chart: barChart{Series: two, Width: 0.8, Values: [][]Summary{
				{sum(3, 10, 8, 12), {Median: nan, Lo: nan, Hi: nan}, sum(3, 5, 5, 5)},
				{sum(3, nan, nan, nan), sum(2, -20, -30, -10), {}},
			}},
			want: []bar{
				{Group: 0, Series: 0, X0: -0.4, X1: 0, Top: 10, Lo: 8, Hi: 12},
				{Group: 2, Series: 0, X0: 1.6, X1: 2, Top: 5, Lo: 5, Hi: 5},
				{Group: 1, Series: 1, X0: 1, X1: 1.4, Top: -20, Lo: -30, Hi: -10},
			},
		},
		{
			name: "a log axis draws zeros on its floor and bars from it",
			chart: barChart{Series: two[:1], Width: 0.5, Base: 1, Log: true, Values: [][]Summary{
				{sum(1, 0, 0, 0), sum(5, 50, 0, 80)},
			}},
			want: []bar{
				{Group: 0, Series: 0, X0: -0.25, X1: 0.25, Base: 1, Top: 1, Lo: 1, Hi: 1},
				{Group: 1, Series: 0, X0: 0.75, X1: 1.25, Base: 1, Top: 50, Lo: 1, Hi: 80},
			},
		},
		{
			name: "values beyond the cap are cut and say so",
			chart: barChart{Series: two, Width: 0.8, Cap: 200, Values: [][]Summary{
				{sum(10, 150, 100, 900), sum(10, 150, 100, 200)},
				{sum(10, 500, 300, 900), sum(10, 190, 100, 200.5)},
			}, Marked: [][]bool{{true}, {false}}},
			want: []bar{
				{Group: 0, Series: 0, X0: -0.4, X1: 0, Top: 150, Lo: 100, Hi: 200, Cut: true, Marked: true},
				{Group: 1, Series: 0, X0: 0.6, X1: 1, Top: 150, Lo: 100, Hi: 200},
				{Group: 0, Series: 1, X0: 0, X1: 0.4, Top: 200, Lo: 200, Hi: 200, Cut: true},
				{Group: 1, Series: 1, X0: 1, X1: 1.4, Top: 190, Lo: 100, Hi: 200, Cut: true},
			},
		},
		{name: "no series, no bars", chart: barChart{Values: [][]Summary{{sum(1, 1, 1, 1)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.chart.bars()
			require.Len(t, got, len(tc.want))
			for i, w := range tc.want {
				g := got[i]
				assert.Equal(t, [2]int{w.Group, w.Series}, [2]int{g.Group, g.Series}, "bar %d", i)
				for _, f := range [][3]any{{"X0", w.X0, g.X0}, {"X1", w.X1, g.X1}, {"Base", w.Base, g.Base}, {"Top", w.Top, g.Top}, {"Lo", w.Lo, g.Lo}, {"Hi", w.Hi, g.Hi}} {
					assert.InDelta(t, f[1], f[2], 1e-9, "bar %d %s", i, f[0])
				}
				assert.Equal(t, w.Cut, g.Cut, "bar %d cut", i)
				assert.Equal(t, w.Marked, g.Marked, "bar %d marked", i)
			}
		})
	}
}

// TestBarChartEmptyCellsDraw: a panel whose cells are all empty, or NaN,
// draws (no bar, no panic) in every format.
func TestBarChartEmptyCellsDraw(t *testing.T) {
	for _, vals := range [][][]Summary{
		{{}, {}},
		{{{N: 3, Median: nan, Lo: nan, Hi: nan}, sum(3, 4, 3, 5)}},
		{{sum(1, math.Inf(1), 0, 0)}},
	} {
		ch := &barChart{Series: []barSeries{{Label: "a", Style: seriesStyle{Color: okOrange, Hatch: hatchCross}}, {Label: "b"}}, Values: vals, Width: 0.8}
		xmin, xmax, ymin, ymax := ch.DataRange()
		assert.False(t, math.IsNaN(xmin+xmax+ymin+ymax), "data range of %v", vals)
		f := &Figure{Name: "bars", Width: 3 * vg.Inch, Height: 2 * vg.Inch, Draw: func(c draw.Canvas) {
			p := newPlot("t", "", "y (ms)")
			nameGroups(p, []string{"one", "two"}, vg.Inch)
			p.Add(ch)
			p.Draw(c)
		}}
		for _, ext := range formats {
			_, err := f.Render(ext)
			require.NoError(t, err, ext)
		}
	}
}

func TestClaimCharts(t *testing.T) {
	s := claimSet()
	// A second trace with no baseline runs: its group stays empty.
	for _, r := range claimSet().Runs {
		if r.Algorithm != baseline {
			r.RunID, r.Trace, r.TraceID = "lone-"+r.RunID, "lone", "t2"
			s.Runs = append(s.Runs, r)
		}
	}
	g := group(s)
	claims := claimRows(g)
	best := bestVariants(claims)
	traces := []string{"lone", "wws"}
	for _, tc := range []struct {
		bw   int64
		best string
	}{{100e6, "microwiper"}, {1e9, "microwiper/held-final"}} {
		down, pages := claimCharts(g, best, traces, tc.bw)
		sc := Scenario{}
		for _, s := range g.Scenarios {
			if s.Trace == "wws" && s.BandwidthBps == tc.bw {
				sc = s
			}
		}
		base := g.Cells[sc][baseline]
		for _, ch := range []*barChart{down, pages} {
			bs := ch.bars()
			require.Len(t, bs, 3, "one bar per series on wws, none on the trace without a baseline")
			for si, l := range []string{"microwiper", tc.best, "oracle"} {
				b := bs[si]
				assert.Equal(t, 1, b.Group, "wws is the second group")
				assert.Equal(t, si, b.Series)
				r := relate(g.Cells[sc][l], base)
				want := r.Downtime
				if ch == pages {
					want = r.Pages
				}
				assert.InDelta(t, want.Median, b.Top, 1e-9, "%s at %s", l, fmtBw(tc.bw))
				assert.InDelta(t, want.Lo, b.Lo, 1e-9)
				assert.InDelta(t, want.Hi, b.Hi, 1e-9)
				assert.Zero(t, b.Base, "relative bars rise from no change")
			}
		}
		if tc.bw == 100e6 {
			assert.InDelta(t, -60, down.bars()[0].Top, 1e-9, "the default reading has 40% of xen's downtime")
			assert.InDelta(t, -90, down.bars()[2].Top, 1e-9, "the oracle has 10%")
		}
	}
	f := claimFigure(g, claims)
	require.NotNil(t, f)
	svg, err := f.Render("svg")
	require.NoError(t, err)
	for _, want := range []string{"downtime, link 100Mbit", "pages sent, link 1Gbit", "claim: -50% downtime", "best variant in the cell", "lone"} {
		assert.Contains(t, string(svg), want)
	}
}

// manyVariantsSet: one trace at one link, the baseline, the oracle and
// nine Microwiper readings; the fourth variant has the least downtime.
func manyVariantsSet(bws ...int64) (*Set, string) {
	if len(bws) == 0 {
		bws = []int64{1e9}
	}
	s := &Set{Rounds: map[string][]Round{}}
	names := append([]string{baseline, "oracle"}, algorithms.Variants()[:9]...)
	bestName := names[2+4]
	for i, n := range names {
		down := 100e6 - float64(i)*1e6
		if n == bestName {
			down = 20e6
		}
		for _, bw := range bws {
			for rep := int64(0); rep < 6; rep++ {
				s.Runs = append(s.Runs, Run{RunID: fmt.Sprint(n, bw, rep), Trace: "kv", TraceID: "k", Algorithm: n, Params: "{}", Engine: "sim", Link: "sim",
					BandwidthBps: bw, RTTNS: 1e6, DirtyModel: "continuous", Seed: 1, Rep: rep, DowntimeNS: int64(down*1e9/float64(bw)) + rep*1e5, PagesSent: 1000 + rep})
			}
		}
	}
	return s, bestName
}

func TestMetricSeriesBounded(t *testing.T) {
	s, bestName := manyVariantsSet()
	g := group(s)
	require.Greater(t, len(g.Labels), maxBarsPerGroup)
	lay := layoutMetric(g, func(c *Cell) Summary { return c.Downtime })
	var labels []string
	for _, sr := range lay.series {
		labels = append(labels, sr.Label)
	}
	assert.Equal(t, []string{baseline, "microwiper", "best microwiper variant", "oracle"}, labels)
	assert.Contains(t, lay.note, "Of Microwiper's 9 variants")
	require.Len(t, lay.panels, 1)
	bs := lay.panels[0].chart.bars()
	require.Len(t, bs, 4, "one bar per series in the one group")
	sc := g.Scenarios[0]
	for i, l := range []string{baseline, "microwiper", bestName, "oracle"} {
		assert.InDelta(t, g.Cells[sc][l].Downtime.Median, bs[i].Top, 1e-9, l)
		assert.InDelta(t, g.Cells[sc][l].Downtime.Hi, bs[i].Hi, 1e-9, l)
	}

	// Few labels: every label is a bar, and the caption says nothing.
	lay = layoutMetric(group(fixtureSetRuns()), func(c *Cell) Summary { return c.PagesSent })
	assert.Len(t, lay.series, 4)
	assert.Empty(t, lay.note)
}

// TestSweepBoundedLines: the sweep draws the bar figures' series, not a
// line per variant.
func TestSweepBoundedLines(t *testing.T) {
	s, bestName := manyVariantsSet(1e8, 1e9)
	f := sweepFigure(group(s))
	require.NotNil(t, f)
	assert.Contains(t, f.Caption, "Of Microwiper's 9 variants")
	svg, err := f.Render("svg")
	require.NoError(t, err)
	assert.Contains(t, string(svg), "best microwiper variant")
	for _, v := range algorithms.Variants()[1:9] {
		if v != bestName {
			assert.NotContains(t, string(svg), v+"<", "no line, so no legend entry, for %s", v)
		}
	}
}

func fixtureSetRuns() *Set {
	runs, _ := fixtureRuns()
	return &Set{Runs: runs, Rounds: map[string][]Round{}}
}

func TestMetricFigurePanelsPerLinkWhenCrowded(t *testing.T) {
	// Three traces with long names at seven bandwidths: names would not
	// fit under their groups, so each link gets a panel whose groups are
	// the traces.
	traces := []string{"phase-256mib-long", "hotcold-1gib-long", "wws-512mib-long"}
	bws := []int64{2e8, 5e8, 1e9, 2e9, 5e9, 1e10, 2.5e10}
	algs := []string{"xen-precopy", "xen-v2", "qemu-precopy", "microwiper", "stop-and-copy"}
	var runs []Run
	for ti, tr := range traces {
		for _, bw := range bws {
			for _, alg := range algs {
				if ti == 2 && bw == 5e8 {
					continue // a trace missing at one link leaves its group empty
				}
				runs = append(runs, Run{RunID: tr + alg + results.FormatBps(bw), Trace: tr, Algorithm: alg, Params: "{}",
					BandwidthBps: bw, Link: "sim", DowntimeNS: 1e6 + bw/1e3, PagesSent: 65536})
			}
		}
	}
	g := group(&Set{Runs: runs, Rounds: map[string][]Round{}})
	lay := layoutMetric(g, func(c *Cell) Summary { return c.Downtime })
	sorted := slices.Sorted(slices.Values(traces))
	require.Len(t, lay.panels, len(bws))
	for i, pn := range lay.panels {
		assert.Equal(t, "link "+results.FormatBps(bws[i]), pn.title)
		assert.Equal(t, sorted, pn.names, "the traces, by name, in the same place in every panel")
		bs := pn.chart.bars()
		n := len(traces) * len(algs)
		if bws[i] == 5e8 {
			n -= len(algs)
			for _, b := range bs {
				assert.NotEqual(t, indexOf(sorted, traces[2]), b.Group, "no bar where the trace has no run")
			}
		}
		require.Len(t, bs, n)
		for _, b := range bs {
			assert.InDelta(t, 1+float64(bws[i])/1e9, b.Top, 1e-9, "downtime in ms")
			assert.Equal(t, algs[b.Series], lay.series[b.Series].Label)
		}
	}
	f := metricFigure(g, "downtime", "", "downtime (ms)", func(c *Cell) Summary { return c.Downtime })
	assert.Greater(t, f.Height.Points(), (3.2 * 72.0), "rows of panels")
	svg, err := f.Render("svg")
	require.NoError(t, err)
	for _, want := range []string{"phase-256mib-long", "hotcold-1gib-long", "link 25Gbit", "link 200Mbit"} {
		assert.Contains(t, string(svg), want)
	}
}

func TestTidyTicks(t *testing.T) {
	for v, want := range map[float64]string{75000: "75000", 1e6: "1e6", 0.001: "0.001", 2.5: "2.5", 1e-5: "1e-5", -100: "-100"} {
		assert.Equal(t, want, tidyNumber(v))
	}
}
