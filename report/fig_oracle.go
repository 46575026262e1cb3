package report

import (
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// oracleFigure draws the oracle's downtime bound against the switch-over
// time, a panel per trace and a line per bandwidth: how early a migration
// could stop and how little downtime any policy stopping then can reach.
// Nil when no oracle run has a curve.
func oracleFigure(s *Set, g *grouping) *Figure {
	type panelKey struct {
		Trace, DirtyModel, Engine string
		RTTNS                     int64
	}
	type line struct {
		bps   int64
		name  string
		curve []CurvePoint
	}
	panels := map[panelKey][]line{}
	var keys []panelKey
	bwSet := map[int64]string{}
	for _, sc := range g.Scenarios {
		for _, l := range g.Labels {
			c := g.Cells[sc][l]
			if c == nil || c.Algorithm != "oracle" {
				continue
			}
			curve := s.Curves[c.Runs[0].RunID]
			if len(curve) == 0 {
				continue
			}
			k := panelKey{sc.Trace, sc.DirtyModel, sc.Engine, sc.RTTNS}
			if panels[k] == nil {
				keys = append(keys, k)
			}
			panels[k] = append(panels[k], line{sc.BandwidthBps, sc.bandwidthName(), curve})
			bwSet[sc.BandwidthBps] = sc.bandwidthName()
			break // one oracle variant per scenario
		}
	}
	if len(keys) == 0 {
		return nil
	}
	bws := make([]int64, 0, len(bwSet))
	for b := range bwSet {
		bws = append(bws, b)
	}
	sort.Slice(bws, func(i, j int) bool { return bws[i] < bws[j] })
	// A sequential palette: bandwidth is ordered, so its colours are too.
	pal := viridis(max(len(bws)+1, 2)).Colors()
	style := map[int64]seriesStyle{}
	var entries []legendEntry
	for i, b := range bws {
		style[b] = seriesStyle{Color: pal[i], Dash: dashes[i%len(dashes)]}
		entries = append(entries, legendEntry{label: bwSet[b], style: style[b], noGlyph: true})
	}
	cols, rows := panelGrid(len(keys))
	fig := &Figure{
		Name:    "oracle",
		Caption: "Oracle lower bound: the least downtime any policy that switches over at a given time can reach, one line per bandwidth; its minimum is the oracle row of the tables. On the log axis, zero sits on the bottom edge.",
		Width:   vg.Length(math.Max(4.5, 3.2*float64(cols))) * vg.Inch,
		Height:  vg.Length(0.5+2.6*float64(rows)) * vg.Inch,
	}
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, k := range keys {
			sc0 := Scenario{Trace: k.Trace, DirtyModel: k.DirtyModel, Engine: k.Engine, RTTNS: k.RTTNS}
			p := newPlot(g.scenarioName(sc0, false, ", "), "switch-over time (s)", "downtime bound (ms)")
			addGrid(p, true)
			var ys []float64
			for _, ln := range panels[k] {
				for _, pt := range ln.curve {
					ys = append(ys, float64(pt.DowntimeNS)/1e6)
				}
			}
			floor := useLogY(&p.Y, ys, 1)
			if floor == 0 {
				padLinear(&p.Y, ys)
			}
			for _, ln := range panels[k] {
				xy := make(plotter.XYs, len(ln.curve))
				for i, pt := range ln.curve {
					y := float64(pt.DowntimeNS) / 1e6
					if floor > 0 && y <= 0 {
						y = floor
					}
					xy[i] = plotter.XY{X: float64(pt.SwitchNS) / 1e9, Y: y}
				}
				l, err := plotter.NewLine(xy)
				if err != nil {
					continue
				}
				l.Color, l.Dashes, l.Width = style[ln.bps].Color, style[ln.bps].Dash, vg.Points(1.2)
				p.Add(l)
			}
			p.X.Min = 0
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) { alignGrid(c, plots, cols) })
	}
	return fig
}
