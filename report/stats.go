package report

import (
	"math"

	"golang.org/x/perf/benchmath"
)

// Confidence is the confidence level of every interval in the report.
const Confidence = 0.95

// Summary is the median of a sample and a confidence interval around it.
type Summary struct {
	// N is the number of values.
	N int
	// Median is the sample median (NaN when N is 0).
	Median float64
	// Lo and Hi bound the interval.
	Lo, Hi float64
	// Confidence is the interval's actual coverage. It is at least
	// Confidence when there are enough values (6 or more for 95%); with
	// fewer, no order-statistic interval reaches 95%, so the interval is
	// the sample's range and Confidence says what that range achieves
	// (1 - 2^(1-N): 0 for one value, 0.5 for two, 0.94 for five).
	Confidence float64
}

// Summarize returns the median of values and its distribution-free 95%
// confidence interval (benchmath's AssumeNothing). values is not modified.
func Summarize(values []float64) Summary {
	n := len(values)
	if n == 0 {
		return Summary{Median: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	vs := append([]float64(nil), values...)
	s := benchmath.NewSample(vs, &benchmath.DefaultThresholds) // sorts vs
	sum := benchmath.AssumeNothing.Summary(s, Confidence)
	out := Summary{N: n, Median: sum.Center, Lo: sum.Lo, Hi: sum.Hi, Confidence: sum.Confidence}
	if math.IsInf(out.Lo, 0) || math.IsInf(out.Hi, 0) {
		out.Lo, out.Hi = vs[0], vs[n-1]
		out.Confidence = 1 - math.Pow(2, float64(1-n))
	}
	return out
}

// Exact reports whether every value was the same (a deterministic engine
// repeated), in which case an interval says nothing.
func (s Summary) Exact() bool { return s.N > 0 && s.Lo == s.Hi }

// Test is the outcome of testing two samples for a difference.
type Test struct {
	// P is the p-value; 0 or 1 when Exact.
	P float64
	// Significant is P < 0.05: the samples differ.
	Significant bool
	// Exact is set when both samples are constant (a deterministic engine
	// repeated, or one run a side): no test is needed, any difference is
	// real and equal constants are the same.
	Exact bool
}

// Compare tests whether two samples differ: Mann-Whitney U, two-sided, at
// alpha 0.05 (benchmath's AssumeNothing), unless both samples are constant
// (see Test.Exact). Neither slice is modified.
func Compare(old, new []float64) Test {
	if len(old) == 0 || len(new) == 0 {
		return Test{P: 1}
	}
	if constant(old) && constant(new) {
		if old[0] == new[0] {
			return Test{P: 1, Exact: true}
		}
		return Test{P: 0, Significant: true, Exact: true}
	}
	a := benchmath.NewSample(append([]float64(nil), old...), &benchmath.DefaultThresholds)
	b := benchmath.NewSample(append([]float64(nil), new...), &benchmath.DefaultThresholds)
	c := benchmath.AssumeNothing.Compare(a, b)
	return Test{P: c.P, Significant: c.P < c.Alpha}
}

func constant(vs []float64) bool {
	for _, v := range vs[1:] {
		if v != vs[0] {
			return false
		}
	}
	return true
}
