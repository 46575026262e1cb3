package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/microwiper/microwiper/cmd/microwiper/internal/units"
	"github.com/microwiper/microwiper/report"
)

var reportCommand = command{
	name:     "report",
	synopsis: "merge result directories (shards of a sweep) into report.md, a self-contained report.html and SVG/PNG/PDF figures",
	usage:    "[flags] RESULTDIR [RESULTDIR ...]",
	example: `microwiper report -out out/report out/run1
microwiper report -out out/report -trace traces/wws.parquet shard-0 shard-1 shard-2`,
	setFlags: func(fs *flag.FlagSet) {
		fs.String("out", "out/report", "directory for report.md, report.html and the figures")
		fs.Var(&pathList{}, "trace", "trace `file` to draw a dirtying heatmap and rate CDF of (repeatable)")
		fs.Int("stripes", report.DefaultStripes, "stripes of the trace heatmap and rate CDF")
		fs.String("rounds-trace", "", "trace of the per-round figure (default: chosen from the results)")
		fs.String("rounds-bw", "", "bandwidth of the per-round figure, e.g. 1Gbit (default: the middle one)")
		fs.String("title", "", "report title (default \"microwiper report\")")
	},
	run: runReport,
}

// pathList is a repeatable string flag.
type pathList []string

func (p *pathList) String() string { return strings.Join(*p, ",") }
func (p *pathList) Get() any       { return []string(*p) }
func (p *pathList) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty path")
	}
	*p = append(*p, s)
	return nil
}

func runReport(_ context.Context, cio *cmdIO, fs *flag.FlagSet) error {
	f := traceFlags{fs}
	if fs.NArg() == 0 {
		return usageErrorf("want at least one result directory (the -out of microwiper replay or run)")
	}
	opt := report.Options{
		OutDir:      f.str("out"),
		Traces:      f.get("trace").([]string),
		Stripes:     f.get("stripes").(int),
		RoundsTrace: f.str("rounds-trace"),
		Title:       f.str("title"),
	}
	if opt.OutDir == "" {
		return usageErrorf("-out is empty: want a directory")
	}
	if opt.Stripes < 1 {
		return usageErrorf("-stripes = %d: want at least 1", opt.Stripes)
	}
	if s := f.str("rounds-bw"); s != "" {
		bps, err := units.BitRate(s)
		if err != nil {
			return usageErrorf("-rounds-bw: %v", err)
		}
		opt.RoundsBandwidthBps = bps
	}
	set, err := report.Load(fs.Args()...)
	if err != nil {
		return err
	}
	if len(set.Runs) == 0 {
		return fmt.Errorf("no runs in %s: nothing to report", strings.Join(fs.Args(), ", "))
	}
	w, err := report.Write(set, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(cio.stdout, "wrote %s/report.md, report.html and %d figures (%d runs from %d %s)\n",
		opt.OutDir, len(w.Figures), len(set.Runs), len(set.Dirs), reportPlural(len(set.Dirs), "directory", "directories"))
	return nil
}

func reportPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
