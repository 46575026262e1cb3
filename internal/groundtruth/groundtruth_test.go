package groundtruth

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	rep := func(total, down int64, sw float64, bytes, pages int64) Rep {
		return Rep{QEMU: QEMU{Status: "completed", TotalMS: total, DowntimeMS: down, SwitchMS: sw, Transferred: bytes, Normal: pages}}
	}
	strict := Run{Name: "x", Bound: BoundStrict, Reps: []Rep{
		rep(1000, 10, 990, 100e6, 1000), rep(1100, 30, 1070, 102e6, 1010), rep(1050, 20, 1030, 101e6, 1005)}}
	good := Ours{TotalNS: 1040e6, DowntimeNS: 15e6, BytesSent: 100e6, PagesSent: 1000}
	noConv := Run{Name: "n", Bound: BoundNoConvergence, Reps: []Rep{{QEMU: QEMU{Status: "cancelled",
		Events: []Event{{Name: "MIGRATION", Status: "cancelling", AtMS: 12000}}}}}}
	loose := Run{Name: "l", Bound: BoundLoose, Reps: []Rep{rep(20000, 10, 19990, 1, 1)}}
	cases := []struct {
		name string
		run  Run
		ours []Ours
		bad  []string // substrings, one per expected complaint
	}{
		{"strict within", strict, []Ours{good}, nil},
		// Medians: total 1050, switch-over 1030, downtime 20 (10 to 30).
		{"total 6% long", strict, []Ours{{TotalNS: 1113e6, DowntimeNS: 20e6, BytesSent: 100e6, PagesSent: 1000}}, []string{"total time", "switch-over"}},
		{"downtime in QEMU's range", strict, []Ours{{TotalNS: 1040e6, DowntimeNS: 29e6, BytesSent: 100e6, PagesSent: 1000}}, nil},
		{"downtime 11 ms over the range", strict, []Ours{{TotalNS: 1061e6, DowntimeNS: 41e6, BytesSent: 100e6, PagesSent: 1000}}, []string{"downtime"}},
		{"bytes and pages 10% high", strict, []Ours{{TotalNS: 1040e6, DowntimeNS: 15e6, BytesSent: 111e6, PagesSent: 1110}}, []string{"bytes", "pages"}},
		{"no convergence held", noConv, []Ours{{TotalNS: 60e9, ForcedStop: true}}, nil},
		{"converged although QEMU gave up", noConv, []Ours{{TotalNS: 9e9}}, []string{"converged after 9000 ms"}},
		{"loose within 2x", loose, []Ours{{TotalNS: 15e9}}, nil},
		{"loose forced stop", loose, []Ours{{TotalNS: 15e9, ForcedStop: true}}, []string{"factor of 2"}},
		{"loose 3x", loose, []Ours{{TotalNS: 61e9}}, []string{"factor of 2"}},
		// One repetition's replay 10% long, the median's within.
		{"strict median of replays", strict, []Ours{good, {TotalNS: 1160e6, DowntimeNS: 15e6, BytesSent: 100e6, PagesSent: 1000}, good}, nil},
		{"strict median of replays out", strict, []Ours{good, {TotalNS: 1160e6, DowntimeNS: 15e6, BytesSent: 100e6, PagesSent: 1000},
			{TotalNS: 1160e6, DowntimeNS: 15e6, BytesSent: 100e6, PagesSent: 1000}}, []string{"total time", "switch-over"}},
		{"one replay of several converged too soon", noConv, []Ours{{TotalNS: 60e9, ForcedStop: true}, {TotalNS: 9e9}}, []string{"converged after 9000 ms"}},
		{"no replay", strict, nil, []string{"no replay"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.run.Check(c.ours...)
			assert.Len(t, got, len(c.bad), "%q", got)
			for i := range min(len(got), len(c.bad)) {
				assert.Contains(t, got[i], c.bad[i])
			}
		})
	}
}

func TestStat(t *testing.T) {
	r := Run{Reps: []Rep{{QEMU: QEMU{TotalMS: 30}}, {QEMU: QEMU{TotalMS: 10}}, {QEMU: QEMU{TotalMS: 20}}, {QEMU: QEMU{TotalMS: 40}}}}
	s := r.Of(func(q QEMU) float64 { return float64(q.TotalMS) })
	assert.Equal(t, Stat{Median: 25, Min: 10, Max: 40}, s)
	assert.InDelta(t, 1.2, s.Spread(), 1e-9)
}
