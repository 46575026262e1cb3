package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/microwiper/microwiper/report"
)

var compareCommand = command{
	name:     "compare",
	synopsis: "test two result sets (directories or benchmark-format files) for significant differences, per benchmark and metric",
	usage:    "OLD NEW",
	example: `microwiper compare out/before out/after
microwiper compare before.txt after.txt`,
	run: runCompare,
}

func runCompare(_ context.Context, cio *cmdIO, fs *flag.FlagSet) error {
	if fs.NArg() != 2 {
		return usageErrorf("want OLD and NEW (result directories or benchmark-format files), got %d arguments", fs.NArg())
	}
	old, err := report.ReadSamples(fs.Arg(0))
	if err != nil {
		return err
	}
	new, err := report.ReadSamples(fs.Arg(1))
	if err != nil {
		return err
	}
	for _, s := range []*report.Samples{old, new} {
		for _, w := range s.Warnings {
			fmt.Fprintf(cio.stderr, "microwiper compare: skipped %s\n", w)
		}
	}
	return report.CompareSamples(old, new).Write(cio.stdout)
}
