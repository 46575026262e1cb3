package algorithms

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// QemuPrecopyParams are QEMU's migration defaults (migration/options.c,
// migration/migration.c, migration/ram.c).
type QemuPrecopyParams struct {
	// MaxBandwidth caps the live rounds, in bytes per second
	// (max-bandwidth, MAX_THROTTLE = 128 MiB/s). At switch-over QEMU lifts
	// the cap (RATE_LIMIT_DISABLED), so the final round runs at link speed.
	MaxBandwidth int64 `param:"max_bandwidth" doc:"live-round rate cap in bytes/s (max-bandwidth, MAX_THROTTLE = 128 MiB/s); lifted at switch-over"`
	// DowntimeLimit is the downtime QEMU aims at (downtime-limit,
	// DEFAULT_MIGRATE_SET_DOWNTIME = 300 ms).
	DowntimeLimit time.Duration `param:"downtime_limit" doc:"switch over when remaining bytes < throughput x this (DEFAULT_MIGRATE_SET_DOWNTIME = 300ms)"`
	// BufferDelay is how often throughput is sampled (BUFFER_DELAY = 100 ms).
	BufferDelay time.Duration `param:"buffer_delay" doc:"throughput sampling period (BUFFER_DELAY = 100ms)"`
	// MaxWait bounds one iteration of ram_save_iterate (MAX_WAIT = 50 ms);
	// it sets the batch length, i.e. how often the switch-over test runs.
	MaxWait time.Duration `param:"max_wait" doc:"time per iteration between switch-over checks (ram_save_iterate MAX_WAIT = 50ms)"`
	// AutoConverge throttles the workload when it dirties faster than the
	// link drains (capability auto-converge, off by default).
	AutoConverge bool `param:"auto_converge" doc:"throttle the workload when it outpaces the link (capability auto-converge; default off)"`
	// ThrottleInitial is the first throttle step in percent
	// (DEFAULT_MIGRATE_CPU_THROTTLE_INITIAL = 20).
	ThrottleInitial int `param:"throttle_initial" doc:"first throttle, percent (cpu-throttle-initial = 20)"`
	// ThrottleIncrement is each further step in percent
	// (DEFAULT_MIGRATE_CPU_THROTTLE_INCREMENT = 10).
	ThrottleIncrement int `param:"throttle_increment" doc:"throttle step, percent (cpu-throttle-increment = 10)"`
	// ThrottleMax caps the throttle (DEFAULT_MIGRATE_MAX_CPU_THROTTLE = 99).
	ThrottleMax int `param:"throttle_max" doc:"throttle cap, percent (max-cpu-throttle = 99)"`
	// ThrottleTrigger is the share of bytes sent that bytes dirtied in a
	// period must exceed (DEFAULT_MIGRATE_THROTTLE_TRIGGER_THRESHOLD = 50).
	ThrottleTrigger int `param:"throttle_trigger" doc:"dirtied > this % of sent in a period counts as high (throttle-trigger-threshold = 50)"`
	// SyncPeriod is the least time between auto-converge checks
	// (migration_bitmap_sync: 1000 ms since the last checked sync).
	SyncPeriod time.Duration `param:"sync_period" doc:"least time between auto-converge checks at bitmap syncs (ram.c: 1000ms)"`
	// ZeroPageScan is the source's time per zero page besides its header
	// (QEMU reads the page to find it zero). Measured against QEMU 7.2 on
	// TCG guests over loopback (GROUNDTRUTH.md): the first pass of an idle
	// 256 MiB guest at a 16 MiB/s cap ran 47 ms longer than its bytes at
	// the cap, over 43,972 zero pages, in the least loaded repetition.
	ZeroPageScan time.Duration `param:"zero_page_scan" doc:"source time per zero page besides its header: QEMU reads the page to find it zero (measured: 1us, GROUNDTRUTH.md)"`
	// Version is the QEMU release whose behaviour the policy follows.
	// From 9.2, while auto-converge is on, a timer syncs the dirty bitmap
	// every 5 s (CPU_THROTTLE_DIRTY_SYNC_TIMESLICE_MS) when no pass has
	// synced since its last tick, after the first pass
	// (cpu_throttle_dirty_sync_timer_tick), so a long pass still gets its
	// throttle checks. Earlier releases check only at the end of a pass.
	Version string `param:"qemu_version" doc:"QEMU release to follow: from 9.2 auto-converge also syncs the bitmap every 5s (cpu-throttle.c); default 9.2, unchanged since"`
}

