package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/microwiper/microwiper/cmd/microwiper/internal/tracecsv"
	"github.com/microwiper/microwiper/tracefmt"
)

var traceConvertCommand = command{
	name:     "trace convert",
	synopsis: "convert a trace between Parquet and CSV (t_ns,page[,writes] with a header line)",
	usage:    "[flags] IN OUT",
	example: `microwiper trace convert hot.parquet hot.csv
microwiper trace convert -pages 262144 -epoch 100ms -workload "mytool run" hot.csv back.parquet
microwiper trace convert wws.parquet - | head`,
	setFlags: func(fs *flag.FlagSet) {
		fs.String("to", "", "output format, csv or parquet; default from OUT's extension (.csv, - → csv; else parquet)")
		fs.Int64("pages", 0, "CSV→Parquet: memory size in pages; default the CSV's '# pages=' comment, else max page + 1")
		fs.Int64("page-size", 0, "CSV→Parquet: page size in bytes; default the CSV's comment, else 4096")
		declareDuration(fs, "epoch", 0, "CSV→Parquet: epoch; default the CSV's '# epoch_ns=' comment, else the smallest gap between row times (not on stdin)")
		fs.String("backend", "", "CSV→Parquet: backend metadata; default the CSV's comment, else uffd-wp-async")
		fs.String("workload", "", "CSV→Parquet: workload metadata; default the CSV's comment, else csv:<file name>")
	},
	run: runTraceConvert,
}

func runTraceConvert(ctx context.Context, cio *cmdIO, fs *flag.FlagSet) error {
	f := traceFlags{fs}
	if fs.NArg() != 2 {
		return usageErrorf("want IN and OUT, got %d arguments", fs.NArg())
	}
	in, out := fs.Arg(0), fs.Arg(1)
	to := f.str("to")
	if to == "" {
		to = "parquet"
		if out == "-" || strings.EqualFold(filepath.Ext(out), ".csv") {
			to = "csv"
		}
	}
	switch to {
	case "csv":
		for _, name := range []string{"pages", "page-size", "epoch", "backend", "workload"} {
			if f.set(name) {
				return usageErrorf("-%s applies to CSV→Parquet only", name)
			}
		}
		if in == "-" {
			return usageErrorf("IN must be a Parquet trace file or directory to convert to CSV, not stdin")
		}
		return traceToCSV(in, out, cio.stdout)
	case "parquet":
		if out == "-" {
			return usageErrorf("OUT - (stdout) works for CSV output only")
		}
		return csvToTrace(ctx, cio, f, in, out)
	}
	return usageErrorf("-to %q: want csv or parquet", to)
}

