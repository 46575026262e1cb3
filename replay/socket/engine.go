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
	"github.com/microwiper/microwiper/results"
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
func (e Engine) Run(ctx context.Context, tr *replay.Trace, alg algorithms.Algorithm, cfg replay.Config) (*results.Result, error) {
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
	if err := replay.CheckRun(tr, alg, "socket", cfg); err != nil {
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
	m, err := newMigration(tr, cfg, link, lc.Timeout, wb)
	if err != nil {
		return nil, err
	}
	defer m.release()
	m.token = link.Token()
	res := replay.NewResult(tr, alg, "socket", link.Name(), cfg)
	err = m.run(ctx, pol, res)
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

// migration is one run of the socket engine, the replay.Machine the round
// driver runs. mu guards the source memory, versions and the dirty log:
// the player goroutine writes pages under it, the sender copies them
// under it.
type migration struct {
	cfg     replay.Config
	link    Link
	timeout time.Duration
	token   string
	wb      int
	n       int64
	ps      int
	mig     algorithms.Migration
	zero    bool
	zeroNS  int64 // source time per zero page (Traits.ZeroPageNS)

	mu       sync.Mutex
	log      *replay.Log
	mem      *pageMemory
	versions []uint64
	hasData  []uint64
	t0       time.Time

	bb         *wire.BatchBuilder
	conn       *senderConn
	linkBucket *shaper.Bucket // nil when the kernel shapes or unshaped
	capBucket  *shaper.Bucket // a policy's live-round cap, at capBps
	capBps     int64
	roundPages uint64 // pages sent since the last RoundEnd

	wake   chan struct{}
	stop   chan struct{}
	player sync.WaitGroup
}

func newMigration(tr *replay.Trace, cfg replay.Config, link Link, timeout time.Duration, wb int) (*migration, error) {
	n := tr.Header.Pages
	mem, err := mapMemory(uint64(n), int(tr.Header.PageSize))
	if err != nil {
		return nil, fmt.Errorf("source memory: %w", err)
	}
	words := (n + 63) / 64
	m := &migration{
		cfg: cfg, link: link, timeout: timeout, wb: wb, n: n, ps: int(tr.Header.PageSize),
		mem: mem, versions: make([]uint64, n), hasData: make([]uint64, words),
		mig: algorithms.Migration{Pages: n, PageSize: tr.Header.PageSize, HeaderBytes: cfg.Link.HeaderBytes,
			LinkBps: cfg.Link.Bps, RTTNS: cfg.Link.RTTNS},
		bb:   wire.NewBatchBuilder(int(tr.Header.PageSize), wb),
		wake: make(chan struct{}, 1),
	}
	if m.log, err = replay.NewLog(tr, cfg.Time, m.write); err != nil {
		mem.unmap()
		return nil, err
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
	m.log.Prehistory(func(ps []int32, z replay.Zeros) {
		for i, p := range ps {
			if z.At(i) {
				m.hasData[p>>6] &^= 1 << (uint(p) & 63)
			} else {
				m.hasData[p>>6] |= 1 << (uint(p) & 63)
			}
		}
	})
	// The initial image: pages holding data get their version-0 content,
	// the rest stay zero (written back to zeros before the start included).
	for p := int64(0); p < n; p++ {
		if m.has(int32(p)) {
			fillPage(mem.page(uint64(p)), uint64(p), 0)
		}
	}
	if !link.KernelShaped() {
		m.linkBucket, err = shaper.New(float64(cfg.Link.Bps), 0)
		if err != nil {
			m.log.Release()
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
	m.log.Release()
	m.mem.unmap()
}

// write is a group of the trace's writes, applied by the log under mu: it
// bumps each page's version and rewrites its content, as a guest's store
// would; a write that left the page all zeros (z) zeroes it, so that a
// zero page sent as a header still verifies at the destination.
func (m *migration) write(ps []int32, z replay.Zeros) {
	for i, p := range ps {
		m.versions[p]++
		if z.At(i) {
			clear(m.mem.page(uint64(p)))
			m.hasData[p>>6] &^= 1 << (uint(p) & 63)
			continue
		}
		fillPage(m.mem.page(uint64(p)), uint64(p), m.versions[p])
		m.hasData[p>>6] |= 1 << (uint(p) & 63)
	}
}

// playUntilStopped plays the trace's writes into memory in real time until stop.
func (m *migration) playUntilStopped() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		m.log.ApplyUntil(m.Now())
		next := m.log.NextNS()
		m.mu.Unlock()
		var tc <-chan time.Time
		if next != math.MaxInt64 {
			timer.Reset(time.Until(m.t0.Add(time.Duration(next))))
			tc = timer.C
		}
		select {
		case <-m.stop:
			return
		case <-m.wake:
		case <-tc:
		}
	}
}

func (m *migration) run(ctx context.Context, pol algorithms.Policy, res *results.Result) error {
	c, err := m.link.Dial(ctx)
	if err != nil {
		return fmt.Errorf("%s link: connect: %w", m.link.Name(), err)
	}
	if tc, ok := c.(*net.TCPConn); ok && m.link.Name() != LinkRemote {
		// Slack for a sender that loses the CPU for a moment: the kernel
		// keeps the link busy from the buffer. On a kernel-shaped link
		// Sync keeps the policy's view at the wire all the same; on
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
	defer func() {
		if m.stop != nil {
			close(m.stop)
			m.player.Wait()
		}
	}()
	if err := replay.Drive(ctx, m, m.log, pol, m.mig, m.cfg, res); err != nil {
		return err
	}
	return m.verify(res)
}

func (m *migration) Lock()   { m.mu.Lock() }
func (m *migration) Unlock() { m.mu.Unlock() }

// Start starts the clock and the player.
func (m *migration) Start(_ context.Context, traits algorithms.Traits) error {
	m.zero, m.zeroNS = traits.ZeroPages, traits.ZeroPageNS
	// The handshake wrote through the link's bucket; the migration's
	// schedule starts now, with nothing to catch up on.
	m.conn.setBucket(m.linkBucket, true)
	m.t0 = time.Now()
	m.stop = make(chan struct{})
	m.player.Add(1)
	go func() {
		defer m.player.Done()
		m.playUntilStopped()
	}()
	return nil
}

// Now is the migration time elapsed.
func (m *migration) Now() int64 { return int64(time.Since(m.t0)) }

// Changed wakes the player to look at its next write again.
func (m *migration) Changed() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// StartRound paces the round at rateBps: the link's bucket, or a slower
// one for a policy's cap.
func (m *migration) StartRound(rateBps int64) error {
	bucket := m.linkBucket
	if rateBps < m.cfg.Link.Bps {
		// One bucket per cap for the whole migration, as QEMU's rate limit
		// runs on across bitmap syncs: a new one per round would start
		// each round with a fresh burst.
		if m.capBucket == nil || m.capBps != rateBps {
			var err error
			if m.capBucket, err = shaper.New(float64(rateBps), 0); err != nil {
				return err
			}
			m.capBps = rateBps
		}
		bucket = m.capBucket
	}
	m.conn.setBucket(bucket, false)
	return nil
}

// Send writes the pages in Batch frames of at most wb pages.
func (m *migration) Send(pages []int32) (int64, error) {
	var sent int64
	for j := 0; j < len(pages); j += m.wb {
		n, err := m.sendPages(pages[j:min(j+m.wb, len(pages))])
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, nil
}

// EndRound closes a live round with a RoundEnd exchange, so that the
// receiver has verified and applied the round before the next one and a
// pause finds it caught up. The exchange is one real round trip of the
// link (tens of microseconds on loopback and veth); the modelled RTT is
// not slept, since live rounds are pipelined.
func (m *migration) EndRound(_ context.Context, round int) error {
	return m.endRound(round, false)
}

// SendHeaders charges header-only records (Xen HVM's allocate-only pfns)
// without putting anything on the wire: the receiver has no record that
// carries no content, and at a few bytes a page the time they take is
// below what a real-time engine can measure.
func (m *migration) SendHeaders(pages []int32) (int64, error) {
	return int64(len(pages)) * m.cfg.Link.HeaderBytes, nil
}

// Final sends the final round at the link's rate and closes it; the
// downtime runs from the pause to the destination's acknowledgement, plus
// the emulated RTT.
func (m *migration) Final(_ context.Context, round int, pauseAt int64, pages []int32) (int64, int64, error) {
	// The final round's schedule starts at the pause: catching up on the
	// live rounds' lateness would shorten the downtime.
	m.conn.setBucket(m.linkBucket, true)
	b, err := m.Send(pages)
	if err != nil {
		return 0, 0, err
	}
	if err := m.endRound(round, true); err != nil {
		return 0, 0, err
	}
	return int64(time.Since(m.t0.Add(time.Duration(pauseAt)))) + int64(m.link.EmulatedRTT()), b, nil
}

// sendPages copies pages from memory into one Batch frame, under the lock
// so each copy is a consistent (version, content) pair, and writes it.
// It returns the bytes charged (page plus header, header only for zero
// pages under zero-page detection).
func (m *migration) sendPages(pages []int32) (int64, error) {
	m.bb.Reset()
	var charged int64
	zeros := 0
	m.mu.Lock()
	m.log.ApplyUntil(m.Now())
	for _, p := range pages {
		v := m.versions[p]
		if m.zero && !m.has(p) {
			m.bb.AddZero(uint64(p), v)
			charged += m.cfg.Link.HeaderBytes
			zeros++
			continue
		}
		copy(m.bb.Add(uint64(p), v), m.mem.page(uint64(p)))
		charged += int64(m.ps) + m.cfg.Link.HeaderBytes
	}
	m.mu.Unlock()
	if zeros > 0 && m.zeroNS > 0 {
		// The source's time to find the pages zero (QEMU reads each),
		// charged serially with the transfer as the simulator does.
		m.conn.hold(time.Duration(int64(zeros) * m.zeroNS))
	}
	if err := m.conn.write(m.bb.Frame()); err != nil {
		return 0, err
	}
	m.roundPages += uint64(len(pages))
	return charged, nil
}

// Sync waits until the bytes written so far are on the wire: the token
// bucket's burst and, on a kernel-shaped link, the kernel's queues (socket
// buffer, tbf) otherwise let the sender run ahead of it, and a policy
// deciding before a batch, or a pause, would see an earlier moment than
// the one it acts at. A burst per batch is small; a burst per round is
// not, when a capped policy syncs every few batches (QEMU's rounds at
// 6 MiB/s ran 20% fast before this waited for the bucket).
func (m *migration) Sync(ctx context.Context) error {
	if err := m.conn.drainBucket(ctx); err != nil {
		return err
	}
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
	if err := m.Sync(context.Background()); err != nil {
		return err
	}
	err := m.conn.endRound(wire.RoundEnd{Round: uint32(round), Pages: m.roundPages, Final: final})
	m.roundPages = 0
	return err
}

// verify compares the destination's memory with the source's, page by
// page, and fails the run listing the pages that differ.
func (m *migration) verify(res *results.Result) error {
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

var (
	_ replay.Engine  = Engine{}
	_ replay.Machine = (*migration)(nil)
)
