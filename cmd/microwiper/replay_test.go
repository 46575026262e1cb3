package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeReplayTrace writes a small writable-working-set trace: 512 pages,
// 3 s in 100 ms epochs, pages 0..31 written every epoch and a rotating
// handful of others.
func writeReplayTrace(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 512, EpochNS: int64(100 * time.Millisecond),
		Backend: tracefmt.BackendSynthetic, Workload: "replay_test"}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	for e := int64(1); e <= 30; e++ {
		var ps []int64
		for p := int64(0); p < 32; p++ {
			ps = append(ps, p)
		}
		for k := int64(0); k < 5; k++ {
			ps = append(ps, 64+(e*37+k*91)%448)
		}
		ps = sortUnique(ps)
		require.NoError(t, w.WriteEpoch(e*int64(100*time.Millisecond), ps, nil))
	}
	require.NoError(t, w.Close())
	return path
}

func sortUnique(ps []int64) []int64 {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j] < ps[j-1]; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}

var benchLine = regexp.MustCompile(`^BenchmarkMigrate/trace=small/alg=[a-z0-9-]+/bw=(100Mbit|1Gbit)/rtt=1000000ns 1 \d+ ns/op \d+\.\d{3} downtime-ms \d+ pages-sent \d+ bytes-sent \d+ rounds [01] forced-stop$`)

func TestReplayCLI(t *testing.T) {
	trace := writeReplayTrace(t)
	out := filepath.Join(t.TempDir(), "out")
	res := execBinary(t, "", "replay", "-engine", "sim", "-alg", "all", "-bw", "100Mbit,1Gbit", "-rtt", "1ms", "-out", out, trace)
	require.Equal(t, 0, res.code, res.stderr)
	table, bench, ok := strings.Cut(res.stdout, "\n\n")
	require.True(t, ok, "table and benchmark lines are separated by a blank line:\n%s", res.stdout)
	checkGolden(t, "replay_table.golden", table+"\n")
	lines := strings.Split(strings.TrimSpace(bench), "\n")
	require.Len(t, lines, 2*len(algorithms.Names()))
	for _, l := range lines {
		assert.Regexp(t, benchLine, l)
	}
	d, err := results.Read(out)
	require.NoError(t, err)
	runs := d.Runs
	require.Len(t, runs, 2*len(algorithms.Names()))
	for _, r := range runs {
		assert.Equal(t, "small", r.Trace)
		assert.Equal(t, "sim", r.Engine)
		assert.Zero(t, r.LostPages)
	}
	assert.GreaterOrEqual(t, len(d.Rounds), len(runs))
	sum := setFile(t, out, "summary-*.json")
	assert.Contains(t, string(sum), `"algorithm": "microwiper"`)
}

// TestReplayDeterministic: two runs write byte-identical result files.
func TestReplayDeterministic(t *testing.T) {
	trace := writeReplayTrace(t)
	var dirs [2]string
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), "out")
		res := execBinary(t, "", "replay", "-alg", "all", "-bw", "100Mbit", "-dirty", "once", "-param", "microwiper.stripe_pages=4", "-out", dirs[i], trace)
		require.Equal(t, 0, res.code, res.stderr)
	}
	for _, f := range []string{"runs-*.parquet", "rounds-*.parquet", "bench-*.txt", "summary-*.json"} {
		assert.True(t, bytes.Equal(setFile(t, dirs[0], f), setFile(t, dirs[1], f)), "%s differs", f)
	}
}

// setFile returns the bytes of the one file matching pattern in dir.
func setFile(t *testing.T, dir, pattern string) []byte {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(t, err)
	require.Len(t, m, 1, pattern)
	b, err := os.ReadFile(m[0])
	require.NoError(t, err)
	return b
}

