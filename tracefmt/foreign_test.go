package tracefmt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawRow is one row as another writer might store it: no check on the way
// out, so tests can write what our own Writer refuses.
type rawRow struct {
	TNS    int64 `parquet:"t_ns"`
	Page   int64 `parquet:"page"`
	Writes int32 `parquet:"writes"`
}

// duckRow is the shape DuckDB gives a trace table by default: nullable
// columns, dictionary-encoded, snappy-compressed.
type duckRow struct {
	TNS    *int64 `parquet:"t_ns,optional,dict,snappy"`
	Page   *int64 `parquet:"page,optional,dict,snappy"`
	Writes *int32 `parquet:"writes,optional,dict,snappy"`
}

// metaOptions are the writer options that store h as key-value metadata.
func metaOptions(t testing.TB, h Header, override map[string]string) []parquet.WriterOption {
	t.Helper()
	kv, err := h.Metadata()
	require.NoError(t, err)
	for k, v := range override {
		kv[k] = v
	}
	var opts []parquet.WriterOption
	for k, v := range kv {
		if v != "\x00" { // "\x00" in override drops the key
			opts = append(opts, parquet.KeyValueMetadata(k, v))
		}
	}
	return opts
}

// writeParquet writes rows of any type with the given writer options.
func writeParquet[T any](t testing.TB, path string, rows []T, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := parquet.NewGenericWriter[T](f, opts...)
	_, err = w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

// writeRaw writes rows with h's metadata (changed by override).
func writeRaw(t testing.TB, path string, h Header, rows []rawRow, override map[string]string) {
	t.Helper()
	writeParquet(t, path, rows, metaOptions(t, h, override)...)
}

// sampleRows is a valid trace of 64 pages: initial image, writes at t = 0
// interleaved with it, then epochs.
func sampleRows() []rawRow {
	rows := []rawRow{{0, 0, 0}, {0, 1, 3}, {0, 2, 0}, {0, 5, 0}}
	for tns := int64(100); tns <= 2000; tns += 100 {
		for p := tns / 100 % 7; p < 64; p += 5 {
			rows = append(rows, rawRow{tns, p, int32(1 + p%3)})
		}
	}
	return rows
}

func toDuck(rows []rawRow) []duckRow {
	out := make([]duckRow, len(rows))
	for i := range rows {
		r := rows[i]
		out[i] = duckRow{&r.TNS, &r.Page, &r.Writes}
	}
	return out
}

// epochsOf is what a Reader must yield for rows: the initial image first,
// then each time's written pages.
func epochsOf(rows []rawRow) []Epoch {
	var out []Epoch
	var initial, zero Epoch
	for _, r := range rows {
		switch {
		case r.TNS == 0 && r.Writes == 0:
			initial.Pages, initial.Writes, initial.Initial = append(initial.Pages, r.Page), append(initial.Writes, 0), true
		case r.TNS == 0:
			zero.Pages, zero.Writes = append(zero.Pages, r.Page), append(zero.Writes, r.Writes)
		default:
			if len(out) == 0 || out[len(out)-1].TNS != r.TNS {
				out = append(out, Epoch{TNS: r.TNS})
			}
			e := &out[len(out)-1]
			e.Pages, e.Writes = append(e.Pages, r.Page), append(e.Writes, r.Writes)
		}
	}
	var head []Epoch
	if initial.Initial {
		head = append(head, initial)
	}
	if len(zero.Pages) > 0 {
		head = append(head, zero)
	}
	return append(head, out...)
}

// TestForeignWriters reads traces written the way DuckDB, pyarrow and Spark
// write them: dictionary or plain pages, any codec, row groups of any size,
// several pages per chunk.
func TestForeignWriters(t *testing.T) {
	h := testHeader(64)
	rows := sampleRows()
	want := epochsOf(rows)
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"duckdb: dictionary, snappy, nullable, several row groups", func(t *testing.T, path string) {
			writeParquet(t, path, toDuck(rows), append(metaOptions(t, h, nil), parquet.MaxRowsPerRowGroup(37), parquet.PageBufferSize(64))...)
		}},
		{"duckdb: one row group", func(t *testing.T, path string) {
			writeParquet(t, path, toDuck(rows), metaOptions(t, h, nil)...)
		}},
		{"plain, uncompressed, one row per group", func(t *testing.T, path string) {
			writeParquet(t, path, rows, append(metaOptions(t, h, nil), parquet.MaxRowsPerRowGroup(1))...)
		}},
		{"plain, gzip", func(t *testing.T, path string) {
			writeParquet(t, path, rows, append(metaOptions(t, h, nil), parquet.Compression(&parquet.Gzip), parquet.PageBufferSize(128))...)
		}},
		{"plain dictionary, lz4", func(t *testing.T, path string) {
			type lz4Row struct {
				TNS    int64 `parquet:"t_ns,dict,lz4"`
				Page   int64 `parquet:"page,dict,lz4"`
				Writes int32 `parquet:"writes,dict,lz4"`
			}
			lr := make([]lz4Row, len(rows))
			for i, r := range rows {
				lr[i] = lz4Row(r)
			}
			writeParquet(t, path, lr, append(metaOptions(t, h, nil), parquet.MaxRowsPerRowGroup(50))...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.parquet")
			tc.write(t, path)
			s, err := Check(path)
			require.NoError(t, err)
			assert.EqualValues(t, len(rows), s.Rows)
			assert.True(t, s.Finished, "foreign files lack the marker and count as finished")
			_, got, err := ReadAll(path)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// TestDirectoryOfAnyParquet reads directories the way Spark and DuckDB
// write them: any *.parquet names, read in name order, an epoch may span
// two files, and marker files beside them are ignored.
func TestDirectoryOfAnyParquet(t *testing.T) {
	h := testHeader(64)
	rows := sampleRows()
	want := epochsOf(rows)
	for _, names := range [][]string{
		{"part-00000-5f1c.snappy.parquet", "part-00001-5f1c.snappy.parquet", "part-00002-5f1c.snappy.parquet"},
		{"data_0.parquet", "data_1.parquet", "data_2.parquet"},
		{"seg-999999.parquet", "seg-1000000.parquet", "seg-1000001.parquet"},
	} {
		t.Run(names[0], func(t *testing.T) {
			dir := t.TempDir()
			// Cut mid-epoch on purpose: 10 and 45 are not epoch boundaries.
			cuts := []int{0, 10, 45, len(rows)}
			for i, name := range names {
				writeParquet(t, filepath.Join(dir, name), toDuck(rows[cuts[i]:cuts[i+1]]), metaOptions(t, h, nil)...)
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "_SUCCESS"), nil, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".part-00000.crc"), []byte("x"), 0o644))
			_, got, err := ReadAll(dir)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	t.Run("name order is the reading order", func(t *testing.T) {
		dir := t.TempDir()
		writeParquet(t, filepath.Join(dir, "b.parquet"), rows[:20], metaOptions(t, h, nil)...)
		writeParquet(t, filepath.Join(dir, "a.parquet"), rows[20:], metaOptions(t, h, nil)...)
		err := Validate(dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not sorted by t_ns")
	})
}

// TestForeignChunkBounds keeps the framing check's refusals for chunks
// that point outside the file, now that a dictionary page may start them.
func TestForeignChunkBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.parquet")
	writeParquet(t, path, toDuck(sampleRows()), metaOptions(t, testHeader(64), nil)...)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	md := pf.Metadata()
	cc := &md.RowGroups[0].Columns[1].MetaData
	require.NotZero(t, cc.DictionaryPageOffset, "the test needs a dictionary page")
	assert.NoError(t, checkChunkBounds(pf, st.Size()))
	// Where the last chunk's dictionary outweighs the footer, counting the
	// chunk from its data page runs past the end of the file: DuckDB's
	// files (small footers) hit this.
	var big []rawRow
	for i := int64(1); i <= 5000; i++ {
		big = append(big, rawRow{i * 10, i % 64, int32(i * 7919)})
	}
	bigPath := filepath.Join(t.TempDir(), "big.parquet")
	writeParquet(t, bigPath, toDuck(big), metaOptions(t, testHeader(64), nil)...)
	bf, err := os.Open(bigPath)
	require.NoError(t, err)
	defer bf.Close()
	bst, _ := bf.Stat()
	bpf, err := parquet.OpenFile(bf, bst.Size())
	require.NoError(t, err)
	last := bpf.Metadata().RowGroups[0].Columns[2].MetaData
	require.Greater(t, last.DataPageOffset+last.TotalCompressedSize, bst.Size(), "the case needs a chunk that overruns when counted from its data page")
	s, err := Check(bigPath)
	require.NoError(t, err)
	assert.EqualValues(t, len(big), s.Rows)

	cc.TotalCompressedSize = st.Size()
	assert.ErrorContains(t, checkChunkBounds(pf, st.Size()), "lies outside the file")
	cc.TotalCompressedSize, cc.DictionaryPageOffset, cc.DataPageOffset = 10, 0, 1
	assert.ErrorContains(t, checkChunkBounds(pf, st.Size()), "lies outside the file")
}

// TestRowInvariants is every row check of the reader, one case each, on
// files that another writer could produce.
func TestRowInvariants(t *testing.T) {
	good := []rawRow{{0, 0, 0}, {0, 3, 0}, {100, 1, 1}, {100, 2, 4}, {200, 1, 1}}
	with := func(i int, r rawRow) []rawRow {
		rows := append([]rawRow(nil), good...)
		rows[i] = r
		return rows
	}
	tests := []struct {
		name string
		rows []rawRow
		row  int64
		want string
	}{
		{"negative t_ns", with(0, rawRow{-1, 0, 0}), 0, "t_ns -1 is negative"},
		{"negative page", with(2, rawRow{100, -1, 1}), 2, "page -1 outside the memory of 8 pages"},
		{"page past memory", with(4, rawRow{200, 8, 1}), 4, "page 8 outside the memory of 8 pages"},
		{"negative writes", with(3, rawRow{100, 2, -2}), 3, "writes -2 is negative"},
		{"writes 0 after t 0", with(4, rawRow{200, 1, 0}), 4, "writes 0 at t_ns 200"},
		{"unsorted t_ns", with(4, rawRow{50, 1, 1}), 4, "rows not sorted by t_ns: 50 after 100"},
		{"unsorted page", with(3, rawRow{100, 0, 1}), 3, "rows not sorted by page within t_ns 100: page 0 after 1"},
		{"duplicate row", with(3, rawRow{100, 1, 1}), 3, "duplicate row (t_ns 100, page 1)"},
		{"duplicate at t 0", with(1, rawRow{0, 0, 0}), 1, "duplicate row (t_ns 0, page 0)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.parquet")
			writeRaw(t, path, testHeader(8), tc.rows, map[string]string{KeyRegions: "[]"})
			err := Validate(path)
			var v *Violation
			require.ErrorAs(t, err, &v)
			assert.Equal(t, tc.row, v.Row)
			assert.Contains(t, v.Msg, tc.want)
			assert.Equal(t, path, v.Path)
		})
	}
	t.Run("valid", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "good.parquet")
		writeRaw(t, path, testHeader(8), good, map[string]string{KeyRegions: "[]"})
		require.NoError(t, Validate(path))
	})
	t.Run("null value", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "null.parquet")
		rows := toDuck(good)
		rows[2].Page = nil
		writeParquet(t, path, rows, metaOptions(t, testHeader(8), map[string]string{KeyRegions: "[]"})...)
		assert.ErrorContains(t, Validate(path), "nulls")
	})
}

