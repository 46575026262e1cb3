package traces

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/microwiper/microwiper/internal/splitmix"
	"github.com/microwiper/microwiper/tracefmt"
)

// Generator streams one synthetic trace epoch by epoch, in the shape of
// tracefmt.Reader: the initial image (if any) first, then every epoch that
// has at least one write, in time order. Memory is O(Pages), whatever the
// duration. It is not safe for concurrent use.
type Generator struct {
	cfg     Config
	header  tracefmt.Header
	epochNS int64
	epochs  int64 // epochs in the trace
	next    int64 // number of the next epoch, from 1
	started bool

	draw      *rand.Rand  // write draws
	alias     *aliasTable // hotcold: block rank law
	zipf      *rand.Zipf  // hotcold: block rank law when too big for alias
	perEpoch  float64     // random writes per epoch (wws: background only)
	carry     float64     // fractional writes carried to the next epoch
	blockPerm []int64     // hotcold: block rank → block index
	hot       []int64     // wws: hot pages, ascending
	hotWrites int32       // wws: writes per hot page per epoch
	cursor    int64       // sweep: next page to write

	count   []int32 // writes per page in the epoch being built; zero between epochs
	touched []int64 // pages with a nonzero count, in hit order
	pages   []int64
	writes  []int32
	epoch   tracefmt.Epoch
}

// New returns a generator for cfg, or the first bad field of cfg.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	g := &Generator{
		cfg:     c,
		header:  c.Header(),
		epochNS: int64(c.Epoch),
		epochs:  int64(c.Duration / c.Epoch),
		next:    1,
		// Two streams from one seed: the layout (which pages are hot) must
		// not change when only the intensity does.
		draw:     rand.New(rand.NewPCG(c.Seed, 0x6d6963726f776970)),
		perEpoch: c.Intensity * c.Epoch.Seconds(),
	}
	layout := rand.New(rand.NewPCG(c.Seed, 0x6c61796f75740a00))
	if c.Kind != Sweep {
		g.count = make([]int32, c.Pages)
	}
	switch c.Kind {
	case HotCold:
		g.blockPerm = blockPermutation(layout, c.Pages, c.Cluster)
		if n := len(g.blockPerm); n <= maxAliasRanks {
			g.alias = newZipfAlias(n, c.Skew)
		} else {
			g.zipf = rand.NewZipf(g.draw, c.Skew, 1, uint64(n-1))
		}
	case WWS:
		g.hot = hotSet(layout, c.Pages, c.Cluster, c.HotPages)
		hotPerEpoch := g.perEpoch * c.HotShare
		g.hotWrites = int32(min(max(math.Round(hotPerEpoch/float64(len(g.hot))), 1), math.MaxInt32))
		g.perEpoch -= hotPerEpoch
	}
	return g, nil
}

// Header is the trace's header.
func (g *Generator) Header() tracefmt.Header { return g.header }

// Scan advances to the next epoch with rows; false at the end.
func (g *Generator) Scan() bool {
	if !g.started {
		g.started = true
		if g.cfg.Initial > 0 {
			g.initialImage()
			if len(g.pages) > 0 {
				g.epoch = tracefmt.Epoch{Pages: g.pages, Writes: g.writes, Initial: true}
				return true
			}
		}
	}
	for g.next <= g.epochs {
		k := g.next
		g.next++
		g.generate(k)
		if len(g.pages) > 0 {
			g.epoch = tracefmt.Epoch{TNS: k * g.epochNS, Pages: g.pages, Writes: g.writes}
			return true
		}
	}
	g.epoch = tracefmt.Epoch{}
	return false
}

// Epoch is the current epoch. Its slices are reused by the next Scan.
func (g *Generator) Epoch() tracefmt.Epoch { return g.epoch }

// Err is always nil: a generator cannot fail once New succeeds. It exists
// so that a Generator and a tracefmt.Reader are used the same way.
func (g *Generator) Err() error { return nil }

// initialImage lists a pseudo-random fraction Initial of the pages, each
// decided by a hash of the seed and the page, so the choice does not depend
// on anything else.
func (g *Generator) initialImage() {
	g.pages, g.writes = g.pages[:0], g.writes[:0]
	threshold := uint64(g.cfg.Initial * (1 << 63))
	for p := range g.cfg.Pages {
		if g.cfg.Initial >= 1 || splitmix.Mix(g.cfg.Seed^uint64(p)*0x9E3779B97F4A7C15)>>1 < threshold {
			g.pages = append(g.pages, p)
			g.writes = append(g.writes, 0)
		}
	}
}

// writesThisEpoch turns the mean writes per epoch into a whole number,
// carrying the fraction so the long-run rate is exact.
func (g *Generator) writesThisEpoch() int64 {
	x := g.carry + g.perEpoch
	n := math.Floor(x)
	g.carry = x - n
	return int64(n)
}

