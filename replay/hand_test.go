package replay

import (
	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/require"
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
// transfer ends at 62 ms; live rounds are pipelined (no RTT) → round 1
// lasts 62 ms: sent 62, skipped 2, dirtied {5, 40, 60} = 3.
// Stop test: 62+2 >= 50, round 1 < 29, 62 <= 3×64 → go on.
// Round 2 (62 ms): to_send {5, 40, 60} at 62, 63, 64 ms → ends 65 ms
// (3 ms). Sent 3 < 50 → stop.
// Final round (65 ms): nothing dirty; downtime = the switch-over's RTT =
// 1 ms. Total 66 ms.
func TestXenPrecopyHand(t *testing.T) {
	tr := newTestTrace(t, 64, epoch{10, []int32{5, 40}}, epoch{20, []int32{5}}, epoch{30, []int32{5, 60}})
	res := runAlg(t, tr, "xen-precopy", handConfig(ms, End, Idle), "batch_pages", "8")
	assert.Equal(t, []row{
		{0, 62, 62, 2, 0, 3, 3},
		{62, 3, 3, 0, 0, 0, 0},
		{65, 1, 0, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, int64(3), res.Rounds)
	assert.Equal(t, int64(65), res.PagesSent)
	assert.Equal(t, 1*ms, res.DowntimeNS)
	assert.Equal(t, 66*ms, res.TotalNS)
}

// TestStopAndCopyHand: 20 pages at 1 ms each, RTT 1 ms: one round, the
// final one, downtime = 20 ms + 1 ms. A write at 5 ms never happens: the VM
// is paused at 0.
func TestStopAndCopyHand(t *testing.T) {
	tr := newTestTrace(t, 20, epoch{5, []int32{3}})
	res := runAlg(t, tr, "stop-and-copy", handConfig(ms, End, Loop))
	assert.Equal(t, []row{{0, 21, 20, 0, 0, 0, 0}}, rowsOf(res))
	assert.Equal(t, 21*ms, res.DowntimeNS)
	assert.Equal(t, 21*ms, res.TotalNS)
	assert.Equal(t, int64(20), res.PagesSent)
}

// TestStopAndCopyMemoryOverBandwidth: downtime is memory / bandwidth + RTT
// for a 4 GiB VM at 1 Gbit/s with 16-byte headers: 1,048,576 pages ×
// 4112 bytes × 8 = 34,493,956,096 bits → 34,493,956,096 ns at 1e9 bit/s, + 1 ms.
func TestStopAndCopyMemoryOverBandwidth(t *testing.T) {
	tr := NewTrace("idle", tracefmt.Header{PageSize: 4096, Pages: 1 << 20, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
	cfg := Config{Link: Link{Bps: 1e9, RTTNS: ms, HeaderBytes: 16}}
	res := runAlg(t, tr, "stop-and-copy", cfg)
	assert.Equal(t, int64(34_493_956_096)+ms, res.DowntimeNS)
	assert.Equal(t, int64(1<<20), res.PagesSent)
	assert.Equal(t, int64(1<<20)*4112, res.BytesSent)
}

// TestStopAndCopyZeroPages: with zero_pages on, the 12 pages outside the
// initial image {0..7} cost a 1024-byte header (0.2 ms at 40.96 Mbit/s)
// instead of a 5120-byte page (1 ms): 8 + 12×0.2 = 10.4 ms.
func TestStopAndCopyZeroPages(t *testing.T) {
	tr := newTestTrace(t, 20)
	require.NoError(t, tr.SetInitial([]int32{0, 1, 2, 3, 4, 5, 6, 7}))
	cfg := Config{Link: Link{Bps: 40_960_000, HeaderBytes: 1024}}
	res := runAlg(t, tr, "stop-and-copy", cfg, "zero_pages", "true")
	assert.Equal(t, int64(10_400_000), res.DowntimeNS)
	assert.Equal(t, int64(8*5120+12*1024), res.BytesSent)
	res = runAlg(t, tr, "stop-and-copy", cfg)
	assert.Equal(t, 20*ms, res.DowntimeNS, "Xen-like default sends zero pages in full")
}

// TestXenPrecopyNoWrites: 40 pages, no writes, RTT 1 ms. Round 1 sends all
// 40 (40 ms, no RTT between live rounds); 40 < 50 stops the live phase;
// the final round is empty: downtime = the switch-over's RTT.
func TestXenPrecopyNoWrites(t *testing.T) {
	tr := newTestTrace(t, 40)
	res := runAlg(t, tr, "xen-precopy", handConfig(ms, Continuous, Loop))
	assert.Equal(t, []row{{0, 40, 40, 0, 0, 0, 0}, {40, 1, 0, 0, 0, 0, 0}}, rowsOf(res))
	assert.Equal(t, ms, res.DowntimeNS)
}

// TestXenPrecopyNoWritesLarge: with 64 pages round 1 sends >= 50, so Xen's
// rule runs one more live round before stopping; it is empty and takes no
// time (no RTT between live rounds). Then the empty final round: 1 ms RTT.
func TestXenPrecopyNoWritesLarge(t *testing.T) {
	tr := newTestTrace(t, 64)
	res := runAlg(t, tr, "xen-precopy", handConfig(ms, Continuous, Loop))
	assert.Equal(t, []row{{0, 64, 64, 0, 0, 0, 0}, {64, 0, 0, 0, 0, 0, 0}, {64, 1, 0, 0, 0, 0, 0}}, rowsOf(res))
}

// TestXenV2Hand: 64 pages, RTT 0, dirty=end, idle, min_pages=3 (so that
// a few pages exercise the rule: Xen stops at dirty_count < 50). Writes:
// 10 ms {1,2,3}, 20 ms {1,2}, 66 ms {1,2}, 68 ms {1}.
//
// Round 1: pages 0..63 at 0..63 ms, ends 64 ms; dirtied {1,2,3}.
// Round 2 (64 ms): 3 dirty, not < 3 → go on. 1 at 64, 2 at 65, 3 at 66 ms;
// the write at 66 ms lands before page 3 goes and re-dirties 1 and 2. Ends
// 67 ms; dirtied {1,2}. No skipping in v2.
// Round 3 (67 ms): 2 < 3: the policy decides to stop, but
// send_memory_live sends the dirty set live first: 1 at 67, 2 at 68 ms;
// the write at 68 ms re-dirties page 1 (sent at 67) before page 2 goes.
// Ends 69 ms; dirtied {1}.
// Round 4 (69 ms): suspend. Final round: page 1 at 69: downtime 1 ms
// (RTT 0), total 70 ms, 64 + 3 + 2 + 1 = 70 pages. (Suspending at 67 ms
// instead, as before, left 2 pages and 2 ms of downtime.)
func TestXenV2Hand(t *testing.T) {
	tr := newTestTrace(t, 64, epoch{10, []int32{1, 2, 3}}, epoch{20, []int32{1, 2}}, epoch{66, []int32{1, 2}}, epoch{68, []int32{1}})
	res := runAlg(t, tr, "xen-v2", handConfig(0, End, Idle), "min_pages", "3")
	assert.Equal(t, []row{
		{0, 64, 64, 0, 0, 3, 3},
		{64, 3, 3, 0, 0, 2, 2},
		{67, 2, 2, 0, 0, 1, 1},
		{69, 1, 1, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, int64(70), res.PagesSent)
	assert.Equal(t, 1*ms, res.DowntimeNS)
	assert.Equal(t, 70*ms, res.TotalNS)
}

// TestXenPrecopyHVMHand: TestXenPrecopyHand's trace with guest=hvm. In
// round 1 the pages the peek finds re-dirtied (40 at the batch of 40 ms,
// 60 at the batch of 55 ms) are not skipped but go as pfn-only records: a
// header each (0 bytes here, so no time) and no content; they count as
// sent and stay dirty.
//
// Round 1: 0..39 at 0..39 ms. Batch at 40 (8 places): 40 as a header, 41..47
// at 40..46. Batch at 47: 48..55 at 47..54. Batch at 55: 56..59 at 55..58,
// 60 as a header, 61..63 at 59..61. Ends 62 ms: sent 62 + 2 = 64, skipped
// 0, dirtied {5, 40, 60}.
// Stop test: 64 + 0 >= 50 → go on. Round 2 (62 ms, no HVM rule): 5, 40, 60
// at 62..64, ends 65. Sent 3 < 50 → stop; empty final round, downtime =
// RTT = 1 ms. 67 records, 65 of them pages.
func TestXenPrecopyHVMHand(t *testing.T) {
	tr := newTestTrace(t, 64, epoch{10, []int32{5, 40}}, epoch{20, []int32{5}}, epoch{30, []int32{5, 60}})
	res := runAlg(t, tr, "xen-precopy", handConfig(ms, End, Idle), "batch_pages", "8", "guest", "hvm")
	assert.Equal(t, []row{
		{0, 62, 64, 0, 0, 3, 3},
		{62, 3, 3, 0, 0, 0, 0},
		{65, 1, 0, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, int64(67), res.PagesSent)
	assert.Equal(t, int64(65*4096), res.BytesSent)
	assert.Equal(t, 1*ms, res.DowntimeNS)
}

// TestXenV2MaxRounds: a page rewritten every 1 ms keeps > min_pages=0
// dirty forever, so v2 runs its 5 live rounds and stops.
func TestXenV2MaxRounds(t *testing.T) {
	var eps []epoch
	for i := int64(1); i <= 200; i++ {
		eps = append(eps, epoch{i, []int32{0}})
	}
	tr := newTestTrace(t, 8, eps...)
	res := runAlg(t, tr, "xen-v2", handConfig(0, End, Idle), "min_pages", "0")
	assert.Equal(t, int64(6), res.Rounds)
}

// TestMicrowiperHand: 64 pages in 8 stripes of 8 (stripe s = pages
// 8s..8s+7), batches of 4, RTT 0, dirty=end, idle, bandwidth estimate =
// link = 1000 pages/s, min_pages=2. Writes: 62 ms {0..7, 8, 16}; 70 ms
// {0..7, 9, 10, 11}.
//
// Round 1: page order, 0..63 at 0..63 ms (peeks see nothing in their
// windows), ends 64 ms. Dirtied: {0..7, 8, 16} = 10.
// Round 2 (64 ms): counts s0=8, s1=1, s2=1 over 64 ms: 125, 15.6, 15.6
// pages/s, sum < 1000, all admitted, coldest first: s1 (8), s2 (16), s0
// (0..7). Batch at 64: 8, 16, 0, 1 at 64..67; batch at 68: 2, 3, 4, 5 at
// 68..71 (the 70 ms write re-dirties 0..7 and 9..11); batch at 72: 6, 7
// are dirty since 70 → skipped. Ends 72 ms: sent 8, skipped 2, dirtied
// {0..7, 9, 10, 11} = 11.
// Round 3 (72 ms): sent+skipped 10 >= 2, go on. Counts over 8 ms: s1 = 3
// (375/s), s0 = 8 (1000/s). Walk: s1 → 375 <= 1000 admitted; s0 → 1375 >
// 1000 held. 9, 10, 11 at 72..74, ends 75: sent 3, held 8.
// Round 4 (75 ms): nothing dirtied in round 3, so s0 has rate 0: 0..7 at
// 75..82 in two batches, ends 83. Round 5 (83 ms): nothing to send, ends at
// once. Round 6: 0 < 2 → stop; empty final round, downtime 0.
func TestMicrowiperHand(t *testing.T) {
	all8 := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	tr := newTestTrace(t, 64, epoch{62, append(all8[:8:8], 8, 16)}, epoch{70, append(all8[:8:8], 9, 10, 11)})
	res := runAlg(t, tr, "microwiper", handConfig(0, End, Idle),
		"stripe_pages", "8", "batch_pages", "4", "bandwidth", "link", "min_pages", "2")
	assert.Equal(t, []row{
		{0, 64, 64, 0, 0, 10, 10},
		{64, 8, 8, 2, 0, 11, 11},
		{72, 3, 3, 0, 8, 0, 8},
		{75, 8, 8, 0, 0, 0, 0},
		{83, 0, 0, 0, 0, 0, 0},
		{83, 0, 0, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, int64(83), res.PagesSent)
	assert.Equal(t, int64(0), res.DowntimeNS)
	assert.Equal(t, 83*ms, res.TotalNS)
}

// setQemuHandImage gives tr TestQemuHand's initial image: pages 0..63
// hold data, the rest are zero pages.
func setQemuHandImage(t *testing.T, tr *Trace) {
	t.Helper()
	img := make([]int32, 64)
	for i := range img {
		img[i] = int32(i)
	}
	require.NoError(t, tr.SetInitial(img))
}

// qemuHandConfig is TestQemuHand's link: 1024-byte headers at 40.96
// Mbit/s (a full page 1 ms, a header 0.2 ms), dirty=end, idle after.
func qemuHandConfig() Config {
	return Config{Link: Link{Bps: 40_960_000, HeaderBytes: 1024}, Time: TimeModel{Dirty: End, After: Idle}}
}

// TestQemuHand: 128 pages, initial image {0..63} (so 64..127 are zero
// pages), 1024-byte headers on a 40.96 Mbit/s link: a full page (5120
// bytes) takes 1 ms, a zero page (header only) 0.2 ms. No rate cap, RTT 0,
// buffer_delay 10 ms, downtime_limit 5 ms, max_wait 1 ms (so batches are
// QEMU's minimum of 64 pages). dirty=end, idle. Writes: 30 ms {10,11,12},
// 70 ms {100}.
//
// Round 1: batch at 0 (no sample yet, threshold 0). 0..63 full at 0..63
// ms. Batch at 64 ms: sample over 64 ms: 327,680 B / 0.064 s = 5.12 MB/s,
// threshold = 5.12e6 × 0.005 = 25,600 B; remaining 64 pages × 4096 is
// above it. Zero pages 64..99 at 0.2 ms each end at 71.2 ms; page 100 was
// written at 70 ms so it now holds data: full, 71.2..72.2; 101..127 zero,
// end at 77.6 ms. Dirtied: {10, 11, 12, 100}.
// Round 2 (77.6 ms): sample over 13.6 ms: 69,632 B → 5.12 MB/s, threshold
// 25,600 B; pending 4 × 4096 = 16,384 < 25,600 → switch over. Final round:
// 4 full pages, downtime 4 ms, total 81.6 ms.
func TestQemuHand(t *testing.T) {
	tr := newTestTrace(t, 128, epoch{30, []int32{10, 11, 12}}, epoch{70, []int32{100}})
	setQemuHandImage(t, tr)
	cfg := qemuHandConfig()
	res := runAlg(t, tr, "qemu-precopy", cfg, "max_bandwidth", "0", "buffer_delay", "10ms",
		"downtime_limit", "5ms", "max_wait", "1ms", "zero_page_scan", "0")
	require.Len(t, res.RoundRows, 2)
	r1, fin := res.RoundRows[0], res.RoundRows[1]
	assert.Equal(t, []int64{0, 77_600_000, 128, 4, 4}, []int64{r1.StartNS, r1.DurationNS, r1.PagesSent, r1.PagesDirtied, r1.RemainingDirty})
	assert.Equal(t, []int64{77_600_000, 4_000_000, 4}, []int64{fin.StartNS, fin.DurationNS, fin.PagesSent})
	assert.Equal(t, int64(132), res.PagesSent)
	assert.Equal(t, int64(64*5120+63*1024+5120+4*5120), res.BytesSent)
	assert.Equal(t, int64(81_600_000), res.TotalNS)
}

// TestQemuMidPassSyncHand: 256 pages at 1 ms each (no cap), batches of 64
// (QEMU's least), buffer_delay 1 ms (throughput 4,096,000 B/s), downtime
// limit 100 ms: threshold 409,600 B = 100 pages. dirty=end, idle after.
// Writes: 100 ms {0..49}; 220 ms {200}.
//
// Round 1: 0..191 go at 0..192 ms in batches of 64. Batch at 192 ms: 64
// pages left (below 100), so QEMU syncs: 64 + 50 dirtied = 114, not below
// → the round ends there (192 sent, 50 dirtied, 114 to send).
// Round 2 (192 ms) starts after page 191: 192..255 at 192..256 ms, then
// would wrap to 0..49. Batch at 256 ms: 50 left, + {200} (re-dirtied at
// 220 ms, after it went at 200) = 51 < 100 → switch over.
// Final (256 ms): 0..49 and 200, 51 ms. Total 307 ms.
func TestQemuMidPassSyncHand(t *testing.T) {
	first := make([]int32, 50)
	for i := range first {
		first[i] = int32(i)
	}
	tr := newTestTrace(t, 256, epoch{100, first}, epoch{220, []int32{200}})
	res := runAlg(t, tr, "qemu-precopy", handConfig(0, End, Idle), "max_bandwidth", "0", "buffer_delay", "1ms",
		"downtime_limit", "100ms", "max_wait", "1ms")
	assert.Equal(t, []row{
		{0, 192, 192, 0, 0, 50, 114},
		{192, 64, 64, 0, 0, 1, 51},
		{256, 51, 51, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, 307*ms, res.TotalNS)
}

// TestQemuZeroPageScan: TestQemuHand's migration with zero_page_scan =
// 0.1 ms, the source's time to find a page zero: a zero page now takes
// 0.2 + 0.1 = 0.3 ms.
//
// Round 1: 0..63 full at 0..64 ms as before; the batch at 64 ms samples
// 5.12 MB/s as before. Zero pages 64..99 end at 64 + 36 × 0.3 = 74.8 ms;
// page 100 (written at 70 ms) full, 74.8..75.8; 101..127 zero, end at
// 75.8 + 27 × 0.3 = 83.9 ms.
// Round 2 (83.9 ms): sample over 19.9 ms: 63 × 1024 + 5120 = 69,632 B →
// 3.4991 MB/s, threshold 17,495 B (the zero pages' scan lowered it);
// pending 16,384 B is below it → switch over. Final round: 4 full pages,
// 4 ms (no zero page in it). Total 87.9 ms.
func TestQemuZeroPageScan(t *testing.T) {
	tr := newTestTrace(t, 128, epoch{30, []int32{10, 11, 12}}, epoch{70, []int32{100}})
	setQemuHandImage(t, tr)
	cfg := qemuHandConfig()
	res := runAlg(t, tr, "qemu-precopy", cfg, "max_bandwidth", "0", "buffer_delay", "10ms",
		"downtime_limit", "5ms", "max_wait", "1ms", "zero_page_scan", "100us")
	require.Len(t, res.RoundRows, 2)
	r1, fin := res.RoundRows[0], res.RoundRows[1]
	assert.Equal(t, []int64{0, 83_900_000, 128}, []int64{r1.StartNS, r1.DurationNS, r1.PagesSent})
	assert.Equal(t, []int64{83_900_000, 4_000_000, 4}, []int64{fin.StartNS, fin.DurationNS, fin.PagesSent})
	assert.Equal(t, int64(64*5120+63*1024+5120+4*5120), res.BytesSent, "the scan costs time, not bytes")
	assert.Equal(t, int64(87_900_000), res.TotalNS)
}

// TestQemuRateCap: max_bandwidth = 2,560,000 B/s halves the 40.96 Mbit/s
// link in the live round (2 ms a page) but not in the final round.
// stop-and-copy-like start: 16 pages, no writes, buffer_delay 1ms: round 1
// takes 32 ms; round 2 has nothing pending → switch over, empty final.
func TestQemuRateCap(t *testing.T) {
	tr := newTestTrace(t, 16)
	cfg := Config{Link: Link{Bps: 40_960_000, HeaderBytes: 1024}, Time: TimeModel{Dirty: End, After: Idle}}
	res := runAlg(t, tr, "qemu-precopy", cfg, "max_bandwidth", "2560000")
	require.Len(t, res.RoundRows, 2)
	assert.Equal(t, 32*ms, res.RoundRows[0].DurationNS)
	assert.Equal(t, int64(0), res.DowntimeNS)
}

// TestOracleHand: 10 pages at 1 ms, RTT 0, dirty=end, idle, step 1 ms,
// horizon 30 ms. Writes: 5 ms {0, 1}; 9 ms {2}.
// T=0: nothing can be sent: 10 unclean. T=5: 5 slots before T, and pages 0
// and 1 (released at 5) cannot go: max(10-5, 2-0) = 5. T=8: max(10-8,
// 2-3) = 2. T=9: max(1, page 2 released at 9: 1-0, 3-4) = 1. T=10: 0.
// Minimum 0 at T = 10 ms.
func TestOracleHand(t *testing.T) {
	tr := newTestTrace(t, 10, epoch{5, []int32{0, 1}}, epoch{9, []int32{2}})
	res := runAlg(t, tr, "oracle", handConfig(0, End, Idle), "step", "1ms", "horizon", "30ms")
	require.Len(t, res.Curve, 31)
	for T, want := range map[int]int64{0: 10, 5: 5, 8: 2, 9: 1, 10: 0, 30: 0} {
		assert.Equal(t, want, res.Curve[T].Unclean, "T=%d ms", T)
		assert.Equal(t, want*ms, res.Curve[T].DowntimeNS, "T=%d ms", T)
	}
	assert.Equal(t, int64(0), res.DowntimeNS)
	assert.Equal(t, 10*ms, res.TotalNS)
	assert.Equal(t, []row{{0, 10, 10, 0, 0, 0, 0}, {10, 0, 0, 0, 0, 0, 0}}, rowsOf(res))
}

// TestAutoConvergeSlowsTrace: 100 pages all rewritten every 10 ms (dirty=end,
// looping) on a link of 1000 pages/s never converge under a 30 ms downtime
// limit. Without auto-converge QEMU runs
// into the engine's cap (forced stop, no slowdown); with it the throttle
// steps up at 1 s syncs and the workload loses trace time.
func TestAutoConvergeSlowsTrace(t *testing.T) {
	all := make([]int32, 100)
	for i := range all {
		all[i] = int32(i)
	}
	tr := newTestTrace(t, 100, epoch{10, all})
	cfg := handConfig(0, End, Loop)
	cfg.MaxNS = 30e9
	off := runAlg(t, tr, "qemu-precopy", cfg, "max_wait", "1ms", "downtime_limit", "30ms")
	assert.True(t, off.ForcedStop)
	assert.Zero(t, off.Slowdown)
	on := runAlg(t, tr, "qemu-precopy", cfg, "max_wait", "1ms", "downtime_limit", "30ms", "auto_converge", "true")
	t.Logf("auto-converge: slowdown %.3f, forced %v, total %d ms, pages %d", on.Slowdown, on.ForcedStop, on.TotalNS/ms, on.PagesSent)
	assert.Greater(t, on.Slowdown, 0.3)
	assert.False(t, on.ForcedStop, "throttling makes it converge")
	assert.Less(t, on.Slowdown, 1.0)
	assert.Less(t, on.PagesSent, off.PagesSent)
}

// TestQemuMidPassSwitch: 80 pages at 1 ms (no header), no cap, RTT 0,
// buffer_delay 10 ms, downtime_limit 20 ms, batches of 64 (QEMU's
// minimum). dirty=end, idle. Writes: 30 ms {1, 2}; 50 ms {70..77}.
//
// Batch at 0: no sample yet. Batch at 64 ms: throughput 64 × 4096 B over
// 64 ms = 4.096 MB/s, threshold 4.096e6 × 0.02 = 81,920 B (20 pages).
// Remaining 16 pages (64..79) < 20 → sync: dirty log {1, 2, 70..77} = 10
// pages, 8 of them among the remaining, so a sync leaves 16 + 10 - 8 = 18
// < 20 pages → switch over now (the sum, 26, would not). Final round: the
// 18 pages, 18 ms. Total 82 ms.
func TestQemuMidPassSwitch(t *testing.T) {
	tr := newTestTrace(t, 80, epoch{30, []int32{1, 2}}, epoch{50, []int32{70, 71, 72, 73, 74, 75, 76, 77}})
	res := runAlg(t, tr, "qemu-precopy", handConfig(0, End, Idle), "max_bandwidth", "0", "buffer_delay", "10ms",
		"downtime_limit", "20ms", "max_wait", "1ms")
	assert.Equal(t, []row{{0, 64, 64, 0, 0, 10, 18}, {64, 18, 18, 0, 0, 0, 0}}, rowsOf(res))
	assert.Equal(t, 18*ms, res.DowntimeNS)
	assert.Equal(t, 82*ms, res.TotalNS)
}

// TestContinuousRoundInsideEpoch: the continuous reading. 4 pages at 1 ms,
// RTT 1 ms, resume overhead 0.5 ms, idle after the trace; page 0 is
// written in every epoch from 10 to 50 ms, so it is being written
// throughout (0, 50 ms]: dirty from 1 ns. xen-precopy with max_rounds 3,
// min_pages 0 and skip off, so that rounds 2 and 3 send page 0 inside the
// first epoch.
//
// Round 1 (0): pages 0..3 at 0..3 ms, ends 4 ms; page 0 entered the log at
// 1 ns: dirtied 1, to send 1.
// Round 2 (4 ms): the read clears the log, but page 0 is being written, so
// it is back at once. It goes at 4..5 ms; the round starts and ends inside
// (0, 10 ms], so the copy is stale: dirtied 1 (the old reading saw no
// event in (4, 5) ms and called it clean).
// Round 3 (5 ms): the same, 5..6 ms.
// Round 4 (6 ms): 3 rounds ran → stop. The pause at 6 ms is inside (0, 10]:
// page 0 is in the final set. Downtime = 1 ms transfer + 1 ms RTT + 0.5 ms
// resume = 2.5 ms; total 8.5 ms; 7 pages sent.
func TestContinuousRoundInsideEpoch(t *testing.T) {
	tr := newTestTrace(t, 4, epoch{10, []int32{0}}, epoch{20, []int32{0}}, epoch{30, []int32{0}}, epoch{40, []int32{0}}, epoch{50, []int32{0}})
	cfg := handConfig(ms, Continuous, Idle)
	cfg.ResumeOverheadNS = ms / 2
	res := runAlg(t, tr, "xen-precopy", cfg, "max_rounds", "3", "min_pages", "0", "skip", "false")
	assert.Equal(t, []row{
		{0, 4, 4, 0, 0, 1, 1},
		{4, 1, 1, 0, 0, 1, 1},
		{5, 1, 1, 0, 0, 1, 1},
		{6, 2, 1, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, 2*ms+ms/2, res.DowntimeNS)
	assert.Equal(t, 8*ms+ms/2, res.TotalNS)
	assert.Equal(t, int64(7), res.PagesSent)

	// With Xen's peek on, the page being written is seen dirty before each
	// batch of rounds 2 and 3 and skipped: those rounds send nothing and
	// take no time. Round 1 as above (the peek at 0 precedes the write at
	// 1 ns); rounds 2, 3 at 4 ms skip 1 each; round 4 stops; the pause at
	// 4 ms is inside the epoch: downtime 1 + 1 + 0.5 = 2.5 ms, total 6.5 ms.
	res = runAlg(t, tr, "xen-precopy", cfg, "max_rounds", "3", "min_pages", "0")
	assert.Equal(t, []row{
		{0, 4, 4, 0, 0, 1, 1},
		{4, 0, 0, 1, 0, 1, 1},
		{4, 0, 0, 1, 0, 1, 1},
		{4, 2, 1, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, 2*ms+ms/2, res.DowntimeNS)
	assert.Equal(t, 6*ms+ms/2, res.TotalNS)
}

// TestContinuousEpochEnd: a send at the last instant of an epoch leaves the
// page dirty; the page is clean once the epoch is over. 12 pages at 1 ms,
// RTT 1 ms, idle; one row (10 ms, {10}): page 10 is being written in
// (0, 10 ms]. xen-precopy with min_pages 1, skip off.
//
// Round 1 (0): pages 0..11 at 0..11 ms. Page 10 goes at exactly 10 ms,
// still inside its epoch: the copy is stale (the epoch's end at 10 ms +
// 1 ns bumps its version before page 11 goes). Ends 12 ms: dirtied {10}.
// Round 2 (12 ms): the epoch is over; page 10 goes at 12 ms and stays
// clean. Ends 13 ms; dirtied 0.
// Round 3 (13 ms): sent 1 >= 1, go on; nothing to send, ends at once.
// Round 4: sent 0 < 1 → stop. The final set is empty: downtime = RTT = 1 ms.
func TestContinuousEpochEnd(t *testing.T) {
	tr := newTestTrace(t, 12, epoch{10, []int32{10}})
	res := runAlg(t, tr, "xen-precopy", handConfig(ms, Continuous, Idle), "min_pages", "1", "skip", "false")
	assert.Equal(t, []row{
		{0, 12, 12, 0, 0, 1, 1},
		{12, 1, 1, 0, 0, 0, 0},
		{13, 0, 0, 0, 0, 0, 0},
		{13, 1, 0, 0, 0, 0, 0},
	}, rowsOf(res))
	assert.Equal(t, ms, res.DowntimeNS)
	assert.Equal(t, int64(13), res.PagesSent)
}

// TestOracleContinuousHand: the oracle reads continuous as the engines do.
// 10 pages at 1 ms, RTT 0, idle, step 1 ms, horizon 30 ms; one row (20 ms,
// {0}) with 10 ms epochs: page 0 is being written throughout (10, 20 ms].
// T=10: the epoch has not begun; 10 slots for 10 pages → 0 unclean.
// T=11, 15, 20: page 0 is being written: unclean whatever is sent, 1 + the
// other 9 (they fit: max(9 - T, 0) = 0) = 1.
// T=21: the epoch ended at 20 ms + 1 ns (release rounded down to 20 ms, a
// multiple of E/16): 1 page released at 20 against 1 slot → 0.
// Under end, page 0 is written only at 20 ms: clean at T=15, unclean at 20.
func TestOracleContinuousHand(t *testing.T) {
	tr := newTestTrace(t, 10, epoch{20, []int32{0}})
	res := runAlg(t, tr, "oracle", handConfig(0, Continuous, Idle), "step", "1ms", "horizon", "30ms")
	require.Len(t, res.Curve, 31)
	for T, want := range map[int]int64{0: 10, 9: 1, 10: 0, 11: 1, 15: 1, 20: 1, 21: 0, 30: 0} {
		assert.Equal(t, want, res.Curve[T].Unclean, "continuous T=%d ms", T)
	}
	assert.Equal(t, int64(0), res.DowntimeNS)
	end := runAlg(t, tr, "oracle", handConfig(0, End, Idle), "step", "1ms", "horizon", "30ms")
	for T, want := range map[int]int64{10: 0, 15: 0, 20: 1, 21: 0} {
		assert.Equal(t, want, end.Curve[T].Unclean, "end T=%d ms", T)
	}
}
