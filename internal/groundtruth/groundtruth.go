// Package groundtruth holds what `make groundtruth` measures of real QEMU
// live migrations, what microwiper's replay gives for the same captured
// traces, and the agreement bounds between the two. The figures are stored
// beside the shipped VM traces (traces/vm/NAME.qemu.json), so the agreement
// can be checked again without QEMU.
package groundtruth

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// Settings are a scenario's migration settings, the same for QEMU and the
// replay.
type Settings struct {
	// MemoryMiB is the guest's RAM.
	MemoryMiB int `json:"memory_mib"`
	// MaxBandwidth is QEMU's max-bandwidth in bytes/s: the live rounds'
	// cap (qemu-precopy.max_bandwidth).
	MaxBandwidth int64 `json:"max_bandwidth"`
	// DowntimeLimitMS is QEMU's downtime-limit.
	DowntimeLimitMS int64 `json:"downtime_limit_ms"`
	// AutoConverge is the auto-converge capability.
	AutoConverge bool `json:"auto_converge"`
	// ThrottleInitial and ThrottleIncrement are cpu-throttle-initial and
	// cpu-throttle-increment.
	ThrottleInitial   int `json:"throttle_initial"`
	ThrottleIncrement int `json:"throttle_increment"`
	// LinkBps is the link's rate in bits/s given to the replay (--bw): the
	// loopback, far above the cap, which the final round runs at.
	LinkBps int64 `json:"link_bps"`
	// Dirty is the replay's --dirty reading of a trace row; empty keeps
	// the default (continuous).
	Dirty string `json:"dirty,omitempty"`
}

// qemuVersion is the QEMU release the ground truth was measured with; the
// replay follows its behaviour.
const qemuVersion = "7.2"

// ReplayArgs are the `microwiper replay` flags that replay a trace at these
// settings on an engine, the migration starting at trace time startNS.
// Only documented flags.
func (s Settings) ReplayArgs(engine string, startNS int64) []string {
	// QEMU's per-page header is a be64 offset|flags word; the socket
	// engine's wire format has 16-byte headers.
	header := "8"
	if engine == "socket" {
		header = "16"
	}
	args := []string{
		"-engine", engine,
		"-alg", "qemu-precopy",
		"-bw", strconv.FormatInt(s.LinkBps, 10) + "bit",
		"-header", header,
		"-start", time.Duration(startNS).String(),
		"-param", "qemu-precopy.max_bandwidth=" + strconv.FormatInt(s.MaxBandwidth, 10),
		"-param", "qemu-precopy.downtime_limit=" + (time.Duration(s.DowntimeLimitMS) * time.Millisecond).String(),
		"-param", "qemu-precopy.auto_converge=" + strconv.FormatBool(s.AutoConverge),
		"-param", "qemu-precopy.throttle_initial=" + strconv.Itoa(s.ThrottleInitial),
		"-param", "qemu-precopy.throttle_increment=" + strconv.Itoa(s.ThrottleIncrement),
		"-param", "qemu-precopy.qemu_version=" + qemuVersion,
	}
	if s.Dirty != "" {
		args = append(args, "-dirty", s.Dirty)
	}
	return args
}

// Event is one QMP event of a migration, timed from the migrate command.
type Event struct {
	Name   string `json:"name"`
	Status string `json:"status,omitempty"`
	Pass   int    `json:"pass,omitempty"`
	// Pct is a THROTTLE event's cpu-throttle-percentage: the first poll
	// of query-migrate that saw it (polled every 100 ms).
	Pct  int     `json:"pct,omitempty"`
	AtMS float64 `json:"at_ms"`
}

// QEMU is one real migration as QEMU reported it.
type QEMU struct {
	Rep    int    `json:"rep"`
	Status string `json:"status"`
	// TotalMS, DowntimeMS and SetupMS are query-migrate's total-time,
	// downtime and setup-time.
	TotalMS    int64 `json:"total_ms"`
	DowntimeMS int64 `json:"downtime_ms"`
	SetupMS    int64 `json:"setup_ms"`
	// SwitchMS is the time from the MIGRATION "setup" event to the STOP
	// event (the guest paused for the final round).
	SwitchMS float64 `json:"switch_ms"`
	// Transferred, Normal, Duplicate, RAMTotal, DirtySyncCount and Mbps are
	// query-migrate's ram.* figures.
	Transferred    int64   `json:"transferred"`
	Normal         int64   `json:"normal"`
	Duplicate      int64   `json:"duplicate"`
	RAMTotal       int64   `json:"ram_total"`
	DirtySyncCount int64   `json:"dirty_sync_count"`
	Mbps           float64 `json:"mbps"`
	// Passes is the last MIGRATION_PASS event's pass.
	Passes int `json:"passes"`
	// MaxThrottle is the highest cpu-throttle-percentage polled.
	MaxThrottle int `json:"max_throttle"`
	// Snapshot holds the RAM figures at the moment a migration that did
	// not converge was cancelled.
	Snapshot *QEMU   `json:"snapshot,omitempty"`
	Events   []Event `json:"events,omitempty"`
	// DestinationCrash is the first line of a crash report the guest
	// printed on the destination after the migration, if it did.
	DestinationCrash string `json:"destination_crash,omitempty"`
	// Uptime is the host's load average when the run started.
	Uptime string `json:"loadavg"`
}

