package tracefmt

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Violation is a broken format invariant, located by its row (counted from
// 0 across all segments of the trace).
type Violation struct {
	// Path is the trace file or directory.
	Path string
	// Row is the offending row's index, or -1 for a file-level problem
	// (metadata, schema).
	Row int64
	// Msg says which invariant broke.
	Msg string
}

func (v *Violation) Error() string {
	if v.Row < 0 {
		return fmt.Sprintf("%s: %s", v.Path, v.Msg)
	}
	return fmt.Sprintf("%s: row %d: %s", v.Path, v.Row, v.Msg)
}

// Reader streams a trace epoch by epoch in bounded memory: the largest epoch
// plus one decoded page per column. Its shape follows bufio.Scanner: call
// Scan until it returns false, then check Err.
type Reader struct {
	path   string
	header Header
	files  []*segmentFile
	rows   int64

	t, p     int64Cursor
	w        int32Cursor
	z        boolCursor
	hasW     bool
	hasZ     bool
	row      int64 // global index of the next row to consume
	prevT    int64
	prevP    int64
	started  bool
	epoch    Epoch
	queued   Epoch // a t = 0 write epoch waiting behind the initial image
	hasQueue bool
	eof      bool
	err      error

	unfinished bool
}

// segmentFile is one open Parquet file of a trace.
type segmentFile struct {
	name string
	f    *os.File
	pf   *parquet.File
	cols [4]int // leaf column indexes of t_ns, page, writes, zero (-1: absent)
}

// Open opens a trace file, or a directory of segment files, and checks its
// metadata and schema. Row-level invariants are checked as rows are read.
func Open(path string) (*Reader, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	names := []string{path}
	if st.IsDir() {
		names, err = segmentFiles(path)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("open trace %s: directory holds no finished .parquet files", path)
		}
	}
	r := &Reader{path: path}
	for i, name := range names {
		sf, h, err := openSegment(name)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.files = append(r.files, sf)
		r.rows += sf.pf.NumRows()
		if i > 0 {
			if err := consistentSegments(r.header, h); err != nil {
				r.Close()
				return nil, &Violation{Path: name, Row: -1, Msg: err.Error()}
			}
		}
		r.header = h
	}
	if v, ok := r.files[len(r.files)-1].pf.Lookup(KeyFinished); ok && v != "true" {
		r.unfinished = true
	}
	r.hasW = r.files[0].cols[2] >= 0
	r.hasZ = r.files[0].cols[3] >= 0
	for _, sf := range r.files {
		if (sf.cols[2] >= 0) != r.hasW {
			r.Close()
			return nil, &Violation{Path: sf.name, Row: -1, Msg: "segments disagree on whether the writes column exists"}
		}
		if (sf.cols[3] >= 0) != r.hasZ {
			r.Close()
			return nil, &Violation{Path: sf.name, Row: -1, Msg: "segments disagree on whether the zero column exists"}
		}
		for _, rg := range sf.pf.RowGroups() {
			cc := rg.ColumnChunks()
			r.t.chunks = append(r.t.chunks, cc[sf.cols[0]])
			r.p.chunks = append(r.p.chunks, cc[sf.cols[1]])
			if r.hasW {
				r.w.chunks = append(r.w.chunks, cc[sf.cols[2]])
			}
			if r.hasZ {
				r.z.chunks = append(r.z.chunks, cc[sf.cols[3]])
			}
		}
	}
	return r, nil
}

// consistentSegments checks that a later segment continues an earlier one.
func consistentSegments(prev, next Header) error {
	switch {
	case prev.PageSize != next.PageSize:
		return fmt.Errorf("page_size %d differs from the earlier segments' %d", next.PageSize, prev.PageSize)
	case prev.EpochNS != next.EpochNS:
		return fmt.Errorf("epoch_ns %d differs from the earlier segments' %d", next.EpochNS, prev.EpochNS)
	case prev.Backend != next.Backend:
		return fmt.Errorf("backend %q differs from the earlier segments' %q", next.Backend, prev.Backend)
	case next.Pages < prev.Pages:
		return fmt.Errorf("pages %d shrinks from the earlier segments' %d", next.Pages, prev.Pages)
	}
	return nil
}

