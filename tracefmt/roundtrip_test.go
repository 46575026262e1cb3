package tracefmt

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testHeader(pages int64) Header {
	return Header{
		PageSize:  4096,
		Pages:     pages,
		EpochNS:   int64(100 * time.Millisecond),
		Backend:   BackendSynthetic,
		Workload:  "test",
		Kernel:    "6.18",
		StartedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Regions:   []Region{{FirstPage: 0, Pages: pages, StartAddr: 0x7f0000000000, Perms: "rw-p", Path: "[heap]"}},
	}
}

// randomTrace builds a random valid trace: an optional initial image, an
// optional epoch at t = 0, then epochs at increasing times.
func randomTrace(rng *rand.Rand) (Header, []Epoch) {
	pages := int64(1 + rng.IntN(5000))
	h := testHeader(pages)
	var epochs []Epoch
	pick := func(frac float64) []int64 {
		var ps []int64
		for p := int64(0); p < pages; p++ {
			if rng.Float64() < frac {
				ps = append(ps, p)
			}
		}
		return ps
	}
	var initial map[int64]bool
	if rng.IntN(2) == 0 {
		ps := pick(rng.Float64())
		if len(ps) > 0 {
			initial = map[int64]bool{}
			for _, p := range ps {
				initial[p] = true
			}
			epochs = append(epochs, Epoch{TNS: 0, Pages: ps, Writes: make([]int32, len(ps)), Initial: true})
		}
	}
	t := int64(0)
	if rng.IntN(3) != 0 {
		t = 1 + rng.Int64N(1e9)
	}
	for n := rng.IntN(40); n > 0; n-- {
		var ps []int64
		for _, p := range pick(rng.Float64() * 0.3) {
			if t == 0 && initial[p] {
				continue
			}
			ps = append(ps, p)
		}
		if len(ps) > 0 {
			ws := make([]int32, len(ps))
			for i := range ws {
				ws[i] = 1 + rng.Int32N(100)
			}
			epochs = append(epochs, Epoch{TNS: t, Pages: ps, Writes: ws})
		}
		t += 1 + rng.Int64N(1e9)
	}
	return h, epochs
}

func writeTrace(t testing.TB, path string, h Header, epochs []Epoch, opts WriterOptions) {
	t.Helper()
	w, err := Create(path, h, opts)
	require.NoError(t, err)
	for _, e := range epochs {
		if e.Initial {
			require.NoError(t, w.WriteInitial(e.Pages))
			continue
		}
		require.NoError(t, w.WriteEpochZero(e.TNS, e.Pages, e.Writes, e.Zero))
	}
	require.NoError(t, w.Close())
}

func TestRoundTripRandom(t *testing.T) {
	for seed := uint64(0); seed < 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		h, epochs := randomTrace(rng)
		opts := WriterOptions{}
		if seed%3 == 1 {
			opts.SegmentRows = int64(1 + rng.IntN(3000))
		}
		path := filepath.Join(t.TempDir(), "trace.parquet")
		writeTrace(t, path, h, epochs, opts)

		gotH, got, err := ReadAll(path)
		require.NoError(t, err, "seed %d", seed)
		assert.Equal(t, h, gotH, "seed %d", seed)
		if len(epochs) == 0 {
			assert.Empty(t, got, "seed %d", seed)
		} else {
			assert.Equal(t, epochs, got, "seed %d", seed)
		}
		require.NoError(t, Validate(path), "seed %d", seed)
	}
}

