package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestXenPrecopyHand: 64 pages, batches of 8, RTT 1 ms, dirty=end (a row
// at t dirties its pages at t), idle after the trace. Writes: t=10ms {5,40},
// t=20ms {5}, t=30ms {5,60}.
//
// Round 1 (start 0): pages 0..39 go at 0..39 ms in batches of 8 (peeks at
// 0, 8, ..., 32 ms see nothing to skip in their windows: 40 is dirty from
// 10 ms but first scanned by the batch at 40 ms). Page 5 went at 5 ms and
// is dirtied again at 10, 20, 30 ms. Batch at 40 ms: 40 is in the log →
// skipped; 41..48 go at 40..47. Batch at 48: 49..56 at 48..55. Batch at
// 56: 57, 58, 59, skip 60 (dirty since 30 ms), 61, 62, 63 at 56..61. The
// transfer ends at 62 ms, +1 ms RTT → round 1 lasts 63 ms: sent 62,
// skipped 2, dirtied {5, 40, 60} = 3.
// Stop test: 62+2 >= 50, round 1 < 29, 62 <= 3×64 → go on.
// Round 2 (63 ms): to_send {5, 40, 60} at 63, 64, 65 ms, RTT → ends 67 ms
// (4 ms). Sent 3 < 50 → stop.
// Final round (67 ms): nothing dirty; downtime = RTT = 1 ms. Total 68 ms.
func TestXenPrecopyHand(t *testing.T) {
	tr := newTestTrace(t, 64, epoch{10, []int32{5, 40}}, epoch{20, []int32{5}}, epoch{30, []int32{5, 60}})
	res := runAlg(t, tr, "xen-precopy", handConfig(ms, End, Idle), "batch_pages", "8")
	assert.Equal(t, []row{
		{0, 63, 62, 2, 0, 3, 3},
		{63, 4, 3, 0, 0, 0, 0},
		{67, 1, 0, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, int64(3), res.Rounds)
	assert.Equal(t, int64(65), res.PagesSent)
	assert.Equal(t, 1*ms, res.DowntimeNS)
	assert.Equal(t, 68*ms, res.TotalNS)
}
