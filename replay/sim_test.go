package replay

import (
	"context"
	"testing"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/require"
)

// Hand-computed cases use 4096-byte pages, no header and a link of
// 32,768,000 bit/s, so that one page takes exactly 1 ms; epochs are 10 ms.
const (
	msPage  = 32_768_000
	ms      = int64(time.Millisecond)
	epochMS = 10 * ms
)

// newTestTrace builds a trace of pages pages whose epochs are given as
// time (ms) → pages.
func newTestTrace(t testing.TB, pages int64, epochs ...epoch) *Trace {
	t.Helper()
	tr := NewTrace("hand", tracefmt.Header{PageSize: 4096, Pages: pages, EpochNS: epochMS, Backend: tracefmt.BackendSynthetic})
	for _, e := range epochs {
		require.NoError(t, tr.AddEpoch(e.ms*ms, e.pages))
	}
	return tr
}

type epoch struct {
	ms    int64
	pages []int32
}

func handConfig(rtt int64, dirty DirtyModel, after AfterTrace) Config {
	return Config{Link: Link{Bps: msPage, RTTNS: rtt}, Time: TimeModel{Dirty: dirty, After: after}}
}

func runAlg(t testing.TB, tr *Trace, name string, cfg Config, params ...string) *results.Result {
	t.Helper()
	alg, err := algorithms.New(name)
	require.NoError(t, err)
	for i := 0; i < len(params); i += 2 {
		require.NoError(t, algorithms.Set(alg, params[i], params[i+1]))
	}
	res, err := Sim{}.Run(context.Background(), tr, alg, cfg)
	require.NoError(t, err)
	require.Zero(t, res.LostPages, "lost updates")
	return res
}

// row is the part of a RoundRow the hand cases check.
type row struct{ start, dur, sent, skipped, held, dirtied, remaining int64 }

func rowsOf(res *results.Result) []row {
	var out []row
	for _, r := range res.RoundRows {
		out = append(out, row{r.StartNS / ms, r.DurationNS / ms, r.PagesSent, r.PagesSkipped, r.PagesHeld, r.PagesDirtied, r.RemainingDirty})
	}
	return out
}
