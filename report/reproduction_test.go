package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// claimSet: one trace at two links, ten start times each. xen-precopy's
// downtime is 100 ms + rep, pages 1000 + rep. At 100 Mbit the default
// reading has 40% of it (-60%) and 900 pages: the claim holds; the
// held-final variant has 60% (-40%): it does not. At 1 Gbit the default
// has 45% but sends more pages (1100): it does not hold; held-final has
// 30% and 800 pages: it holds. The oracle has 10%.
func claimSet() *Set {
	s := &Set{Rounds: map[string][]Round{}, Curves: map[string][]CurvePoint{}}
	type a struct {
		name  string
		down  [2]float64 // fraction of xen's downtime at 100 Mbit, 1 Gbit
		pages [2]int64
	}
	for bi, bw := range []int64{100e6, 1e9} {
		for _, al := range []a{
			{"xen-precopy", [2]float64{1, 1}, [2]int64{1000, 1000}},
			{"microwiper", [2]float64{0.4, 0.45}, [2]int64{900, 1100}},
			{"microwiper/held-final", [2]float64{0.6, 0.3}, [2]int64{900, 800}},
			{"oracle", [2]float64{0.1, 0.1}, [2]int64{500, 500}},
		} {
			for rep := int64(0); rep < 10; rep++ {
				down := float64(100e6+rep*1e6) * al.down[bi]
				s.Runs = append(s.Runs, Run{RunID: fmt.Sprint(al.name, bw, rep), Trace: "wws", TraceID: "t", Algorithm: al.name, Params: "{}",
					Engine: "sim", Link: "sim", BandwidthBps: bw, RTTNS: 1e6, DirtyModel: "continuous", Seed: 1, Rep: rep,
					DowntimeNS: int64(down), PagesSent: al.pages[bi] + rep})
			}
		}
	}
	return s
}

func TestClaims(t *testing.T) {
	g := group(claimSet())
	cs := claimRows(g)
	require.Len(t, cs, 4, "two Microwiper labels at two links; the oracle and the baseline are not claims")
	got := map[string]bool{}
	for _, c := range cs {
		got[fmt.Sprintf("%s@%s", c.Label, fmtBw(c.Scenario.BandwidthBps))] = c.Holds
		assert.Equal(t, 10, c.Rel.Downtime.N)
		assert.True(t, c.Rel.DowntimeSig, "%s: every start differs alike", c.Label)
	}
	assert.Equal(t, map[string]bool{
		"microwiper@100Mbit": true, "microwiper/held-final@100Mbit": false,
		"microwiper@1Gbit": false, "microwiper/held-final@1Gbit": true,
	}, got)
	for _, c := range cs {
		if c.Label == "microwiper" && c.Scenario.BandwidthBps == 100e6 {
			assert.InDelta(t, -60, c.Rel.Downtime.Median, 1e-9)
		}
	}
}

func TestReproductionDocument(t *testing.T) {
	dir := t.TempDir()
	opt := ReproductionOptions{Path: filepath.Join(dir, "REPRODUCTION.md"), FigDir: filepath.Join(dir, "docs", "reproduction"), Command: "make reproduce"}
	require.NoError(t, WriteReproduction(claimSet(), opt))
	b, err := os.ReadFile(opt.Path)
	require.NoError(t, err)
	md := string(b)
	assert.Contains(t, md, "in **2 of 2** workload × bandwidth cells under at least one variant, and in **1** under the default reading")
	assert.Contains(t, md, "microwiper (1), microwiper/held-final (1)")
	assert.Contains(t, md, "| wws | 100Mbit | 104 [101, 108] | -90.0%† |")
	assert.Contains(t, md, "| microwiper/held-final | wws | 1Gbit | 10 | -70.0%† | -19.9%† [-20.0%, -19.8%] | **yes** |")
	assert.Contains(t, md, "](docs/reproduction/claim.svg)")
	assert.Contains(t, md, "Settings: dirty reading continuous; RTT 1ms")
	for _, f := range []string{"claim", "claim-cdf"} {
		for _, ext := range formats {
			assert.FileExists(t, filepath.Join(opt.FigDir, f+"."+ext))
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left behind", e.Name())
	}
	_, _, err = Reproduction(&Set{Runs: claimSet().Runs[:10]}, opt)
	assert.ErrorContains(t, err, "no Microwiper run has a xen-precopy run")
}
