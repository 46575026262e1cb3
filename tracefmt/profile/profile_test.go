package profile

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// smallTrace is a trace small enough to count by hand.
func smallTrace(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 10, EpochNS: 100e6, Backend: tracefmt.BackendSynthetic}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.WriteInitial([]int64{0, 1, 2}))
	require.NoError(t, w.WriteEpoch(100e6, []int64{1, 2}, []int32{3, 1}))
	require.NoError(t, w.WriteEpoch(1000e6, []int64{2, 3}, nil)) // (900ms, 1s]: still window 0
	require.NoError(t, w.WriteEpoch(1100e6, []int64{5}, []int32{7}))
	require.NoError(t, w.WriteEpoch(3000e6, []int64{5, 9}, nil))
	require.NoError(t, w.Close())
	return path
}

func TestMeasureWindows(t *testing.T) {
	path := smallTrace(t)
	p, err := Measure(path, Options{WindowNS: int64(time.Second), WorkingSet: true})
	require.NoError(t, err)
	assert.True(t, p.Finished)
	assert.EqualValues(t, 10, p.Rows)
	assert.EqualValues(t, 3, p.Initial)
	assert.EqualValues(t, 4, p.Epochs)
	assert.EqualValues(t, 3000e6, p.LastTNS)
	assert.EqualValues(t, 7, p.Dirtyings)
	assert.EqualValues(t, 3+1+1+1+7+1+1, p.Writes)
	assert.EqualValues(t, 5, p.EverWritten) // pages 1, 2, 3, 5, 9
	assert.EqualValues(t, 3, p.Windows)
	assert.Equal(t, []int64{4, 1, 2}, p.Rate)
	assert.Equal(t, []int64{3, 1, 2}, p.WorkingSet)
	assert.Zero(t, p.Stripes)

	p, err = Measure(path, Options{WindowNS: int64(500 * time.Millisecond), WorkingSet: true})
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 2, 1, 0, 0, 2}, p.Rate)
	assert.Equal(t, []int64{2, 2, 1, 0, 0, 2}, p.WorkingSet)

	p, err = Measure(path, Options{WindowNS: int64(time.Second)})
	require.NoError(t, err)
	assert.Nil(t, p.WorkingSet, "not asked for")
	assert.EqualValues(t, -1, p.EverWritten)
}

func TestMeasureStripes(t *testing.T) {
	path := smallTrace(t)
	// Epoch windows (100 ms), 3 stripes of 4 pages: [0,4) [4,8) [8,10).
	p, err := Measure(path, Options{Stripes: 3})
	require.NoError(t, err)
	assert.Equal(t, 3, p.Stripes)
	assert.EqualValues(t, 4, p.StripePages)
	assert.EqualValues(t, 100e6, p.WindowNS)
	assert.EqualValues(t, 30, p.Windows)
	require.Len(t, p.Heat, 30)
	assert.Equal(t, []uint32{2, 0, 0}, p.Heat[0])
	assert.Equal(t, []uint32{2, 0, 0}, p.Heat[9])
	assert.Equal(t, []uint32{0, 1, 0}, p.Heat[10])
	assert.Equal(t, []uint32{0, 1, 1}, p.Heat[29])
	assert.Equal(t, map[int64]int64{1: 3, 2: 2}, p.CountHist)

	// Ten columns at most: windows merge pairwise until they fit.
	p, err = Measure(path, Options{Stripes: 3, MaxColumns: 10})
	require.NoError(t, err)
	assert.EqualValues(t, 4, p.ColumnWindows)
	require.Len(t, p.Heat, 8)
	assert.Equal(t, []uint32{2, 0, 0}, p.Heat[0])
	assert.Equal(t, []uint32{2, 1, 0}, p.Heat[2], "windows 8-11")
	assert.Equal(t, []uint32{0, 1, 1}, p.Heat[7])

	// More stripes than pages: one page a stripe.
	p, err = Measure(path, Options{Stripes: 64})
	require.NoError(t, err)
	assert.Equal(t, 10, p.Stripes)
}

func TestMeasureRefusesAbsurdWindows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "far.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 4, EpochNS: 1, Backend: tracefmt.BackendSynthetic}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.WriteEpoch(1<<40, []int64{1}, nil))
	require.NoError(t, w.Close())
	_, err = Measure(path, Options{})
	assert.ErrorContains(t, err, "more than 10000000 windows")
}

// TestMeasureZeroWrites counts the writes that left a page all zeros, and
// says whether the trace recorded them at all.
func TestMeasureZeroWrites(t *testing.T) {
	p, err := Measure(smallTrace(t), Options{})
	require.NoError(t, err)
	assert.False(t, p.HasZero)
	assert.Zero(t, p.ZeroWrites)

	path := filepath.Join(t.TempDir(), "zero.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 10, EpochNS: 100e6, Backend: tracefmt.BackendSynthetic}, tracefmt.WriterOptions{ZeroWrites: true})
	require.NoError(t, err)
	require.NoError(t, w.WriteInitial([]int64{0, 1, 2}))
	require.NoError(t, w.WriteEpochZero(100e6, []int64{1, 2, 7}, nil, []bool{true, false, true}))
	require.NoError(t, w.WriteEpochZero(200e6, []int64{1}, nil, []bool{false}))
	require.NoError(t, w.Close())
	p, err = Measure(path, Options{})
	require.NoError(t, err)
	assert.True(t, p.HasZero)
	assert.EqualValues(t, 2, p.ZeroWrites)
	assert.EqualValues(t, 4, p.Dirtyings)
}
