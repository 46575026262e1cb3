package report

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name           string
		in             []float64
		median, lo, hi float64
		minConf        float64 // actual confidence must be at least this
		maxConf        float64 // and at most this
	}{
		{"empty", nil, math.NaN(), math.NaN(), math.NaN(), 0, 0},
		{"one value: the range is the point, no confidence", []float64{5}, 5, 5, 5, 0, 0},
		{"two values: range, 50%", []float64{4, 2}, 3, 2, 4, 0.5, 0.5},
		{"five values: range, 93.75%", []float64{5, 1, 4, 2, 3}, 3, 1, 5, 0.9375, 0.9375},
		{"six values reach 95% with the extremes", []float64{6, 1, 5, 2, 4, 3}, 3.5, 1, 6, 0.95, 0.97},
		{"constant", []float64{7, 7, 7, 7, 7, 7, 7}, 7, 7, 7, 0.95, 1},
		{"ten values: inner order statistics", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5.5, 2, 9, 0.95, 0.99},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append([]float64(nil), c.in...)
			s := Summarize(c.in)
			assert.Equal(t, in, c.in, "input must not be reordered")
			assert.Equal(t, len(c.in), s.N)
			if math.IsNaN(c.median) {
				assert.True(t, math.IsNaN(s.Median))
				return
			}
			assert.Equal(t, c.median, s.Median)
			assert.Equal(t, c.lo, s.Lo)
			assert.Equal(t, c.hi, s.Hi)
			assert.GreaterOrEqual(t, s.Confidence, c.minConf)
			assert.LessOrEqual(t, s.Confidence, c.maxConf)
			assert.LessOrEqual(t, s.Lo, s.Median)
			assert.GreaterOrEqual(t, s.Hi, s.Median)
		})
	}
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		name     string
		old, new []float64
		sig      bool
		exact    bool
		maxP     float64
	}{
		{"constants that differ are exactly different", []float64{5}, []float64{6}, true, true, 0},
		{"equal constants are exactly the same", []float64{5, 5}, []float64{5, 5, 5}, false, true, 1},
		{"separated samples of six", []float64{1, 2, 3, 4, 5, 6}, []float64{11, 12, 13, 14, 15, 16}, true, false, 0.05},
		{"interleaved samples", []float64{1, 3, 5, 7, 9, 11}, []float64{2, 4, 6, 8, 10, 12}, false, false, 1},
		{"three a side cannot reach 0.05", []float64{1, 2, 3}, []float64{11, 12, 13}, false, false, 1},
		{"empty side", nil, []float64{1}, false, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Compare(c.old, c.new)
			assert.Equal(t, c.sig, got.Significant)
			assert.Equal(t, c.exact, got.Exact)
			assert.LessOrEqual(t, got.P, c.maxP)
			if c.exact && c.sig {
				assert.Zero(t, got.P)
			}
		})
	}
}

func TestDelta(t *testing.T) {
	assert.InDelta(t, -50.0, Delta(5, 10), 1e-12)
	assert.InDelta(t, 25.0, Delta(12.5, 10), 1e-12)
	assert.True(t, math.IsNaN(Delta(5, 0)))
	assert.True(t, math.IsNaN(Delta(math.NaN(), 1)))
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtSig(0), "0"},
		{fmtSig(4), "4"},
		{fmtSig(2155.872), "2156"},
		{fmtSig(28.794), "28.8"},
		{fmtSig(2.6), "2.60"},
		{fmtSig(0.0123), "0.012"},
		{fmtSig(math.NaN()), "n/a"},
		{fmtInt(65536), "65,536"},
		{fmtInt(1234567.5), "1,234,567.5"},
		{fmtInt(-1000), "-1,000"},
		{fmtDelta(-12.345), "-12.3%"},
		{fmtDelta(0.01), "0.0%"},
		{fmtDelta(math.NaN()), "n/a"},
		{fmtInterval(Summary{N: 3, Median: 2, Lo: 1, Hi: 3}), "2 [1, 3]"},
		{fmtInterval(Summary{N: 3, Median: 2, Lo: 2, Hi: 2}), "2"},
	} {
		assert.Equal(t, c.want, c.got)
	}
}
