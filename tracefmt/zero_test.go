package tracefmt

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zeroRawRow is a row with the zero column, as plain parquet-go (or any
// other writer) stores it.
type zeroRawRow struct {
	TNS    int64 `parquet:"t_ns"`
	Page   int64 `parquet:"page"`
	Writes int32 `parquet:"writes"`
	Zero   bool  `parquet:"zero"`
}

// withZeros gives every epoch of a random trace a zero column: random
// flags on written pages, false in the initial image.
func withZeros(rng *rand.Rand, epochs []Epoch) {
	for i := range epochs {
		e := &epochs[i]
		e.Zero = make([]bool, len(e.Pages))
		if e.Initial {
			continue
		}
		for j := range e.Zero {
			e.Zero[j] = rng.IntN(4) == 0
		}
	}
}

// TestZeroRoundTrip: the zero column survives writing and reading, in one
// file and in segments, and a trace written without it reads with no zero
// column (nil), not an all-false one.
func TestZeroRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		h, epochs := randomTrace(rng)
		withZeros(rng, epochs)
		opts := WriterOptions{ZeroWrites: true}
		if seed%2 == 1 {
			opts.SegmentRows = int64(1 + rng.IntN(3000))
		}
		path := filepath.Join(t.TempDir(), "trace.parquet")
		writeTrace(t, path, h, epochs, opts)
		_, got, err := ReadAll(path)
		require.NoError(t, err, "seed %d", seed)
		if len(epochs) == 0 {
			assert.Empty(t, got, "seed %d", seed)
		} else {
			assert.Equal(t, epochs, got, "seed %d", seed)
		}
		require.NoError(t, Validate(path), "seed %d", seed)
		r, err := Open(path)
		require.NoError(t, err)
		assert.True(t, r.HasZero())
		r.Close()
	}
	path, _ := smallTrace(t)
	r, err := Open(path)
	require.NoError(t, err)
	defer r.Close()
	assert.False(t, r.HasZero())
	for r.Scan() {
		assert.Nil(t, r.Epoch().Zero, "no zero column: Zero is nil")
	}
	require.NoError(t, r.Err())
}

// TestZeroAtTimeZero: an epoch at t = 0 beside the initial image keeps its
// zero flags when the two are merged on disk and split again on reading.
func TestZeroAtTimeZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t0.parquet")
	epochs := []Epoch{
		{TNS: 0, Pages: []int64{0, 3}, Writes: []int32{0, 0}, Zero: []bool{false, false}, Initial: true},
		{TNS: 0, Pages: []int64{1, 2, 4}, Writes: []int32{1, 2, 1}, Zero: []bool{true, false, true}},
		{TNS: 10, Pages: []int64{3}, Writes: []int32{1}, Zero: []bool{true}},
	}
	writeTrace(t, path, testHeader(8), epochs, WriterOptions{ZeroWrites: true})
	_, got, err := ReadAll(path)
	require.NoError(t, err)
	assert.Equal(t, epochs, got)
}

// TestWriterZeroNeedsColumn: a zero flag on a writer made without the
// column is refused, not silently dropped.
func TestWriterZeroNeedsColumn(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "t.parquet"), testHeader(8), WriterOptions{})
	require.NoError(t, err)
	defer w.Abort()
	assert.ErrorContains(t, w.WriteEpochZero(10, []int64{1}, nil, []bool{true}), "no zero column")
	assert.ErrorContains(t, w.WriteEpochZero(10, []int64{1, 2}, nil, []bool{true}), "2 pages but 1 zero flags")
	assert.NoError(t, w.WriteEpochZero(10, []int64{1}, nil, []bool{false}), "false flags need no column")
}

