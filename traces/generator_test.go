package traces

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// collectAll runs a generator to the end and returns deep copies of its epochs.
func collectAll(t testing.TB, cfg Config) []tracefmt.Epoch {
	t.Helper()
	g, err := New(cfg)
	require.NoError(t, err)
	var out []tracefmt.Epoch
	for g.Scan() {
		e := g.Epoch()
		out = append(out, tracefmt.Epoch{TNS: e.TNS, Pages: slices.Clone(e.Pages), Writes: slices.Clone(e.Writes), Initial: e.Initial})
	}
	require.NoError(t, g.Err())
	return out
}

func baseConfig(k Kind) Config {
	return Config{Kind: k, Pages: 4096, Duration: 5 * time.Second, Epoch: 100 * time.Millisecond, Intensity: 20000, Seed: 7}
}

func TestDeterminism(t *testing.T) {
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			cfg := baseConfig(k)
			cfg.Initial = 0.5
			a, b := collectAll(t, cfg), collectAll(t, cfg)
			require.NotEmpty(t, a)
			require.Equal(t, a, b, "same seed must give the same rows")
			cfg.Seed++
			c := collectAll(t, cfg)
			if k != Sweep { // a sweep does not depend on the seed except for the initial image
				assert.NotEqual(t, a[1:], c[1:], "another seed must give other rows")
			}
			assert.NotEqual(t, a[0].Pages, c[0].Pages, "another seed must give another initial image")
		})
	}
}

// TestInvariants checks every generator's output against the format's rules:
// epochs in strictly increasing time on the epoch grid, pages ascending and
// unique and in range, writes ≥ 1 outside the initial image.
func TestInvariants(t *testing.T) {
	for _, k := range Kinds() {
		for _, initial := range []float64{0, 0.3, 1} {
			cfg := baseConfig(k)
			cfg.Initial = initial
			g, err := New(cfg)
			require.NoError(t, err)
			h := g.Header()
			require.NoError(t, h.Check())
			assert.Equal(t, tracefmt.BackendSynthetic, h.Backend)
			assert.Contains(t, h.Workload, "synthetic:"+string(k))
			epochs := collectAll(t, cfg)
			last := int64(-1)
			for i, e := range epochs {
				require.Len(t, e.Writes, len(e.Pages))
				if e.Initial {
					require.Zero(t, i, "initial image must come first")
					require.Zero(t, e.TNS)
					if initial == 1 {
						require.EqualValues(t, cfg.Pages, len(e.Pages))
					} else {
						assert.InDelta(t, initial, float64(len(e.Pages))/float64(cfg.Pages), 0.05)
					}
				} else {
					require.Greater(t, e.TNS, last)
					require.Zero(t, e.TNS%int64(cfg.Epoch))
					require.LessOrEqual(t, e.TNS, int64(cfg.Duration))
					last = e.TNS
				}
				// Plain comparisons: testify per element made this test slow.
				for j, p := range e.Pages {
					switch {
					case p < 0 || p >= cfg.Pages:
						t.Fatalf("%s t=%d: page %d out of range", k, e.TNS, p)
					case j > 0 && p <= e.Pages[j-1]:
						t.Fatalf("%s t=%d: page %d after %d", k, e.TNS, p, e.Pages[j-1])
					case e.Initial && e.Writes[j] != 0:
						t.Fatalf("%s: initial page %d has writes %d", k, p, e.Writes[j])
					case !e.Initial && e.Writes[j] <= 0:
						t.Fatalf("%s t=%d: page %d has writes %d", k, e.TNS, p, e.Writes[j])
					}
				}
			}
			if initial == 0 {
				require.False(t, epochs[0].Initial, "%s: no initial rows unless asked", k)
			} else {
				require.True(t, epochs[0].Initial)
			}
		}
	}
}

// totals sums writes per page over all non-initial epochs.
func totals(epochs []tracefmt.Epoch, pages int64) ([]int64, int64) {
	per := make([]int64, pages)
	var sum int64
	for _, e := range epochs {
		if e.Initial {
			continue
		}
		for j, p := range e.Pages {
			per[p] += int64(e.Writes[j])
			sum += int64(e.Writes[j])
		}
	}
	return per, sum
}

func TestIntensity(t *testing.T) {
	for _, k := range []Kind{Uniform, HotCold, Phase, Sweep} {
		cfg := baseConfig(k)
		cfg.Intensity = 12345.5
		_, sum := totals(collectAll(t, cfg), cfg.Pages)
		want := cfg.Intensity * cfg.Duration.Seconds()
		assert.InDelta(t, want, float64(sum), 1, "%s: total writes must equal intensity × duration", k)
	}
}

