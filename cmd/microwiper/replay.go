package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/replay/socket"
	"github.com/microwiper/microwiper/report"
	"github.com/microwiper/microwiper/results"
	"github.com/microwiper/microwiper/tracefmt"
	"golang.org/x/term"
)

// engines maps --engine names to engines. Another engine is one line here.
var engines = map[string]replay.Engine{
	"sim":    replay.Sim{},
	"socket": socket.Engine{}, // configured by the flags in serve.go
}

var replayCommand = command{
	name:     "replay",
	synopsis: "replay traces through migration policies: downtime, traffic and rounds as a table, benchmark lines and result files",
	usage:    "[flags] trace.parquet [trace.parquet ...]",
	example: `microwiper replay -engine sim -alg xen-precopy,microwiper -bw 1Gbit trace.parquet
microwiper replay -alg all -bw 100Mbit,1Gbit -rtt 1ms -param microwiper.stripe_pages=64 -out out/run1 trace.parquet
microwiper replay trace.parquet --alg xen-precopy --bw 100Mbit`,
	bind: withOptions(runReplay),
}

// replayOptions are the flags of replay, shared with run (an experiment
// block's "replay" list) and, for the link, with serve.
type replayOptions struct {
	Engine         string
	Alg            string
	BW             []int64
	RTT            time.Duration
	Header         int64
	Params         []string
	Memory         int64
	Dirty          string
	AfterTrace     string
	Start          time.Duration
	Starts         int
	Seed           int64
	Speed          string
	ResumeOverhead time.Duration
	MaxMemory      int64
	MaxWork        float64
	Out            string
	Bench          bool
	Socket         socketOptions
}

func (o *replayOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Engine, "engine", "sim", "engine: "+strings.Join(engineNames(), ", "))
	fs.StringVar(&o.Alg, "alg", "all", "comma-separated algorithms, all, or variants (every Microwiper variant of 'microwiper algorithms'): "+strings.Join(algorithms.Names(), ", "))
	bitRatesVar(fs, &o.BW, "bw", []int64{1e9}, "comma-separated link bandwidths: the physical link's rate, e.g. 100Mbit,1Gbit,128MiB/s (a policy's own live-round cap, QEMU's max-bandwidth, is -param qemu-precopy.max_bandwidth)")
	durationVar(fs, &o.RTT, "rtt", time.Duration(replay.DefaultRTTNS), "link round-trip time, e.g. 1ms; paid once, at switch-over (default: loopback's, measured)")
	fs.Int64Var(&o.Header, "header", 16, "per-page header bytes on the link")
	listVar(fs, &o.Params, "param", "algorithm parameter alg.key=value (repeatable); see 'microwiper algorithms'")
	bytesVar(fs, &o.Memory, "memory", 0, "memory size, e.g. 4GiB (default: the trace's); may only grow it")
	fs.StringVar(&o.Dirty, "dirty", "", "what a row means for dirtying: continuous, once, end or exact (default: exact for uffd-wp-sync traces, else continuous)")
	fs.StringVar(&o.AfterTrace, "after-trace", "loop", "when the migration outlasts the trace: loop or idle")
	durationVar(fs, &o.Start, "start", 0, "trace time at which the migration starts, e.g. 10s")
	fs.IntVar(&o.Starts, "starts", 0, "run each cell from N start times drawn over the trace from --seed (reps 0..N-1), for distributions; 0: one run from --start")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the --starts draw: the same seed draws the same start times")
	fs.StringVar(&o.Speed, "speed", "1", "trace time per migration time (2: the workload runs twice as fast as captured), or guest: each trace's recorded guest_slowdown, which replays a workload captured in a slowed (TCG) guest at hardware speed")
	durationVar(fs, &o.ResumeOverhead, "resume-overhead", time.Duration(replay.DefaultResumeOverheadNS), "added to the downtime after the final round, e.g. 5ms (default 0: QEMU showed no fixed part)")
	bytesVar(fs, &o.MaxMemory, "max-memory", replay.DefaultMaxMemory, "refuse runs whose estimated memory (trace, per-page state, socket memory image) exceeds this")
	fs.Float64Var(&o.MaxWork, "max-work", replay.DefaultMaxWork, "refuse runs estimated to take more steps (trace events applied, oracle scans; about 3 ns each)")
	fs.StringVar(&o.Out, "out", "", "directory of results: each replay adds a result set (runs, rounds, bench lines, summary: docs/RESULTS.md); none if empty")
	fs.BoolVar(&o.Bench, "bench", true, "print Go benchmark-format lines after the table")
	o.Socket.bind(fs)
}

