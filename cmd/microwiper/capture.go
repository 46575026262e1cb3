package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/microwiper/microwiper/capture"
	"github.com/microwiper/microwiper/tracefmt"
)

var captureCommand = command{
	name:     "capture",
	synopsis: "record a page-write trace of a process tree (--pid, or a command), or of a cgroup",
	usage:    "[flags] (--pid N | --cgroup DIR | -- command [args...])",
	example: `microwiper capture --pid 1234 --duration 30s -o redis.parquet
microwiper capture --epoch 50ms -o build.parquet -- make -j2
microwiper capture --cgroup /sys/fs/cgroup/system.slice/postgresql.service --duration 20s -o pg.parquet
microwiper capture --backend uffd-wp-sync --region '[heap]' --pid 1234 --duration 5s
microwiper capture --qemu-qmp /run/vm1.qmp --duration 60s -o vm1.parquet`,
	bind:        withOptions(runCapture),
	commandArgs: true,
}

// captureOptions are the flags of capture.
type captureOptions struct {
	PID       int
	Cgroup    string
	NoFollow  bool
	Epoch     time.Duration
	Duration  time.Duration
	Backend   string
	Out       string
	Segment   time.Duration
	Regions   []string
	MinRegion int64
	QEMUQMP   string
	KeepZero  bool
	Slowdown  float64
	ZeroWrite bool
	Verbose   bool
}

func (o *captureOptions) bind(fs *flag.FlagSet) {
	fs.IntVar(&o.PID, "pid", 0, "capture this running process (attach) and its descendants; otherwise give a command after --")
	fs.StringVar(&o.Cgroup, "cgroup", "", "capture every process of this cgroup v2 directory, including those joining later (a container's or service's)")
	fs.BoolVar(&o.NoFollow, "no-follow", false, "capture the one process only, not the processes it forks or execs")
	durationVar(fs, &o.Epoch, "epoch", 100*time.Millisecond, "time between scans: a row says the page was written in the epoch ending at t_ns")
	durationVar(fs, &o.Duration, "duration", 0, "stop after this long (0: when the target exits, or on Ctrl-C/SIGTERM)")
	fs.StringVar(&o.Backend, "backend", "auto", "how writes are seen: "+strings.Join(capture.Backends, ", ")+"; auto picks the best the kernel offers, in that order but soft-dirty before uffd-wp-sync")
	fs.StringVar(&o.Out, "o", "trace.parquet", "output trace: a directory of segment files (--segment > 0), else one Parquet file")
	durationVar(fs, &o.Segment, "segment", 5*time.Second, "finish a segment this often, so a killed capture loses at most this much; 0 writes one file, readable only after a clean stop")
	listVar(fs, &o.Regions, "region", "capture only mappings whose path matches this pattern (repeatable; '[heap]', '[anon]' for anonymous memory, '/dev/shm/*')")
	bytesVar(fs, &o.MinRegion, "min-region", 0, "capture only mappings at least this large (e.g. 1GiB: a VM's guest RAM)")
	fs.StringVar(&o.QEMUQMP, "qemu-qmp", "", "capture a whole VM: the QEMU serving this QMP socket, exactly its RAM blocks in its migration order (never the TCG buffer)")
	fs.BoolVar(&o.KeepZero, "keep-zero-pages", false, "keep present pages that hold only zeros in the initial image (default: their content is checked and they are left out)")
	fs.Float64Var(&o.Slowdown, "guest-slowdown", 0, "record that the traced guest ran this many times slower than hardware (e.g. 12.5: a benchmark's time in the guest over its time on the host), for 'replay --speed guest'; 0: unknown")
	fs.BoolVar(&o.ZeroWrite, "zero-writes", false, "after every epoch, read each page written in it (read-only) and record in the trace's zero column those left all zeros, which a content-checking migration (QEMU) sends as zero pages")
	fs.BoolVar(&o.Verbose, "v", false, "log each mapping left out and other details to stderr")
}

