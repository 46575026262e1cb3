package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// Options configures Record.
type Options struct {
	TrackerOptions
	// Epoch is the time between scans; default 100 ms.
	Epoch time.Duration
	// Duration ends the capture after this long; 0 runs until the target
	// exits or the context is cancelled.
	Duration time.Duration
	// Output is the trace's path: a directory of segments when
	// SegmentEvery > 0, else one Parquet file.
	Output string
	// SegmentEvery finishes the open segment this often, so that a capture
	// killed with SIGKILL loses at most this much. 0 writes one file, which
	// is readable only once the capture ends cleanly.
	SegmentEvery time.Duration
	// Workload is the command line stored in the trace's metadata.
	Workload string
	// GuestSlowdown, if not 0, is stored as the trace's guest_slowdown
	// (tracefmt.Header.GuestSlowdown).
	GuestSlowdown float64
	// Progress, when set, gets a live status line (for a terminal).
	Progress io.Writer
	// Logger gets debug and warning records; nil discards them.
	Logger *slog.Logger
	// NoFollow captures the target process alone, not the processes it
	// forks, and stops at its exec.
	NoFollow bool
	// Ready, when set, is called once the target is tracked and its
	// initial image written: writes from then on are in the trace.
	Ready func()
	// KeepZeroPages keeps present pages that hold only zeros in the
	// initial image. By default their content is checked, 4 KiB at a time,
	// and they are left out: they are zero pages to a migration that looks
	// at content (QEMU), even when a huge page makes them present.
	KeepZeroPages bool
	// ZeroWrites checks, after every scan, the content of each page the
	// scan reported written, 4 KiB at a time and read-only, and marks
	// those that hold only zeros (the trace's zero column): freed memory
	// the kernel zeroed, a calloc'd buffer, a cleared cache are zero pages
	// again to a migration that looks at content.
	ZeroWrites bool
}

// Target is what to capture: a running process (PID), a command to start
// (Cmd, not yet started), or every process of a cgroup v2 directory
// (Cgroup), including those that join it later. Unless Options.NoFollow,
// the processes they fork are captured too.
type Target struct {
	PID    int
	Cmd    *exec.Cmd
	Cgroup string
}

// Stats sums up a capture.
type Stats struct {
	// Epochs counts the scans.
	Epochs int64
	// Rows counts the trace rows written, initial image included.
	Rows int64
	// Pages is the size of the dense page space.
	Pages int64
	// Initial counts the pages of the initial image.
	Initial int
	// InitialZero counts the present pages left out of the initial image
	// because they held only zeros, and ZeroCheck is the time their check
	// took (reading every present page once).
	InitialZero int
	ZeroCheck   time.Duration
	// ZeroWrites counts the written pages found all zeros at the end of
	// their epoch (Options.ZeroWrites), ZeroWriteChecked the written pages
	// checked, and ZeroWriteCheck the time the checks took in all.
	ZeroWrites       int64
	ZeroWriteChecked int64
	ZeroWriteCheck   time.Duration
	// Elapsed is the capture's length.
	Elapsed time.Duration
	// Exited reports that the target exited during the capture.
	Exited bool
	// ExitErr is the launched command's exit error (nil on status 0).
	ExitErr error
	// Stopped says why the capture stopped: "exit", "duration", "signal".
	Stopped string
	// Processes counts the address spaces captured (processes, and
	// programs a process exec'd).
	Processes int
}

// segmentRowsCap bounds one segment's rows whatever SegmentEvery says.
const segmentRowsCap = 1 << 24

