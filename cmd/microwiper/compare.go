package main

import (
	"context"
	"flag"
	"fmt"
	"math"

	"github.com/microwiper/microwiper/report"
)

var compareCommand = command{
	name:     "compare",
	synopsis: "test two result sets (directories or benchmark-format files) for significant differences, per benchmark and metric",
	usage:    "OLD NEW",
	example: `microwiper compare out/before out/after
microwiper compare before.txt after.txt
microwiper compare -fail-worse 5 baseline.txt candidate.txt   # exit 1 on a significant regression above 5%`,
	bind: withOptions(runCompare),
}

// compareOptions are the flags of compare.
type compareOptions struct {
	FailWorse float64
}

func (o *compareOptions) bind(fs *flag.FlagSet) {
	fs.Float64Var(&o.FailWorse, "fail-worse", -1, "exit 1 when a metric got significantly worse (higher) by more than this `percent`; negative: never")
}

func runCompare(_ context.Context, cio *cmdIO, o *compareOptions, args []string) error {
	if len(args) != 2 {
		return usageErrorf("want OLD and NEW (result directories or benchmark-format files), got %d arguments", len(args))
	}
	// NaN compares false with everything: it would never fail a build.
	limit := o.FailWorse
	if math.IsNaN(limit) || math.IsInf(limit, 0) {
		return usageErrorf("-fail-worse %g: want a percentage (negative: never fail)", limit)
	}
	old, err := report.ReadSamples(args[0])
	if err != nil {
		return err
	}
	new, err := report.ReadSamples(args[1])
	if err != nil {
		return err
	}
	for _, s := range []*report.Samples{old, new} {
		for _, w := range s.Warnings {
			fmt.Fprintf(cio.stderr, "microwiper compare: skipped %s\n", w)
		}
	}
	c := report.CompareSamples(old, new)
	if err := c.Write(cio.stdout); err != nil {
		return err
	}
	if limit < 0 {
		return nil
	}
	if regs := c.Regressions(limit); len(regs) > 0 {
		worst := regs[0]
		for _, r := range regs {
			if r.Delta > worst.Delta {
				worst = r
			}
		}
		return fmt.Errorf("%d significant regressions above %g%% (-fail-worse), worst %s %s %+.2f%%", len(regs), limit, worst.Name, worst.Unit, worst.Delta)
	}
	return nil
}
