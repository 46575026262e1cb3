package report

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// errPoints are points with asymmetric error bars (a median and its
// interval), for plotter's error bar and scatter types.
type errPoints struct {
	xs, ys, lo, hi []float64
}

func (e *errPoints) add(x float64, s Summary) {
	e.xs = append(e.xs, x)
	e.ys = append(e.ys, s.Median)
	e.lo = append(e.lo, s.Lo)
	e.hi = append(e.hi, s.Hi)
}

// spread returns the points whose interval has width: bars of zero width
// would only strike through the markers.
func (e *errPoints) spread() *errPoints {
	out := &errPoints{}
	for i := range e.lo {
		if e.lo[i] != e.hi[i] {
			out.xs = append(out.xs, e.xs[i])
			out.ys = append(out.ys, e.ys[i])
			out.lo = append(out.lo, e.lo[i])
			out.hi = append(out.hi, e.hi[i])
		}
	}
	return out
}

func (e *errPoints) Len() int                    { return len(e.xs) }
func (e *errPoints) XY(i int) (float64, float64) { return e.xs[i], e.ys[i] }
func (e *errPoints) YError(i int) (float64, float64) {
	return e.ys[i] - e.lo[i], e.hi[i] - e.ys[i]
}

// useLogY switches an axis to a log scale when the positive values span
// more than two decades: downtimes of stop-and-copy and of a good policy
// differ a hundredfold, and a linear axis would flatten the ones that
// matter. Zeros (a final round with nothing to send and no RTT) cannot sit
// on a log axis; they are drawn on its floor, a decade below the smallest
// positive value, and the floor is returned (0 for a linear axis).
func useLogY(a *plot.Axis, values []float64, minRatio float64) (floor float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	zeros := false
	for _, v := range values {
		switch {
		case math.IsNaN(v):
		case v < 0:
			return 0
		case v == 0:
			zeros = true
		default:
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 0) || hi/lo < minRatio {
		return 0
	}
	setLog(a, lo, hi)
	if zeros {
		a.Min /= 10
		a.Tick.Marker = zeroFloorTicks{floor: a.Min}
	}
	return a.Min
}

// zeroFloorTicks are log ticks whose lowest decade is relabelled "0": it
// holds the zeros, so the minor ticks between it and the next decade
// would mislead.
type zeroFloorTicks struct{ floor float64 }

func (z zeroFloorTicks) Ticks(min, max float64) []plot.Tick {
	out := []plot.Tick{{Value: z.floor, Label: "0"}}
	for _, t := range (plot.LogTicks{Prec: -1}).Ticks(min, max) {
		if t.Value >= 10*z.floor*0.999 {
			out = append(out, t)
		}
	}
	return out
}

// clamp moves values at or below zero to floor, for a log axis.
func (e *errPoints) clamp(floor float64) {
	for _, s := range [][]float64{e.ys, e.lo, e.hi} {
		for i, v := range s {
			if v <= 0 {
				s[i] = floor
			}
		}
	}
}

func setLog(a *plot.Axis, lo, hi float64) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.LogTicks{Prec: -1}
	a.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	a.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
}

// scenarioName is a scenario's name in a figure, with only the fields that
// vary in the set.
func (g *grouping) scenarioName(s Scenario, withBandwidth bool, sep string) string {
	var parts []string
	if g.Varies.Trace || (!withBandwidth || !g.Varies.Bandwidth) {
		parts = append(parts, s.Trace)
	}
	if withBandwidth && (g.Varies.Bandwidth || len(parts) == 0) {
		parts = append(parts, s.bandwidthName())
	}
	if g.Varies.RTT {
		parts = append(parts, "rtt "+fmtDuration(s.RTTNS))
	}
	if g.Varies.DirtyModel {
		parts = append(parts, s.DirtyModel)
	}
	if g.Varies.Engine {
		parts = append(parts, s.engineName())
	}
	return strings.Join(parts, sep)
}

