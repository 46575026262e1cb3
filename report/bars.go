package report

import (
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// hatch is a fill pattern drawn over a bar's colour, so that series stay
// apart in greyscale, where several of the palette's colours have nearly
// the same lightness.
type hatch int

const (
	hatchNone  hatch = iota
	hatchFwd         // ////
	hatchBack        // \\\\
	hatchCross       // xxxx
	hatchHoriz       // ----
	hatchVert        // ||||
	hatchGrid        // ++++
)

// hatchSpacing is the distance between hatch lines: a few lines across
// even the narrowest bar of a crowded figure.
const hatchSpacing = vg.Length(2.6)

// barSeries is one kind of bar in every group (a policy, a variant, or a
// role such as "best variant").
type barSeries struct {
	Label string
	Style seriesStyle
}

// barChart is grouped bars with 95% interval whiskers: group g is centred
// at x = g, and within it each series has a fixed slot, so a series sits
// at the same place in every group and a missing cell leaves a gap.
type barChart struct {
	Series []barSeries
	// Values[s][g] is series s in group g: the bar rises from Base to the
	// median, the whisker spans the interval. A cell with no values (N 0
	// or a NaN median) draws nothing.
	Values [][]Summary
	// Marked[s][g] rings the bar's top (force-stopped repetitions); may be
	// nil.
	Marked [][]bool
	// Base is where bars start: 0 on a linear axis, or a relative axis's
	// no-change line; on a log axis, its floor.
	Base float64
	// Log says the y axis is logarithmic: values at or below Base (zeros)
	// are drawn at Base, since a log axis has no zero.
	Log bool
	// Cap cuts values above it (Inf for none): one runaway cell would
	// otherwise flatten every other bar. A cut whisker ends in an arrow.
	Cap float64
	// Width is the share of a group's unit width its bars fill.
	Width float64
}

// bar is one drawn bar in data coordinates: what the chart is built from,
// and what the tests check.
type bar struct {
	Group, Series int
	// X0 and X1 are the bar's left and right edges.
	X0, X1 float64
	// Base and Top are where the bar starts and ends (Top is the median).
	Base, Top float64
	// Lo and Hi are the whisker's ends; equal when there is no interval.
	Lo, Hi float64
	// Cut says Hi (and maybe Top) was cut at the chart's Cap.
	Cut    bool
	Marked bool
}

// bars lays the chart out: one bar per (group, series) cell with a value.
func (b *barChart) bars() []bar {
	n := len(b.Series)
	if n == 0 {
		return nil
	}
	width := b.Width
	if width <= 0 {
		width = 0.8
	}
	w := width / float64(n)
	cap := b.Cap
	if cap == 0 || math.IsNaN(cap) {
		cap = math.Inf(1)
	}
	var out []bar
	for s := range b.Series {
		if s >= len(b.Values) {
			break
		}
		for g, v := range b.Values[s] {
			if v.N == 0 || math.IsNaN(v.Median) || math.IsInf(v.Median, 0) {
				continue
			}
			lo, hi := v.Lo, v.Hi
			if math.IsNaN(lo) || math.IsNaN(hi) {
				lo, hi = v.Median, v.Median
			}
			top := v.Median
			if b.Log {
				top, lo, hi = math.Max(top, b.Base), math.Max(lo, b.Base), math.Max(hi, b.Base)
			}
			cut := hi > cap
			top, lo, hi = math.Min(top, cap), math.Min(lo, cap), math.Min(hi, cap)
			x0 := float64(g) - width/2 + float64(s)*w
			out = append(out, bar{Group: g, Series: s, X0: x0, X1: x0 + w, Base: b.Base, Top: top, Lo: lo, Hi: hi, Cut: cut,
				Marked: s < len(b.Marked) && g < len(b.Marked[s]) && b.Marked[s][g]})
		}
	}
	return out
}

// groups is the number of groups: the longest row of Values.
func (b *barChart) groups() int {
	n := 0
	for _, v := range b.Values {
		n = max(n, len(v))
	}
	return n
}

var (
	barOutline = draw.LineStyle{Color: color.Gray{0x30}, Width: vg.Points(0.4)}
	whisker    = draw.LineStyle{Color: color.Black, Width: vg.Points(0.8)}
)

// Plot implements plot.Plotter.
func (b *barChart) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, br := range b.bars() {
		st := b.Series[br.Series].Style
		x0, x1 := trX(br.X0), trX(br.X1)
		y0, y1 := trY(br.Base), trY(br.Top)
		if y1 < y0 {
			y0, y1 = y1, y0
		}
		if y1-y0 > 0 {
			drawBar(c, st, x0, y0, x1, y1)
		} else {
			// A zero-height bar (a value on the base) is still a result:
			// a stroke on the base line shows it was measured.
			c.StrokeLine2(draw.LineStyle{Color: st.Color, Width: vg.Points(1.5)}, x0, y0, x1, y0)
		}
		xc := (x0 + x1) / 2
		capW := math.Min(float64(x1-x0)*0.35, 3)
		lo, hi := trY(br.Lo), trY(br.Hi)
		if hi-lo > 0.3 {
			c.StrokeLine2(whisker, xc, lo, xc, hi)
			c.StrokeLine2(whisker, xc-vg.Length(capW), lo, xc+vg.Length(capW), lo)
			if br.Cut {
				// An arrowhead: the interval goes on beyond the panel.
				a := vg.Length(math.Max(capW, 1.5))
				c.FillPolygon(color.Black, []vg.Point{{X: xc - a, Y: hi - 2*a}, {X: xc + a, Y: hi - 2*a}, {X: xc, Y: hi}})
			} else {
				c.StrokeLine2(whisker, xc-vg.Length(capW), hi, xc+vg.Length(capW), hi)
			}
		}
		if br.Marked {
			c.DrawGlyph(draw.GlyphStyle{Color: color.Black, Radius: vg.Points(3.5), Shape: draw.RingGlyph{}}, vg.Point{X: xc, Y: trY(br.Top)})
		}
	}
}

