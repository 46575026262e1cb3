package replay

import (
	"fmt"
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
}

// NewTrace returns an empty trace with header h.
func NewTrace(name string, h tracefmt.Header) *Trace {
	return &Trace{Name: name, Header: h, EpochOff: []int64{0}}
}

// ID identifies the trace by content, so that two traces of one name
// (a/redis.parquet, b/redis.parquet) give different runs: a digest of its
// metadata (memory size included), its row count, its epoch count and its
// initial image's size.
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
	return results.ID(parts...)
}

// Rows is the number of (t, page) rows, initial image excluded.
func (t *Trace) Rows() int64 { return int64(len(t.Pages)) }

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
func (t *Trace) AddEpoch(tNS int64, pages []int32) error {
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
	t.Pages = append(t.Pages, pages...)
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
			err = t.AddEpoch(e.TNS, buf)
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
