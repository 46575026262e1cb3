package socket

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/tracefmt"
)

// zeroTrace is hotColdTrace with a quarter of each epoch's writes marked
// as leaving the page all zeros: pages ≡ 0 mod 4 in even epochs, so their
// content flips between zeros and data.
func zeroTrace(t *testing.T) *replay.Trace {
	t.Helper()
	src := hotColdTrace(t, 2048, 300, 256, 6, 2)
	tr := replay.NewTrace("hotcold-zero", src.Header)
	require.NoError(t, tr.SetInitial(src.Initial))
	for i := range src.EpochT {
		tns, ps := src.Epoch(i)
		zero := make([]bool, len(ps))
		for j, p := range ps {
			zero[j] = p%4 == 0 && i%2 == 0
		}
		require.NoError(t, tr.AddEpochZero(tns, ps, zero))
	}
	require.Positive(t, tr.ZeroRows)
	return tr
}

// TestZeroWritesAgreeWithSim: on a trace with zero writes the socket
// engine, which zeroes a page's content at such a write and sends it as a
// header under zero-page detection, agrees with the simulator on bytes and
// pages within 10% and passes the destination's verification; the zero
// marks change QEMU's bytes and leave Xen's alone.
func TestZeroWritesAgreeWithSim(t *testing.T) {
	tr := zeroTrace(t)
	plain := hotColdTrace(t, 2048, 300, 256, 6, 2)
	for _, name := range []string{"qemu-precopy", "xen-precopy"} {
		t.Run(name, func(t *testing.T) {
			leakCheck(t)
			sim, err := replay.Sim{}.Run(context.Background(), tr, newAlg(t, name), config(100e6))
			require.NoError(t, err)
			simPlain, err := replay.Sim{}.Run(context.Background(), plain, newAlg(t, name), config(100e6))
			require.NoError(t, err)
			if name == "qemu-precopy" {
				assert.Less(t, sim.BytesSent, simPlain.BytesSent, "zero writes make pages zero pages again")
			} else {
				assert.Equal(t, simPlain.BytesSent, sim.BytesSent, "Xen sends every page in full")
			}
			var db, dp float64
			for attempt := 1; attempt <= 3; attempt++ {
				sock, err := Engine{Link: LinkConfig{Kind: LinkLoopback}}.Run(context.Background(), tr, newAlg(t, name), config(100e6))
				require.NoError(t, err, "the destination's memory must verify")
				require.Zero(t, sock.LostPages)
				db, dp = rel(sock.BytesSent, sim.BytesSent), rel(sock.PagesSent, sim.PagesSent)
				t.Logf("attempt %d: bytes sim %d socket %d (%+.1f%%), pages sim %d socket %d (%+.1f%%); without zero marks the sim sent %d bytes",
					attempt, sim.BytesSent, sock.BytesSent, 100*db, sim.PagesSent, sock.PagesSent, 100*dp, simPlain.BytesSent)
				if math.Abs(db) <= 0.10 && math.Abs(dp) <= 0.10 {
					break
				}
			}
			assert.InDelta(t, 0, db, 0.10, "bytes sent differ from the simulator's")
			assert.InDelta(t, 0, dp, 0.10, "pages sent differ from the simulator's")
		})
	}
}

// TestZeroScanAgreesWithSim: QEMU's time to read a page and find it zero
// is charged serially with the transfer in both engines. A 64 MiB guest
// holding data in 4 MiB of it, at 100 Mbit/s with 20 µs per zero page:
// the sim's 15,360 zero pages add 307 ms to the 4 MiB's 336 ms. A socket
// engine that slept the scan beside its shaped link would overlap the two
// and finish about 300 ms early.
func TestZeroScanAgreesWithSim(t *testing.T) {
	const pages, data = 16384, 1024
	tr := replay.NewTrace("mostly-zero", tracefmt.Header{PageSize: 4096, Pages: pages, EpochNS: 10e6, Backend: tracefmt.BackendSynthetic})
	init := make([]int32, data)
	for i := range init {
		init[i] = int32(i * (pages / data))
	}
	require.NoError(t, tr.SetInitial(init))
	require.NoError(t, tr.AddEpoch(10e6, []int32{0, 16}))
	for _, cap := range []string{"0", "10485760"} {
		t.Run("max_bandwidth="+cap, func(t *testing.T) {
			alg := func() algorithms.Algorithm {
				a := newAlg(t, "qemu-precopy")
				require.NoError(t, algorithms.Set(a, "zero_page_scan", "20us"))
				require.NoError(t, algorithms.Set(a, "max_bandwidth", cap))
				return a
			}
			sim, err := replay.Sim{}.Run(context.Background(), tr, alg(), config(100e6))
			require.NoError(t, err)
			var dt float64
			for attempt := 1; attempt <= 3; attempt++ {
				sock, err := Engine{Link: LinkConfig{Kind: LinkLoopback}}.Run(context.Background(), tr, alg(), config(100e6))
				require.NoError(t, err)
				dt = rel(sock.TotalNS, sim.TotalNS)
				t.Logf("attempt %d: total time sim %.1f ms socket %.1f ms (%+.1f%%)", attempt, float64(sim.TotalNS)/1e6, float64(sock.TotalNS)/1e6, 100*dt)
				if math.Abs(dt) <= 0.05 {
					break
				}
			}
			assert.InDelta(t, 0, dt, 0.05, "total time differs from the simulator's")
		})
	}
}