// DataRange implements plot.DataRanger: the groups, and every bar and
// whisker with the base.
func (b *barChart) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = -0.5, float64(max(b.groups(), 1))-0.5
	ymin, ymax = b.Base, b.Base
	for _, br := range b.bars() {
		ymin = math.Min(ymin, math.Min(br.Top, br.Lo))
		ymax = math.Max(ymax, math.Max(br.Top, br.Hi))
	}
	return xmin, xmax, ymin, ymax
}

// values returns every bar's and whisker's value, for setting an axis.
func (b *barChart) values() []float64 {
	var out []float64
	for _, br := range b.bars() {
		out = append(out, br.Top, br.Lo, br.Hi)
	}
	return out
}

// drawBar fills a rectangle with the series' colour and hatch and
// outlines it.
func drawBar(c draw.Canvas, st seriesStyle, x0, y0, x1, y1 vg.Length) {
	rect := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
	c.FillPolygon(st.Color, rect)
	drawHatch(c, st.Hatch, hatchColor(st.Color), x0, y0, x1, y1)
	c.StrokeLines(barOutline, append(rect, rect[0]))
}

// hatchColor is white on dark fills and near-black on light ones, so the
// pattern shows on either.
func hatchColor(fill color.Color) color.Color {
	if luminance(fill) < 0.3 {
		return color.Gray{0xF0}
	}
	return color.Gray{0x20}
}

