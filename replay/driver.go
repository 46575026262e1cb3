package replay

import (
	"context"
	"fmt"
	"sync"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
)

// DefaultBatchPages is a live round's batch when the policy names none:
// Xen's 1024 pages between two peeks at the dirty log.
const DefaultBatchPages = 1024

// Machine is one engine's side of a migration, which Drive runs: its
// clock, its memory and its link. The driver holds the Machine's lock
// while it reads or changes the Log; an engine whose writes arrive
// concurrently (the socket engine's player) applies them under the same
// lock.
type Machine interface {
	sync.Locker
	// Start begins the migration, once the policy has said what it needs
	// (traits); the engine's clock starts at 0.
	Start(ctx context.Context, traits algorithms.Traits) error
	// Now is the migration time in ns.
	Now() int64
	// Sync waits until the bytes sent so far are on the wire, so that a
	// decision taken next sees the moment it acts at.
	Sync(ctx context.Context) error
	// StartRound begins a live round sent at rateBps (the link's rate or
	// the policy's cap, whichever is lower).
	StartRound(rateBps int64) error
	// Send sends pages, applying the Log's writes as time passes, and
	// returns the bytes charged. Called without the lock.
	Send(pages []int32) (int64, error)
	// EndRound closes a live round that ran to its end or to a mid-pass
	// sync (Batch.Sync). It must not wait for the modelled RTT: live
	// rounds are pipelined.
	EndRound(ctx context.Context, round int) error
	// SendHeaders sends header-only records for pages, with no content
	// (Plan.PeekSendsHeader): the destination's copy does not change.
	SendHeaders(pages []int32) (int64, error)
	// Final sends the final round's pages at the link's full rate, the
	// workload paused at pauseAt, and returns the downtime before the
	// resume overhead (transfer time plus the switch-over's round trip)
	// and the bytes charged.
	Final(ctx context.Context, round int, pauseAt int64, pages []int32) (downtimeNS, bytes int64, err error)
	// Changed says the event stream changed (a throttle step, the pause),
	// so a real-time player must look at its next write again.
	Changed()
}

// Drive runs the rounds of one migration: it asks pol for a plan at each
// round start and before each batch, sends through m, forces the final
// round of a migration that does not stop by cfg's bound, and fills res
// (rounds, totals, rows). It is the one copy of the round algorithm; the
// engines differ only in their Machine.
func Drive(ctx context.Context, m Machine, l *Log, pol algorithms.Policy, mig algorithms.Migration, cfg Config, res *results.Result) error {
	d := &driver{m: m, l: l, pol: pol, cfg: cfg}
	return d.run(ctx, mig, res)
}

type driver struct {
	m               Machine
	l               *Log
	pol             algorithms.Policy
	cfg             Config
	sent, sentBytes int64
	batch, headers  []int32
	throttle        int
}

func (d *driver) run(ctx context.Context, mig algorithms.Migration, res *results.Result) error {
	m, l := d.m, d.l
	var capBps int64
	if c, ok := d.pol.(algorithms.Capped); ok {
		capBps = c.LiveCapBps()
	}
	maxNS, maxRounds := d.cfg.bound(mig.Pages, mig.PageBits(), capBps)
	if err := m.Start(ctx, d.pol.Begin(mig)); err != nil {
		return err
	}
	var last algorithms.RoundStats
	var rows []results.Round
	stopped := false
	for round := 1; ; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.Lock()
		now := m.Now()
		forced := round > maxRounds || now >= maxNS
		l.ApplyUntil(now)
		if n := len(rows); n > 0 {
			rows[n-1].PagesDirtied = l.count
			last.Dirtied = l.count
		}
		l.read()
		m.Unlock()
		if n := len(rows); n > 0 {
			rows[n-1].RemainingDirty = int64(len(l.toSend))
		}
		r := algorithms.Round{Number: round, NowNS: now, SentPages: d.sent, SentBytes: d.sentBytes,
			ToSend: l.toSend, Last: last}
		if round > 1 {
			r.Dirtied = l.dirtied
		}
		plan := d.pol.PlanRound(&r)
		if err := checkThrottle(d.pol.Name(), round, &plan); err != nil {
			return err
		}
		m.Lock()
		t := m.Now()
		l.ApplyUntil(t)
		l.ev.SetThrottle(t, plan.ThrottlePct)
		m.Unlock()
		m.Changed()
		d.throttle = plan.ThrottlePct
		if plan.Stop {
			break
		}
		if forced {
			res.ForcedStop = true
			break
		}
		if err := l.take(d.pol.Name(), round, plan.Order); err != nil {
			return err
		}
		var st algorithms.RoundStats
		var err error
		st, stopped, err = d.liveRound(ctx, round, now, &plan)
		if err != nil {
			return err
		}
		st.Held = int64(len(l.toSend) - len(plan.Order))
		rows = append(rows, results.Round{Round: int64(round), StartNS: st.StartNS, DurationNS: st.DurationNS,
			PagesSent: st.Sent, PagesSkipped: st.Skipped, PagesHeld: st.Held, ThroughputBps: st.ThroughputBps()})
		last = st
		if stopped {
			break
		}
	}

	// Final round: pause the workload, then send every pending page in
	// page order at the link's full rate.
	if err := m.Sync(ctx); err != nil {
		return fmt.Errorf("final round: %w", err)
	}
	m.Lock()
	pauseAt := m.Now()
	l.ApplyUntil(pauseAt)
	l.ev.Pause(pauseAt)
	if n := len(rows); n > 0 && stopped {
		// The final round starts right away: account the stopped round's
		// dirtying now.
		rows[n-1].PagesDirtied = l.count
	}
	l.read()
	m.Unlock()
	m.Changed()
	if n := len(rows); n > 0 {
		rows[n-1].RemainingDirty = int64(len(l.toSend))
	}
	downtime, bytes, err := m.Final(ctx, len(rows)+1, pauseAt, l.toSend)
	if err != nil {
		return fmt.Errorf("final round: %w", err)
	}
	clear(l.pend)
	d.sent += int64(len(l.toSend))
	d.sentBytes += bytes
	downtime += d.cfg.ResumeOverheadNS
	final := results.Round{Round: int64(len(rows) + 1), StartNS: pauseAt, DurationNS: downtime, PagesSent: int64(len(l.toSend))}
	if downtime > 0 {
		final.ThroughputBps = float64(bytes) * 8 * 1e9 / float64(downtime)
	}
	rows = append(rows, final)

	res.RoundRows = rows
	res.Rounds = int64(len(rows))
	res.PagesSent = d.sent
	res.BytesSent = d.sentBytes
	res.DowntimeNS = downtime
	res.TotalNS = pauseAt + downtime
	res.Events = l.applied
	if pauseAt > 0 {
		res.Slowdown = l.ev.LostNS() / (float64(pauseAt) * l.ev.speed)
	}
	return nil
}