func runCapture(ctx context.Context, cio *cmdIO, o *captureOptions, args []string) error {
	pid := o.PID
	cgroup := o.Cgroup
	given := 0
	for _, ok := range []bool{pid != 0, cgroup != "", len(args) > 0} {
		if ok {
			given++
		}
	}
	qmpPath := o.QEMUQMP
	switch {
	case qmpPath != "" && (len(args) > 0 || cgroup != "" || len(o.Regions) > 0 || o.MinRegion != 0):
		return usageErrorf("--qemu-qmp picks the VM's RAM blocks itself: give no command, --cgroup, --region or --min-region with it")
	case qmpPath != "" && o.Backend == "soft-dirty":
		return usageErrorf("--qemu-qmp needs a uffd backend (soft-dirty cannot capture part of a mapping)")
	case qmpPath != "":
	case given > 1:
		return usageErrorf("give one of --pid, --cgroup or a command after --")
	case given == 0:
		return usageErrorf("nothing to capture: give --pid N, --cgroup DIR, --qemu-qmp SOCKET or a command after --")
	case pid < 0:
		return usageErrorf("--pid %d: want a process id", pid)
	}
	if o.Epoch <= 0 {
		return usageErrorf("--epoch %v: want a positive duration", o.Epoch)
	}
	if o.Slowdown != 0 && !(o.Slowdown >= tracefmt.MinGuestSlowdown && o.Slowdown <= tracefmt.MaxGuestSlowdown) {
		return usageErrorf("--guest-slowdown %g: want a factor between %g and %g (0: unknown)", o.Slowdown, float64(tracefmt.MinGuestSlowdown), float64(tracefmt.MaxGuestSlowdown))
	}
	if o.Duration < 0 || o.Segment < 0 {
		return usageErrorf("--duration and --segment must not be negative")
	}
	backend := o.Backend
	known := false
	known = known || backend == "auto"
	for _, b := range capture.Backends {
		known = known || b == backend
	}
	if !known {
		return usageErrorf("--backend %q: want auto or one of %s", backend, strings.Join(capture.Backends, ", "))
	}
	backend, why, err := capture.SelectBackend(backend)
	if err != nil {
		return err
	}
	if why != "" {
		why = " (" + why + ")"
	}
	filter := capture.Filter{Paths: o.Regions, MinBytes: uint64(o.MinRegion)}
	if err := filter.Check(); err != nil {
		return usageErrorf("--region: %v", err)
	}
	level := slog.LevelWarn
	if o.Verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(cio.stderr, &slog.HandlerOptions{Level: level}))
	if qmpPath != "" {
		qpid, blocks, err := capture.QEMU(ctx, qmpPath, logger)
		if err != nil {
			return fmt.Errorf("--qemu-qmp: %w", err)
		}
		if pid != 0 && pid != qpid {
			return usageErrorf("--pid %d: the QMP socket %s belongs to pid %d", pid, qmpPath, qpid)
		}
		pid = qpid
		filter = capture.Filter{Ranges: capture.Ranges(blocks)}
	} else if pid != 0 {
		capture.ExplainPick(pid, filter, logger)
	}
	opts := capture.Options{
		TrackerOptions: capture.TrackerOptions{Backend: backend, Filter: filter},
		KeepZeroPages:  o.KeepZero,
		GuestSlowdown:  o.Slowdown,
		ZeroWrites:     o.ZeroWrite,
		Epoch:          o.Epoch,
		Duration:       o.Duration,
		Output:         o.Out,
		SegmentEvery:   o.Segment,
		Logger:         logger,
		// A VM is QEMU alone: its RAM blocks are in its own address space.
		NoFollow: o.NoFollow || qmpPath != "",
	}
	if fl, ok := cio.stderr.(*os.File); ok && term.IsTerminal(int(fl.Fd())) {
		opts.Progress = cio.stderr
	}
	var target capture.Target
	switch {
	case pid != 0:
		target.PID = pid
		opts.Workload = cmdline(pid)
		if qmpPath != "" {
			opts.Workload = "qemu-vm: " + opts.Workload
		}
	case cgroup != "":
		target.Cgroup = cgroup
		opts.Workload = "cgroup " + cgroup
	default:
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, cio.stdout, cio.stderr
		target.Cmd = cmd
		opts.Workload = strings.Join(args, " ")
	}
	st, err := capture.Record(ctx, target, opts)
	if err != nil {
		if errors.Is(err, capture.ErrTargetGone) && pid != 0 {
			return fmt.Errorf("%w: check --pid", err)
		}
		return err
	}
	what := fmt.Sprintf("pid %d", pid)
	switch {
	case cgroup != "":
		what = "cgroup " + cgroup
	case pid == 0:
		what = args[0]
	}
	fmt.Fprintf(cio.stderr, "captured %s for %.1fs (stopped: %s): %d processes, %d epochs, %d rows, %d initial pages (%d all-zero pages left out, checked in %v), memory %d pages (%.1f MiB) -> %s\n",
		what, st.Elapsed.Seconds(), st.Stopped, st.Processes, st.Epochs, st.Rows, st.Initial, st.InitialZero, st.ZeroCheck.Round(10*time.Microsecond), st.Pages, float64(st.Pages*int64(os.Getpagesize()))/(1<<20), opts.Output)
	if o.ZeroWrite {
		perEpoch := time.Duration(0)
		if st.Epochs > 0 {
			perEpoch = st.ZeroWriteCheck / time.Duration(st.Epochs)
		}
		fmt.Fprintf(cio.stderr, "zero writes: %d of %d written pages held only zeros at the end of their epoch (checked in %v, %v an epoch)\n",
			st.ZeroWrites, st.ZeroWriteChecked, st.ZeroWriteCheck.Round(10*time.Microsecond), perEpoch.Round(time.Microsecond))
	}
	fmt.Fprintf(cio.stderr, "backend %s%s\n", backend, why)
	// The workload's failure is the command's failure (the trace is kept):
	// a script must not mistake a crashed benchmark for a good trace.
	var ee *capture.ExitError
	if errors.As(st.ExitErr, &ee) && st.Stopped == "exit" {
		return fmt.Errorf("%s failed: %v (the trace of its run is complete at %s)", args[0], ee, opts.Output)
	}
	return nil
}

// cmdline is the target's command line for the trace metadata.
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Sprintf("pid %d", pid)
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
