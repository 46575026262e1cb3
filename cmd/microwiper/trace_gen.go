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
	setFlags: func(fs *flag.FlagSet) {
		fs.String("kind", string(traces.HotCold), "generator: "+kindNames())
		fs.Int64("pages", 0, "memory size in pages (or give -memory)")
		var mem bytesFlag
		fs.Var(&mem, "memory", "memory size in bytes, e.g. 1GiB (instead of -pages)")
		fs.Int64("page-size", traces.DefaultPageSize, "page size in bytes")
		declareDuration(fs, "duration", 10*time.Second, "trace length")
		declareDuration(fs, "epoch", traces.DefaultEpoch, "observation epoch")
		fs.Float64("intensity", 0, "mean page writes per second (sweep: pages swept per second); 0 means pages/10")
		fs.Uint64("seed", 1, "random seed: the same flags and seed give the same trace")
		fs.Float64("initial", 0, "fraction of pages in the initial image; 0 writes none (every page holds data)")
		fs.Float64("skew", traces.DefaultSkew, "hotcold: Zipf exponent (> 1)")
		fs.Int64("cluster", traces.DefaultCluster, "hotcold, wws: pages per contiguous hot run")
		fs.Int64("working-set", 0, "phase: working set in pages; 0 means pages/8")
		declareDuration(fs, "phase", 0, "phase: time the working set stays in place; 0 means duration/4")
		fs.Int64("hot-pages", 0, "wws: hot set in pages; 0 means pages/64")
		fs.Float64("hot-share", traces.DefaultHotShare, "wws: share of writes going to the hot set")
		fs.Int64("segment-rows", 0, "write a directory of segment files of about this many rows; 0 writes one file")
		fs.String("o", "", "output trace path (required)")
	},
	run: runTraceGen,
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

func runTraceGen(ctx context.Context, cio *cmdIO, fs *flag.FlagSet) error {
	f := traceFlags{fs}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q: trace gen takes flags only", fs.Arg(0))
	}
	out := f.str("o")
	if out == "" {
		return usageErrorf("-o is required: the trace file to write")
	}
	cfg := traces.Config{
		Kind:        traces.Kind(f.str("kind")),
		Pages:       f.int64("pages"),
		PageSize:    f.int64("page-size"),
		Duration:    f.duration("duration"),
		Epoch:       f.duration("epoch"),
		Intensity:   f.float("intensity"),
		Seed:        f.uint64("seed"),
		Initial:     f.float("initial"),
		Skew:        f.float("skew"),
		Cluster:     f.int64("cluster"),
		WorkingSet:  f.int64("working-set"),
		PhaseLength: f.duration("phase"),
		HotPages:    f.int64("hot-pages"),
		HotShare:    f.float("hot-share"),
	}
	if cfg.PageSize <= 0 || cfg.PageSize&(cfg.PageSize-1) != 0 {
		return usageErrorf("-page-size = %d: want a positive power of two", cfg.PageSize)
	}
	switch mem := f.int64("memory"); {
	case f.set("pages") && f.set("memory"):
		return usageErrorf("give -pages or -memory, not both")
	case f.set("memory"):
		if mem%cfg.PageSize != 0 {
			return usageErrorf("-memory = %d bytes is not a whole number of %d-byte pages", mem, cfg.PageSize)
		}
		cfg.Pages = mem / cfg.PageSize
	case !f.set("pages"):
		return usageErrorf("-pages or -memory is required: the memory size")
	}
	if cfg.Epoch == 0 {
		return usageErrorf("-epoch = 0: want a positive duration")
	}
	if err := cfg.Check(); err != nil {
		return usageErrorf("-%v", err)
	}
	if _, err := os.Stat(out); err == nil && f.int64("segment-rows") == 0 {
		// Overwriting is what a user re-running gen wants; say so in the log.
		fmt.Fprintf(cio.stderr, "overwriting %s\n", out)
	}
	start := time.Now()
	g, err := traces.New(cfg)
	if err != nil {
		return usageErrorf("-%v", err)
	}
	segmentRows := f.int64("segment-rows")
	rows, err := traces.WriteGenerator(ctx, g, out, tracefmt.WriterOptions{SegmentRows: segmentRows}, terminalProgress(cio.stderr, "generating"))
	if err != nil {
		if segmentRows == 0 {
			os.Remove(out) // a cut-short synthetic trace would pass for a whole one
		}
		return fmt.Errorf("write %s (-o): %w", out, err)
	}
	size, _ := traceFileBytes(out)
	fmt.Fprintf(cio.stdout, "wrote %s: %d rows, %s, %.2f bytes/row in %.1fs\n",
		out, rows, traceHumanBytes(size), float64(size)/float64(max(rows, 1)), time.Since(start).Seconds())
	return nil
}