// liveRound sends one live round's plan in batches, asking the policy
// before each. It reports whether the policy stopped the round early.
func (d *driver) liveRound(ctx context.Context, round int, start int64, plan *algorithms.Plan) (algorithms.RoundStats, bool, error) {
	m, l := d.m, d.l
	st := algorithms.RoundStats{Number: round, StartNS: start}
	rate := d.cfg.Link.Bps
	if plan.RateBps > 0 && plan.RateBps < rate {
		rate = plan.RateBps
	}
	if err := m.StartRound(rate); err != nil {
		return st, false, fmt.Errorf("round %d: %w", round, err)
	}
	batchLen := plan.BatchPages
	if batchLen <= 0 {
		batchLen = DefaultBatchPages
	}
	order := plan.Order
	stopped := false
	var i int
	remainingDirty := func() int64 {
		m.Lock()
		defer m.Unlock()
		var n int64
		for _, pg := range order[i:] {
			n += int64(l.dirty[pg>>6] >> (uint(pg) & 63) & 1)
		}
		return n
	}
	for i < len(order) {
		if err := ctx.Err(); err != nil {
			return st, false, err
		}
		if err := m.Sync(ctx); err != nil {
			return st, false, fmt.Errorf("round %d: %w", round, err)
		}
		m.Lock()
		now := m.Now()
		l.ApplyUntil(now)
		dirtyPages := l.count
		m.Unlock()
		b := algorithms.Batch{Round: round, NowNS: now, SentPages: d.sent, SentBytes: d.sentBytes,
			Remaining: int64(len(order) - i), DirtyPages: dirtyPages, ThrottlePct: d.throttle, RemainingDirty: remainingDirty}
		stop := d.pol.BeforeBatch(&b)
		if b.ThrottlePct != d.throttle {
			if err := checkThrottle(d.pol.Name(), round, &algorithms.Plan{ThrottlePct: b.ThrottlePct}); err != nil {
				return st, false, err
			}
			m.Lock()
			t := m.Now()
			l.ApplyUntil(t)
			l.ev.SetThrottle(t, b.ThrottlePct)
			m.Unlock()
			m.Changed()
			d.throttle = b.ThrottlePct
		}
		if stop {
			stopped = true
			l.unsend(order[i:])
			break
		}
		if b.Sync && i > 0 {
			// The rest of the round joins the next one, which starts now.
			l.unsend(order[i:])
			break
		}
		// Select the batch against the log as it stands now (Xen peeks once
		// per batch), then send it with dirtying interleaved.
		var skipped int64
		var headers []int32
		if plan.PeekSendsHeader {
			if d.headers == nil {
				d.headers = make([]int32, 0, batchLen)
			}
			headers = d.headers[:0]
		}
		m.Lock()
		d.batch, headers, i, skipped = l.nextBatch(order, i, batchLen, plan.Peek, d.batch, headers)
		m.Unlock()
		st.Skipped += skipped
		n, err := m.Send(d.batch)
		if err != nil {
			return st, false, fmt.Errorf("round %d: %w", round, err)
		}
		if len(headers) > 0 {
			d.headers = headers
			h, err := m.SendHeaders(headers)
			if err != nil {
				return st, false, fmt.Errorf("round %d: %w", round, err)
			}
			n += h
		}
		k := int64(len(d.batch) + len(headers))
		st.Bytes += n
		st.Sent += k
		d.sent += k
		d.sentBytes += n
	}
	// Live rounds are pipelined over one stream, as in Xen and QEMU: the
	// next round starts as soon as this one's last page is sent, with no
	// modelled round trip between them. The switch-over pays the only one
	// (Final).
	if !stopped {
		if err := m.EndRound(ctx, round); err != nil {
			return st, false, fmt.Errorf("round %d: %w", round, err)
		}
	}
	m.Lock()
	st.DurationNS = m.Now() - start
	m.Unlock()
	return st, stopped, nil
}
