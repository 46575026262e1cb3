package socket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/replay/shaper"
	"github.com/microwiper/microwiper/replay/wire"
)

// DefaultWireBatch is the pages per Batch frame: 1 MiB frames of 4 KiB
// pages, large enough for one write system call to carry a lot, small
// enough that the receiver verifies and acknowledges promptly.
const DefaultWireBatch = 256

// ErrLostUpdates is wrapped when the destination's memory differs from the
// source's after the migration.
var ErrLostUpdates = errors.New("lost updates")

// onLink, when set by a test, sees every link the engine opens.
var onLink func(Link)

// Engine is the real-time, real-bytes engine. It implements replay.Engine.
type Engine struct {
	// Link chooses the link; its bandwidth and RTT come from the run's
	// replay.Config.
	Link LinkConfig
	// WireBatch is the most pages per Batch frame (DefaultWireBatch when 0).
	WireBatch int
	// Log receives progress lines; nil discards.
	Log *slog.Logger
}

// Name is "socket".
func (Engine) Name() string { return "socket" }

// Run migrates tr under alg over the link, in real time, and returns the
// same Result as the simulator. It fails (with the partial Result) when
// the destination's memory differs from the source's.
func (e Engine) Run(ctx context.Context, tr *replay.Trace, alg algorithms.Algorithm, cfg replay.Config) (*replay.Result, error) {
	pol, ok := alg.(algorithms.Policy)
	if !ok {
		return nil, fmt.Errorf("algorithm %s is a bound computed from the future trace: only --engine sim runs it", alg.Name())
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := tr.Header.Check(); err != nil {
		return nil, fmt.Errorf("trace %s: %w", tr.Name, err)
	}
	if cfg.Link.HeaderBytes != wire.PageHeaderBytes {
		return nil, fmt.Errorf("header %d bytes: the socket engine's wire format has %d-byte page headers (--header %d)",
			cfg.Link.HeaderBytes, wire.PageHeaderBytes, wire.PageHeaderBytes)
	}
	if tr.Header.PageSize > wire.MaxPageSize || tr.Header.PageSize%8 != 0 {
		return nil, fmt.Errorf("trace %s: page size %d: the socket engine handles multiples of 8 up to %d", tr.Name, tr.Header.PageSize, wire.MaxPageSize)
	}
	if tr.Header.Pages > math.MaxInt32 {
		return nil, fmt.Errorf("trace %s has %d pages: at most %d", tr.Name, tr.Header.Pages, math.MaxInt32)
	}
	ev, err := replay.NewEvents(tr, cfg.Time)
	if err != nil {
		return nil, err
	}
	lc := e.Link
	lc.BandwidthBps, lc.RTT = cfg.Link.Bps, time.Duration(cfg.Link.RTTNS)
	if lc.Timeout <= 0 {
		lc.Timeout = DefaultTimeout
	}
	link, err := OpenLink(ctx, lc)
	if err != nil {
		return nil, err
	}
	defer link.Close()
	if onLink != nil {
		onLink(link)
	}
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if note := link.Note(); note != "" {
		log.Warn("link differs from the request", "link", link.Name(), "note", note)
	}
	wb := e.WireBatch
	if wb <= 0 {
		wb = DefaultWireBatch
	}
	m, err := newMigration(tr, ev, cfg, pol, link, lc.Timeout, wb)
	if err != nil {
		return nil, err
	}
	defer m.release()
	if lc.Kind == LinkRemote {
		m.token = lc.Token // in-process receivers ask for none
	}
	res := replay.NewResult(tr, alg, "socket", cfg)
	err = m.run(ctx, res)
	for i := range res.RoundRows {
		res.RoundRows[i].RunID = res.RunID
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrLostUpdates) {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if errors.Is(err, ErrLostUpdates) {
			return res, err
		}
		return nil, err
	}
	return res, nil
}

// migration is one run of the socket engine. mu guards the source memory,
// versions, the dirty log and the event stream: the player goroutine
// writes pages under it, the sender copies them under it.
type migration struct {
	tr      *replay.Trace
	cfg     replay.Config
	pol     algorithms.Policy
	link    Link
	timeout time.Duration
	token   string
	wb      int
	n       int64
	ps      int
	mig     algorithms.Migration
	zero    bool

	mu         sync.Mutex
	ev         *replay.Events
	mem        *pageMemory
	versions   []uint64
	hasData    []uint64
	dirty      []uint64
	dirtyCount int64
	events     int64
	t0         time.Time

	pend            []uint64 // sender only: held back or left unsent
	toSend, dirtied []int32
	batch           []int32
	bb              *wire.BatchBuilder
	conn            *senderConn
	linkBucket      *shaper.Bucket // nil when the kernel shapes or unshaped
	sent, sentBytes int64
	roundPages      uint64 // pages sent since the last RoundEnd

	wake chan struct{}
}

func newMigration(tr *replay.Trace, ev *replay.Events, cfg replay.Config, pol algorithms.Policy, link Link, timeout time.Duration, wb int) (*migration, error) {
	n := tr.Header.Pages
	mem, err := mapMemory(uint64(n), int(tr.Header.PageSize))
	if err != nil {
		return nil, fmt.Errorf("source memory: %w", err)
	}
	words := (n + 63) / 64
	m := &migration{
		tr: tr, cfg: cfg, pol: pol, link: link, timeout: timeout, wb: wb, n: n, ps: int(tr.Header.PageSize),
		ev: ev, mem: mem, versions: make([]uint64, n),
		hasData: make([]uint64, words), dirty: make([]uint64, words), pend: make([]uint64, words),
		mig: algorithms.Migration{Pages: n, PageSize: tr.Header.PageSize, HeaderBytes: cfg.Link.HeaderBytes,
			LinkBps: cfg.Link.Bps, RTTNS: cfg.Link.RTTNS},
		bb:   wire.NewBatchBuilder(int(tr.Header.PageSize), wb),
		wake: make(chan struct{}, 1),
	}
	if tr.HasInitial {
		for _, p := range tr.Initial {
			m.hasData[p>>6] |= 1 << (uint(p) & 63)
		}
	} else {
		for i := range m.hasData {
			m.hasData[i] = math.MaxUint64
		}
	}
	ev.Prehistory(func(ps []int32) {
		for _, p := range ps {
			m.hasData[p>>6] |= 1 << (uint(p) & 63)
		}
	})
	// The initial image: pages holding data get their version-0 content,
	// the rest stay zero.
	for p := int64(0); p < n; p++ {
		if m.has(int32(p)) {
			fillPage(mem.page(uint64(p)), uint64(p), 0)
		}
	}
	for p := range n {
		m.pend[p>>6] |= 1 << (uint(p) & 63)
	}
	if !link.KernelShaped() {
		m.linkBucket, err = shaper.New(float64(cfg.Link.Bps), 0)
		if err != nil {
			mem.unmap()
			return nil, err
		}
	}
	return m, nil
}

func (m *migration) has(p int32) bool { return m.hasData[p>>6]&(1<<(uint(p)&63)) != 0 }

func (m *migration) release() {
	if m.conn != nil {
		m.conn.close()
	}
	m.mem.unmap()
}

// now is the migration time elapsed.
func (m *migration) now() int64 { return int64(time.Since(m.t0)) }

// applyUntil applies every event due by migration time t; mu held. A
// write bumps the page's version and rewrites its content, as a guest's
// store would, and marks it in the dirty log.
func (m *migration) applyUntil(t int64) {
	for m.ev.NextNS() <= t {
		_, ps := m.ev.Pop()
		for _, p := range ps {
			m.versions[p]++
			fillPage(m.mem.page(uint64(p)), uint64(p), m.versions[p])
			w, b := p>>6, uint64(1)<<(uint(p)&63)
			if m.dirty[w]&b == 0 {
				m.dirty[w] |= b
				m.dirtyCount++
			}
			m.hasData[w] |= b
		}
		m.events += int64(len(ps))
	}
}

// player plays the trace's writes into memory in real time until stop.
func (m *migration) player(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		m.applyUntil(m.now())
		next := m.ev.NextNS()
		m.mu.Unlock()
		var tc <-chan time.Time
		if next != math.MaxInt64 {
			timer.Reset(time.Until(m.t0.Add(time.Duration(next))))
			tc = timer.C
		}
		select {
		case <-stop:
			return
		case <-m.wake:
		case <-tc:
		}
	}
}