// generate builds epoch k (covering ((k-1)E, kE]) into g.pages/g.writes.
func (g *Generator) generate(k int64) {
	c := &g.cfg
	n := g.writesThisEpoch()
	switch c.Kind {
	case Uniform:
		for range n {
			g.hit(g.draw.Int64N(c.Pages), 1)
		}
	case HotCold:
		last := int64(len(g.blockPerm)) - 1
		for range n {
			var rank uint64
			if g.alias != nil {
				rank = g.alias.draw(g.draw)
			} else {
				rank = g.zipf.Uint64()
			}
			b := g.blockPerm[rank]
			first := b * c.Cluster
			size := c.Cluster
			if b == last {
				size = c.Pages - first
			}
			g.hit(first+g.draw.Int64N(size), 1)
		}
	case Phase:
		phase := uint64((k - 1) * g.epochNS / int64(c.PhaseLength))
		first := int64(splitmix.Mix(c.Seed^(phase+1)*0xD1B54A32D192ED03) % uint64(c.Pages-c.WorkingSet+1))
		for range n {
			g.hit(first+g.draw.Int64N(c.WorkingSet), 1)
		}
	case WWS:
		for _, p := range g.hot {
			g.hit(p, g.hotWrites)
		}
		for range n {
			g.hit(g.draw.Int64N(c.Pages), 1)
		}
	case Sweep:
		g.sweep(n)
		return
	}
	g.collect()
}

// hit records w writes to page p in the epoch being built.
func (g *Generator) hit(p int64, w int32) {
	old := g.count[p]
	if old == 0 {
		g.touched = append(g.touched, p)
	}
	if old > math.MaxInt32-w {
		g.count[p] = math.MaxInt32
		return
	}
	g.count[p] = old + w
}

// collect moves the epoch's counts into g.pages/g.writes in page order and
// clears them. An epoch touching more than 1/128 of memory is gathered by
// scanning the counts (a linear pass over 4 bytes a page), which measured
// cheaper than sorting its page list.
func (g *Generator) collect() {
	g.pages, g.writes = g.pages[:0], g.writes[:0]
	if int64(len(g.touched)) > g.cfg.Pages/128 {
		for p, w := range g.count {
			if w != 0 {
				g.pages = append(g.pages, int64(p))
				g.writes = append(g.writes, w)
				g.count[p] = 0
			}
		}
	} else {
		slices.Sort(g.touched)
		for _, p := range g.touched {
			g.pages = append(g.pages, p)
			g.writes = append(g.writes, g.count[p])
			g.count[p] = 0
		}
	}
	g.touched = g.touched[:0]
}

// sweep writes the next n pages from the cursor, wrapping; n ≥ Pages
// writes every page once per full pass.
func (g *Generator) sweep(n int64) {
	P := g.cfg.Pages
	g.pages, g.writes = g.pages[:0], g.writes[:0]
	passes, rest := n/P, n%P
	start, end := g.cursor, g.cursor+rest
	in := func(p int64) bool { return (p >= start && p < end) || p < end-P }
	if passes > 0 {
		for p := range P {
			w := passes
			if in(p) {
				w++
			}
			g.pages = append(g.pages, p)
			g.writes = append(g.writes, int32(min(w, math.MaxInt32)))
		}
	} else {
		for p := range max(end-P, 0) {
			g.pages = append(g.pages, p)
			g.writes = append(g.writes, 1)
		}
		for p := start; p < min(end, P); p++ {
			g.pages = append(g.pages, p)
			g.writes = append(g.writes, 1)
		}
	}
	g.cursor = end % P
}

// blockPermutation cuts memory into blocks of cluster pages and returns
// them in a random order: rank r's block is perm[r].
func blockPermutation(r *rand.Rand, pages, cluster int64) []int64 {
	n := (pages + cluster - 1) / cluster
	perm := make([]int64, n)
	for i := range perm {
		perm[i] = int64(i)
	}
	r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return perm
}

// hotSet picks hot pages, in runs of cluster pages at random places, until
// it holds want pages; returned ascending.
func hotSet(r *rand.Rand, pages, cluster, want int64) []int64 {
	perm := blockPermutation(r, pages, cluster)
	hot := make([]int64, 0, want)
	for _, b := range perm {
		for p := b * cluster; p < min((b+1)*cluster, pages) && int64(len(hot)) < want; p++ {
			hot = append(hot, p)
		}
		if int64(len(hot)) == want {
			break
		}
	}
	slices.Sort(hot)
	return hot
}

// Write generates the trace for cfg into path through tracefmt.Writer and
// returns the rows written. It stops early, with ctx's error, when ctx is
// cancelled.
func Write(ctx context.Context, path string, cfg Config, opts tracefmt.WriterOptions) (int64, error) {
	g, err := New(cfg)
	if err != nil {
		return 0, err
	}
	return WriteGenerator(ctx, g, path, opts, nil)
}

// WriteGenerator writes what g generates (from where it stands) into path.
// progress, if not nil, is called now and then with the epochs generated so
// far and the total.
func WriteGenerator(ctx context.Context, g *Generator, path string, opts tracefmt.WriterOptions, progress func(done, total int64)) (int64, error) {
	w, err := tracefmt.Create(path, g.Header(), opts)
	if err != nil {
		return 0, err
	}
	for i := 0; g.Scan(); i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				w.Abort() // a cut-short trace must not replace the file at path
				return w.Rows(), fmt.Errorf("generate %s: %w", path, err)
			}
			if progress != nil {
				progress(g.next-1, g.epochs)
			}
		}
		e := g.Epoch()
		var err error
		if e.Initial {
			err = w.WriteInitial(e.Pages)
		} else {
			err = w.WriteEpoch(e.TNS, e.Pages, e.Writes)
		}
		if err != nil {
			w.Abort()
			return w.Rows(), fmt.Errorf("generate %s: %w", path, err)
		}
	}
	if err := w.Close(); err != nil {
		return w.Rows(), fmt.Errorf("generate %s: %w", path, err)
	}
	if progress != nil {
		progress(g.epochs, g.epochs)
	}
	return w.Rows(), nil
}
