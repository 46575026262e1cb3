package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/microwiper/microwiper/algorithms"
)

func TestReadLog(t *testing.T) {
	// 130 pages: three words. Dirty 1, 64, 129; pending 1, 5, 70.
	dirty := make([]uint64, 3)
	pend := make([]uint64, 3)
	for _, p := range []int{1, 64, 129} {
		dirty[p>>6] |= 1 << (p & 63)
	}
	for _, p := range []int{1, 5, 70} {
		pend[p>>6] |= 1 << (p & 63)
	}
	toSend, dirtied := ReadLog(dirty, pend, make([]int32, 7), nil)
	assert.Equal(t, []int32{1, 5, 64, 70, 129}, toSend)
	assert.Equal(t, []int32{1, 64, 129}, dirtied)
	assert.Equal(t, []uint64{0, 0, 0}, dirty, "the log is cleared")
	toSend, dirtied = ReadLog(dirty, pend, toSend, dirtied)
	assert.Equal(t, []int32{1, 5, 64, 70, 129}, toSend, "pending pages stay pending")
	assert.Empty(t, dirtied)
}

func TestBound(t *testing.T) {
	c := Config{Link: Link{Bps: 1e9}}
	// 1 Mi pages of 4096+16 bytes take 34.49 s at 1 Gbit/s; ten times
	// that is above the 60 s floor.
	ns, rounds := c.Bound(1<<20, (4096+16)*8)
	assert.Equal(t, 10*transferNS(1<<20, (4096+16)*8, 1e9), ns)
	assert.Equal(t, DefaultMaxRounds, rounds)
	ns, _ = c.Bound(10, (4096+16)*8)
	assert.Equal(t, MinMaxNS, ns, "small memories get the floor")
	c.MaxNS, c.MaxRounds = 5, 7
	ns, rounds = c.Bound(1<<20, (4096+16)*8)
	assert.Equal(t, int64(5), ns)
	assert.Equal(t, 7, rounds)
}

func TestTakeOrder(t *testing.T) {
	pend := []uint64{0b1011} // pages 0, 1, 3 pending
	assert.NoError(t, TakeOrder("p", 2, []int32{3, 0}, pend, 64))
	assert.Equal(t, []uint64{0b0010}, pend)
	for _, order := range [][]int32{{0, 0}, {1, 1}, {2}, {-1}, {64}} {
		pend := []uint64{0b0011}
		err := TakeOrder("p", 2, order, pend, 64)
		assert.ErrorContains(t, err, "algorithm p round 2: plan lists page", "order %v", order)
	}
}

func TestCheckThrottle(t *testing.T) {
	for pct, ok := range map[int]bool{-1: false, 0: true, 99: true, 100: false} {
		err := CheckThrottle("q", 3, &algorithms.Plan{ThrottlePct: pct})
		assert.Equal(t, ok, err == nil, "throttle %d: %v", pct, err)
	}
}

func TestNextBatch(t *testing.T) {
	dirty := []uint64{1<<2 | 1<<5} // pages 2 and 5 back in the log
	order := []int32{1, 2, 3, 4, 5, 6, 7}
	batch, i, skipped := NextBatch(order, 0, 3, true, dirty, nil)
	assert.Equal(t, []int32{1, 3, 4}, batch)
	assert.Equal(t, 4, i, "index after the last page examined")
	assert.Equal(t, int64(1), skipped)
	batch, i, skipped = NextBatch(order, i, 3, true, dirty, batch)
	assert.Equal(t, []int32{6, 7}, batch)
	assert.Equal(t, 7, i)
	assert.Equal(t, int64(1), skipped)
	batch, _, skipped = NextBatch(order, 0, 10, false, dirty, batch)
	assert.Equal(t, order, batch, "no peek, no skip")
	assert.Zero(t, skipped)
}

func TestUnsend(t *testing.T) {
	pend := []uint64{0, 0}
	Unsend([]int32{3, 64, 70}, pend)
	assert.Equal(t, []uint64{1 << 3, 1<<0 | 1<<6}, pend)
}