func fmtDuration(ns int64) string {
	switch {
	case ns == 0:
		return "0"
	case ns%1e9 == 0:
		return fmt.Sprintf("%ds", ns/1e9)
	case ns%1e6 == 0:
		return fmt.Sprintf("%dms", ns/1e6)
	case ns%1e3 == 0:
		return fmt.Sprintf("%dµs", ns/1e3)
	}
	return fmt.Sprintf("%dns", ns)
}

// metricFigure draws one metric per scenario and algorithm: the median as
// a marker and the 95% interval as error bars, algorithms side by side
// within each scenario. When the scenario names would not fit under their
// groups, the figure gets a panel per trace, so that each group is named
// by its bandwidth alone.
func metricFigure(g *grouping, name, caption, ylabel string, metric func(*Cell) Summary) *Figure {
	st := styles(g)
	nl := len(g.Labels)
	var all []float64
	for _, sc := range g.Scenarios {
		for _, l := range g.Labels {
			if c := g.Cells[sc][l]; c != nil {
				s := metric(c)
				all = append(all, s.Lo, s.Hi, s.Median)
			}
		}
	}
	type panel struct {
		title     string
		scenarios []Scenario
		names     []string
	}
	single := panel{}
	for _, sc := range g.Scenarios {
		single.scenarios = append(single.scenarios, sc)
		single.names = append(single.names, g.scenarioName(sc, true, "\n"))
	}
	panels := []panel{single}
	width := vg.Length(math.Max(5, math.Min(11, 1+float64(len(g.Scenarios)*nl)*0.16))) * vg.Inch
	tick := newPlot("", "", "").X.Tick.Label
	fits := func(p panel, w vg.Length) bool {
		groupW := (w - vg.Inch) / vg.Length(max(len(p.scenarios), 1))
		for _, n := range p.names {
			for _, line := range strings.Split(n, "\n") {
				if tick.Width(line) > groupW*0.95 {
					return false
				}
			}
		}
		return true
	}
	cols := 1
	if !fits(single, width) && g.Varies.Trace {
		panels = nil
		idx := map[string]int{}
		for _, sc := range g.Scenarios {
			i, ok := idx[sc.Trace]
			if !ok {
				i = len(panels)
				idx[sc.Trace] = i
				panels = append(panels, panel{title: sc.Trace})
			}
			panels[i].scenarios = append(panels[i].scenarios, sc)
			n := g.scenarioName(sc, true, "\n")
			n = strings.TrimPrefix(n, sc.Trace+"\n")
			panels[i].names = append(panels[i].names, n)
		}
		most := 0
		for _, p := range panels {
			most = max(most, len(p.scenarios))
		}
		cols = max(1, min(len(panels), int(11/(1+float64(most*nl)*0.16))))
		width = vg.Length(math.Min(11, math.Max(5, float64(cols)*(1+float64(most*nl)*0.16)))) * vg.Inch
	}
	rows := (len(panels) + cols - 1) / cols
	fig := &Figure{Name: name, Caption: caption, Width: width, Height: vg.Length(0.6+2.6*float64(rows)) * vg.Inch}
	if len(panels) == 1 {
		fig.Height = 3.2 * vg.Inch
	}
	var entries []legendEntry
	for _, l := range g.Labels {
		entries = append(entries, legendEntry{label: l, style: st[l]})
	}
	step := 0.8 / float64(nl)
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, pn := range panels {
			p := newPlot(pn.title, "", ylabel)
			p.NominalX(pn.names...)
			p.X.Min, p.X.Max = -0.5, float64(len(pn.scenarios))-0.5
			p.X.Tick.Width = 0
			addGrid(p, false)
			// One scale for every panel, from every panel's values.
			floor := useLogY(&p.Y, all, 100)
			if floor == 0 {
				padLinear(&p.Y, all)
			}
			for gi := 1; gi < len(pn.scenarios); gi++ {
				sep, _ := plotter.NewLine(plotter.XYs{{X: float64(gi) - 0.5, Y: p.Y.Min}, {X: float64(gi) - 0.5, Y: p.Y.Max}})
				if sep != nil {
					sep.Color = gridColor
					p.Add(sep)
				}
			}
			for li, l := range g.Labels {
				pts := &errPoints{}
				for gi, sc := range pn.scenarios {
					if c := g.Cells[sc][l]; c != nil {
						pts.add(float64(gi)+(float64(li)-float64(nl-1)/2)*step, metric(c))
					}
				}
				if pts.Len() == 0 {
					continue
				}
				if floor > 0 {
					pts.clamp(floor)
				}
				if sp := pts.spread(); sp.Len() > 0 {
					if eb, err := plotter.NewYErrorBars(sp); err == nil {
						eb.Color = st[l].Color
						eb.Width = vg.Points(0.8)
						eb.CapWidth = vg.Points(4)
						p.Add(eb)
					}
				}
				if sc, err := plotter.NewScatter(pts); err == nil {
					sc.GlyphStyle = draw.GlyphStyle{Color: st[l].Color, Radius: vg.Points(2.5), Shape: st[l].Glyph}
					p.Add(sc)
				}
				// Force-stopped cells get a ring, so that a migration that
				// never converged never looks like an ordinary result.
				forced := &errPoints{}
				for gi, sc := range pn.scenarios {
					if c := g.Cells[sc][l]; c != nil && c.Forced > 0 {
						forced.add(float64(gi)+(float64(li)-float64(nl-1)/2)*step, metric(c))
					}
				}
				if forced.Len() > 0 {
					if floor > 0 {
						forced.clamp(floor)
					}
					if sc, err := plotter.NewScatter(forced); err == nil {
						sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(5), Shape: draw.RingGlyph{}}
						p.Add(sc)
					}
				}
			}
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) {
			if len(plots) == 1 {
				plots[0].Draw(c)
				return
			}
			alignGrid(c, plots, cols)
		})
	}
	return fig
}

