package report

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/microwiper/microwiper/internal/atomicfile"
)

// pngDPI is the resolution of every PNG figure.
const pngDPI = 300

// Figure is one figure of the report, drawn the same way into every
// format.
type Figure struct {
	// Name is the file name without extension ("downtime").
	Name string
	// Caption is the sentence under the figure in the report.
	Caption string
	// Width and Height are the printed size.
	Width, Height vg.Length
	// Draw paints the figure onto a canvas of that size.
	Draw func(c draw.Canvas)
}

// formats are the file types every figure is written in.
var formats = []string{"svg", "png", "pdf"}

// Save writes dir/Name.svg, .png and .pdf.
func (f *Figure) Save(dir string) error {
	for _, ext := range formats {
		b, err := f.Render(ext)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, f.Name+"."+ext)
		if err := atomicfile.WriteFile(path, b); err != nil {
			return fmt.Errorf("write figure: %w", err)
		}
	}
	return nil
}

// Render draws the figure in one format (svg, png or pdf).
func (f *Figure) Render(format string) (out []byte, err error) {
	var buf bytes.Buffer
	err = guard(func() error {
		switch format {
		case "svg":
			cv := vgsvg.New(f.Width, f.Height)
			f.Draw(draw.New(cv))
			_, err := cv.WriteTo(&buf)
			return err
		case "png":
			cv := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(pngDPI))
			f.Draw(draw.New(cv))
			_, err := vgimg.PngCanvas{Canvas: cv}.WriteTo(&buf)
			return err
		case "pdf":
			cv := vgpdf.New(f.Width, f.Height)
			f.Draw(draw.New(cv))
			_, err := cv.WriteTo(&buf)
			return err
		}
		return fmt.Errorf("unknown figure format %q (want svg, png or pdf)", format)
	})
	if err != nil {
		return nil, fmt.Errorf("draw figure %s.%s: %w", f.Name, format, err)
	}
	return buf.Bytes(), nil
}

// inlineSVG returns the figure's SVG without the XML prologue, for
// embedding in HTML.
func inlineSVG(svg []byte) string {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return s
}

// legendEntry is one item of a legend drawn above a figure.
type legendEntry struct {
	label string
	style seriesStyle
	// line draws a line sample through the marker.
	line bool
	// noGlyph leaves the marker out (lines only).
	noGlyph bool
	// bar draws a filled, hatched swatch instead of a marker.
	bar bool
}

const (
	thumbWidth = vg.Length(16)
	legendGap  = vg.Length(3)
	entryGap   = vg.Length(10)
)

var legendFont = text.Style{Font: font.From(plot.DefaultFont, tickSize), Handler: plot.DefaultTextHandler}

// legendLayout wraps entries into rows that fit width and returns each
// row's entries and the total height.
func legendLayout(entries []legendEntry, width vg.Length) ([][]legendEntry, vg.Length) {
	var rows [][]legendEntry
	var row []legendEntry
	x := vg.Length(0)
	for _, e := range entries {
		w := thumbWidth + legendGap + legendFont.Width(e.label)
		if len(row) > 0 && x+w > width {
			rows = append(rows, row)
			row, x = nil, 0
		}
		row = append(row, e)
		x += w + entryGap
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	rowH := legendFont.Height("Mg") + vg.Points(3)
	return rows, vg.Length(len(rows))*rowH + vg.Points(4)
}

// withLegend draws a legend in rows across the top of c, centred, and the
// body below it: a legend outside the data area never hides data.
func withLegend(c draw.Canvas, entries []legendEntry, body func(draw.Canvas)) {
	width := c.Max.X - c.Min.X - vg.Points(8)
	rows, h := legendLayout(entries, width)
	rowH := legendFont.Height("Mg") + vg.Points(3)
	y := c.Max.Y - vg.Points(2) - rowH/2
	for _, row := range rows {
		total := vg.Length(0)
		for i, e := range row {
			total += thumbWidth + legendGap + legendFont.Width(e.label)
			if i > 0 {
				total += entryGap
			}
		}
		x := c.Min.X + (c.Max.X-c.Min.X-total)/2
		for _, e := range row {
			drawThumb(&c, e, x, y)
			x += thumbWidth + legendGap
			sty := legendFont
			sty.YAlign = draw.YCenter
			c.FillText(sty, vg.Point{X: x, Y: y}, e.label)
			x += legendFont.Width(e.label) + entryGap
		}
		y -= rowH
	}
	bodyC := c
	// A little air between the legend and the panels' titles.
	bodyC.Max.Y -= h + vg.Points(3)
	body(bodyC)
}

func drawThumb(c *draw.Canvas, e legendEntry, x, y vg.Length) {
	if e.bar {
		h := vg.Points(7)
		drawBar(*c, e.style, x+1, y-h/2, x+thumbWidth-1, y+h/2)
		return
	}
	if e.line || e.noGlyph {
		c.StrokeLine2(draw.LineStyle{Color: e.style.Color, Width: vg.Points(1.2), Dashes: e.style.Dash}, x, y, x+thumbWidth, y)
	}
	if !e.noGlyph {
		c.DrawGlyphNoClip(draw.GlyphStyle{Color: e.style.Color, Radius: vg.Points(2.5), Shape: e.style.Glyph}, vg.Point{X: x + thumbWidth/2, Y: y})
	}
}

// alignGrid draws plots in a grid of cols columns with aligned axes. Each
// plot's Title is drawn in a band above its tile rather than by the plot,
// so that titles line up even when the axes needed different room.
func alignGrid(c draw.Canvas, plots []*plot.Plot, cols int) {
	if len(plots) == 0 {
		return
	}
	rows := (len(plots) + cols - 1) / cols
	if len(plots) < cols {
		cols = len(plots)
	}
	grid := make([][]*plot.Plot, rows)
	titles := make([][]string, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
		titles[r] = make([]string, cols)
		for k := range cols {
			if i := r*cols + k; i < len(plots) {
				grid[r][k] = plots[i]
				titles[r][k] = plots[i].Title.Text
				plots[i].Title.Text = ""
			}
		}
	}
	titleSty := text.Style{Font: font.From(plot.DefaultFont, titleSize), Handler: plot.DefaultTextHandler, XAlign: draw.XCenter, YAlign: draw.YTop}
	band := titleSty.Height("Mg") + vg.Points(3)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(8), PadY: vg.Points(4) + band, PadTop: band, PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(8)}
	cs := plot.Align(grid, t, c)
	for r := range grid {
		for k := range grid[r] {
			p := grid[r][k]
			if p == nil {
				continue
			}
			p.Draw(cs[r][k])
			// A fixed distance above the data area: panels of a row share
			// it, so their titles line up.
			da := p.DataCanvas(cs[r][k])
			c.FillText(titleSty, vg.Point{X: (da.Min.X + da.Max.X) / 2, Y: da.Max.Y + band + vg.Points(4)}, titles[r][k])
		}
	}
}

// guard turns a panic inside a library (plotting, or Parquet on a corrupt
// file) into an error.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt file: %v", p)
		}
	}()
	return f()
}
