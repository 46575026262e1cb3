package replay

import (
	"fmt"
	"math"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/internal/bytesize"
	"github.com/microwiper/microwiper/tracefmt"
)

// Bounds on what a run may cost, checked before it starts: a small input
// (a 1 KB trace claiming 2^31-1 pages, a bandwidth of 1 bit/s, a 1 ns
// epoch) must not start hours of work or allocate the machine's memory.
const (
	// DefaultMaxMemory is Config.MaxMemory when 0: what a run may hold
	// (the trace, per-page state, and the socket engine's memory image).
	DefaultMaxMemory = 8 << 30
	// DefaultMaxWork is Config.MaxWork when 0: trace events applied plus
	// the oracle's scan steps, about a minute of CPU on one core (an
	// oracle step took 3 ns on the project's 2-vCPU VM).
	DefaultMaxWork = 2e10
	// MaxSimNS bounds the migration time a run may simulate: a week.
	MaxSimNS = int64(7 * 24 * time.Hour)
	// MaxRTTNS and MaxResumeOverheadNS bound the two durations added to
	// every downtime.
	MaxRTTNS            = int64(time.Hour)
	MaxResumeOverheadNS = int64(time.Hour)
)

// Memory a run holds, by what it scales with. A page costs the simulator
// two 4-byte versions, bitmaps, the round's page lists and the policy's
// order; the socket engine adds the page itself and an 8-byte version. A
// row costs 4 bytes in the trace and up to 20 more in the time model's
// schedule; under the once reading every row is its own instant: sorted
// events, a group per row and their growth make it 96 (measured: 30 M
// rows held 531 MB continuous, 2.66 GB once). An epoch costs 16 bytes in
// the trace and up to 48 in the schedule.
const (
	pageStateBytes = 32
	rowBytes       = 24
	onceRowBytes   = 96
	epochBytes     = 64
	// loadRowBytes is a row of a trace being loaded.
	loadRowBytes = 4
)

func (c Config) maxMemory() int64 {
	if c.MaxMemory > 0 {
		return c.MaxMemory
	}
	return DefaultMaxMemory
}

func (c Config) maxWork() float64 {
	if c.MaxWork > 0 {
		return float64(c.MaxWork)
	}
	return DefaultMaxWork
}

// memoryNeeded is the memory a run of a trace with header h and the given
// rows and epochs holds on engine ("sim" or "socket") under dirty model
// dm, and the bytes a page and a row cost there.
func memoryNeeded(h tracefmt.Header, rows, epochs int64, engine string, dm DirtyModel) (total, perPage, perRow int64) {
	perPage, perRow = pageStateBytes, rowBytes
	if engine == "socket" {
		perPage += h.PageSize + 8
	}
	if dm == Once {
		perRow = onceRowBytes
	}
	f := float64(h.Pages)*float64(perPage) + float64(rows)*float64(perRow) + float64(epochs)*epochBytes
	return int64(min(f, math.MaxInt64)), perPage, perRow
}

// checkMemory refuses a run that would hold more than limit bytes, before
// anything is allocated.
func checkMemory(h tracefmt.Header, rows, epochs int64, engine string, dm DirtyModel, limit int64) error {
	need, perPage, perRow := memoryNeeded(h, rows, epochs, engine, dm)
	if need > limit {
		return fmt.Errorf("the run needs %s (%d pages × %d B/page + %d rows × %d B + %d epochs × %d B); have %s (--max-memory)",
			bytesize.Format(need), h.Pages, perPage, rows, perRow, epochs, epochBytes, bytesize.Format(limit))
	}
	return nil
}

// checkLoad refuses to load a trace whose footer claims more rows than
// fit in limit bytes, before reading any.
func checkLoad(path string, rows, limit int64) error {
	if limit <= 0 {
		limit = DefaultMaxMemory
	}
	if need := float64(rows) * loadRowBytes; need > float64(limit) {
		return fmt.Errorf("trace %s claims %d rows: loading needs %s (%d rows × %d B); have %s (--max-memory)",
			path, rows, bytesize.Format(int64(min(need, math.MaxInt64))), rows, loadRowBytes, bytesize.Format(limit))
	}
	return nil
}

