package report

import (
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// reproductionFigures are the claim document's figures: the claim per
// link, and downtime CDFs over start times.
func reproductionFigures(g *grouping, claims []claimRow) []*Figure {
	var out []*Figure
	if f := claimFigure(g, claims); f != nil {
		out = append(out, f)
	}
	best := bestVariants(claims)
	if f := downtimeCDFFigure(g, "claim-cdf", func(sc Scenario) []string {
		ls := []string{baseline, "microwiper"}
		if b := best[sc]; b != "" && b != "microwiper" {
			ls = append(ls, b)
		}
		return append(ls, "oracle")
	}); f != nil {
		out = append(out, f)
	}
	return out
}

// bestVariants maps each scenario to the Microwiper label with the least
// median relative downtime.
func bestVariants(claims []claimRow) map[Scenario]string {
	out := map[Scenario]string{}
	bestV := map[Scenario]float64{}
	for _, c := range claims {
		v, ok := bestV[c.Scenario]
		if !ok || c.Rel.Downtime.Median < v {
			bestV[c.Scenario] = c.Rel.Downtime.Median
			out[c.Scenario] = c.Label
		}
	}
	return out
}

// claimFigure draws, per link, each trace's median downtime relative to
// the baseline (with its interval) for the default reading, the best
// variant and the oracle, against the claim's -50% line.
func claimFigure(g *grouping, claims []claimRow) *Figure {
	var bws []int64
	traces := map[string]int{}
	var traceNames []string
	for _, sc := range g.Scenarios {
		if _, ok := traces[sc.Trace]; !ok {
			traces[sc.Trace] = len(traceNames)
			traceNames = append(traceNames, sc.Trace)
		}
	}
	seen := map[int64]bool{}
	for _, c := range claims {
		if !seen[c.Scenario.BandwidthBps] {
			seen[c.Scenario.BandwidthBps] = true
			bws = append(bws, c.Scenario.BandwidthBps)
		}
	}
	if len(bws) == 0 {
		return nil
	}
	sort.Slice(bws, func(i, j int) bool { return bws[i] < bws[j] })
	best := bestVariants(claims)
	series := []struct {
		label string
		style seriesStyle
		off   float64
	}{
		{"microwiper (default reading)", seriesStyle{Color: algorithmColors["microwiper"], Glyph: draw.CircleGlyph{}}, -0.2},
		{"best variant", seriesStyle{Color: okBlue, Glyph: draw.SquareGlyph{}}, 0},
		{"oracle (bound)", seriesStyle{Color: algorithmColors["oracle"], Glyph: draw.TriangleGlyph{}}, 0.2},
	}
	var entries []legendEntry
	for _, s := range series {
		entries = append(entries, legendEntry{label: s.label, style: s.style})
	}
	entries = append(entries, legendEntry{label: "claim: -50%", style: seriesStyle{Color: okBlack, Dash: dashes[1]}, line: true})
	cols, rows := panelGrid(len(bws))
	fig := &Figure{
		Name:    "claim",
		Caption: "Median downtime relative to " + baseline + " (paired over start times; bars: 95% intervals) per trace, one panel per link: the default reading, the best variant in that cell, and the oracle's bound. Below the dashed line the paper's claim (more than 50% less downtime) holds.",
		Width:   vg.Length(math.Max(4.5, 3.4*float64(cols))) * vg.Inch,
		Height:  vg.Length(1.2+3.0*float64(rows)) * vg.Inch,
	}
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, bw := range bws {
			p := newPlot("link "+fmtBw(bw), "", "Δ downtime vs "+baseline+" (%)")
			addGrid(p, false)
			var ys []float64
			for si, s := range series {
				var pts errPoints
				for _, sc := range g.Scenarios {
					if sc.BandwidthBps != bw {
						continue
					}
					base := g.Cells[sc][baseline]
					if base == nil {
						continue
					}
					var cell *Cell
					switch si {
					case 0:
						cell = g.Cells[sc]["microwiper"]
					case 1:
						cell = g.Cells[sc][best[sc]]
					case 2:
						cell = g.Cells[sc]["oracle"]
					}
					if cell == nil {
						continue
					}
					r := relate(cell, base).Downtime
					if r.N == 0 || math.IsNaN(r.Median) {
						continue
					}
					// Clip the rare runaway so the -50% line stays readable.
					r.Median, r.Lo, r.Hi = math.Min(r.Median, 200), math.Min(r.Lo, 200), math.Min(r.Hi, 200)
					pts.add(float64(traces[sc.Trace])+s.off, r)
					ys = append(ys, r.Lo, r.Hi)
				}
				if pts.Len() == 0 {
					continue
				}
				sct, err := plotter.NewScatter(&pts)
				if err != nil {
					continue
				}
				sct.GlyphStyle = draw.GlyphStyle{Color: s.style.Color, Radius: vg.Points(2.5), Shape: s.style.Glyph}
				p.Add(sct)
				if sp := pts.spread(); sp.Len() > 0 {
					if eb, err := plotter.NewYErrorBars(sp); err == nil {
						eb.Color = s.style.Color
						eb.CapWidth = vg.Points(3)
						p.Add(eb)
					}
				}
			}
			line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: claimThreshold}, {X: float64(len(traceNames)) - 0.5, Y: claimThreshold}})
			if err == nil {
				line.Color = okBlack
				line.Dashes = dashes[1]
				p.Add(line)
			}
			p.X.Min, p.X.Max = -0.5, float64(len(traceNames))-0.5
			p.NominalX(traceNames...)
			p.X.Min, p.X.Max = -0.5, float64(len(traceNames))-0.5
			// Trace names are long: slant them so they never overlap.
			p.X.Tick.Label.Rotation = math.Pi / 6
			p.X.Tick.Label.XAlign = draw.XRight
			p.X.Tick.Label.YAlign = draw.YCenter
			ys = append(ys, claimThreshold, 0)
			padLinear(&p.Y, ys)
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) { alignGrid(c, plots, cols) })
	}
	return fig
}

