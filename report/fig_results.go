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

	"github.com/microwiper/microwiper/algorithms"
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
	return strings.Join(g.appendVaried(parts, s), sep)
}

// appendVaried appends the RTT, dirty model and engine of s where they
// vary across the grouping.
func (g *grouping) appendVaried(parts []string, s Scenario) []string {
	if g.Varies.RTT {
		parts = append(parts, "rtt "+fmtDuration(s.RTTNS))
	}
	if g.Varies.DirtyModel {
		parts = append(parts, s.DirtyModel)
	}
	if g.Varies.Engine {
		parts = append(parts, s.engineName())
	}
	return parts
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

// maxBarsPerGroup bounds the bars of a group in a per-metric figure:
// beyond it Microwiper's variants are reduced to two roles.
const maxBarsPerGroup = 7

// metricBars is one series of a per-metric figure: which cell of a
// scenario it shows.
type metricBars struct {
	barSeries
	cell func(sc Scenario) *Cell
}

// metricSeries picks the bars of every group: each label when there are
// few; otherwise every algorithm but Microwiper's variants, Microwiper's
// default reading, and in each scenario the variant with the least median
// downtime relative to the baseline. note says so for the caption.
func metricSeries(g *grouping) (out []metricBars, note string) {
	st := styles(g)
	one := func(l string) metricBars {
		return metricBars{barSeries{Label: l, Style: st[l]}, func(sc Scenario) *Cell { return g.Cells[sc][l] }}
	}
	mw := 0
	for _, l := range g.Labels {
		if algorithms.Base(g.LabelAlgorithm[l]) == "microwiper" {
			mw++
		}
	}
	if len(g.Labels) <= maxBarsPerGroup || mw <= 2 {
		for _, l := range g.Labels {
			out = append(out, one(l))
		}
		return out, ""
	}
	best := bestVariants(claimRows(g))
	variants := 0
	for _, l := range g.Labels {
		if algorithms.Base(g.LabelAlgorithm[l]) != "microwiper" {
			out = append(out, one(l))
			continue
		}
		variants++
		if g.LabelAlgorithm[l] == "microwiper" && g.Default[l] {
			out = append(out, one(l))
		}
		if variants == 1 {
			// The best variant's bar follows the default's; its slot is
			// reserved at the first Microwiper label.
			out = append(out, metricBars{barSeries{Label: "best microwiper variant", Style: bestStyle}, func(sc Scenario) *Cell {
				if b := best[sc]; b != "" {
					return g.Cells[sc][b]
				}
				return nil
			}})
		}
	}
	// The default reading goes before the best variant.
	for i := 1; i < len(out); i++ {
		if out[i-1].Label == "best microwiper variant" && g.LabelAlgorithm[out[i].Label] == "microwiper" {
			out[i-1], out[i] = out[i], out[i-1]
		}
	}
	return out, fmt.Sprintf(" Of Microwiper's %d variants, the bars show the default reading and, per scenario, the variant with the least median downtime relative to %s (the summary tables give every variant; it may be the default).", variants, baseline)
}

// metricPanel is one panel of a per-metric figure: its groups and the
// bars drawn in them.
type metricPanel struct {
	title string
	// scenarios are the groups' scenarios; the zero Scenario where a
	// trace has none in this panel.
	scenarios []Scenario
	names     []string
	chart     *barChart
}

// metricLayout is a per-metric figure before drawing: the data its
// plotters are built from.
type metricLayout struct {
	series []metricBars
	// note is the caption's sentence on which bars are shown.
	note   string
	panels []metricPanel
	cols   int
	// width is the figure's width in inches.
	width float64
	// all is every value and interval end, for the one shared y scale.
	all []float64
}

// layoutMetric groups the scenarios for a per-metric figure: one panel
// with a group per scenario when their names fit under the groups;
// otherwise a panel per link (and RTT, dirty model and engine where they
// vary) whose groups are the traces, each trace in the same place in
// every panel.
func layoutMetric(g *grouping, metric func(*Cell) Summary) metricLayout {
	series, note := metricSeries(g)
	lay := metricLayout{series: series, note: note, cols: 1}
	nl := len(series)
	for _, sc := range g.Scenarios {
		for _, s := range series {
			if c := s.cell(sc); c != nil {
				v := metric(c)
				lay.all = append(lay.all, v.Lo, v.Hi, v.Median)
			}
		}
	}
	single := metricPanel{}
	for _, sc := range g.Scenarios {
		single.scenarios = append(single.scenarios, sc)
		single.names = append(single.names, g.scenarioName(sc, true, "\n"))
	}
	lay.panels = []metricPanel{single}
	lay.width = math.Max(5, math.Min(11, 1+float64(len(g.Scenarios)*nl)*0.16))
	tick := newPlot("", "", "").X.Tick.Label
	fits := func(p metricPanel, w float64) bool {
		groupW := vg.Length(w-1) * vg.Inch / vg.Length(max(len(p.scenarios), 1))
		for _, n := range p.names {
			for _, line := range splitLines(n) {
				if tick.Width(line) > groupW*0.95 {
					return false
				}
			}
		}
		return true
	}
	if !fits(single, lay.width) && g.Varies.Trace {
		var traces []string
		seen := map[string]bool{}
		for _, sc := range g.Scenarios {
			if !seen[sc.Trace] {
				seen[sc.Trace] = true
				traces = append(traces, sc.Trace)
			}
		}
		var panels []metricPanel
		var rests []Scenario
		idx := map[Scenario]int{}
		for _, sc := range g.Scenarios {
			rest := sc.withoutTrace()
			i, ok := idx[rest]
			if !ok {
				i = len(panels)
				idx[rest] = i
				rests = append(rests, rest)
				panels = append(panels, metricPanel{title: g.restName(rest), scenarios: make([]Scenario, len(traces)), names: traces})
			}
			panels[i].scenarios[indexOf(traces, sc.Trace)] = sc
		}
		order := make([]int, len(panels))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return rests[order[a]].BandwidthBps < rests[order[b]].BandwidthBps })
		lay.panels = nil
		for _, o := range order {
			lay.panels = append(lay.panels, panels[o])
		}
		panelW := 0.9 + float64(len(traces)*nl)*0.1
		lay.cols = max(1, min(len(panels), int(11/panelW)))
		lay.width = math.Min(11, math.Max(5, float64(lay.cols)*panelW))
	}
	bs := make([]barSeries, nl)
	for i, s := range series {
		bs[i] = s.barSeries
	}
	for i := range lay.panels {
		pn := &lay.panels[i]
		pn.chart = &barChart{Series: bs, Width: 0.8}
		for _, s := range series {
			vals := make([]Summary, len(pn.scenarios))
			marks := make([]bool, len(pn.scenarios))
			for gi, sc := range pn.scenarios {
				if sc == (Scenario{}) {
					continue
				}
				if c := s.cell(sc); c != nil {
					vals[gi] = metric(c)
					marks[gi] = c.Forced > 0
				}
			}
			pn.chart.Values = append(pn.chart.Values, vals)
			pn.chart.Marked = append(pn.chart.Marked, marks)
		}
	}
	return lay
}

