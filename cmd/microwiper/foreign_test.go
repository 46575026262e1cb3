package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// duckRow is a trace row the way DuckDB writes a table by default:
// nullable columns, dictionary pages, snappy.
type duckRow struct {
	TNS    *int64 `parquet:"t_ns,optional,dict,snappy"`
	Page   *int64 `parquet:"page,optional,dict,snappy"`
	Writes *int32 `parquet:"writes,optional,dict,snappy"`
}

// writeDuckLike writes rows with DuckDB-like settings, rowGroup rows a
// row group, and the trace metadata of h.
func writeDuckLike(t *testing.T, path string, h tracefmt.Header, rows []badRow, rowGroup int64) {
	t.Helper()
	kv, err := h.Metadata()
	require.NoError(t, err)
	opts := []parquet.WriterOption{parquet.MaxRowsPerRowGroup(rowGroup), parquet.PageBufferSize(256)}
	for k, v := range kv {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	out := make([]duckRow, len(rows))
	for i := range rows {
		r := rows[i]
		out[i] = duckRow{&r.TNS, &r.Page, &r.Writes}
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	w := parquet.NewGenericWriter[duckRow](f, opts...)
	_, err = w.Write(out)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

// TestForeignTracesThroughCLI: traces written with DuckDB's settings, as
// one file and as a DuckDB/Spark-style directory, pass validate, info and
// replay, and replay the same as our own writer's copy.
func TestForeignTracesThroughCLI(t *testing.T) {
	dir := t.TempDir()
	h := tracefmt.Header{PageSize: 4096, Pages: 4096, EpochNS: 100e6, Backend: tracefmt.BackendSynthetic, Workload: "duckdb"}
	var rows []badRow
	for e := int64(1); e <= 50; e++ {
		for p := e % 5; p < 4096; p += 37 {
			rows = append(rows, badRow{e * 100e6, p, int32(1 + p%4)})
		}
	}
	writeDuckLike(t, filepath.Join(dir, "duck.parquet"), h, rows, 1000)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "spark"), 0o755))
	writeDuckLike(t, filepath.Join(dir, "spark", "part-00000-1a2b.snappy.parquet"), h, rows[:777], 300)
	writeDuckLike(t, filepath.Join(dir, "spark", "part-00001-1a2b.snappy.parquet"), h, rows[777:], 300)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "spark", "_SUCCESS"), nil, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "ours"), 0o755))
	w, err := tracefmt.Create(filepath.Join(dir, "ours", "t.parquet"), h, tracefmt.WriterOptions{})
	require.NoError(t, err)
	for i := 0; i < len(rows); {
		j := i
		var pages []int64
		var writes []int32
		for ; j < len(rows) && rows[j].TNS == rows[i].TNS; j++ {
			pages, writes = append(pages, rows[j].Page), append(writes, rows[j].Writes)
		}
		require.NoError(t, w.WriteEpoch(rows[i].TNS, pages, writes))
		i = j
	}
	require.NoError(t, w.Close())

	res := execBinary(t, dir, "trace", "validate", "duck.parquet", "spark")
	require.Equal(t, 0, res.code, res.stdout+res.stderr)
	assert.Contains(t, res.stdout, "OK duck.parquet (")
	assert.Contains(t, res.stdout, "OK spark (")

	res = execBinary(t, dir, "trace", "info", "spark")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stdout, "2 files")
	assert.Contains(t, res.stdout, "status       finished")

	want := execBinary(t, dir, "replay", "ours/t.parquet", "--alg", "xen-precopy,microwiper", "--bw", "100Mbit", "--bench=false")
	require.Equal(t, 0, want.code, want.stderr)
	for _, tr := range []string{"duck.parquet", "spark"} {
		// Flags after the trace, as users type them.
		res := execBinary(t, dir, "replay", tr, "--alg", "xen-precopy,microwiper", "--bw", "100Mbit", "--bench=false")
		require.Equal(t, 0, res.code, res.stderr)
		assert.Equal(t, stripTraceColumn(want.stdout), stripTraceColumn(res.stdout), tr)
	}
}

// stripTraceColumn drops the first field of each table line (the trace
// name), so that tables of differently named copies compare.
func stripTraceColumn(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			out = append(out, strings.Join(f[1:], " "))
		}
	}
	return out
}