func TestWriterRejectsBadEpochs(t *testing.T) {
	h := testHeader(10)
	tests := []struct {
		name  string
		write func(w *Writer) error
		want  string
	}{
		{"unsorted pages", func(w *Writer) error { return w.WriteEpoch(1, []int64{3, 2}, nil) }, "ascend"},
		{"duplicate page", func(w *Writer) error { return w.WriteEpoch(1, []int64{2, 2}, nil) }, "ascend"},
		{"page beyond memory", func(w *Writer) error { return w.WriteEpoch(1, []int64{10}, nil) }, "outside memory"},
		{"time goes back", func(w *Writer) error {
			require.NoError(t, w.WriteEpoch(5, []int64{1}, nil))
			return w.WriteEpoch(5, []int64{2}, nil)
		}, "increase"},
		{"zero write count", func(w *Writer) error { return w.WriteEpoch(1, []int64{1}, []int32{0}) }, "write count 0"},
		{"counts mismatch", func(w *Writer) error { return w.WriteEpoch(1, []int64{1}, []int32{1, 2}) }, "write counts"},
		{"initial after epoch", func(w *Writer) error {
			require.NoError(t, w.WriteEpoch(1, []int64{1}, nil))
			return w.WriteInitial([]int64{1})
		}, "before any epoch"},
		{"page both initial and written at 0", func(w *Writer) error {
			require.NoError(t, w.WriteInitial([]int64{1, 2}))
			return w.WriteEpoch(0, []int64{2}, nil)
		}, "initial image too"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Create(filepath.Join(t.TempDir(), "t.parquet"), h, WriterOptions{})
			require.NoError(t, err)
			defer w.Close()
			err = tc.write(w)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSetPagesGrowsMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grow")
	w, err := Create(path, testHeader(4), WriterOptions{SegmentRows: 2})
	require.NoError(t, err)
	require.NoError(t, w.WriteEpoch(1, []int64{0, 3}, nil))
	w.SetPages(100)
	w.SetPages(50) // never shrinks
	require.NoError(t, w.WriteEpoch(2, []int64{99}, nil))
	require.NoError(t, w.Close())
	h, epochs, err := ReadAll(path)
	require.NoError(t, err)
	assert.EqualValues(t, 100, h.Pages)
	assert.Len(t, epochs, 2)
}

func TestKilledWriterLosesOnlyOpenSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seg")
	w, err := Create(dir, testHeader(100), WriterOptions{SegmentRows: 3})
	require.NoError(t, err)
	for i := int64(1); i <= 4; i++ {
		require.NoError(t, w.WriteEpoch(i, []int64{i, i + 10, i + 20}, nil))
	}
	// The fifth epoch sits in the open segment; "kill" the writer by not
	// closing it.
	require.NoError(t, w.WriteEpoch(5, []int64{5}, nil))
	_, epochs, err := ReadAll(dir)
	require.NoError(t, err)
	assert.Len(t, epochs, 4)
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 5, "four finished segments and one .partial")
}

func TestSameTraceSameBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	h, epochs := randomTrace(rng)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	writeTrace(t, a, h, epochs, WriterOptions{})
	writeTrace(t, b, h, epochs, WriterOptions{})
	da, err := os.ReadFile(a)
	require.NoError(t, err)
	db, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, da, db, "two writes of one trace must be byte-identical")
}

func TestValidateRows(t *testing.T) {
	path, _ := smallTrace(t)
	s, err := Check(path)
	require.NoError(t, err)
	assert.EqualValues(t, 9, s.Rows, "4 initial-image rows and 5 written")
	assert.True(t, s.Finished)
}

// TestFinishedMarker: only the writer's Close marks a trace finished, so a
// killed writer's segments read as what they are.
func TestFinishedMarker(t *testing.T) {
	write := func(t *testing.T, opts WriterOptions, close bool, rotate bool) string {
		path := filepath.Join(t.TempDir(), "t")
		w, err := Create(path, testHeader(100), opts)
		require.NoError(t, err)
		for i := int64(1); i <= 4; i++ {
			require.NoError(t, w.WriteEpoch(i, []int64{i, i + 10, i + 20}, nil))
		}
		if rotate {
			require.NoError(t, w.Rotate())
		}
		if close {
			require.NoError(t, w.Close())
		}
		return path
	}
	tests := []struct {
		name          string
		opts          WriterOptions
		close, rotate bool
		finished      bool
		files         int
	}{
		{"one file", WriterOptions{}, true, false, true, 0},
		{"segments, closed", WriterOptions{SegmentRows: 3}, true, false, true, 4},
		{"segments, closed after a rotate", WriterOptions{SegmentRows: 100}, true, true, true, 2},
		{"segments, killed", WriterOptions{SegmentRows: 3}, false, false, false, 4},
		{"segments, killed after a rotate", WriterOptions{SegmentRows: 100}, false, true, false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.opts, tc.close, tc.rotate)
			s, err := Check(path)
			require.NoError(t, err)
			assert.Equal(t, tc.finished, s.Finished)
			if tc.files > 0 {
				ents, err := os.ReadDir(path)
				require.NoError(t, err)
				assert.Len(t, ents, tc.files, "no empty segment after a full one; the open one of a killed writer is .partial")
			}
		})
	}
}
