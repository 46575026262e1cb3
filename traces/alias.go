package traces

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// aliasTable samples a fixed discrete law in O(1) per draw (Walker's alias
// method, Vose's construction). It is about ten times faster than
// rand.Zipf's rejection sampler, which made hot/cold the slowest generator.
type aliasTable struct {
	prob  []uint32 // threshold on a 32-bit coin: keep the column below it
	alias []uint32 // the column's other outcome
}

// maxAliasRanks bounds the table (8 bytes a rank); larger laws fall back to
// rand.Zipf.
const maxAliasRanks = 1 << 22

// newZipfAlias builds the table for P(r) ∝ (1+r)^-s, r in [0, n).
func newZipfAlias(n int, s float64) *aliasTable {
	w := make([]float64, n)
	var sum float64
	for r := range w {
		w[r] = math.Pow(float64(r+1), -s)
		sum += w[r]
	}
	t := &aliasTable{prob: make([]uint32, n), alias: make([]uint32, n)}
	small := make([]int, 0, n)
	large := make([]int, 0, n)
	for r := range w {
		w[r] *= float64(n) / sum
		if w[r] < 1 {
			small = append(small, r)
		} else {
			large = append(large, r)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		l := small[len(small)-1]
		small = small[:len(small)-1]
		g := large[len(large)-1]
		t.prob[l] = uint32(w[l] * (1 << 32))
		t.alias[l] = uint32(g)
		w[g] -= 1 - w[l]
		if w[g] < 1 {
			large = large[:len(large)-1]
			small = append(small, g)
		}
	}
	// Leftovers are 1 up to rounding: always keep them.
	for _, r := range append(small, large...) {
		t.prob[r] = math.MaxUint32
		t.alias[r] = uint32(r)
	}
	return t
}

// draw returns one rank.
func (t *aliasTable) draw(r *rand.Rand) uint64 {
	u := r.Uint64()
	col, _ := bits.Mul64(u, uint64(len(t.prob))) // high word: uniform column
	if uint32(u) < t.prob[col] {
		return col
	}
	return uint64(t.alias[col])
}
