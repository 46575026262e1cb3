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
	l := &Log{n: 130, dirty: dirty, pend: pend, toSend: make([]int32, 7)}
	l.read()
	assert.Equal(t, []int32{1, 5, 64, 70, 129}, l.toSend)
	assert.Equal(t, []int32{1, 64, 129}, l.dirtied)
	assert.Equal(t, []uint64{0, 0, 0}, dirty, "the log is cleared")
	l.read()
	assert.Equal(t, []int32{1, 5, 64, 70, 129}, l.toSend, "pending pages stay pending")
	assert.Empty(t, l.dirtied)
}

func TestBound(t *testing.T) {
	c := Config{Link: Link{Bps: 1e9}}
	// 1 Mi pages of 4096+16 bytes take 34.49 s at 1 Gbit/s; ten times
	// that is above the 60 s floor.
	ns, rounds := c.bound(1<<20, (4096+16)*8, 0)
	assert.Equal(t, 10*transferNS(1<<20, (4096+16)*8, 1e9), ns)
	assert.Equal(t, DefaultMaxRounds, rounds)
	ns, _ = c.bound(10, (4096+16)*8, 0)
	assert.Equal(t, MinMaxNS, ns, "small memories get the floor")
	// A policy cap (QEMU's max-bandwidth) below the link sets the pace:
	// 1 Mi pages at 20 MB/s take 215.7 s, so the bound is 2157 s, not the
	// link's 344.9 s.
	ns, _ = c.bound(1<<20, (4096+16)*8, 160e6)
	assert.Equal(t, 10*transferNS(1<<20, (4096+16)*8, 160e6), ns)
	assert.Greater(t, ns, int64(2000e9))
	ns, _ = c.bound(1<<20, (4096+16)*8, 4e9)
	assert.Equal(t, 10*transferNS(1<<20, (4096+16)*8, 1e9), ns, "a cap above the link changes nothing")
	c.MaxNS, c.MaxRounds = 5, 7
	ns, rounds = c.bound(1<<20, (4096+16)*8, 0)
	assert.Equal(t, int64(5), ns)
	assert.Equal(t, 7, rounds)
}

func TestTakeOrder(t *testing.T) {
	pend := []uint64{0b1011} // pages 0, 1, 3 pending
	l := &Log{n: 64, pend: pend}
	assert.NoError(t, l.take("p", 2, []int32{3, 0}))
	assert.Equal(t, []uint64{0b0010}, pend)
	for _, order := range [][]int32{{0, 0}, {1, 1}, {2}, {-1}, {64}} {
		l := &Log{n: 64, pend: []uint64{0b0011}}
		err := l.take("p", 2, order)
		assert.ErrorContains(t, err, "algorithm p round 2: plan lists page", "order %v", order)
	}
}

func TestCheckThrottle(t *testing.T) {
	for pct, ok := range map[int]bool{-1: false, 0: true, 99: true, 100: false} {
		err := checkThrottle("q", 3, &algorithms.Plan{ThrottlePct: pct})
		assert.Equal(t, ok, err == nil, "throttle %d: %v", pct, err)
	}
}

func TestNextBatch(t *testing.T) {
	dirty := []uint64{1<<2 | 1<<5} // pages 2 and 5 back in the log
	order := []int32{1, 2, 3, 4, 5, 6, 7}
	l := &Log{n: 64, dirty: dirty}
	batch, _, i, skipped := l.nextBatch(order, 0, 3, true, nil, nil)
	assert.Equal(t, []int32{1, 3, 4}, batch)
	assert.Equal(t, 4, i, "index after the last page examined")
	assert.Equal(t, int64(1), skipped)
	batch, _, i, skipped = l.nextBatch(order, i, 3, true, batch, nil)
	assert.Equal(t, []int32{6, 7}, batch)
	assert.Equal(t, 7, i)
	assert.Equal(t, int64(1), skipped)
	batch, _, _, skipped = l.nextBatch(order, 0, 10, false, batch, nil)
	assert.Equal(t, order, batch, "no peek, no skip")
	assert.Zero(t, skipped)
	// Header-only records instead of skips: 2 and 5 take their places in
	// the batches of 4 and are not counted as skipped.
	batch, headers, i, skipped := l.nextBatch(order, 0, 4, true, batch, []int32{})
	assert.Equal(t, []int32{1, 3, 4}, batch)
	assert.Equal(t, []int32{2}, headers)
	assert.Equal(t, 4, i)
	assert.Zero(t, skipped)
	batch, headers, _, _ = l.nextBatch(order, i, 4, true, batch, headers)
	assert.Equal(t, []int32{6, 7}, batch)
	assert.Equal(t, []int32{5}, headers)
}

func TestUnsend(t *testing.T) {
	pend := []uint64{0, 0}
	(&Log{n: 128, pend: pend}).unsend([]int32{3, 64, 70})
	assert.Equal(t, []uint64{1 << 3, 1<<0 | 1<<6}, pend)
}
