package splitmix

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMix pins the reference outputs of SplitMix64 (Steele, Lea and
// Flood's generator seeded with 0 yields these as its first values).
func TestMix(t *testing.T) {
	const golden uint64 = 0x9E3779B97F4A7C15
	var state uint64
	for _, want := range []uint64{0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F} {
		assert.Equal(t, want, Mix(state))
		state += golden
	}
}
