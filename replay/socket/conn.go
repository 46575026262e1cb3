package socket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/microwiper/microwiper/replay/shaper"
	"github.com/microwiper/microwiper/replay/wire"
)

// ErrHandshake is wrapped by every refused handshake.
var ErrHandshake = errors.New("receiver refused the handshake")

// senderConn is the source's end of a session.
type senderConn struct {
	c       net.Conn
	rd      *wire.Reader
	w       *shaper.Writer // shaped, with a per-write deadline
	timeout time.Duration
	out     []byte
	stop    func() bool
}

// deadlineWriter gives every write its own deadline, so a link that stops
// making progress fails after timeout however long the whole stream is.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.c.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.c.Write(p)
}

// handshake opens a session on c, answering the receiver's challenge with
// h.Token. bucket may be nil (unshaped). A cancelled ctx interrupts any
// blocked read or write of the session.
func handshake(ctx context.Context, c net.Conn, h wire.Hello, bucket *shaper.Bucket, timeout time.Duration) (*senderConn, error) {
	s := &senderConn{
		c:       c,
		rd:      wire.NewReader(bufio.NewReaderSize(c, 64<<10), wire.MaxVerifyFrame),
		timeout: timeout,
	}
	s.w = &shaper.Writer{W: deadlineWriter{c: c, timeout: timeout}, B: bucket, Ctx: ctx}
	s.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	if err := s.write(wire.AppendHello(nil, h)); err != nil {
		s.close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	f, err := s.next()
	if err == nil && f.Type == wire.TypeChallenge {
		var nonce [wire.NonceBytes]byte
		if nonce, err = wire.ParseChallenge(f.Payload); err == nil {
			if err = s.write(wire.AppendAuth(nil, wire.AuthMAC(h, nonce))); err == nil {
				f, err = s.next()
			}
		}
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("await welcome: %w", err)
	}
	if f.Type != wire.TypeWelcome {
		s.close()
		return nil, fmt.Errorf("await welcome: got a %s frame: %w", f.Type, wire.ErrMalformed)
	}
	w, err := wire.ParseWelcome(f.Payload)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("await welcome: %w", err)
	}
	if w.Status != wire.StatusOK {
		s.close()
		return nil, fmt.Errorf("%w: %s: %s", ErrHandshake, w.Status, w.Message)
	}
	return s, nil
}

func (s *senderConn) close() {
	s.stop()
	s.c.Close()
}

// unsent is the number of bytes the kernel still holds for the receiver
// (not yet acknowledged), or 0 when it cannot tell.
func (s *senderConn) unsent() int {
	sc, ok := s.c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n = outq(fd) })
	return n
}

// drain waits until the kernel has delivered everything written, so the
// engine's clock stands where the wire is (the simulator's view: a page is
// sent when its last bit has left). It gives up when nothing moves for the
// timeout.
func (s *senderConn) drain(ctx context.Context) error {
	last, deadline := s.unsent(), time.Now().Add(s.timeout)
	for last > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(100 * time.Microsecond)
		n := s.unsent()
		if n < last {
			deadline = time.Now().Add(s.timeout)
		} else if time.Now().After(deadline) {
			return fmt.Errorf("link stalled: no progress for %v (--timeout), %d bytes undelivered", s.timeout, n)
		}
		last = n
	}
	return nil
}

// setBucket changes the shaping from the next write on; nil unshapes. The
// engine calls it at each round start, after the previous round's
// acknowledgement. A bucket that shaped that round too keeps its schedule:
// live rounds are pipelined over one stream, so the acknowledgement's wait
// is lateness the next round catches up on, not a gap in the stream (it
// cost each of QEMU's 250 ms rounds about 1 ms). A bucket taking over
// starts afresh, as does a new phase (restart).
func (s *senderConn) setBucket(b *shaper.Bucket, restart bool) {
	if b != nil && (b != s.w.B || restart) {
		b.Idle()
	}
	s.w.B = b
}

// drainBucket waits until the shaping bucket's link has sent what was
// written through it.
func (s *senderConn) drainBucket(ctx context.Context) error {
	if s.w.B == nil {
		return nil
	}
	return s.w.B.Drain(ctx)
}

