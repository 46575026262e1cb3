package socket

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/replay/wire"
)

// startReceiver serves cfg on a loopback port until the test ends and
// returns its address.
func startReceiver(t *testing.T, cfg ReceiverConfig) string {
	t.Helper()
	_, addr := serveReceiver(t, cfg)
	return addr
}

// serveReceiver is startReceiver returning the receiver too.
func serveReceiver(t *testing.T, cfg ReceiverConfig) (*Receiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveOn(t, cfg, ln), ln.Addr().String()
}

// serveOn serves cfg on ln until the test ends.
func serveOn(t *testing.T, cfg ReceiverConfig, ln net.Listener) *Receiver {
	t.Helper()
	r := NewReceiver(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return r
}

// proxy forwards one connection to addr. After limit bytes from the
// sender it either resets both sides (kill: the receiver process died) or
// stops reading from the sender (stall: the link went dead).
type proxy struct {
	addr  string
	limit int64
	stall bool

	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open []net.Conn
}

func startProxy(t *testing.T, addr string, limit int64, stall bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{addr: addr, limit: limit, stall: stall, ln: ln}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return ln.Addr().String()
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	p.open = append(p.open, c)
	p.mu.Unlock()
}

func (p *proxy) serve() {
	defer p.wg.Done()
	src, err := p.ln.Accept()
	if err != nil {
		return
	}
	dst, err := net.Dial("tcp", p.addr)
	if err != nil {
		src.Close()
		return
	}
	p.track(src)
	p.track(dst)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(src, dst)
	}()
	_, _ = io.CopyN(dst, src, p.limit)
	if p.stall {
		return // keep both open, read nothing more: the sender's writes block
	}
	// Like a killed process: the kernel resets its connections.
	for _, c := range []net.Conn{src, dst} {
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

func remoteEngine(addr string, timeout time.Duration) Engine {
	return Engine{Link: LinkConfig{Kind: LinkRemote, Remote: addr, Timeout: timeout}}
}

// TestReceiverKilled cuts the connection mid-stream: the run must end
// with a clear error well before the timeout, and the receiver must serve
// the next client.
func TestReceiverKilled(t *testing.T) {
	leakCheck(t)
	addr := startReceiver(t, ReceiverConfig{MaxMemory: 1 << 30, Timeout: 5 * time.Second})
	tr := hotColdTrace(t, 1024, 100, 16, 2, 3)
	start := time.Now()
	_, err := remoteEngine(startProxy(t, addr, 1<<20, false), 5*time.Second).Run(context.Background(), tr, newAlg(t, "stop-and-copy"), config(20e6))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "receiver closed the connection (killed or gone)")
	assert.Less(t, time.Since(start), 4*time.Second)

	res, err := remoteEngine(addr, 5*time.Second).Run(context.Background(), tr, newAlg(t, "xen-precopy"), config(1e9))
	require.NoError(t, err, "the receiver must keep serving")
	assert.Zero(t, res.LostPages)
}

// TestLinkStalled stops forwarding mid-stream: the run must fail with the
// stall error after about the timeout, never hang.
func TestLinkStalled(t *testing.T) {
	leakCheck(t)
	addr := startReceiver(t, ReceiverConfig{MaxMemory: 1 << 30, Timeout: 5 * time.Second})
	tr := hotColdTrace(t, 1024, 100, 16, 2, 3)
	start := time.Now()
	_, err := remoteEngine(startProxy(t, addr, 1<<20, true), time.Second).Run(context.Background(), tr, newAlg(t, "xen-precopy"), config(1e9))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "link stalled: no progress for 1s (--timeout)")
	assert.Less(t, time.Since(start), 10*time.Second)
}

// TestNetnsLinkDown takes the veth down mid-run: a real dead link.
func TestNetnsLinkDown(t *testing.T) {
	needNetns(t)
	if testing.Short() {
		t.Skip("stalls for the timeout; skipped with -short")
	}
	leakCheck(t)
	tr := hotColdTrace(t, 2048, 100, 16, 2, 3)
	lc := LinkConfig{Kind: LinkNetns, Timeout: time.Second}
	ctx := context.Background()
	onLink = func(l Link) {
		pair := l.(*localLink).pair
		time.AfterFunc(200*time.Millisecond, func() { _ = pair.SetUp(ctx, false) })
	}
	defer func() { onLink = nil }()
	start := time.Now()
	_, err := Engine{Link: lc}.Run(ctx, tr, newAlg(t, "stop-and-copy"), config(10e6))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "link stalled")
	assert.Less(t, time.Since(start), 10*time.Second)
}

