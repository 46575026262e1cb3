package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/microwiper/microwiper/tracefmt"
)

// uffdTracker is the uffd-wp-async and uffd-wp-sync backends.
type uffdTracker struct {
	pid    int
	sync   bool
	fd     int
	file   *os.File // sync: fd wrapped for the poller
	ps     *pageScanner
	maps   *mapsFile
	idx    *Index
	filter Filter
	start  time.Time
	log    *slog.Logger
	pageSz uint64
	key    spaceKey // the private memory's space in idx
	owner  owner
	views  []view // eligible mappings at the last maps read, by address

	// Copy-on-write sharing with the other address spaces of a tree (nil
	// cow for a single process): see cow_linux.go.
	cow    *cowState
	over   map[uint64]cowPage // private pages not at their by-address index
	alt    map[uint64]int64   // the last index given anew to a private page
	fkey   spaceKey           // the space of the indexes given anew
	parent *uffdTracker       // while registering a forked child: its parent
	from   *uffdTracker       // the parent a forked child inherited from
	lazy   bool               // some private ranges take indexes page by page
	grew   bool               // an index was given since the last scan

	registered spanSet // ranges registered and protected
	skipped    spanSet // eligible ranges the kernel would not register
	initial    []int64
	pending    []int64 // pages present when their mapping was registered
	out        []int64
	times      []int64

	// sync only: first fault time per page address in this epoch.
	mu      sync.Mutex
	faults  map[uint64]int64
	handler chan struct{} // closed when the fault handler exits
	herr    error
	first   *firstTouch // sync before Linux 6.4: see pagemap_fallback_linux.go
}

func (t *uffdTracker) Backend() string {
	if t.sync {
		return tracefmt.BackendUffdSync
	}
	return tracefmt.BackendUffdAsync
}

func (t *uffdTracker) Initial() []int64 { return t.initial }
func (t *uffdTracker) Index() *Index    { return t.idx }

func uffdFeatures(sync bool) uint64 {
	if sync {
		// Before 6.4 (no WP_UNPOPULATED) first touches are found by
		// presence instead (pagemap_fallback_linux.go).
		if KernelFeatures().WPUnpopulated {
			return uffdFeatureWPUnpopulated | uffdFeaturePagefaultFlagWP
		}
		return uffdFeaturePagefaultFlagWP
	}
	return uffdFeatureWPAsync | uffdFeatureWPUnpopulated
}

// view says where an address range's pages live in the index: in space
// key, at coordinate address - delta.
type view struct {
	start, end  uint64
	key         spaceKey
	delta       uint64
	perms, path string
}

// newUffdTracker takes ownership of fd, a userfaultfd of pid's address
// space, and registers the target's memory in an index of its own.
func newUffdTracker(pid, fd int, sync bool, opts TrackerOptions, log *slog.Logger) (*uffdTracker, error) {
	return newSpaceTracker(pid, fd, sync, opts, log, NewIndex(uint64(os.Getpagesize())), spaceKey{}, owner{pid: pid})
}

// newSpaceTracker is newUffdTracker for one address space among several
// sharing idx: its private memory is space key, its shared memory the
// spaces of the objects it maps.
func newSpaceTracker(pid, fd int, sync bool, opts TrackerOptions, log *slog.Logger, idx *Index, key spaceKey, o owner) (*uffdTracker, error) {
	return newTreeSpace(pid, fd, sync, opts, log, idx, key, o, nil, nil)
}

// newTreeSpace is newSpaceTracker for a process of a followed tree, whose
// private pages may be shared copy-on-write with other processes (cow).
// A child forked from parent, stopped since, shares the parent's pages.
func newTreeSpace(pid, fd int, sync bool, opts TrackerOptions, log *slog.Logger, idx *Index, key spaceKey, o owner,
	cow *cowState, parent *uffdTracker) (*uffdTracker, error) {
	t := &uffdTracker{pid: pid, sync: sync, fd: fd, filter: opts.Filter, start: opts.Start, log: log,
		pageSz: uint64(os.Getpagesize()), idx: idx, key: key, owner: o,
		cow: cow, parent: parent, from: parent, fkey: spaceKey{asid: key.asid | 1<<63}}
	defer func() { t.parent = nil }()
	// Explicit ranges (a VM's RAM blocks, in one process) take their dense
	// indexes in the order given, whatever order the kernel lists their
	// mappings in: QEMU migrates RAM blocks in its own order.
	idx.layout(key, o, opts.Filter.Ranges)
	api := uffdioAPIArg{API: uffdAPI, Features: uffdFeatures(sync)}
	if _, err := ioctlPtr(fd, uffdioAPI, unsafe.Pointer(&api)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("userfaultfd handshake (UFFDIO_API): %w", err)
	}
	ps, err := openPageScanner(pid)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	t.ps = ps
	if sync && !KernelFeatures().WPUnpopulated {
		t.first = &firstTouch{}
	}
	if t.maps, err = openMaps(pid); err != nil {
		t.Close()
		return nil, err
	}
	if _, err := t.reconcile(true); err != nil {
		t.Close()
		return nil, err
	}
	slices.Sort(t.initial)
	t.initial = slices.Compact(t.initial)
	if sync {
		t.faults = make(map[uint64]int64)
		t.handler = make(chan struct{})
		t.file = os.NewFile(uintptr(fd), "userfaultfd")
		go t.handleFaults()
	}
	return t, nil
}

