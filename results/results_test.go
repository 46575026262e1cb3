package results

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
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
		Link: "netns", BandwidthBps: 25e8, DirtyModel: "once", Speed: 4.75}}
	return []*Result{a, b}
}

// setFiles maps each file kind of dir's only set to its bytes.
func setFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range setPrefix {
		m, err := filepath.Glob(filepath.Join(dir, f.prefix+"*"+f.ext))
		require.NoError(t, err)
		require.Len(t, m, 1, f.prefix)
		b, err := os.ReadFile(m[0])
		require.NoError(t, err)
		out[f.prefix] = b
	}
	return out
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
	assert.Empty(t, d.Incomplete)

	// The same results give the same bytes.
	dir2 := t.TempDir()
	require.NoError(t, Write(dir2, sample()))
	assert.Equal(t, setFiles(t, dir), setFiles(t, dir2))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 4, "no temporary file left behind")
	bench := setFiles(t, dir)["bench-"]
	assert.Contains(t, string(bench), "BenchmarkMigrate/trace=redis/alg=oracle/bw=1Gbit/rtt=1000000ns 1 9000000 ns/op")
	assert.Contains(t, string(bench), "BenchmarkMigrate/trace=redis/alg=xen-precopy/bw=2500Mbit/link=netns/dirty=once/speed=4.75 1 0 ns/op")

	require.NoError(t, Write(t.TempDir(), nil), "no results, no set")
}

// TestConcurrentWriters: sets written at once into one directory are all
// kept, each whole, and read merged in the order they were written.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &Result{Run: Run{RunID: fmt.Sprintf("r%d", i), Algorithm: "x", BandwidthBps: 1}}
			assert.NoError(t, Write(dir, []*Result{r}))
		}()
	}
	wg.Wait()
	d, err := Read(dir)
	require.NoError(t, err)
	assert.Len(t, d.Sets, 8)
	assert.Len(t, d.Runs, 8)

	// Sequential sets keep their order.
	seq := t.TempDir()
	for i := range 3 {
		require.NoError(t, Write(seq, []*Result{{Run: Run{RunID: fmt.Sprint(i)}}}))
	}
	d, err = Read(seq)
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "1", "2"}, []string{d.Runs[0].RunID, d.Runs[1].RunID, d.Runs[2].RunID})
}

// TestIncompleteAndDamagedSets: a set without its summary (its writer was
// killed, or the disk filled) is left out and named; a set whose files
// disagree is refused.
func TestIncompleteAndDamagedSets(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, sample()))
	require.NoError(t, Write(dir, []*Result{{Run: Run{RunID: "c3"}}}))
	sums, _ := filepath.Glob(filepath.Join(dir, "summary-*.json"))
	require.Len(t, sums, 2)
	require.NoError(t, os.Remove(sums[1]))
	d, err := Read(dir)
	require.NoError(t, err)
	assert.Len(t, d.Runs, 2, "the incomplete set is left out")
	require.Len(t, d.Incomplete, 1)
	assert.Contains(t, sums[1], d.Incomplete[0])

	require.NoError(t, os.Remove(sums[0]))
	_, err = Read(dir)
	assert.ErrorContains(t, err, "no complete results (2 incomplete sets")

	damaged := t.TempDir()
	require.NoError(t, Write(damaged, sample()))
	sums, _ = filepath.Glob(filepath.Join(damaged, "summary-*.json"))
	require.NoError(t, os.WriteFile(sums[0], []byte(`{"runs": [{"run_id": "a1"}]}`), 0o644))
	_, err = Read(damaged)
	assert.ErrorContains(t, err, "a damaged set")
}

// TestLegacyDirectory reads a directory from before sets.
func TestLegacyDirectory(t *testing.T) {
	dir := t.TempDir()
	b, err := encodeParquet([]Run{{RunID: "old"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, RunsFile), b, 0o644))
	d, err := Read(dir)
	require.NoError(t, err)
	assert.Equal(t, "old", d.Runs[0].RunID)
	assert.Nil(t, d.Rounds)
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
	assert.Equal(t, "Migrate/trace=redis/alg=xen-precopy/bw=2500Mbit/link=netns/dirty=once/speed=4.75", BenchName(&rs[1].Run))
	rs[1].Speed = 1
	assert.Equal(t, "Migrate/trace=redis/alg=xen-precopy/bw=2500Mbit/link=netns/dirty=once", BenchName(&rs[1].Run), "at its own speed")
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

// FuzzRead: any bytes as a set's runs, rounds or summary file, or as a
// legacy runs.parquet, are read or refused with an error, never a panic.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	require.NoError(f, Write(dir, sample()))
	kinds := []string{"runs-*.parquet", "rounds-*.parquet", "summary-*.json", RunsFile}
	for i, pattern := range kinds[:3] {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		require.NoError(f, err)
		require.Len(f, m, 1)
		b, err := os.ReadFile(m[0])
		require.NoError(f, err)
		f.Add(uint8(i), b)
		if i == 0 {
			f.Add(uint8(3), b)
		}
	}
	f.Add(uint8(2), []byte(`{"runs":[{"run_id":"x","curve":[{"switch_ns":1}]}]}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		d := t.TempDir()
		require.NoError(t, Write(d, sample()))
		path := filepath.Join(d, RunsFile)
		if k := int(which) % len(kinds); k < 3 {
			m, _ := filepath.Glob(filepath.Join(d, kinds[k]))
			path = m[0]
		}
		require.NoError(t, os.WriteFile(path, data, 0o644))
		_, _ = Read(d)
	})
}

// TestFooterClaimBounded: a small file whose footer claims many rows (a
// 5 KB runs.parquet claiming 10^9 rows killed report with "out of
// memory") is refused before its rows are allocated; rows within the
// bound are read in chunks.
func TestFooterClaimBounded(t *testing.T) {
	rows := make([]Round, 10000)
	for i := range rows {
		rows[i] = Round{RunID: "same", Round: 1}
	}
	path := filepath.Join(t.TempDir(), RoundsFile)
	b, err := encodeParquet(rows)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))

	got, err := ReadRounds(path)
	require.NoError(t, err, "10^4 rows read in chunks of %d", readChunk)
	assert.Equal(t, rows, got)

	old := maxReadBytes
	maxReadBytes = 100 << 10
	defer func() { maxReadBytes = old }()
	_, err = ReadRounds(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "footer claims 10000 rows")
	assert.Regexp(t, `more than the \d+ rows \(0 MiB\) results are read into`, err.Error())
}

// TestReadBeforeSpeed: runs.parquet files written before the speed column
// still read, their runs at speed 1.
func TestReadBeforeSpeed(t *testing.T) {
	var fields []reflect.StructField
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Run]()) {
		if f.Name != "Speed" {
			f.Index, f.Offset = nil, 0
			fields = append(fields, f)
		}
	}
	old := reflect.StructOf(fields)
	row := reflect.New(old).Elem()
	row.FieldByName("RunID").SetString("r1")
	row.FieldByName("Trace").SetString("redis")
	row.FieldByName("BandwidthBps").SetInt(1e9)
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, parquet.SchemaOf(row.Interface()))
	require.NoError(t, w.Write(row.Interface()))
	require.NoError(t, w.Close())
	path := filepath.Join(t.TempDir(), "runs.parquet")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))

	runs, err := ReadRuns(path)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, "r1", runs[0].RunID)
	assert.Zero(t, runs[0].Speed)
	assert.Equal(t, 1.0, runs[0].SpeedOrOne())
	assert.Equal(t, "Migrate/trace=redis/alg=/bw=1Gbit", BenchName(&runs[0]))
}
