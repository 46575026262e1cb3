package report

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// viridisAnchors are evenly spaced samples of the viridis colour map
// (perceptually uniform, colour-blind-safe, readable in greyscale);
// colours between them are interpolated.
var viridisAnchors = []color.RGBA{
	{0x44, 0x01, 0x54, 0xFF}, {0x48, 0x28, 0x78, 0xFF}, {0x3E, 0x4A, 0x89, 0xFF},
	{0x31, 0x68, 0x8E, 0xFF}, {0x26, 0x82, 0x8E, 0xFF}, {0x1F, 0x9E, 0x89, 0xFF},
	{0x35, 0xB7, 0x79, 0xFF}, {0x6D, 0xCD, 0x59, 0xFF}, {0xB4, 0xDE, 0x2C, 0xFF},
	{0xFD, 0xE7, 0x25, 0xFF},
}

type colors []color.Color

func (c colors) Colors() []color.Color { return c }

// viridis returns n colours of the viridis map.
func viridis(n int) palette.Palette {
	out := make(colors, n)
	for i := range out {
		f := float64(i) / float64(max(n-1, 1)) * float64(len(viridisAnchors)-1)
		k := int(math.Min(f, float64(len(viridisAnchors)-2)))
		t := f - float64(k)
		a, b := viridisAnchors[k], viridisAnchors[k+1]
		mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + t*(float64(y)-float64(x)))) }
		out[i] = color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 0xFF}
	}
	return out
}

// heatImage paints the heatmap as an image with each cell a block of
// whole pixels, large enough for a 300 dpi page: a renderer that smooths
// a scaled image then blurs only the blocks' edges, not whole cells.
// Empty cells are white; others take the palette colour of log10(count).
func heatImage(tp *traceProfile, pal palette.Palette, logTop float64) image.Image {
	cols, rows := len(tp.Heat), tp.Stripes
	cx := max(1, (2000+cols-1)/cols)
	cy := max(1, (1200+rows-1)/rows)
	img := image.NewRGBA(image.Rect(0, 0, cols*cx, rows*cy))
	colors := pal.Colors()
	for c, col := range tp.Heat {
		for r, v := range col {
			clr := color.Color(color.White)
			if v > 0 {
				f := math.Log10(float64(v)) / logTop
				clr = colors[min(len(colors)-1, int(f*float64(len(colors)-1)+0.5))]
			}
			y0 := (rows - 1 - r) * cy // image rows run top down, stripes bottom up
			for y := y0; y < y0+cy; y++ {
				for x := c * cx; x < (c+1)*cx; x++ {
					img.Set(x, y, clr)
				}
			}
		}
	}
	return img
}

// barGrid is a one-column grid from 0 to top, for the colour bar.
type barGrid struct{ top float64 }

const barSteps = 256

func (g barGrid) Dims() (c, r int)   { return 1, barSteps }
func (g barGrid) Z(c, r int) float64 { return g.Y(r) }
func (g barGrid) X(c int) float64    { return 0 }
func (g barGrid) Y(r int) float64    { return (float64(r) + 0.5) / barSteps * g.top }
func (g barGrid) Min() float64       { return 0 }
func (g barGrid) Max() float64       { return g.top }

// powTicks labels a log10 axis with the counts 1, 2, 5, 10, 20, ... it
// spans, or only the powers of ten when that would be crowded.
type powTicks struct{}

func (powTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	steps := []float64{1, 2, 5}
	if max-min > 3 {
		steps = []float64{1}
	}
	for k := math.Floor(min); k <= max; k++ {
		for _, s := range steps {
			v := math.Log10(s) + k
			if v >= min-1e-9 && v <= max+1e-9 {
				ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%g", s*math.Pow(10, k))})
			}
		}
	}
	return ts
}

