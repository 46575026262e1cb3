package report

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Okabe-Ito: a palette that stays distinct under the common colour-vision
// deficiencies and in greyscale together with the marker shapes below.
var (
	okOrange    = color.RGBA{0xE6, 0x9F, 0x00, 0xFF}
	okSky       = color.RGBA{0x56, 0xB4, 0xE9, 0xFF}
	okGreen     = color.RGBA{0x00, 0x9E, 0x73, 0xFF}
	okYellow    = color.RGBA{0xF0, 0xE4, 0x42, 0xFF}
	okBlue      = color.RGBA{0x00, 0x72, 0xB2, 0xFF}
	okVermilion = color.RGBA{0xD5, 0x5E, 0x00, 0xFF}
	okPurple    = color.RGBA{0xCC, 0x79, 0xA7, 0xFF}
	okBlack     = color.RGBA{0x00, 0x00, 0x00, 0xFF}
	okGrey      = color.RGBA{0x80, 0x80, 0x80, 0xFF}
)

// algorithmColors fixes each registered algorithm's colour, so that it is
// the same in every figure of every report.
var algorithmColors = map[string]color.Color{
	"xen-precopy":   okOrange,
	"xen-v2":        okSky,
	"qemu-precopy":  okGreen,
	"microwiper":    okVermilion,
	"stop-and-copy": okBlack,
	"oracle":        okPurple,
}

// algorithmHatches fix each registered algorithm's bar pattern, beside
// its colour: orange, sky blue and purple, or vermilion and green, are
// nearly the same grey.
var algorithmHatches = map[string]hatch{
	"xen-precopy":   hatchNone,
	"xen-v2":        hatchBack,
	"qemu-precopy":  hatchVert,
	"microwiper":    hatchFwd,
	"stop-and-copy": hatchNone,
	"oracle":        hatchHoriz,
}

// Roles of a bar figure that are not one label: the best Microwiper
// variant of each group. Blue with a cross hatch is no algorithm's.
var bestStyle = seriesStyle{Color: okBlue, Glyph: draw.SquareGlyph{}, Dash: dashes[2], Hatch: hatchCross}

// spareHatches go to variants and unknown algorithms, with spareColors.
var spareHatches = []hatch{hatchGrid, hatchCross, hatchBack, hatchFwd}

// spareColors go to variants and unknown algorithms, in label order.
var spareColors = []color.Color{okBlue, okGrey, color.RGBA{0xB8, 0xA0, 0x00, 0xFF}, color.RGBA{0x88, 0x44, 0x00, 0xFF}}

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
	draw.RingGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

var dashes = [][]vg.Length{nil, {vg.Points(4), vg.Points(2)}, {vg.Points(1), vg.Points(2)}, {vg.Points(6), vg.Points(2), vg.Points(1), vg.Points(2)}}

// seriesStyle is how one label looks in every figure.
type seriesStyle struct {
	Color color.Color
	Glyph draw.GlyphDrawer
	Dash  []vg.Length
	// Hatch is the pattern over a bar's fill.
	Hatch hatch
}

// styles assigns a style to every label: registered algorithms get their
// fixed colour (for an algorithm run with several parameter sets, the one
// with the defaults does), other variants get the spare colours and a
// dashed line,
// and shapes differ so that no two labels look alike in greyscale.
func styles(g *grouping) map[string]seriesStyle {
	out := map[string]seriesStyle{}
	spare := 0
	taken := map[string]bool{}
	for i, l := range g.Labels {
		alg := g.LabelAlgorithm[l]
		s := seriesStyle{Glyph: glyphs[i%len(glyphs)]}
		if c, ok := algorithmColors[alg]; ok && (l == alg || g.Default[l] && !taken[alg]) {
			taken[alg] = true
			s.Color = c
			s.Hatch = algorithmHatches[alg]
		} else {
			s.Color = spareColors[spare%len(spareColors)]
			s.Hatch = spareHatches[spare%len(spareHatches)]
			s.Dash = dashes[1+spare%(len(dashes)-1)]
			spare++
		}
		out[l] = s
	}
	return out
}

// Font sizes of a figure printed at its own size in a two-column paper.
const (
	titleSize = 10
	labelSize = 9
	tickSize  = 8
)

// newPlot returns a plot with the report's fonts and a light grid.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(plot.DefaultFont, titleSize)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(plot.DefaultFont, labelSize)
		a.Tick.Label.Font = font.From(plot.DefaultFont, tickSize)
		a.Padding = vg.Points(2)
	}
	p.X.Label.Padding = vg.Points(3)
	p.Y.Label.Padding = vg.Points(3)
	p.Legend.TextStyle.Font = font.From(plot.DefaultFont, tickSize)
	return p
}

var gridColor = color.Gray{0xDD}

// addGrid draws light horizontal grid lines on p, and vertical ones too when
// the x axis is continuous (not for bar groups or round numbers).
func addGrid(p *plot.Plot, vertical bool) {
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	if vertical {
		grid.Vertical.Color = gridColor
	}
	grid.Horizontal.Color = gridColor
	p.Add(grid)
}

// panelGrid lays n panels out at most three to a row.
func panelGrid(n int) (cols, rows int) {
	cols = min(3, n)
	return cols, (n + cols - 1) / cols
}