func (m *migration) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// readLog reads and clears the dirty log into toSend and dirtied; mu held.
func (m *migration) readLog() {
	m.toSend, m.dirtied = replay.ReadLog(m.dirty, m.pend, m.toSend, m.dirtied)
	m.dirtyCount = 0
}

func (m *migration) run(ctx context.Context, res *replay.Result) error {
	c, err := m.link.Dial(ctx)
	if err != nil {
		return fmt.Errorf("%s link: connect: %w", m.link.Name(), err)
	}
	if tc, ok := c.(*net.TCPConn); ok && m.link.Name() != LinkRemote {
		// Slack for a sender that loses the CPU for a moment: the kernel
		// keeps the link busy from the buffer. On a kernel-shaped link
		// sync() keeps the policy's view at the wire all the same; on
		// loopback the token bucket paces writes, so the buffer fills only
		// while the receiver is starved. A real network (remote) keeps
		// TCP's own autotuning.
		_ = tc.SetWriteBuffer(8 << 20)
	}
	hello := wire.Hello{Version: wire.Version, PageSize: uint32(m.ps), Pages: uint64(m.n), BatchPages: uint32(m.wb), Token: m.token}
	m.conn, err = handshake(ctx, c, hello, m.linkBucket, m.timeout)
	if err != nil {
		return fmt.Errorf("%s link: %w", m.link.Name(), err)
	}

	traits := m.pol.Begin(m.mig)
	m.zero = traits.ZeroPages
	m.t0 = time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.player(stop)
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// The simulator's bound on a migration that never converges, in the
	// same migration time.
	maxNS, maxRounds := m.cfg.Bound(m.n, m.mig.PageBits())
	var last algorithms.RoundStats
	var rows []replay.RoundRow
	stopped := false
	for round := 1; ; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		now := m.now()
		forced := round > maxRounds || now >= maxNS
		m.applyUntil(now)
		if n := len(rows); n > 0 {
			rows[n-1].PagesDirtied = m.dirtyCount
			last.Dirtied = m.dirtyCount
		}
		m.readLog()
		m.mu.Unlock()
		if n := len(rows); n > 0 {
			rows[n-1].RemainingDirty = int64(len(m.toSend))
		}
		r := algorithms.Round{Number: round, NowNS: now, SentPages: m.sent, SentBytes: m.sentBytes, ToSend: m.toSend, Last: last}
		if round > 1 {
			r.Dirtied = m.dirtied
		}
		plan := m.pol.PlanRound(&r)
		if err := replay.CheckThrottle(m.pol.Name(), round, &plan); err != nil {
			return err
		}
		m.mu.Lock()
		t := m.now()
		m.applyUntil(t)
		m.ev.SetThrottle(t, plan.ThrottlePct)
		m.mu.Unlock()
		m.poke()
		if plan.Stop {
			break
		}
		if forced {
			res.ForcedStop = true
			break
		}
		if err := replay.TakeOrder(m.pol.Name(), round, plan.Order, m.pend, m.n); err != nil {
			return err
		}
		var st algorithms.RoundStats
		st, stopped, err = m.liveRound(ctx, round, &plan, now)
		if err != nil {
			return err
		}
		st.Held = int64(len(m.toSend) - len(plan.Order))
		rows = append(rows, replay.RoundRow{Round: int64(round), StartNS: st.StartNS, DurationNS: st.DurationNS,
			PagesSent: st.Sent, PagesSkipped: st.Skipped, PagesHeld: st.Held, ThroughputBps: st.ThroughputBps()})
		last = st
		if stopped {
			break
		}
	}

	// Final round: pause the workload, then send every pending page in page
	// order at the link's full rate.
	if err := m.sync(ctx); err != nil {
		return fmt.Errorf("final round: %w", err)
	}
	m.mu.Lock()
	pauseAt := m.now()
	pauseWall := m.t0.Add(time.Duration(pauseAt))
	m.applyUntil(pauseAt)
	m.ev.Pause(pauseAt)
	if n := len(rows); n > 0 && stopped {
		// The final round starts right away: account the stopped round's
		// dirtying now, as the simulator does.
		rows[n-1].PagesDirtied = m.dirtyCount
	}
	m.readLog()
	m.mu.Unlock()
	m.poke()
	if n := len(rows); n > 0 {
		rows[n-1].RemainingDirty = int64(len(m.toSend))
	}
	m.conn.setBucket(m.linkBucket)
	var finalBytes int64
	for i := 0; i < len(m.toSend); i += m.wb {
		b, err := m.sendPages(m.toSend[i:min(i+m.wb, len(m.toSend))])
		if err != nil {
			return fmt.Errorf("final round: %w", err)
		}
		finalBytes += b
	}
	if err := m.endRound(len(rows)+1, true); err != nil {
		return fmt.Errorf("final round: %w", err)
	}
	downtime := int64(time.Since(pauseWall)) + int64(m.link.EmulatedRTT()) + m.cfg.ResumeOverheadNS
	clear(m.pend)
	final := replay.RoundRow{Round: int64(len(rows) + 1), StartNS: pauseAt, DurationNS: downtime, PagesSent: int64(len(m.toSend))}
	if downtime > 0 {
		final.ThroughputBps = float64(finalBytes) * 8 * 1e9 / float64(downtime)
	}
	rows = append(rows, final)

	res.RoundRows = rows
	res.Rounds = int64(len(rows))
	res.PagesSent = m.sent
	res.BytesSent = m.sentBytes
	res.DowntimeNS = downtime
	res.TotalNS = pauseAt + downtime
	res.Events = m.events
	if speed := m.cfg.Time.Speed; pauseAt > 0 {
		if speed == 0 {
			speed = 1
		}
		res.Slowdown = m.ev.LostNS() / (float64(pauseAt) * speed)
	}
	return m.verify(res)
}

