package replay

import "github.com/microwiper/microwiper/internal/splitmix"

// StartTimes draws n migration start times (trace time, ns) over the
// trace, reproducibly from seed: the k-th is Mix(seed + k·γ), γ being
// SplitMix64's increment (so the draws are SplitMix64's stream for that
// seed), modulo the trace's length; start k of seed S is the same whatever
// n is. The trace's length is its last epoch's time; a trace with
// no epochs after t=0 gives all zeros. A migration's result depends on
// where in the workload it starts; n starts make a distribution of it.
func StartTimes(tr *Trace, n int, seed int64) []int64 {
	out := make([]int64, n)
	span := int64(0)
	if len(tr.EpochT) > 0 {
		span = tr.EpochT[len(tr.EpochT)-1]
	}
	if span <= 0 {
		return out
	}
	for k := range out {
		out[k] = int64(splitmix.Mix(uint64(seed)+uint64(k)*0x9E3779B97F4A7C15) % uint64(span))
	}
	return out
}
