package results

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample() []*Result {
	a := &Result{Run: Run{RunID: "a1", Trace: "redis", TraceID: "t1", Algorithm: "oracle", Params: "{}", Engine: "sim",
		Link: "sim", BandwidthBps: 1e9, RTTNS: 1e6, DirtyModel: "continuous", Rounds: 2, PagesSent: 10, BytesSent: 41120,
		DowntimeNS: 5e6, TotalNS: 9e6, ForcedStop: true},
		RoundRows: []Round{{RunID: "a1", Round: 1, DurationNS: 4e6, PagesSent: 8}, {RunID: "a1", Round: 2, StartNS: 4e6, DurationNS: 5e6, PagesSent: 2}},
		Curve:     []CurvePoint{{SwitchNS: 0, Unclean: 10, DowntimeNS: 7e6}, {SwitchNS: 4e6, Unclean: 2, DowntimeNS: 5e6}}}
	b := &Result{Run: Run{RunID: "b2", Trace: "redis", TraceID: "t1", Algorithm: "xen-precopy", Engine: "socket",
		Link: "netns", BandwidthBps: 25e8, DirtyModel: "once"}}
	return []*Result{a, b}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	rs := sample()
	require.NoError(t, Write(dir, rs))
	d, err := Read(dir)
	require.NoError(t, err)
	assert.Equal(t, []Run{rs[0].Run, rs[1].Run}, d.Runs)
	assert.Equal(t, rs[0].RoundRows, d.Rounds)
	assert.Equal(t, map[string][]CurvePoint{"a1": rs[0].Curve}, d.Curves)

	// The same results give the same bytes.
	dir2 := t.TempDir()
	require.NoError(t, Write(dir2, sample()))
	for _, f := range []string{RunsFile, RoundsFile, SummaryFile} {
		x, _ := os.ReadFile(filepath.Join(dir, f))
		y, _ := os.ReadFile(filepath.Join(dir2, f))
		assert.True(t, bytes.Equal(x, y), f)
	}
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 3, "no temporary file left behind")
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "missing")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	_, err = Read(filepath.Join(dir, "file"))
	assert.ErrorContains(t, err, "not a directory")

	// A runs.parquet from before trace_id was a column.
	type oldRun struct {
		RunID string `parquet:"run_id"`
		Trace string `parquet:"trace"`
	}
	old := filepath.Join(dir, "old")
	require.NoError(t, os.MkdirAll(old, 0o755))
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[oldRun](&buf)
	_, err = w.Write([]oldRun{{"x", "y"}})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(filepath.Join(old, RunsFile), buf.Bytes(), 0o644))
	_, err = Read(old)
	assert.ErrorContains(t, err, `missing column "trace_id"`)

	// Garbage.
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.MkdirAll(bad, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bad, RunsFile), []byte("PAR1 not really PAR1"), 0o644))
	_, err = Read(bad)
	assert.ErrorContains(t, err, RunsFile)
}

func TestBenchName(t *testing.T) {
	rs := sample()
	assert.Equal(t, "Migrate/trace=redis/alg=oracle/bw=1Gbit/rtt=1000000ns", BenchName(&rs[0].Run))
	assert.Equal(t, "Migrate/trace=redis/alg=xen-precopy/bw=2500Mbit/link=netns/dirty=once", BenchName(&rs[1].Run))
	var buf bytes.Buffer
	require.NoError(t, WriteBenchLines(&buf, rs[:1]))
	assert.Equal(t, "BenchmarkMigrate/trace=redis/alg=oracle/bw=1Gbit/rtt=1000000ns 1 9000000 ns/op 5.000 downtime-ms 10 pages-sent 41120 bytes-sent 2 rounds 1 forced-stop\n", buf.String())
}

func TestFormatBps(t *testing.T) {
	for bps, want := range map[int64]string{1e9: "1Gbit", 25e8: "2500Mbit", 100e6: "100Mbit", 999: "999bit", 1500: "1500bit", 2e12: "2Tbit"} {
		assert.Equal(t, want, FormatBps(bps))
	}
}

func TestID(t *testing.T) {
	assert.Len(t, ID("a", "b"), 16)
	assert.NotEqual(t, ID("ab", "c"), ID("a", "bc"), "parts are separated")
	assert.Equal(t, ID("a", "b"), ID("a", "b"))
}
