package capture

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// ErrNotSupported is wrapped by every error caused by a platform or kernel
// that lacks what a backend needs.
var ErrNotSupported = errors.New("not supported")

// ErrTargetGone is wrapped when the target process no longer exists.
var ErrTargetGone = errors.New("target process is gone")

// Backends lists the backend names, default first.
var Backends = []string{tracefmt.BackendUffdAsync, tracefmt.BackendUffdSync, tracefmt.BackendSoftDirty}

// TrackerOptions configures a Tracker.
type TrackerOptions struct {
	// Backend is one of Backends; empty means uffd-wp-async.
	Backend string
	// Filter narrows the captured mappings.
	Filter Filter
	// Start is the trace's time zero: sync fault times are measured from it.
	// Zero means the time the tracker starts.
	Start time.Time
}

func (o TrackerOptions) backend() (string, error) {
	if o.Backend == "" {
		return tracefmt.BackendUffdAsync, nil
	}
	for _, b := range Backends {
		if o.Backend == b {
			return b, nil
		}
	}
	return "", fmt.Errorf("backend %q: want one of %v", o.Backend, Backends)
}

// Scan is one epoch's result.
type Scan struct {
	// Pages are the dense indexes of the pages written in the epoch,
	// ascending and unique.
	Pages []int64
	// TimesNS is nil for epoch backends (every page was written at some time
	// in the epoch). The sync backend gives each page's first-write time in
	// ns since TrackerOptions.Start, parallel to Pages.
	TimesNS []int64
	// Grew reports that the dense space or the region table changed.
	Grew bool
}

// Tracker follows the page writes of one process with one backend.
type Tracker interface {
	// Backend is the backend's name (tracefmt.Backend*).
	Backend() string
	// Initial returns the initial image: the pages present when the tracker
	// started, ascending.
	Initial() []int64
	// Scan ends an epoch: it returns the pages written since the previous
	// Scan (or since the start) and protects them again. It also picks up
	// new mappings. Its slices are valid until the next Scan.
	Scan() (Scan, error)
	// Index is the dense page index (regions and size).
	Index() *Index
	// Close stops tracking; the target runs on untouched.
	Close() error
}

// ExitError is a launched command's failure: a non-zero exit status or a
// fatal signal.
type ExitError struct {
	Code   int
	Signal syscall.Signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("exit status %d", e.Code)
}