// roomPerGroup is the width a group of p gets in the figure.
func (lay *metricLayout) roomPerGroup(p metricPanel) vg.Length {
	return vg.Length(lay.width/float64(lay.cols)-0.9) * vg.Inch / vg.Length(max(len(p.scenarios), 1))
}

// metricFigure draws one metric per scenario and algorithm as grouped
// bars: the median as a filled bar, the 95% interval as a whisker, one
// bar per algorithm in each group (see layoutMetric for the groups and
// metricSeries for the bars).
func metricFigure(g *grouping, name, caption, ylabel string, metric func(*Cell) Summary) *Figure {
	lay := layoutMetric(g, metric)
	rows := (len(lay.panels) + lay.cols - 1) / lay.cols
	slanted := false
	probe := newPlot("", "", "")
	for _, p := range lay.panels {
		slanted = nameGroups(probe, p.names, lay.roomPerGroup(p)) || slanted
	}
	rowH := 2.6
	if slanted {
		rowH += 0.5
	}
	fig := &Figure{Name: name, Caption: caption + lay.note, Width: vg.Length(lay.width) * vg.Inch, Height: vg.Length(0.6+rowH*float64(rows)) * vg.Inch}
	if len(lay.panels) == 1 && !slanted {
		fig.Height = 3.2 * vg.Inch
	}
	var entries []legendEntry
	for _, s := range lay.series {
		entries = append(entries, legendEntry{label: s.Label, style: s.Style, bar: true})
	}
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, pn := range lay.panels {
			p := newPlot(pn.title, "", ylabel)
			addGrid(p, false)
			nameGroups(p, pn.names, lay.roomPerGroup(pn))
			// One scale for every panel, from every panel's values; bars
			// rise from 0, or from a log axis's floor.
			ch := *pn.chart
			if floor := useLogY(&p.Y, lay.all, 100); floor > 0 {
				// A bar at the floor has no height: when the least value
				// is close to it, a decade more keeps every bar visible.
				// (With zeros the floor holds them, a decade below the
				// least positive value, so this never applies.)
				if lo := minPositive(lay.all); lo < 2*floor {
					p.Y.Min /= 10
				}
				ch.Base, ch.Log = p.Y.Min, true
			} else {
				padLinear(&p.Y, append(slices.Clip(lay.all), 0))
			}
			p.Y.Tick.Marker = tidyTicks{p.Y.Tick.Marker}
			p.Add(&ch)
			p.X.Min, p.X.Max = -0.5, float64(len(pn.scenarios))-0.5
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) {
			if len(plots) == 1 {
				plots[0].Draw(c)
				return
			}
			alignGrid(c, plots, lay.cols)
		})
	}
	return fig
}

