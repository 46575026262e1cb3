package socket

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/replay/wire"
)

// The cases of "serve and the socket engine: an unauthenticated client
// must not hurt the server", each played by a hostile client against a
// receiver.

// rawClient speaks the protocol by hand.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	rd *wire.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, rd: wire.NewReader(c, wire.MaxVerifyFrame)}
}

func (r *rawClient) send(b []byte) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := r.c.Write(b)
	return err
}

func (r *rawClient) next() (wire.Frame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return r.rd.Next()
}

// welcome reads the next frame, which must be a Welcome.
func (r *rawClient) welcome() wire.Welcome {
	r.t.Helper()
	f, err := r.next()
	require.NoError(r.t, err)
	require.Equal(r.t, wire.TypeWelcome, f.Type)
	w, err := wire.ParseWelcome(f.Payload)
	require.NoError(r.t, err)
	return w
}

// rawSession dials addr and runs the handshake for h, answering the
// challenge with h.Token, and returns the receiver's Welcome.
func rawSession(t *testing.T, addr string, h wire.Hello) (*rawClient, wire.Welcome) {
	t.Helper()
	r := dialRaw(t, addr)
	require.NoError(t, r.send(wire.AppendHello(nil, h)))
	f, err := r.next()
	require.NoError(t, err)
	if f.Type == wire.TypeChallenge {
		nonce, err := wire.ParseChallenge(f.Payload)
		require.NoError(t, err)
		require.NoError(t, r.send(wire.AppendAuth(nil, wire.AuthMAC(h, nonce))))
		f, err = r.next()
		require.NoError(t, err)
	}
	require.Equal(t, wire.TypeWelcome, f.Type)
	w, err := wire.ParseWelcome(f.Payload)
	require.NoError(t, err)
	return r, w
}

// v1Hello is a version-1 sender's Hello, token in clear.
func v1Hello(token string) []byte {
	p := []byte(wire.Magic)
	p = binary.LittleEndian.AppendUint16(p, 1)
	p = binary.LittleEndian.AppendUint32(p, 4096)
	p = binary.LittleEndian.AppendUint64(p, 1)
	p = binary.LittleEndian.AppendUint32(p, 1)
	p = binary.LittleEndian.AppendUint16(p, uint16(len(token)))
	p = append(p, token...)
	b := []byte{byte(wire.TypeHello), 0, 0, 0}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

func (r *Receiver) counts() (conns, handshakes int, used int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.handshakes, r.used
}

// failingListener fails its first n Accepts as a process out of
// descriptors does, then accepts from the real listener.
type failingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

func goodHello(token string, pages uint64) wire.Hello {
	return wire.Hello{Version: wire.Version, PageSize: 4096, Pages: pages, BatchPages: 16, Token: token}
}

// TestAcceptErrorsBackOff: a receiver out of descriptors (EMFILE from
// accept4) backs off and keeps serving instead of exiting.
func TestAcceptErrorsBackOff(t *testing.T) {
	leakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fl := &failingListener{Listener: ln, n: 8}
	serveOn(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 2 * time.Second}, fl)
	start := time.Now()
	_, w := rawSession(t, ln.Addr().String(), goodHello("k", 16))
	assert.Equal(t, wire.StatusOK, w.Status, w.Message)
	// 5+10+20+…+640 ms of back-off for 8 failures, not a busy loop.
	assert.Greater(t, time.Since(start), time.Second, "accept errors must back off")
}

// TestIdleConnectionsCapped: idle unauthenticated connections beyond the
// cap are turned away with a reason; the server stays responsive and,
// once they time out, serves a real sender.
func TestIdleConnectionsCapped(t *testing.T) {
	leakCheck(t)
	r, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second,
		HandshakeTimeout: time.Second, MaxConns: 8, MaxHandshakes: 4})
	var idle []*rawClient
	for range 4 {
		idle = append(idle, dialRaw(t, addr))
	}
	waitFor(t, "4 handshakes pending", func() bool { _, h, _ := r.counts(); return h == 4 })
	over := dialRaw(t, addr)
	require.NoError(t, over.send(wire.AppendHello(nil, goodHello("k", 16))))
	w := over.welcome()
	assert.Equal(t, wire.StatusBusy, w.Status)
	assert.Contains(t, w.Message, "4 connections have not yet authenticated")
	// Hundreds more: each is turned away, none is held.
	for range 200 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		c.Close()
	}
	conns, hs, _ := r.counts()
	assert.LessOrEqual(t, conns, 8)
	assert.LessOrEqual(t, hs, 4)
	// The idle ones are dropped at the handshake timeout.
	for _, c := range idle {
		_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF)
	}
	_, w = rawSession(t, addr, goodHello("k", 16))
	assert.Equal(t, wire.StatusOK, w.Status, w.Message)
}

