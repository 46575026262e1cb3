package tracefmt

import (
	"bytes"
	"maps"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallTrace writes a small valid trace and returns its path and bytes.
func smallTrace(t testing.TB) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.parquet")
	writeTrace(t, path, testHeader(64), []Epoch{
		{TNS: 0, Pages: []int64{0, 1, 2, 5}, Writes: []int32{0, 0, 0, 0}, Initial: true},
		{TNS: 100, Pages: []int64{1, 7, 9}, Writes: []int32{1, 1, 3}},
		{TNS: 200, Pages: []int64{2, 63}, Writes: []int32{1, 1}},
	}, WriterOptions{})
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return path, data
}

func TestFilesArePlainParquet(t *testing.T) {
	path, _ := smallTrace(t)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)

	want := map[string]parquet.Kind{"t_ns": parquet.Int64, "page": parquet.Int64, "writes": parquet.Int32}
	fields := pf.Schema().Fields()
	require.Len(t, fields, len(want))
	for _, field := range fields {
		kind, ok := want[field.Name()]
		require.True(t, ok, "unexpected column %s", field.Name())
		assert.True(t, field.Leaf(), "column %s must not be nested", field.Name())
		assert.False(t, field.Repeated(), "column %s must not repeat", field.Name())
		assert.Equal(t, kind, field.Type().Kind(), "column %s", field.Name())
	}
	for _, key := range []string{KeyFormat, KeyPageSize, KeyPages, KeyEpochNS, KeyBackend, KeyWorkload, KeyKernel, KeyStartedAt, KeyRegions} {
		_, ok := pf.Lookup(key)
		assert.True(t, ok, "metadata key %s", key)
	}
	v, _ := pf.Lookup(KeyFormat)
	assert.Equal(t, FormatVersion, v)
	v, _ = pf.Lookup(KeyRegions)
	assert.JSONEq(t, `[{"first_page":0,"pages":64,"start_addr":139637976727552,"perms":"rw-p","path":"[heap]"}]`, v)
}

func TestOpenRejectsBadFiles(t *testing.T) {
	_, good := smallTrace(t)
	foreign := filepath.Join(t.TempDir(), "foreign.parquet")
	{
		type other struct {
			A int64 `parquet:"a"`
		}
		require.NoError(t, parquet.WriteFile(foreign, []other{{1}, {2}}))
	}
	foreignBytes, err := os.ReadFile(foreign)
	require.NoError(t, err)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"tiny", []byte("PAR1"), "too short"},
		{"csv", []byte("t_ns,page\n100,1\n200,2\n"), "not a Parquet file"},
		{"truncated", good[:len(good)-10], "truncated"},
		{"half", good[:len(good)/2], "truncated"},
		{"foreign", foreignBytes, "not a microwiper trace"},
		{"bad footer length", append(bytes.Clone(good[:len(good)-8]), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'), "footer length"},
		{"flipped byte", flipped, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.parquet")
			require.NoError(t, os.WriteFile(path, tc.data, 0o644))
			err := Validate(path)
			if tc.want == "" {
				// A flipped byte may land in a value and go unnoticed, but
				// must never panic; when noticed the error names the file.
				if err != nil {
					assert.Contains(t, err.Error(), path)
				}
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), path)
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.parquet"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no such file")
}

func TestOpenEmptyDirectory(t *testing.T) {
	_, err := Open(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no finished .parquet files")
}

func FuzzReader(f *testing.F) {
	_, good := smallTrace(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("PAR1PAR1PAR1"))
	zero := zeroSmallTrace(f)
	f.Add(zero)
	f.Add(zero[:len(zero)-9])
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			return
		}
		defer r.Close()
		rows := 0
		for r.Scan() {
			e := r.Epoch()
			rows += len(e.Pages)
			if len(e.Pages) != len(e.Writes) {
				t.Fatalf("epoch at %d: %d pages, %d writes", e.TNS, len(e.Pages), len(e.Writes))
			}
			if e.Zero != nil && len(e.Zero) != len(e.Pages) || r.HasZero() != (e.Zero != nil) {
				t.Fatalf("epoch at %d: %d pages, %d zero flags (column %v)", e.TNS, len(e.Pages), len(e.Zero), r.HasZero())
			}
			for i, z := range e.Zero {
				if z && e.Initial {
					t.Fatalf("initial page %d marked zero", e.Pages[i])
				}
			}
			for i := 1; i < len(e.Pages); i++ {
				if e.Pages[i] <= e.Pages[i-1] {
					t.Fatalf("reader yielded unsorted pages")
				}
			}
		}
		if r.Err() == nil && int64(rows) != r.Rows() {
			t.Fatalf("clean read of %d rows, footer says %d", rows, r.Rows())
		}
	})
}