// liveRound sends one live round's plan in batches, peeking and asking the
// policy before each, then closes the round with a RoundEnd exchange (one
// real round trip, plus the emulated RTT). It reports whether the policy
// stopped the round early.
func (m *migration) liveRound(ctx context.Context, round int, plan *algorithms.Plan, start int64) (algorithms.RoundStats, bool, error) {
	st := algorithms.RoundStats{Number: round, StartNS: start}
	bucket := m.linkBucket
	if plan.RateBps > 0 && plan.RateBps < m.cfg.Link.Bps {
		var err error
		if bucket, err = shaper.New(float64(plan.RateBps), 0); err != nil {
			return st, false, err
		}
	}
	m.conn.setBucket(bucket)
	batchLen := plan.BatchPages
	if batchLen <= 0 {
		batchLen = 1024
	}
	order := plan.Order
	stopped := false
	var i int
	remainingDirty := func() int64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		var n int64
		for _, pg := range order[i:] {
			n += int64(m.dirty[pg>>6] >> (uint(pg) & 63) & 1)
		}
		return n
	}
	for i < len(order) {
		if err := ctx.Err(); err != nil {
			return st, false, err
		}
		if err := m.sync(ctx); err != nil {
			return st, false, fmt.Errorf("round %d: %w", round, err)
		}
		m.mu.Lock()
		now := m.now()
		m.applyUntil(now)
		dirtyPages := m.dirtyCount
		m.mu.Unlock()
		b := algorithms.Batch{Round: round, NowNS: now, SentPages: m.sent, SentBytes: m.sentBytes,
			Remaining: int64(len(order) - i), DirtyPages: dirtyPages, RemainingDirty: remainingDirty}
		if m.pol.BeforeBatch(&b) {
			stopped = true
			replay.Unsend(order[i:], m.pend)
			break
		}
		// Select the batch against the log as it stands now (Xen peeks once
		// per batch); pages dirtied later in the batch go anyway and stay
		// in the log.
		m.mu.Lock()
		var skipped int64
		m.batch, i, skipped = replay.NextBatch(order, i, batchLen, plan.Peek, m.dirty, m.batch)
		st.Skipped += skipped
		m.mu.Unlock()
		for j := 0; j < len(m.batch); j += m.wb {
			n, err := m.sendPages(m.batch[j:min(j+m.wb, len(m.batch))])
			if err != nil {
				return st, false, fmt.Errorf("round %d: %w", round, err)
			}
			st.Bytes += n
		}
		st.Sent += int64(len(m.batch))
	}
	if !stopped {
		// A round the policy stops goes straight into the final round, which
		// closes both; see the package comment.
		if err := m.endRound(round, false); err != nil {
			return st, false, fmt.Errorf("round %d: %w", round, err)
		}
		if d := m.link.EmulatedRTT(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return st, false, ctx.Err()
			}
		}
	}
	st.DurationNS = m.now() - start
	return st, stopped, nil
}