// TestAuthenticatedConnectionsCapped: MaxConns bounds sessions too.
func TestAuthenticatedConnectionsCapped(t *testing.T) {
	leakCheck(t)
	_, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second, MaxConns: 2})
	for range 2 {
		_, w := rawSession(t, addr, goodHello("k", 16))
		require.Equal(t, wire.StatusOK, w.Status, w.Message)
	}
	_, w := rawSession(t, addr, goodHello("k", 16))
	assert.Equal(t, wire.StatusBusy, w.Status)
	assert.Contains(t, w.Message, "2 connections open")
}

// TestSlowlorisHandshake: a Hello trickled a byte at a time cannot hold a
// handshake slot past the handshake timeout.
func TestSlowlorisHandshake(t *testing.T) {
	leakCheck(t)
	_, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second, HandshakeTimeout: 500 * time.Millisecond})
	c := dialRaw(t, addr)
	hello := wire.AppendHello(nil, goodHello("k", 16))
	start := time.Now()
	var err error
	for i := 0; err == nil && i < len(hello)-1; i++ {
		err = c.send(hello[i : i+1])
		time.Sleep(100 * time.Millisecond)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, rerr := c.c.Read(make([]byte, 1))
	assert.True(t, err != nil || rerr != nil, "receiver must hang up")
	assert.Less(t, time.Since(start), 2*time.Second)
}

// TestVersionsArrayInBudget: an authorized Hello with 1-byte pages and
// 256 Mi pages asks for 256 MiB of image but 2 GiB of versions; the budget
// counts both and refuses before allocating anything.
func TestVersionsArrayInBudget(t *testing.T) {
	leakCheck(t)
	r, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 256 << 20, Token: "k", Timeout: 5 * time.Second})
	before := heldBytes.Load()
	_, w := rawSession(t, addr, wire.Hello{Version: wire.Version, PageSize: 1, Pages: 256 << 20, BatchPages: 1024, Token: "k"})
	assert.Equal(t, wire.StatusTooLarge, w.Status)
	assert.Contains(t, w.Message, "session needs 2.3 GiB (268435456 pages × 9 B/page")
	assert.Contains(t, w.Message, "--max-memory is 256.0 MiB")
	assert.Equal(t, before, heldBytes.Load(), "nothing may be allocated for a refused session")
	_, _, used := r.counts()
	assert.Zero(t, used)
}

// TestFrameBoundedAndFreed: a Batch header claiming 0xFFFFFFF0 bytes is
// refused before any allocation, the frame limit is what the Hello
// allowed, and everything the session held is freed when it closes.
func TestFrameBoundedAndFreed(t *testing.T) {
	leakCheck(t)
	r, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second})
	before := heldBytes.Load()
	c, w := rawSession(t, addr, goodHello("k", 64))
	require.Equal(t, wire.StatusOK, w.Status, w.Message)
	_, _, used := r.counts()
	assert.Positive(t, used)
	assert.Greater(t, heldBytes.Load(), before)
	require.NoError(t, c.send([]byte{byte(wire.TypeBatch), 0, 0, 0, 0xf0, 0xff, 0xff, 0xff}))
	f, err := c.next()
	require.NoError(t, err)
	require.Equal(t, wire.TypeError, f.Type)
	limit := wire.MaxBatchFrame(4096, 16)
	assert.Contains(t, string(f.Payload), "batch frame of 4294967280 bytes exceeds the limit of "+strconv.Itoa(limit))
	waitFor(t, "session memory released", func() bool { _, _, u := r.counts(); return u == 0 })
	assert.Equal(t, before, heldBytes.Load(), "the session's buffers must be freed when it closes")
}

// TestBatchLargerThanHello: a Batch with more pages than the Hello
// announced is refused even when it fits the frame limit (small pages
// sent as zero-page headers).
func TestBatchLargerThanHello(t *testing.T) {
	leakCheck(t)
	_, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second})
	h := goodHello("k", 1024)
	h.BatchPages = 2
	c, w := rawSession(t, addr, h)
	require.Equal(t, wire.StatusOK, w.Status, w.Message)
	bb := wire.NewBatchBuilder(4096, 100)
	for p := range uint64(100) {
		bb.AddZero(p, 1)
	}
	require.NoError(t, c.send(bb.Frame()))
	f, err := c.next()
	require.NoError(t, err)
	require.Equal(t, wire.TypeError, f.Type)
	assert.Contains(t, string(f.Payload), "batch of 100 pages: the hello allows 2")
}

// recorder forwards one connection to addr and records what the sender
// sent.
func recordSession(t *testing.T, addr string) (string, func() []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		buf  bytes.Buffer
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		src, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer src.Close()
		dst, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer dst.Close()
		go func() { _, _ = io.Copy(src, dst); src.Close() }()
		_, _ = io.Copy(io.MultiWriter(dst, &buf), src)
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), func() []byte { <-done; return buf.Bytes() }
}

