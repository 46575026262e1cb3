package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/microwiper/microwiper/traces"
)

var traceGenCommand = command{
	name:     "trace gen",
	synopsis: "generate a deterministic synthetic trace (uniform, hotcold, sweep, phase, wws)",
	usage:    "[flags] -o trace.parquet",
	example: `microwiper trace gen -kind hotcold -memory 1GiB -duration 10s -intensity 1e5 -seed 1 -o hot.parquet
microwiper trace gen -kind wws -pages 65536 -hot-pages 512 -duration 30s -o wws.parquet`,
	bind: withOptions(runTraceGen),
}

// traceGenOptions are the flags of trace gen.
type traceGenOptions struct {
	Kind        string
	Pages       opt[int64]
	Memory      opt[int64]
	PageSize    int64
	Duration    time.Duration
	Epoch       time.Duration
	Intensity   float64
	Seed        uint64
	Initial     float64
	Skew        float64
	Cluster     int64
	WorkingSet  int64
	Phase       time.Duration
	HotPages    int64
	HotShare    float64
	SegmentRows int64
	Out         string
}

func (o *traceGenOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Kind, "kind", string(traces.HotCold), "generator: "+kindNames())
	optInt64Var(fs, &o.Pages, "pages", "memory size in pages (or give -memory)")
	optBytesVar(fs, &o.Memory, "memory", "memory size in bytes, e.g. 1GiB (instead of -pages)")
	fs.Int64Var(&o.PageSize, "page-size", traces.DefaultPageSize, "page size in bytes")
	durationVar(fs, &o.Duration, "duration", 10*time.Second, "trace length")
	durationVar(fs, &o.Epoch, "epoch", traces.DefaultEpoch, "observation epoch")
	fs.Float64Var(&o.Intensity, "intensity", 0, "mean page writes per second (sweep: pages swept per second); 0 means pages/10")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed: the same flags and seed give the same trace")
	fs.Float64Var(&o.Initial, "initial", 0, "fraction of pages in the initial image; 0 writes none (every page holds data)")
	fs.Float64Var(&o.Skew, "skew", traces.DefaultSkew, "hotcold: Zipf exponent (> 1)")
	fs.Int64Var(&o.Cluster, "cluster", traces.DefaultCluster, "hotcold, wws: pages per contiguous hot run")
	fs.Int64Var(&o.WorkingSet, "working-set", 0, "phase: working set in pages; 0 means pages/8")
	durationVar(fs, &o.Phase, "phase", 0, "phase: time the working set stays in place; 0 means duration/4")
	fs.Int64Var(&o.HotPages, "hot-pages", 0, "wws: hot set in pages; 0 means pages/64")
	fs.Float64Var(&o.HotShare, "hot-share", traces.DefaultHotShare, "wws: share of writes going to the hot set")
	fs.Int64Var(&o.SegmentRows, "segment-rows", 0, "write a directory of segment files of about this many rows; 0 writes one file")
	fs.StringVar(&o.Out, "o", "", "output trace path (required)")
}

// terminalProgress returns a progress callback that redraws one line on w
// at most every half second, or nil when w is not a terminal: progress
// must never end up in a log or a pipe.
func terminalProgress(w io.Writer, what string) func(done, total int64) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var last time.Time
	return func(done, total int64) {
		if done == total {
			if !last.IsZero() {
				fmt.Fprintf(w, "\r\033[K")
			}
			return
		}
		if time.Since(last) < 500*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "\r\033[K%s: %d%% (epoch %d of %d)", what, done*100/max(total, 1), done, total)
	}
}

func kindNames() string {
	var s []string
	for _, k := range traces.Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func runTraceGen(ctx context.Context, cio *cmdIO, o *traceGenOptions, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q: trace gen takes flags only", args[0])
	}
	out := o.Out
	if out == "" {
		return usageErrorf("-o is required: the trace file to write")
	}
	cfg := traces.Config{
		Kind:        traces.Kind(o.Kind),
		Pages:       o.Pages.V,
		PageSize:    o.PageSize,
		Duration:    o.Duration,
		Epoch:       o.Epoch,
		Intensity:   o.Intensity,
		Seed:        o.Seed,
		Initial:     o.Initial,
		Skew:        o.Skew,
		Cluster:     o.Cluster,
		WorkingSet:  o.WorkingSet,
		PhaseLength: o.Phase,
		HotPages:    o.HotPages,
		HotShare:    o.HotShare,
	}
	if cfg.PageSize <= 0 || cfg.PageSize&(cfg.PageSize-1) != 0 {
		return usageErrorf("-page-size = %d: want a positive power of two", cfg.PageSize)
	}
	switch mem := o.Memory.V; {
	case o.Pages.Set && o.Memory.Set:
		return usageErrorf("give -pages or -memory, not both")
	case o.Memory.Set:
		if mem%cfg.PageSize != 0 {
			return usageErrorf("-memory = %d bytes is not a whole number of %d-byte pages", mem, cfg.PageSize)
		}
		cfg.Pages = mem / cfg.PageSize
	case !o.Pages.Set:
		return usageErrorf("-pages or -memory is required: the memory size")
	}
	if cfg.Epoch == 0 {
		return usageErrorf("-epoch = 0: want a positive duration")
	}
	if err := cfg.Check(); err != nil {
		return usageErrorf("-%v", err)
	}
	segmentRows := o.SegmentRows
	if segmentRows < 0 {
		return usageErrorf("-segment-rows = %d: want 0 (one file) or more", segmentRows)
	}
	if segmentRows == 0 {
		// The trace is renamed over -o only once whole: an interrupted
		// run leaves an older file there as it was.
		if err := checkOutput(out, true); err != nil {
			return usageErrorf("-o: %v", err)
		}
		if _, err := os.Stat(out); err == nil {
			fmt.Fprintf(cio.stderr, "overwriting %s once the new trace is complete\n", out)
		}
	}
	start := time.Now()
	g, err := traces.New(cfg)
	if err != nil {
		return usageErrorf("-%v", err)
	}
	rows, err := traces.WriteGenerator(ctx, g, out, tracefmt.WriterOptions{SegmentRows: segmentRows}, terminalProgress(cio.stderr, "generating"))
	if err != nil {
		// Nothing to remove: a one-file trace was never renamed into
		// place; the segments of a cut-short directory say they are
		// unfinished.
		return fmt.Errorf("write %s (-o): %w", out, err)
	}
	size, _ := traceFileBytes(out)
	fmt.Fprintf(cio.stdout, "wrote %s: %d rows, %s, %.2f bytes/row in %.1fs\n",
		out, rows, traceHumanBytes(size), float64(size)/float64(max(rows, 1)), time.Since(start).Seconds())
	return nil
}
