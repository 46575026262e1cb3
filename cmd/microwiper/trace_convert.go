package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/microwiper/microwiper/tracefmt/tracecsv"
)

var traceConvertCommand = command{
	name:     "trace convert",
	synopsis: "convert a trace between Parquet and CSV (t_ns,page[,writes] with a header line)",
	usage:    "[flags] IN OUT",
	example: `microwiper trace convert hot.parquet hot.csv
microwiper trace convert -pages 262144 -epoch 100ms -workload "mytool run" hot.csv back.parquet
microwiper trace convert wws.parquet - | head`,
	bind: withOptions(runTraceConvert),
}

// traceConvertOptions are the flags of trace convert.
type traceConvertOptions struct {
	To       string
	Pages    opt[int64]
	PageSize opt[int64]
	Epoch    opt[time.Duration]
	Backend  opt[string]
	Workload opt[string]
}

func (o *traceConvertOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.To, "to", "", "output format, csv or parquet; default from OUT's extension (.csv, - → csv; else parquet)")
	optInt64Var(fs, &o.Pages, "pages", "CSV→Parquet: memory size in pages; default the CSV's '# pages=' comment, else max page + 1")
	optInt64Var(fs, &o.PageSize, "page-size", "CSV→Parquet: page size in bytes; default the CSV's comment, else 4096")
	optDurationVar(fs, &o.Epoch, "epoch", "CSV→Parquet: epoch; default the CSV's '# epoch_ns=' comment, else the smallest gap between row times (not on stdin)")
	optStringVar(fs, &o.Backend, "backend", "CSV→Parquet: backend metadata; default the CSV's comment, else uffd-wp-async")
	optStringVar(fs, &o.Workload, "workload", "CSV→Parquet: workload metadata; default the CSV's comment, else csv:<file name>")
}

// metadata is what the user set, as tracefmt metadata keys.
func (o *traceConvertOptions) metadata() map[string]string {
	m := map[string]string{}
	if o.Pages.Set {
		m[tracefmt.KeyPages] = strconv.FormatInt(o.Pages.V, 10)
	}
	if o.PageSize.Set {
		m[tracefmt.KeyPageSize] = strconv.FormatInt(o.PageSize.V, 10)
	}
	if o.Epoch.Set {
		m[tracefmt.KeyEpochNS] = strconv.FormatInt(int64(o.Epoch.V), 10)
	}
	if o.Backend.Set {
		m[tracefmt.KeyBackend] = o.Backend.V
	}
	if o.Workload.Set {
		m[tracefmt.KeyWorkload] = o.Workload.V
	}
	return m
}

func runTraceConvert(ctx context.Context, cio *cmdIO, o *traceConvertOptions, args []string) error {
	if len(args) != 2 {
		return usageErrorf("want IN and OUT, got %d arguments", len(args))
	}
	in, out := args[0], args[1]
	to := o.To
	if to == "" {
		to = "parquet"
		if out == "-" || strings.EqualFold(filepath.Ext(out), ".csv") {
			to = "csv"
		}
	}
	switch to {
	case "csv":
		if len(o.metadata()) > 0 {
			return usageErrorf("-pages, -page-size, -epoch, -backend and -workload apply to CSV→Parquet only")
		}
		if in == "-" {
			return usageErrorf("IN must be a Parquet trace file or directory to convert to CSV, not stdin")
		}
		return traceToCSV(ctx, in, out, cio.stdout)
	case "parquet":
		if out == "-" {
			return usageErrorf("OUT - (stdout) works for CSV output only")
		}
		return csvToTrace(ctx, cio, o, in, out)
	}
	return usageErrorf("-to %q: want csv or parquet", to)
}

// traceToCSV writes a trace as CSV with its metadata as leading comments.
// The CSV appears whole at out or not at all: half a CSV would read as a
// shorter trace.
func traceToCSV(ctx context.Context, in, out string, stdout io.Writer) error {
	if out != "-" {
		if err := checkOutput(out, false, in); err != nil {
			return err
		}
	}
	r, err := tracefmt.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	if out == "-" {
		return tracecsv.Export(ctx, r, stdout)
	}
	dst, err := createOutput(ctx, out)
	if err != nil {
		return err
	}
	if err := tracecsv.Export(ctx, r, dst); err != nil {
		dst.Abort()
		if ctx.Err() != nil {
			return fmt.Errorf("convert %s: interrupted; %s left as it was", in, out)
		}
		return fmt.Errorf("write %s: %w", out, err)
	}
	return dst.Commit()
}

// csvToTrace converts a CSV into a trace. The header comes from the flags,
// else the CSV's comments, else inference: a file gets a first pass
// (highest page, smallest time gap); stdin cannot be read twice, so there
// the memory grows with the highest page seen and the epoch must be given.
func csvToTrace(ctx context.Context, cio *cmdIO, o *traceConvertOptions, in, out string) error {
	if err := checkOutput(out, true, in); err != nil {
		return err
	}
	var scan *tracecsv.Scan
	if in != "-" {
		src, err := openCSV(in)
		if err != nil {
			return err
		}
		scan, err = tracecsv.ScanRows(ctx, src, in)
		src.Close()
		if err != nil {
			return err
		}
	}
	src, err := openCSV(in)
	if err != nil {
		return err
	}
	defer src.Close()
	opts := tracecsv.ImportOptions{
		Set:  o.metadata(),
		Name: in,
		Scan: scan,
		Note: func(msg string) { fmt.Fprintln(cio.stderr, msg) },
	}
	_, err = tracecsv.Import(ctx, src, opts, func(h tracefmt.Header, wo tracefmt.WriterOptions) (*tracefmt.Writer, error) {
		return tracefmt.Create(out, h, wo)
	})
	if errors.Is(err, tracecsv.ErrNeedEpoch) {
		return usageErrorf("%v", err)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("convert %s: interrupted; %s left as it was", in, out)
	}
	return err
}

func openCSV(in string) (io.ReadCloser, error) {
	if in == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, fmt.Errorf("open CSV input: %w", err)
	}
	return f, nil
}