// hold spends d of the source's own time outside the transfer: on a
// userspace-shaped link the bucket holds the link for d; unshaped or
// kernel-shaped, the sender sleeps, and the kernel's queue may drain
// meanwhile (a real source's work overlaps its socket buffer too).
func (s *senderConn) hold(d time.Duration) {
	if s.w.B != nil {
		s.w.B.Hold(d)
		return
	}
	time.Sleep(d)
}

// write sends b whole, shaped.
func (s *senderConn) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return s.explain(err)
	}
	return nil
}

// next reads the receiver's next frame; an Error frame becomes an error.
func (s *senderConn) next() (wire.Frame, error) {
	_ = s.c.SetReadDeadline(time.Now().Add(s.timeout))
	f, err := s.rd.Next()
	if err != nil {
		return f, s.explain(err)
	}
	if f.Type == wire.TypeError {
		msg, _ := wire.ParseError(f.Payload)
		return f, fmt.Errorf("receiver failed: %s", msg)
	}
	return f, nil
}

// explain turns a socket error into what it means for the run. When the
// receiver went away, it looks for the Error frame it may have sent first.
func (s *senderConn) explain(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("link stalled: no progress for %v (--timeout): %w", s.timeout, err)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		_ = s.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if f, rerr := s.rd.Next(); rerr == nil && f.Type == wire.TypeError {
			msg, _ := wire.ParseError(f.Payload)
			return fmt.Errorf("receiver failed: %s", msg)
		}
		return fmt.Errorf("receiver closed the connection (killed or gone): %w", err)
	}
	return err
}

// endRound sends RoundEnd and waits for the receiver to confirm it got and
// verified every page of the round.
func (s *senderConn) endRound(e wire.RoundEnd) error {
	s.out = wire.AppendRoundEnd(s.out[:0], e)
	if err := s.write(s.out); err != nil {
		return fmt.Errorf("end round %d: %w", e.Round, err)
	}
	f, err := s.next()
	if err != nil {
		return fmt.Errorf("await round %d acknowledgement: %w", e.Round, err)
	}
	if f.Type != wire.TypeRoundAck {
		return fmt.Errorf("await round %d acknowledgement: got a %s frame: %w", e.Round, f.Type, wire.ErrMalformed)
	}
	a, err := wire.ParseRoundAck(f.Payload)
	if err != nil {
		return fmt.Errorf("await round %d acknowledgement: %w", e.Round, err)
	}
	if a.Round != e.Round || a.Pages != e.Pages {
		return fmt.Errorf("round %d: receiver acknowledged round %d with %d pages, want %d", e.Round, a.Round, a.Pages, e.Pages)
	}
	return nil
}

// fetchChecksums asks for and reads the receiver's version and checksum of
// every page, calling got for each.
func (s *senderConn) fetchChecksums(pages uint64, got func(p, version uint64, sum uint32)) error {
	if err := s.write(wire.AppendFinish(nil)); err != nil {
		return fmt.Errorf("ask for checksums: %w", err)
	}
	var v wire.Verify
	for next := uint64(0); next < pages; {
		f, err := s.next()
		if err != nil {
			return fmt.Errorf("read checksums from page %d: %w", next, err)
		}
		if f.Type != wire.TypeVerify {
			return fmt.Errorf("read checksums: got a %s frame: %w", f.Type, wire.ErrMalformed)
		}
		if err := wire.ParseVerify(f.Payload, &v); err != nil {
			return fmt.Errorf("read checksums: %w", err)
		}
		if v.First != next || v.First+uint64(len(v.Versions)) > pages || len(v.Versions) == 0 {
			return fmt.Errorf("read checksums: frame for pages [%d, %d), want from %d: %w", v.First, v.First+uint64(len(v.Versions)), next, wire.ErrMalformed)
		}
		for i, ver := range v.Versions {
			got(v.First+uint64(i), ver, v.Sums[i])
		}
		next += uint64(len(v.Versions))
	}
	return nil
}
