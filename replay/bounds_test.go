package replay

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/tracefmt"
)

// TestRefusesAbsurdRuns: the cases of issue 12's "resource bounds" that
// reach the engine are refused before any work, with the reason; each
// used to allocate gigabytes, run for hours or overflow.
func TestRefusesAbsurdRuns(t *testing.T) {
	small := func() *Trace {
		return newTestTrace(t, 1024, epoch{10, []int32{1, 2}}, epoch{20, []int32{3}})
	}
	gib := func() *Trace {
		tr := NewTrace("gib", tracefmt.Header{PageSize: 4096, Pages: 1 << 18, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
		require.NoError(t, tr.AddEpoch(10*ms, []int32{1, 2}))
		return tr
	}
	link := func(bps int64) Config { return Config{Link: Link{Bps: bps, HeaderBytes: 16}} }
	tests := []struct {
		name   string
		trace  func() *Trace
		alg    string
		params []string
		cfg    Config
		want   string
	}{
		{"2^31-1 pages claimed", func() *Trace {
			return NewTrace("huge", tracefmt.Header{PageSize: 4096, Pages: math.MaxInt32, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
		}, "xen-precopy", nil, link(1e9), "needs 64.0 GiB (2147483647 pages × 32 B/page"},
		{"--memory 7TiB", func() *Trace {
			tr := small()
			require.NoError(t, tr.SetMemory(7<<40/4096))
			return tr
		}, "microwiper", nil, link(1e9), "needs 56.0 GiB (1879048192 pages × 32 B/page"},
		{"--bw 1bit", gib, "xen-precopy", nil, link(1), "sending its 1.0 GiB once takes 273.4 years at 1bit"},
		{"qemu cap of 1 B/s", gib, "qemu-precopy", []string{"max_bandwidth", "1"}, link(1e9), "at qemu-precopy's max_bandwidth of 1 B/s one round takes"},
		{"--rtt 1000h", small, "xen-precopy", nil, Config{Link: Link{Bps: 1e9, RTTNS: int64(1000 * time.Hour)}}, "rtt 1000h0m0s: want 0 to 1h0m0s"},
		{"--resume-overhead 2562047h", small, "xen-precopy", nil, Config{Link: Link{Bps: 1e9, RTTNS: int64(10 * time.Hour)}, ResumeOverheadNS: int64(2562047 * time.Hour)}, "want 0 to 1h0m0s"},
		{"2 rows, 1 ns epoch, oracle", func() *Trace {
			tr := NewTrace("two", tracefmt.Header{PageSize: 4096, Pages: 16, EpochNS: 1, Backend: tracefmt.BackendSynthetic})
			require.NoError(t, tr.AddEpoch(1, []int32{0}))
			require.NoError(t, tr.AddEpoch(2, []int32{1}))
			return tr
		}, "oracle", nil, link(1e9), "oracle would take about"},
		{"1 ns epoch, 2 rows, a week of a slow link", func() *Trace {
			tr := NewTrace("two", tracefmt.Header{PageSize: 4096, Pages: 1 << 18, EpochNS: 1, Backend: tracefmt.BackendSynthetic})
			require.NoError(t, tr.AddEpoch(1, []int32{0}))
			require.NoError(t, tr.AddEpoch(2, []int32{1}))
			return tr
		}, "xen-precopy", nil, link(1e6), "xen-precopy would take about"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alg, err := algorithms.New(tc.alg)
			require.NoError(t, err)
			for i := 0; i < len(tc.params); i += 2 {
				require.NoError(t, algorithms.Set(alg, tc.params[i], tc.params[i+1]))
			}
			start := time.Now()
			_, err = Sim{}.Run(context.Background(), tc.trace(), alg, tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, time.Since(start), 2*time.Second, "refused before the work")
		})
	}
}

// TestBoundsAdmitRealRuns: the limits leave ordinary runs alone, and a
// limit raised by the caller admits what the default refuses.
func TestBoundsAdmitRealRuns(t *testing.T) {
	tr := newTestTrace(t, 1024, epoch{10, []int32{1, 2}}, epoch{20, []int32{3}})
	for _, name := range algorithms.Names() {
		alg, err := algorithms.New(name)
		require.NoError(t, err)
		require.NoError(t, CheckRun(tr, alg, "sim", Config{Link: Link{Bps: msPage, RTTNS: int64(time.Hour)}, ResumeOverheadNS: int64(time.Hour)}), name)
	}
	// 4 GiB at 100 Mbit/s over a minute of 10 M rows in 100 ms epochs:
	// the heaviest run of the paper's matrix.
	big := NewTrace("big", tracefmt.Header{PageSize: 4096, Pages: 1 << 20, EpochNS: 100 * ms, Backend: tracefmt.BackendSynthetic})
	big.EpochT = []int64{60e9}
	big.EpochOff = []int64{0, 10e6}
	big.Pages = make([]int32, 10e6)
	alg, _ := algorithms.New("qemu-precopy")
	require.NoError(t, CheckRun(big, alg, "sim", Config{Link: Link{Bps: 100e6, HeaderBytes: 16}}))
	require.NoError(t, CheckRun(big, alg, "socket", Config{Link: Link{Bps: 100e6, HeaderBytes: 16}}))

	huge := NewTrace("huge", tracefmt.Header{PageSize: 4096, Pages: math.MaxInt32, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
	require.NoError(t, checkMemory(huge.Header, 0, 0, "sim", Continuous, 128<<30), "a raised --max-memory admits it")

	// The once reading holds four times the rows' memory.
	err := checkMemory(big.Header, big.Rows(), 1, "sim", Once, 512<<20)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "10000000 rows × 96 B")
	require.NoError(t, checkMemory(big.Header, big.Rows(), 1, "sim", Continuous, 512<<20))
}

// TestDowntimeWithLongestDurations: the largest RTT and resume overhead
// allowed add up without overflow.
func TestDowntimeWithLongestDurations(t *testing.T) {
	tr := newTestTrace(t, 4, epoch{10, []int32{1}})
	cfg := Config{Link: Link{Bps: msPage, RTTNS: MaxRTTNS}, ResumeOverheadNS: MaxResumeOverheadNS}
	res := runAlg(t, tr, "stop-and-copy", cfg)
	assert.Equal(t, 4*ms+MaxRTTNS+MaxResumeOverheadNS, res.DowntimeNS)
}

// TestLoadTraceWithin: a trace whose footer claims more rows than the
// memory bound is refused before its rows are read.
func TestLoadTraceWithin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 1 << 16, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	pages := make([]int64, 1<<16)
	for i := range pages {
		pages[i] = int64(i)
	}
	for e := int64(1); e <= 4; e++ {
		require.NoError(t, w.WriteEpoch(e*epochMS, pages, nil))
	}
	require.NoError(t, w.Close())
	_, err = LoadTraceWithin(path, 512<<10)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "claims 262144 rows: loading needs 1.0 MiB (262144 rows × 4 B); have 512.0 KiB (--max-memory)")
	tr, err := LoadTraceWithin(path, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<18), tr.Rows())
	assert.Equal(t, 1<<18, cap(tr.Pages), "one allocation of the claimed rows")
}
