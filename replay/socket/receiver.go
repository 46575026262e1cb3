package socket

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/microwiper/microwiper/internal/bytesize"
	"github.com/microwiper/microwiper/replay/wire"
)

// DefaultTimeout is how long either side waits for the other to make
// progress before it gives up on the session.
const DefaultTimeout = 30 * time.Second

// Defaults for the receiver's bounds on peers (ReceiverConfig).
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxConns         = 64
	DefaultMaxHandshakes    = 16
	DefaultFailRate         = 2.0
	DefaultFailBurst        = 10
)

// Buffers every authenticated session holds besides its memory image,
// versions and frame buffer, counted in the budget: the stream's read
// buffer, the Verify frame being written and its checksums.
const (
	streamBufBytes  = 256 << 10
	sessionOverhead = streamBufBytes + wire.FrameHeaderBytes + wire.MaxVerifyFrame + 4*wire.MaxVerifyPages
	// handshakeBufBytes is the read buffer of a connection that has not
	// authenticated: small, so idle connections cost little.
	handshakeBufBytes = 4 << 10
)

// ReceiverConfig configures a destination.
type ReceiverConfig struct {
	// MaxMemory is the most memory in bytes the receiver holds for all
	// sessions together: memory images, their 8-byte-per-page versions,
	// frame and stream buffers. A Hello asking for more is refused.
	MaxMemory int64
	// Token keys the challenge-response a sender must answer; senders and
	// receiver must hold the same token (empty is a token like any other).
	Token string
	// Timeout bounds the wait for each frame from the sender
	// (DefaultTimeout when 0).
	Timeout time.Duration
	// HandshakeTimeout bounds the whole handshake, however slowly its
	// bytes trickle in (DefaultHandshakeTimeout when 0, never more than
	// Timeout).
	HandshakeTimeout time.Duration
	// MaxConns bounds open connections (DefaultMaxConns when 0) and
	// MaxHandshakes those not yet authenticated (DefaultMaxHandshakes
	// when 0). Connections beyond either are told the receiver is busy
	// and closed.
	MaxConns, MaxHandshakes int
	// FailRate is the failed authentications a second the receiver allows
	// on average, FailBurst at once (DefaultFailRate, DefaultFailBurst
	// when 0). Beyond them it refuses handshakes until the budget refills,
	// so a token cannot be guessed at network speed.
	FailRate  float64
	FailBurst int
	// Log receives one line per session; nil discards.
	Log *slog.Logger
}

// Receiver is a migration destination: it accepts sessions, writes the
// pages they stream into memory, acknowledges rounds and reports its
// memory's checksums. It serves any number of sessions, one after another
// or at once, within its memory budget and connection caps.
type Receiver struct {
	cfg   ReceiverConfig
	fails *limiter

	mu         sync.Mutex
	used       int64 // memory held by live sessions
	conns      int   // open connections
	handshakes int   // connections not yet authenticated
	turning    int   // connections being told the receiver is busy
	wg         sync.WaitGroup
}

// NewReceiver returns a receiver.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	cfg.HandshakeTimeout = min(cfg.HandshakeTimeout, cfg.Timeout)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.FailRate <= 0 {
		cfg.FailRate = DefaultFailRate
	}
	if cfg.FailBurst <= 0 {
		cfg.FailBurst = DefaultFailBurst
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg, fails: newLimiter(cfg.FailRate, cfg.FailBurst)}
}

// Accept backs off from this delay, doubling up to maxAcceptDelay, after
// an error: running out of descriptors (EMFILE) is the usual one, and it
// passes when sessions end.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// Serve accepts sessions on ln until ctx ends, then closes ln, waits for
// live sessions to end and returns nil. A failed session or a failed
// accept is logged and does not stop the receiver; only a closed listener
// does.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer r.wg.Wait()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			r.cfg.Log.Warn("accept failed; retrying", "listen", ln.Addr().String(), "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		delay = 0
		if why := r.admit(); why != "" {
			r.turnAway(c, why)
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			peer := c.RemoteAddr().String()
			if err := r.handle(ctx, c); err != nil {
				r.cfg.Log.Warn("session failed", "peer", peer, "err", err)
			} else {
				r.cfg.Log.Info("session done", "peer", peer)
			}
		}()
	}
}

// admit counts a new connection as open and unauthenticated, or says why
// the receiver cannot take it.
func (r *Receiver) admit() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.conns >= r.cfg.MaxConns:
		return fmt.Sprintf("%d connections open, the most it serves at once", r.conns)
	case r.handshakes >= r.cfg.MaxHandshakes:
		return fmt.Sprintf("%d connections have not yet authenticated, the most it waits for at once", r.handshakes)
	}
	r.conns++
	r.handshakes++
	return ""
}

