package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/replay/socket"
)

var serveCommand = command{
	name:     "serve",
	synopsis: "be the destination host of socket-engine migrations (replay -engine socket -link remote)",
	usage:    "[flags]",
	example: `microwiper serve -listen 127.0.0.1:7878 -max-memory 8GiB -token s3cret
microwiper replay -engine socket -link remote -remote 127.0.0.1:7878 -token s3cret -alg xen-precopy -bw 100Mbit trace.parquet`,
	bind: withOptions(runServe),
}

// peerOptions are the flags both ends of a socket link share.
type peerOptions struct {
	Token   string
	Timeout time.Duration
}

func (o *peerOptions) bind(fs *flag.FlagSet, tokenUsage, timeoutUsage string) {
	fs.StringVar(&o.Token, "token", "", tokenUsage)
	durationVar(fs, &o.Timeout, "timeout", 30*time.Second, timeoutUsage)
}

// serveOptions are the flags of serve.
type serveOptions struct {
	Listen        string
	MaxMemory     int64
	MaxConns      int
	MaxHandshakes int
	Peer          peerOptions
}

func (o *serveOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:7878", "address to accept senders on (loopback by default)")
	bytesVar(fs, &o.MaxMemory, "max-memory", 8<<30, "most memory held for all sessions together (images, 8 B/page of versions, buffers); larger requests are refused")
	fs.IntVar(&o.MaxConns, "max-conns", socket.DefaultMaxConns, "most connections open at once; more are told the receiver is busy")
	fs.IntVar(&o.MaxHandshakes, "max-handshakes", socket.DefaultMaxHandshakes, "most connections not yet authenticated at once (each has 10s to authenticate)")
	o.Peer.bind(fs, "shared token senders prove they hold (-token on replay) by answering a challenge; it never crosses the wire, but the link is not encrypted",
		"how long to wait for a sender's next frame before dropping the session")
}

func runServe(ctx context.Context, cio *cmdIO, o *serveOptions, args []string) error {
	if len(args) > 0 {
		return usageErrorf("serve takes no arguments, got %q", strings.Join(args, " "))
	}
	if o.MaxMemory <= 0 {
		return usageErrorf("-max-memory %d: want a positive size such as 8GiB", o.MaxMemory)
	}
	if o.Peer.Timeout <= 0 {
		return usageErrorf("-timeout %v: want a positive duration such as 30s", o.Peer.Timeout)
	}
	if o.MaxConns <= 0 || o.MaxHandshakes <= 0 {
		return usageErrorf("-max-conns %d, -max-handshakes %d: want positive counts", o.MaxConns, o.MaxHandshakes)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (-listen): %w", o.Listen, err)
	}
	log := slog.New(slog.NewTextHandler(cio.stderr, nil))
	token := o.Peer.Token
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && token == "" {
		log.Warn("listening beyond loopback without -token: any host that reaches this port may fill -max-memory")
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log.Warn("the link is not encrypted: page contents cross the network in clear (tunnel it across untrusted networks)")
	}
	log.Info("serving", "listen", ln.Addr().String(), "max_memory", o.MaxMemory, "token", token != "", "timeout", o.Peer.Timeout,
		"max_conns", o.MaxConns, "max_handshakes", o.MaxHandshakes)
	r := socket.NewReceiver(socket.ReceiverConfig{MaxMemory: o.MaxMemory, Token: token, Timeout: o.Peer.Timeout, Log: log,
		MaxConns: o.MaxConns, MaxHandshakes: o.MaxHandshakes})
	if err := r.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// socketOptions are the socket engine's flags on replay.
type socketOptions struct {
	Link   string
	Remote string
	Peer   peerOptions
}

func (o *socketOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Link, "link", socket.LinkLoopback, "socket engine link: loopback (in-process receiver, userspace shaping), netns (namespace pair with kernel tbf; root) or remote (-remote)")
	fs.StringVar(&o.Remote, "remote", "", "socket engine, -link remote: host:port of a 'microwiper serve'")
	o.Peer.bind(fs, "socket engine, -link remote: the receiver's -token",
		"socket engine: how long to wait for the peer to make progress before failing")
}

// engine builds the socket engine. With -alg all (algFlag) it drops the
// bounds (oracle), which only the simulator computes.
func (o *socketOptions) engine(algs []string, algFlag string) (replay.Engine, []string, error) {
	lc := socket.LinkConfig{Kind: o.Link, Remote: o.Remote, Token: o.Peer.Token}
	switch lc.Kind {
	case socket.LinkLoopback, socket.LinkNetns:
		if lc.Remote != "" {
			return nil, nil, usageErrorf("-remote is for -link remote, not -link %s", lc.Kind)
		}
	case socket.LinkRemote:
		if lc.Remote == "" {
			return nil, nil, usageErrorf("-link remote needs -remote host:port (a running 'microwiper serve')")
		}
	default:
		return nil, nil, usageErrorf("-link %q: want loopback, netns or remote", lc.Kind)
	}
	if o.Peer.Timeout <= 0 {
		return nil, nil, usageErrorf("-timeout %v: want a positive duration such as 30s", o.Peer.Timeout)
	}
	lc.Timeout = o.Peer.Timeout
	var kept []string
	for _, name := range algs {
		a, err := algorithms.New(name)
		if err != nil {
			return nil, nil, usageErrorf("-alg: %v", err)
		}
		if _, ok := a.(algorithms.Policy); ok {
			kept = append(kept, name)
		} else if !strings.Contains(","+algFlag+",", ",all,") {
			return nil, nil, usageErrorf("-alg %s: a bound computed from the future trace; only -engine sim runs it", name)
		}
	}
	// Warnings only: how the link differs from the request (no netem here,
	// so the engine emulates the RTT).
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return socket.Engine{Link: lc, Log: log}, kept, nil
}
