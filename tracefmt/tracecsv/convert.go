package tracecsv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// checkEvery is how many rows pass between checks for cancellation.
const checkEvery = 1 << 16

// Export writes the trace r reads as CSV: its header as comments, then its
// rows sorted by (t_ns, page), the initial image merged with the writes at
// t = 0 as on disk. It stops when ctx is cancelled.
func Export(ctx context.Context, r *tracefmt.Reader, dst io.Writer) error {
	w := NewWriter(dst)
	w.Zero = r.HasZero()
	if err := w.Header(r.Header()); err != nil {
		return err
	}
	// The reader hands out the initial image and the writes at t = 0 as two
	// epochs; CSV rows are sorted by (t_ns, page), so merge them.
	var initial tracefmt.Epoch
	rows := 0
	emit := func(e tracefmt.Epoch) error {
		for i, p := range e.Pages {
			if rows++; rows%checkEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := w.Row(e.TNS, p, e.Writes[i], e.Zero != nil && e.Zero[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for r.Scan() {
		e := r.Epoch()
		if e.Initial {
			// Initial pages are never zero: Zero stays nil.
			initial = tracefmt.Epoch{Pages: slices.Clone(e.Pages), Writes: slices.Clone(e.Writes), Initial: true}
			continue
		}
		if e.TNS == 0 && initial.Initial {
			e = mergeEpochs(initial, e)
		} else if initial.Initial {
			if err := emit(initial); err != nil {
				return err
			}
		}
		initial = tracefmt.Epoch{}
		if err := emit(e); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	if initial.Initial {
		if err := emit(initial); err != nil {
			return err
		}
	}
	return w.Flush()
}

// mergeEpochs merges two page-sorted epochs at the same time into one.
func mergeEpochs(a, b tracefmt.Epoch) tracefmt.Epoch {
	m := tracefmt.Epoch{TNS: b.TNS}
	zeroAt := func(e tracefmt.Epoch, i int) bool { return e.Zero != nil && e.Zero[i] }
	i, j := 0, 0
	for i < len(a.Pages) || j < len(b.Pages) {
		if j == len(b.Pages) || (i < len(a.Pages) && a.Pages[i] < b.Pages[j]) {
			m.Pages, m.Writes, m.Zero = append(m.Pages, a.Pages[i]), append(m.Writes, a.Writes[i]), append(m.Zero, zeroAt(a, i))
			i++
		} else {
			m.Pages, m.Writes, m.Zero = append(m.Pages, b.Pages[j]), append(m.Writes, b.Writes[j]), append(m.Zero, zeroAt(b, j))
			j++
		}
	}
	return m
}

// Scan is what a first pass over a CSV learns, for the metadata the user
// left out.
type Scan struct {
	// MaxPage is the highest page, -1 without rows.
	MaxPage int64
	// MinGap is the smallest positive gap between consecutive row times; 0
	// if none.
	MinGap int64
}

// ScanRows makes the first pass over src, named name in errors.
func ScanRows(ctx context.Context, src io.Reader, name string) (*Scan, error) {
	r := NewReader(src)
	s := &Scan{MaxPage: -1}
	prevT := int64(-1)
	for n := 0; r.Scan(); n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		row := r.Row()
		s.MaxPage = max(s.MaxPage, row.Page)
		if row.TNS < prevT {
			return nil, fmt.Errorf("%s: line %d: t_ns %d after %d: sort the rows by time first (sort -t, -k1,1n -k2,2n)", name, r.Line(), row.TNS, prevT)
		}
		if prevT >= 0 && row.TNS > prevT && (s.MinGap == 0 || row.TNS-prevT < s.MinGap) {
			s.MinGap = row.TNS - prevT
		}
		prevT = row.TNS
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return s, nil
}

// ErrNeedEpoch is returned by Import for a CSV read once (Scan nil) whose
// epoch is given nowhere: it cannot be inferred in one pass.
var ErrNeedEpoch = errors.New("CSV on stdin without an epoch_ns comment needs -epoch (the input cannot be read twice to infer it)")

// ImportOptions settle the header of a CSV trace. Each metadata key comes
// from Set, else the CSV's "# key=value" comments, else inference; the
// result goes through tracefmt's codec (ParseMetadata) like a file footer.
type ImportOptions struct {
	// Set holds metadata the user gave (flags), by tracefmt key.
	Set map[string]string
	// Name is the input's name, for messages and the default workload
	// (csv:<base name>).
	Name string
	// Scan is a first pass over the input; nil when it cannot be read twice
	// (stdin): the memory then grows with the highest page, and the epoch
	// must be given.
	Scan *Scan
	// Note receives each inference, for the user; may be nil.
	Note func(msg string)
}

// Import converts CSV rows into a trace written by the writer create
// returns (given the writer options the CSV needs: the zero column when it
// has one). Rows must come in non-decreasing t_ns; within one t_ns any page
// order is accepted and sorted here, since tools that dump hash sets do not
// sort. On success the trace is closed; on failure it is aborted, so that
// nothing replaces the target. It returns the header written.
func Import(ctx context.Context, src io.Reader, opts ImportOptions, create func(tracefmt.Header, tracefmt.WriterOptions) (*tracefmt.Writer, error)) (h tracefmt.Header, err error) {
	note := opts.Note
	if note == nil {
		note = func(string) {}
	}
	r := NewReader(src)
	c := &importer{name: opts.Name, r: r}
	defer func() {
		if c.w == nil {
			return
		}
		if err != nil {
			c.w.Abort()
			return
		}
		if err = c.w.Close(); err != nil {
			return
		}
		h = c.w.Header()
		if c.grow {
			note(fmt.Sprintf("inferred -pages %d from the highest page in %s: pass -pages if memory is larger", h.Pages, opts.Name))
		}
	}()
	// The header is settled at the first row: comments come before it.
	start := func() error {
		h, grow, err := importHeader(r, opts, note)
		if err != nil {
			return err
		}
		c.header, c.grow = h, grow
		c.w, err = create(h, tracefmt.WriterOptions{ZeroWrites: r.HasZero()})
		return err
	}
	for n := 0; r.Scan(); n++ {
		if c.w == nil {
			if err := start(); err != nil {
				return h, err
			}
		}
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return h, err
			}
		}
		if err := c.add(r.Row(), r.Line()); err != nil {
			return h, err
		}
	}
	if err := r.Err(); err != nil {
		return h, fmt.Errorf("read %s: %w", opts.Name, err)
	}
	if c.w == nil {
		if err := start(); err != nil {
			return h, err
		}
	}
	return h, c.flush()
}

// importHeader settles the header; grow says that Pages must grow with the
// rows (a single pass without a memory size).
func importHeader(r *Reader, opts ImportOptions, note func(string)) (tracefmt.Header, bool, error) {
	given := func(key string) (string, bool) {
		if v, ok := opts.Set[key]; ok {
			return v, true
		}
		return r.Meta(key)
	}
	inferred := map[string]string{
		tracefmt.KeyFormat:   tracefmt.FormatVersion,
		tracefmt.KeyPageSize: "4096",
		tracefmt.KeyWorkload: "csv:" + filepath.Base(opts.Name),
	}
	grow := false
	if _, ok := given(tracefmt.KeyPages); !ok {
		switch s := opts.Scan; {
		case s == nil:
			grow = true
			inferred[tracefmt.KeyPages] = "1"
		case s.MaxPage < 0:
			return tracefmt.Header{}, false, fmt.Errorf("read %s: no rows to infer the memory size from: pass -pages", opts.Name)
		default:
			inferred[tracefmt.KeyPages] = strconv.FormatInt(s.MaxPage+1, 10)
			note(fmt.Sprintf("inferred -pages %d from the highest page in %s: pass -pages if memory is larger", s.MaxPage+1, opts.Name))
		}
	}
	if _, ok := given(tracefmt.KeyEpochNS); !ok {
		switch s := opts.Scan; {
		case s == nil:
			return tracefmt.Header{}, false, ErrNeedEpoch
		case s.MinGap == 0:
			return tracefmt.Header{}, false, fmt.Errorf("read %s: fewer than two distinct row times to infer the epoch from: pass -epoch", opts.Name)
		default:
			inferred[tracefmt.KeyEpochNS] = strconv.FormatInt(s.MinGap, 10)
			note(fmt.Sprintf("inferred -epoch %v from the smallest gap between row times in %s: pass -epoch if that is wrong", time.Duration(s.MinGap), opts.Name))
		}
	}
	if v, _ := given(tracefmt.KeyBackend); v == "" {
		inferred[tracefmt.KeyBackend] = tracefmt.BackendUffdAsync
		note(fmt.Sprintf("assuming -backend %s (times are epoch ends); pass -backend %s if t_ns are exact write times", tracefmt.BackendUffdAsync, tracefmt.BackendUffdSync))
	}
	h, err := tracefmt.ParseMetadata(func(key string) (string, bool) {
		// A workload comment that is present but empty stays empty: it
		// came from a trace that had none. An empty backend is inferred.
		if v, ok := given(key); ok && (v != "" || key != tracefmt.KeyBackend) {
			return v, true
		}
		v, ok := inferred[key]
		return v, ok
	})
	if err != nil {
		return h, false, fmt.Errorf("convert %s: %w (set it with the matching flag or a '# key=value' comment)", opts.Name, err)
	}
	return h, grow, nil
}

// pendingRow is a CSV row waiting for its epoch to complete.
type pendingRow struct {
	page   int64
	writes int32
	zero   bool
	line   int
}

// importer gathers CSV rows into epochs and writes them.
type importer struct {
	name   string
	r      *Reader
	w      *tracefmt.Writer
	header tracefmt.Header
	grow   bool // no memory size: grow it with the rows

	epoch  []pendingRow
	epochT int64
	pages  []int64
	writes []int32
	zero   []bool
	seen   bool // a row has been added
}

func (c *importer) fail(line int, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", c.name, line, fmt.Sprintf(format, args...))
}

// add takes one row, flushing the previous epoch when the time moves on.
func (c *importer) add(row Row, line int) error {
	switch {
	case row.Page >= c.header.Pages && !c.grow:
		return c.fail(line, "page %d outside the memory of %d pages: raise -pages", row.Page, c.header.Pages)
	case row.Writes == 0 && row.TNS != 0:
		return c.fail(line, "writes 0 at t_ns %d: only initial-image rows (t_ns 0) may have writes 0", row.TNS)
	case row.Writes == 0 && row.Zero:
		return c.fail(line, "initial-image row (page %d) has zero 1: the initial image lists pages that hold data", row.Page)
	case c.seen && row.TNS < c.epochT:
		return c.fail(line, "t_ns %d after %d: sort the rows by time first (sort -t, -k1,1n -k2,2n)", row.TNS, c.epochT)
	case !c.seen || row.TNS > c.epochT:
		if err := c.flush(); err != nil {
			return err
		}
		c.epochT, c.seen = row.TNS, true
	}
	c.epoch = append(c.epoch, pendingRow{page: row.Page, writes: row.Writes, zero: row.Zero, line: line})
	return nil
}

// flush writes the gathered epoch: the rows with writes 0 (t_ns 0 only) as
// the initial image, the others as the epoch.
func (c *importer) flush() error {
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
	c.pages, c.writes, c.zero = c.pages[:0], c.writes[:0], c.zero[:0]
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
		c.zero = append(c.zero, row.zero)
	}
	if c.grow {
		c.w.SetPages(c.epoch[len(c.epoch)-1].page + 1)
	}
	if len(initial) > 0 {
		if err := c.w.WriteInitial(initial); err != nil {
			return err
		}
	}
	if len(c.pages) > 0 {
		if err := c.w.WriteEpochZero(c.epochT, c.pages, c.writes, c.zero); err != nil {
			return err
		}
	}
	c.epoch = c.epoch[:0]
	return nil
}