// openSegment opens one Parquet file defensively: parquet-go trusts its
// input, so the file's framing is checked first and any panic inside the
// library becomes an error.
func openSegment(name string) (sf *segmentFile, h Header, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, h, fmt.Errorf("open trace: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, h, fmt.Errorf("open trace %s: %w", name, err)
	}
	if err := checkFraming(f, st.Size()); err != nil {
		return nil, h, &Violation{Path: name, Row: -1, Msg: err.Error()}
	}
	var pf *parquet.File
	err = guard(func() error {
		var err error
		pf, err = parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
		return err
	})
	if err != nil {
		return nil, h, &Violation{Path: name, Row: -1, Msg: "corrupt Parquet footer: " + err.Error()}
	}
	if err := checkChunkBounds(pf, st.Size()); err != nil {
		return nil, h, &Violation{Path: name, Row: -1, Msg: err.Error()}
	}
	h, err = ParseMetadata(pf.Lookup)
	if err != nil {
		return nil, h, &Violation{Path: name, Row: -1, Msg: err.Error()}
	}
	cols, err := findColumns(pf.Schema())
	if err != nil {
		return nil, h, &Violation{Path: name, Row: -1, Msg: err.Error()}
	}
	return &segmentFile{name: name, f: f, pf: pf, cols: cols}, h, nil
}

// checkFraming rejects what is not a whole Parquet file before the library
// sees it.
func checkFraming(f io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size == 0 {
		return errors.New("empty file: not a Parquet trace")
	}
	if size < 12 {
		return fmt.Errorf("file of %d bytes is too short to be Parquet", size)
	}
	head := make([]byte, 4)
	tail := make([]byte, 8)
	if _, err := f.ReadAt(head, 0); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if _, err := f.ReadAt(tail, size-8); err != nil {
		return fmt.Errorf("read footer: %w", err)
	}
	if string(head) != magic {
		return errors.New("not a Parquet file (no PAR1 magic at the start); convert CSV traces with 'microwiper trace convert'")
	}
	if string(tail[4:]) != magic {
		return errors.New("truncated Parquet file (no PAR1 magic at the end): the writer was killed or the copy is incomplete")
	}
	footer := int64(uint32(tail[0]) | uint32(tail[1])<<8 | uint32(tail[2])<<16 | uint32(tail[3])<<24)
	if footer <= 0 || footer > size-12 {
		return fmt.Errorf("corrupt Parquet footer length %d in a file of %d bytes", footer, size)
	}
	return nil
}

// checkChunkBounds refuses column chunks that claim to lie outside the file
// or to inflate absurdly, which would make the library allocate without
// bound.
func checkChunkBounds(pf *parquet.File, size int64) error {
	const maxInflation = 1 << 12
	for i, rg := range pf.Metadata().RowGroups {
		if rg.NumRows < 0 {
			return fmt.Errorf("row group %d: negative row count", i)
		}
		for j, cc := range rg.Columns {
			md := cc.MetaData
			// A dictionary page, when there is one, comes before the data
			// pages and TotalCompressedSize counts it: the chunk starts there.
			// Writers that have none store 0 (some store the data offset).
			start := md.DataPageOffset
			if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
				start = md.DictionaryPageOffset
			}
			end := start + md.TotalCompressedSize
			if start < 4 || md.TotalCompressedSize < 0 || end > size || end < start {
				return fmt.Errorf("row group %d column %d: chunk [%d, +%d) lies outside the file of %d bytes", i, j, start, md.TotalCompressedSize, size)
			}
			if md.TotalUncompressedSize < 0 || md.TotalUncompressedSize > maxInflation*(md.TotalCompressedSize+1024) {
				return fmt.Errorf("row group %d column %d: implausible uncompressed size %d", i, j, md.TotalUncompressedSize)
			}
		}
	}
	return nil
}

