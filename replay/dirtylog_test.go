package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