func engineNames() []string {
	var n []string
	for k := range engines {
		n = append(n, k)
	}
	slices.Sort(n) // stable help text
	return n
}

// replayPlan is the checked form of replayOptions and the traces.
type replayPlan struct {
	engine    replay.Engine
	algs      []string
	params    map[string][][2]string
	bws       []int64
	cfg       replay.Config
	memory    int64
	out       string
	bench     bool
	tracePath []string
	// starts > 0 draws that many start times per cell from seed.
	starts int
	seed   int64
	// speedGuest sets each trace's speed to its guest_slowdown.
	speedGuest bool
}

// SpeedGuest is the -speed value that replays each trace at its recorded
// guest slowdown (tracefmt.Header.GuestSlowdown): a workload captured in
// a guest running S times slower than hardware plays at hardware speed
// when trace time runs S times faster than migration time.
const SpeedGuest = "guest"

// guestSlowdown reads a trace's recorded slowdown, or says why -speed
// guest cannot use it.
func guestSlowdown(path string) (float64, error) {
	r, err := tracefmt.Open(path)
	if err != nil {
		return 0, err
	}
	h := r.Header()
	r.Close()
	if h.GuestSlowdown == 0 {
		return 0, usageErrorf("-speed %s: trace %s records no guest slowdown (metadata %s): give a number to -speed, or capture with --guest-slowdown", SpeedGuest, path, tracefmt.KeyGuestSlowdown)
	}
	return h.GuestSlowdown, nil
}

