package report

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// The report is built once as a list of blocks and rendered twice, to
// Markdown and to HTML, so the two can never say different things.

type block interface{}

type heading struct {
	level int
	text  string
}

type paragraph struct{ text string }

type bullets struct{ items []string }

type table struct {
	header []string
	// right marks right-aligned (numeric) columns.
	right []bool
	rows  [][]string
}

type figureBlock struct {
	fig *Figure
	svg []byte
}

type document struct{ blocks []block }

func (d *document) add(b block)               { d.blocks = append(d.blocks, b) }
func (d *document) h(level int, text string)  { d.add(heading{level, text}) }
func (d *document) p(format string, a ...any) { d.add(paragraph{fmt.Sprintf(format, a...)}) }

func (d *document) markdown(w io.Writer) error {
	var b strings.Builder
	for i, bl := range d.blocks {
		if i > 0 {
			b.WriteString("\n")
		}
		switch x := bl.(type) {
		case heading:
			fmt.Fprintf(&b, "%s %s\n", strings.Repeat("#", x.level), x.text)
		case paragraph:
			fmt.Fprintf(&b, "%s\n", x.text)
		case bullets:
			for _, it := range x.items {
				fmt.Fprintf(&b, "- %s\n", it)
			}
		case table:
			row := func(cells []string) {
				b.WriteString("|")
				for _, c := range cells {
					fmt.Fprintf(&b, " %s |", strings.ReplaceAll(c, "|", `\|`))
				}
				b.WriteString("\n")
			}
			row(x.header)
			b.WriteString("|")
			for i := range x.header {
				if x.right[i] {
					b.WriteString("---:|")
				} else {
					b.WriteString("---|")
				}
			}
			b.WriteString("\n")
			for _, r := range x.rows {
				row(r)
			}
		case figureBlock:
			f := x.fig
			fmt.Fprintf(&b, "![%s](%s.svg)\n\n*%s* ([SVG](%s.svg), [PNG](%s.png), [PDF](%s.pdf))\n",
				f.Name, f.Name, f.Caption, f.Name, f.Name, f.Name)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

const htmlStyle = `body{font-family:Georgia,"Times New Roman",serif;max-width:72em;margin:2em auto;padding:0 1em;color:#111;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{padding:0.2em 0.6em;border-bottom:1px solid #ccc}
th{border-bottom:2px solid #333;text-align:left}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.5em 0}
figure svg{max-width:100%;height:auto}
figcaption{font-size:0.9em;color:#333}`

func (d *document) html(w io.Writer, title string) error {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>%s</title>\n<style>\n%s\n</style>\n</head>\n<body>\n", esc(title), htmlStyle)
	for _, bl := range d.blocks {
		switch x := bl.(type) {
		case heading:
			fmt.Fprintf(&b, "<h%d>%s</h%d>\n", x.level, esc(x.text), x.level)
		case paragraph:
			fmt.Fprintf(&b, "<p>%s</p>\n", esc(x.text))
		case bullets:
			b.WriteString("<ul>\n")
			for _, it := range x.items {
				fmt.Fprintf(&b, "<li>%s</li>\n", esc(it))
			}
			b.WriteString("</ul>\n")
		case table:
			b.WriteString("<table>\n<thead><tr>")
			for i, h := range x.header {
				fmt.Fprintf(&b, "<th%s>%s</th>", cls(x.right[i]), esc(h))
			}
			b.WriteString("</tr></thead>\n<tbody>\n")
			for _, r := range x.rows {
				b.WriteString("<tr>")
				for i, c := range r {
					fmt.Fprintf(&b, "<td%s>%s</td>", cls(x.right[i]), esc(c))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</tbody>\n</table>\n")
		case figureBlock:
			f := x.fig
			fmt.Fprintf(&b, "<figure id=\"%s\">\n%s\n<figcaption>%s (<a href=\"%s.svg\">SVG</a>, <a href=\"%s.png\">PNG</a>, <a href=\"%s.pdf\">PDF</a>)</figcaption>\n</figure>\n",
				esc(f.Name), inlineSVG(x.svg), esc(f.Caption), esc(f.Name), esc(f.Name), esc(f.Name))
		}
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func cls(right bool) string {
	if right {
		return ` class="r"`
	}
	return ""
}
