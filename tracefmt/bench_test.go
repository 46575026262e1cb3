package tracefmt

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// benchRows is the size of the benchmark trace named in the issue: 10
// million rows of a hot/cold workload.
const benchRows = 10_000_000

// hotColdEpochs builds about rows rows of a hot/cold trace over a 4 GiB
// memory (2^20 pages): each 100 ms epoch writes 5% of a scattered hot set
// of 64 Ki pages with high probability, and a Zipf-skewed sprinkle of cold
// pages.
func hotColdEpochs(rows int) (Header, []Epoch) {
	const pages = 1 << 20
	h := testHeader(pages)
	rng := rand.New(rand.NewPCG(1, 2))
	hot := make([]int64, 1<<16)
	for i := range hot {
		hot[i] = rng.Int64N(pages)
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 8, pages-1)
	var epochs []Epoch
	seen := make([]int64, pages)
	total := 0
	for t := int64(1); total < rows; t++ {
		var ps []int64
		mark := func(p int64) {
			if seen[p] != t {
				seen[p] = t
				ps = append(ps, p)
			}
		}
		for range 15000 {
			mark(hot[rng.IntN(len(hot))])
		}
		for range 2000 {
			mark(int64(zipf.Uint64()))
		}
		slices.Sort(ps)
		if total+len(ps) > rows {
			ps = ps[:rows-total]
		}
		total += len(ps)
		epochs = append(epochs, Epoch{TNS: t * h.EpochNS, Pages: ps})
	}
	return h, epochs
}

var benchTrace = sync.OnceValues(func() (Header, []Epoch) { return hotColdEpochs(benchRows) })

func BenchmarkWrite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.parquet")
	for b.Loop() {
		writeBenchTrace(b, path)
	}
	b.StopTimer()
	reportRates(b, path)
}

// writeBenchTrace writes the benchmark trace to path.
func writeBenchTrace(b *testing.B, path string) {
	h, epochs := benchTrace()
	w, err := Create(path, h, WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range epochs {
		if err := w.WriteEpoch(e.TNS, e.Pages, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.parquet")
	writeBenchTrace(b, path)
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for r.Scan() {
			n += len(r.Epoch().Pages)
		}
		if r.Err() != nil || n != benchRows {
			b.Fatalf("read %d rows: %v", n, r.Err())
		}
		r.Close()
	}
	b.StopTimer()
	reportRates(b, path)
}

func reportRates(b *testing.B, path string) {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(benchRows)/perOp/1e6, "Mrows/s")
	b.ReportMetric(float64(st.Size())/benchRows, "bytes/row")
	b.ReportMetric(math.Round(float64(st.Size())/1e6), "MB")
}
