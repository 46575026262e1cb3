package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// TestTraceConvertRoundTrip: Parquet → CSV → Parquet keeps every row and
// every metadata key, for traces with and without an initial image, and
// for a trace whose initial image and first epoch share t = 0.
func TestTraceConvertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	gens := map[string][]string{
		"hotcold": {"-kind", "hotcold", "-pages", "2048", "-duration", "2s", "-initial", "0.4"},
		"wws":     {"-kind", "wws", "-pages", "1024", "-duration", "1s", "-segment-rows", "100"},
	}
	for name, args := range gens {
		t.Run(name, func(t *testing.T) {
			res := execBinary(t, dir, append(append([]string{"trace", "gen"}, args...), "-o", name+".parquet")...)
			require.Equal(t, 0, res.code, res.stderr)
			res = execBinary(t, dir, "trace", "convert", name+".parquet", name+".csv")
			require.Equal(t, 0, res.code, res.stderr)
			res = execBinary(t, dir, "trace", "convert", name+".csv", name+"-back.parquet")
			require.Equal(t, 0, res.code, res.stderr)
			assert.Empty(t, res.stderr, "metadata comes from the CSV comments: nothing to infer")
			h1, e1, err := tracefmt.ReadAll(filepath.Join(dir, name+".parquet"))
			require.NoError(t, err)
			h2, e2, err := tracefmt.ReadAll(filepath.Join(dir, name+"-back.parquet"))
			require.NoError(t, err)
			assert.Equal(t, h1, h2)
			assert.Equal(t, e1, e2)
		})
	}
	t.Run("initial and writes at t=0", func(t *testing.T) {
		src := filepath.Join(dir, "zero.parquet")
		w, err := tracefmt.Create(src, tracefmt.Header{PageSize: 4096, Pages: 8, EpochNS: 10, Backend: tracefmt.BackendUffdSync, Kernel: "6.18"}, tracefmt.WriterOptions{})
		require.NoError(t, err)
		require.NoError(t, w.WriteInitial([]int64{1, 4}))
		require.NoError(t, w.WriteEpoch(0, []int64{2, 7}, []int32{3, 1}))
		require.NoError(t, w.WriteEpoch(10, []int64{1}, nil))
		require.NoError(t, w.Close())
		res := execBinary(t, dir, "trace", "convert", "zero.parquet", "-")
		require.Equal(t, 0, res.code, res.stderr)
		assert.True(t, strings.HasSuffix(res.stdout, "t_ns,page,writes\n0,1,0\n0,2,3\n0,4,0\n0,7,1\n10,1,1\n"), res.stdout)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "zero.csv"), []byte(res.stdout), 0o644))
		res = execBinary(t, dir, "trace", "convert", "zero.csv", "zero-back.parquet")
		require.Equal(t, 0, res.code, res.stderr)
		h1, e1, err := tracefmt.ReadAll(src)
		require.NoError(t, err)
		h2, e2, err := tracefmt.ReadAll(filepath.Join(dir, "zero-back.parquet"))
		require.NoError(t, err)
		assert.Equal(t, h1, h2)
		assert.Equal(t, e1, e2)
	})
}

// TestTraceConvertForeignCSV: a bare CSV from another tool, without
// metadata comments and with pages unsorted inside an epoch.
func TestTraceConvertForeignCSV(t *testing.T) {
	dir := t.TempDir()
	csv := "t_ns,page\n100,7\n100,3\n300,2\n300,9\n500,0\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.csv"), []byte(csv), 0o644))

	res := execBinary(t, dir, "trace", "convert", "in.csv", "out.parquet")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "inferred -pages 10")
	assert.Contains(t, res.stderr, "inferred -epoch 200ns")
	assert.Contains(t, res.stderr, "assuming -backend uffd-wp-async")
	h, epochs, err := tracefmt.ReadAll(filepath.Join(dir, "out.parquet"))
	require.NoError(t, err)
	assert.EqualValues(t, 10, h.Pages)
	assert.EqualValues(t, 200, h.EpochNS)
	assert.EqualValues(t, 4096, h.PageSize)
	assert.Equal(t, "csv:in.csv", h.Workload)
	require.Len(t, epochs, 3)
	assert.Equal(t, []int64{3, 7}, epochs[0].Pages)
	assert.Equal(t, []int32{1, 1}, epochs[0].Writes)

	res = execBinary(t, dir, "trace", "convert", "-pages", "64", "-epoch", "100ns", "-page-size", "65536", "-backend", "uffd-wp-sync", "-workload", "mytool run", "in.csv", "out2.parquet")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Empty(t, res.stderr)
	h, _, err = tracefmt.ReadAll(filepath.Join(dir, "out2.parquet"))
	require.NoError(t, err)
	assert.Equal(t, tracefmt.Header{PageSize: 65536, Pages: 64, EpochNS: 100, Backend: "uffd-wp-sync", Workload: "mytool run", Regions: []tracefmt.Region{}}, h)

	// From stdin the memory grows with the highest page; comments work.
	res = execBinaryStdin(t, dir, "# epoch_ns=100\n"+csv, "trace", "convert", "-", "grow.parquet")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "inferred -pages 10 from the highest page in -")
	h, epochs3, err := tracefmt.ReadAll(filepath.Join(dir, "grow.parquet"))
	require.NoError(t, err)
	assert.EqualValues(t, 10, h.Pages)
	assert.EqualValues(t, 100, h.EpochNS)
	assert.Equal(t, epochs, epochs3)

	// Stdin works when nothing needs inferring.
	res = execBinaryStdin(t, dir, csv, "trace", "convert", "-pages", "10", "-epoch", "100ns", "-", "stdin.parquet")
	require.Equal(t, 0, res.code, res.stderr)
	_, epochs2, err := tracefmt.ReadAll(filepath.Join(dir, "stdin.parquet"))
	require.NoError(t, err)
	assert.Equal(t, epochs, epochs2)
}

func TestTraceConvertErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, csv string
		flags     []string
		code      int
		want      string
	}{
		{"unsorted-time", "t_ns,page\n200,1\n100,2\n", nil, 1, "line 3: t_ns 100 after 200: sort the rows"},
		{"unsorted-time-flags", "t_ns,page\n200,1\n300,1\n100,2\n", []string{"-pages", "4", "-epoch", "100ns"}, 1, "line 4: t_ns 100 after 300: sort the rows"},
		{"duplicate", "t_ns,page,writes\n100,1,1\n100,2,1\n100,1,4\n", []string{"-epoch", "100ns"}, 1, "line 4: duplicate row (t_ns 100, page 1), first on line 2"},
		{"page-too-big", "t_ns,page\n100,1\n200,70\n", []string{"-pages", "64"}, 1, "line 3: page 70 outside the memory of 64 pages"},
		{"zero-writes-late", "t_ns,page,writes\n0,1,0\n100,2,0\n", []string{"-epoch", "100ns"}, 1, "line 3: writes 0 at t_ns 100"},
		{"syntax", "t_ns,page\n100,x\n", nil, 1, "line 2: page \"x\" is not a non-negative integer"},
		{"no-header", "100,1\n", nil, 1, "line 1: header"},
		{"one-time", "t_ns,page\n100,1\n100,2\n", nil, 1, "pass -epoch"},
		{"no-rows", "t_ns,page\n", []string{"-epoch", "1s"}, 1, "pass -pages"},
		{"bad-meta", "# pages=many\nt_ns,page\n100,1\n200,1\n", nil, 1, "metadata pages = \"many\": not an integer"},
		{"bad-page-size", "t_ns,page\n100,1\n200,1\n", []string{"-page-size", "1000"}, 1, "page_size = 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.name + ".csv"
			require.NoError(t, os.WriteFile(filepath.Join(dir, in), []byte(tc.csv), 0o644))
			args := append(append([]string{"trace", "convert"}, tc.flags...), in, tc.name+".parquet")
			res := execBinary(t, dir, args...)
			assert.Equal(t, tc.code, res.code, res.stderr)
			assert.Contains(t, res.stderr, tc.want)
			_, err := os.Stat(filepath.Join(dir, tc.name+".parquet"))
			assert.True(t, os.IsNotExist(err), "a failed conversion must not leave a trace behind")
		})
	}
	// From stdin there is no first pass: the converting pass must catch
	// the same errors.
	for _, tc := range []struct{ csv, want string }{
		{"t_ns,page\n200,1\n300,1\n100,2\n", "-: line 4: t_ns 100 after 300"},
		{"t_ns,page\n100,1\n100,1\n", "-: line 3: duplicate row (t_ns 100, page 1), first on line 2"},
		{"t_ns,page\n100,1\n100,x\n", "read -: line 3: page \"x\""},
	} {
		res := execBinaryStdin(t, dir, tc.csv, "trace", "convert", "-pages", "4", "-epoch", "100ns", "-", "stdin.parquet")
		assert.Equal(t, 1, res.code, res.stderr)
		assert.Contains(t, res.stderr, tc.want)
		_, err := os.Stat(filepath.Join(dir, "stdin.parquet"))
		assert.True(t, os.IsNotExist(err), "a failed conversion must not leave a trace behind")
	}
	usage := [][]string{
		{"only-one.csv"},
		{"-to", "xml", "a", "b"},
		{"-pages", "5", "a.parquet", "b.csv"},
		{"-", "x.csv"}, // Parquet from stdin
	}
	res := execBinaryStdin(t, dir, "t_ns,page\n1,2\n", "trace", "convert", "-", "x.parquet")
	assert.Equal(t, 2, res.code, res.stderr)
	assert.Contains(t, res.stderr, "CSV on stdin without an epoch_ns comment needs -epoch")
	for i, args := range usage {
		res := execBinary(t, dir, append([]string{"trace", "convert"}, args...)...)
		assert.Equal(t, 2, res.code, "case %d %v: %s", i, args, res.stderr)
	}
}

// TestTraceConvertBrokenTraceToCSV: a trace that breaks an invariant half
// way fails the conversion with the row, and leaves no partial CSV.
func TestTraceConvertBrokenTraceToCSV(t *testing.T) {
	dir := t.TempDir()
	writeRawTrace(t, filepath.Join(dir, "broken.parquet"), goodMeta(), []badRow{{100, 1, 1}, {200, 2, 1}, {150, 3, 1}})
	res := execBinary(t, dir, "trace", "convert", "broken.parquet", "broken.csv")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "row 2: rows not sorted by t_ns")
	_, err := os.Stat(filepath.Join(dir, "broken.csv"))
	assert.True(t, os.IsNotExist(err), "no partial CSV")
}
