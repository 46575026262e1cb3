package replay

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
	"github.com/microwiper/microwiper/tracefmt"
)

// hotColdTrace is the benchmark workload: a 4 GiB VM (1,048,576 pages)
// over 60 s in 100 ms epochs. A hot set of 1% of memory (41 MiB, in runs of
// 64 pages) is written with probability 1/4 per page per epoch; 1,000
// random pages an epoch are written anywhere. About 2.2 M rows, 4.3 M
// events under the continuous reading. The hot set dirties about 0.8
// Gbit/s, so pre-copy converges at 1 Gbit/s.
var hotColdTrace = sync.OnceValue(func() *Trace {
	const pages = 1 << 20
	tr := NewTrace("hotcold4g", tracefmt.Header{PageSize: 4096, Pages: pages, EpochNS: int64(100 * time.Millisecond), Backend: tracefmt.BackendSynthetic})
	r := rand.New(rand.NewPCG(60, 4))
	hot := make([]bool, pages)
	for n := 0; n < pages/100; {
		start := r.IntN(pages/64) * 64
		for p := start; p < start+64; p++ {
			if !hot[p] {
				hot[p] = true
				n++
			}
		}
	}
	mark := make([]bool, pages)
	var ps []int32
	for e := int64(1); e <= 600; e++ {
		clear(mark)
		for range 1000 {
			mark[r.IntN(pages)] = true
		}
		ps = ps[:0]
		for p := range pages {
			if mark[p] || (hot[p] && r.Uint64()&3 == 0) {
				ps = append(ps, int32(p))
			}
		}
		if err := tr.AddEpoch(e*int64(100*time.Millisecond), ps); err != nil {
			panic(err)
		}
	}
	return tr
})

// BenchmarkMigrate4GiB: CPU time per migration of the 4 GiB hot/cold VM
// at 1 Gbit/s, per policy (target < 50 ms). Also reports the page-events a
// second the run pushed through the simulator.
func BenchmarkMigrate4GiB(b *testing.B) {
	tr := hotColdTrace()
	cfg := Config{Link: Link{Bps: 1e9, HeaderBytes: 16}}
	// QEMU without auto-converge does not converge on this workload (the
	// hot set dirties faster than 300 ms of link time drains) and runs to
	// the engine's cap; the +ac variant turns auto-converge on.
	names := append(algorithms.Names(), "qemu-precopy+ac")
	for _, name := range names {
		b.Run("alg="+name, func(b *testing.B) {
			var res *results.Result
			cpu0 := cpuNS()
			for b.Loop() {
				alg, _ := algorithms.New(strings.TrimSuffix(name, "+ac"))
				if strings.HasSuffix(name, "+ac") {
					_ = algorithms.Set(alg, "auto_converge", "true")
				}
				var err error
				res, err = Sim{}.Run(context.Background(), tr, alg, cfg)
				if err != nil {
					b.Fatal(err)
				}
			}
			cpu := float64(cpuNS()-cpu0) / float64(b.N)
			b.ReportMetric(cpu, "cpu-ns/op")
			b.ReportMetric(float64(res.Events)/cpu*1e3, "Mevents/cpu-s")
			b.ReportMetric(float64(res.DowntimeNS)/1e6, "downtime-ms")
			b.ReportMetric(float64(res.PagesSent), "pages-sent")
		})
	}
}

// BenchmarkApplyEvents: page-events per second through the simulator's
// dirtying loop alone (target >= 100 M/s on one core): every event of the
// 60 s hot/cold trace under the continuous reading (about 32 M).
func BenchmarkApplyEvents(b *testing.B) {
	tr := hotColdTrace()
	var events, cpu int64
	for b.Loop() {
		b.StopTimer()
		s, err := newSim(tr, Config{Link: Link{Bps: 1e9}, Time: TimeModel{Dirty: Continuous, After: Idle}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cpuNS()
		s.log.ApplyUntil(1 << 62)
		cpu += cpuNS() - c0
		events += s.log.Applied()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds()/1e6, "Mevents/s")
	b.ReportMetric(float64(events)/float64(cpu)*1e3, "Mevents/cpu-s")
}
