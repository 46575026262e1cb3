package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/microwiper/microwiper/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runFixture writes two small traces and an experiment over them: 2 traces
// x 2 bandwidths x 3 algorithms, plus a block of 2 traces x 1 bandwidth x
// 1 algorithm x 2 repetitions: 16 jobs.
func runFixture(t *testing.T) (dir, exp string) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "traces"), 0o755))
	for i, kind := range []string{"wws", "hotcold"} {
		r := execBinary(t, dir, "trace", "gen", "-kind", kind, "-pages", "2048", "-duration", "2s",
			"-seed", string(rune('1'+i)), "-o", filepath.Join("traces", kind+".parquet"))
		require.Zero(t, r.code, r.stderr)
	}
	exp = filepath.Join(dir, "exp", "e.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(exp), 0o755))
	require.NoError(t, os.WriteFile(exp, []byte(`{"experiments": [
	  {"name": "main", "traces": ["../traces/*.parquet"],
	   "replay": ["-alg", "xen-precopy,microwiper,stop-and-copy", "-bw", "100Mbit,1Gbit"]},
	  {"name": "reps", "traces": ["../traces/*.parquet"], "reps": 2,
	   "replay": ["-alg", "microwiper", "-bw", "1Gbit", "-param", "microwiper.stripe_pages=8"]}
	]}`), 0o644))
	return dir, exp
}

// benchLines returns the benchmark lines of every result set in dir,
// sorted.
func benchLines(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "bench-*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, m)
	var lines []string
	for _, f := range m {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	sort.Strings(lines)
	return lines
}

func TestRunShardsPartitionTheMatrix(t *testing.T) {
	dir, exp := runFixture(t)

	all := execBinary(t, dir, "run", "--list", exp)
	require.Zero(t, all.code, all.stderr)
	jobs := strings.Split(strings.TrimSpace(all.stdout), "\n")
	require.Len(t, jobs, 16)

	var union []string
	for _, shard := range []string{"0/3", "1/3", "2/3"} {
		r := execBinary(t, dir, "run", "--list", "--shard", shard, exp)
		require.Zero(t, r.code, r.stderr)
		union = append(union, strings.Split(strings.TrimSpace(r.stdout), "\n")...)
	}
	sort.Strings(union)
	sorted := append([]string(nil), jobs...)
	sort.Strings(sorted)
	assert.Equal(t, sorted, union, "the shards together list every job exactly once")

	// Running the shards gives the same results as running the whole.
	whole := execBinary(t, dir, "run", "--out", "whole", exp)
	require.Zero(t, whole.code, whole.stderr)
	var shardLines []string
	for i, shard := range []string{"0/2", "1/2"} {
		out := filepath.Join("shards", string(rune('0'+i)))
		r := execBinary(t, dir, "run", "--shard", shard, "--out", out, exp)
		require.Zero(t, r.code, r.stderr)
		shardLines = append(shardLines, benchLines(t, filepath.Join(dir, out))...)
	}
	sort.Strings(shardLines)
	assert.Equal(t, benchLines(t, filepath.Join(dir, "whole")), shardLines)

	// The report merges the shards.
	rep := execBinary(t, dir, "report", "--out", "report", "shards/0", "shards/1")
	require.Zero(t, rep.code, rep.stderr)
	assert.Contains(t, rep.stdout, "16 runs from 2 directories")
}

func TestRunErrors(t *testing.T) {
	dir, exp := runFixture(t)
	write := func(name, body string) string {
		p := filepath.Join(dir, "exp", name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"run", "--out", "o"}, 2, "want one experiment file"},
		{"no out", []string{"run", exp}, 2, "-out is required"},
		{"shard out of range", []string{"run", "--shard", "2/2", "--out", "o", exp}, 2, `"2/2": want i/n`},
		{"shard not a fraction", []string{"run", "--shard", "half", "--out", "o", exp}, 2, "want i/n"},
		{"missing file", []string{"run", "--out", "o", "nope.json"}, 1, "no such file"},
		{"bad json", []string{"run", "--out", "o", write("bad.json", `{"experiments": [`)}, 1, "see 'microwiper run -h'"},
		{"unknown field", []string{"run", "--out", "o", write("field.json", `{"experiments": [{"trace": ["x"]}]}`)}, 1, `unknown field "trace"`},
		{"empty", []string{"run", "--out", "o", write("empty.json", `{"experiments": []}`)}, 1, "no experiments listed"},
		{"glob matches nothing", []string{"run", "--out", "o", write("glob.json", `{"experiments": [{"traces": ["none/*.parquet"], "replay": []}]}`)}, 1, "matches no file"},
		{"bad replay flag", []string{"run", "--out", "o", write("flag.json", `{"experiments": [{"name": "x", "traces": ["../traces/wws.parquet"], "replay": ["-bw", "fast"]}]}`)}, 1, "block 0 (x): replay flags: invalid value \"fast\" for flag -bw"},
		{"replay sets out", []string{"run", "--out", "o", write("out.json", `{"experiments": [{"traces": ["../traces/wws.parquet"], "replay": ["-out", "x"]}]}`)}, 1, "results go to run's --out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := execBinary(t, dir, tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one-line error: %q", r.stderr)
		})
	}
}

// TestRunExamples runs run's documented examples on the repository's
// experiment file and traces, so the -h text cannot go stale.
func TestRunExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the documented examples end to end: skipped under -short")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(repo, "traces"), filepath.Join(dir, "traces")))
	require.NoError(t, os.Symlink(filepath.Join(repo, "experiments"), filepath.Join(dir, "experiments")))
	for _, line := range strings.Split(strings.TrimSpace(runCommand.example), "\n") {
		args := splitExample(t, line)
		require.Equal(t, "microwiper", args[0], line)
		r := execBinary(t, dir, args[1:]...)
		require.Equal(t, 0, r.code, "%s\nstderr: %s", line, r.stderr)
	}
	_, err = results.Read(filepath.Join(dir, "out", "paper"))
	assert.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "out", "report", "report.html"))
}
