package socket

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/replay/netns"
	"github.com/microwiper/microwiper/tracefmt"
)

// hotColdTrace is pages pages of 4 KiB over epochs epochs of 10 ms: a hot
// set of hot pages written every epoch, plus cold random pages each epoch,
// and an initial image of the lower half of memory (so the upper half holds
// zero pages until written). The first epoch starts 10 ms in: under the
// continuous reading an epoch from 0 would dirty its pages from 1 ns, so
// the simulator's first peek (at 0) would see none of them and the socket
// engine's (a fraction of a millisecond later) all of them, a 7% swing in
// Xen's and Microwiper's pages that says nothing about either engine.
func hotColdTrace(t testing.TB, pages, epochs, hot, cold int, seed uint64) *replay.Trace {
	t.Helper()
	tr := replay.NewTrace("hotcold", tracefmt.Header{PageSize: 4096, Pages: int64(pages), EpochNS: 10e6, Backend: tracefmt.BackendSynthetic})
	init := make([]int32, pages/2)
	for i := range init {
		init[i] = int32(i)
	}
	require.NoError(t, tr.SetInitial(init))
	rng := rand.New(rand.NewPCG(seed, 1))
	for e := 1; e <= epochs; e++ {
		set := map[int32]bool{}
		for p := range hot {
			set[int32(p*7%pages)] = true
		}
		for range cold {
			set[int32(rng.IntN(pages))] = true
		}
		ps := make([]int32, 0, len(set))
		for p := range set {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		require.NoError(t, tr.AddEpoch(int64(e+1)*10e6, ps))
	}
	return tr
}

// policies lists every registered policy (bounds excluded: only the
// simulator runs them).
func policies(t testing.TB) []string {
	var out []string
	for _, name := range algorithms.Names() {
		a, err := algorithms.New(name)
		require.NoError(t, err)
		if _, ok := a.(algorithms.Policy); ok {
			out = append(out, name)
		}
	}
	return out
}

func newAlg(t testing.TB, name string) algorithms.Algorithm {
	a, err := algorithms.New(name)
	require.NoError(t, err)
	return a
}

func config(bps int64) replay.Config {
	return replay.Config{Link: replay.Link{Bps: bps, HeaderBytes: 16}}
}

// leakCheck records goroutines, descriptors and namespaces now and, at
// cleanup, fails the test if more are left than before.
func leakCheck(t *testing.T) {
	t.Helper()
	// The runtime opens its network poller's descriptors on first use:
	// open them now so they do not count as leaked.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	g0, fd0, ns0 := runtime.NumGoroutine(), countFDs(t), len(ownNamespaces())
	t.Cleanup(func() {
		var g, fd int
		for range 100 {
			g, fd = runtime.NumGoroutine(), countFDs(t)
			if g <= g0 && fd <= fd0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		assert.LessOrEqual(t, g, g0, "goroutines leaked")
		assert.LessOrEqual(t, fd, fd0, "file descriptors (sockets) leaked: %s", fdList())
		assert.LessOrEqual(t, len(ownNamespaces()), ns0, "network namespaces left behind: %v", ownNamespaces())
	})
}

// ownNamespaces lists this process's namespaces: other test processes
// (and other users of the machine) create and remove theirs meanwhile.
func ownNamespaces() []string {
	var own []string
	for _, ns := range netns.List() {
		if strings.HasPrefix(ns, fmt.Sprintf("%s%d-", netns.Prefix, os.Getpid())) {
			own = append(own, ns)
		}
	}
	return own
}

// countFDs counts the process's open sockets (the runtime opens pipes of
// its own lazily; they are not ours to count).
func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if runtime.GOOS != "linux" && err != nil {
		return 0 // no /proc: sockets go uncounted here
	}
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func needNetns(t testing.TB) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("netns link unavailable: %v", err)
	}
}

