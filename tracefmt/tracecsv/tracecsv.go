// Package tracecsv is the CSV form of a trace, so that traces can come
// from and go to other tools: a header line "t_ns,page",
// "t_ns,page,writes" or "t_ns,page,writes,zero" (zero is 0 or 1: the page
// held only zeros at the end of the epoch), then one row per line. Lines starting with '#' are
// comments; before the header, a comment "# key=value" carries one metadata
// key of the trace (page_size, pages, epoch_ns, ...; tracefmt's codec), so
// that a trace converted to CSV and back keeps its metadata. Blank lines are
// ignored and CRLF line ends are accepted.
//
// Reader and Writer handle the syntax; Export and Import convert whole
// traces, with the format's checks and the header taken from flags,
// comments or inference.
package tracecsv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/microwiper/microwiper/tracefmt"
)

// Header lines the reader accepts, and the one the writer produces.
const (
	HeaderTwo   = "t_ns,page"
	HeaderThree = "t_ns,page,writes"
	HeaderFour  = "t_ns,page,writes,zero"
)

// maxLine bounds a line, so that a binary file fed by mistake fails fast
// instead of growing a buffer without end.
const maxLine = 64 << 10

// Row is one CSV row.
type Row struct {
	// TNS is the row's time in ns since the trace start.
	TNS int64
	// Page is the page index.
	Page int64
	// Writes is the write count; 1 when the file has no writes column.
	Writes int32
	// Zero says the page held only zeros at the end of the epoch; false
	// when the file has no zero column.
	Zero bool
}

// SyntaxError is a malformed line.
type SyntaxError struct {
	// Line counts from 1.
	Line int
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Reader reads CSV rows; its shape follows bufio.Scanner.
type Reader struct {
	sc        *bufio.Scanner
	line      int
	header    bool // header line seen
	hasWrites bool
	hasZero   bool
	meta      map[string]string
	row       Row
	err       error
}

// NewReader returns a reader of r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &Reader{sc: sc, meta: map[string]string{}}
}

// Scan reads the next row; false at the end or on the first error.
func (r *Reader) Scan() bool {
	if r.err != nil {
		return false
	}
	for r.sc.Scan() {
		r.line++
		b := bytes.TrimSpace(r.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] == '#' {
			if !r.header {
				r.comment(b[1:])
			}
			continue
		}
		if !r.header {
			if err := r.readHeader(b); err != nil {
				r.err = err
				return false
			}
			continue
		}
		if err := r.parseRow(b); err != nil {
			r.err = err
			return false
		}
		return true
	}
	if err := r.sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			r.err = &SyntaxError{Line: r.line + 1, Msg: fmt.Sprintf("line longer than %d bytes: not a trace CSV", maxLine)}
		} else {
			r.err = fmt.Errorf("read line %d: %w", r.line+1, err)
		}
		return false
	}
	if !r.header {
		r.err = &SyntaxError{Line: r.line + 1, Msg: "no header line: the first line must be " + HeaderFour + ", " + HeaderThree + " or " + HeaderTwo}
	}
	return false
}

// Row is the current row.
func (r *Reader) Row() Row { return r.row }

// Line is the current row's line number, from 1.
func (r *Reader) Line() int { return r.line }

// Err is the first error, nil at a clean end.
func (r *Reader) Err() error { return r.err }

// HasWrites reports whether the file has a writes column (valid once the
// header is read, that is after the first Scan).
func (r *Reader) HasWrites() bool { return r.hasWrites }

// HasZero reports whether the file has a zero column (valid once the
// header is read).
func (r *Reader) HasZero() bool { return r.hasZero }

// Meta returns the value of a "# key=value" comment seen before the header.
func (r *Reader) Meta(key string) (string, bool) {
	v, ok := r.meta[key]
	return v, ok
}

func (r *Reader) comment(b []byte) {
	k, v, ok := strings.Cut(string(bytes.TrimSpace(b)), "=")
	if !ok {
		return
	}
	k = strings.TrimSpace(k)
	if k == "" || strings.ContainsAny(k, " \t") {
		return
	}
	r.meta[k] = strings.TrimSpace(v)
}

func (r *Reader) readHeader(b []byte) error {
	h := strings.ReplaceAll(string(b), " ", "")
	switch h {
	case HeaderTwo:
	case HeaderThree:
		r.hasWrites = true
	case HeaderFour:
		r.hasWrites, r.hasZero = true, true
	default:
		return &SyntaxError{Line: r.line, Msg: fmt.Sprintf("header %q: want %s, %s or %s", truncate(string(b)), HeaderFour, HeaderThree, HeaderTwo)}
	}
	r.header = true
	return nil
}