// heatmapFigure draws a trace's dirtying over time and stripes.
func heatmapFigure(tp *traceProfile) *Figure {
	var top uint32
	for _, col := range tp.Heat {
		for _, v := range col {
			top = max(top, v)
		}
	}
	colSec := float64(tp.ColumnWindows*tp.WindowNS) / 1e9
	fig := &Figure{
		Name: "heatmap-" + safeName(tp.Name),
		Caption: fmt.Sprintf("Dirtying of trace %s: pages dirtied per stripe (%d stripes of %d pages) and per %s column, log colour scale; white is none.",
			tp.Name, tp.Stripes, tp.StripePages, fmtSeconds(colSec)),
		Width:  6 * vg.Inch,
		Height: 3.2 * vg.Inch,
	}
	logTop := math.Log10(math.Max(float64(top), 1))
	if logTop == 0 {
		logTop = 1 // a single value everywhere: give the bar a range
	}
	fig.Draw = func(c draw.Canvas) {
		p := newPlot("", "time (s)", "stripe (low addresses at bottom)")
		if len(tp.Heat) > 0 {
			img := heatImage(tp, viridis(256), logTop)
			p.Add(plotter.NewImage(img, 0, -0.5, float64(len(tp.Heat))*colSec, float64(tp.Stripes)-0.5))
		}
		p.X.Min = 0
		p.X.Max = math.Max(float64(len(tp.Heat))*colSec, colSec)
		p.Y.Min, p.Y.Max = -0.5, float64(tp.Stripes)-0.5
		barW := vg.Points(62)
		main := c
		main.Max.X -= barW
		main.Max.Y -= vg.Points(5) // room for the top tick label
		p.Draw(main)
		da := p.DataCanvas(main)
		bar := newPlot("", "", "pages dirtied per cell")
		bh := plotter.NewHeatMap(barGrid{logTop}, viridis(256))
		bh.Min, bh.Max = 0, logTop
		bh.Rasterized = true
		bar.Add(bh)
		bar.HideX()
		bar.Y.Min, bar.Y.Max = 0, logTop
		bar.Y.Tick.Marker = powTicks{}
		bc := c
		bc.Min.X = main.Max.X + vg.Points(6)
		bc.Max.X -= vg.Points(4)
		bc.Min.Y, bc.Max.Y = da.Min.Y, da.Max.Y
		// The bar is thin: its plot is as wide as its axis plus 10 pt.
		bar.X.Min, bar.X.Max = -0.5, 0.5
		bar.Draw(bc)
	}
	return fig
}

// cdfFigure draws the CDF of stripe rewriting rates for each trace.
func cdfFigure(tps []*traceProfile) *Figure {
	traceColors := []color.Color{okBlue, okVermilion, okGreen, okOrange, okPurple, okSky, okBlack}
	var entries []legendEntry
	caption := "CDF of stripe rewriting rates (pages dirtied per second in one stripe over one epoch), over the stripe-epochs with at least one dirtying; "
	for i, tp := range tps {
		_, _, zero := tp.RateCDF()
		entries = append(entries, legendEntry{label: tp.Name, style: seriesStyle{Color: traceColors[i%len(traceColors)], Dash: dashes[i%len(dashes)]}, noGlyph: true})
		if i > 0 {
			caption += "; "
		}
		caption += fmt.Sprintf("%s: %.1f%% of stripe-epochs see no write, stripes of %d pages, epoch %s", tp.Name, 100*zero, tp.StripePages, fmtSeconds(float64(tp.WindowNS)/1e9))
	}
	fig := &Figure{Name: "ratecdf", Caption: caption + ".", Width: 4.5 * vg.Inch, Height: 3 * vg.Inch}
	fig.Draw = func(c draw.Canvas) {
		p := newPlot("", "stripe rewriting rate (pages/s)", "fraction of stripe-epochs")
		addGrid(p, true)
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, tp := range tps {
			rates, cum, _ := tp.RateCDF()
			if len(rates) == 0 {
				continue
			}
			// A step function: each rate's share is reached at that rate.
			var xy plotter.XYs
			prev := 0.0
			for j, r := range rates {
				xy = append(xy, plotter.XY{X: r, Y: prev}, plotter.XY{X: r, Y: cum[j]})
				prev = cum[j]
			}
			lo, hi = math.Min(lo, rates[0]), math.Max(hi, rates[len(rates)-1])
			l, err := plotter.NewLine(xy)
			if err != nil {
				continue
			}
			l.Color = entries[i].style.Color
			l.Dashes = entries[i].style.Dash
			l.Width = vg.Points(1.2)
			p.Add(l)
		}
		if !math.IsInf(lo, 0) {
			if hi <= lo {
				hi = lo * 10
			}
			setLog(&p.X, lo, hi)
		}
		p.Y.Min, p.Y.Max = 0, 1
		withLegend(c, entries, func(c draw.Canvas) { p.Draw(c) })
	}
	return fig
}

func fmtSeconds(s float64) string {
	switch {
	case s >= 1:
		return trimFloat(s) + " s"
	case s >= 1e-3:
		return trimFloat(s*1e3) + " ms"
	}
	return trimFloat(s*1e6) + " µs"
}

// safeName keeps a name usable as a file name.
func safeName(s string) string {
	out := []rune(s)
	for i, r := range out {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			out[i] = '_'
		}
	}
	return string(out)
}