// downtimeCDFFigure draws, for each trace at its lowest link, the
// empirical CDF of downtime over the start times for the labels pick
// names; nil when no cell has two runs.
func downtimeCDFFigure(g *grouping, name string, pick func(Scenario) []string) *Figure {
	var scs []Scenario
	seen := map[string]bool{}
	for _, sc := range g.Scenarios { // trace, then bandwidth ascending
		if seen[sc.Trace] {
			continue
		}
		if c := g.Cells[sc][baseline]; c == nil || len(c.Runs) < 2 {
			continue
		}
		seen[sc.Trace] = true
		scs = append(scs, sc)
	}
	if len(scs) == 0 {
		return nil
	}
	st := styles(g)
	labelSet := map[string]bool{}
	var labels []string
	for _, sc := range scs {
		for _, l := range pick(sc) {
			if g.Cells[sc][l] != nil && !labelSet[l] {
				labelSet[l] = true
				labels = append(labels, l)
			}
		}
	}
	sort.SliceStable(labels, func(i, j int) bool { return indexOf(g.Labels, labels[i]) < indexOf(g.Labels, labels[j]) })
	var entries []legendEntry
	for _, l := range labels {
		entries = append(entries, legendEntry{label: l, style: st[l], line: true})
	}
	cols, rows := panelGrid(len(scs))
	fig := &Figure{
		Name:    name,
		Caption: "Downtime over migration start times: the empirical CDF of each algorithm's downtime over the drawn start times, one panel per trace at its slowest link. A curve to the left is better at that share of start times.",
		Width:   vg.Length(math.Max(4.5, 3.2*float64(cols))) * vg.Inch,
		Height:  vg.Length(0.7+2.6*float64(rows)) * vg.Inch,
	}
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, sc := range scs {
			p := newPlot(sc.Trace+" at "+sc.bandwidthName(), "downtime (ms)", "share of start times")
			addGrid(p, true)
			var xs []float64
			for _, l := range labels {
				cell := g.Cells[sc][l]
				if cell == nil || !containsLabel(pick(sc), l) {
					continue
				}
				vs := make([]float64, len(cell.Runs))
				for i, r := range cell.Runs {
					vs[i] = float64(r.DowntimeNS) / 1e6
				}
				sort.Float64s(vs)
				var pts plotter.XYs
				for i, v := range vs {
					prev := 0.0
					if i > 0 {
						prev = float64(i) / float64(len(vs))
					}
					pts = append(pts, plotter.XY{X: v, Y: prev}, plotter.XY{X: v, Y: float64(i+1) / float64(len(vs))})
				}
				xs = append(xs, vs...)
				line, err := plotter.NewLine(pts)
				if err != nil {
					continue
				}
				line.Color = st[l].Color
				line.Dashes = st[l].Dash
				line.Width = vg.Points(1.2)
				p.Add(line)
			}
			if lo, hi := minMax(xs); lo > 0 && hi/lo > 20 {
				setLog(&p.X, lo, hi)
				p.X.Min, p.X.Max = lo/1.25, hi*1.25
			} else {
				padLinear(&p.X, xs)
			}
			p.Y.Min, p.Y.Max = 0, 1.02
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) { alignGrid(c, plots, cols) })
	}
	return fig
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return len(xs)
}

func containsLabel(xs []string, x string) bool { return indexOf(xs, x) < len(xs) }