// reconcile registers eligible mappings not yet registered and forgets
// ranges that are gone. It reports whether the index grew.
func (t *uffdTracker) reconcile(initial bool) (bool, error) {
	ms, err := t.maps.read()
	if err != nil {
		return false, err
	}
	var alive spanSet
	for _, m := range ms {
		alive = alive.add(span{m.Start, m.End})
	}
	t.registered = t.registered.intersect(alive)
	t.skipped = t.skipped.intersect(alive)
	t.views = t.views[:0]
	for _, m := range ms {
		if t.filter.Eligible(m) {
			t.views = append(t.views, t.viewOf(m))
		}
	}
	grew := false
	for _, m := range ms {
		if !t.filter.Eligible(m) {
			continue
		}
		for _, kept := range t.filter.pieces(m) {
			for _, piece := range t.registered.minus(kept) {
				for _, p := range t.skipped.minus(piece) {
					g, err := t.register(p, m, initial)
					if err != nil {
						return grew, err
					}
					grew = grew || g
				}
			}
		}
	}
	return grew, nil
}

// register registers and protects one range. Pages already present could
// have been written before we saw the range, so they join the initial image
// (at start) or this epoch's written pages.
func (t *uffdTracker) register(s span, m Mapping, initial bool) (bool, error) {
	reg := uffdioRegisterArg{Range: uffdioRange{Start: s.start, Len: s.end - s.start}, Mode: uffdioRegisterModeWP}
	if _, err := ioctlPtr(t.fd, uffdioRegister, unsafe.Pointer(&reg)); err != nil {
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EBUSY), errors.Is(err, unix.EPERM):
			// EINVAL: a kind of memory this mode cannot protect (sync mode
			// and file-backed memory, VM_PFNMAP, ...); EBUSY: the target
			// registered it with its own userfaultfd.
			level := slog.LevelDebug
			if errors.Is(err, unix.EBUSY) {
				level = slog.LevelWarn // memory the user likely wants, and we cannot see
			}
			t.log.Log(context.Background(), level, "mapping not captured", "start", fmt.Sprintf("%#x", s.start), "end", fmt.Sprintf("%#x", s.end),
				"perms", m.Perms, "path", m.Path, "err", err)
			t.skipped = t.skipped.add(s)
			return false, nil
		case errors.Is(err, unix.ENOMEM), errors.Is(err, unix.ESRCH):
			// The address space is gone, or the range was unmapped since we
			// read the maps: the next epoch will see.
			if _, gone := readMaps(t.pid); gone != nil {
				return false, gone
			}
			return false, nil
		}
		return false, fmt.Errorf("register %#x-%#x (%s %s) with userfaultfd: %w", s.start, s.end, m.Perms, m.Path, err)
	}
	v := t.viewOf(m)
	t.registered = t.registered.add(s)
	if t.first != nil {
		if err := t.first.seed(t.ps, s); err != nil {
			return false, fmt.Errorf("scan pages of %#x-%#x: %w", s.start, s.end, procErr(err))
		}
	}
	dst := &t.pending
	if initial {
		dst = &t.initial
	}
	var grew bool
	var add func(a, b uint64)
	switch {
	case initial && t.parent != nil && v.key == t.key:
		// Inherited at fork: the parent's pages, until either side writes.
		t.lazy, grew = true, true
		add = func(a, b uint64) { *dst = t.inherit(*dst, a, b) }
	case initial:
		grew = t.idx.cover(v.key, t.owner, m, s.start-v.delta, s.end-v.delta, v.delta)
		add = func(a, b uint64) { *dst = t.appendPages(*dst, a, b) }
	default:
		// New content in this address space: pages sharing an index with
		// another process leave it.
		grew = t.idx.cover(v.key, t.owner, m, s.start-v.delta, s.end-v.delta, v.delta)
		add = func(a, b uint64) { *dst = t.appendWritten(*dst, a, b) }
	}
	// Pages holding data before protection, then pages present after it: a
	// page written in between is in the second set, so none is missed.
	if err := t.ps.scan(queryData, s.start, s.end, add); err != nil {
		return grew, fmt.Errorf("scan pages of %#x-%#x: %w", s.start, s.end, procErr(err))
	}
	if err := t.protect(s); err != nil {
		return grew, err
	}
	if err := t.ps.scan(queryPresent, s.start, s.end, add); err != nil {
		return grew, fmt.Errorf("scan pages of %#x-%#x: %w", s.start, s.end, procErr(err))
	}
	return grew, nil
}