func TestUniformIsFlat(t *testing.T) {
	cfg := baseConfig(Uniform)
	cfg.Intensity = 200000 // 244 writes a page on average
	per, sum := totals(collectAll(t, cfg), cfg.Pages)
	mean := float64(sum) / float64(cfg.Pages)
	// Chi-square against the uniform law: for 4095 degrees of freedom the
	// statistic is about 4095 ± 90; 4600 is far outside that.
	var chi float64
	for _, n := range per {
		d := float64(n) - mean
		chi += d * d / mean
	}
	assert.Less(t, chi, 4600.0)
	assert.Greater(t, chi, 3600.0, "suspiciously regular: not random")
}

func TestHotColdHotSetTakesMostWrites(t *testing.T) {
	cfg := baseConfig(HotCold)
	per, sum := totals(collectAll(t, cfg), cfg.Pages)
	slices.SortFunc(per, func(a, b int64) int { return int(b - a) })
	var top int64
	for _, n := range per[:len(per)/10] {
		top += n
	}
	share := float64(top) / float64(sum)
	assert.Greater(t, share, 0.7, "hottest 10%% of pages take %.2f of writes", share)
	// The hottest blocks are contiguous runs of Cluster pages: the hottest
	// page's block neighbours are hot too.
	g, err := New(cfg)
	require.NoError(t, err)
	per, _ = totals(collectAll(t, cfg), cfg.Pages)
	b := g.blockPerm[0]
	for p := b * DefaultCluster; p < (b+1)*DefaultCluster; p++ {
		assert.Greater(t, per[p], int64(sum)/cfg.Pages, "page %d of the hottest run", p)
	}
}

func TestSweepIsSequential(t *testing.T) {
	cfg := baseConfig(Sweep)
	cfg.Intensity = 1000 // 100 pages an epoch
	epochs := collectAll(t, cfg)
	next := int64(0)
	for _, e := range epochs {
		var want []int64
		for range 100 {
			want = append(want, next)
			next = (next + 1) % cfg.Pages
		}
		slices.Sort(want) // a wrapping window lists its low pages first
		require.Equal(t, want, e.Pages, "t=%d", e.TNS)
	}
	// Faster than memory: every page in every epoch, counted per pass.
	cfg.Intensity = 2.5 * float64(cfg.Pages) * 10
	epochs = collectAll(t, cfg)
	for _, e := range epochs {
		require.EqualValues(t, cfg.Pages, len(e.Pages))
		for _, w := range e.Writes {
			require.True(t, w == 2 || w == 3)
		}
	}
}

func TestSweepWraps(t *testing.T) {
	cfg := Config{Kind: Sweep, Pages: 10, Duration: 3 * time.Second, Epoch: time.Second, Intensity: 7}
	epochs := collectAll(t, cfg)
	require.Len(t, epochs, 3)
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6}, epochs[0].Pages)
	assert.Equal(t, []int64{0, 1, 2, 3, 7, 8, 9}, epochs[1].Pages)
	assert.Equal(t, []int64{4, 5, 6, 7, 8, 9, 0}[:6], epochs[2].Pages[1:])
}

func TestPhaseWorkingSetMoves(t *testing.T) {
	cfg := baseConfig(Phase)
	cfg.Duration = 4 * time.Second
	cfg.PhaseLength = time.Second
	cfg.WorkingSet = 256
	epochs := collectAll(t, cfg)
	var spans [][2]int64
	for _, e := range epochs {
		ph := (e.TNS - 1) / int64(time.Second)
		for int64(len(spans)) <= ph {
			spans = append(spans, [2]int64{math.MaxInt64, -1})
		}
		spans[ph][0] = min(spans[ph][0], e.Pages[0])
		spans[ph][1] = max(spans[ph][1], e.Pages[len(e.Pages)-1])
	}
	require.Len(t, spans, 4)
	moved := 0
	for i, s := range spans {
		assert.Less(t, s[1]-s[0], cfg.WorkingSet, "phase %d writes outside one working set", i)
		if i > 0 && s[0] != spans[i-1][0] {
			moved++
		}
	}
	assert.GreaterOrEqual(t, moved, 2, "working set must move between phases")
}

