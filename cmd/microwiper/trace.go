package main

import (
	"context"
	"strings"
)

// traceCommand catches "microwiper trace" with no or an unknown
// subcommand, so the user learns the group's members instead of "unknown
// command". The subcommands themselves are separate entries ("trace gen"),
// which findCommand prefers as the longer match.
var traceCommand = command{
	name:     "trace",
	synopsis: "work with trace files: gen, info, validate, convert ('microwiper trace <sub> -h')",
	usage:    "<gen|info|validate|convert> [flags] [args]",
	example:  "microwiper trace info traces/shipped/wws-512mib.parquet",
	bind: noFlags(func(_ context.Context, _ *cmdIO, args []string) error {
		subs := "gen, info, validate or convert"
		if len(args) == 0 {
			return usageErrorf("want a subcommand: %s", subs)
		}
		return usageErrorf("unknown subcommand %q: want %s", strings.Join(args, " "), subs)
	}),
}
