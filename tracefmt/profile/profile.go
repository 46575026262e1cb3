// Package profile measures a trace in one bounded-memory pass: its size,
// its dirtying rate and writable working set per time window, and the
// dirtying of memory stripes over time. 'microwiper trace info' prints it
// and the report draws it (heatmap, rate CDF); both take it from Measure.
package profile

import (
	"fmt"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// MaxWindows bounds the per-window tables (16 bytes a window), so that a
// trace with absurd times cannot exhaust memory.
const MaxWindows = 10_000_000

// MaxWorkingSetPages bounds the per-page table behind the working set (5
// bytes a page); larger traces get no working-set figures.
const MaxWorkingSetPages = 1 << 30

// Options choose what Measure computes.
type Options struct {
	// WindowNS is the window of the rate and working-set tables; 0 means
	// the trace's epoch.
	WindowNS int64
	// WorkingSet counts distinct pages per window and overall.
	WorkingSet bool
	// Stripes > 0 cuts memory into that many stripes (fewer when memory
	// has fewer pages) and counts dirtyings per stripe and window.
	Stripes int
	// MaxColumns bounds the heatmap's columns: adjacent columns merge
	// pairwise whenever there would be more. 0 means 400.
	MaxColumns int
	// Visit, if set, is called with the header once the trace is open; the
	// function it returns (if not nil) sees every epoch of the same pass,
	// the initial image included, for measures of the caller's own.
	Visit func(tracefmt.Header) func(tracefmt.Epoch)
}

// Profile is what Measure learns.
type Profile struct {
	Header tracefmt.Header
	// Finished is tracefmt.Reader.Finished.
	Finished bool
	// Rows counts every row; Initial the initial-image rows among them.
	Rows, Initial int64
	// Epochs counts epochs with writes; LastTNS is the last one's time.
	Epochs, LastTNS int64
	// Writes sums the writes column outside the initial image.
	Writes int64
	// Dirtyings counts page dirtyings (rows outside the initial image).
	Dirtyings int64
	// HasZero says the trace has the zero column (its writes were checked
	// for content); ZeroWrites counts the dirtyings that left a page all
	// zeros.
	HasZero    bool
	ZeroWrites int64
	// WindowNS is the window of the tables below.
	WindowNS int64
	// Windows is the number of windows from the start to the last write.
	Windows int64
	// Rate[w] counts page dirtyings in window w.
	Rate []int64
	// WorkingSet[w] counts distinct pages written in window w, and
	// EverWritten distinct pages written at all; nil and -1 when not asked
	// for or memory exceeds MaxWorkingSetPages.
	WorkingSet  []int64
	EverWritten int64
	// Stripes is the number of stripes; StripePages the pages in each (the
	// last may be shorter). Zero when not asked for.
	Stripes     int
	StripePages int64
	// ColumnWindows is how many windows one Heat column covers.
	ColumnWindows int64
	// Heat[c][s] counts page dirtyings of stripe s in column c.
	Heat [][]uint32
	// CountHist maps k > 0 to the number of (stripe, window) cells in
	// which k pages of the stripe were dirtied.
	CountHist map[int64]int64
}

// Measure reads the trace at path once and profiles it.
func Measure(path string, opt Options) (*Profile, error) {
	r, err := tracefmt.Open(path)
	if err != nil {
		return nil, err // tracefmt names the file
	}
	defer r.Close()
	h := r.Header()
	p := &Profile{Header: h, Finished: r.Finished(), Rows: r.Rows(), HasZero: r.HasZero(), WindowNS: opt.WindowNS, EverWritten: -1, ColumnWindows: 1}
	if p.WindowNS <= 0 {
		p.WindowNS = h.EpochNS
	}
	maxCols := int64(opt.MaxColumns)
	if maxCols <= 0 {
		maxCols = 400
	}
	var seen []int32 // per page: 1 + the last window it was written in
	var ever []bool
	if opt.WorkingSet && h.Pages <= MaxWorkingSetPages {
		seen = make([]int32, h.Pages)
		ever = make([]bool, h.Pages)
		p.EverWritten = 0
	}
	var cur []uint32 // the open window's counts per stripe
	if opt.Stripes > 0 {
		stripes := min(int64(opt.Stripes), h.Pages)
		p.StripePages = (h.Pages + stripes - 1) / stripes
		p.Stripes = int((h.Pages + p.StripePages - 1) / p.StripePages)
		p.CountHist = map[int64]int64{}
		cur = make([]uint32, p.Stripes)
	}
	var visit func(tracefmt.Epoch)
	if opt.Visit != nil {
		visit = opt.Visit(h)
	}
	curWindow := int64(-1)
	flush := func() {
		if curWindow < 0 || cur == nil {
			return
		}
		col := curWindow / p.ColumnWindows
		for col >= 2*maxCols {
			p.mergeColumns()
			col = curWindow / p.ColumnWindows
		}
		for int64(len(p.Heat)) <= col {
			p.Heat = append(p.Heat, make([]uint32, p.Stripes))
		}
		for s, n := range cur {
			if n > 0 {
				p.Heat[col][s] += n
				p.CountHist[int64(n)]++
				cur[s] = 0
			}
		}
	}
	for r.Scan() {
		e := r.Epoch()
		if visit != nil {
			visit(e)
		}
		if e.Initial {
			p.Initial += int64(len(e.Pages))
			continue
		}
		p.Epochs++
		p.LastTNS = e.TNS
		p.Dirtyings += int64(len(e.Pages))
		// An epoch covers (t-E, t]: its writes belong to the window holding t-1.
		w := (max(e.TNS, 1) - 1) / p.WindowNS
		if w >= MaxWindows {
			return nil, fmt.Errorf("profile trace %s: epoch at t_ns %d is window %d of %v: more than %d windows; use a longer window",
				path, e.TNS, w, time.Duration(p.WindowNS), MaxWindows)
		}
		if w != curWindow {
			flush()
			curWindow = w
		}
		for int64(len(p.Rate)) <= w {
			p.Rate = append(p.Rate, 0)
			if seen != nil {
				p.WorkingSet = append(p.WorkingSet, 0)
			}
		}
		p.Rate[w] += int64(len(e.Pages))
		for _, z := range e.Zero {
			if z {
				p.ZeroWrites++
			}
		}
		for i, pg := range e.Pages {
			p.Writes += int64(e.Writes[i])
			if cur != nil {
				cur[pg/p.StripePages]++
			}
			if seen == nil {
				continue
			}
			if seen[pg] != int32(w+1) {
				seen[pg] = int32(w + 1)
				p.WorkingSet[w]++
			}
			if !ever[pg] {
				ever[pg] = true
				p.EverWritten++
			}
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("profile trace %s: %w (run 'microwiper trace validate %s')", path, err, path)
	}
	flush()
	p.Windows = curWindow + 1
	for int64(len(p.Heat)) > maxCols {
		p.mergeColumns()
	}
	return p, nil
}

// mergeColumns halves the heatmap's time resolution.
func (p *Profile) mergeColumns() {
	n := (len(p.Heat) + 1) / 2
	out := make([][]uint32, n)
	for i := range out {
		out[i] = p.Heat[2*i]
		if 2*i+1 < len(p.Heat) {
			for s, v := range p.Heat[2*i+1] {
				out[i][s] += v
			}
		}
	}
	p.Heat = out
	p.ColumnWindows *= 2
}
