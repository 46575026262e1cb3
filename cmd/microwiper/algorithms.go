package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/microwiper/microwiper/algorithms"
)

var algorithmsCommand = command{
	name:     "algorithms",
	synopsis: "list the migration policies with their parameters and defaults",
	usage:    "[name ...]",
	example: `microwiper algorithms
microwiper algorithms microwiper qemu-precopy`,
	bind: noFlags(runAlgorithms),
}

func runAlgorithms(_ context.Context, cio *cmdIO, names []string) error {
	listAll := len(names) == 0
	if listAll {
		names = algorithms.Names()
	}
	for i, name := range names {
		alg, err := algorithms.New(name)
		if err != nil {
			return usageErrorf("%v", err)
		}
		if i > 0 {
			fmt.Fprintln(cio.stdout)
		}
		fmt.Fprintf(cio.stdout, "%s: %s\n", name, algorithms.Describe(name))
		tw := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
		for _, p := range algorithms.Params(alg) {
			fmt.Fprintf(tw, "  %s.%s\t%s\t%s\t%s\n", name, p.Key, p.Type, p.Default, p.Doc)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(cio.stdout, "\nSet a parameter with: microwiper replay -param alg.key=value")
	if listAll {
		// The readings of the paper's open choices, each a reconstruction:
		// reports name runs by these.
		fmt.Fprintln(cio.stdout, "\nMicrowiper variants (reconstructions of what the paper leaves open; -alg NAME, or -alg variants for all):")
		tw := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
		for _, v := range algorithms.Variants() {
			fmt.Fprintf(tw, "  %s\t%s\n", v, algorithms.Reading(v))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
