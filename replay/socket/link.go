package socket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/microwiper/microwiper/replay/netns"
)

// Link kinds for LinkConfig.Kind (--link).
const (
	LinkLoopback = "loopback"
	LinkNetns    = "netns"
	LinkRemote   = "remote"
)

// LinkConfig chooses and shapes the link.
type LinkConfig struct {
	// Kind is loopback, netns or remote.
	Kind string
	// Remote is the host:port of a `microwiper serve` for Kind remote.
	Remote string
	// Token is the shared token a remote receiver asks for.
	Token string
	// BandwidthBps is the link rate; 0 leaves the link unshaped.
	BandwidthBps int64
	// RTT is the round-trip time to add per round where the link has less.
	RTT time.Duration
	// Timeout bounds every wait on the peer.
	Timeout time.Duration
}

// Link connects the sender to a receiver.
type Link interface {
	// Name is the kind of link ("netns").
	Name() string
	// Dial opens a connection to the receiver.
	Dial(ctx context.Context) (net.Conn, error)
	// KernelShaped reports that the kernel limits the link to the
	// bandwidth, so the sender needs no token bucket of its own.
	KernelShaped() bool
	// EmulatedRTT is the delay the engine adds per round trip because the
	// link itself does not delay by the configured RTT.
	EmulatedRTT() time.Duration
	// Note says how the link differs from what was asked, "" if it does not.
	Note() string
	// Token is the token the receiver asks for: LinkConfig.Token for a
	// remote receiver, a random one drawn for an in-process receiver, so
	// no other local process can open sessions on it.
	Token() string
	// Close stops in-process receivers and removes what the link created.
	Close() error
}

// OpenLink builds the link cfg describes. Close it when done.
func OpenLink(ctx context.Context, cfg LinkConfig) (Link, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch cfg.Kind {
	case LinkLoopback, "":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("loopback link: %w", err)
		}
		l := &localLink{name: LinkLoopback, rtt: cfg.RTT, addr: ln.Addr().String()}
		if err := l.serve(ln, cfg.Timeout); err != nil {
			ln.Close()
			return nil, fmt.Errorf("loopback link: %w", err)
		}
		return l, nil
	case LinkNetns:
		pair, err := netns.Create(ctx, netns.Config{BandwidthBps: cfg.BandwidthBps, RTT: cfg.RTT})
		if err != nil {
			return nil, fmt.Errorf("netns link: %w", err)
		}
		ln, err := pair.Listen(0)
		if err != nil {
			pair.Close()
			return nil, fmt.Errorf("netns link: listen in %s: %w", pair.Dst, err)
		}
		l := &localLink{name: LinkNetns, pair: pair, addr: ln.Addr().String(), kernel: pair.Shaped}
		if !pair.Delayed {
			l.rtt = cfg.RTT
			if cfg.RTT > 0 {
				l.note = pair.DelayNote + ": RTT emulated by the engine"
			}
		}
		if err := l.serve(ln, cfg.Timeout); err != nil {
			ln.Close()
			pair.Close()
			return nil, fmt.Errorf("netns link: %w", err)
		}
		return l, nil
	case LinkRemote:
		if cfg.Remote == "" {
			return nil, fmt.Errorf("remote link needs --remote host:port (a running 'microwiper serve')")
		}
		return &remoteLink{addr: cfg.Remote, rtt: cfg.RTT, token: cfg.Token}, nil
	}
	return nil, fmt.Errorf("link %q: want %s", cfg.Kind, strings.Join([]string{LinkLoopback, LinkNetns, LinkRemote}, ", "))
}

// localLink is a link to an in-process receiver, on loopback or in a
// namespace pair.
type localLink struct {
	name   string
	addr   string
	pair   *netns.Pair
	kernel bool
	rtt    time.Duration
	note   string
	token  string

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error
	// Receiver is exposed for tests that need to break it.
	recv *Receiver
}

func (l *localLink) serve(ln net.Listener, timeout time.Duration) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("draw the in-process receiver's token: %w", err)
	}
	l.token = hex.EncodeToString(key[:])
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	// The sender already bounds memory; the in-process receiver takes
	// whatever its one authenticated sender asks for.
	l.recv = NewReceiver(ReceiverConfig{MaxMemory: 1 << 62, Token: l.token, Timeout: timeout})
	go func() {
		defer close(l.done)
		_ = l.recv.Serve(ctx, ln)
	}()
	return nil
}

func (l *localLink) Name() string { return l.name }

func (l *localLink) Dial(ctx context.Context) (net.Conn, error) {
	if l.pair != nil {
		return l.pair.Dial(ctx, l.addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", l.addr)
}

func (l *localLink) KernelShaped() bool         { return l.kernel }
func (l *localLink) EmulatedRTT() time.Duration { return l.rtt }
func (l *localLink) Note() string               { return l.note }
func (l *localLink) Token() string              { return l.token }

func (l *localLink) Close() error {
	l.once.Do(func() {
		l.cancel()
		<-l.done
		if l.pair != nil {
			l.err = l.pair.Close()
		}
	})
	return l.err
}

// remoteLink is a link to `microwiper serve` on another host; its real
// RTT is whatever the network has, and --rtt adds to it.
type remoteLink struct {
	addr  string
	rtt   time.Duration
	token string
}

func (l *remoteLink) Name() string { return LinkRemote }

func (l *remoteLink) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to receiver %s (--remote): %w", l.addr, err)
	}
	return c, nil
}

func (l *remoteLink) KernelShaped() bool         { return false }
func (l *remoteLink) EmulatedRTT() time.Duration { return l.rtt }
func (l *remoteLink) Note() string               { return "" }
func (l *remoteLink) Close() error               { return nil }
func (l *remoteLink) Token() string              { return l.token }