func TestReplayErrors(t *testing.T) {
	trace := writeReplayTrace(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no trace", []string{"replay"}, 2, "no trace given"},
		{"bare bandwidth", []string{"replay", "-bw", "100", trace}, 2, `-bw: "100" has no known unit`},
		{"unknown alg", []string{"replay", "-alg", "fastest", trace}, 2, `unknown algorithm "fastest"`},
		{"unknown engine", []string{"replay", "-engine", "warp", trace}, 2, `-engine "warp"`},
		{"unknown param", []string{"replay", "-param", "microwiper.stripes=4", trace}, 2, `unknown parameter "stripes"`},
		{"param syntax", []string{"replay", "-param", "stripe_pages=4", trace}, 2, "want alg.key=value"},
		{"param type", []string{"replay", "-param", "microwiper.order=maybe", trace}, 2, "want true or false"},
		{"param for absent alg", []string{"replay", "-alg", "xen-v2", "-param", "microwiper.order=false", trace}, 2, "not in -alg"},
		{"bad dirty", []string{"replay", "-dirty", "sometimes", trace}, 2, "want continuous, once, end or exact"},
		{"bad rtt", []string{"replay", "-rtt", "1", trace}, 2, `-rtt: "1" is not a duration`},
		{"memory too small", []string{"replay", "-memory", "4KiB", trace}, 2, "smaller than the trace"},
		{"bad speed", []string{"replay", "-speed", "0", trace}, 2, "-speed 0"},
		{"missing file", []string{"replay", filepath.Join(t.TempDir(), "nope.parquet")}, 1, "open trace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := execBinary(t, "", tc.args...)
			assert.Equal(t, tc.code, res.code, res.stderr)
			assert.Contains(t, res.stderr, tc.msg)
			assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one-line error: %q", res.stderr)
		})
	}
}

// TestReplayMemoryGrows: -memory adds untouched pages that must still be
// sent once: stop-and-copy sends exactly memory/page size pages.
func TestReplayMemoryGrows(t *testing.T) {
	trace := writeReplayTrace(t)
	out := filepath.Join(t.TempDir(), "out")
	res := execBinary(t, "", "replay", "-alg", "stop-and-copy", "-memory", "4MiB", "-out", out, trace)
	require.Equal(t, 0, res.code, res.stderr)
	d, err := results.Read(out)
	require.NoError(t, err)
	runs := d.Runs
	require.Len(t, runs, 1)
	assert.Equal(t, int64(1024), runs[0].PagesSent)
}

func TestAlgorithmsCLI(t *testing.T) {
	res := execBinary(t, "", "algorithms")
	require.Equal(t, 0, res.code, res.stderr)
	checkGolden(t, "algorithms.golden", res.stdout)
	for _, n := range algorithms.Names() {
		assert.Contains(t, res.stdout, n+": ")
	}
	res = execBinary(t, "", "algorithms", "nope")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, `unknown algorithm "nope"`)
}

// TestReplayExamples runs every example line of replay and algorithms on a
// small generated trace named as the examples name it, so the -h text
// cannot go stale.
func TestReplayExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the documented examples end to end: skipped under -short")
	}
	dir := t.TempDir()
	res := execBinary(t, dir, "trace", "gen", "-kind", "wws", "-pages", "4096", "-duration", "5s", "-o", "trace.parquet")
	require.Equal(t, 0, res.code, res.stderr)
	for _, c := range []command{replayCommand, algorithmsCommand} {
		for _, line := range strings.Split(strings.TrimSpace(c.example), "\n") {
			args := splitExample(t, line)
			require.Equal(t, "microwiper", args[0], line)
			res := execBinary(t, dir, args[1:]...)
			require.Equal(t, 0, res.code, "%s\nstderr: %s", line, res.stderr)
		}
	}
	_, err := results.Read(filepath.Join(dir, "out", "run1"))
	require.NoError(t, err)
}

