package replay

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/microwiper/microwiper/results"

	"github.com/microwiper/microwiper/tracefmt"
)

// Trace is a whole trace in memory, in flat arrays: the epochs' times, and
// their pages back to back. 4 bytes a row plus 16 an epoch.
type Trace struct {
	// Name labels results ("redis"); LoadTrace uses the file's base name.
	Name string
	// Header is the trace's metadata. Header.Pages is the memory size.
	Header tracefmt.Header
	// HasInitial says the trace lists its initial image; without one every
	// page holds data from the start.
	HasInitial bool
	// Initial lists, ascending, the pages that held data when capture began.
	Initial []int32
	// EpochT holds the epochs' times (ns since trace start), ascending.
	EpochT []int64
	// EpochOff holds len(EpochT)+1 offsets: epoch i's pages are
	// Pages[EpochOff[i]:EpochOff[i+1]].
	EpochOff []int64
	// Pages holds every epoch's pages, ascending within an epoch.
	Pages []int32
	// Zero marks, one bit per row of Pages (row i at word i>>6, bit i&63),
	// the writes that left their page all zeros (the trace's zero column);
	// nil when none did. It may be shorter than Pages: missing words are
	// zero.
	Zero []uint64
	// ZeroRows counts the bits set in Zero.
	ZeroRows int64
}

// NewTrace returns an empty trace with header h.
func NewTrace(name string, h tracefmt.Header) *Trace {
	return &Trace{Name: name, Header: h, EpochOff: []int64{0}}
}

// ID identifies the trace by content, so that two traces of one name
// (a/redis.parquet, b/redis.parquet) give different runs: a digest of its
// metadata (memory size included), its row count, its epoch count, its
// initial image's size and, when some writes left their page all zeros,
// which rows those were.
func (t *Trace) ID() string {
	md, err := t.Header.Metadata()
	if err != nil {
		// Regions that do not encode: name them by count instead.
		md = map[string]string{"regions": strconv.Itoa(len(t.Header.Regions))}
	}
	parts := make([]string, 0, 2*len(md)+3)
	for _, k := range slices.Sorted(maps.Keys(md)) {
		parts = append(parts, k, md[k])
	}
	parts = append(parts, strconv.FormatInt(t.Rows(), 10), strconv.Itoa(len(t.EpochT)), strconv.Itoa(len(t.Initial)))
	if t.ZeroRows > 0 {
		// Only then: a trace without zero writes keeps the identity it had
		// before the zero column existed.
		h := fnv.New64a()
		var b [8]byte
		for _, w := range t.Zero {
			binary.LittleEndian.PutUint64(b[:], w)
			h.Write(b[:])
		}
		parts = append(parts, "zero", strconv.FormatInt(t.ZeroRows, 10), strconv.FormatUint(h.Sum64(), 16))
	}
	return results.ID(parts...)
}

// Rows is the number of (t, page) rows, initial image excluded.
func (t *Trace) Rows() int64 { return int64(len(t.Pages)) }

// Zeros returns the zero marks of the rows from row off on, for a group of
// writes that starts there.
func (t *Trace) zeros(off int64) Zeros { return Zeros{bits: t.Zero, off: off} }

// Zeros marks which writes of a group left their page all zeros: At(i) is
// the mark of the group's i-th page.
type Zeros struct {
	bits []uint64
	off  int64
}

// At reports whether the group's i-th write left its page all zeros.
func (z Zeros) At(i int) bool {
	j := z.off + int64(i)
	return j>>6 < int64(len(z.bits)) && z.bits[j>>6]&(1<<(uint(j)&63)) != 0
}

// Any reports whether the group may have writes that left a page all
// zeros (false: none did).
func (z Zeros) Any() bool { return z.bits != nil }

// Epoch returns epoch i's time and pages.
func (t *Trace) Epoch(i int) (int64, []int32) {
	return t.EpochT[i], t.Pages[t.EpochOff[i]:t.EpochOff[i+1]]
}

// SetInitial records the initial image.
func (t *Trace) SetInitial(pages []int32) error {
	if err := t.checkPages(0, pages); err != nil {
		return fmt.Errorf("initial image: %w", err)
	}
	t.HasInitial = true
	t.Initial = append(t.Initial[:0], pages...)
	return nil
}

// AddEpoch appends an epoch; tNS must exceed the previous epoch's and pages
// must be ascending, unique and inside memory.
func (t *Trace) AddEpoch(tNS int64, pages []int32) error { return t.AddEpochZero(tNS, pages, nil) }