// findColumns locates the columns and checks their types: flat, t_ns and
// page required INT64, writes INT32 and optional, zero BOOLEAN and
// optional.
func findColumns(s *parquet.Schema) ([4]int, error) {
	cols := [4]int{-1, -1, -1, -1}
	want := []struct {
		name string
		kind parquet.Kind
	}{{ColumnTNS, parquet.Int64}, {ColumnPage, parquet.Int64}, {ColumnWrites, parquet.Int32}, {ColumnZero, parquet.Boolean}}
	for leaf, path := range s.Columns() {
		for i, w := range want {
			if len(path) == 1 && path[0] == w.name {
				cols[i] = leaf
			}
		}
		if len(path) != 1 {
			return cols, fmt.Errorf("schema: nested column %v: a trace is flat", path)
		}
	}
	for i, w := range want {
		if cols[i] < 0 {
			if w.name == ColumnWrites || w.name == ColumnZero {
				continue
			}
			return cols, fmt.Errorf("schema: column %s missing", w.name)
		}
		leaf, _ := s.Lookup(w.name)
		if leaf.Node.Type().Kind() != w.kind {
			return cols, fmt.Errorf("schema: column %s is %v, want %v", w.name, leaf.Node.Type().Kind(), w.kind)
		}
		if leaf.Node.Repeated() {
			return cols, fmt.Errorf("schema: column %s is repeated", w.name)
		}
	}
	return cols, nil
}

// Header returns the trace's metadata. For a segmented trace it is the last
// segment's, whose page count covers every earlier segment.
func (r *Reader) Header() Header { return r.header }

// Finished reports whether the writer closed the trace. A directory whose
// last segment was not the writer's final one (a killed capture) is
// unfinished: its rows are valid but stop where the writer died.
func (r *Reader) Finished() bool { return !r.unfinished }

// Rows returns the number of rows in the trace, from the file footers.
func (r *Reader) Rows() int64 { return r.rows }

// Epoch returns the current epoch. Its slices are reused by the next Scan.
func (r *Reader) Epoch() Epoch { return r.epoch }

// Err returns the first error met, nil after a clean end.
func (r *Reader) Err() error { return r.err }

