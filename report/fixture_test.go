package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
)

// update rewrites golden files and fixtures: go test ./report -update.
var update = flag.Bool("update", false, "rewrite testdata golden files and fixture result sets")

// fixtureRuns builds a small deterministic sweep: two traces, two
// bandwidths, four algorithm variants (microwiper twice, with order off),
// six repetitions each with a little spread, so that intervals are real.
func fixtureRuns() ([]Run, []Round) {
	var runs []Run
	var rounds []Round
	type alg struct {
		name, params string
		down, pages  float64 // downtime ms and pages at 1Gbit on trace kv
		nrounds      int64
	}
	algs := []alg{
		{"xen-precopy", `{"max_rounds":"29","skip":"true"}`, 80, 70000, 5},
		{"microwiper", `{"order":"true","skip":"true","throttle":"true"}`, 30, 67000, 6},
		{"microwiper", `{"order":"false","skip":"true","throttle":"true"}`, 55, 68500, 6},
		{"stop-and-copy", `{}`, 2150, 65536, 1},
	}
	for ti, trace := range []string{"kv", "redis"} {
		for _, bw := range []int64{1e9, 10e9} {
			for ai, a := range algs {
				for rep := int64(0); rep < 6; rep++ {
					scale := 1e9 / float64(bw)
					jitter := 1 + 0.02*float64((rep*7+int64(ai)*3)%5-2)
					if a.name == "stop-and-copy" {
						jitter = 1
					}
					down := a.down * scale * jitter * (1 + 0.5*float64(ti))
					pages := int64(a.pages * (1 + 0.01*float64(rep%3)*float64(ai%2)))
					id := fmt.Sprintf("%s-%s-%d-%d-%d", trace, a.name, ai, bw/1e9, rep)
					r := Run{
						RunID: id, Trace: trace, Algorithm: a.name, Params: a.params, Engine: "sim",
						Link: "sim", TraceID: "id-" + trace, BandwidthBps: bw, DirtyModel: "continuous", Seed: rep, Rep: rep,
						Rounds: a.nrounds, PagesSent: pages, BytesSent: pages * 4112,
						DowntimeNS: int64(down * 1e6), TotalNS: int64(float64(pages*4112*8)/float64(bw)*1e9) + int64(down*1e6),
						RTTNS: 1e6,
						// Two repetitions of xen-precopy on redis at 1 Gbit
						// never converged: the report must say so.
						ForcedStop: trace == "redis" && a.name == "xen-precopy" && bw == 1e9 && rep < 2,
					}
					runs = append(runs, r)
					left := pages
					for k := int64(1); k <= a.nrounds; k++ {
						sent := left
						if k < a.nrounds {
							sent = max(left*3/4, 1)
							if k == 1 {
								sent = 65536
							}
						}
						left -= sent
						rounds = append(rounds, Round{RunID: id, Round: k, StartNS: k * 1e8, DurationNS: 1e8,
							PagesSent: sent, PagesDirtied: sent / 2, PagesSkipped: sent / 10, RemainingDirty: left, ThroughputBps: float64(bw)})
					}
				}
			}
		}
	}
	return runs, rounds
}

// writeResultDir writes runs and rounds as replay does, with parquet-go.
func writeResultDir(t testing.TB, dir string, runs []Run, rounds []Round) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	if runs != nil {
		require.NoError(t, writeParquetFile(filepath.Join(dir, "runs.parquet"), runs))
	}
	if rounds != nil {
		require.NoError(t, writeParquetFile(filepath.Join(dir, "rounds.parquet"), rounds))
	}
}

func writeParquetFile[T any](path string, rows []T) error {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// fixtureShards splits the fixture into two overlapping shards, as two
// slices of a sweep that both ran a few of the same runs.
func fixtureShards() (a, b []Run, ra, rb []Round) {
	runs, rounds := fixtureRuns()
	half := len(runs) / 2
	a, b = runs[:half+4], runs[half:]
	inA := map[string]bool{}
	for _, r := range a {
		inA[r.RunID] = true
	}
	inB := map[string]bool{}
	for _, r := range b {
		inB[r.RunID] = true
	}
	for _, r := range rounds {
		if inA[r.RunID] {
			ra = append(ra, r)
		}
		if inB[r.RunID] {
			rb = append(rb, r)
		}
	}
	return a, b, ra, rb
}

const (
	shard0 = "testdata/results/shard0"
	shard1 = "testdata/results/shard1"
)

// TestFixtures checks that the checked-in result sets are what the
// generator writes (run with -update to regenerate them).
func TestFixtures(t *testing.T) {
	a, b, ra, rb := fixtureShards()
	if *update {
		writeResultDir(t, shard0, a, ra)
		writeResultDir(t, shard1, b, rb)
	}
	tmp := t.TempDir()
	writeResultDir(t, filepath.Join(tmp, "0"), a, ra)
	writeResultDir(t, filepath.Join(tmp, "1"), b, rb)
	for _, c := range []struct{ got, want string }{
		{filepath.Join(tmp, "0"), shard0}, {filepath.Join(tmp, "1"), shard1},
	} {
		for _, f := range []string{"runs.parquet", "rounds.parquet"} {
			got, err := os.ReadFile(filepath.Join(c.got, f))
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join(c.want, f))
			require.NoError(t, err, "run go test ./report -run TestFixtures -update")
			require.True(t, bytes.Equal(got, want), "%s/%s is stale: run go test ./report -run TestFixtures -update", c.want, f)
		}
	}
}

// writeFixtureTrace writes a small trace whose dirtying moves across the
// memory: a hot band that shifts every second, plus a sparse cold
// background.
func writeFixtureTrace(t testing.TB, path string) {
	t.Helper()
	h := tracefmt.Header{PageSize: 4096, Pages: 8192, EpochNS: 100e6, Backend: tracefmt.BackendSynthetic, Workload: "fixture"}
	w, err := tracefmt.Create(path, h, tracefmt.WriterOptions{})
	require.NoError(t, err)
	init := make([]int64, 0, 4096)
	for p := int64(0); p < 4096; p++ {
		init = append(init, p)
	}
	require.NoError(t, w.WriteInitial(init))
	for e := int64(1); e <= 50; e++ {
		band := (e / 10) * 1500
		var pages []int64
		for p := int64(0); p < h.Pages; p++ {
			hot := p >= band && p < band+600 && (p*31+e*17)%3 != 0
			cold := (p*2654435761+e*97)%997 == 0
			if hot || cold {
				pages = append(pages, p)
			}
		}
		require.NoError(t, w.WriteEpoch(e*h.EpochNS, pages, nil))
	}
	require.NoError(t, w.Close())
}