// TestEveryPolicyNoLostUpdates migrates a small hot/cold trace under every
// policy over each link and requires the destination to equal the source.
func TestEveryPolicyNoLostUpdates(t *testing.T) {
	tr := hotColdTrace(t, 1024, 200, 48, 4, 1)
	for _, link := range []string{LinkLoopback, LinkNetns} {
		for _, name := range policies(t) {
			t.Run(link+"/"+name, func(t *testing.T) {
				if link == LinkNetns {
					needNetns(t)
				}
				leakCheck(t)
				res, err := Engine{Link: LinkConfig{Kind: link, Timeout: 10 * time.Second}}.Run(context.Background(), tr, newAlg(t, name), config(100e6))
				require.NoError(t, err)
				assert.Zero(t, res.LostPages)
				assert.Equal(t, "socket", res.Engine)
				assert.GreaterOrEqual(t, res.PagesSent, int64(1024))
				assert.Equal(t, res.Rounds, int64(len(res.RoundRows)))
				assert.Positive(t, res.DowntimeNS)
				if name == "stop-and-copy" {
					// It pauses at once, before the first write at 10 ms.
					assert.Zero(t, res.Events, "writes after the pause")
				} else {
					assert.Positive(t, res.Events, "the player wrote no pages")
				}
			})
		}
	}
}

// TestAgreesWithSim runs every policy on the same trace at 100 Mbit/s in
// both engines: downtime and pages sent must agree within 10%.
//
// The trace keeps every policy's decisions clear of knife edges: with a
// hot set of 192 pages QEMU's switch-over test passes by under 2% at one
// batch, and a millisecond of real-time jitter flips it (a different final
// round, 15-25% more downtime). With 256 hot pages the closest decision
// has a 7% margin.
func TestAgreesWithSim(t *testing.T) {
	tr := hotColdTrace(t, 2048, 300, 256, 6, 2)
	var table strings.Builder
	fmt.Fprintf(&table, "%-8s %-14s %12s %12s %7s %10s %10s %7s\n", "link", "policy", "sim-down-ms", "sock-down-ms", "diff", "sim-pages", "sock-pages", "diff")
	for _, link := range []string{LinkLoopback, LinkNetns} {
		for _, name := range policies(t) {
			t.Run(link+"/"+name, func(t *testing.T) {
				if link == LinkNetns {
					needNetns(t)
				}
				sim, err := replay.Sim{}.Run(context.Background(), tr, newAlg(t, name), config(100e6))
				require.NoError(t, err)
				// Real time on a shared machine: a run whose threads lost the
				// CPU for tens of milliseconds is measured again, up to three
				// attempts; every attempt is logged.
				var dd, dp float64
				for attempt := 1; attempt <= 3; attempt++ {
					sock, err := Engine{Link: LinkConfig{Kind: link}}.Run(context.Background(), tr, newAlg(t, name), config(100e6))
					require.NoError(t, err)
					require.Zero(t, sock.LostPages)
					dd, dp = rel(sock.DowntimeNS, sim.DowntimeNS), rel(sock.PagesSent, sim.PagesSent)
					fmt.Fprintf(&table, "%-8s %-14s %12.1f %12.1f %+6.1f%% %10d %10d %+6.1f%%  attempt %d\n", link, name,
						float64(sim.DowntimeNS)/1e6, float64(sock.DowntimeNS)/1e6, 100*dd, sim.PagesSent, sock.PagesSent, 100*dp, attempt)
					if math.Abs(dd) <= 0.10 && math.Abs(dp) <= 0.10 {
						break
					}
				}
				assert.InDelta(t, 0, dd, 0.10, "downtime differs from the simulator's")
				assert.InDelta(t, 0, dp, 0.10, "pages sent differ from the simulator's")
			})
		}
	}
	t.Logf("sim vs socket at 100 Mbit/s:\n%s", table.String())
}

func rel(got, want int64) float64 { return float64(got-want) / float64(want) }

func fdList() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+"="+l)
	}
	return strings.Join(out, " ")
}