func (t *uffdTracker) writeProtect(s span, mode uint64) error {
	wp := uffdioWriteprotectArg{Range: uffdioRange{Start: s.start, Len: s.end - s.start}, Mode: mode}
	for {
		_, err := ioctlPtr(t.fd, uffdioWriteprotect, unsafe.Pointer(&wp))
		if errors.Is(err, unix.EAGAIN) {
			// The address space is changing under us (mremap, fork): retry.
			continue
		}
		return err
	}
}

func (t *uffdTracker) protect(s span) error {
	if err := t.writeProtect(s, uffdioWriteprotectModeWP); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("write-protect %#x-%#x: %w", s.start, s.end, procErr(err)) // ESRCH: the target is gone
	}
	return nil
}

func (t *uffdTracker) Scan() (Scan, error) {
	if t.sync {
		return t.scanSync()
	}
	grew, err := t.reconcile(false)
	if err != nil {
		return Scan{}, err
	}
	t.out = append(t.out[:0], t.pending...)
	t.pending = t.pending[:0]
	for i := 0; i < len(t.registered); i++ {
		s := t.registered[i]
		err := t.ps.scan(queryWritten, s.start, s.end, func(a, b uint64) { t.out = t.appendWritten(t.out, a, b) })
		if errors.Is(err, unix.EPERM) {
			// Part of the range was unmapped and mapped again since the last
			// maps read: that mapping is not registered. Register the range
			// anew; its present pages count as written.
			t.log.Debug("range replaced under us; registering again", "start", fmt.Sprintf("%#x", s.start), "end", fmt.Sprintf("%#x", s.end))
			t.registered = t.registered.remove(s)
			g, rerr := t.reconcile(false)
			if rerr != nil {
				return Scan{}, rerr
			}
			grew = grew || g
			t.out = append(t.out, t.pending...)
			t.pending = t.pending[:0]
			i = -1 // the set changed; rescanning a range finds nothing new
			continue
		}
		if err != nil {
			if _, gone := readMaps(t.pid); gone != nil {
				return Scan{}, gone
			}
			return Scan{}, fmt.Errorf("PAGEMAP_SCAN %#x-%#x of pid %d: %w", s.start, s.end, t.pid, err)
		}
	}
	slices.Sort(t.out)
	t.out = slices.Compact(t.out)
	grew = grew || t.grew
	t.grew = false
	return Scan{Pages: t.out, Grew: grew}, nil
}

// handleFaults is the sync backend's fault handler: it records the first
// write to each page with its time and lets the thread go on.
func (t *uffdTracker) handleFaults() {
	defer close(t.handler)
	buf := make([]byte, uffdMsgSize*128)
	for {
		n, err := t.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				t.herr = fmt.Errorf("read userfaultfd: %w", err)
			}
			return
		}
		now := time.Since(t.start).Nanoseconds()
		for off := 0; off+uffdMsgSize <= n; off += uffdMsgSize {
			msg := buf[off : off+uffdMsgSize]
			if msg[0] != uffdEventPagefault {
				continue
			}
			flags := *(*uint64)(unsafe.Pointer(&msg[8]))
			addr := *(*uint64)(unsafe.Pointer(&msg[16])) &^ (t.pageSz - 1)
			if flags&uffdPagefaultFlagWP == 0 {
				continue
			}
			t.mu.Lock()
			if _, ok := t.faults[addr]; !ok {
				t.faults[addr] = now
			}
			t.mu.Unlock()
			// Un-protecting wakes the faulting thread.
			if err := t.writeProtect(span{addr, addr + t.pageSz}, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				t.log.Debug("un-protect after fault", "addr", fmt.Sprintf("%#x", addr), "err", err)
			}
		}
	}
}