// TestHeaderCheckBounds: a header whose memory overflows int64 or whose
// page size is absurd is refused (pages 2^63-1 of 4 KiB claimed -4096
// bytes; a page size of 2^62 gave 0 MiB sent and 0 downtime).
func TestHeaderCheckBounds(t *testing.T) {
	ok := Header{PageSize: 4096, Pages: 1, EpochNS: 1e6, Backend: BackendSynthetic}
	tests := []struct {
		name   string
		change func(*Header)
		want   string
	}{
		{"pages overflow", func(h *Header) { h.Pages = 1<<63 - 1 }, "memory above 4611686018427387904 bytes"},
		{"memory just above the bound", func(h *Header) { h.Pages = MaxMemoryBytes/4096 + 1 }, "memory above"},
		{"page size 2^62", func(h *Header) { h.PageSize = 1 << 62 }, "want a positive power of two up to 1073741824"},
		{"page size 2^31", func(h *Header) { h.PageSize = 1 << 31 }, "want a positive power of two up to 1073741824"},
		{"page size not a power of two", func(h *Header) { h.PageSize = 3000 }, "want a positive power of two"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := ok
			tc.change(&h)
			err := h.Check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	require.NoError(t, ok.Check())
	big := ok
	big.PageSize, big.Pages = MaxPageSize, MaxMemoryBytes/MaxPageSize
	require.NoError(t, big.Check(), "the largest memory allowed")
}

// TestGuestSlowdown: the guest_slowdown key survives a file round trip, is
// absent when unknown (traces without it keep their bytes), and absurd
// values are refused both in a header and in a file's metadata.
func TestGuestSlowdown(t *testing.T) {
	h := Header{PageSize: 4096, Pages: 8, EpochNS: 1e8, Backend: BackendSynthetic, GuestSlowdown: 12.5}
	path := filepath.Join(t.TempDir(), "slow.parquet")
	w, err := Create(path, h, WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.WriteEpoch(1e8, []int64{1, 2}, nil))
	require.NoError(t, w.Close())
	r, err := Open(path)
	require.NoError(t, err)
	assert.Equal(t, 12.5, r.Header().GuestSlowdown)
	require.NoError(t, r.Close())

	h.GuestSlowdown = 0
	m, err := h.Metadata()
	require.NoError(t, err)
	assert.NotContains(t, m, KeyGuestSlowdown, "unknown is absent, not 0")

	for name, x := range map[string]float64{"negative": -2, "NaN": math.NaN(), "infinite": math.Inf(1), "absurdly slow": 2e6, "absurdly fast": 0.001} {
		t.Run("header "+name, func(t *testing.T) {
			bad := h
			bad.GuestSlowdown = x
			assert.ErrorContains(t, bad.Check(), KeyGuestSlowdown)
		})
	}
	good, err := Header{PageSize: 4096, Pages: 8, EpochNS: 1e8, Backend: BackendSynthetic, GuestSlowdown: 3}.Metadata()
	require.NoError(t, err)
	for _, v := range []string{"0", "-1", "NaN", "fast", "", "1e9"} {
		t.Run("metadata "+v, func(t *testing.T) {
			kv := maps.Clone(good)
			kv[KeyGuestSlowdown] = v
			_, err := ParseMetadata(func(k string) (string, bool) { v, ok := kv[k]; return v, ok })
			assert.ErrorContains(t, err, KeyGuestSlowdown)
		})
	}
	got, err := ParseMetadata(func(k string) (string, bool) { v, ok := good[k]; return v, ok })
	require.NoError(t, err)
	assert.Equal(t, 3.0, got.GuestSlowdown)
}