// sendPages copies pages from memory into one Batch frame, under the lock
// so each copy is a consistent (version, content) pair, and writes it.
// It returns the bytes charged (page plus header, header only for zero
// pages under zero-page detection).
func (m *migration) sendPages(pages []int32) (int64, error) {
	m.bb.Reset()
	var charged int64
	m.mu.Lock()
	m.applyUntil(m.now())
	for _, p := range pages {
		v := m.versions[p]
		if m.zero && !m.has(p) {
			m.bb.AddZero(uint64(p), v)
			charged += m.cfg.Link.HeaderBytes
			continue
		}
		copy(m.bb.Add(uint64(p), v), m.mem.page(uint64(p)))
		charged += int64(m.ps) + m.cfg.Link.HeaderBytes
	}
	m.mu.Unlock()
	if err := m.conn.write(m.bb.Frame()); err != nil {
		return 0, err
	}
	m.sent += int64(len(pages))
	m.sentBytes += charged
	m.roundPages += uint64(len(pages))
	return charged, nil
}

// sync waits, on a kernel-shaped link, until the bytes written so far are
// delivered: the kernel queues (socket buffer, tbf) otherwise let the
// sender run ahead of the wire, and a policy deciding before a batch, or a
// pause, would see an earlier moment than the one it acts at. With
// userspace shaping the token bucket already keeps the sender at the wire.
func (m *migration) sync(ctx context.Context) error {
	if !m.link.KernelShaped() {
		return nil
	}
	return m.conn.drain(ctx)
}