// traceToCSV writes a trace as CSV with its metadata as leading comments.
func traceToCSV(in, out string, stdout io.Writer) (err error) {
	r, err := tracefmt.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	var dst io.Writer = stdout
	if out != "-" {
		file, cerr := os.Create(out)
		if cerr != nil {
			return fmt.Errorf("create %s: %w", out, cerr)
		}
		defer func() {
			if cerr := file.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close %s: %w", out, cerr)
			}
			if err != nil {
				os.Remove(out) // half a CSV would read as a shorter trace
			}
		}()
		dst = file
	}
	meta, err := headerMeta(r.Header())
	if err != nil {
		return err
	}
	w := tracecsv.NewWriter(dst)
	if err := w.Meta(meta); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	// The reader hands out the initial image and the writes at t = 0 as two
	// epochs; CSV rows must be sorted by (t_ns, page), so merge them.
	var initial tracefmt.Epoch
	for r.Scan() {
		e := r.Epoch()
		if e.Initial {
			initial = tracefmt.Epoch{Pages: slices.Clone(e.Pages), Writes: slices.Clone(e.Writes), Initial: true}
			continue
		}
		if e.TNS == 0 && initial.Initial {
			e = mergeEpochs(initial, e)
		} else if initial.Initial {
			if err := writeCSVEpoch(w, initial); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
		}
		initial = tracefmt.Epoch{}
		if err := writeCSVEpoch(w, e); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	if initial.Initial {
		if err := writeCSVEpoch(w, initial); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func writeCSVEpoch(w *tracecsv.Writer, e tracefmt.Epoch) error {
	for i, p := range e.Pages {
		if err := w.Row(e.TNS, p, e.Writes[i]); err != nil {
			return err
		}
	}
	return nil
}

// mergeEpochs merges two page-sorted epochs at the same time into one.
func mergeEpochs(a, b tracefmt.Epoch) tracefmt.Epoch {
	m := tracefmt.Epoch{TNS: b.TNS}
	i, j := 0, 0
	for i < len(a.Pages) || j < len(b.Pages) {
		if j == len(b.Pages) || (i < len(a.Pages) && a.Pages[i] < b.Pages[j]) {
			m.Pages, m.Writes = append(m.Pages, a.Pages[i]), append(m.Writes, a.Writes[i])
			i++
		} else {
			m.Pages, m.Writes = append(m.Pages, b.Pages[j]), append(m.Writes, b.Writes[j])
			j++
		}
	}
	return m
}

// headerMeta is the header as the CSV's "# key=value" comments, using the
// format's metadata keys.
func headerMeta(h tracefmt.Header) (map[string]string, error) {
	m := map[string]string{
		tracefmt.KeyFormat:   tracefmt.FormatVersion,
		tracefmt.KeyPageSize: strconv.FormatInt(h.PageSize, 10),
		tracefmt.KeyPages:    strconv.FormatInt(h.Pages, 10),
		tracefmt.KeyEpochNS:  strconv.FormatInt(h.EpochNS, 10),
		tracefmt.KeyBackend:  h.Backend,
		tracefmt.KeyWorkload: h.Workload,
		tracefmt.KeyKernel:   h.Kernel,
	}
	if !h.StartedAt.IsZero() {
		m[tracefmt.KeyStartedAt] = h.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	if len(h.Regions) > 0 {
		b, err := json.Marshal(h.Regions)
		if err != nil {
			return nil, fmt.Errorf("encode regions: %w", err)
		}
		m[tracefmt.KeyRegions] = string(b)
	}
	return m, nil
}

// csvScan is what a first pass over a CSV learns, for the flags the user
// left out.
type csvScan struct {
	maxPage int64
	minGap  int64 // smallest positive gap between consecutive row times; 0 if none
	rows    int64
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

func scanCSV(in string) (*csvScan, *tracecsv.Reader, error) {
	src, err := openCSV(in)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	r := tracecsv.NewReader(src)
	s := &csvScan{maxPage: -1}
	prevT := int64(-1)
	for r.Scan() {
		row := r.Row()
		s.rows++
		s.maxPage = max(s.maxPage, row.Page)
		if row.TNS < prevT {
			return nil, nil, fmt.Errorf("%s: line %d: t_ns %d after %d: sort the rows by time first (sort -t, -k1,1n -k2,2n)", in, r.Line(), row.TNS, prevT)
		}
		if prevT >= 0 && row.TNS > prevT && (s.minGap == 0 || row.TNS-prevT < s.minGap) {
			s.minGap = row.TNS - prevT
		}
		prevT = row.TNS
	}
	if err := r.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", in, err)
	}
	return s, r, nil
}

// csvToTrace converts CSV rows into a trace. Rows must come in
// non-decreasing t_ns; within one t_ns any page order is accepted and
// sorted here, since tools that dump hash sets do not sort.
//
// The header comes from the flags, else the CSV's "# key=value" comments,
// else inference: a file gets a first pass (highest page, smallest time
// gap); stdin cannot be read twice, so there the memory grows with the
// highest page seen and the epoch must be given.
func csvToTrace(ctx context.Context, cio *cmdIO, f traceFlags, in, out string) (err error) {
	var scan *csvScan
	if in != "-" {
		if scan, _, err = scanCSV(in); err != nil {
			return err
		}
	}
	src, err := openCSV(in)
	if err != nil {
		return err
	}
	defer src.Close()
	r := tracecsv.NewReader(src)
	c := &csvConversion{cio: cio, in: in, out: out, r: r}
	defer func() {
		if c.w == nil {
			return
		}
		if cerr := c.w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", out, cerr)
		}
		if err != nil {
			os.Remove(out) // a half-converted trace must not pass for a whole one
			return
		}
		if c.growPages {
			fmt.Fprintf(cio.stderr, "inferred -pages %d from the highest page in %s: pass -pages if memory is larger\n", c.w.Header().Pages, in)
		}
	}()
	// The header is settled at the first row: comments come before it.
	start := func() error {
		h, err := csvHeader(cio, f, in, r, scan)
		if err != nil {
			return err
		}
		c.growPages = scan == nil && h.Pages == 0
		if c.growPages {
			h.Pages = 1
		}
		if err := h.Check(); err != nil {
			return fmt.Errorf("convert %s: %w (set it with the matching flag)", in, err)
		}
		c.header = h
		if c.w, err = tracefmt.Create(out, h, tracefmt.WriterOptions{}); err != nil {
			return err
		}
		return nil
	}
	var rows int64
	for r.Scan() {
		if c.w == nil {
			if err := start(); err != nil {
				return err
			}
		}
		rows++
		if rows%(1<<20) == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := c.add(r.Row(), r.Line()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read %s: %w", in, err)
	}
	if c.w == nil {
		if err := start(); err != nil {
			return err
		}
	}
	return c.flush()
}

// csvHeader settles the trace header for a CSV; Pages stays 0 when it must
// grow with the rows (stdin without -pages or a pages comment).
func csvHeader(cio *cmdIO, f traceFlags, in string, r *tracecsv.Reader, scan *csvScan) (tracefmt.Header, error) {
	var h tracefmt.Header
	metaInt := func(key string) (int64, bool, error) {
		v, ok := r.Meta(key)
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("read %s: comment %s=%q: not an integer", in, key, v)
		}
		return n, true, nil
	}
	// Page size.
	h.PageSize = f.int64("page-size")
	if !f.set("page-size") {
		v, ok, err := metaInt(tracefmt.KeyPageSize)
		if err != nil {
			return h, err
		}
		h.PageSize = 4096
		if ok {
			h.PageSize = v
		}
	}
	// Pages.
	h.Pages = f.int64("pages")
	if !f.set("pages") {
		v, ok, err := metaInt(tracefmt.KeyPages)
		switch {
		case err != nil:
			return h, err
		case ok:
			h.Pages = v
		case scan == nil:
			h.Pages = 0 // grows with the rows
		case scan.maxPage < 0:
			return h, fmt.Errorf("read %s: no rows to infer the memory size from: pass -pages", in)
		default:
			h.Pages = scan.maxPage + 1
			fmt.Fprintf(cio.stderr, "inferred -pages %d from the highest page in %s: pass -pages if memory is larger\n", h.Pages, in)
		}
	}
	// Epoch.
	h.EpochNS = int64(f.duration("epoch"))
	if !f.set("epoch") {
		v, ok, err := metaInt(tracefmt.KeyEpochNS)
		switch {
		case err != nil:
			return h, err
		case ok:
			h.EpochNS = v
		case scan == nil:
			return h, usageErrorf("CSV on stdin without an epoch_ns comment needs -epoch (the input cannot be read twice to infer it)")
		case scan.minGap == 0:
			return h, fmt.Errorf("read %s: fewer than two distinct row times to infer the epoch from: pass -epoch", in)
		default:
			h.EpochNS = scan.minGap
			fmt.Fprintf(cio.stderr, "inferred -epoch %v from the smallest gap between row times in %s: pass -epoch if that is wrong\n", time.Duration(h.EpochNS), in)
		}
	}
	if h.EpochNS <= 0 {
		return h, usageErrorf("-epoch = %v: want a positive duration", time.Duration(h.EpochNS))
	}
	h.Backend = f.str("backend")
	if h.Backend == "" {
		if h.Backend, _ = r.Meta(tracefmt.KeyBackend); h.Backend == "" {
			h.Backend = tracefmt.BackendUffdAsync
			fmt.Fprintf(cio.stderr, "assuming -backend %s (times are epoch ends); pass -backend %s if t_ns are exact write times\n", tracefmt.BackendUffdAsync, tracefmt.BackendUffdSync)
		}
	}
	// A workload comment that is present but empty stays empty: it came
	// from a trace that had none.
	h.Workload = f.str("workload")
	if !f.set("workload") {
		var ok bool
		if h.Workload, ok = r.Meta(tracefmt.KeyWorkload); !ok {
			h.Workload = "csv:" + filepath.Base(in)
		}
	}
	h.Kernel, _ = r.Meta(tracefmt.KeyKernel)
	if v, _ := r.Meta(tracefmt.KeyStartedAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return h, fmt.Errorf("read %s: comment %s=%q: not an RFC 3339 time", in, tracefmt.KeyStartedAt, v)
		}
		h.StartedAt = t
	}
	if v, _ := r.Meta(tracefmt.KeyRegions); v != "" {
		if err := json.Unmarshal([]byte(v), &h.Regions); err != nil {
			return h, fmt.Errorf("read %s: comment %s: %w", in, tracefmt.KeyRegions, err)
		}
	}
	return h, nil
}

// pendingRow is a CSV row waiting for its epoch to complete.
type pendingRow struct {
	page   int64
	writes int32
	line   int
}

// csvConversion gathers CSV rows into epochs and writes them.
type csvConversion struct {
	cio       *cmdIO
	in, out   string
	r         *tracecsv.Reader
	w         *tracefmt.Writer
	header    tracefmt.Header
	growPages bool // stdin without a memory size: grow it with the rows

	epoch  []pendingRow
	epochT int64
	pages  []int64
	writes []int32
	seen   bool // a row has been added
}

func (c *csvConversion) fail(line int, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", c.in, line, fmt.Sprintf(format, args...))
}

// add takes one row, flushing the previous epoch when the time moves on.
func (c *csvConversion) add(row tracecsv.Row, line int) error {
	switch {
	case row.Page >= c.header.Pages && !c.growPages:
		return c.fail(line, "page %d outside the memory of %d pages: raise -pages", row.Page, c.header.Pages)
	case row.Writes == 0 && row.TNS != 0:
		return c.fail(line, "writes 0 at t_ns %d: only initial-image rows (t_ns 0) may have writes 0", row.TNS)
	case c.seen && row.TNS < c.epochT:
		return c.fail(line, "t_ns %d after %d: sort the rows by time first (sort -t, -k1,1n -k2,2n)", row.TNS, c.epochT)
	case !c.seen || row.TNS > c.epochT:
		if err := c.flush(); err != nil {
			return err
		}
		c.epochT, c.seen = row.TNS, true
	}
	c.epoch = append(c.epoch, pendingRow{page: row.Page, writes: row.Writes, line: line})
	return nil
}

// flush writes the gathered epoch: the rows with writes 0 (t_ns 0 only) as
// the initial image, the others as the epoch.
func (c *csvConversion) flush() error {
	if len(c.epoch) == 0 {
		return nil
	}
	slices.SortStableFunc(c.epoch, func(a, b pendingRow) int {
		switch {
		case a.page < b.page:
			return -1
		case a.page > b.page:
			return 1
		}
		return 0
	})
	var initial []int64
	c.pages, c.writes = c.pages[:0], c.writes[:0]
	for i, row := range c.epoch {
		if i > 0 && row.page == c.epoch[i-1].page {
			return c.fail(row.line, "duplicate row (t_ns %d, page %d), first on line %d: merge them into one row with the summed writes", c.epochT, row.page, c.epoch[i-1].line)
		}
		if row.writes == 0 {
			initial = append(initial, row.page)
			continue
		}
		c.pages = append(c.pages, row.page)
		c.writes = append(c.writes, row.writes)
	}
	if c.growPages {
		c.w.SetPages(c.epoch[len(c.epoch)-1].page + 1)
	}
	if len(initial) > 0 {
		if err := c.w.WriteInitial(initial); err != nil {
			return fmt.Errorf("write %s: %w", c.out, err)
		}
	}
	if len(c.pages) > 0 {
		if err := c.w.WriteEpoch(c.epochT, c.pages, c.writes); err != nil {
			return fmt.Errorf("write %s: %w", c.out, err)
		}
	}
	c.epoch = c.epoch[:0]
	return nil
}
