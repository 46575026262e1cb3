package report

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// roundsScenario picks the scenario the per-round figure shows: the one
// matching trace and bandwidth when given (empty matches any), else the
// first with the most algorithms that have rounds, at its middle
// bandwidth.
func roundsScenario(s *Set, g *grouping, trace string, bps int64) (Scenario, bool) {
	best, bestN := Scenario{}, 0
	for _, sc := range g.Scenarios {
		if trace != "" && sc.Trace != trace || bps != 0 && sc.BandwidthBps != bps {
			continue
		}
		n := 0
		for _, l := range g.Labels {
			if c := g.Cells[sc][l]; c != nil && len(s.Rounds[c.Runs[0].RunID]) > 0 {
				n++
			}
		}
		if n > bestN {
			best, bestN = sc, n
		}
	}
	if bestN == 0 {
		return Scenario{}, false
	}
	if bps == 0 {
		// Prefer the middle bandwidth of the chosen trace: the extremes are
		// where every policy looks alike.
		var cands []Scenario
		for _, sc := range g.Scenarios {
			if sc.Trace == best.Trace && sc.RTTNS == best.RTTNS && sc.DirtyModel == best.DirtyModel && sc.Engine == best.Engine {
				cands = append(cands, sc)
			}
		}
		mid := cands[len(cands)/2]
		for _, l := range g.Labels {
			if c := g.Cells[mid][l]; c != nil && len(s.Rounds[c.Runs[0].RunID]) > 0 {
				return mid, true
			}
		}
	}
	return best, true
}

// roundsFigure draws pages sent and pages dirtied per round, one panel per
// algorithm, for the first repetition of each algorithm in one scenario.
func roundsFigure(s *Set, g *grouping, sc Scenario) *Figure {
	st := styles(g)
	type panel struct {
		label  string
		rounds []Round
	}
	var panels []panel
	lo, hi := math.Inf(1), math.Inf(-1)
	maxRound := int64(1)
	for _, l := range g.Labels {
		c := g.Cells[sc][l]
		if c == nil {
			continue
		}
		rs := s.Rounds[c.Runs[0].RunID]
		if len(rs) == 0 {
			continue
		}
		panels = append(panels, panel{l, rs})
		for _, r := range rs {
			for _, v := range []int64{r.PagesSent, r.PagesDirtied} {
				if v > 0 {
					lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
				}
			}
			maxRound = max(maxRound, r.Round)
		}
	}
	if len(panels) == 0 {
		return nil
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	cols, rows := panelGrid(len(panels))
	dark := seriesStyle{Color: okBlack}
	entries := []legendEntry{
		{label: "pages sent", style: seriesStyle{Color: dark.Color, Glyph: draw.CircleGlyph{}}, line: true},
		{label: "pages dirtied during the round", style: seriesStyle{Color: dark.Color, Glyph: draw.RingGlyph{}, Dash: dashes[1]}, line: true},
	}
	fig := &Figure{
		Name: "rounds",
		Caption: fmt.Sprintf("Pages sent and pages dirtied per round, trace %s at %s (first repetition of each algorithm; the last round is the stop-and-copy round; zero values are not drawn on the log axis).",
			sc.Trace, sc.bandwidthName()),
		Width:  vg.Length(math.Max(4.5, 2.6*float64(cols))) * vg.Inch,
		Height: vg.Length(0.45+2.2*float64(rows)) * vg.Inch,
	}
	fig.Draw = func(c draw.Canvas) {
		var plots []*plot.Plot
		for _, pn := range panels {
			p := newPlot(pn.label, "round", "pages")
			addGrid(p, false)
			var sent, dirt plotter.XYs
			for _, r := range pn.rounds {
				if r.PagesSent > 0 {
					sent = append(sent, plotter.XY{X: float64(r.Round), Y: float64(r.PagesSent)})
				}
				if r.PagesDirtied > 0 {
					dirt = append(dirt, plotter.XY{X: float64(r.Round), Y: float64(r.PagesDirtied)})
				}
			}
			col := st[pn.label].Color
			if len(dirt) > 0 {
				l, sc, _ := plotter.NewLinePoints(dirt)
				l.Color, l.Dashes, l.Width = col, dashes[1], vg.Points(1)
				sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(2), Shape: draw.RingGlyph{}}
				p.Add(l, sc)
			}
			if len(sent) > 0 {
				l, sc, _ := plotter.NewLinePoints(sent)
				l.Color, l.Width = col, vg.Points(1)
				sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(1.8), Shape: draw.CircleGlyph{}}
				p.Add(l, sc)
			}
			setLog(&p.Y, lo, hi)
			p.X.Min, p.X.Max = 0.5, float64(maxRound)+0.5
			p.X.Tick.Marker = intTicks{}
			plots = append(plots, p)
		}
		withLegend(c, entries, func(c draw.Canvas) { alignGrid(c, plots, cols) })
	}
	return fig
}

// intTicks puts ticks on whole numbers only (rounds), at most about eight.
type intTicks struct{}

func (intTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := math.Max(1, math.Ceil((hi-lo+1)/8))
	for _, nice := range []float64{1, 2, 5, 10, 20, 50, 100} {
		if nice >= step {
			step = nice
			break
		}
	}
	var ts []plot.Tick
	start := math.Ceil(lo/step) * step
	if start < lo {
		start += step
	}
	if lo <= 1 && 1 <= hi {
		ts = append(ts, plot.Tick{Value: 1, Label: "1"})
	}
	for v := start; v <= hi; v += step {
		if v == 1 || v < 1 {
			continue
		}
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
	}
	return ts
}