// maxTurning bounds the connections being turned away at once; beyond it
// they are closed without a word.
const maxTurning = 32

// turnAway tells the sender why the receiver is busy and closes c. It
// reads what the sender already sent first, so closing does not reset the
// connection before the sender has read the answer; it gives that a
// second at most.
func (r *Receiver) turnAway(c net.Conn, why string) {
	r.mu.Lock()
	ok := r.turning < maxTurning
	if ok {
		r.turning++
	}
	r.mu.Unlock()
	if !ok {
		c.Close()
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			r.turning--
			r.mu.Unlock()
		}()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(wire.AppendWelcome(nil, wire.Welcome{Status: wire.StatusBusy, Message: "receiver busy: " + why + "; retry later"}))
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
	r.cfg.Log.Warn("connection turned away", "peer", c.RemoteAddr().String(), "why", why)
}

// handle runs one admitted session on c and closes c. It returns why the
// session failed, after telling the sender.
func (r *Receiver) handle(ctx context.Context, c net.Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &session{Receiver: r, c: c, handshaking: true}
	s.hsDeadline = time.Now().Add(r.cfg.HandshakeTimeout)
	s.br = bufio.NewReaderSize(c, handshakeBufBytes)
	s.rd = wire.NewReader(s.br, wire.MaxHelloFrame)
	err := s.run()
	s.release()
	r.mu.Lock()
	r.conns--
	if s.handshaking {
		r.handshakes--
	}
	r.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("receiver stopped: %w", ctx.Err())
	}
	return err
}

// sessionBytes is the memory a session of h holds: the image, the
// versions (8 bytes a page), the frame buffer and the fixed buffers. The
// Hello's bounds (2^40 pages of at most 2 MiB) keep it far from overflow.
func sessionBytes(h wire.Hello) (total, frame uint64) {
	frame = uint64(frameBytes(h))
	perPage := uint64(h.PageSize) + 8
	batchDst := uint64(h.BatchPages) * uint64(unsafe.Sizeof(wire.Page{}))
	return h.Pages*perPage + frame + batchDst + sessionOverhead, frame
}

// frameBytes is the most payload a frame of h's session may carry: a
// full batch, or a message.
func frameBytes(h wire.Hello) int {
	return max(wire.MaxBatchFrame(h.PageSize, h.BatchPages), wire.MaxMessageBytes)
}

func (r *Receiver) reserve(n int64) (held int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used+n > r.cfg.MaxMemory {
		return r.used, false
	}
	r.used += n
	return r.used - n, true
}

func (r *Receiver) unreserve(n int64) {
	r.mu.Lock()
	r.used -= n
	r.mu.Unlock()
}

// authenticated moves the session's connection from the unauthenticated
// count to the authenticated.
func (s *session) authenticated() {
	s.mu.Lock()
	s.handshakes--
	s.mu.Unlock()
	s.handshaking = false
	s.hsDeadline = time.Time{}
}

// corruptPage, when a test sets it to a page index, flips a bit of that
// page before the receiver reports its checksums.
var corruptPage int64 = -1

type session struct {
	*Receiver
	c           net.Conn
	br          *bufio.Reader
	rd          *wire.Reader
	out         []byte
	hello       wire.Hello
	handshaking bool
	hsDeadline  time.Time

	// Held for the session and freed by release: the budget reserved, the
	// memory image, the versions' and the frame buffer's backing bytes.
	held     int64
	mem      *pageMemory
	verBytes []byte
	versions []uint64
	frame    []byte
}

func (s *session) release() {
	if s.mem != nil {
		s.mem.unmap()
		s.mem = nil
	}
	dropBytes(s.verBytes)
	dropBytes(s.frame)
	s.verBytes, s.versions, s.frame = nil, nil, nil
	if s.held > 0 {
		s.unreserve(s.held)
		s.held = 0
	}
}

// next reads a frame, giving the sender Timeout to produce it (and no
// more than what is left of the handshake's time while it lasts).
func (s *session) next() (wire.Frame, error) {
	d := time.Now().Add(s.cfg.Timeout)
	if s.handshaking {
		d = s.hsDeadline
	}
	_ = s.c.SetReadDeadline(d)
	f, err := s.rd.Next()
	if err != nil {
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return f, fmt.Errorf("sender closed the connection mid-session: %w", err)
		case errors.Is(err, os.ErrDeadlineExceeded) && s.handshaking:
			return f, fmt.Errorf("sender did not complete the handshake within %v", s.cfg.HandshakeTimeout)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return f, fmt.Errorf("sender stalled: nothing for %v (timeout)", s.cfg.Timeout)
		}
		return f, err
	}
	return f, nil
}

