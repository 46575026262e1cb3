package report

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/results"
)

func TestLoadMergesShards(t *testing.T) {
	runs, rounds := fixtureRuns()
	s, err := Load(shard0, shard1)
	require.NoError(t, err)
	assert.Len(t, s.Runs, len(runs), "every run once")
	assert.Equal(t, 4, s.Duplicates, "the four overlapping runs")
	assert.Zero(t, s.Conflicts)
	assert.Zero(t, s.OrphanRounds)
	n := 0
	for id, rs := range s.Rounds {
		n += len(rs)
		for i := range rs {
			assert.Equal(t, id, rs[i].RunID)
			assert.Equal(t, int64(i+1), rs[i].Round, "rounds sorted, none doubled by the overlap")
		}
	}
	assert.Equal(t, len(rounds), n)

	// The same directory twice is all duplicates.
	s2, err := Load(shard0, shard0)
	require.NoError(t, err)
	s1, err := Load(shard0)
	require.NoError(t, err)
	assert.Equal(t, len(s1.Runs), len(s2.Runs))
	assert.Equal(t, len(s1.Runs), s2.Duplicates)
}

func TestLoadConflictsAndOrphans(t *testing.T) {
	runs, rounds := fixtureRuns()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	changed := append([]Run(nil), runs[:2]...)
	changed[0].DowntimeNS++
	writeResultDir(t, a, runs[:2], rounds[:3])
	writeResultDir(t, b, changed, append([]Round{{RunID: "nobody", Round: 1}}, rounds[:3]...))
	s, err := Load(a, b)
	require.NoError(t, err)
	assert.Equal(t, 2, s.Duplicates)
	assert.Equal(t, 1, s.Conflicts)
	assert.Equal(t, 1, s.OrphanRounds)
	assert.Equal(t, runs[0].DowntimeNS, s.Runs[0].DowntimeNS, "first directory wins")
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	noRounds := filepath.Join(dir, "norounds")
	runs, _ := fixtureRuns()
	writeResultDir(t, noRounds, runs[:3], nil)
	s, err := Load(noRounds)
	require.NoError(t, err, "rounds.parquet is optional")
	assert.Empty(t, s.Rounds)

	bad := runs[:1]
	bad[0].BandwidthBps = 0
	zeroBW := filepath.Join(dir, "zerobw")
	writeResultDir(t, zeroBW, bad, nil)

	type narrow struct {
		RunID string `parquet:"run_id"`
	}
	missingCol := filepath.Join(dir, "missingcol")
	require.NoError(t, os.MkdirAll(missingCol, 0o755))
	require.NoError(t, writeParquetFile(filepath.Join(missingCol, "runs.parquet"), []narrow{{"x"}}))

	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.MkdirAll(garbage, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(garbage, "runs.parquet"), []byte("PAR1 not really"), 0o644))

	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))

	for _, c := range []struct {
		name, dir, want string
	}{
		{"missing directory", filepath.Join(dir, "nope"), "no such file"},
		{"a file, not a directory", file, "not a directory"},
		{"no results", t.TempDir(), "no results: want the --out directory"},
		{"zero bandwidth", zeroBW, "row 0: run " + runs[0].RunID + ": bandwidth_bps = 0"},
		{"missing column", missingCol, `missing column "trace"`},
		{"not parquet", garbage, "runs.parquet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err = Load()
	require.Error(t, err)
}

func TestVariantLabels(t *testing.T) {
	s, err := Load(shard0, shard1)
	require.NoError(t, err)
	g := group(s)
	assert.Equal(t, []string{"xen-precopy", "microwiper (order=false)", "microwiper (order=true)", "stop-and-copy"}, g.Labels)
	assert.True(t, g.Varies.Trace)
	assert.True(t, g.Varies.Bandwidth)
	assert.False(t, g.Varies.Engine)
	assert.Len(t, g.Scenarios, 4)
	c := g.Cells[g.Scenarios[0]]["microwiper (order=true)"]
	require.NotNil(t, c)
	assert.Len(t, c.Runs, 6)
	assert.Equal(t, 6, c.Downtime.N)
	assert.Less(t, c.Downtime.Lo, c.Downtime.Hi, "the fixture has spread")
}

func TestLoadOracleCurves(t *testing.T) {
	runs := []Run{
		{RunID: "o1", Trace: "kv", Algorithm: "oracle", Params: "{}", BandwidthBps: 1e9, Link: "1Gbit", DowntimeNS: 2e6},
		{RunID: "o2", Trace: "kv", Algorithm: "oracle", Params: "{}", BandwidthBps: 1e10, Link: "10Gbit", DowntimeNS: 0},
	}
	dir := filepath.Join(t.TempDir(), "oracle")
	writeResultDir(t, dir, runs, nil)
	summary := `{"runs":[
	 {"run_id":"o1","curve":[{"switch_ns":0,"unclean_pages":100,"downtime_ns":400000000},{"switch_ns":100000000,"unclean_pages":5,"downtime_ns":2000000}]},
	 {"run_id":"o2","curve":[{"switch_ns":0,"unclean_pages":100,"downtime_ns":40000000},{"switch_ns":100000000,"unclean_pages":0,"downtime_ns":0}]},
	 {"run_id":"stranger","curve":[{"switch_ns":0,"unclean_pages":1,"downtime_ns":1}]}]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "summary.json"), []byte(summary), 0o644))
	s, err := Load(dir)
	require.NoError(t, err)
	require.Len(t, s.Curves, 2, "curves of runs that are in runs.parquet only")
	assert.Equal(t, int64(2000000), s.Curves["o1"][1].DowntimeNS)
	md, err := markdown(s, nil, Options{OutDir: "unused"})
	require.NoError(t, err)
	assert.Contains(t, md, "![oracle](oracle.svg)")
	f := oracleFigure(s, group(s))
	require.NotNil(t, f)
	png, err := f.Render("png")
	require.NoError(t, err)
	assert.Greater(t, len(png), 1000)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "summary.json"), []byte("{"), 0o644))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "summary.json")
}

func TestLoadEmptyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "empty")
	writeResultDir(t, dir, []Run{}, []Round{})
	s, err := Load(dir)
	require.NoError(t, err)
	assert.Empty(t, s.Runs)
	assert.Empty(t, s.Rounds)
}

// TestDistinctRunsBothReported: two runs that differ only in link kind, or
// only in the trace's content behind one name (a/redis.parquet and
// b/redis.parquet), have different run_ids and both reach the report's
// tables, each under its own name.
func TestDistinctRunsBothReported(t *testing.T) {
	base := Run{RunID: "r1", Trace: "redis", TraceID: "aaaaaaaa11", Algorithm: "xen-precopy", Params: "{}",
		Engine: "socket", Link: "loopback", BandwidthBps: 1e9, DirtyModel: "continuous", Rounds: 3, PagesSent: 10, DowntimeNS: 2e6}
	for name, c := range map[string]struct {
		other Run
		want  []string
	}{
		"link kind":         {Run{RunID: "r2", Link: "netns", DowntimeNS: 3e6}, []string{"engine socket loopback", "engine socket netns"}},
		"trace of one name": {Run{RunID: "r2", TraceID: "bbbbbbbb22", DowntimeNS: 3e6}, []string{"Trace redis@aaaaaa", "Trace redis@bbbbbb"}},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			o.RunID, o.DowntimeNS = c.other.RunID, c.other.DowntimeNS
			if c.other.Link != "" {
				o.Link = c.other.Link
			}
			if c.other.TraceID != "" {
				o.TraceID = c.other.TraceID
			}
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			require.NoError(t, results.Write(a, []*results.Result{{Run: base}}))
			require.NoError(t, results.Write(b, []*results.Result{{Run: o}}))
			s, err := Load(a, b)
			require.NoError(t, err)
			require.Len(t, s.Runs, 2, "no run dropped as a duplicate")
			require.Len(t, group(s).Scenarios, 2)
			md, err := markdown(s, nil, Options{OutDir: "unused"})
			require.NoError(t, err)
			for _, w := range c.want {
				assert.Contains(t, md, w)
			}
			assert.Contains(t, md, "| 3 | 10 | 0 | 2 |", "the first run's downtime")
			assert.Contains(t, md, "| 3 | 10 | 0 | 3 |", "the second run's downtime")
		})
	}
}