func (m *migration) endRound(round int, final bool) error {
	// On a kernel-shaped link the acknowledgement can only come once the
	// queued bytes are through; waiting for them here first keeps the
	// ack's read deadline about the receiver alone, however much the queue
	// still holds.
	if err := m.sync(context.Background()); err != nil {
		return err
	}
	err := m.conn.endRound(wire.RoundEnd{Round: uint32(round), Pages: m.roundPages, Final: final})
	m.roundPages = 0
	return err
}

// verify compares the destination's memory with the source's, page by
// page, and fails the run listing the pages that differ.
func (m *migration) verify(res *replay.Result) error {
	var lost []int64
	err := m.conn.fetchChecksums(uint64(m.n), func(p, version uint64, sum uint32) {
		if version != m.versions[p] || sum != wire.Checksum(m.mem.page(p)) {
			lost = append(lost, int64(p))
		}
	})
	if err != nil {
		return fmt.Errorf("verify destination memory: %w", err)
	}
	res.LostPages = int64(len(lost))
	if len(lost) > 0 {
		return fmt.Errorf("%w: %d of %d pages differ at the destination: %s", ErrLostUpdates, len(lost), m.n, listPages(lost))
	}
	return nil
}

// listPages writes pages as ranges, the first 20 of them.
func listPages(ps []int64) string {
	slices.Sort(ps)
	var b strings.Builder
	ranges := 0
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if ranges == 20 {
			fmt.Fprintf(&b, " … (%d more pages)", len(ps)-i)
			break
		}
		if ranges > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", ps[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", ps[i], ps[j])
		}
		ranges++
		i = j + 1
	}
	return b.String()
}

var _ replay.Engine = Engine{}