// Record captures the target into a trace at opts.Output. It stops when
// the target exits, after opts.Duration, or when ctx is cancelled, and in
// every case leaves a readable trace. Capture never changes what the target
// computes: if Record fails or its process dies, the target runs on.
func Record(ctx context.Context, target Target, opts Options) (st Stats, err error) {
	if opts.Epoch <= 0 {
		opts.Epoch = 100 * time.Millisecond
	}
	if opts.Output == "" {
		return st, errors.New("no output path (-o)")
	}
	log := logger(opts.Logger)
	// Before anything starts: a bad output must not leave a command running.
	created, err := checkOutput(opts.Output, opts.SegmentEvery > 0)
	if err != nil {
		return st, err
	}
	opts.Start = time.Now()
	// Address ranges (a VM's RAM blocks) belong to the one process they
	// were found in: no process tree.
	p, tr, err := startTarget(target, opts.TrackerOptions, opts.NoFollow || len(opts.Filter.Ranges) > 0, log)
	if err != nil {
		return st, err
	}
	defer p.release()
	closeTracker := func() {
		if tr != nil {
			tr.Close()
			tr = nil
		}
	}
	defer closeTracker()

	idx := tr.Index()
	// The initial image first: a tree tracker counts the pages of
	// processes that appear from now on as written, not initial, so the
	// page space read next holds every initial page.
	initial := tr.Initial()
	if idx.Pages() == 0 && target.PID != 0 && !opts.Filter.zero() {
		return st, fmt.Errorf("no mapping of pid %d matched %s: nothing to capture (see its mappings in /proc/%d/maps)", target.PID, opts.Filter, target.PID)
	}
	h := tracefmt.Header{
		PageSize: int64(idx.PageSize()), Pages: max(idx.Pages(), 1), EpochNS: opts.Epoch.Nanoseconds(),
		Backend: tr.Backend(), Workload: opts.Workload, Kernel: kernelRelease(), StartedAt: opts.Start,
		Regions: idx.Regions(), GuestSlowdown: opts.GuestSlowdown,
	}
	wopts := tracefmt.WriterOptions{ZeroWrites: opts.ZeroWrites}
	if opts.SegmentEvery > 0 {
		wopts.SegmentRows = segmentRowsCap
	}
	w, err := tracefmt.Create(opts.Output, h, wopts)
	if err != nil {
		return st, outputErr(opts.Output, err)
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = outputErr(opts.Output, cerr)
		}
		st.Rows = w.Rows()
		if err == nil && idx.Pages() == 0 {
			removeOutput(opts.Output, created)
			err = fmt.Errorf("no memory matched %s during the capture: no trace written", opts.Filter)
		}
	}()
	pid := target.PID
	if target.Cmd != nil && target.Cmd.Process != nil {
		pid = target.Cmd.Process.Pid
	}
	if !opts.KeepZeroPages {
		t0 := time.Now()
		if initial, st.InitialZero, err = nonZeroInitial(pid, idx, initial); err != nil {
			return st, fmt.Errorf("check the initial image for zero pages: %w", err)
		}
		st.ZeroCheck = time.Since(t0)
		log.Debug("initial image checked for zero pages", "present", len(initial)+st.InitialZero, "zero", st.InitialZero, "took", st.ZeroCheck)
	}
	st.Initial = len(initial)
	w.SetPages(max(idx.Pages(), 1))
	w.SetRegions(idx.Regions())
	if err := w.WriteInitial(initial); err != nil {
		return st, outputErr(opts.Output, err)
	}
	if opts.SegmentEvery > 0 {
		// The initial image alone can be large: make it durable at once.
		if err := w.Rotate(); err != nil {
			return st, outputErr(opts.Output, err)
		}
	}
	if opts.Ready != nil {
		opts.Ready()
	}

	var zw *writeZeros
	if opts.ZeroWrites {
		zw = newWriteZeros(pid)
		defer zw.close()
	}
	ticker := time.NewTicker(opts.Epoch)
	defer ticker.Stop()
	var deadline <-chan time.Time
	if opts.Duration > 0 {
		tm := time.NewTimer(opts.Duration)
		defer tm.Stop()
		deadline = tm.C
	}
	lastRotate := time.Now()
	lastT := int64(0)
	prog := newProgress(opts.Progress)
	defer prog.finish()
	for {
		final := false
		select {
		case <-ticker.C:
		case <-deadline:
			final, st.Stopped = true, "duration"
		case <-ctx.Done():
			final, st.Stopped = true, "signal"
		case <-p.exited():
			// The address space is gone: nothing left to scan.
			st.Stopped, st.Exited = "exit", true
		}
		if st.Stopped == "exit" {
			break
		}
		p.poll()
		sc, serr := tr.Scan()
		tNS := time.Since(opts.Start).Nanoseconds()
		if errors.Is(serr, ErrTargetGone) {
			st.Stopped, st.Exited = "exit", true
			break
		}
		if serr != nil {
			return st, fmt.Errorf("epoch %d: %w", st.Epochs+1, serr)
		}
		st.Epochs++
		if sc.Grew {
			w.SetPages(idx.Pages())
			w.SetRegions(idx.Regions())
		}
		var zero []bool
		if zw != nil && len(sc.Pages) > 0 {
			// After the scan, which protected the pages again: a write
			// racing with the read shows up in the next epoch, whose check
			// reads the page again, so a page's last row says what it
			// holds.
			t0 := time.Now()
			var n int
			zero, n = zw.check(idx, sc.Pages)
			st.ZeroWriteCheck += time.Since(t0)
			st.ZeroWrites += int64(n)
			st.ZeroWriteChecked += int64(len(sc.Pages))
		}
		if err := writeScan(w, sc, zero, tNS, &lastT); err != nil {
			return st, outputErr(opts.Output, err)
		}
		if opts.SegmentEvery > 0 && time.Since(lastRotate) >= opts.SegmentEvery {
			if err := w.Rotate(); err != nil {
				return st, outputErr(opts.Output, err)
			}
			lastRotate = time.Now()
		}
		prog.update(time.Since(opts.Start), st.Epochs, len(sc.Pages), w.Rows(), idx.Pages()*int64(idx.PageSize()))
		if final {
			break
		}
	}
	st.Elapsed = time.Since(opts.Start)
	st.Pages = idx.Pages()
	if zw != nil {
		log.Debug("written pages checked for zeros", "checked", st.ZeroWriteChecked, "zero", st.ZeroWrites, "took", st.ZeroWriteCheck)
	}
	// Processes that ended since the last scan: their memory is freed.
	w.SetPages(max(st.Pages, 1))
	w.SetRegions(idx.Regions())
	closeTracker()
	st.Processes = p.processes()
	st.ExitErr = p.finish(st.Stopped, log)
	if st.ExitErr != nil || p.hasExited() {
		st.Exited = true
	}
	return st, nil
}