// qemuPeriodicSync is the period of the dirty-sync timer of QEMU >= 9.2
// (CPU_THROTTLE_DIRTY_SYNC_TIMESLICE_MS).
const qemuPeriodicSync = 5 * time.Second

// DefaultQemuPrecopyParams returns QEMU's defaults.
func DefaultQemuPrecopyParams() QemuPrecopyParams {
	return QemuPrecopyParams{
		MaxBandwidth:      128 << 20,
		DowntimeLimit:     300 * time.Millisecond,
		BufferDelay:       100 * time.Millisecond,
		MaxWait:           50 * time.Millisecond,
		ThrottleInitial:   20,
		ThrottleIncrement: 10,
		ThrottleMax:       99,
		ThrottleTrigger:   50,
		SyncPeriod:        time.Second,
		ZeroPageScan:      time.Microsecond,
		Version:           "9.2",
	}
}

// parseVersion reads "major.minor" (a patch part is ignored).
func parseVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("qemu_version = %q: want major.minor, e.g. 9.2", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 1 || minor < 0 {
		return 0, 0, fmt.Errorf("qemu_version = %q: want major.minor, e.g. 9.2", v)
	}
	return major, minor, nil
}

// periodicSync says whether the version has the 5 s dirty-sync timer.
func (p QemuPrecopyParams) periodicSync() bool {
	major, minor, err := parseVersion(p.Version)
	return err == nil && (major > 9 || major == 9 && minor >= 2)
}

// Check reports the first bad field.
func (p QemuPrecopyParams) Check() error {
	if err := firstErr(
		inRange("max_bandwidth", p.MaxBandwidth, 0, MaxRateParam),
		durationIn("downtime_limit", p.DowntimeLimit, 1, MaxDurationParam),
		durationIn("buffer_delay", p.BufferDelay, 1, MaxDurationParam),
		durationIn("max_wait", p.MaxWait, 1, MaxDurationParam),
		durationIn("sync_period", p.SyncPeriod, 0, MaxDurationParam),
		durationIn("zero_page_scan", p.ZeroPageScan, 0, MaxDurationParam),
		inRange("throttle_trigger", int64(p.ThrottleTrigger), 0, 100),
	); err != nil {
		return err
	}
	switch {
	case p.ThrottleInitial < 1 || p.ThrottleMax > 99 || p.ThrottleInitial > p.ThrottleMax || p.ThrottleIncrement < 1 || p.ThrottleIncrement > 99:
		return fmt.Errorf("throttle_initial = %d, throttle_increment = %d, throttle_max = %d: want 1 <= initial <= max <= 99, increment 1 to 99",
			p.ThrottleInitial, p.ThrottleIncrement, p.ThrottleMax)
	}
	_, _, err := parseVersion(p.Version)
	return err
}