// restName names a scenario without its trace: the link, and the RTT,
// dirty model and engine where they vary.
func (g *grouping) restName(s Scenario) string {
	return strings.Join(g.appendVaried([]string{"link " + s.bandwidthName()}, s), ", ")
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
	// The same lines as the bar figures' bars: with many Microwiper
	// variants, the default reading and the best per scenario.
	series, note := metricSeries(g)
	var entries []legendEntry
	for _, s := range series {
		entries = append(entries, legendEntry{label: s.Label, style: s.Style, line: true})
	}
	cols, rows := panelGrid(len(useKeys))
	fig := &Figure{
		Name:    "sweep",
		Caption: "Downtime against link bandwidth (log-log), one line per algorithm; markers are medians, bars and shaded bands 95% confidence intervals; on a log axis, zero downtimes sit on the bottom edge." + note,
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
			for _, s := range series {
				for _, sc := range panels[k] {
					if cell := s.cell(sc); cell != nil {
						ys = append(ys, cell.Downtime.Lo, cell.Downtime.Hi)
					}
				}
			}
			floor := useLogY(&p.Y, ys, 1)
			for _, s := range series {
				st := s.Style
				var pts errPoints
				for _, sc := range panels[k] {
					if cell := s.cell(sc); cell != nil {
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
						r, gg, b, _ := st.Color.RGBA()
						poly.Color = color.NRGBA{uint8(r >> 8), uint8(gg >> 8), uint8(b >> 8), 0x30}
						poly.LineStyle.Width = 0
						p.Add(poly)
					}
				}
				line, sc, err := plotter.NewLinePoints(&pts)
				if err != nil {
					continue
				}
				line.Color = st.Color
				line.Dashes = st.Dash
				line.Width = vg.Points(1)
				sc.GlyphStyle = draw.GlyphStyle{Color: st.Color, Radius: vg.Points(2.2), Shape: st.Glyph}
				p.Add(line, sc)
				if sp := pts.spread(); sp.Len() > 0 {
					eb, err := plotter.NewYErrorBars(sp)
					if err != nil {
						continue
					}
					eb.Color = st.Color
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

// minPositive is the least value above 0 (Inf when none is).
func minPositive(vs []float64) float64 {
	lo := math.Inf(1)
	for _, v := range vs {
		if v > 0 {
			lo = math.Min(lo, v)
		}
	}
	return lo
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