// TestMetadataAndSchemaChecks is every file-level check: metadata keys and
// values, and the column schema.
func TestMetadataAndSchemaChecks(t *testing.T) {
	rows := []rawRow{{100, 1, 1}}
	tests := []struct {
		name     string
		override map[string]string
		want     string
	}{
		{"no format key", map[string]string{KeyFormat: "\x00"}, "not a microwiper trace"},
		{"other format", map[string]string{KeyFormat: "trace/v9"}, "this build reads trace/v1 only"},
		{"no pages", map[string]string{KeyPages: "\x00"}, "metadata key pages missing"},
		{"pages not a number", map[string]string{KeyPages: "many"}, "not an integer"},
		{"zero pages", map[string]string{KeyPages: "0"}, "want a positive page count"},
		{"page size not a power of two", map[string]string{KeyPageSize: "3000"}, "want a positive power of two"},
		{"zero epoch", map[string]string{KeyEpochNS: "0"}, "want a positive epoch"},
		{"no backend", map[string]string{KeyBackend: ""}, "backend is empty"},
		{"bad start time", map[string]string{KeyStartedAt: "yesterday"}, "not an RFC 3339 time"},
		{"bad regions", map[string]string{KeyRegions: "{"}, "metadata regions"},
		{"overlapping regions", map[string]string{KeyRegions: `[{"first_page":0,"pages":4},{"first_page":2,"pages":4}]`}, "sorted, disjoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.parquet")
			writeRaw(t, path, testHeader(8), rows, tc.override)
			err := Validate(path)
			var v *Violation
			require.ErrorAs(t, err, &v)
			assert.EqualValues(t, -1, v.Row)
			assert.Contains(t, v.Msg, tc.want)
		})
	}
	type noPage struct {
		TNS int64 `parquet:"t_ns"`
	}
	type wideWrites struct {
		TNS    int64 `parquet:"t_ns"`
		Page   int64 `parquet:"page"`
		Writes int64 `parquet:"writes"`
	}
	type narrowPage struct {
		TNS  int64 `parquet:"t_ns"`
		Page int32 `parquet:"page"`
	}
	type repeated struct {
		TNS  int64   `parquet:"t_ns"`
		Page []int64 `parquet:"page,list"`
	}
	h := testHeader(8)
	schemas := []struct {
		name  string
		write func(path string)
		want  string
	}{
		{"missing page", func(p string) { writeParquet(t, p, []noPage{{1}}, metaOptions(t, h, nil)...) }, "column page missing"},
		{"writes INT64", func(p string) { writeParquet(t, p, []wideWrites{{1, 1, 1}}, metaOptions(t, h, nil)...) }, "column writes is INT64, want INT32"},
		{"page INT32", func(p string) { writeParquet(t, p, []narrowPage{{1, 1}}, metaOptions(t, h, nil)...) }, "column page is INT32, want INT64"},
		{"nested page", func(p string) { writeParquet(t, p, []repeated{{1, []int64{1}}}, metaOptions(t, h, nil)...) }, "nested column"},
	}
	for _, tc := range schemas {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.parquet")
			tc.write(path)
			assert.ErrorContains(t, Validate(path), tc.want)
		})
	}
}