// sweepFigure draws downtime against bandwidth, a line per algorithm and a
// panel per scenario without its bandwidth. Nil when no panel has two
// bandwidths.
func sweepFigure(g *grouping) *Figure {
	type panelKey struct {
		Trace, DirtyModel, Engine string
		RTTNS                     int64
	}
	panels := map[panelKey][]Scenario{}
	var keys []panelKey
	for _, sc := range g.Scenarios {
		k := panelKey{sc.Trace, sc.DirtyModel, sc.Engine, sc.RTTNS}
		if panels[k] == nil {
			keys = append(keys, k)
		}
		panels[k] = append(panels[k], sc)
	}
	var useKeys []panelKey
	for _, k := range keys {
		bws := map[int64]bool{}
		for _, sc := range panels[k] {
			bws[sc.BandwidthBps] = true
		}
		if len(bws) > 1 {
			useKeys = append(useKeys, k)
		}
	}
	if len(useKeys) == 0 {
		return nil
	}
	st := styles(g)
	var entries []legendEntry
	for _, l := range g.Labels {
		entries = append(entries, legendEntry{label: l, style: st[l], line: true})
	}
	cols, rows := panelGrid(len(useKeys))
	fig := &Figure{
		Name:    "sweep",
		Caption: "Downtime against link bandwidth (log-log), one line per algorithm; markers are medians, bars and shaded bands 95% confidence intervals; on a log axis, zero downtimes sit on the bottom edge.",
		Width:   vg.Length(math.Max(4.5, 3.2*float64(cols))) * vg.Inch,
		Height:  vg.Length(0.5+2.6*float64(rows)) * vg.Inch,
	}
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, k := range useKeys {
			sc0 := panels[k][0]
			p := newPlot(g.scenarioName(sc0, false, ", "), "bandwidth (Gbit/s)", "downtime (ms)")
			addGrid(p, true)
			var xs, ys []float64
			for _, l := range g.Labels {
				for _, sc := range panels[k] {
					if cell := g.Cells[sc][l]; cell != nil {
						ys = append(ys, cell.Downtime.Lo, cell.Downtime.Hi)
					}
				}
			}
			floor := useLogY(&p.Y, ys, 1)
			for _, l := range g.Labels {
				var pts errPoints
				for _, sc := range panels[k] {
					if cell := g.Cells[sc][l]; cell != nil {
						pts.add(float64(sc.BandwidthBps)/1e9, cell.Downtime)
					}
				}
				if pts.Len() == 0 {
					continue
				}
				sortErrPoints(&pts)
				if floor > 0 {
					pts.clamp(floor)
				}
				xs = append(xs, pts.xs...)
				// The band: the 95% interval as a translucent area along
				// the line, where the repetitions differ.
				if sp := pts.spread(); sp.Len() > 0 && len(pts.xs) > 1 && (floor == 0 || slices.Min(pts.lo) > 0) {
					var ring plotter.XYs
					for i := range pts.xs {
						ring = append(ring, plotter.XY{X: pts.xs[i], Y: pts.lo[i]})
					}
					for i := len(pts.xs) - 1; i >= 0; i-- {
						ring = append(ring, plotter.XY{X: pts.xs[i], Y: pts.hi[i]})
					}
					if poly, err := plotter.NewPolygon(ring); err == nil {
						r, gg, b, _ := st[l].Color.RGBA()
						poly.Color = color.NRGBA{uint8(r >> 8), uint8(gg >> 8), uint8(b >> 8), 0x30}
						poly.LineStyle.Width = 0
						p.Add(poly)
					}
				}
				line, sc, err := plotter.NewLinePoints(&pts)
				if err != nil {
					continue
				}
				line.Color = st[l].Color
				line.Dashes = st[l].Dash
				line.Width = vg.Points(1)
				sc.GlyphStyle = draw.GlyphStyle{Color: st[l].Color, Radius: vg.Points(2.2), Shape: st[l].Glyph}
				p.Add(line, sc)
				if sp := pts.spread(); sp.Len() > 0 {
					eb, err := plotter.NewYErrorBars(sp)
					if err != nil {
						continue
					}
					eb.Color = st[l].Color
					eb.CapWidth = vg.Points(3)
					p.Add(eb)
				}
			}
			if lo, hi := minMax(xs); lo > 0 {
				setLog(&p.X, lo, hi)
				// The measured range, not whole decades: a sweep rarely
				// spans them.
				p.X.Min, p.X.Max = lo/1.25, hi*1.25
				p.X.Tick.Marker = valueTicks(xs)
			}
			if floor == 0 {
				padLinear(&p.Y, ys)
			}
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) { alignGrid(c, plots, cols) })
	}
	return fig
}

