package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/microwiper/microwiper/tracefmt"
)

var traceValidateCommand = command{
	name:     "trace validate",
	synopsis: "check every invariant of a trace; print OK, WARN for a valid trace its writer never finished, or FAIL with the first violation and its row",
	usage:    "trace.parquet [more traces]",
	example: `microwiper trace validate hot.parquet
microwiper trace validate hot.parquet wws.parquet`,
	run: runTraceValidate,
}

func runTraceValidate(_ context.Context, cio *cmdIO, fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return usageErrorf("want at least one trace path")
	}
	bad := 0
	for _, path := range fs.Args() {
		s, err := tracefmt.Check(path)
		if err != nil {
			// A violation already names the path; other errors may not.
			fmt.Fprintf(cio.stdout, "FAIL %v\n", err)
			bad++
			continue
		}
		if !s.Finished {
			fmt.Fprintf(cio.stdout, "WARN %s (%d rows): unfinished: its writer never closed it (a killed capture or generator); the rows present are valid and replay reads them\n", path, s.Rows)
			continue
		}
		fmt.Fprintf(cio.stdout, "OK %s (%d rows)\n", path, s.Rows)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d traces invalid", bad, fs.NArg())
	}
	return nil
}
