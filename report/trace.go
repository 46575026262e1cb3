package report

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/microwiper/microwiper/tracefmt"
)

// DefaultStripes is how many stripes a trace's memory is cut into for the
// heatmap and the rate CDF: Microwiper's default stripe is pages/1024.
const DefaultStripes = 1024

// maxHeatColumns bounds the heatmap's time resolution: adjacent columns
// are merged pairwise whenever there would be more, so any trace length
// profiles in bounded memory.
const maxHeatColumns = 400

// TraceProfile is what the report draws of a trace: dirtying per stripe
// over time, and how often each rewriting rate occurs.
type TraceProfile struct {
	// Name is the trace file's base name without extension.
	Name   string
	Header tracefmt.Header
	// Stripes is the number of stripes; StripePages the pages in each (the
	// last may be shorter).
	Stripes     int
	StripePages int64
	// WindowNS is the rate window: the trace's epoch.
	WindowNS int64
	// Windows is the number of windows from the start to the last write.
	Windows int64
	// ColumnWindows is how many windows one heatmap column covers.
	ColumnWindows int64
	// Heat[c][s] counts page dirtyings of stripe s in column c.
	Heat [][]uint32
	// CountHist maps k > 0 to the number of (stripe, window) cells in
	// which k pages of the stripe were dirtied.
	CountHist map[int64]int64
	// Dirtyings is the number of page dirtyings (rows outside the initial
	// image).
	Dirtyings int64
}

// ProfileTrace reads a trace once, in bounded memory, and profiles it with
// the given number of stripes (DefaultStripes when 0).
func ProfileTrace(path string, stripes int) (*TraceProfile, error) {
	r, err := tracefmt.Open(path)
	if err != nil {
		return nil, err // tracefmt names the file
	}
	defer r.Close()
	h := r.Header()
	if stripes <= 0 {
		stripes = DefaultStripes
	}
	if int64(stripes) > h.Pages {
		stripes = int(h.Pages)
	}
	sp := (h.Pages + int64(stripes) - 1) / int64(stripes)
	stripes = int((h.Pages + sp - 1) / sp)
	base := filepath.Base(strings.TrimSuffix(path, string(filepath.Separator)))
	tp := &TraceProfile{
		Name:          strings.TrimSuffix(base, filepath.Ext(base)),
		Header:        h,
		Stripes:       stripes,
		StripePages:   sp,
		WindowNS:      h.EpochNS,
		ColumnWindows: 1,
		CountHist:     map[int64]int64{},
	}
	cur := make([]uint32, stripes) // the open window's counts
	curWindow := int64(-1)
	flush := func() {
		if curWindow < 0 {
			return
		}
		col := curWindow / tp.ColumnWindows
		for col >= 2*maxHeatColumns {
			tp.mergeColumns()
			col = curWindow / tp.ColumnWindows
		}
		for int64(len(tp.Heat)) <= col {
			tp.Heat = append(tp.Heat, make([]uint32, stripes))
		}
		for s, n := range cur {
			if n > 0 {
				tp.Heat[col][s] += n
				tp.CountHist[int64(n)]++
				cur[s] = 0
			}
		}
	}
	for r.Scan() {
		e := r.Epoch()
		if e.Initial {
			continue
		}
		w := int64(0)
		if e.TNS > 0 {
			w = (e.TNS - 1) / h.EpochNS
		}
		if w != curWindow {
			flush()
			curWindow = w
		}
		for _, p := range e.Pages {
			cur[p/sp]++
		}
		tp.Dirtyings += int64(len(e.Pages))
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("profile trace: %w", err)
	}
	flush()
	tp.Windows = curWindow + 1
	for int64(len(tp.Heat)) > maxHeatColumns {
		tp.mergeColumns()
	}
	return tp, nil
}

// mergeColumns halves the heatmap's time resolution.
func (tp *TraceProfile) mergeColumns() {
	n := (len(tp.Heat) + 1) / 2
	out := make([][]uint32, n)
	for i := range out {
		out[i] = tp.Heat[2*i]
		if 2*i+1 < len(tp.Heat) {
			for s, v := range tp.Heat[2*i+1] {
				out[i][s] += v
			}
		}
	}
	tp.Heat = out
	tp.ColumnWindows *= 2
}

// RateCDF returns the distinct rewriting rates (pages/s per stripe per
// window) of the cells with at least one dirtying, ascending, and the
// fraction of those cells at or below each; zeroShare is the fraction of
// all cells with no dirtying.
func (tp *TraceProfile) RateCDF() (rates, cum []float64, zeroShare float64) {
	ks := make([]int64, 0, len(tp.CountHist))
	var nonzero int64
	for k, n := range tp.CountHist {
		ks = append(ks, k)
		nonzero += n
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	sec := float64(tp.WindowNS) / 1e9
	var acc int64
	for _, k := range ks {
		acc += tp.CountHist[k]
		rates = append(rates, float64(k)/sec)
		cum = append(cum, float64(acc)/float64(nonzero))
	}
	if cells := tp.Windows * int64(tp.Stripes); cells > 0 {
		zeroShare = 1 - float64(nonzero)/float64(cells)
	}
	return rates, cum, zeroShare
}