// QemuPrecopy is QEMU's RAM pre-copy. Its dirty bitmap is scanned
// round-robin from where the last send left off; the never-written pages go
// as headers only. Throughput is sampled every BufferDelay and sets the
// switch-over threshold throughput × downtime limit. Before each batch (one
// MaxWait of sending) the pages left in the bitmap are compared with the
// threshold; when below, QEMU syncs the bitmap (ram_save_pending): if the
// exact count (the remaining pages and the dirty log's, counted once) is
// still below, it switches over, else it goes on from its position with the
// merged bitmap. A round here is the stretch between two syncs: a full pass
// when the estimate never falls below the threshold, else the part of a
// pass before the mid-pass sync, so rounds + 1 (QEMU's sync at setup) is
// QEMU's dirty-sync-count. Each round's order starts at the scan position
// and wraps around.
//
// Deviation from QEMU: a periodic sync of QEMU >= 9.2 is taken at the
// first batch after its timer's tick, not at the tick itself.
type QemuPrecopy struct {
	P QemuPrecopyParams

	m          Migration
	batch      int
	threshold  float64 // bytes that can go in DowntimeLimit at the sampled throughput
	sampleNS   int64
	sampleByte int64
	throttle   int
	highCount  int
	periodNS   int64 // start of the auto-converge period
	periodSent int64 // bytes sent at its start
	periodDirt int64 // pages dirtied during it, summed over syncs

	syncs     int   // bitmap syncs so far (round starts)
	tickNS    int64 // time of the dirty-sync timer's next tick
	tickSyncs int   // syncs at its last tick

	// pos is the scan position: the page after the last one sent. order is
	// the current round's order, rotated into rot when pos is not 0.
	pos     int32
	order   []int32
	rot     []int32
	midPass bool // the current round ended with a mid-pass sync
}

// NewQemuPrecopy returns the policy with default parameters.
func NewQemuPrecopy() *QemuPrecopy { return &QemuPrecopy{P: DefaultQemuPrecopyParams()} }

func (q *QemuPrecopy) Name() string     { return "qemu-precopy" }
func (q *QemuPrecopy) ParamStruct() any { return &q.P }
func (q *QemuPrecopy) Check() error     { return q.P.Check() }

// ThrottlePct is the current throttle in percent.
func (q *QemuPrecopy) ThrottlePct() int { return q.throttle }

// LiveCapBps is max-bandwidth in bits/s (0: none); see Capped.
func (q *QemuPrecopy) LiveCapBps() int64 { return q.P.MaxBandwidth * 8 }

func (q *QemuPrecopy) rateBps() int64 {
	r := q.m.LinkBps
	if c := q.P.MaxBandwidth * 8; c > 0 && c < r {
		r = c
	}
	return r
}

func (q *QemuPrecopy) Begin(m Migration) Traits {
	q.m = m
	q.threshold, q.sampleNS, q.sampleByte = 0, 0, 0
	q.throttle, q.highCount = 0, 0
	q.periodNS, q.periodSent, q.periodDirt = 0, 0, 0
	q.syncs, q.tickNS, q.tickSyncs = 0, int64(qemuPeriodicSync), 0
	q.pos, q.order, q.midPass = 0, nil, false
	pages := float64(q.rateBps()) * q.P.MaxWait.Seconds() / float64(m.PageBits())
	q.batch = max(int(pages), 64)
	return Traits{ZeroPages: true, ZeroPageNS: int64(q.P.ZeroPageScan)}
}

// sample updates the switch-over threshold once per BufferDelay from the
// bytes sent since the last sample (migration_update_counters).
func (q *QemuPrecopy) sample(now, bytes int64) {
	if dt := now - q.sampleNS; dt >= int64(q.P.BufferDelay) {
		bw := float64(bytes-q.sampleByte) * 1e9 / float64(dt)
		q.threshold = bw * q.P.DowntimeLimit.Seconds()
		q.sampleNS, q.sampleByte = now, bytes
	}
}

func (q *QemuPrecopy) PlanRound(r *Round) Plan {
	q.sample(r.NowNS, r.SentBytes)
	q.syncs++
	if r.Number > 1 {
		if !q.midPass && len(q.order) > 0 {
			// The pass ran to its end: the scan goes on after its last page.
			q.pos = q.order[len(q.order)-1] + 1
		}
		q.periodDirt += int64(len(r.Dirtied))
		q.autoConverge(r.NowNS, r.SentBytes)
		pending := float64(int64(len(r.ToSend)) * q.m.PageSize)
		if pending == 0 || pending < q.threshold {
			return Plan{Stop: true, ThrottlePct: q.throttle}
		}
	}
	q.midPass = false
	q.order = q.fromPosition(r.ToSend)
	return Plan{Order: q.order, BatchPages: q.batch, RateBps: q.rateBps(), ThrottlePct: q.throttle}
}

