package report

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/microwiper/microwiper/tracefmt/profile"
)

// DefaultStripes is how many stripes a trace's memory is cut into for the
// heatmap and the rate CDF: Microwiper's default stripe is pages/1024.
const DefaultStripes = 1024

// maxHeatColumns bounds the heatmap's time resolution: adjacent columns
// are merged pairwise whenever there would be more, so any trace length
// profiles in bounded memory.
const maxHeatColumns = 400

// traceProfile is what the report draws of a trace: dirtying per stripe
// over time, and how often each rewriting rate occurs.
type traceProfile struct {
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

// profileTrace reads a trace once, in bounded memory, and profiles it with
// the given number of stripes (DefaultStripes when 0), per epoch.
func profileTrace(path string, stripes int) (*traceProfile, error) {
	if stripes <= 0 {
		stripes = DefaultStripes
	}
	p, err := profile.Measure(path, profile.Options{Stripes: stripes, MaxColumns: maxHeatColumns})
	if err != nil {
		return nil, err
	}
	base := filepath.Base(strings.TrimSuffix(path, string(filepath.Separator)))
	return &traceProfile{
		Name:          strings.TrimSuffix(base, filepath.Ext(base)),
		Header:        p.Header,
		Stripes:       p.Stripes,
		StripePages:   p.StripePages,
		WindowNS:      p.WindowNS,
		Windows:       p.Windows,
		ColumnWindows: p.ColumnWindows,
		Heat:          p.Heat,
		CountHist:     p.CountHist,
		Dirtyings:     p.Dirtyings,
	}, nil
}

// RateCDF returns the distinct rewriting rates (pages/s per stripe per
// window) of the cells with at least one dirtying, ascending, and the
// fraction of those cells at or below each; zeroShare is the fraction of
// all cells with no dirtying.
func (tp *traceProfile) RateCDF() (rates, cum []float64, zeroShare float64) {
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
