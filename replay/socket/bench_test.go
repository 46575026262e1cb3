package socket

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/tracefmt"
)

// idleTrace is memBytes of 4 KiB pages, all holding data, never written:
// stop-and-copy of it is one pure stream whose downtime is its transfer.
func idleTrace(tb testing.TB, memBytes int64) *replay.Trace {
	tb.Helper()
	tr := replay.NewTrace("idle", tracefmt.Header{PageSize: 4096, Pages: memBytes / 4096, EpochNS: 100e6, Backend: tracefmt.BackendSynthetic})
	return tr
}

// benchStream migrates idle memory with stop-and-copy and reports the
// achieved payload rate (bytes charged, headers included, over the
// measured downtime: pause to the receiver's verified acknowledgement).
func benchStream(b *testing.B, link string, bps int64, memBytes int64) float64 {
	tr := idleTrace(b, memBytes)
	var bytes, ns int64
	for range b.N {
		res, err := Engine{Link: LinkConfig{Kind: link}}.Run(context.Background(), tr, newAlg(b, "stop-and-copy"), config(bps))
		require.NoError(b, err)
		require.Zero(b, res.LostPages)
		bytes += res.BytesSent
		ns += res.DowntimeNS
	}
	b.SetBytes(bytes / int64(b.N))
	return float64(bytes) * 8 / (float64(ns) / 1e9)
}

// BenchmarkShapedThroughput reports the achieved rate as a share of the
// shaped rate (target >= 0.95) on each link.
//
//	go test -run '^$' -bench ShapedThroughput ./replay/socket
func BenchmarkShapedThroughput(b *testing.B) {
	for _, link := range []string{LinkLoopback, LinkNetns} {
		for _, tc := range []struct {
			name string
			bps  int64
			mem  int64
		}{{"100Mbit", 100e6, 16 << 20}, {"1Gbit", 1e9, 128 << 20}} {
			b.Run("link="+link+"/rate="+tc.name, func(b *testing.B) {
				if link == LinkNetns {
					needNetns(b)
				}
				rate := benchStream(b, link, tc.bps, tc.mem)
				b.ReportMetric(rate/float64(tc.bps), "share-of-rate")
			})
		}
	}
}

// BenchmarkUnshapedLoopback streams over loopback with a rate no bucket
// ever waits for (1 Tbit/s) and reports GB/s (target >= 1).
//
//	go test -run '^$' -bench UnshapedLoopback ./replay/socket
func BenchmarkUnshapedLoopback(b *testing.B) {
	rate := benchStream(b, LinkLoopback, 1e12, 512<<20)
	b.ReportMetric(rate/8/1e9, "GB/s")
}