func sortErrPoints(e *errPoints) {
	idx := make([]int, e.Len())
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return e.xs[idx[a]] < e.xs[idx[b]] })
	var out errPoints
	for _, i := range idx {
		out.xs = append(out.xs, e.xs[i])
		out.ys = append(out.ys, e.ys[i])
		out.lo = append(out.lo, e.lo[i])
		out.hi = append(out.hi, e.hi[i])
	}
	*e = out
}

func minMax(vs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if math.IsNaN(v) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// valueTicks labels a log axis at the values that were measured (the
// bandwidths of a sweep) instead of at decades only.
type valueTicks []float64

func (v valueTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	seen := map[float64]bool{}
	for _, t := range (plot.LogTicks{Prec: -1}).Ticks(min, max) {
		t.Label = ""
		out = append(out, t)
	}
	for _, x := range v {
		if !seen[x] && x >= min && x <= max {
			seen[x] = true
			out = append(out, plot.Tick{Value: x, Label: trimFloat(x)})
		}
	}
	return out
}

// padLinear gives a linear axis 8% of room beyond the data on each side,
// so that markers at the extremes are not cut by the frame, and keeps a
// non-negative quantity's axis from dipping below zero.
func padLinear(a *plot.Axis, values []float64) {
	lo, hi := minMax(values)
	if math.IsInf(lo, 0) {
		return
	}
	pad := 0.08 * (hi - lo)
	if pad == 0 {
		pad = 0.08 * math.Max(math.Abs(hi), 1)
	}
	a.Min, a.Max = lo-pad, hi+pad
	if lo >= 0 && a.Min < 0 {
		a.Min = 0
	}
}
