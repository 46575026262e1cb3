package tracefmt

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// WriterOptions tunes a Writer. The zero value writes one file.
type WriterOptions struct {
	// SegmentRows > 0 makes the path a directory of numbered segment files,
	// a new one started once the open one holds SegmentRows rows (checked
	// between epochs, so an epoch never spans two segments). Each finished
	// segment is a complete Parquet file, so a writer killed mid-way loses
	// at most the open segment.
	SegmentRows int64
	// ZeroWrites adds the zero column: each written page says whether it
	// held only zeros at the end of its epoch (WriteEpochZero). Without
	// it the file has the three columns of every earlier trace, and a
	// reader takes every write to leave data.
	ZeroWrites bool
}

// bufferRows is how many rows the writer gathers before handing them to
// Parquet: large enough to amortise the call, small enough to stay in cache.
const bufferRows = 1 << 16

// rowGroupRows bounds a row group, so that readers need bounded memory per
// column chunk.
const rowGroupRows = 1 << 22

// partialSuffix marks a file still being written. Readers skip such files:
// it is renamed into place only once complete.
const partialSuffix = ".partial"

// Writer writes a trace, one epoch at a time, enforcing the format's
// invariants as it goes. It is not safe for concurrent use.
type Writer struct {
	path   string
	opts   WriterOptions
	header Header

	segment    int // number of the open segment (segment mode)
	file       *os.File
	buf        *bufio.Writer
	pw         *parquet.GenericWriter[row]     // without the zero column
	pwz        *parquet.GenericWriter[zeroRow] // with it (WriterOptions.ZeroWrites)
	narrow     []row                           // pending, converted for pw
	fileRows   int64                           // rows in the open file
	rows       int64                           // rows in the whole trace
	pending    []zeroRow
	lastT      int64
	wroteEpoch bool
	wroteInit  bool
	full       bool // the open segment reached SegmentRows
	closed     bool
	err        error // sticky: after a failure every call returns it
}

// Create starts a trace at path. With opts.SegmentRows > 0 path is a
// directory (created if missing, and it must not already hold segments).
func Create(path string, h Header, opts WriterOptions) (*Writer, error) {
	if err := h.Check(); err != nil {
		return nil, fmt.Errorf("create trace %s: %w", path, err)
	}
	if opts.SegmentRows < 0 {
		return nil, fmt.Errorf("create trace %s: negative SegmentRows %d", path, opts.SegmentRows)
	}
	if st, err := os.Stat(path); err == nil && opts.SegmentRows == 0 {
		// The finished file is renamed over path: that must replace a
		// file, never a directory or a device.
		switch {
		case st.IsDir():
			return nil, fmt.Errorf("create trace %s: is a directory: name a file to write (or write segments into it)", path)
		case !st.Mode().IsRegular():
			return nil, fmt.Errorf("create trace %s: not a regular file (%v): a trace is written whole to a new file, then renamed over the old one", path, st.Mode().Type())
		}
	}
	w := &Writer{path: path, opts: opts, header: h, lastT: -1, pending: make([]zeroRow, 0, bufferRows)}
	w.header.Regions = append([]Region(nil), h.Regions...)
	if opts.SegmentRows > 0 {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("create trace directory %s: %w", path, err)
		}
		existing, err := segmentFiles(path)
		if err != nil {
			return nil, err
		}
		if len(existing) > 0 {
			return nil, fmt.Errorf("create trace %s: directory already holds %d trace files: choose a new -o or remove it", path, len(existing))
		}
	}
	if err := w.openFile(); err != nil {
		return nil, err
	}
	return w, nil
}

// Header returns the header as it will be written (after SetPages and
// SetRegions).
func (w *Writer) Header() Header { return w.header }

// Rows returns how many rows have been written so far.
func (w *Writer) Rows() int64 { return w.rows + int64(len(w.pending)) }

// SetPages grows the memory size to n pages; it never shrinks, since rows
// already written may name pages up to the old size.
func (w *Writer) SetPages(n int64) {
	if n > w.header.Pages {
		w.header.Pages = n
	}
}

// SetRegions replaces the region table, written into every later footer.
func (w *Writer) SetRegions(r []Region) {
	w.header.Regions = append([]Region(nil), r...)
}

// WriteInitial records the initial image: the pages holding data when the
// capture began. It may be called once, before any epoch.
func (w *Writer) WriteInitial(pages []int64) error {
	if w.err != nil {
		return w.err
	}
	if w.wroteInit || w.wroteEpoch {
		return errors.New("write initial image: must come once, before any epoch")
	}
	if err := w.checkPages(0, pages); err != nil {
		return err
	}
	w.wroteInit = true
	// Held back until the first epoch: an epoch at t = 0 must merge with it.
	for _, p := range pages {
		w.pending = append(w.pending, zeroRow{TNS: 0, Page: p, Writes: 0})
	}
	return nil
}

