package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

func TestTraceHelpShowsExample(t *testing.T) {
	for _, name := range []string{"trace gen", "trace info", "trace validate", "trace convert"} {
		res := execBinary(t, "", append(strings.Fields(name), "-h")...)
		assert.Equal(t, 0, res.code, name)
		assert.Contains(t, res.stdout, "Example:\n  microwiper "+name+" ", name)
	}
}

func TestTraceGroup(t *testing.T) {
	res := execBinary(t, "", "trace")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "want a subcommand: gen, info, validate or convert")
	res = execBinary(t, "", "trace", "inspect", "x.parquet")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, `unknown subcommand "inspect x.parquet"`)
	res = execBinary(t, "", "help", "trace", "info")
	assert.Equal(t, 0, res.code)
	assert.Contains(t, res.stdout, "Usage: microwiper trace info")
}

func TestTraceGenUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-pages", "100"}, "-o is required"},
		{[]string{"-o", "x.parquet"}, "-pages or -memory is required"},
		{[]string{"-pages", "100", "-memory", "1MiB", "-o", "x.parquet"}, "not both"},
		{[]string{"-memory", "1000", "-o", "x.parquet"}, "whole number"},
		{[]string{"-memory", "lots", "-o", "x.parquet"}, "invalid value"},
		{[]string{"-kind", "zipf", "-pages", "100", "-o", "x.parquet"}, "-kind \"zipf\" unknown"},
		{[]string{"-pages", "100", "-duration", "10ms", "-o", "x.parquet"}, "-duration = 10ms"},
		{[]string{"-pages", "100", "-epoch", "0", "-o", "x.parquet"}, "-epoch = 0"},
		{[]string{"-pages", "100", "-intensity", "-1", "-o", "x.parquet"}, "-intensity = -1"},
		{[]string{"-pages", "100", "-page-size", "1000", "-o", "x.parquet"}, "-page-size = 1000"},
		{[]string{"-pages", "100", "-o", "x.parquet", "extra"}, "unexpected argument"},
	}
	for _, tc := range cases {
		res := execBinary(t, dir, append([]string{"trace", "gen"}, tc.args...)...)
		assert.Equal(t, 2, res.code, "%v: %s", tc.args, res.stderr)
		assert.Contains(t, res.stderr, tc.want, "%v", tc.args)
		assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one-line error: %q", res.stderr)
	}
	_, err := os.Stat(filepath.Join(dir, "x.parquet"))
	assert.True(t, os.IsNotExist(err), "a usage error must not leave a file")
}

func TestTraceGenIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	args := []string{"trace", "gen", "-kind", "phase", "-pages", "2048", "-duration", "3s", "-initial", "0.5", "-seed", "9"}
	for _, name := range []string{"a.parquet", "b.parquet"} {
		res := execBinary(t, dir, append(args, "-o", name)...)
		require.Equal(t, 0, res.code, res.stderr)
		assert.Contains(t, res.stdout, "wrote "+name)
	}
	ha, ea, err := tracefmt.ReadAll(filepath.Join(dir, "a.parquet"))
	require.NoError(t, err)
	hb, eb, err := tracefmt.ReadAll(filepath.Join(dir, "b.parquet"))
	require.NoError(t, err)
	assert.Equal(t, ha, hb)
	assert.Equal(t, ea, eb)
	require.True(t, ea[0].Initial)
	assert.Equal(t, tracefmt.BackendSynthetic, ha.Backend)
	assert.Equal(t, "synthetic:phase pages=2048 duration=3s epoch=100ms intensity=204.8 seed=9 initial=0.5 working-set=256 phase=750ms", ha.Workload)
}

func TestTraceInfoGolden(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		gen  []string
		info []string
	}{
		{"wws", []string{"-kind", "wws", "-pages", "4096", "-duration", "5s"}, nil},
		{"hotcold-initial", []string{"-kind", "hotcold", "-pages", "8192", "-duration", "4s", "-epoch", "50ms", "-initial", "0.25", "-intensity", "20000"}, []string{"-window", "500ms"}},
		{"sweep-merged", []string{"-kind", "sweep", "-pages", "1000", "-duration", "12s", "-intensity", "300"}, []string{"-table-rows", "5"}},
		{"phase-segments", []string{"-kind", "phase", "-pages", "4096", "-duration", "8s", "-phase", "2s", "-segment-rows", "500"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.name + ".parquet"
			res := execBinary(t, dir, append(append([]string{"trace", "gen"}, tc.gen...), "-o", out)...)
			require.Equal(t, 0, res.code, res.stderr)
			res = execBinary(t, dir, append(append([]string{"trace", "info"}, tc.info...), out)...)
			require.Equal(t, 0, res.code, res.stderr)
			checkGolden(t, "trace_info_"+tc.name+".golden", res.stdout)
		})
	}
}

