package report

import (
	"path/filepath"
	"testing"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProfileTrace(t *testing.T) {
	tp := fixtureProfile(t)
	assert.Equal(t, "shift", tp.Name)
	assert.Equal(t, 1024, tp.Stripes)
	assert.Equal(t, int64(8), tp.StripePages)
	assert.Equal(t, int64(50), tp.Windows)
	assert.Equal(t, int64(1), tp.ColumnWindows)
	require.Len(t, tp.Heat, 50)

	// The heat adds up to the dirtyings, and the count histogram to the
	// same total: every dirtying is in exactly one cell.
	var heat, hist int64
	for _, col := range tp.Heat {
		for _, v := range col {
			heat += int64(v)
		}
	}
	for k, n := range tp.CountHist {
		assert.LessOrEqual(t, k, tp.StripePages, "at most a stripe's pages per epoch")
		hist += k * n
	}
	assert.Equal(t, tp.Dirtyings, heat)
	assert.Equal(t, tp.Dirtyings, hist)

	// The hot band of epoch 1 covers pages [0, 600): stripes 0..74; by
	// epoch 10 it has moved to [1500, 2100).
	assert.Greater(t, tp.Heat[0][10], uint32(0))
	assert.Zero(t, tp.Heat[0][500], "page 4000 is cold in epoch 1 unless the sparse background hits it")
	assert.Greater(t, tp.Heat[10][200], uint32(0))

	rates, cum, zero := tp.RateCDF()
	require.NotEmpty(t, rates)
	assert.Equal(t, 1.0, cum[len(cum)-1])
	for i := 1; i < len(rates); i++ {
		assert.Greater(t, rates[i], rates[i-1])
		assert.GreaterOrEqual(t, cum[i], cum[i-1])
	}
	assert.InDelta(t, 10.0, rates[0], 1e-9, "one page in a 100 ms epoch is 10 pages/s")
	assert.Greater(t, zero, 0.5)
	assert.Less(t, zero, 1.0)
}

func TestProfileTraceMergesColumns(t *testing.T) {
	// More epochs than heatmap columns: columns merge pairwise and the
	// heat is kept.
	path := filepath.Join(t.TempDir(), "long.parquet")
	h := tracefmt.Header{PageSize: 4096, Pages: 64, EpochNS: 1e6, Backend: tracefmt.BackendSynthetic}
	w, err := tracefmt.Create(path, h, tracefmt.WriterOptions{})
	require.NoError(t, err)
	const epochs = 3*maxHeatColumns + 7
	for e := int64(1); e <= epochs; e++ {
		require.NoError(t, w.WriteEpoch(e*h.EpochNS, []int64{e % 64}, nil))
	}
	require.NoError(t, w.Close())
	tp, err := profileTrace(path, 16)
	require.NoError(t, err)
	assert.Equal(t, 16, tp.Stripes)
	assert.Equal(t, int64(4), tp.StripePages)
	assert.LessOrEqual(t, len(tp.Heat), maxHeatColumns)
	assert.Equal(t, int64(4), tp.ColumnWindows)
	var heat int64
	for _, col := range tp.Heat {
		for _, v := range col {
			heat += int64(v)
		}
	}
	assert.Equal(t, int64(epochs), heat)
	assert.Equal(t, int64(epochs), tp.Windows)
}

func TestProfileTraceErrors(t *testing.T) {
	_, err := profileTrace(filepath.Join(t.TempDir(), "missing.parquet"), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.parquet")
}

func TestVariantsByEffectiveParameters(t *testing.T) {
	// The same configuration spelled fully, partly or not at all is one
	// variant; a changed parameter is another.
	runs := []Run{
		{RunID: "a", Algorithm: "microwiper", Params: `{}`, BandwidthBps: 1},
		{RunID: "b", Algorithm: "microwiper", Params: `{"order":"true","skip":"true","throttle":"true","max_rounds":"29","min_pages":"50","max_factor":"3","batch_pages":"1024","stripe_pages":"0","bandwidth":"measured"}`, BandwidthBps: 1},
		{RunID: "c", Algorithm: "microwiper", Params: `{"throttle":"false"}`, BandwidthBps: 1},
		{RunID: "d", Algorithm: "xen-precopy", Params: `{"skip":"true"}`, BandwidthBps: 1},
		{RunID: "e", Algorithm: "mystery", Params: `not json`, BandwidthBps: 1},
	}
	g := group(&Set{Runs: runs, Rounds: map[string][]Round{}})
	assert.Equal(t, []string{"xen-precopy", "microwiper (throttle=false)", "microwiper (throttle=true)", "mystery"}, g.Labels)
	assert.True(t, g.Default["microwiper (throttle=true)"])
	assert.False(t, g.Default["microwiper (throttle=false)"])
	assert.True(t, g.Default["xen-precopy"])
	assert.False(t, g.Default["mystery"])
	st := styles(g)
	assert.Equal(t, algorithmColors["microwiper"], st["microwiper (throttle=true)"].Color, "the default keeps the colour")
	assert.NotEqual(t, algorithmColors["microwiper"], st["microwiper (throttle=false)"].Color)
}