// TestReplayCapVersusLink: QEMU's max-bandwidth (the live-round cap) and
// -bw (the link) are told apart: the table shows both, and a cap at or
// above the link is warned about, since the cap then never binds.
func TestReplayCapVersusLink(t *testing.T) {
	trace := filepath.Join("..", "..", "traces", "vm", "idle-rep1.parquet")
	cases := []struct {
		name    string
		args    []string
		warn    bool
		capCell string
	}{
		{"cap given as the link", []string{"-bw", "40MB/s"}, true, "128MiB/s"},
		{"cap below the link", []string{"-bw", "1Gbit", "-param", "qemu-precopy.max_bandwidth=16777216"}, false, "16MiB/s"},
		{"cap above the link", []string{"-bw", "100Mbit", "-param", "qemu-precopy.max_bandwidth=20000000"}, true, "20MB/s"},
		{"defaults on both sides", nil, false, "128MiB/s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"replay", "-alg", "qemu-precopy", "-bench=false"}, c.args...)
			res := execBinary(t, "", append(args, trace)...)
			require.Equal(t, 0, res.code, res.stderr)
			assert.Equal(t, c.warn, strings.Contains(res.stderr, "at or above the link"), "stderr: %s", res.stderr)
			assert.Contains(t, res.stdout, "live cap")
			assert.Contains(t, res.stdout, c.capCell)
		})
	}
}

// TestReplaySpeedGuest: -speed guest replays a trace at its recorded
// guest_slowdown, exactly as -speed with that number does; a trace that
// records none is refused before any run, with the fix in the message.
func TestReplaySpeedGuest(t *testing.T) {
	dir := t.TempDir()
	plain := writeReplayTrace(t)
	slow := filepath.Join(dir, "slow.parquet")
	w, err := tracefmt.Create(slow, tracefmt.Header{PageSize: 4096, Pages: 512, EpochNS: int64(100 * time.Millisecond),
		Backend: tracefmt.BackendSynthetic, Workload: "replay_test", GuestSlowdown: 4}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	r, err := tracefmt.Open(plain)
	require.NoError(t, err)
	for r.Scan() {
		require.NoError(t, w.WriteEpoch(r.Epoch().TNS, r.Epoch().Pages, nil))
	}
	require.NoError(t, r.Err())
	r.Close()
	require.NoError(t, w.Close())

	run := func(speed string) results.Run {
		out := filepath.Join(dir, "out-"+speed)
		res := execBinary(t, "", "replay", "-alg", "xen-precopy", "-bw", "100Mbit", "-speed", speed, "-out", out, slow)
		require.Equal(t, 0, res.code, res.stderr)
		d, err := results.Read(out)
		require.NoError(t, err)
		require.Len(t, d.Runs, 1)
		return d.Runs[0]
	}
	guest, four, one := run("guest"), run("4"), run("1")
	assert.Equal(t, four.PagesSent, guest.PagesSent)
	assert.Equal(t, four.TotalNS, guest.TotalNS)
	assert.NotEqual(t, one.PagesSent, guest.PagesSent, "the trace's writes come four times as fast")
	assert.Equal(t, 4.0, guest.Speed, "the run records the speed it played at")
	assert.Equal(t, 1.0, one.Speed)
	res := execBinary(t, "", "replay", "-alg", "xen-precopy", "-bw", "100Mbit", "-speed", "guest", slow)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stdout, "slow at speed 4", "the table's settings say the speed")

	// An experiment file says it the same way.
	exp := filepath.Join(dir, "exp.json")
	require.NoError(t, os.WriteFile(exp, []byte(`{"experiments": [{"name": "slow", "traces": ["slow.parquet"],
	  "replay": ["-alg", "xen-precopy", "-bw", "100Mbit", "-speed", "guest"]}]}`), 0o644))
	res = execBinary(t, dir, "run", "--out", "run-out", exp)
	require.Equal(t, 0, res.code, res.stderr)
	d, err := results.Read(filepath.Join(dir, "run-out"))
	require.NoError(t, err)
	require.Len(t, d.Runs, 1)
	assert.Equal(t, guest.PagesSent, d.Runs[0].PagesSent)

	res = execBinary(t, "", "replay", "-speed", "guest", slow, plain)
	assert.Equal(t, 2, res.code, res.stderr)
	assert.Contains(t, res.stderr, "records no guest slowdown")
	assert.Contains(t, res.stderr, plain)
	assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one-line error: %q", res.stderr)
	res = execBinary(t, "", "replay", "-speed", "fast", plain)
	assert.Equal(t, 2, res.code, res.stderr)
	assert.Contains(t, res.stderr, `-speed "fast"`)
}
