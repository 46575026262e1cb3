package main

import (
	"context"
	"fmt"

	"github.com/microwiper/microwiper/tracefmt"
)

var traceValidateCommand = command{
	name:     "trace validate",
	synopsis: "check every invariant of a trace; print OK, WARN for a valid trace its writer never finished, or FAIL with the first violation and its row",
	usage:    "trace.parquet [more traces]",
	example: `microwiper trace validate hot.parquet
microwiper trace validate hot.parquet wws.parquet`,
	bind: noFlags(runTraceValidate),
}

func runTraceValidate(_ context.Context, cio *cmdIO, paths []string) error {
	if len(paths) == 0 {
		return usageErrorf("want at least one trace path")
	}
	bad := 0
	for _, path := range paths {
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
		return fmt.Errorf("%d of %d traces invalid", bad, len(paths))
	}
	return nil
}