func (r *Reader) parseRow(b []byte) error {
	want := 2
	if r.hasWrites {
		want = 3
	}
	if r.hasZero {
		want = 4
	}
	var fields [4][]byte
	n := 0
	for {
		i := bytes.IndexByte(b, ',')
		if n == want || (i < 0 && n < want-1) {
			return &SyntaxError{Line: r.line, Msg: fmt.Sprintf("row %q: want %d comma-separated fields (%s)", truncate(string(r.sc.Bytes())), want, r.headerName())}
		}
		if i < 0 {
			fields[n] = b
			n++
			break
		}
		fields[n] = b[:i]
		n++
		b = b[i+1:]
	}
	if n != want {
		return &SyntaxError{Line: r.line, Msg: fmt.Sprintf("row %q: want %d comma-separated fields (%s)", truncate(string(r.sc.Bytes())), want, r.headerName())}
	}
	t, err := parseInt(fields[0], math.MaxInt64)
	if err != nil {
		return &SyntaxError{Line: r.line, Msg: "t_ns " + err.Error()}
	}
	p, err := parseInt(fields[1], math.MaxInt64)
	if err != nil {
		return &SyntaxError{Line: r.line, Msg: "page " + err.Error()}
	}
	w := int64(1)
	if r.hasWrites {
		if w, err = parseInt(fields[2], math.MaxInt32); err != nil {
			return &SyntaxError{Line: r.line, Msg: "writes " + err.Error()}
		}
	}
	z := int64(0)
	if r.hasZero {
		if z, err = parseInt(fields[3], math.MaxInt32); err != nil || z > 1 {
			return &SyntaxError{Line: r.line, Msg: fmt.Sprintf("zero %q: want 0 or 1", truncate(string(bytes.TrimSpace(fields[3]))))}
		}
	}
	r.row = Row{TNS: t, Page: p, Writes: int32(w), Zero: z == 1}
	return nil
}

func (r *Reader) headerName() string {
	if r.hasZero {
		return HeaderFour
	}
	if r.hasWrites {
		return HeaderThree
	}
	return HeaderTwo
}

// parseInt parses a non-negative decimal integer ≤ limit, with optional
// spaces around it.
func parseInt(b []byte, limit int64) (int64, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, fmt.Errorf("is empty: want a non-negative integer")
	}
	if b[0] == '-' {
		return 0, fmt.Errorf("%q is negative: want a non-negative integer", truncate(string(b)))
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a non-negative integer", truncate(string(b)))
		}
		d := int64(c - '0')
		if v > (limit-d)/10 {
			return 0, fmt.Errorf("%s is too large (limit %d)", truncate(string(b)), limit)
		}
		v = v*10 + d
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Writer writes the CSV form. Call Header first, then Row for each row,
// then Flush.
type Writer struct {
	w      *bufio.Writer
	header bool
	buf    []byte
	// Zero adds the zero column (set before the first row): the trace
	// records which writes left a page all zeros.
	Zero bool
}

// NewWriter returns a writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 1<<16)} }

// Header writes the trace header as "# key=value" comments, one per
// metadata key in the format's order. It must come before the first row.
// Values are written on one line: newlines inside them become spaces.
func (w *Writer) Header(h tracefmt.Header) error {
	if w.header {
		return fmt.Errorf("write CSV metadata: must come before the rows")
	}
	meta, err := h.Metadata()
	if err != nil {
		return err
	}
	oneLine := strings.NewReplacer("\n", " ", "\r", " ")
	for _, k := range tracefmt.MetadataKeys {
		v, ok := meta[k]
		if !ok {
			continue
		}
		if _, err := fmt.Fprintf(w.w, "# %s=%s\n", k, oneLine.Replace(v)); err != nil {
			return err
		}
	}
	return nil
}

// Row writes one row (t_ns, page, writes, and zero when Zero is set).
func (w *Writer) Row(t, page int64, writes int32, zero bool) error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	b := strconv.AppendInt(w.buf[:0], t, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, page, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(writes), 10)
	if w.Zero {
		if zero {
			b = append(b, ",1"...)
		} else {
			b = append(b, ",0"...)
		}
	}
	b = append(b, '\n')
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

// Flush writes the header if no row came, and flushes the buffer.
func (w *Writer) Flush() error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	return w.w.Flush()
}

func (w *Writer) writeHeader() error {
	if w.header {
		return nil
	}
	w.header = true
	h := HeaderThree
	if w.Zero {
		h = HeaderFour
	}
	_, err := w.w.WriteString(h + "\n")
	return err
}