// TestHandshakeRefused covers every refusal: each ends with its own clear
// error, and the receiver goes on serving.
func TestHandshakeRefused(t *testing.T) {
	leakCheck(t)
	addr := startReceiver(t, ReceiverConfig{MaxMemory: 8 << 20, Token: "sesame", Timeout: 2 * time.Second})
	small := hotColdTrace(t, 256, 10, 4, 1, 4)
	big := hotColdTrace(t, 4096, 10, 4, 1, 4) // 16 MiB > 8 MiB

	t.Run("oversized memory", func(t *testing.T) {
		e := remoteEngine(addr, 2*time.Second)
		e.Link.Token = "sesame"
		_, err := e.Run(context.Background(), big, newAlg(t, "xen-v2"), config(1e9))
		require.ErrorIs(t, err, ErrHandshake)
		assert.Contains(t, err.Error(), "memory request too large: session needs 18.3 MiB (4096 pages × 4104 B/page + 2.3 MiB of buffers); --max-memory is 8.0 MiB")
	})
	t.Run("bad token", func(t *testing.T) {
		_, err := remoteEngine(addr, 2*time.Second).Run(context.Background(), small, newAlg(t, "xen-v2"), config(1e9))
		require.ErrorIs(t, err, ErrHandshake)
		assert.Contains(t, err.Error(), "authentication failed: the sender's --token does not match the receiver's")
	})
	rawTests := []struct {
		name string
		send []byte
		want string
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "unknown frame type 71"},
		{"bad version", wire.AppendHello(nil, wire.Hello{Version: 99, PageSize: 4096, Pages: 1, BatchPages: 1, Token: "sesame"}), "sender speaks version 99"},
		{"version 1 sender", v1Hello("sesame"), "sender speaks version 1, this receiver 2"},
		{"bad page size", wire.AppendHello(nil, wire.Hello{Version: wire.Version, PageSize: 1000, Pages: 1, BatchPages: 1}), "page size 1000"},
		{"batch before hello", wire.AppendFinish(nil), "first frame is finish, want hello"},
		{"oversized frame", []byte{byte(wire.TypeHello), 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, "exceeds the limit"},
	}
	for _, tc := range rawTests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write(tc.send)
			require.NoError(t, err)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			f, err := wire.NewReader(c, wire.MaxVerifyFrame).Next()
			require.NoError(t, err)
			require.Equal(t, wire.TypeWelcome, f.Type)
			w, err := wire.ParseWelcome(f.Payload)
			require.NoError(t, err)
			assert.NotEqual(t, wire.StatusOK, w.Status)
			assert.Contains(t, w.Message, tc.want)
		})
	}
	t.Run("budget held by another session", func(t *testing.T) {
		first, w := rawSession(t, addr, wire.Hello{Version: wire.Version, PageSize: 4096, Pages: 1536, BatchPages: 1, Token: "sesame"}) // 6 MiB of the 8 MiB budget
		defer first.c.Close()
		require.Equal(t, wire.StatusOK, w.Status, w.Message)
		second, w := rawSession(t, addr, wire.Hello{Version: wire.Version, PageSize: 4096, Pages: 1024, BatchPages: 1, Token: "sesame"}) // 4 MiB more
		defer second.c.Close()
		assert.Equal(t, wire.StatusUnavailable, w.Status)
		assert.Contains(t, w.Message, "held by other sessions")
	})
	t.Run("silent client", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		start := time.Now()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Read(make([]byte, 1))
		assert.True(t, errors.Is(err, io.EOF), "receiver must hang up on a silent client, got %v", err)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("next client served", func(t *testing.T) {
		e := remoteEngine(addr, 2*time.Second)
		e.Link.Token = "sesame"
		res, err := e.Run(context.Background(), small, newAlg(t, "microwiper"), config(1e9))
		require.NoError(t, err)
		assert.Zero(t, res.LostPages)
	})
}

// TestLostUpdateDetected breaks the receiver's memory after the final
// round and checks that verification lists the page.
func TestLostUpdateDetected(t *testing.T) {
	leakCheck(t)
	tr := hotColdTrace(t, 256, 10, 4, 1, 5)
	corruptPage = 77
	defer func() { corruptPage = -1 }()
	res, err := Engine{Link: LinkConfig{Kind: LinkLoopback}}.Run(context.Background(), tr, newAlg(t, "xen-v2"), config(1e9))
	require.ErrorIs(t, err, ErrLostUpdates)
	assert.Contains(t, err.Error(), "1 of 256 pages differ at the destination: 77")
	require.NotNil(t, res)
	assert.Equal(t, int64(1), res.LostPages)
}

// TestCancel interrupts a slow run: it must return promptly with the
// context's error and leave nothing behind.
func TestCancel(t *testing.T) {
	leakCheck(t)
	tr := hotColdTrace(t, 1024, 100, 16, 2, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Engine{Link: LinkConfig{Kind: LinkLoopback}}.Run(ctx, tr, newAlg(t, "stop-and-copy"), config(10e6))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestRejectsBadConfig(t *testing.T) {
	tr := hotColdTrace(t, 64, 2, 1, 1, 7)
	e := Engine{Link: LinkConfig{Kind: LinkLoopback}}
	_, err := e.Run(context.Background(), tr, newAlg(t, "oracle"), config(1e9))
	assert.ErrorContains(t, err, "only --engine sim runs it")
	cfg := config(1e9)
	cfg.Link.HeaderBytes = 32
	_, err = e.Run(context.Background(), tr, newAlg(t, "xen-v2"), cfg)
	assert.ErrorContains(t, err, "--header 16")
	_, err = Engine{Link: LinkConfig{Kind: "carrier-pigeon"}}.Run(context.Background(), tr, newAlg(t, "xen-v2"), config(1e9))
	assert.ErrorContains(t, err, `link "carrier-pigeon": want loopback, netns, remote`)
	_, err = Engine{Link: LinkConfig{Kind: LinkRemote}}.Run(context.Background(), tr, newAlg(t, "xen-v2"), config(1e9))
	assert.ErrorContains(t, err, "remote link needs --remote host:port")
}

var _ = replay.Sim{}