// writeScan writes one scan, with zero parallel to sc.Pages (nil: no
// content check). Sync scans carry a time per page; rows that share a time
// form one epoch, and times are kept strictly increasing (a fault recorded
// a moment late can trail the previous epoch by a few microseconds).
func writeScan(w *tracefmt.Writer, sc Scan, zero []bool, tNS int64, lastT *int64) error {
	if len(sc.Pages) == 0 {
		return nil
	}
	if sc.TimesNS == nil {
		t := max(tNS, *lastT+1)
		*lastT = t
		return w.WriteEpochZero(t, sc.Pages, nil, zero)
	}
	// The groups below are sorted by page: find the zero pages by value.
	var zeroSet map[int64]bool
	for k, z := range zero {
		if z {
			if zeroSet == nil {
				zeroSet = map[int64]bool{}
			}
			zeroSet[sc.Pages[k]] = true
		}
	}
	var groupZero []bool
	for i := 0; i < len(sc.Pages); {
		t := max(sc.TimesNS[i], *lastT+1)
		j := i + 1
		for j < len(sc.Pages) && max(sc.TimesNS[j], *lastT+1) == t {
			j++
		}
		// Times raised to follow the previous epoch merge runs of pages
		// that were each ascending on their own.
		group := slices.Compact(slices.Sorted(slices.Values(sc.Pages[i:j])))
		groupZero = groupZero[:0]
		if zeroSet != nil {
			for _, p := range group {
				groupZero = append(groupZero, zeroSet[p])
			}
		}
		if err := w.WriteEpochZero(t, group, nil, groupZero); err != nil {
			return err
		}
		*lastT = t
		i = j
	}
	return nil
}

func outputErr(path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("write trace %s: disk full: %w: free space or choose another -o; finished segments are kept", path, err)
	}
	if strings.Contains(err.Error(), path) {
		return err
	}
	return fmt.Errorf("write trace %s: %w", path, err)
}

// progress draws the live line.
type progress struct {
	w         io.Writer
	last      time.Time
	lastPages int64
	pages     int64
	drawn     bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, last: time.Now()} }

func (p *progress) update(elapsed time.Duration, epochs int64, dirty int, rows, bytes int64) {
	if p.w == nil {
		return
	}
	p.pages += int64(dirty)
	if d := time.Since(p.last); d >= 500*time.Millisecond {
		rate := float64(p.pages-p.lastPages) / d.Seconds()
		fmt.Fprintf(p.w, "\rcapture %6.1fs  epochs %-6d  %9.0f dirty pages/s  rows %-10d  memory %.1f MiB ",
			elapsed.Seconds(), epochs, rate, rows, float64(bytes)/(1<<20))
		p.last, p.lastPages, p.drawn = time.Now(), p.pages, true
	}
}

func (p *progress) finish() {
	if p.w != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
