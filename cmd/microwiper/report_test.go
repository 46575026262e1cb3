package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The report package's fixture result sets: two overlapping shards.
var (
	fixtureShard0 = filepath.Join("..", "..", "report", "testdata", "results", "shard0")
	fixtureShard1 = filepath.Join("..", "..", "report", "testdata", "results", "shard1")
	benchOld      = filepath.Join("..", "..", "report", "testdata", "old.txt")
	benchNew      = filepath.Join("..", "..", "report", "testdata", "new.txt")
)

// TestReportEndToEnd generates a trace, replays it into a result
// directory, and reports on it together with the fixture shards, all
// through the real binary.
func TestReportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a trace and draws every figure: skipped with -short")
	}
	dir := t.TempDir()
	trace := filepath.Join(dir, "small.parquet")
	r := execBinary(t, "", "trace", "gen", "-kind", "wws", "-memory", "16MiB", "-duration", "3s", "-seed", "2", "-o", trace)
	require.Equal(t, 0, r.code, r.stderr)
	res := filepath.Join(dir, "res")
	r = execBinary(t, "", "replay", "-alg", "xen-precopy,microwiper,stop-and-copy", "-bw", "100Mbit,1Gbit", "-rtt", "1ms", "-out", res, trace)
	require.Equal(t, 0, r.code, r.stderr)

	out := filepath.Join(dir, "report")
	r = execBinary(t, "", "report", "-out", out, "-trace", trace, "-rounds-trace", "small", "-rounds-bw", "100Mbit", res, fixtureShard0, fixtureShard1)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "report.md")
	assert.Contains(t, r.stdout, "8 figures", "downtime, pages, total time, rounds, sweep, heatmap, rate CDF, and the CDF of downtime over the fixtures' repetitions")
	assert.Empty(t, r.stderr)

	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	for _, want := range []string{"### Trace small", "### Trace kv", "| 100Mbit | microwiper (order=true) |", "![heatmap-small](heatmap-small.svg)", "4 duplicate rows dropped", "trace small at 100Mbit"} {
		assert.Contains(t, string(md), want)
	}
	for _, f := range []string{"report.html", "downtime.svg", "downtime.png", "downtime.pdf", "sweep.png", "rounds.pdf", "heatmap-small.png", "ratecdf.svg"} {
		st, err := os.Stat(filepath.Join(out, f))
		require.NoError(t, err, f)
		assert.Greater(t, st.Size(), int64(1000), f)
	}

	// The replayed directory compares with itself as unchanged.
	r = execBinary(t, "", "compare", res, res)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "downtime-ms")
	assert.NotContains(t, r.stdout, "only in")
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "Migrate/") {
			assert.Contains(t, l, "0.00%  exact", l)
		}
	}
}

func TestCompareBenchFiles(t *testing.T) {
	r := execBinary(t, "", "compare", benchOld, benchNew)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "skipped", "the malformed line is reported")
	assert.Contains(t, r.stderr, "new.txt:")
	assert.Regexp(t, `Migrate/trace=kv/alg=microwiper/bw=1Gbit\s+30\.1 ± 3%\s+24\.1 ± 2%\s+-20\.22%\s+p=0\.002`, r.stdout)
	assert.Regexp(t, `Migrate/trace=kv/alg=xen-precopy/bw=1Gbit\s+\S+ ± 2%\s+\S+ ± 2%\s+~`, r.stdout)
}

func TestCompareFailWorse(t *testing.T) {
	r := execBinary(t, "", "compare", "-fail-worse", "5", benchOld, benchNew)
	assert.Equal(t, 0, r.code, "new only improves: %s", r.stderr)
	r = execBinary(t, "", "compare", "-fail-worse", "5", benchNew, benchOld)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "1 significant regressions above 5% (-fail-worse), worst Migrate/trace=kv/alg=microwiper/bw=1Gbit downtime-ms +")
	assert.Contains(t, r.stdout, "downtime-ms", "the table is printed before the verdict")
	r = execBinary(t, "", "compare", "-fail-worse", "50", benchNew, benchOld)
	assert.Equal(t, 0, r.code, "under the threshold")
}

func TestReportCompareBadInput(t *testing.T) {
	dir := t.TempDir()
	notBench := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notBench, []byte("hello\n"), 0o644))
	other := filepath.Join(dir, "other.txt")
	require.NoError(t, os.WriteFile(other, []byte("BenchmarkOther 1 5 ns/op\n"), 0o644))
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"report without directories", []string{"report"}, 2, "want at least one result directory"},
		{"report on a missing directory", []string{"report", "-out", dir, filepath.Join(dir, "nope")}, 1, "nope"},
		{"report on a file", []string{"report", "-out", dir, notBench}, 1, "not a directory"},
		{"report with zero stripes", []string{"report", "-stripes", "0", fixtureShard0}, 2, "-stripes"},
		{"report with a bad rounds bandwidth", []string{"report", "-rounds-bw", "fast", fixtureShard0}, 2, "-rounds-bw"},
		{"report on a missing trace", []string{"report", "-out", dir, "-trace", filepath.Join(dir, "t.parquet"), fixtureShard0}, 1, "t.parquet"},
		{"report with a rounds scenario that is absent", []string{"report", "-out", dir, "-rounds-trace", "nosuch", fixtureShard0}, 1, "--rounds-trace"},
		{"compare with one argument", []string{"compare", benchOld}, 2, "want OLD and NEW"},
		{"compare a file without results", []string{"compare", notBench, benchOld}, 1, "no benchmark results"},
		{"compare with nothing in common", []string{"compare", fixtureShard0, other}, 1, "nothing to compare"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := execBinary(t, "", c.args...)
			assert.Equal(t, c.code, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, c.stderr)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one-line error: %q", r.stderr)
		})
	}
}