// TestTraceInfoCapturedGolden covers the metadata a capture fills in:
// kernel, start time and the region table.
func TestTraceInfoCapturedGolden(t *testing.T) {
	dir := t.TempDir()
	h := tracefmt.Header{
		PageSize: 4096, Pages: 300, EpochNS: 100e6, Backend: tracefmt.BackendUffdAsync,
		Workload: "redis-server --port 7000", Kernel: "6.18.0",
		StartedAt: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC),
		Regions: []tracefmt.Region{
			{FirstPage: 0, Pages: 100, StartAddr: 0x555555554000, Perms: "rw-p", Path: "[heap]"},
			{FirstPage: 100, Pages: 200, StartAddr: 0x7ffff7a00000, Perms: "rw-p"},
		},
	}
	w, err := tracefmt.Create(filepath.Join(dir, "captured.parquet"), h, tracefmt.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.WriteInitial([]int64{0, 1, 2, 100, 101}))
	for k := int64(1); k <= 25; k++ {
		require.NoError(t, w.WriteEpoch(k*100e6, []int64{k % 3, 100 + k, 250 + k%7}, nil))
	}
	require.NoError(t, w.Close())
	res := execBinary(t, dir, "trace", "info", "captured.parquet")
	require.Equal(t, 0, res.code, res.stderr)
	checkGolden(t, "trace_info_captured.golden", res.stdout)
}

func TestTraceInfoErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.parquet"), []byte("not parquet at all"), 0o644))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "want exactly one trace path"},
		{[]string{"a", "b"}, 2, "want exactly one trace path"},
		{[]string{"-window", "0", "x"}, 2, "-window = 0s"},
		{[]string{"missing.parquet"}, 1, "missing.parquet"},
		{[]string{"junk.parquet"}, 1, "junk.parquet"},
	}
	for _, tc := range cases {
		res := execBinary(t, dir, append([]string{"trace", "info"}, tc.args...)...)
		assert.Equal(t, tc.code, res.code, "%v: %s", tc.args, res.stderr)
		assert.Contains(t, res.stderr, tc.want)
	}
}

// badRow is a trace row written with parquet-go directly, bypassing the
// Writer's checks, so that every kind of broken file can be made.
type badRow struct {
	TNS    int64 `parquet:"t_ns,delta"`
	Page   int64 `parquet:"page,delta"`
	Writes int32 `parquet:"writes,delta"`
}

func goodMeta() map[string]string {
	return map[string]string{
		tracefmt.KeyFormat:   tracefmt.FormatVersion,
		tracefmt.KeyPageSize: "4096",
		tracefmt.KeyPages:    "16",
		tracefmt.KeyEpochNS:  "100",
		tracefmt.KeyBackend:  tracefmt.BackendSynthetic,
		tracefmt.KeyWorkload: "test",
	}
}