func (s *session) send(b []byte) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	_, err := s.c.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("sender stopped reading for %v (timeout)", s.cfg.Timeout)
	}
	return err
}

func (s *session) sendError(msg string) {
	_ = s.send(wire.AppendError(nil, msg))
}

// refuse answers the Hello with a failure status and returns the reason.
func (s *session) refuse(st wire.Status, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	_ = s.send(wire.AppendWelcome(nil, wire.Welcome{Status: st, Message: msg}))
	return fmt.Errorf("refused handshake: %s: %s", st, msg)
}

func (s *session) run() error {
	h, err := s.readHello()
	if err != nil {
		return err
	}
	if err := s.authenticate(&h); err != nil {
		return err
	}
	if err := s.allocate(h); err != nil {
		return err
	}
	if err := s.send(wire.AppendWelcome(nil, wire.Welcome{Status: wire.StatusOK})); err != nil {
		return fmt.Errorf("send welcome: %w", err)
	}
	return s.stream()
}

func (s *session) readHello() (wire.Hello, error) {
	f, err := s.next()
	if err != nil {
		if errors.Is(err, wire.ErrMalformed) {
			return wire.Hello{}, s.refuse(wire.StatusMalformed, "%v", err)
		}
		return wire.Hello{}, fmt.Errorf("read hello: %w", err)
	}
	if f.Type != wire.TypeHello {
		return wire.Hello{}, s.refuse(wire.StatusMalformed, "first frame is %s, want hello", f.Type)
	}
	h, err := wire.ParseHello(f.Payload)
	if err != nil {
		return h, s.refuse(wire.StatusMalformed, "%v", err)
	}
	if h.Version != wire.Version {
		return h, s.refuse(wire.StatusBadVersion, "sender speaks version %d, this receiver %d: run the same microwiper build on both hosts", h.Version, wire.Version)
	}
	if err := h.Check(); err != nil {
		return h, s.refuse(wire.StatusMalformed, "%v", err)
	}
	return h, nil
}

// authenticate runs the challenge-response. Every challenge takes one
// failure from the rate limit, given back when the sender answers it
// right, so concurrent guessers cannot exceed the limit either.
func (s *session) authenticate(h *wire.Hello) error {
	if wait, ok := s.fails.take(time.Now()); !ok {
		return s.refuse(wire.StatusBusy, "too many failed authentications (at most %g a second): retry in %v",
			s.cfg.FailRate, wait.Round(time.Millisecond))
	}
	var nonce [wire.NonceBytes]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("draw a nonce: %w", err)
	}
	if err := s.send(wire.AppendChallenge(nil, nonce)); err != nil {
		return fmt.Errorf("send challenge: %w", err)
	}
	f, err := s.next()
	if err != nil {
		if errors.Is(err, wire.ErrMalformed) {
			return s.refuse(wire.StatusMalformed, "%v", err)
		}
		return fmt.Errorf("read auth: %w", err)
	}
	if f.Type != wire.TypeAuth {
		return s.refuse(wire.StatusMalformed, "answer to the challenge is %s, want auth", f.Type)
	}
	mac, err := wire.ParseAuth(f.Payload)
	if err != nil {
		return s.refuse(wire.StatusMalformed, "%v", err)
	}
	h.Token = s.cfg.Token
	if !wire.CheckAuth(*h, nonce, mac) {
		return s.refuse(wire.StatusBadToken, "the sender's --token does not match the receiver's")
	}
	s.fails.give(time.Now())
	if s.br.Buffered() != 0 {
		return s.refuse(wire.StatusMalformed, "%d bytes sent before the welcome", s.br.Buffered())
	}
	s.authenticated()
	return nil
}

