package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// zeroHandTrace is TestQemuHand's trace with one more write: at 20 ms page
// 50, of the initial image, is written back to all zeros (zero marks it
// when zero is true).
func zeroHandTrace(t *testing.T, zero bool) *Trace {
	t.Helper()
	tr := NewTrace("hand", tracefmt.Header{PageSize: 4096, Pages: 128, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
	setQemuHandImage(t, tr)
	require.NoError(t, tr.AddEpochZero(20*ms, []int32{50}, []bool{zero}))
	require.NoError(t, tr.AddEpoch(30*ms, []int32{10, 11, 12}))
	require.NoError(t, tr.AddEpoch(70*ms, []int32{100}))
	return tr
}

// TestQemuZeroWriteHand: TestQemuHand's set-up (1024-byte headers on a
// 40.96 Mbit/s link: a full page 1 ms, a zero page 0.2 ms; batches of 64
// pages, downtime_limit 5 ms, zero_page_scan 0) with page 50 written back
// to zeros at 20 ms.
//
// Round 1: pages 0..49 full at 0..50 ms; page 50 is a zero page again:
// 50..50.2 ms; 51..63 full, end at 63.2 ms. The batch at 63.2 ms samples
// 63 × 5120 + 1024 = 323,584 B over 63.2 ms = 5.12 MB/s: threshold
// 25,600 B, remaining 64 × 4096 above it. Zero pages 64..99 end at 70.4
// ms; page 100 (written at 70 ms) full, 70.4..71.4; 101..127 zero, end at
// 76.8 ms. Dirtied: {10, 11, 12, 50, 100}.
// Round 2 (76.8 ms): 69,632 B over 13.6 ms = 5.12 MB/s, threshold
// 25,600 B; pending 5 × 4096 = 20,480 below it: switch over. Final round:
// 10, 11, 12, 100 full and 50 a header: downtime 4.2 ms, total 81 ms.
//
// Without the zero mark page 50 holds data throughout: round 1 ends at
// 77.6 ms and the final round takes 5 ms, 82.6 ms in all.
func TestQemuZeroWriteHand(t *testing.T) {
	cfg := qemuHandConfig()
	params := []string{"max_bandwidth", "0", "buffer_delay", "10ms", "downtime_limit", "5ms", "max_wait", "1ms", "zero_page_scan", "0"}
	res := runAlg(t, zeroHandTrace(t, true), "qemu-precopy", cfg, params...)
	require.Len(t, res.RoundRows, 2)
	r1, fin := res.RoundRows[0], res.RoundRows[1]
	assert.Equal(t, []int64{0, 76_800_000, 128, 5, 5}, []int64{r1.StartNS, r1.DurationNS, r1.PagesSent, r1.PagesDirtied, r1.RemainingDirty})
	assert.Equal(t, []int64{76_800_000, 4_200_000, 5}, []int64{fin.StartNS, fin.DurationNS, fin.PagesSent})
	assert.Equal(t, int64(68*5120+65*1024), res.BytesSent)
	assert.Equal(t, int64(4_200_000), res.DowntimeNS)
	assert.Equal(t, int64(81_000_000), res.TotalNS)

	res = runAlg(t, zeroHandTrace(t, false), "qemu-precopy", cfg, params...)
	assert.Equal(t, int64(77_600_000), res.RoundRows[0].DurationNS)
	assert.Equal(t, int64(5_000_000), res.DowntimeNS)
	assert.Equal(t, int64(82_600_000), res.TotalNS)
}

// TestQemuZeroWriteScan: with zero_page_scan 0.1 ms a zero page costs
// 0.3 ms, page 50 included. Round 1: 0..49 full end at 50 ms, page 50 at
// 50.3, 51..63 at 63.3 ms; zero pages 64..99 end at 74.1 ms, page 100
// full at 75.1, 101..127 at 83.2 ms. Round 2 (83.2 ms): 69,632 B over
// 19.9 ms = 3.499 MB/s, threshold 17,495 B: pending 5 × 4096 = 20,480 is
// above it, so round 2 sends the five pages live: 4 full and page 50 a
// zero page, 4.3 ms. Round 3 (87.5 ms): nothing dirty (idle since 70 ms):
// switch over with an empty final round. Total 87.5 ms.
func TestQemuZeroWriteScan(t *testing.T) {
	cfg := qemuHandConfig()
	res := runAlg(t, zeroHandTrace(t, true), "qemu-precopy", cfg, "max_bandwidth", "0", "buffer_delay", "10ms",
		"downtime_limit", "5ms", "max_wait", "1ms", "zero_page_scan", "100us")
	require.Len(t, res.RoundRows, 3)
	assert.Equal(t, []int64{83_200_000, 4_300_000, 0}, []int64{res.RoundRows[0].DurationNS, res.RoundRows[1].DurationNS, res.RoundRows[2].DurationNS})
	assert.Equal(t, int64(5), res.RoundRows[1].PagesSent)
	assert.Equal(t, int64(87_500_000), res.TotalNS)
}

// TestZeroWriteContentBlind: Xen (and stop-and-copy without zero_pages)
// send every page in full whatever it holds: the zero mark changes
// nothing.
func TestZeroWriteContentBlind(t *testing.T) {
	cfg := qemuHandConfig()
	for _, alg := range []string{"xen-precopy", "xen-v2", "stop-and-copy"} {
		with := runAlg(t, zeroHandTrace(t, true), alg, cfg)
		without := runAlg(t, zeroHandTrace(t, false), alg, cfg)
		assert.Equal(t, rowsOf(without), rowsOf(with), alg)
		assert.Equal(t, without.BytesSent, with.BytesSent, alg)
	}
}

// TestZeroWriteThenData: a page written back to zeros and then written
// with data again holds data; a zero write before the migration starts
// (prehistory) makes an initial page a zero page from the start.
func TestZeroWriteThenData(t *testing.T) {
	tr := NewTrace("hand", tracefmt.Header{PageSize: 4096, Pages: 8, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
	require.NoError(t, tr.SetInitial([]int32{0, 1, 2, 3, 4, 5, 6, 7}))
	require.NoError(t, tr.AddEpochZero(10*ms, []int32{1, 2, 3}, []bool{true, true, false}))
	require.NoError(t, tr.AddEpochZero(20*ms, []int32{2}, []bool{false}))
	// Stop-and-copy with zero_pages at trace time 30 ms: pages 0, 2..7
	// hold data, page 1 is a zero page: 7 × 5120 + 1024 bytes.
	cfg := Config{Link: Link{Bps: 40_960_000, HeaderBytes: 1024}, Time: TimeModel{Dirty: End, After: Idle, StartNS: 30 * ms}}
	res := runAlg(t, tr, "stop-and-copy", cfg, "zero_pages", "true")
	assert.Equal(t, int64(7*5120+1024), res.BytesSent)
}

// TestTraceIDZero: the zero marks are part of a trace's identity; a trace
// without any keeps the identity it had before they existed.
func TestTraceIDZero(t *testing.T) {
	with, without := zeroHandTrace(t, true), zeroHandTrace(t, false)
	assert.NotEqual(t, with.ID(), without.ID())
	other := NewTrace("hand", with.Header)
	require.NoError(t, other.SetInitial(with.Initial))
	require.NoError(t, other.AddEpochZero(20*ms, []int32{50}, []bool{false}))
	require.NoError(t, other.AddEpochZero(30*ms, []int32{10, 11, 12}, []bool{true, false, false}))
	require.NoError(t, other.AddEpoch(70*ms, []int32{100}))
	assert.NotEqual(t, with.ID(), other.ID(), "the same number of zero rows on another row")
	assert.Equal(t, "hand", without.Name)
	assert.Zero(t, without.ZeroRows)
	assert.Nil(t, without.Zero, "a trace with no zero rows holds no bitmap")
}