// TestZeroForeignWriters reads the zero column as other writers store it:
// plain parquet-go, and DuckDB's nullable dictionary-encoded columns.
func TestZeroForeignWriters(t *testing.T) {
	h := testHeader(64)
	rows := []zeroRawRow{{0, 0, 0, false}, {0, 1, 3, true}, {0, 2, 0, false}}
	for tns := int64(100); tns <= 2000; tns += 100 {
		for p := tns / 100 % 7; p < 64; p += 5 {
			rows = append(rows, zeroRawRow{tns, p, 1, p%3 == 0})
		}
	}
	want := []Epoch{
		{TNS: 0, Pages: []int64{0, 2}, Writes: []int32{0, 0}, Zero: []bool{false, false}, Initial: true},
		{TNS: 0, Pages: []int64{1}, Writes: []int32{3}, Zero: []bool{true}},
	}
	for _, r := range rows[3:] {
		if want[len(want)-1].TNS != r.TNS {
			want = append(want, Epoch{TNS: r.TNS})
		}
		e := &want[len(want)-1]
		e.Pages, e.Writes, e.Zero = append(e.Pages, r.Page), append(e.Writes, r.Writes), append(e.Zero, r.Zero)
	}
	type duckZero struct {
		TNS    *int64 `parquet:"t_ns,optional,dict,snappy"`
		Page   *int64 `parquet:"page,optional,dict,snappy"`
		Writes *int32 `parquet:"writes,optional,dict,snappy"`
		Zero   *bool  `parquet:"zero,optional,snappy"`
	}
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"plain parquet-go", func(t *testing.T, path string) {
			writeParquet(t, path, rows, metaOptions(t, h, nil)...)
		}},
		{"plain parquet-go, small pages and row groups", func(t *testing.T, path string) {
			writeParquet(t, path, rows, append(metaOptions(t, h, nil), parquet.MaxRowsPerRowGroup(13), parquet.PageBufferSize(32))...)
		}},
		{"duckdb-like: nullable, dictionary, snappy", func(t *testing.T, path string) {
			d := make([]duckZero, len(rows))
			for i := range rows {
				r := rows[i]
				d[i] = duckZero{&r.TNS, &r.Page, &r.Writes, &r.Zero}
			}
			writeParquet(t, path, d, append(metaOptions(t, h, nil), parquet.MaxRowsPerRowGroup(37))...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.parquet")
			tc.write(t, path)
			require.NoError(t, Validate(path))
			_, got, err := ReadAll(path)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// TestZeroChecks: the zero column's row, schema and segment checks.
func TestZeroChecks(t *testing.T) {
	h := testHeader(8)
	t.Run("zero in the initial image", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.parquet")
		writeParquet(t, path, []zeroRawRow{{0, 0, 0, false}, {0, 3, 0, true}, {100, 1, 1, true}}, metaOptions(t, h, nil)...)
		var v *Violation
		require.ErrorAs(t, Validate(path), &v)
		assert.EqualValues(t, 1, v.Row)
		assert.Contains(t, v.Msg, "initial-image row (page 3) has zero true")
	})
	t.Run("zero not boolean", func(t *testing.T) {
		type intZero struct {
			TNS  int64 `parquet:"t_ns"`
			Page int64 `parquet:"page"`
			Zero int32 `parquet:"zero"`
		}
		path := filepath.Join(t.TempDir(), "bad.parquet")
		writeParquet(t, path, []intZero{{100, 1, 1}}, metaOptions(t, h, nil)...)
		assert.ErrorContains(t, Validate(path), "column zero is INT32, want BOOLEAN")
	})
	t.Run("null zero", func(t *testing.T) {
		type nullZero struct {
			TNS  int64 `parquet:"t_ns"`
			Page int64 `parquet:"page"`
			Zero *bool `parquet:"zero,optional"`
		}
		path := filepath.Join(t.TempDir(), "bad.parquet")
		writeParquet(t, path, []nullZero{{100, 1, nil}}, metaOptions(t, h, nil)...)
		assert.ErrorContains(t, Validate(path), "nulls")
	})
	t.Run("segments disagree", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, filepath.Join(dir, segmentName(0)), h, []rawRow{{100, 1, 1}}, nil)
		second := filepath.Join(dir, segmentName(1))
		writeParquet(t, second, []zeroRawRow{{200, 1, 1, true}}, metaOptions(t, h, nil)...)
		_, err := Open(dir)
		var v *Violation
		require.ErrorAs(t, err, &v)
		assert.Equal(t, second, v.Path)
		assert.Contains(t, v.Msg, "segments disagree on whether the zero column exists")
	})
}

// zeroSmallTrace is smallTrace with the zero column, a seed for the fuzzer.
func zeroSmallTrace(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small-zero.parquet")
	writeTrace(t, path, testHeader(64), []Epoch{
		{TNS: 0, Pages: []int64{0, 1, 2, 5}, Writes: []int32{0, 0, 0, 0}, Initial: true},
		{TNS: 100, Pages: []int64{1, 7, 9}, Writes: []int32{1, 1, 3}, Zero: []bool{true, false, true}},
		{TNS: 200, Pages: []int64{2, 63}, Writes: []int32{1, 1}, Zero: []bool{false, true}},
	}, WriterOptions{ZeroWrites: true})
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}