// AddEpochZero is AddEpoch with zero parallel to pages (or nil): true where
// the write left the page all zeros.
func (t *Trace) AddEpochZero(tNS int64, pages []int32, zero []bool) error {
	if zero != nil && len(zero) != len(pages) {
		return fmt.Errorf("epoch at t_ns=%d: %d pages but %d zero flags", tNS, len(pages), len(zero))
	}
	if n := len(t.EpochT); n > 0 && tNS <= t.EpochT[n-1] {
		return fmt.Errorf("epoch at t_ns=%d: not after the previous epoch at %d", tNS, t.EpochT[n-1])
	}
	if tNS < 0 {
		return fmt.Errorf("epoch at t_ns=%d: negative time", tNS)
	}
	if err := t.checkPages(tNS, pages); err != nil {
		return err
	}
	if len(pages) == 0 {
		return nil
	}
	t.EpochT = append(t.EpochT, tNS)
	first := int64(len(t.Pages))
	t.Pages = append(t.Pages, pages...)
	for i, z := range zero {
		if !z {
			continue
		}
		row := first + int64(i)
		for int64(len(t.Zero)) <= row>>6 {
			t.Zero = append(t.Zero, 0)
		}
		t.Zero[row>>6] |= 1 << (uint(row) & 63)
		t.ZeroRows++
	}
	t.EpochOff = append(t.EpochOff, int64(len(t.Pages)))
	return nil
}

func (t *Trace) checkPages(tNS int64, pages []int32) error {
	prev := int32(-1)
	for _, p := range pages {
		if p <= prev || int64(p) >= t.Header.Pages {
			return fmt.Errorf("epoch at t_ns=%d: page %d out of order or outside [0, %d)", tNS, p, t.Header.Pages)
		}
		prev = p
	}
	return nil
}

// SetMemory changes the memory size to pages (the --memory flag). It may
// grow memory (untouched pages still have to be sent once) but not cut off
// pages the trace writes.
func (t *Trace) SetMemory(pages int64) error {
	if pages <= 0 || pages > math.MaxInt32 {
		return fmt.Errorf("memory of %d pages: want 1 to %d", pages, math.MaxInt32)
	}
	var top int32 = -1
	for i := range t.EpochT {
		_, ps := t.Epoch(i)
		if len(ps) > 0 {
			top = max(top, ps[len(ps)-1])
		}
	}
	if len(t.Initial) > 0 {
		top = max(top, t.Initial[len(t.Initial)-1])
	}
	if int64(top) >= pages {
		return fmt.Errorf("memory of %d pages is smaller than the trace: it writes page %d", pages, top)
	}
	t.Header.Pages = pages
	return nil
}

// Scanner is the shape of tracefmt.Reader (and of synthetic generators):
// epochs in time order, the initial image first.
type Scanner interface {
	Header() tracefmt.Header
	Scan() bool
	Epoch() tracefmt.Epoch
	Err() error
}

// ReadTrace loads every epoch of s into memory.
func ReadTrace(name string, s Scanner) (*Trace, error) { return readTrace(name, s, 0) }

// readTrace is ReadTrace with the row count, when known, to allocate once
// (growing by appends would briefly hold twice the rows).
func readTrace(name string, s Scanner, rows int64) (*Trace, error) {
	h := s.Header()
	if h.Pages > math.MaxInt32 {
		return nil, fmt.Errorf("trace has %d pages: the simulator handles at most %d", h.Pages, math.MaxInt32)
	}
	t := NewTrace(name, h)
	if rows > 0 {
		t.Pages = make([]int32, 0, rows)
	}
	var buf []int32
	for s.Scan() {
		e := s.Epoch()
		buf = buf[:0]
		for _, p := range e.Pages {
			buf = append(buf, int32(p))
		}
		var err error
		if e.Initial {
			err = t.SetInitial(buf)
		} else {
			err = t.AddEpochZero(e.TNS, buf, e.Zero)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadTrace reads a trace file (or segment directory) into memory, within
// DefaultMaxMemory.
func LoadTrace(path string) (*Trace, error) { return LoadTraceWithin(path, 0) }

// LoadTraceWithin reads a trace into memory if the rows its footer claims
// fit in maxMemory bytes (0: DefaultMaxMemory), and refuses it before
// reading otherwise.
func LoadTraceWithin(path string, maxMemory int64) (*Trace, error) {
	r, err := tracefmt.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open trace %s: %w", path, err)
	}
	defer r.Close()
	if err := checkLoad(path, r.Rows(), maxMemory); err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".parquet")
	t, err := readTrace(name, r, r.Rows())
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", path, err)
	}
	return t, nil
}