// plan checks the options and turns them into a plan over traces.
func (o *replayOptions) plan(traces []string) (*replayPlan, error) {
	p := &replayPlan{params: map[string][][2]string{}}
	if len(traces) == 0 {
		return nil, usageErrorf("no trace given: name one or more trace files")
	}
	p.tracePath = traces
	eng, ok := engines[o.Engine]
	if !ok {
		return nil, usageErrorf("-engine %q: want one of %s", o.Engine, strings.Join(engineNames(), ", "))
	}
	p.engine = eng
	seen := map[string]bool{}
	for _, a := range strings.Split(o.Alg, ",") {
		a = strings.TrimSpace(a)
		names := []string{a}
		if a == "all" {
			names = algorithms.Names()
		} else if a == "variants" {
			names = algorithms.Variants()
		} else if _, err := algorithms.New(a); err != nil {
			return nil, usageErrorf("-alg: %v", err)
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				p.algs = append(p.algs, n)
			}
		}
	}
	if _, ok := eng.(socket.Engine); ok {
		var err error
		if p.engine, p.algs, err = o.Socket.engine(p.algs, o.Alg); err != nil {
			return nil, err
		}
	}
	for _, kv := range o.Params {
		name, rest, ok1 := strings.Cut(kv, ".")
		key, val, ok2 := strings.Cut(rest, "=")
		if !ok1 || !ok2 || name == "" || key == "" {
			return nil, usageErrorf("-param %q: want alg.key=value, e.g. microwiper.stripe_pages=64", kv)
		}
		if !seen[name] {
			return nil, usageErrorf("-param %q: algorithm %s is not in -alg", kv, name)
		}
		alg, _ := algorithms.New(name)
		if err := algorithms.Set(alg, key, val); err != nil {
			return nil, usageErrorf("-param %q: %v", kv, err)
		}
		p.params[name] = append(p.params[name], [2]string{key, val})
	}
	p.bws = o.BW
	p.cfg.Link = replay.Link{RTTNS: int64(o.RTT), HeaderBytes: o.Header, Bps: 1}
	if err := p.cfg.Link.Check(); err != nil {
		return nil, usageErrorf("%v", err)
	}
	p.memory = o.Memory
	if o.Dirty != "" {
		dm, err := replay.ParseDirtyModel(o.Dirty)
		if err != nil {
			return nil, usageErrorf("-dirty: %v", err)
		}
		p.cfg.Time.Dirty = dm
	}
	at, err := replay.ParseAfterTrace(o.AfterTrace)
	if err != nil {
		return nil, usageErrorf("-after-trace: %v", err)
	}
	p.cfg.Time.After = at
	p.cfg.Time.StartNS = int64(o.Start)
	if o.Starts < 0 || o.Starts > 100000 {
		return nil, usageErrorf("-starts %d: want 0 (one run from -start) up to 100000", o.Starts)
	}
	if o.Starts > 0 && o.Start != 0 {
		return nil, usageErrorf("-starts draws the start times: drop -start %s, or drop -starts", o.Start)
	}
	p.starts, p.seed = o.Starts, o.Seed
	if o.Speed == SpeedGuest {
		// Each trace's own slowdown, set per trace when it is loaded; a
		// trace without one fails here, before any run.
		p.speedGuest = true
		p.cfg.Time.Speed = 1
		for _, path := range traces {
			if _, err := guestSlowdown(path); err != nil {
				return nil, err
			}
		}
	} else {
		speed, err := strconv.ParseFloat(o.Speed, 64)
		if err != nil {
			return nil, usageErrorf("-speed %q: want a factor between 1e-6 and 1e6, or %s", o.Speed, SpeedGuest)
		}
		p.cfg.Time.Speed = speed
		if err := p.cfg.Time.Check(); err != nil || p.cfg.Time.Speed == 0 {
			return nil, usageErrorf("-speed %g: want a factor between 1e-6 and 1e6, or %s", p.cfg.Time.Speed, SpeedGuest)
		}
	}
	p.cfg.ResumeOverheadNS = int64(o.ResumeOverhead)
	if o.MaxMemory <= 0 {
		return nil, usageErrorf("-max-memory %d: want a positive size such as 8GiB", o.MaxMemory)
	}
	p.cfg.MaxMemory = o.MaxMemory
	if !(o.MaxWork >= 1 && o.MaxWork <= 1<<62) { // NaN fails both
		return nil, usageErrorf("-max-work %g: want a positive step count such as 2e10", o.MaxWork)
	}
	p.cfg.MaxWork = int64(o.MaxWork)
	if err := p.cfg.Check(); err != nil {
		return nil, usageErrorf("%v", err)
	}
	p.out = o.Out
	p.bench = o.Bench
	return p, nil
}

func runReplay(ctx context.Context, cio *cmdIO, o *replayOptions, traces []string) error {
	p, err := o.plan(traces)
	if err != nil {
		return err
	}
	// -bw left at its default counts as not chosen.
	bwGiven := !(len(o.BW) == 1 && o.BW[0] == 1e9)
	for _, w := range p.capWarnings(bwGiven) {
		fmt.Fprintln(cio.stderr, w)
	}
	return executeReplay(ctx, cio, p.jobs(0), p.out, p.bench)
}

// replayJob is one migration: a trace, a bandwidth, an algorithm and a
// repetition, under a parsed plan.
type replayJob struct {
	plan *replayPlan
	path string
	bps  int64
	alg  string
	rep  int64
	// start indexes the plan's drawn start times (with -starts).
	start int
}

