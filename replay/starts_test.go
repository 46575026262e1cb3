package replay

import (
	"testing"

	"github.com/microwiper/microwiper/internal/splitmix"
	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartTimes: start k is SplitMix64 of seed + k·γ modulo the trace's
// length, the same for any n, inside the trace, and different seeds give
// different starts.
func TestStartTimes(t *testing.T) {
	tr := NewTrace("t", tracefmt.Header{PageSize: 4096, Pages: 4, EpochNS: 1e8})
	for i := int64(1); i <= 100; i++ {
		require.NoError(t, tr.AddEpoch(i*1e8, []int32{int32(i % 4)}))
	}
	const span = 100 * 1e8
	s := StartTimes(tr, 10, 7)
	require.Len(t, s, 10)
	assert.Equal(t, int64(splitmix.Mix(7)%span), s[0])
	assert.Equal(t, int64(splitmix.Mix(7+0x9E3779B97F4A7C15)%span), s[1])
	assert.Equal(t, s[:3], StartTimes(tr, 3, 7), "a prefix of a longer draw")
	distinct := map[int64]bool{}
	for _, v := range s {
		assert.GreaterOrEqual(t, v, int64(0))
		assert.Less(t, v, int64(span))
		distinct[v] = true
	}
	assert.Len(t, distinct, 10)
	assert.NotEqual(t, s, StartTimes(tr, 10, 8))
	assert.Equal(t, []int64{0, 0}, StartTimes(NewTrace("empty", tracefmt.Header{PageSize: 4096, Pages: 4, EpochNS: 1e8}), 2, 7))
}
