package replay

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartMarksPrehistoryData: with an empty initial image every page is
// a zero page until written. Starting at 15 ms puts the 10 ms write to page
// 3 before the migration: page 3 holds data (1 ms at 40.96 Mbit/s with
// 1024-byte headers), the other 9 pages cost a header (0.2 ms): 2.8 ms.
func TestStartMarksPrehistoryData(t *testing.T) {
	tr := newTestTrace(t, 10, epoch{10, []int32{3}}, epoch{20, []int32{4}})
	require.NoError(t, tr.SetInitial(nil))
	cfg := Config{Link: Link{Bps: 40_960_000, HeaderBytes: 1024}, Time: TimeModel{Dirty: End, StartNS: 15 * ms}}
	res := runAlg(t, tr, "stop-and-copy", cfg, "zero_pages", "true")
	assert.Equal(t, int64(2_800_000), res.DowntimeNS)
}

func TestTraceChecks(t *testing.T) {
	tr := newTestTrace(t, 10, epoch{10, []int32{3, 9}})
	assert.ErrorContains(t, tr.AddEpoch(10*ms, []int32{1}), "not after the previous epoch")
	assert.ErrorContains(t, tr.AddEpoch(20*ms, []int32{2, 1}), "out of order")
	assert.ErrorContains(t, tr.AddEpoch(20*ms, []int32{10}), "outside [0, 10)")
	assert.ErrorContains(t, tr.SetMemory(9), "smaller than the trace: it writes page 9")
	require.NoError(t, tr.SetMemory(100))
	assert.Equal(t, int64(100), tr.Header.Pages)
}

func TestLoadTrace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "two.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 16, EpochNS: epochMS, Backend: tracefmt.BackendUffdSync}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.WriteInitial([]int64{0, 1, 2}))
	require.NoError(t, w.WriteEpoch(10*ms, []int64{1, 5}, nil))
	require.NoError(t, w.WriteEpoch(30*ms, []int64{7}, nil))
	require.NoError(t, w.Close())
	tr, err := LoadTrace(path)
	require.NoError(t, err)
	assert.Equal(t, "two", tr.Name)
	assert.True(t, tr.HasInitial)
	assert.Equal(t, []int32{0, 1, 2}, tr.Initial)
	assert.Equal(t, []int64{10 * ms, 30 * ms}, tr.EpochT)
	assert.Equal(t, []int32{1, 5, 7}, tr.Pages)
	assert.Equal(t, Exact, DirtyModelFor(tr, TimeModel{}), "uffd-wp-sync traces default to exact")

	bad := filepath.Join(dir, "bad.parquet")
	require.NoError(t, os.WriteFile(bad, []byte("not parquet"), 0o644))
	_, err = LoadTrace(bad)
	assert.ErrorContains(t, err, "bad.parquet")
}