// fromPosition orders the pending pages as QEMU's scan meets them: from
// the scan position to the end of memory, then from the start.
func (q *QemuPrecopy) fromPosition(toSend []int32) []int32 {
	i, _ := slices.BinarySearch(toSend, q.pos)
	if i == 0 || i == len(toSend) {
		return toSend
	}
	q.rot = append(append(q.rot[:0], toSend[i:]...), toSend[:i]...)
	return q.rot
}

// autoConverge is migration_trigger_throttle at a bitmap sync: once a
// period of more than SyncPeriod has passed, a period whose dirtied bytes
// exceed ThrottleTrigger% of the bytes sent in it counts as high, and the
// second high period steps the throttle up. As in ram.c
// ("++rs->dirty_rate_high_cnt >= 2"), only a step resets the count: a low
// period in between does not.
func (q *QemuPrecopy) autoConverge(now, sentBytes int64) {
	if !q.P.AutoConverge || now-q.periodNS <= int64(q.P.SyncPeriod) {
		return
	}
	dirtied := float64(q.periodDirt * q.m.PageSize)
	sent := float64(sentBytes - q.periodSent)
	if dirtied > sent*float64(q.P.ThrottleTrigger)/100 {
		q.highCount++
		if q.highCount >= 2 {
			q.highCount = 0
			if q.throttle == 0 {
				q.throttle = q.P.ThrottleInitial
			} else {
				q.throttle = min(q.throttle+q.P.ThrottleIncrement, q.P.ThrottleMax)
			}
		}
	}
	q.periodNS, q.periodSent, q.periodDirt = now, sentBytes, 0
}

// periodicSync is QEMU >= 9.2's dirty-sync timer with auto-converge on:
// every 5 s from the start, if no sync happened since the previous tick
// and the first pass is over (more than one sync), it syncs the bitmap
// (which runs the throttle check) and the scan goes on from its position.
// Ticks are taken at the first batch at or after their time.
func (q *QemuPrecopy) periodicSync(b *Batch) bool {
	if !q.P.AutoConverge || !q.P.periodicSync() {
		return false
	}
	sync := false
	for b.NowNS >= q.tickNS {
		if q.syncs > 1 && q.syncs == q.tickSyncs && !sync {
			sync = true
		}
		q.tickSyncs = q.syncs
		if sync {
			// The sync this tick asks for counts as the tick's own.
			q.tickSyncs++
		}
		q.tickNS += int64(qemuPeriodicSync)
	}
	return sync
}

func (q *QemuPrecopy) BeforeBatch(b *Batch) bool {
	q.sample(b.NowNS, b.SentBytes)
	sync := q.periodicSync(b)
	est := float64(b.Remaining * q.m.PageSize)
	if q.threshold > 0 && est < q.threshold {
		pending := b.Remaining + b.DirtyPages
		if b.RemainingDirty != nil {
			pending -= b.RemainingDirty()
		}
		if float64(pending*q.m.PageSize) < q.threshold {
			return true
		}
		sync = true
	}
	if sync {
		q.syncAt(b)
	}
	return false
}

// syncAt ends the round at a mid-pass sync; the scan position is the page
// after the last one sent.
func (q *QemuPrecopy) syncAt(b *Batch) {
	sent := len(q.order) - int(b.Remaining)
	if sent <= 0 {
		return // the round's first batch: it follows a sync already
	}
	b.Sync = true
	q.midPass = true
	q.pos = q.order[sent-1] + 1
}