func TestWWSHotSetEveryEpoch(t *testing.T) {
	cfg := baseConfig(WWS)
	cfg.Intensity = 2000 // 200 writes an epoch, 20 background
	g, err := New(cfg)
	require.NoError(t, err)
	hot := g.hot
	require.Len(t, hot, int(cfg.Pages/64))
	epochs := collectAll(t, cfg)
	var background int64
	for _, e := range epochs {
		for _, p := range hot {
			_, ok := slices.BinarySearch(e.Pages, p)
			require.True(t, ok, "hot page %d missing at t=%d", p, e.TNS)
		}
		background += int64(len(e.Pages) - len(hot))
	}
	// 20 background writes an epoch, nearly all to distinct cold pages.
	perEpoch := float64(background) / float64(len(epochs))
	assert.InDelta(t, 20*(1-1.0/64), perEpoch, 3)
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	ok := baseConfig(Uniform)
	cases := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Kind = "zipf" }, "kind"},
		{func(c *Config) { c.Pages = 0 }, "pages"},
		{func(c *Config) { c.Pages = MaxPages + 1 }, "pages"},
		{func(c *Config) { c.PageSize = 3000 }, "page-size"},
		{func(c *Config) { c.Epoch = -1 }, "epoch"},
		{func(c *Config) { c.Duration = time.Millisecond }, "duration"},
		{func(c *Config) { c.Duration = 1000 * time.Hour; c.Epoch = time.Microsecond }, "duration"},
		{func(c *Config) { c.Intensity = math.NaN() }, "intensity"},
		{func(c *Config) { c.Intensity = -3 }, "intensity"},
		{func(c *Config) { c.Intensity = 1e12 }, "intensity"},
		{func(c *Config) { c.Initial = 1.5 }, "initial"},
		{func(c *Config) { c.Skew = 0.5 }, "skew"},
		{func(c *Config) { c.Cluster = -1 }, "cluster"},
		{func(c *Config) { c.WorkingSet = 1 << 20 }, "working-set"},
		{func(c *Config) { c.PhaseLength = -time.Second }, "phase"},
		{func(c *Config) { c.HotPages = -2 }, "hot-pages"},
		{func(c *Config) { c.HotShare = 2 }, "hot-share"},
	}
	for _, tc := range cases {
		c := ok
		tc.mutate(&c)
		_, err := New(c)
		require.Error(t, err)
		assert.Regexp(t, "^"+tc.want+" ", err.Error())
	}
	_, err := New(ok)
	require.NoError(t, err)
}

func TestWorkloadRecordsParameters(t *testing.T) {
	cfg := baseConfig(HotCold)
	cfg.Initial = 0.25
	assert.Equal(t, "synthetic:hotcold pages=4096 duration=5s epoch=100ms intensity=20000 seed=7 initial=0.25 skew=1.2 cluster=8", cfg.Workload())
}

// BenchmarkHotCold10M measures generating a 10.7-million-row hot/cold
// trace in memory: 256 Ki pages (1 GiB), 60 s of 100 ms epochs, 10^6
// writes/s. rows/s is the figure.
func BenchmarkHotCold10M(b *testing.B) {
	cfg := Config{Kind: HotCold, Pages: 1 << 18, Duration: 60 * time.Second, Intensity: 1e6, Seed: 1}
	benchGenerate(b, cfg)
}

// BenchmarkUniform10M is the same size with uniform writes.
func BenchmarkUniform10M(b *testing.B) {
	cfg := Config{Kind: Uniform, Pages: 1 << 18, Duration: 60 * time.Second, Intensity: 170000, Seed: 1}
	benchGenerate(b, cfg)
}

// BenchmarkWWS10M is the same size with a writable working set of 1/64 of
// memory plus background.
func BenchmarkWWS10M(b *testing.B) {
	cfg := Config{Kind: WWS, Pages: 1 << 18, Duration: 60 * time.Second, Intensity: 170000, Seed: 1}
	benchGenerate(b, cfg)
}

func benchGenerate(b *testing.B, cfg Config) {
	var rows int64
	for b.Loop() {
		rows = 0
		g, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for g.Scan() {
			rows += int64(len(g.Epoch().Pages))
		}
	}
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteHotCold10M generates the 10.7-million-row hot/cold trace of
// BenchmarkHotCold10M into a Parquet file through tracefmt.Writer: the cost
// of 'microwiper trace gen'.
func BenchmarkWriteHotCold10M(b *testing.B) {
	cfg := Config{Kind: HotCold, Pages: 1 << 18, Duration: 60 * time.Second, Intensity: 1e6, Seed: 1}
	path := filepath.Join(b.TempDir(), "hot.parquet")
	var rows int64
	for b.Loop() {
		var err error
		if rows, err = Write(context.Background(), path, cfg, tracefmt.WriterOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(fi.Size())/float64(rows), "bytes/row")
}
