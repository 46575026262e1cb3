package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/cmd/microwiper/internal/units"
	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/replay/socket"
)

var serveCommand = command{
	name:     "serve",
	synopsis: "be the destination host of socket-engine migrations (replay -engine socket -link remote)",
	usage:    "[flags]",
	example: `microwiper serve -listen 127.0.0.1:7878 -max-memory 8GiB -token s3cret
microwiper replay -engine socket -link remote -remote 127.0.0.1:7878 -token s3cret -alg xen-precopy -bw 100Mbit trace.parquet`,
	setFlags: func(fs *flag.FlagSet) {
		fs.String("listen", "127.0.0.1:7878", "address to accept senders on (loopback by default)")
		fs.String("max-memory", "8GiB", "most memory held for all sessions together; larger requests are refused")
		fs.String("token", "", "shared token senders must present (-token on replay); empty accepts any sender")
		fs.String("timeout", "30s", "how long to wait for a sender's next frame before dropping the session")
	},
	run: runServe,
}

func runServe(ctx context.Context, cio *cmdIO, fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageErrorf("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	maxMem, err := units.Bytes(flagString(fs, "max-memory"))
	if err != nil || maxMem <= 0 {
		return usageErrorf("-max-memory %q: want a positive size such as 8GiB", flagString(fs, "max-memory"))
	}
	timeout, err := units.Duration(flagString(fs, "timeout"))
	if err != nil || timeout <= 0 {
		return usageErrorf("-timeout %q: want a positive duration such as 30s", flagString(fs, "timeout"))
	}
	addr := flagString(fs, "listen")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (-listen): %w", addr, err)
	}
	log := slog.New(slog.NewTextHandler(cio.stderr, nil))
	token := flagString(fs, "token")
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && token == "" {
		log.Warn("listening beyond loopback without -token: any host that reaches this port may fill -max-memory")
	}
	log.Info("serving", "listen", ln.Addr().String(), "max_memory", maxMem, "token", token != "", "timeout", timeout)
	r := socket.NewReceiver(socket.ReceiverConfig{MaxMemory: maxMem, Token: token, Timeout: timeout, Log: log})
	if err := r.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// The socket engine's flags on the replay subcommand. replay.go calls
// addSocketFlags from its setFlags and socketEngine while parsing.

func addSocketFlags(fs *flag.FlagSet) {
	fs.String("link", socket.LinkLoopback, "socket engine link: loopback (in-process receiver, userspace shaping), netns (namespace pair with kernel tbf; root) or remote (-remote)")
	fs.String("remote", "", "socket engine, -link remote: host:port of a 'microwiper serve'")
	fs.String("token", "", "socket engine, -link remote: the receiver's -token")
	fs.String("timeout", "30s", "socket engine: how long to wait for the peer to make progress before failing")
}

// socketEngine builds the socket engine from the flags. With -alg all it
// drops the bounds (oracle), which only the simulator computes.
func socketEngine(fs *flag.FlagSet, algs []string) (replay.Engine, []string, error) {
	lc := socket.LinkConfig{Kind: flagString(fs, "link"), Remote: flagString(fs, "remote"), Token: flagString(fs, "token")}
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
	timeout, err := units.Duration(flagString(fs, "timeout"))
	if err != nil || timeout <= 0 {
		return nil, nil, usageErrorf("-timeout %q: want a positive duration such as 30s", flagString(fs, "timeout"))
	}
	lc.Timeout = timeout
	var kept []string
	for _, name := range algs {
		a, err := algorithms.New(name)
		if err != nil {
			return nil, nil, usageErrorf("-alg: %v", err)
		}
		if _, ok := a.(algorithms.Policy); ok {
			kept = append(kept, name)
		} else if !strings.Contains(","+flagString(fs, "alg")+",", ",all,") {
			return nil, nil, usageErrorf("-alg %s: a bound computed from the future trace; only -engine sim runs it", name)
		}
	}
	// Warnings only: how the link differs from the request (no netem here,
	// so the engine emulates the RTT).
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return socket.Engine{Link: lc, Log: log}, kept, nil
}