// Pages is the pages QEMU sent: in full plus as zero-page headers.
func (q QEMU) Pages() int64 { return q.Normal + q.Duplicate }

// Ours is one replay's figures (summary.json).
type Ours struct {
	Engine     string `json:"engine"`
	Rounds     int64  `json:"rounds"`
	PagesSent  int64  `json:"pages_sent"`
	BytesSent  int64  `json:"bytes_sent"`
	DowntimeNS int64  `json:"downtime_ns"`
	TotalNS    int64  `json:"total_ns"`
	ForcedStop bool   `json:"forced_stop"`
}

// SwitchMS is the time to switch-over: the total less the downtime.
func (o Ours) SwitchMS() float64 { return float64(o.TotalNS-o.DowntimeNS) / 1e6 }

// ReadSummary reads the one run of the one replay whose results are in
// dir (its summary-ID.json, or a summary.json of older releases).
func ReadSummary(dir string) (Ours, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "summary*.json"))
	if err != nil {
		return Ours{}, err
	}
	if len(paths) != 1 {
		return Ours{}, fmt.Errorf("read the replay results in %s: %d summaries, want 1", dir, len(paths))
	}
	path := paths[0]
	b, err := os.ReadFile(path)
	if err != nil {
		return Ours{}, err
	}
	var s struct {
		Runs []Ours `json:"runs"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Ours{}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(s.Runs) != 1 {
		return Ours{}, fmt.Errorf("read %s: %d runs, want 1", path, len(s.Runs))
	}
	return s.Runs[0], nil
}

// Rep is one repetition: QEMU's migration and our replays of its trace.
type Rep struct {
	QEMU QEMU `json:"qemu"`
	// Trace is this repetition's capture, beside the stored figures.
	Trace string `json:"trace"`
	// TraceStartNS is the trace time at which QEMU's migration began.
	TraceStartNS int64 `json:"trace_start_ns"`
	Sim          Ours  `json:"sim"`
	Socket       Ours  `json:"socket"`
}

// Run is one scenario: a workload migrated Reps times at one setting.
type Run struct {
	Name     string   `json:"name"`
	About    string   `json:"about"`
	Workload string   `json:"workload"`
	Settings Settings `json:"settings"`
	// Trace is repetition 1's trace, the one `make test` replays.
	Trace string `json:"trace"`
	// Bound is what the agreement test holds the replay of Trace to:
	// BoundStrict, BoundNoConvergence or BoundLoose.
	Bound string `json:"bound"`
	// SimOnly: the repetitions were replayed on the sim engine only (a run
	// meant not to converge would hold the socket engine for its whole
	// bound).
	SimOnly bool `json:"sim_only,omitempty"`
	// EpochMS is the capture epoch of the traces; 0 in runs stored
	// before it was recorded (100 ms).
	EpochMS float64 `json:"epoch_ms,omitempty"`
	Reps    []Rep   `json:"reps"`
}

// Read reads a stored run (NAME.qemu.json).
func Read(path string) (Run, error) {
	var r Run
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("read %s: %w", path, err)
	}
	if len(r.Reps) == 0 {
		return r, fmt.Errorf("read %s: no repetitions", path)
	}
	return r, nil
}

// Converged reports whether QEMU's migrations completed.
func (r Run) Converged() bool {
	for _, p := range r.Reps {
		if p.QEMU.Status != "completed" {
			return false
		}
	}
	return true
}

// Stat is a figure's median and range over repetitions.
type Stat struct{ Median, Min, Max float64 }

// Of takes the median and range of f over QEMU's repetitions.
func (r Run) Of(f func(QEMU) float64) Stat {
	xs := make([]float64, len(r.Reps))
	for i, p := range r.Reps {
		xs[i] = f(p.QEMU)
	}
	return stat(xs)
}

func stat(xs []float64) Stat {
	sort.Float64s(xs)
	n := len(xs)
	m := xs[n/2]
	if n%2 == 0 {
		m = (xs[n/2-1] + xs[n/2]) / 2
	}
	return Stat{Median: m, Min: xs[0], Max: xs[n-1]}
}

// Spread is the range as a share of the median.
func (s Stat) Spread() float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / s.Median
}

// Metric is one compared figure.
type Metric struct {
	Name  string
	QEMU  func(QEMU) float64
	Ours  func(Ours) float64
	Bound func(q Stat, ours float64) bool
	// Doc says the bound in words.
	Doc string
}

func within(frac float64) func(Stat, float64) bool {
	return func(q Stat, o float64) bool { return math.Abs(o-q.Median) <= frac*q.Median }
}

// Metrics are the figures compared, with the bounds of issue 11: total
// time, bytes, pages and switch-over time within 5% of QEMU's median;
// downtime within QEMU's own range or 10 ms of its median.
var Metrics = []Metric{
	{"total time (ms)", func(q QEMU) float64 { return float64(q.TotalMS) }, func(o Ours) float64 { return float64(o.TotalNS) / 1e6 }, within(0.05), "±5% of QEMU's median"},
	{"switch-over (ms)", func(q QEMU) float64 { return q.SwitchMS }, Ours.SwitchMS, within(0.05), "±5%"},
	{"downtime (ms)", func(q QEMU) float64 { return float64(q.DowntimeMS) }, func(o Ours) float64 { return float64(o.DowntimeNS) / 1e6 },
		func(q Stat, o float64) bool { return (o >= q.Min && o <= q.Max) || math.Abs(o-q.Median) <= 10 }, "in QEMU's range or ±10 ms"},
	{"bytes (MB)", func(q QEMU) float64 { return float64(q.Transferred) / 1e6 }, func(o Ours) float64 { return float64(o.BytesSent) / 1e6 }, within(0.05), "±5%"},
	{"pages", func(q QEMU) float64 { return float64(q.Pages()) }, func(o Ours) float64 { return float64(o.PagesSent) }, within(0.05), "±5%"},
}

// What a run's replay is held to.
const (
	// BoundStrict: the bounds of Metrics.
	BoundStrict = "strict"
	// BoundNoConvergence: QEMU's migration was meant not to converge and
	// was cancelled at a timeout; the replay must not finish sooner.
	BoundNoConvergence = "no-convergence"
	// BoundLoose: a documented disagreement (GROUNDTRUTH.md's findings);
	// the replay must converge, within a factor of 2 of QEMU's median
	// total time.
	BoundLoose = "loose"
)

// Check compares the replays of the stored repetitions' traces (ours, one
// or more) with QEMU's repetitions under the run's Bound and returns what is
// out of bounds, one line each. Like GROUNDTRUTH.md it holds the median of
// ours to QEMU's: one repetition's capture against the median of QEMU's
// would count QEMU's run-to-run spread as our error.
func (r Run) Check(ours ...Ours) []string {
	if len(ours) == 0 {
		return []string{r.Name + ": no replay to check"}
	}
	switch r.Bound {
	case BoundNoConvergence:
		var gaveUp float64
		for _, p := range r.Reps {
			for _, e := range p.QEMU.Events {
				if e.Name == "MIGRATION" && e.Status == "cancelling" && (gaveUp == 0 || e.AtMS < gaveUp) {
					gaveUp = e.AtMS
				}
			}
		}
		if gaveUp == 0 {
			return []string{r.Name + ": no cancelled QEMU migration stored"}
		}
		var bad []string
		for _, o := range ours {
			if !o.ForcedStop && float64(o.TotalNS)/1e6 <= gaveUp {
				bad = append(bad, fmt.Sprintf("%s: QEMU had not converged after %.0f ms; the replay converged after %.0f ms", r.Name, gaveUp, float64(o.TotalNS)/1e6))
			}
		}
		return bad
	case BoundLoose:
		q := r.Of(func(q QEMU) float64 { return float64(q.TotalMS) }).Median
		o := medianOf(ours, func(o Ours) float64 { return float64(o.TotalNS) / 1e6 })
		forced := false
		for _, x := range ours {
			forced = forced || x.ForcedStop
		}
		if forced || o > 2*q || o < q/2 {
			return []string{fmt.Sprintf("%s: total %.0f ms (forced stop %v), QEMU's median %.0f ms: want a converged run within a factor of 2", r.Name, o, forced, q)}
		}
		return nil
	}
	return r.CheckStrict(ours...)
}

func medianOf(ours []Ours, f func(Ours) float64) float64 {
	xs := make([]float64, len(ours))
	for i, o := range ours {
		xs[i] = f(o)
	}
	return stat(xs).Median
}

// CheckStrict holds the median of ours to the bounds of Metrics.
func (r Run) CheckStrict(ours ...Ours) []string {
	var bad []string
	for _, m := range Metrics {
		q := r.Of(m.QEMU)
		o := medianOf(ours, m.Ours)
		if !m.Bound(q, o) {
			bad = append(bad, fmt.Sprintf("%s %s: ours %.1f, QEMU median %.1f (range %.1f-%.1f): want %s", r.Name, m.Name, o, q.Median, q.Min, q.Max, m.Doc))
		}
	}
	return bad
}