// WriteEpoch records the pages written in the epoch ending at tNS. Pages
// must be ascending and unique; writes is parallel to pages, or nil when the
// counts are unknown (stored as 1). tNS must exceed the previous epoch's.
// When the initial image and an epoch share t = 0, their rows are merged so
// that the file stays sorted by (t_ns, page).
func (w *Writer) WriteEpoch(tNS int64, pages []int64, writes []int32) error {
	return w.WriteEpochZero(tNS, pages, writes, nil)
}

// WriteEpochZero is WriteEpoch with zero parallel to pages (or nil): true
// where the page held only zeros at the end of the epoch. A true needs a
// writer made with WriterOptions.ZeroWrites.
func (w *Writer) WriteEpochZero(tNS int64, pages []int64, writes []int32, zero []bool) error {
	if w.err != nil {
		return w.err
	}
	if zero != nil && len(zero) != len(pages) {
		return fmt.Errorf("write epoch t_ns=%d: %d pages but %d zero flags", tNS, len(pages), len(zero))
	}
	if !w.opts.ZeroWrites {
		for i, z := range zero {
			if z {
				return fmt.Errorf("write epoch t_ns=%d: page %d is marked zero, but the trace has no zero column (WriterOptions.ZeroWrites)", tNS, pages[i])
			}
		}
	}
	if tNS < 0 || (w.wroteEpoch && tNS <= w.lastT) {
		return fmt.Errorf("write epoch t_ns=%d: times must be non-negative and increase (previous %d)", tNS, w.lastT)
	}
	if writes != nil && len(writes) != len(pages) {
		return fmt.Errorf("write epoch t_ns=%d: %d pages but %d write counts", tNS, len(pages), len(writes))
	}
	if err := w.checkPages(tNS, pages); err != nil {
		return err
	}
	for i, c := range writes {
		if c <= 0 {
			return fmt.Errorf("write epoch t_ns=%d: page %d has write count %d: want ≥ 1", tNS, pages[i], c)
		}
	}
	if w.full {
		if err := w.Rotate(); err != nil {
			return err
		}
	}
	w.wroteEpoch = true
	w.lastT = tNS
	if tNS == 0 && w.wroteInit {
		return w.mergeIntoInitial(pages, writes, zero)
	}
	for i, p := range pages {
		c := int32(1)
		if writes != nil {
			c = writes[i]
		}
		if err := w.add(zeroRow{TNS: tNS, Page: p, Writes: c, Zero: zero != nil && zero[i]}); err != nil {
			return err
		}
	}
	return w.maybeRotate()
}

// mergeIntoInitial handles the rare epoch at t = 0 that follows an initial
// image: the two share a time, so their rows interleave by page, and a page
// may not appear in both.
func (w *Writer) mergeIntoInitial(pages []int64, writes []int32, zero []bool) error {
	initial := w.pending
	merged := make([]zeroRow, 0, len(initial)+len(pages))
	i, j := 0, 0
	for i < len(initial) || j < len(pages) {
		switch {
		case j == len(pages) || (i < len(initial) && initial[i].Page < pages[j]):
			merged = append(merged, initial[i])
			i++
		case i == len(initial) || pages[j] < initial[i].Page:
			c := int32(1)
			if writes != nil {
				c = writes[j]
			}
			merged = append(merged, zeroRow{TNS: 0, Page: pages[j], Writes: c, Zero: zero != nil && zero[j]})
			j++
		default:
			return fmt.Errorf("write epoch t_ns=0: page %d is in the initial image too; a page is either initial or written at t=0", pages[j])
		}
	}
	w.pending = merged
	return w.flushIfFull()
}

func (w *Writer) checkPages(tNS int64, pages []int64) error {
	prev := int64(-1)
	for _, p := range pages {
		if p <= prev {
			return fmt.Errorf("write epoch t_ns=%d: pages must ascend with no repeats (page %d after %d)", tNS, p, prev)
		}
		if p >= w.header.Pages {
			return fmt.Errorf("write epoch t_ns=%d: page %d outside memory of %d pages (call SetPages first)", tNS, p, w.header.Pages)
		}
		prev = p
	}
	return nil
}

func (w *Writer) add(r zeroRow) error {
	w.pending = append(w.pending, r)
	return w.flushIfFull()
}

func (w *Writer) flushIfFull() error {
	if len(w.pending) >= bufferRows {
		return w.flushPending()
	}
	return nil
}

