package algorithms

import (
	"time"
)

// OracleParams set the grid of switch-over times the oracle evaluates.
type OracleParams struct {
	// Step is the spacing of switch-over times; 0 means the trace's epoch
	// (its time resolution), widened so that at most 20000 points are
	// evaluated.
	Step time.Duration `param:"step" doc:"switch-over time grid step; 0 = trace epoch (at most 20000 points)"`
	// Horizon is the latest switch-over time; 0 means three times the time
	// to send memory once (Xen's 3x traffic cap expressed as time).
	Horizon time.Duration `param:"horizon" doc:"latest switch-over time; 0 = 3 x memory transfer time"`
}

// Oracle is a lower bound, not an algorithm: it knows the future trace.
// For a switch-over time T each page has a release time, its last write at
// or before T (0 if none), and needs one send that starts at or after it and
// ends by T to be clean at T. Sending released pages in release order as
// fast as the link allows maximises the pages clean at T (unit jobs with
// release times and a common deadline on one machine); the rest form the
// smallest possible final round, so its transfer time plus RTT plus resume
// overhead bounds from below the downtime of any policy that switches at
// T. The oracle reports the minimum over T and the whole curve. Each page
// is sent exactly once.
type Oracle struct{ P OracleParams }

// NewOracle returns the bound with default parameters.
func NewOracle() *Oracle { return &Oracle{} }

func (o *Oracle) Name() string     { return "oracle" }
func (o *Oracle) ParamStruct() any { return &o.P }
func (o *Oracle) IsBound()         {}

// Check reports the first bad field.
func (o *Oracle) Check() error {
	return firstErr(
		durationIn("step", o.P.Step, 0, MaxDurationParam),
		durationIn("horizon", o.P.Horizon, 0, 1000*time.Hour))
}

// Unclean returns how many pages cannot be clean at switch-over time T.
// rel lists, newest first, the distinct release times after 0 of the n
// pages, counts how many pages each has; slots(dt) is how many page sends
// fit in dt ns. The result is max(0, max over s of N(s) - slots(T-s)), where
// N(s) counts the pages released at or after s (N(0) = n): pages released
// at s can only be sent in [s, T]. The greedy release-order schedule meets
// this bound (a Hall-type argument for unit jobs with a common deadline), so
// it is exact. Callers may cut rel where slots(T-s) >= n: no earlier s can
// raise the maximum.
func Unclean(rel, counts []int64, n, T int64, slots func(dt int64) int64) int64 {
	worst := n - slots(T)
	var N int64
	for i, s := range rel {
		N += counts[i]
		worst = max(worst, N-slots(T-s))
	}
	return max(worst, 0)
}