// CheckRun refuses a run whose cost is absurd, before it starts: memory
// above Config.MaxMemory, a migration longer than MaxSimNS, or more work
// (trace events applied, the oracle's scans) than Config.MaxWork. The
// reason names the cause and the flag to change.
func CheckRun(tr *Trace, alg algorithms.Algorithm, engine string, cfg Config) error {
	if err := cfg.Check(); err != nil {
		return err
	}
	h := tr.Header
	dm := cfg.Time.withDefaults(h).Dirty
	if err := checkMemory(h, tr.Rows(), int64(len(tr.EpochT)), engine, dm, cfg.maxMemory()); err != nil {
		return fmt.Errorf("trace %s: %w", tr.Name, err)
	}
	pageBits := (h.PageSize + cfg.Link.HeaderBytes) * 8
	memNS := transferNS(h.Pages, pageBits, cfg.Link.Bps)
	if memNS > MaxSimNS {
		return fmt.Errorf("trace %s: sending its %s once takes %s at %s; runs are limited to %s of migration time: use a faster --bw or a smaller --memory",
			tr.Name, bytesize.Format(h.Pages*h.PageSize), formatNS(memNS), cfg.Link.Name(), formatNS(MaxSimNS))
	}
	simNS := float64(memNS)
	var capBps int64
	if c, ok := alg.(algorithms.Capped); ok {
		capBps = c.LiveCapBps()
	}
	maxNS, _ := cfg.bound(h.Pages, pageBits, capBps)
	var oracle *algorithms.Oracle
	switch a := alg.(type) {
	case *algorithms.Oracle:
		oracle = a
		simNS = float64(a.P.Horizon)
		if simNS == 0 {
			simNS = 3 * float64(memNS)
		}
	case *algorithms.QemuPrecopy:
		// Live rounds run at the policy's cap: at 1 B/s one round never ends.
		if c := a.P.MaxBandwidth * 8; c > 0 && c < cfg.Link.Bps {
			capNS := transferNS(h.Pages, pageBits, c)
			if capNS > MaxSimNS {
				return fmt.Errorf("trace %s: at qemu-precopy's max_bandwidth of %d B/s one round takes %s; runs are limited to %s of migration time: raise max_bandwidth",
					tr.Name, a.P.MaxBandwidth, formatNS(capNS), formatNS(MaxSimNS))
			}
			simNS = float64(max(maxNS, capNS)) + 2*float64(memNS)
		} else {
			simNS = float64(maxNS) + 2*float64(memNS)
		}
		simNS += 2 * float64(cfg.Link.RTTNS)
	default:
		// A round starting past the bound is the last; it and the final
		// round take at most a memory's transfer and a round trip each.
		simNS = float64(maxNS) + 2*float64(memNS) + 2*float64(cfg.Link.RTTNS)
	}
	work, passes := estimateWork(tr, cfg, simNS, memNS, oracle != nil)
	if work > cfg.maxWork() {
		return fmt.Errorf("trace %s: %s would take about %.2g steps (%.3g passes over %d rows and %d epochs of %s, %s of migration time at %s); the limit is %.2g (--max-work): use a faster --bw, a shorter --rtt, --after-trace idle, or a trace with longer epochs",
			tr.Name, alg.Name(), work, passes, tr.Rows(), len(tr.EpochT), formatNS(h.EpochNS), formatNS(int64(min(simNS, math.MaxInt64))), cfg.Link.Name(), cfg.maxWork())
	}
	return nil
}

// estimateWork is the trace events a run of simNS of migration time
// applies (every pass over a looping trace repeats its rows and epochs)
// and, for the oracle, the release times it scans: each event instant and
// grid point scans back over the instants of one memory transfer, at most
// one every epoch/16 (its rounding).
func estimateWork(tr *Trace, cfg Config, simNS float64, memNS int64, oracle bool) (work, passes float64) {
	tm := cfg.Time.withDefaults(tr.Header)
	n := len(tr.EpochT)
	if n == 0 {
		return 0, 0
	}
	period := float64(tr.EpochT[n-1])
	passes = 1
	if tm.After == Loop && period > 0 {
		passes = max(1, simNS*tm.Speed/period+1)
	}
	groups := float64(tr.Rows()) + 2*float64(n)
	work = passes * groups
	if oracle {
		// Distinct instants a pass of the schedule holds.
		instants := float64(n)
		switch tm.Dirty {
		case Continuous:
			instants = 2 * float64(n)
		case Once:
			instants = float64(tr.Rows())
		}
		// Instants closer than q are one cluster and one release time.
		q := float64(max(tr.Header.EpochNS/16, 1))
		instants = min(instants, max(period, 1)/q+1)
		perNS := instants / max(period, 1) * tm.Speed
		scan := min(float64(memNS)/q, float64(memNS)*perNS) + 1
		work += (passes*instants + maxOraclePoints) * scan
	}
	return work, passes
}

// formatNS writes a duration in the largest sensible unit, days and years
// included ("9.1 years").
func formatNS(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Second:
		return d.String()
	case d >= 365*24*time.Hour:
		return fmt.Sprintf("%.1f years", d.Hours()/24/365)
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Millisecond).String()
}