// TestRecordedSessionDoesNotReplay: the bytes of a successful session,
// sent again, fail authentication (the nonce differs), and the token is
// not among them.
func TestRecordedSessionDoesNotReplay(t *testing.T) {
	leakCheck(t)
	_, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "correct horse", Timeout: 5 * time.Second})
	via, recorded := recordSession(t, addr)
	e := remoteEngine(via, 5*time.Second)
	e.Link.Token = "correct horse"
	res, err := e.Run(context.Background(), hotColdTrace(t, 256, 10, 4, 1, 4), newAlg(t, "xen-v2"), config(1e9))
	require.NoError(t, err)
	assert.Zero(t, res.LostPages)
	rec := recorded()
	require.NotEmpty(t, rec)
	assert.False(t, bytes.Contains(rec, []byte("correct horse")), "the token must not cross the wire")

	// The replay needs the recording up to its Auth frame: the receiver
	// refuses there. Sending the whole recording would race its refusal
	// (a close with bytes unread resets the connection mid-write).
	rd := wire.NewReader(bytes.NewReader(rec), len(rec))
	prefix := 0
	for {
		f, err := rd.Next()
		require.NoError(t, err, "the recording holds an Auth frame")
		prefix += wire.FrameHeaderBytes + len(f.Payload)
		if f.Type == wire.TypeAuth {
			break
		}
	}
	c := dialRaw(t, addr)
	require.NoError(t, c.send(rec[:prefix]))
	f, err := c.next()
	require.NoError(t, err)
	require.Equal(t, wire.TypeChallenge, f.Type)
	w := c.welcome()
	assert.Equal(t, wire.StatusBadToken, w.Status)
}

// TestFailedAuthRateLimited: wrong-token guesses are limited to the
// failure rate; once over it even the right token waits, and the budget
// refills.
func TestFailedAuthRateLimited(t *testing.T) {
	leakCheck(t)
	_, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second, FailRate: 2, FailBurst: 3})
	start := time.Now()
	var refused, limited int
	for range 20 {
		_, w := rawSession(t, addr, goodHello("guess", 16))
		switch {
		case w.Status == wire.StatusBadToken:
			refused++
		case w.Status == wire.StatusBusy && bytes.Contains([]byte(w.Message), []byte("too many failed authentications (at most 2 a second)")):
			limited++
		default:
			t.Fatalf("unexpected answer %v: %s", w.Status, w.Message)
		}
	}
	allowed := 3 + int(time.Since(start).Seconds()*2)
	assert.LessOrEqual(t, refused, allowed, "guesses beyond the rate were checked")
	assert.Positive(t, limited)
	_, w := rawSession(t, addr, goodHello("k", 16))
	assert.Equal(t, wire.StatusBusy, w.Status, "over the limit, the right token waits too")
	time.Sleep(600 * time.Millisecond)
	_, w = rawSession(t, addr, goodHello("k", 16))
	assert.Equal(t, wire.StatusOK, w.Status, w.Message)
}

// TestLoopbackLinkHasToken: the in-process receiver of --link loopback
// refuses a local process that does not hold the link's random token.
func TestLoopbackLinkHasToken(t *testing.T) {
	leakCheck(t)
	link, err := OpenLink(context.Background(), LinkConfig{Kind: LinkLoopback, Timeout: 2 * time.Second})
	require.NoError(t, err)
	defer link.Close()
	require.Len(t, link.Token(), 64)
	other, err := OpenLink(context.Background(), LinkConfig{Kind: LinkLoopback, Timeout: 2 * time.Second})
	require.NoError(t, err)
	defer other.Close()
	assert.NotEqual(t, link.Token(), other.Token(), "tokens must be drawn, not fixed")
	addr := link.(*localLink).addr
	for _, guess := range []string{"", "s3cret"} {
		_, w := rawSession(t, addr, wire.Hello{Version: wire.Version, PageSize: 4096, Pages: 1 << 18, BatchPages: 16, Token: guess})
		assert.Equal(t, wire.StatusBadToken, w.Status, "token %q", guess)
	}
	_, w := rawSession(t, addr, wire.Hello{Version: wire.Version, PageSize: 4096, Pages: 16, BatchPages: 16, Token: link.Token()})
	assert.Equal(t, wire.StatusOK, w.Status, w.Message)
}

// TestConnectionWaves: thousands of connections in waves, each sending a
// Hello and leaving, leave the receiver's memory where it was.
func TestConnectionWaves(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of connections")
	}
	leakCheck(t)
	r, addr := serveReceiver(t, ReceiverConfig{MaxMemory: 64 << 20, Token: "k", Timeout: 5 * time.Second})
	hello := wire.AppendHello(nil, goodHello("k", 16))
	for range 10 {
		var wg sync.WaitGroup
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write(hello)
			}()
		}
		wg.Wait()
		conns, hs, used := r.counts()
		assert.LessOrEqual(t, conns, DefaultMaxConns)
		assert.LessOrEqual(t, hs, DefaultMaxHandshakes)
		assert.Zero(t, used)
	}
	waitFor(t, "connections closed", func() bool { c, _, _ := r.counts(); return c == 0 })
}