func writeRawTrace(t *testing.T, path string, meta map[string]string, rows []badRow) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	var opts []parquet.WriterOption
	for k, v := range meta {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	w := parquet.NewGenericWriter[badRow](f, opts...)
	_, err = w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

// TestTraceValidate has one file per kind of violation: validate must
// name the broken invariant and, for row-level problems, its row.
func TestTraceValidate(t *testing.T) {
	dir := t.TempDir()
	good := []badRow{{0, 1, 0}, {0, 2, 0}, {100, 1, 1}, {100, 5, 2}, {200, 3, 1}}
	with := func(i int, r badRow) []badRow {
		rows := append([]badRow(nil), good...)
		rows[i] = r
		return rows
	}
	metaWith := func(k, v string) map[string]string {
		m := goodMeta()
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		meta map[string]string
		rows []badRow
		raw  []byte // file content instead of meta+rows
		want []string
	}{
		{"unsorted-time", nil, with(4, badRow{50, 3, 1}), nil, []string{"row 4", "not sorted by t_ns"}},
		{"unsorted-page", nil, with(3, badRow{100, 0, 2}), nil, []string{"row 3", "not sorted by page"}},
		{"duplicate", nil, with(3, badRow{100, 1, 2}), nil, []string{"row 3", "duplicate row (t_ns 100, page 1)"}},
		{"page-out-of-range", nil, with(4, badRow{200, 16, 1}), nil, []string{"row 4", "page 16 outside the memory of 16 pages"}},
		{"initial-not-at-zero", nil, with(4, badRow{200, 3, 0}), nil, []string{"row 4", "writes 0 at t_ns 200"}},
		{"negative-time", nil, with(0, badRow{-5, 1, 0}), nil, []string{"row 0", "t_ns -5 is negative"}},
		{"negative-page", nil, with(2, badRow{100, -1, 1}), nil, []string{"row 2", "page -1"}},
		{"negative-writes", nil, with(3, badRow{100, 5, -2}), nil, []string{"row 3", "writes -2 is negative"}},
		{"missing-pages-key", metaWith(tracefmt.KeyPages, ""), good, nil, []string{"metadata key pages missing"}},
		{"missing-format-key", metaWith(tracefmt.KeyFormat, ""), good, nil, []string{"microwiper.format missing"}},
		{"bad-pages-value", metaWith(tracefmt.KeyPages, "lots"), good, nil, []string{"pages = \"lots\": not an integer"}},
		{"bad-page-size", metaWith(tracefmt.KeyPageSize, "3000"), good, nil, []string{"page_size = 3000"}},
		{"bad-epoch", metaWith(tracefmt.KeyEpochNS, "0"), good, nil, []string{"epoch_ns = 0"}},
		{"bad-format-version", metaWith(tracefmt.KeyFormat, "trace/v9"), good, nil, []string{"trace/v9"}},
		{"bad-started-at", metaWith(tracefmt.KeyStartedAt, "yesterday"), good, nil, []string{"started_at"}},
		{"bad-regions", metaWith(tracefmt.KeyRegions, "[{"), good, nil, []string{"regions"}},
		{"not-parquet", nil, nil, []byte("t_ns,page\n1,2\n"), []string{"not-parquet.parquet"}},
		{"empty-file", nil, nil, []byte{}, []string{"empty-file.parquet"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".parquet")
			if tc.raw != nil {
				require.NoError(t, os.WriteFile(path, tc.raw, 0o644))
			} else {
				meta := tc.meta
				if meta == nil {
					meta = goodMeta()
				}
				writeRawTrace(t, path, meta, tc.rows)
			}
			res := execBinary(t, dir, "trace", "validate", tc.name+".parquet")
			assert.Equal(t, 1, res.code, "stdout %q stderr %q", res.stdout, res.stderr)
			require.True(t, strings.HasPrefix(res.stdout, "FAIL "), "stdout %q", res.stdout)
			for _, w := range tc.want {
				assert.Contains(t, res.stdout, w)
			}
			assert.Contains(t, res.stderr, "1 of 1 traces invalid")
		})
	}
	t.Run("truncated", func(t *testing.T) {
		path := filepath.Join(dir, "whole.parquet")
		writeRawTrace(t, path, goodMeta(), good)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "truncated.parquet"), b[:len(b)/2], 0o644))
		res := execBinary(t, dir, "trace", "validate", "truncated.parquet")
		assert.Equal(t, 1, res.code)
		assert.Contains(t, res.stdout, "FAIL ")
	})
	t.Run("good", func(t *testing.T) {
		writeRawTrace(t, filepath.Join(dir, "good.parquet"), goodMeta(), good)
		res := execBinary(t, dir, "trace", "validate", "good.parquet")
		assert.Equal(t, 0, res.code, res.stdout+res.stderr)
		assert.Equal(t, "OK good.parquet (5 rows)\n", res.stdout)
	})
	t.Run("usage", func(t *testing.T) {
		res := execBinary(t, dir, "trace", "validate")
		assert.Equal(t, 2, res.code)
	})
}

func TestSparkline(t *testing.T) {
	assert.Equal(t, "▁▅█  peak 8", sparkline([]float64{0, 4, 8}, 64))
	assert.Equal(t, "▁█  peak 7", sparkline([]float64{0, 0, 6, 8}, 2), "neighbours averaged to fit the width")
	assert.Equal(t, "▁▁  peak 0", sparkline([]float64{0, 0}, 64))
}
