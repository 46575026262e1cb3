package socket

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/microwiper/microwiper/replay/wire"
)

// DefaultTimeout is how long either side waits for the other to make
// progress before it gives up on the session.
const DefaultTimeout = 30 * time.Second

// ReceiverConfig configures a destination.
type ReceiverConfig struct {
	// MaxMemory is the most memory in bytes the receiver holds for all
	// sessions together; a Hello asking for more is refused.
	MaxMemory int64
	// Token, when set, must equal the Hello's token.
	Token string
	// Timeout bounds the wait for each frame from the sender
	// (DefaultTimeout when 0).
	Timeout time.Duration
	// Log receives one line per session; nil discards.
	Log *slog.Logger
}

// Receiver is a migration destination: it accepts sessions, writes the
// pages they stream into memory, acknowledges rounds and reports its
// memory's checksums. It serves any number of sessions, one after another
// or at once, within its memory budget.
type Receiver struct {
	cfg ReceiverConfig

	mu   sync.Mutex
	used int64 // memory held by live sessions
	wg   sync.WaitGroup
}

// NewReceiver returns a receiver.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg}
}

// Serve accepts sessions on ln until ctx ends, then closes ln, waits for
// live sessions to end and returns nil. A failed session is logged and
// does not stop the receiver.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer r.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			peer := c.RemoteAddr().String()
			if err := r.Handle(ctx, c); err != nil {
				r.cfg.Log.Warn("session failed", "peer", peer, "err", err)
			} else {
				r.cfg.Log.Info("session done", "peer", peer)
			}
		}()
	}
}

// Handle runs one session on c and closes c. It returns why the session
// failed, after telling the sender.
func (r *Receiver) Handle(ctx context.Context, c net.Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &session{Receiver: r, c: c, br: bufio.NewReaderSize(c, 256<<10)}
	s.rd = wire.NewReader(s.br, wire.MaxHelloFrame)
	err := s.run()
	if s.mem != nil {
		s.mem.unmap()
		r.release(s.held)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("receiver stopped: %w", ctx.Err())
	}
	return err
}

func (r *Receiver) reserve(n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used+n > r.cfg.MaxMemory {
		return fmt.Errorf("%d bytes asked, %d of %d (--max-memory) held by other sessions", n, r.used, r.cfg.MaxMemory)
	}
	r.used += n
	return nil
}

func (r *Receiver) release(n int64) {
	r.mu.Lock()
	r.used -= n
	r.mu.Unlock()
}

// corruptPage, when a test sets it to a page index, flips a bit of that
// page before the receiver reports its checksums.
var corruptPage int64 = -1

type session struct {
	*Receiver
	c        net.Conn
	br       *bufio.Reader
	rd       *wire.Reader
	out      []byte
	hello    wire.Hello
	mem      *pageMemory
	held     int64
	versions []uint64
}

// next reads a frame, giving the sender Timeout to produce it.
func (s *session) next() (wire.Frame, error) {
	_ = s.c.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
	f, err := s.rd.Next()
	if err != nil {
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return f, fmt.Errorf("sender closed the connection mid-session: %w", err)
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
	f, err := s.next()
	if err != nil {
		if errors.Is(err, wire.ErrMalformed) {
			return s.refuse(wire.StatusMalformed, "%v", err)
		}
		return fmt.Errorf("read hello: %w", err)
	}
	if f.Type != wire.TypeHello {
		return s.refuse(wire.StatusMalformed, "first frame is %s, want hello", f.Type)
	}
	h, err := wire.ParseHello(f.Payload)
	if err == nil {
		err = h.Check()
	}
	if err != nil {
		return s.refuse(wire.StatusMalformed, "%v", err)
	}
	if h.Version != wire.Version {
		return s.refuse(wire.StatusBadVersion, "sender speaks version %d, this receiver %d: run the same microwiper build on both hosts", h.Version, wire.Version)
	}
	if subtle.ConstantTimeCompare([]byte(h.Token), []byte(s.cfg.Token)) != 1 {
		return s.refuse(wire.StatusBadToken, "token does not match the receiver's --token")
	}
	size := h.MemoryBytes()
	if size > uint64(s.cfg.MaxMemory) {
		return s.refuse(wire.StatusTooLarge, "%d pages of %d bytes = %d bytes exceeds --max-memory %d", h.Pages, h.PageSize, size, s.cfg.MaxMemory)
	}
	if err := s.reserve(int64(size)); err != nil {
		return s.refuse(wire.StatusUnavailable, "%v", err)
	}
	s.held = int64(size)
	mem, err := mapMemory(h.Pages, int(h.PageSize))
	if err != nil {
		s.release(s.held)
		s.held = 0
		return s.refuse(wire.StatusUnavailable, "%v", err)
	}
	s.mem, s.hello = mem, h
	s.versions = make([]uint64, h.Pages)
	if err := s.send(wire.AppendWelcome(nil, wire.Welcome{Status: wire.StatusOK})); err != nil {
		return fmt.Errorf("send welcome: %w", err)
	}
	s.rd.SetLimit(wire.MaxBatchFrame(h.PageSize, h.BatchPages))
	return s.stream()
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