// TestSegmentConsistency checks that every later file of a directory
// continues the earlier ones.
func TestSegmentConsistency(t *testing.T) {
	h := testHeader(8)
	tests := []struct {
		name   string
		second map[string]string
		noW    bool
		want   string
	}{
		{"page size", map[string]string{KeyPageSize: "8192"}, false, "page_size 8192 differs from the earlier segments' 4096"},
		{"epoch", map[string]string{KeyEpochNS: "5"}, false, "epoch_ns 5 differs"},
		{"backend", map[string]string{KeyBackend: BackendSoftDirty}, false, `backend "soft-dirty" differs`},
		{"pages shrink", map[string]string{KeyPages: "4", KeyRegions: "[]"}, false, "pages 4 shrinks from the earlier segments' 8"},
		{"writes column", nil, true, "segments disagree on whether the writes column exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRaw(t, filepath.Join(dir, segmentName(0)), h, []rawRow{{100, 1, 1}}, nil)
			second := filepath.Join(dir, segmentName(1))
			if tc.noW {
				type twoCols struct {
					TNS  int64 `parquet:"t_ns"`
					Page int64 `parquet:"page"`
				}
				writeParquet(t, second, []twoCols{{200, 1}}, metaOptions(t, h, nil)...)
			} else {
				writeRaw(t, second, h, []rawRow{{200, 1, 1}}, tc.second)
			}
			_, err := Open(dir)
			var v *Violation
			require.ErrorAs(t, err, &v)
			assert.Equal(t, second, v.Path)
			assert.Contains(t, v.Msg, tc.want)
		})
	}
	t.Run("pages grow", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, filepath.Join(dir, segmentName(0)), h, []rawRow{{100, 1, 1}}, nil)
		writeRaw(t, filepath.Join(dir, segmentName(1)), testHeader(16), []rawRow{{200, 12, 1}}, nil)
		r, err := Open(dir)
		require.NoError(t, err)
		defer r.Close()
		assert.EqualValues(t, 16, r.Header().Pages)
	})
}