// luminance is the relative luminance of c (sRGB, 0 black to 1 white).
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	lin := func(v uint32) float64 {
		x := float64(v) / 0xFFFF
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

// drawHatch strokes h's lines inside the rectangle, each cut to it.
func drawHatch(c draw.Canvas, h hatch, col color.Color, x0, y0, x1, y1 vg.Length) {
	for _, v := range []vg.Length{x0, y0, x1, y1} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return // a value off any axis: no lines to cut, and no end to them
		}
	}
	ls := draw.LineStyle{Color: col, Width: vg.Points(0.45)}
	d := hatchSpacing
	diag := func(sign vg.Length) {
		// Lines y = sign*x + k through the rectangle, k on a grid anchored
		// at the origin so neighbouring bars' lines continue alike.
		var kmin, kmax vg.Length
		if sign > 0 {
			kmin, kmax = y0-x1, y1-x0
		} else {
			kmin, kmax = y0+x0, y1+x1
		}
		for k := vg.Length(math.Ceil(float64(kmin/d))) * d; k <= kmax; k += d {
			var xa, xb vg.Length
			if sign > 0 {
				xa, xb = max(x0, y0-k), min(x1, y1-k)
			} else {
				xa, xb = max(x0, k-y1), min(x1, k-y0)
			}
			if xb > xa {
				c.StrokeLine2(ls, xa, sign*xa+k, xb, sign*xb+k)
			}
		}
	}
	horiz := func() {
		for y := vg.Length(math.Ceil(float64(y0/d))) * d; y <= y1; y += d {
			c.StrokeLine2(ls, x0, y, x1, y)
		}
	}
	vert := func() {
		for x := vg.Length(math.Ceil(float64(x0/d))) * d; x <= x1; x += d {
			c.StrokeLine2(ls, x, y0, x, y1)
		}
	}
	switch h {
	case hatchFwd:
		diag(1)
	case hatchBack:
		diag(-1)
	case hatchCross:
		diag(1)
		diag(-1)
	case hatchHoriz:
		horiz()
	case hatchVert:
		vert()
	case hatchGrid:
		horiz()
		vert()
	}
}

// nameGroups labels a bar panel's x axis with its groups' names, slanted
// when the widest line would not fit in roomPerGroup, and draws light
// separators between the groups. It returns whether the names slant.
func nameGroups(p *plot.Plot, names []string, roomPerGroup vg.Length) (slanted bool) {
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.X.Tick.Width = 0
	for _, n := range names {
		for _, line := range splitLines(n) {
			if p.X.Tick.Label.Width(line) > roomPerGroup*0.95 {
				slanted = true
			}
		}
	}
	if slanted {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	for gi := 1; gi < len(names); gi++ {
		p.Add(vLine{x: float64(gi) - 0.5, style: draw.LineStyle{Color: gridColor, Width: vg.Points(0.5)}})
	}
	return slanted
}

// vLine is a vertical line across the whole data area at x.
type vLine struct {
	x     float64
	style draw.LineStyle
}

func (v vLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(v.x)
	c.StrokeLine2(v.style, x, c.Min.Y, x, c.Max.Y)
}

// hLine is a horizontal line across the whole data area at y: a bar
// panel's base, or the claim's threshold.
type hLine struct {
	y     float64
	style draw.LineStyle
}

func (h hLine) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.y)
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

// tidyTicks relabels another marker's ticks without trailing zeros and
// with short exponents ("75000", not "75000.00"; "1e6", not "1e+06").
type tidyTicks struct{ plot.Ticker }

func (t tidyTicks) Ticks(min, max float64) []plot.Tick {
	ts := t.Ticker.Ticks(min, max)
	for i, tk := range ts {
		switch {
		case tk.Label == "" || tk.Label == "0":
		case math.Abs(tk.Value) < 1e-9*(max-min):
			// Rounding noise of a linear marker's steps.
			ts[i].Label = "0"
		default:
			ts[i].Label = tidyNumber(tk.Value)
		}
	}
	return ts
}

func tidyNumber(v float64) string {
	s := strconv.FormatFloat(v, 'g', 6, 64)
	return strings.NewReplacer("e+0", "e", "e+", "e", "e-0", "e-").Replace(s)
}