// jobs expands the plan into its migrations, trace by trace, then
// bandwidth, algorithm, repetition (reps of them; 0 means 1) and drawn
// start time; with -starts, repetition r from start k is rep r·starts+k.
func (p *replayPlan) jobs(reps int64) []replayJob {
	var js []replayJob
	n := int64(max(p.starts, 1))
	for _, path := range p.tracePath {
		for _, bps := range p.bws {
			for _, name := range p.algs {
				for rep := int64(0); rep < max(reps, 1); rep++ {
					for k := int64(0); k < n; k++ {
						js = append(js, replayJob{plan: p, path: path, bps: bps, alg: name, rep: rep*n + k, start: int(k)})
					}
				}
			}
		}
	}
	return js
}

// Results are written as jobs finish, in sets (results.Write) of at most
// flushJobs runs or flushAfter of work, and whatever finished is written
// when a job fails or the command is interrupted: a failure loses nothing
// computed.
const (
	flushJobs  = 32
	flushAfter = time.Minute
)

// executeReplay runs the jobs in order, writing their results to out (if
// not empty) as they finish, then prints the table and the benchmark
// lines. The table covers the finished jobs even when one fails.
func executeReplay(ctx context.Context, cio *cmdIO, jobs []replayJob, out string, bench bool) (err error) {
	var rs []*results.Result
	if out != "" {
		if err := prepareResultsDir(out); err != nil {
			return err
		}
	}
	written, lastFlush, failed := 0, time.Now(), false
	flush := func() error {
		if out == "" || written == len(rs) || failed {
			return nil
		}
		if err := results.Write(out, rs[written:]); err != nil {
			failed = true
			return err
		}
		written, lastFlush = len(rs), time.Now()
		return nil
	}
	defer func() {
		if ferr := flush(); ferr != nil {
			err = errors.Join(err, ferr)
		} else if err != nil && written > 0 {
			fmt.Fprintf(cio.stderr, "the %d finished runs are in %s\n", written, out)
		}
		if len(rs) > 0 && err != nil {
			writeReplayTable(cio.stdout, rs)
		}
	}()
	progress := func(string, ...any) {}
	if f, ok := cio.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(format string, args ...any) {
			fmt.Fprintf(f, "\r\033[Kreplay %d/%d: %s", len(rs)+1, len(jobs), fmt.Sprintf(format, args...))
		}
		defer fmt.Fprint(f, "\r\033[K")
	}
	var tr *replay.Trace
	var trKey string
	for _, j := range jobs {
		p := j.plan
		if key := fmt.Sprint(j.path, "@", p.memory); tr == nil || key != trKey {
			var err error
			if tr, err = loadReplayTrace(j.path, p.memory, p.cfg.MaxMemory); err != nil {
				return err
			}
			trKey = key
		}
		cfg := p.cfg
		if p.speedGuest {
			if tr.Header.GuestSlowdown == 0 {
				return fmt.Errorf("-speed %s: trace %s records no guest slowdown", SpeedGuest, j.path)
			}
			cfg.Time.Speed = tr.Header.GuestSlowdown
		}
		cfg.Link.Bps = j.bps
		cfg.Rep, cfg.Seed = j.rep, j.rep
		if p.starts > 0 {
			cfg.Seed = p.seed
			cfg.Time.StartNS = replay.StartTimes(tr, p.starts, p.seed)[j.start]
		}
		alg, _ := algorithms.New(j.alg)
		for _, kv := range p.params[j.alg] {
			_ = algorithms.Set(alg, kv[0], kv[1]) // checked while parsing
		}
		progress("%s %s %s", tr.Name, j.alg, cfg.Link.Name())
		res, err := p.engine.Run(ctx, tr, alg, cfg)
		if err != nil {
			return fmt.Errorf("replay %s with %s at %s: %w", j.path, j.alg, cfg.Link.Name(), err)
		}
		rs = append(rs, res)
		if len(rs)-written >= flushJobs || time.Since(lastFlush) >= flushAfter {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	table := writeReplayTable
	if len(jobs) > 0 && jobs[0].plan.starts > 1 {
		table = writeStartsTable
	}
	if err := table(cio.stdout, rs); err != nil {
		return err
	}
	if bench {
		fmt.Fprintln(cio.stdout)
		if err := results.WriteBenchLines(cio.stdout, rs); err != nil {
			return err
		}
	}
	var lost int64
	for _, r := range rs {
		lost += r.LostPages
	}
	if lost > 0 {
		return fmt.Errorf("%d pages lost their last update: the destination differs from the source", lost)
	}
	return nil
}

// prepareResultsDir checks -out before any work and creates it. It must
// be a directory of results only: results dropped among traces would be
// read as part of a trace directory and match trace globs.
func prepareResultsDir(out string) error {
	st, err := os.Stat(out)
	switch {
	case err == nil && !st.IsDir():
		return usageErrorf("-out %s is a file: name a directory for the results", out)
	case err == nil:
		ents, err := os.ReadDir(out)
		if err != nil {
			return fmt.Errorf("-out %s: %w", out, err)
		}
		for _, e := range ents {
			if name := e.Name(); strings.HasSuffix(name, ".parquet") && !isResultsFile(name) {
				return usageErrorf("-out %s holds %s, not a result file (a trace?): results go in a directory of their own", out, name)
			}
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create -out %s: %w", out, err)
	}
	return nil
}

// isResultsFile says whether a .parquet name is one results.Write gives.
func isResultsFile(name string) bool {
	return name == results.RunsFile || name == results.RoundsFile ||
		strings.HasPrefix(name, "runs-") || strings.HasPrefix(name, "rounds-")
}

// loadReplayTrace loads a trace and applies --memory.
func loadReplayTrace(path string, memory, maxMemory int64) (*replay.Trace, error) {
	tr, err := replay.LoadTraceWithin(path, maxMemory)
	if err != nil {
		return nil, err
	}
	if memory > 0 {
		if memory%tr.Header.PageSize != 0 {
			return nil, usageErrorf("-memory %d bytes: not a multiple of the trace's %d-byte pages", memory, tr.Header.PageSize)
		}
		if err := tr.SetMemory(memory / tr.Header.PageSize); err != nil {
			return nil, usageErrorf("-memory: %v", err)
		}
	}
	return tr, nil
}

// writeReplayTable prints one aligned row per run.
func writeReplayTable(w io.Writer, rs []*results.Result) error {
	if err := writeSettings(w, rs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\talgorithm\tlink bw\tlive cap\trounds\tpages sent\tMiB sent\tdowntime ms\ttotal s\tslowdown\tlost\t")
	forced := false
	for _, r := range rs {
		mark := ""
		if r.ForcedStop {
			mark, forced = " *", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.1f\t%.3f\t%.3f%s\t%.3f\t%d\t\n", r.Trace, r.Algorithm, results.FormatBps(r.BandwidthBps), liveCap(r), r.Rounds,
			r.PagesSent, float64(r.BytesSent)/(1<<20), float64(r.DowntimeNS)/1e6, float64(r.TotalNS)/1e9, mark, r.Slowdown, r.LostPages)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if forced {
		fmt.Fprintln(w, "* did not converge: the engine forced the final round at its bound (10x the time to send memory once at the slower of the link and the live cap)")
	}
	return nil
}

// liveCap is a run's live-round rate cap (QEMU's max-bandwidth, in the
// run's parameters), "-" for a policy without one.
func liveCap(r *results.Result) string {
	var ps map[string]any
	if json.Unmarshal([]byte(r.Params), &ps) != nil {
		return "-"
	}
	v, ok := ps["max_bandwidth"].(float64)
	switch {
	case !ok:
		return "-"
	case v <= 0:
		return "none"
	}
	return formatCap(int64(v) * 8)
}

// formatCap writes a cap in the unit it is usually given in: bytes/s.
func formatCap(bps int64) string {
	switch b := bps / 8; {
	case bps%8 == 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB/s", b>>20)
	case bps%8 == 0 && b%1e6 == 0:
		return fmt.Sprintf("%dMB/s", b/1e6)
	}
	return results.FormatBps(bps)
}

// capWarnings names each policy whose own live-round cap is at or above a
// link rate: the cap then never binds, and a user who gave QEMU's
// max-bandwidth as -bw has modelled a final round at the cap. Defaults on
// both sides (-bw 1Gbit, QEMU's 128 MiB/s) say nothing: the user chose
// neither.
func (p *replayPlan) capWarnings(bwGiven bool) []string {
	var out []string
	for _, name := range p.algs {
		capGiven := false
		for _, kv := range p.params[name] {
			capGiven = capGiven || kv[0] == "max_bandwidth"
		}
		if !bwGiven && !capGiven {
			continue
		}
		alg, err := algorithms.New(name)
		if err != nil {
			continue
		}
		for _, kv := range p.params[name] {
			_ = algorithms.Set(alg, kv[0], kv[1]) // checked while parsing
		}
		c, ok := alg.(algorithms.Capped)
		if !ok || c.LiveCapBps() <= 0 {
			continue
		}
		for _, bps := range p.bws {
			if c.LiveCapBps() >= bps {
				out = append(out, fmt.Sprintf("warning: %s's live-round cap %s is at or above the link -bw %s: the cap never binds and every round runs at the link rate. -bw is the physical link (the final round runs at it); QEMU's max-bandwidth goes in -param %s.max_bandwidth",
					name, formatCap(c.LiveCapBps()), results.FormatBps(bps), name))
			}
		}
	}
	return out
}

// writeSettings prints the settings every downtime in the table includes.
func writeSettings(w io.Writer, rs []*results.Result) error {
	var rtts, overheads, models, speeds []string
	seen := map[string]bool{}
	add := func(list *[]string, v string) {
		if !seen[v] {
			seen[v] = true
			*list = append(*list, v)
		}
	}
	for _, r := range rs {
		add(&rtts, "rtt "+time.Duration(r.RTTNS).String())
		add(&overheads, "resume overhead "+time.Duration(r.ResumeOverheadNS).String())
		add(&models, "dirty "+r.DirtyModel)
		if sp := r.SpeedOrOne(); sp != 1 {
			add(&speeds, r.Trace+" at speed "+results.FormatSpeed(sp))
		}
	}
	speed := ""
	if len(speeds) > 0 {
		speed = "; " + strings.Join(speeds, ", ")
	}
	_, err := fmt.Fprintf(w, "settings: %s (at switch-over); %s; %s%s\n", strings.Join(rtts, ", "), strings.Join(overheads, ", "), strings.Join(models, ", "), speed)
	return err
}

// writeStartsTable prints, for runs from drawn start times, one row per
// cell (trace, algorithm, bandwidth): the number of starts and the median
// downtime and pages sent with their 95% intervals.
func writeStartsTable(w io.Writer, rs []*results.Result) error {
	if err := writeSettings(w, rs); err != nil {
		return err
	}
	type key struct {
		trace, alg string
		bps        int64
	}
	var order []key
	cells := map[key][]*results.Result{}
	for _, r := range rs {
		k := key{r.Trace, r.Algorithm, r.BandwidthBps}
		if cells[k] == nil {
			order = append(order, k)
		}
		cells[k] = append(cells[k], r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\talgorithm\tbw\tstarts\tdowntime ms (median)\t95% interval\tpages sent (median)\t95% interval\tforced\t")
	for _, k := range order {
		var down, pages []float64
		forced := 0
		for _, r := range cells[k] {
			down = append(down, float64(r.DowntimeNS)/1e6)
			pages = append(pages, float64(r.PagesSent))
			if r.ForcedStop {
				forced++
			}
		}
		d, p := report.Summarize(down), report.Summarize(pages)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.3f\t[%.3f, %.3f]\t%.0f\t[%.0f, %.0f]\t%d\t\n", k.trace, k.alg, results.FormatBps(k.bps), d.N,
			d.Median, d.Lo, d.Hi, p.Median, p.Lo, p.Hi, forced)
	}
	return tw.Flush()
}