// allocate reserves and allocates everything the session holds, or
// refuses it. The budget is checked before any allocation.
func (s *session) allocate(h wire.Hello) error {
	need, frame := sessionBytes(h)
	if need > uint64(s.cfg.MaxMemory) {
		return s.refuse(wire.StatusTooLarge, "session needs %s (%d pages × %d B/page + %s of buffers); --max-memory is %s",
			bytesize.Format(need), h.Pages, h.PageSize+8, bytesize.Format(need-h.Pages*(uint64(h.PageSize)+8)), bytesize.Format(uint64(s.cfg.MaxMemory)))
	}
	held, ok := s.reserve(int64(need))
	if !ok {
		return s.refuse(wire.StatusUnavailable, "session needs %s; %s of --max-memory %s held by other sessions",
			bytesize.Format(need), bytesize.Format(uint64(held)), bytesize.Format(uint64(s.cfg.MaxMemory)))
	}
	s.held = int64(need)
	var err error
	if s.mem, err = mapMemory(h.Pages, int(h.PageSize)); err != nil {
		return s.refuse(wire.StatusUnavailable, "%v", err)
	}
	if s.verBytes, err = holdBytes(8*h.Pages, false); err != nil {
		return s.refuse(wire.StatusUnavailable, "versions of %d pages: %v", h.Pages, err)
	}
	s.versions = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(s.verBytes))), h.Pages)
	if s.frame, err = holdBytes(frame, false); err != nil {
		return s.refuse(wire.StatusUnavailable, "frame buffer of %d bytes: %v", frame, err)
	}
	s.hello = h
	s.br = bufio.NewReaderSize(s.c, streamBufBytes)
	s.rd = wire.NewReader(s.br, int(frame))
	s.rd.SetBuffer(s.frame)
	return nil
}

func (s *session) stream() error {
	var (
		pages      []wire.Page
		roundPages uint64
		round      uint32
	)
	for {
		f, err := s.next()
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				s.sendError(err.Error())
			}
			return fmt.Errorf("round %d: %w", round+1, err)
		}
		switch f.Type {
		case wire.TypeBatch:
			pages, err = wire.ParseBatch(f.Payload, s.hello.PageSize, s.hello.Pages, pages)
			if err == nil && len(pages) > int(s.hello.BatchPages) {
				err = fmt.Errorf("%w: batch of %d pages: the hello allows %d", wire.ErrMalformed, len(pages), s.hello.BatchPages)
			}
			if err != nil {
				s.sendError(err.Error())
				return fmt.Errorf("round %d: %w", round+1, err)
			}
			for _, pg := range pages {
				dst := s.mem.page(pg.Index)
				if pg.Zero {
					clear(dst)
				} else {
					copy(dst, pg.Data)
				}
				s.versions[pg.Index] = pg.Version
			}
			roundPages += uint64(len(pages))
		case wire.TypeRoundEnd:
			e, err := wire.ParseRoundEnd(f.Payload)
			if err != nil {
				s.sendError(err.Error())
				return err
			}
			if e.Pages != roundPages {
				msg := fmt.Sprintf("round %d: received %d pages, sender sent %d", e.Round, roundPages, e.Pages)
				s.sendError(msg)
				return errors.New(msg)
			}
			if err := s.send(wire.AppendRoundAck(nil, wire.RoundAck{Round: e.Round, Pages: roundPages})); err != nil {
				return fmt.Errorf("acknowledge round %d: %w", e.Round, err)
			}
			round, roundPages = e.Round, 0
		case wire.TypeFinish:
			if err := wire.ParseFinish(f.Payload); err != nil {
				s.sendError(err.Error())
				return err
			}
			return s.verify()
		case wire.TypeError:
			msg, _ := wire.ParseError(f.Payload)
			return fmt.Errorf("sender gave up: %s", msg)
		default:
			msg := fmt.Sprintf("unexpected %s frame during streaming", f.Type)
			s.sendError(msg)
			return errors.New(msg)
		}
	}
}

// verify sends every page's version and checksum, then waits for the
// sender to close.
func (s *session) verify() error {
	if corruptPage >= 0 && uint64(corruptPage) < s.hello.Pages {
		s.mem.page(uint64(corruptPage))[0] ^= 1
	}
	sums := make([]uint32, 0, wire.MaxVerifyPages)
	for first := uint64(0); first < s.hello.Pages; first += wire.MaxVerifyPages {
		n := min(s.hello.Pages-first, wire.MaxVerifyPages)
		sums = sums[:0]
		for p := first; p < first+n; p++ {
			sums = append(sums, wire.Checksum(s.mem.page(p)))
		}
		s.out = wire.AppendVerify(s.out[:0], first, s.versions[first:first+n], sums)
		if err := s.send(s.out); err != nil {
			return fmt.Errorf("send checksums: %w", err)
		}
	}
	_ = s.c.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
	if _, err := s.rd.Next(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("after checksums: %w", err)
	}
	return nil
}

// limiter is a token bucket of failed authentications.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens a second
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (l *limiter) refill(now time.Time) {
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
}

// take takes a token, or says how long until one is there.
func (l *limiter) take(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	if l.tokens < 1 {
		return time.Duration((1 - l.tokens) / l.rate * float64(time.Second)), false
	}
	l.tokens--
	return 0, true
}

// give returns a token taken for an attempt that succeeded.
func (l *limiter) give(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	l.tokens = min(l.burst, l.tokens+1)
}