func (w *Writer) flushPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	var n int
	var err error
	if w.pwz != nil {
		n, err = w.pwz.Write(w.pending)
	} else {
		w.narrow = w.narrow[:0]
		for _, r := range w.pending {
			w.narrow = append(w.narrow, row{TNS: r.TNS, Page: r.Page, Writes: r.Writes})
		}
		n, err = w.pw.Write(w.narrow)
	}
	w.fileRows += int64(n)
	w.rows += int64(n)
	w.pending = w.pending[:0]
	if err != nil {
		return w.fail(fmt.Errorf("write trace %s: %w", w.currentPath(), err))
	}
	return nil
}

// maybeRotate marks a full segment; the next epoch finishes it and starts
// another. Waiting for that epoch lets Close write the finished marker
// into the full segment instead of an empty one after it.
func (w *Writer) maybeRotate() error {
	if w.opts.SegmentRows > 0 && w.fileRows+int64(len(w.pending)) >= w.opts.SegmentRows {
		w.full = true
	}
	return nil
}

// Rotate finishes the open segment, making it durable and readable, and
// starts the next one. Outside segment mode it does nothing.
func (w *Writer) Rotate() error {
	if w.err != nil {
		return w.err
	}
	if w.opts.SegmentRows == 0 || w.fileRows+int64(len(w.pending)) == 0 {
		return nil
	}
	w.full = false
	if err := w.finishFile(false); err != nil {
		return err
	}
	w.segment++
	return w.openFile()
}

// Close flushes and finishes the trace. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		w.abandon()
		return w.err
	}
	// After an explicit Rotate the open segment may be empty; it is kept
	// all the same, to carry the finished marker.
	return w.finishFile(true)
}

func (w *Writer) currentPath() string {
	if w.opts.SegmentRows > 0 {
		return filepath.Join(w.path, segmentName(w.segment))
	}
	return w.path
}

func (w *Writer) openFile() error {
	// A unique name beside the target: an existing x.partial (someone
	// else's file, or another writer's) is never truncated or removed.
	dir, base := filepath.Split(w.currentPath())
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".*"+partialSuffix)
	if err != nil {
		return w.fail(fmt.Errorf("create trace %s: %w", w.currentPath(), err))
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return w.fail(fmt.Errorf("create trace %s: %w", w.currentPath(), err))
	}
	w.file = f
	w.buf = bufio.NewWriterSize(f, 1<<20)
	opts := []parquet.WriterOption{
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.PageBufferSize(1 << 20),
		parquet.CreatedBy("microwiper", "trace/v1", ""),
	}
	if w.opts.ZeroWrites {
		w.pwz = parquet.NewGenericWriter[zeroRow](w.buf, opts...)
	} else {
		w.pw = parquet.NewGenericWriter[row](w.buf, opts...)
	}
	w.fileRows = 0
	return nil
}

// finishFile writes the open file's footer and renames it into place; last
// marks the footer of the trace's final file (KeyFinished).
func (w *Writer) finishFile(last bool) error {
	if err := w.flushPending(); err != nil {
		w.abandon()
		return err
	}
	kv, err := w.header.Metadata()
	if err != nil {
		return w.fail(err)
	}
	// A fixed key order makes the same trace give the same bytes.
	setKV, closePW := w.pw.SetKeyValueMetadata, w.pw.Close
	if w.pwz != nil {
		setKV, closePW = w.pwz.SetKeyValueMetadata, w.pwz.Close
	}
	for _, k := range MetadataKeys {
		if v, ok := kv[k]; ok {
			setKV(k, v)
		}
	}
	setKV(KeyFinished, strconv.FormatBool(last))
	name := w.currentPath()
	steps := []func() error{closePW, w.buf.Flush, w.file.Sync, w.file.Close}
	for _, step := range steps {
		if err := step(); err != nil {
			w.abandon()
			return w.fail(fmt.Errorf("finish trace %s: %w", name, err))
		}
	}
	if err := os.Rename(w.file.Name(), name); err != nil {
		os.Remove(w.file.Name())
		w.file = nil
		return w.fail(fmt.Errorf("finish trace %s: %w", name, err))
	}
	w.file = nil
	return nil
}

// Abort stops the trace without finishing it: the open file is removed
// and the target path is left as it was (an older file there stays).
// Segments finished earlier stay too: they read as an unfinished trace.
// Close after Abort returns an error.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.abandon()
	w.fail(errors.New("trace aborted"))
}

// abandon removes the open, unfinished file.
func (w *Writer) abandon() {
	if w.file != nil {
		w.file.Close()
		os.Remove(w.file.Name())
		w.file = nil
	}
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}
