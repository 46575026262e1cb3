package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/microwiper/microwiper/tracefmt"
)

var versionCommand = command{
	name:     "version",
	synopsis: "print the build's version, Go version and trace format",
	example:  "microwiper version",
	bind: noFlags(func(_ context.Context, cio *cmdIO, args []string) error {
		if len(args) > 0 {
			return usageErrorf("version takes no arguments")
		}
		version := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" {
				version = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					version += " " + s.Value[:12]
				}
			}
		}
		fmt.Fprintf(cio.stdout, "microwiper %s %s %s/%s trace format %s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, tracefmt.FormatVersion)
		return nil
	}),
}
