package capture

import (
	"errors"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// treeTracker follows many address spaces in one dense page space: one
// uffd tracker per live process, sharing an Index, so that shared memory
// objects are one set of pages however many processes map them, private
// pages of different processes are different pages, and a private page
// shared copy-on-write after fork is one page until either side writes it
// (cow_linux.go). The follower adds and ends spaces from its thread while
// Scan runs on the caller's; mu orders them.
type treeTracker struct {
	mu      sync.Mutex
	sync    bool
	opts    TrackerOptions
	log     *slog.Logger
	idx     *Index
	cow     cowState
	noShare bool               // benchmarks only: forked children get pages of their own
	spaces  map[int]*procSpace // by process id
	asids   uint64
	started bool    // the first Scan came: new spaces' pages are written, not initial
	initial []int64 // pages present in the spaces seen before the first Scan
	pending []int64 // pages present when a later space was registered
	changed bool    // regions changed (a space ended) since the last Scan
	closed  bool
	seen    int // address spaces registered
	out     []int64
	times   []int64
}

type procSpace struct {
	pid int
	key spaceKey
	tr  *uffdTracker
}

func newTreeTracker(opts TrackerOptions, sync bool, log *slog.Logger) *treeTracker {
	return &treeTracker{opts: opts, sync: sync, log: log, idx: NewIndex(uint64(os.Getpagesize())), spaces: map[int]*procSpace{}}
}

func (t *treeTracker) Backend() string {
	if t.sync {
		return tracefmt.BackendUffdSync
	}
	return tracefmt.BackendUffdAsync
}

func (t *treeTracker) Index() *Index { return t.idx }

// Initial returns the pages present in the processes followed at the
// start. Processes that appear after it is called are new to the trace:
// their present pages count as written at the next Scan.
func (t *treeTracker) Initial() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started = true
	slices.Sort(t.initial)
	t.initial = slices.Compact(t.initial)
	return t.initial
}

// addSpace registers the memory of process pid, whose userfaultfd is fd
// (taken over), as a new address space.
func (t *treeTracker) addSpace(pid, fd int) error { return t.addChild(pid, fd, 0) }

// addChild is addSpace for a process just forked by process parent (0:
// none known), both stopped since the fork: the child's private pages are
// its parent's until either side writes them.
func (t *treeTracker) addChild(pid, fd, parent int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		closeFD(fd)
		return nil
	}
	var from *uffdTracker
	if ps := t.spaces[parent]; ps != nil && parent != 0 && !t.noShare {
		// The parent's writes until now went into the pages the child
		// shares: record them before any write of either side can split.
		if t.flushLocked(ps) == nil {
			from = ps.tr
		}
	}
	t.asids++
	key := spaceKey{asid: t.asids}
	tr, err := newTreeSpace(pid, fd, t.sync, t.opts, t.log, t.idx, key, owner{pid: pid, comm: readComm(pid)}, &t.cow, from)
	if err != nil {
		return err
	}
	t.spaces[pid] = &procSpace{pid: pid, key: key, tr: tr}
	t.seen++
	if t.started {
		t.pending = append(t.pending, tr.initial...)
	} else {
		t.initial = append(t.initial, tr.initial...)
	}
	t.changed = true
	return nil
}

// endSpace ends the address space of pid (exit or exec): it is no longer
// observed, and its private pages count as freed from now on.
func (t *treeTracker) endSpace(pid int) {
	if t == nil {
		return // soft-dirty: no tree (the follower only watches the process)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endLocked(pid)
}

func (t *treeTracker) endLocked(pid int) {
	s := t.spaces[pid]
	if s == nil {
		return
	}
	delete(t.spaces, pid)
	s.tr.Close()
	s.tr.dropShares()
	now := time.Since(t.opts.Start).Nanoseconds()
	if t.idx.exit(s.key, now) {
		t.changed = true
	}
	if t.idx.exit(s.tr.fkey, now) {
		t.changed = true
	}
}

// flushSpace scans the memory of pid, about to exit, one last time: its
// writes since the last epoch count in the next one.
func (t *treeTracker) flushSpace(pid int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.spaces[pid]; s != nil {
		t.flushLocked(s)
	}
}

func (t *treeTracker) flushLocked(s *procSpace) error {
	sc, err := s.tr.Scan()
	if err != nil {
		return err
	}
	t.pending = append(t.pending, sc.Pages...)
	t.changed = t.changed || sc.Grew
	return nil
}

// live counts the processes whose memory is followed.
func (t *treeTracker) live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.spaces)
}

// Scan ends an epoch in every followed process and merges their pages.
// A page of a shared object written by several processes appears once;
// with the sync backend, at its earliest fault time.
func (t *treeTracker) Scan() (Scan, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started = true
	grew := t.changed
	t.changed = false
	pids := make([]int, 0, len(t.spaces))
	for pid := range t.spaces {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	now := time.Since(t.opts.Start).Nanoseconds()
	var pts []timedPage
	t.out = append(t.out[:0], t.pending...)
	if t.sync {
		for _, p := range t.pending {
			pts = append(pts, timedPage{p, now})
		}
	}
	t.pending = t.pending[:0]
	for _, pid := range pids {
		s := t.spaces[pid]
		sc, err := s.tr.Scan()
		if err != nil {
			if !errors.Is(err, ErrTargetGone) {
				t.log.Warn("process no longer captured", "pid", pid, "err", err)
			}
			t.endLocked(pid)
			grew = true
			continue
		}
		grew = grew || sc.Grew
		if t.sync {
			for i, p := range sc.Pages {
				pts = append(pts, timedPage{p, sc.TimesNS[i]})
			}
			continue
		}
		t.out = append(t.out, sc.Pages...)
	}
	if !t.sync {
		slices.Sort(t.out)
		t.out = slices.Compact(t.out)
		return Scan{Pages: t.out, Grew: grew}, nil
	}
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].page != pts[j].page {
			return pts[i].page < pts[j].page
		}
		return pts[i].t < pts[j].t
	})
	// The earliest time of each page, then in time order.
	uniq := pts[:0]
	for i, p := range pts {
		if i == 0 || p.page != pts[i-1].page {
			uniq = append(uniq, p)
		}
	}
	t.out, t.times = inTimeOrder(uniq, t.out, t.times)
	return Scan{Pages: t.out, TimesNS: t.times, Grew: grew}, nil
}

// Close stops following every process's memory; they run on.
func (t *treeTracker) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for pid, s := range t.spaces {
		s.tr.Close()
		delete(t.spaces, pid)
	}
	return nil
}