// TestVariantsAgreeWithSim covers the engine paths the default policies
// leave cold: a per-round rate cap below the link (QEMU max-bandwidth), an
// emulated RTT, and workload throttling (QEMU auto-converge) slowing the
// trace clock.
func TestVariantsAgreeWithSim(t *testing.T) {
	if testing.Short() {
		t.Skip("several seconds of real-time runs; skipped with -short")
	}
	hot := hotColdTrace(t, 2048, 300, 256, 6, 2)
	// 300 hot and 50 cold pages per 10 ms epoch: more than QEMU's live
	// rounds can keep up with, so auto-converge throttles (with a 200 ms
	// check period and 20% steps it converges in about 4 s).
	heavy := hotColdTrace(t, 2048, 300, 300, 50, 3)
	tests := []struct {
		name   string
		tr     *replay.Trace
		alg    string
		params []string
		rtt    time.Duration
	}{
		{"qemu capped at 6MiB/s", hot, "qemu-precopy", []string{"max_bandwidth", "6291456"}, 0},
		{"xen-v2 with 5ms rtt", hot, "xen-v2", nil, 5 * time.Millisecond},
		{"microwiper with 5ms rtt", hot, "microwiper", nil, 5 * time.Millisecond},
		{"qemu auto-converge", heavy, "qemu-precopy", []string{"auto_converge", "true", "sync_period", "200ms", "throttle_increment", "20"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alg := func() algorithms.Algorithm {
				a := newAlg(t, tc.alg)
				for i := 0; i < len(tc.params); i += 2 {
					require.NoError(t, algorithms.Set(a, tc.params[i], tc.params[i+1]))
				}
				return a
			}
			cfg := config(100e6)
			cfg.Link.RTTNS = int64(tc.rtt)
			sim, err := replay.Sim{}.Run(context.Background(), tc.tr, alg(), cfg)
			require.NoError(t, err)
			autoConverge := tc.params != nil && tc.params[0] == "auto_converge"
			if autoConverge {
				require.Positive(t, sim.Slowdown, "the trace must make auto-converge throttle")
			}
			// A real-time run on a shared machine can lose the CPU at the
			// moment a policy decides; such an attempt is logged and the
			// run measured again, up to three attempts.
			var dd, dp, dt, slowdown float64
			for attempt := 1; attempt <= 3; attempt++ {
				sock, err := Engine{Link: LinkConfig{Kind: LinkLoopback}}.Run(context.Background(), tc.tr, alg(), cfg)
				require.NoError(t, err)
				require.Zero(t, sock.LostPages)
				dd, dp, dt, slowdown = rel(sock.DowntimeNS, sim.DowntimeNS), rel(sock.PagesSent, sim.PagesSent), rel(sock.TotalNS, sim.TotalNS), sock.Slowdown
				t.Logf("attempt %d: downtime sim %.1f ms socket %.1f ms (%+.1f%%), pages sim %d socket %d (%+.1f%%), total sim %.1f ms socket %.1f ms (%+.1f%%), slowdown sim %.3f socket %.3f",
					attempt, float64(sim.DowntimeNS)/1e6, float64(sock.DowntimeNS)/1e6, 100*dd, sim.PagesSent, sock.PagesSent, 100*dp,
					float64(sim.TotalNS)/1e6, float64(sock.TotalNS)/1e6, 100*dt, sim.Slowdown, sock.Slowdown)
				if math.Abs(dd) <= 0.10 && math.Abs(dp) <= 0.10 && math.Abs(dt) <= 0.05 && (!autoConverge || slowdown > 0) {
					break
				}
			}
			if autoConverge {
				assert.Positive(t, slowdown, "throttling must slow the socket engine's trace clock")
			}
			assert.InDelta(t, 0, dd, 0.10, "downtime differs from the simulator's")
			assert.InDelta(t, 0, dp, 0.10, "pages sent differ from the simulator's")
			assert.InDelta(t, 0, dt, 0.05, "total time differs from the simulator's")
		})
	}
}

// TestForcedStop: a migration that never converges (QEMU capped below the
// hot set's rate) is stopped at the simulator's bound, marked ForcedStop,
// and still loses nothing.
func TestForcedStop(t *testing.T) {
	tr := hotColdTrace(t, 2048, 300, 256, 6, 2)
	a := newAlg(t, "qemu-precopy")
	require.NoError(t, algorithms.Set(a, "max_bandwidth", "4194304"))
	cfg := config(100e6)
	cfg.MaxNS = int64(700 * time.Millisecond)
	res, err := Engine{Link: LinkConfig{Kind: LinkLoopback}}.Run(context.Background(), tr, a, cfg)
	require.NoError(t, err)
	assert.True(t, res.ForcedStop)
	assert.Zero(t, res.LostPages)
	assert.Less(t, res.TotalNS, int64(2*time.Second))
}