// Close releases the files.
func (r *Reader) Close() error {
	r.t.close()
	r.p.close()
	r.w.close()
	r.z.close()
	var first error
	for _, sf := range r.files {
		if err := sf.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	r.files = nil
	return first
}

// Scan advances to the next epoch. The initial image, if any, comes first,
// then epochs in time order.
func (r *Reader) Scan() (ok bool) {
	if r.err != nil {
		return false
	}
	if r.hasQueue {
		r.epoch, r.queued = r.queued, r.epoch
		r.hasQueue = false
		return true
	}
	if r.eof {
		return false
	}
	defer func() {
		if v := recover(); v != nil {
			r.err = &Violation{Path: r.path, Row: r.row, Msg: fmt.Sprintf("corrupt Parquet data: %v", v)}
			ok = false
		}
	}()
	r.epoch.Pages = r.epoch.Pages[:0]
	r.epoch.Writes = r.epoch.Writes[:0]
	r.epoch.Zero = r.epoch.Zero[:0]
	r.epoch.Initial = false
	r.queued.Pages = r.queued.Pages[:0]
	r.queued.Writes = r.queued.Writes[:0]
	r.queued.Zero = r.queued.Zero[:0]
	for {
		n, err := r.fill()
		if err != nil {
			r.err = err
			return false
		}
		if n == 0 {
			r.eof = true
			return r.finishEpoch()
		}
		used, done := r.consume(n)
		if r.err != nil {
			return false
		}
		r.t.pos += used
		r.p.pos += used
		if r.hasW {
			r.w.pos += used
		}
		if r.hasZ {
			r.z.pos += used
		}
		if done {
			return r.finishEpoch()
		}
	}
}

// fill makes sure every column has decoded values at its cursor and returns
// how many rows can be consumed from all of them at once (0 at the end).
func (r *Reader) fill() (int, error) {
	nt, err := r.t.fill()
	if err != nil {
		return 0, r.corrupt(ColumnTNS, err)
	}
	np, err := r.p.fill()
	if err != nil {
		return 0, r.corrupt(ColumnPage, err)
	}
	n := min(nt, np)
	if r.hasW {
		nw, err := r.w.fill()
		if err != nil {
			return 0, r.corrupt(ColumnWrites, err)
		}
		n = min(n, nw)
	}
	if r.hasZ {
		nz, err := r.z.fill()
		if err != nil {
			return 0, r.corrupt(ColumnZero, err)
		}
		n = min(n, nz)
	}
	if n == 0 && (nt != 0 || np != 0) {
		return 0, &Violation{Path: r.path, Row: r.row, Msg: "columns hold different numbers of values"}
	}
	return n, nil
}

func (r *Reader) corrupt(column string, err error) error {
	return &Violation{Path: r.path, Row: r.row, Msg: fmt.Sprintf("corrupt column %s: %v", column, err)}
}

// consume takes up to n rows from the cursors into the current epoch. It
// returns how many it took and whether the epoch is complete (the next row
// belongs to a later epoch).
func (r *Reader) consume(n int) (int, bool) {
	ts := r.t.vals[r.t.pos : r.t.pos+n]
	ps := r.p.vals[r.p.pos : r.p.pos+n]
	var ws []int32
	if r.hasW {
		ws = r.w.vals[r.w.pos : r.w.pos+n]
	}
	var zs []bool
	if r.hasZ {
		zs = r.z.vals[r.z.pos : r.z.pos+n]
	}
	pages := r.header.Pages
	prevT, prevP := r.prevT, r.prevP
	if !r.started {
		prevT, prevP = -1, -1
	}
	inEpoch := len(r.epoch.Pages) > 0 || len(r.queued.Pages) > 0
	epochT := r.epoch.TNS
	for i := 0; i < n; i++ {
		t, p := ts[i], ps[i]
		w := int32(1)
		if ws != nil {
			w = ws[i]
		}
		// The common row continues the current epoch, past t = 0, with a
		// higher page in range: one cheap test admits it.
		if inEpoch && t == prevT && p > prevP && p < pages && w > 0 && t > 0 {
			r.epoch.Pages = append(r.epoch.Pages, p)
			r.epoch.Writes = append(r.epoch.Writes, w)
			if zs != nil {
				r.epoch.Zero = append(r.epoch.Zero, zs[i])
			}
			prevP = p
			continue
		}
		z := zs != nil && zs[i]
		if inEpoch && t != epochT {
			r.prevT, r.prevP, r.started = prevT, prevP, true
			r.row += int64(i)
			return i, true
		}
		if msg := checkRow(t, p, w, z, prevT, prevP, pages); msg != "" {
			r.err = &Violation{Path: r.path, Row: r.row + int64(i), Msg: msg}
			return i, true
		}
		if !inEpoch {
			inEpoch, epochT = true, t
			r.epoch.TNS = t
		}
		if t == 0 {
			r.addTimeZero(p, w, z)
		} else {
			r.epoch.Pages = append(r.epoch.Pages, p)
			r.epoch.Writes = append(r.epoch.Writes, w)
			if zs != nil {
				r.epoch.Zero = append(r.epoch.Zero, z)
			}
		}
		prevT, prevP = t, p
	}
	r.prevT, r.prevP, r.started = prevT, prevP, true
	r.row += int64(n)
	return n, false
}

// addTimeZero splits the rows at t = 0 into the initial image (writes = 0)
// and the writes observed at t = 0, which interleave by page on disk.
func (r *Reader) addTimeZero(p int64, w int32, z bool) {
	if w == 0 {
		r.epoch.Pages = append(r.epoch.Pages, p)
		r.epoch.Writes = append(r.epoch.Writes, 0)
		if r.hasZ {
			r.epoch.Zero = append(r.epoch.Zero, false)
		}
		r.epoch.Initial = true
		return
	}
	r.queued.Pages = append(r.queued.Pages, p)
	r.queued.Writes = append(r.queued.Writes, w)
	if r.hasZ {
		r.queued.Zero = append(r.queued.Zero, z)
	}
}

// checkRow returns the invariant row (t, p, w) breaks given the previous
// row, or "".
func checkRow(t, p int64, w int32, z bool, prevT, prevP, pages int64) string {
	switch {
	case t < 0:
		return fmt.Sprintf("t_ns %d is negative", t)
	case p < 0 || p >= pages:
		return fmt.Sprintf("page %d outside the memory of %d pages (metadata %s)", p, pages, KeyPages)
	case w < 0:
		return fmt.Sprintf("writes %d is negative", w)
	case w == 0 && t != 0:
		return fmt.Sprintf("writes 0 at t_ns %d: only initial-image rows (t_ns 0) have writes 0", t)
	case w == 0 && z:
		return fmt.Sprintf("initial-image row (page %d) has zero true: the initial image lists pages that hold data", p)
	case t < prevT:
		return fmt.Sprintf("rows not sorted by t_ns: %d after %d", t, prevT)
	case t == prevT && p < prevP:
		return fmt.Sprintf("rows not sorted by page within t_ns %d: page %d after %d", t, p, prevP)
	case t == prevT && p == prevP:
		return fmt.Sprintf("duplicate row (t_ns %d, page %d)", t, p)
	}
	return ""
}

// finishEpoch settles the epoch just read: at t = 0 the initial image goes
// first and the t = 0 writes wait in the queue.
func (r *Reader) finishEpoch() bool {
	if r.err != nil {
		return false
	}
	if r.epoch.TNS == 0 && len(r.queued.Pages) > 0 {
		if len(r.epoch.Pages) == 0 {
			r.epoch, r.queued = r.queued, r.epoch
			r.epoch.TNS = 0
			r.epoch.Initial = false
			r.queued.Pages = r.queued.Pages[:0]
			r.queued.Writes = r.queued.Writes[:0]
			r.queued.Zero = r.queued.Zero[:0]
		} else {
			r.queued.TNS = 0
			r.queued.Initial = false
			r.hasQueue = true
		}
	}
	return len(r.epoch.Pages) > 0
}

// ReadAll loads a whole trace into memory. Meant for small traces and tests;
// use Open and Scan for large ones.
func ReadAll(path string) (Header, []Epoch, error) {
	r, err := Open(path)
	if err != nil {
		return Header{}, nil, err
	}
	defer r.Close()
	var out []Epoch
	for r.Scan() {
		e := r.Epoch()
		out = append(out, Epoch{
			TNS:     e.TNS,
			Pages:   append([]int64(nil), e.Pages...),
			Writes:  append([]int32(nil), e.Writes...),
			Zero:    cloneZero(e.Zero),
			Initial: e.Initial,
		})
	}
	return r.Header(), out, r.Err()
}

// cloneZero copies a zero column, keeping nil (no column) apart from empty.
func cloneZero(z []bool) []bool {
	if z == nil {
		return nil
	}
	return append(make([]bool, 0, len(z)), z...)
}

// HasZero reports whether the trace has the zero column: its writes were
// checked for content, and a page written back to all zeros says so.
func (r *Reader) HasZero() bool { return r.hasZ }

// Validate reads the whole trace and returns the first broken invariant (a
// *Violation for format problems), or nil. An unfinished trace is valid.
func Validate(path string) error {
	_, err := Check(path)
	return err
}

// Summary is what Check learns of a valid trace.
type Summary struct {
	// Rows counts the rows.
	Rows int64
	// Finished is Reader.Finished.
	Finished bool
}

// Check is Validate that also returns how many rows a valid trace holds
// and whether its writer finished it.
func Check(path string) (Summary, error) {
	r, err := Open(path)
	if err != nil {
		return Summary{}, err
	}
	defer r.Close()
	for r.Scan() {
	}
	if r.Err() != nil {
		return Summary{}, r.Err()
	}
	if got := r.row; got != r.rows {
		return Summary{}, &Violation{Path: path, Row: got, Msg: fmt.Sprintf("footer promises %d rows, data holds %d", r.rows, got)}
	}
	return Summary{Rows: r.rows, Finished: r.Finished()}, nil
}

var segmentRE = regexp.MustCompile(`^seg-(\d{6,})\.parquet$`)

func segmentName(i int) string { return fmt.Sprintf("seg-%06d.parquet", i) }

// segmentFiles lists the Parquet files of a trace directory in reading
// order: every *.parquet file, so that a directory written by Spark
// (part-00000-….parquet) or DuckDB (data_0.parquet) reads as one trace, in
// name order, except that our own seg-N files sort by number. Hidden files
// and unfinished (.partial) files are left out, the latter with a warning:
// they are what a killed writer leaves behind.
func segmentFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list trace files in %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, partialSuffix):
			slog.Warn("skipping unfinished trace file", "file", filepath.Join(dir, name))
			continue
		case e.IsDir() || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".parquet"):
			continue
		}
		names = append(names, name)
	}
	slices.SortFunc(names, compareSegments)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out, nil
}

// compareSegments orders file names: seg-N files by N (their digit count
// grows past 999999), everything else by name.
func compareSegments(a, b string) int {
	ma, mb := segmentRE.FindStringSubmatch(a), segmentRE.FindStringSubmatch(b)
	if ma != nil && mb != nil && len(ma[1]) != len(mb[1]) {
		return cmp.Compare(len(ma[1]), len(mb[1]))
	}
	return strings.Compare(a, b)
}

// guard runs f and turns a panic inside it into an error.
func guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	return f()
}