func (t *uffdTracker) scanSync() (Scan, error) {
	grew, err := t.reconcile(false)
	if err != nil {
		return Scan{}, err
	}
	if err := t.scanFirstTouches(); err != nil {
		return Scan{}, err
	}
	now := time.Since(t.start).Nanoseconds()
	t.mu.Lock()
	faults := t.faults
	t.faults = make(map[uint64]int64, len(faults))
	t.mu.Unlock()
	pts := make([]timedPage, 0, len(faults)+len(t.pending))
	addrs := make([]uint64, 0, len(faults))
	for a, ft := range faults {
		addrs = append(addrs, a)
		if p, ok := t.writtenPage(a); ok {
			pts = append(pts, timedPage{p, ft})
		}
	}
	seen := make(map[int64]bool, len(pts))
	for _, p := range pts {
		seen[p.page] = true
	}
	for _, p := range t.pending {
		if !seen[p] {
			pts = append(pts, timedPage{p, now})
			seen[p] = true
		}
	}
	t.pending = t.pending[:0]
	// Protect the written pages again, a run of adjacent pages at a time.
	slices.Sort(addrs)
	for i := 0; i < len(addrs); {
		j := i + 1
		for j < len(addrs) && addrs[j] == addrs[j-1]+t.pageSz {
			j++
		}
		if err := t.protect(span{addrs[i], addrs[j-1] + t.pageSz}); err != nil {
			return Scan{}, err
		}
		i = j
	}
	t.out, t.times = inTimeOrder(pts, t.out, t.times)
	select {
	case <-t.handler:
		if t.herr != nil {
			return Scan{}, t.herr
		}
	default:
	}
	grew = grew || t.grew
	t.grew = false
	return Scan{Pages: t.out, TimesNS: t.times, Grew: grew}, nil
}

func (t *uffdTracker) Close() error {
	var err error
	if t.ps != nil {
		t.ps.Close()
	}
	if t.maps != nil {
		t.maps.Close()
	}
	if t.file != nil {
		err = t.file.Close()
		<-t.handler
	} else if t.fd >= 0 {
		err = unix.Close(t.fd)
	}
	t.fd = -1
	return err
}

// viewOf places mapping m in the index: private memory in the tracker's
// own space by address, shared memory in its object's space by offset.
func (t *uffdTracker) viewOf(m Mapping) view {
	if m.Shared() {
		return view{start: m.Start, end: m.End, key: spaceKey{dev: m.Dev, ino: m.Inode}, delta: m.Start - m.Offset, perms: m.Perms, path: m.Path}
	}
	return view{start: m.Start, end: m.End, key: t.key, perms: m.Perms, path: m.Path}
}

// searchViews returns the position of the first view ending after addr.
func searchViews(vs []view, addr uint64) int {
	return sort.Search(len(vs), func(i int) bool { return vs[i].end > addr })
}

// appendPages appends the dense indexes of the pages of [start, end).
func (t *uffdTracker) appendPages(dst []int64, start, end uint64) []int64 {
	i := searchViews(t.views, start)
	for ; i < len(t.views) && t.views[i].start < end; i++ {
		v := t.views[i]
		a, b := max(start, v.start), min(end, v.end)
		dst = t.idx.appendRange(dst, v.key, a-v.delta, b-v.delta)
	}
	return dst
}

// page returns the dense index of the page at addr.
func (t *uffdTracker) page(addr uint64) (int64, bool) {
	i := searchViews(t.views, addr)
	if i == len(t.views) || addr < t.views[i].start {
		return 0, false
	}
	return t.idx.page(t.views[i].key, addr-t.views[i].delta)
}

// timedPage is a page and when it was written, in ns since the capture's
// start: a row of a sync backend's epoch.
type timedPage struct{ page, t int64 }

// inTimeOrder sorts pts by time, ties by page, and returns their pages and
// times in that order in pages[:0] and times[:0], so that a tracker reuses
// its buffers from one epoch to the next.
func inTimeOrder(pts []timedPage, pages, times []int64) ([]int64, []int64) {
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].t != pts[j].t {
			return pts[i].t < pts[j].t
		}
		return pts[i].page < pts[j].page
	})
	pages, times = pages[:0], times[:0]
	for _, p := range pts {
		pages = append(pages, p.page)
		times = append(times, p.t)
	}
	return pages, times
}
