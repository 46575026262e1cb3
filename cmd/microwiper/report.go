package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/microwiper/microwiper/report"
)

var reportCommand = command{
	name:     "report",
	synopsis: "merge result directories (shards of a sweep) into report.md, a self-contained report.html and SVG/PNG/PDF figures",
	usage:    "[flags] RESULTDIR [RESULTDIR ...]",
	example: `microwiper report -out out/report out/run1
microwiper report -out out/report -trace traces/wws.parquet shard-0 shard-1 shard-2`,
	bind: withOptions(runReport),
}

// reportOptions are the flags of report.
type reportOptions struct {
	Out         string
	Traces      []string
	Stripes     int
	RoundsTrace string
	RoundsBW    []int64
	Title       string
	// Reproduction, when set, writes the claim document (REPRODUCTION.md)
	// there, figures under ReproductionFigs.
	Reproduction     string
	ReproductionFigs string
	ReproductionRuns string
}

func (o *reportOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Out, "out", "out/report", "directory for report.md, report.html and the figures")
	listVar(fs, &o.Traces, "trace", "trace `file` to draw a dirtying heatmap and rate CDF of (repeatable)")
	fs.IntVar(&o.Stripes, "stripes", report.DefaultStripes, "stripes of the trace heatmap and rate CDF")
	fs.StringVar(&o.RoundsTrace, "rounds-trace", "", "trace of the per-round figure (default: chosen from the results)")
	bitRatesVar(fs, &o.RoundsBW, "rounds-bw", nil, "bandwidth of the per-round figure, e.g. 1Gbit (default: the middle one)")
	fs.StringVar(&o.Title, "title", "", "report title (default \"microwiper report\")")
	fs.StringVar(&o.Reproduction, "reproduction", "", "also write the claim document (e.g. REPRODUCTION.md): every Microwiper variant against xen-precopy per trace and link")
	fs.StringVar(&o.ReproductionFigs, "reproduction-figures", "", "directory for the claim document's figures (default: docs/reproduction next to it)")
	fs.StringVar(&o.ReproductionRuns, "reproduction-runs", "", "also keep the merged runs as DIR/runs.parquet, from which the claim document can be rebuilt")
}

func runReport(_ context.Context, cio *cmdIO, o *reportOptions, dirs []string) error {
	if len(dirs) == 0 {
		return usageErrorf("want at least one result directory (the -out of microwiper replay or run)")
	}
	opt := report.Options{
		OutDir:      o.Out,
		Traces:      o.Traces,
		Stripes:     o.Stripes,
		RoundsTrace: o.RoundsTrace,
		Title:       o.Title,
	}
	if opt.OutDir == "" {
		return usageErrorf("-out is empty: want a directory")
	}
	if opt.Stripes < 1 {
		return usageErrorf("-stripes = %d: want at least 1", opt.Stripes)
	}
	switch len(o.RoundsBW) {
	case 0:
	case 1:
		opt.RoundsBandwidthBps = o.RoundsBW[0]
	default:
		return usageErrorf("-rounds-bw: want one bandwidth, got %d", len(o.RoundsBW))
	}
	set, err := report.Load(dirs...)
	if err != nil {
		return err
	}
	if len(set.Runs) == 0 {
		return fmt.Errorf("no runs in %s: nothing to report", strings.Join(dirs, ", "))
	}
	w, err := report.Write(set, opt)
	if err != nil {
		return err
	}
	if o.Reproduction != "" {
		figs := o.ReproductionFigs
		if figs == "" {
			figs = filepath.Join(filepath.Dir(o.Reproduction), "docs", "reproduction")
		}
		ro := report.ReproductionOptions{Path: o.Reproduction, FigDir: figs, Command: "make reproduce", Traces: o.Traces}
		if err := report.WriteReproduction(set, ro); err != nil {
			return err
		}
		fmt.Fprintf(cio.stdout, "wrote %s (figures in %s)\n", o.Reproduction, figs)
		if o.ReproductionRuns != "" {
			if err := report.WriteReproductionRuns(set, o.ReproductionRuns); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "kept the %d runs in %s\n", len(set.Runs), o.ReproductionRuns)
		}
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
