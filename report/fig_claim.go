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

// claimCap cuts relative values above +200%: a runaway cell would
// otherwise squash the -50% line into the axis.
const claimCap = 200

// claimSeries are the bars of each trace in the claim figure, in order:
// few enough that the bars of thirteen traces stay legible.
var claimSeries = []barSeries{
	{Label: "microwiper (default reading)", Style: seriesStyle{Color: algorithmColors["microwiper"], Glyph: draw.CircleGlyph{}, Hatch: algorithmHatches["microwiper"]}},
	{Label: "best variant in the cell", Style: bestStyle},
	{Label: "oracle (bound)", Style: seriesStyle{Color: algorithmColors["oracle"], Glyph: draw.TriangleGlyph{}, Hatch: algorithmHatches["oracle"]}},
}

// claimCharts builds the claim figure's bars for one link: per trace
// (in traces' order), the median downtime and pages relative to the
// baseline, with their intervals, of the default reading, the best
// variant and the oracle. A trace without a baseline or a cell has no bar.
func claimCharts(g *grouping, best map[Scenario]string, traces []string, bw int64) (down, pages *barChart) {
	down = &barChart{Series: claimSeries, Cap: claimCap, Width: 0.8}
	pages = &barChart{Series: claimSeries, Cap: claimCap, Width: 0.8}
	idx := map[string]int{}
	for i, t := range traces {
		idx[t] = i
	}
	for range claimSeries {
		down.Values = append(down.Values, make([]Summary, len(traces)))
		pages.Values = append(pages.Values, make([]Summary, len(traces)))
	}
	for _, sc := range g.Scenarios {
		if sc.BandwidthBps != bw {
			continue
		}
		base := g.Cells[sc][baseline]
		if base == nil {
			continue
		}
		for si, l := range []string{"microwiper", best[sc], "oracle"} {
			cell := g.Cells[sc][l]
			if cell == nil {
				continue
			}
			r := relate(cell, base)
			down.Values[si][idx[sc.Trace]] = r.Downtime
			pages.Values[si][idx[sc.Trace]] = r.Pages
		}
	}
	return down, pages
}

// claimFigure draws, per link (a row) and for downtime and pages (the
// columns), each trace's median relative to the baseline as a bar from
// 0 with its 95% interval: the default reading, the best variant in the
// cell and the oracle, against the claim's -50% line.
func claimFigure(g *grouping, claims []claimRow) *Figure {
	var bws []int64
	var traces []string
	seenT := map[string]bool{}
	for _, sc := range g.Scenarios {
		if !seenT[sc.Trace] {
			seenT[sc.Trace] = true
			traces = append(traces, sc.Trace)
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
	var entries []legendEntry
	for _, s := range claimSeries {
		entries = append(entries, legendEntry{label: s.Label, style: s.Style, bar: true})
	}
	entries = append(entries, legendEntry{label: "claim: -50% downtime", style: seriesStyle{Color: okBlack, Dash: dashes[1]}, line: true, noGlyph: true})
	width := math.Min(11, math.Max(6, 2*(0.9+float64(len(traces)*len(claimSeries))*0.1)))
	panelW := vg.Length(width/2-0.9) * vg.Inch
	fig := &Figure{
		Name: "claim",
		Caption: "Median downtime (left) and pages sent (right) relative to " + baseline + ", paired over start times, per trace; one row per link. " +
			"Bars rise from 0 (no change) to the median; whiskers are 95% intervals. Per trace three bars: Microwiper's default reading, " +
			"the variant with the least median downtime in that cell (the claim table names it; it may be the default), and the oracle's bound. " +
			"Below the dashed line the paper's downtime claim (more than 50% less) holds; its pages claim needs a bar below 0. " +
			"Values beyond +200% are cut at +200% (an arrowhead marks a cut interval).",
		Width: vg.Length(width) * vg.Inch,
	}
	var downs, pagess []*barChart
	var downV, pageV []float64
	for _, bw := range bws {
		d, p := claimCharts(g, best, traces, bw)
		downs, pagess = append(downs, d), append(pagess, p)
		downV, pageV = append(downV, d.values()...), append(pageV, p.values()...)
	}
	// One scale per column: links compare at a glance.
	downV = append(downV, claimThreshold, 0)
	pageV = append(pageV, 0)
	probe := newPlot("", "", "")
	slant := false
	for _, t := range traces {
		if probe.X.Tick.Label.Width(t) > panelW/vg.Length(len(traces))*0.95 {
			slant = true
		}
	}
	rowH := 2.4
	if slant {
		rowH += 0.5
	}
	fig.Height = vg.Length(0.5+rowH*float64(len(bws))) * vg.Inch
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for i, bw := range bws {
			for k, ch := range []*barChart{downs[i], pagess[i]} {
				title, ylabel, vals := "downtime, link "+fmtBw(bw), "Δ downtime vs "+baseline+" (%)", downV
				if k == 1 {
					title, ylabel, vals = "pages sent, link "+fmtBw(bw), "Δ pages sent vs "+baseline+" (%)", pageV
				}
				p := newPlot(title, "", ylabel)
				addGrid(p, false)
				nameGroups(p, traces, panelW/vg.Length(len(traces)))
				padLinear(&p.Y, vals)
				p.Y.Tick.Marker = tidyTicks{p.Y.Tick.Marker}
				p.Add(ch)
				p.Add(hLine{y: 0, style: draw.LineStyle{Color: okBlack, Width: vg.Points(0.6)}})
				if k == 0 {
					p.Add(hLine{y: claimThreshold, style: draw.LineStyle{Color: okBlack, Width: vg.Points(1), Dashes: dashes[1]}})
				}
				p.X.Min, p.X.Max = -0.5, float64(len(traces))-0.5
				plots = append(plots, p)
			}
		}
		withLegend(c, entries, func(c draw.Canvas) { alignGrid(c, plots, 2) })
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
