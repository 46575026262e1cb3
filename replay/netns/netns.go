package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "mwlink-"

// The pair's addresses. They exist only inside the pair's namespaces.
const (
	SrcAddr = "10.199.0.1"
	DstAddr = "10.199.0.2"
)

// ErrNotPermitted is wrapped when the process may not create namespaces.
var ErrNotPermitted = errors.New("netns link needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): run as root or use --link loopback")

// ErrUnsupported is returned on systems without Linux network namespaces.
var ErrUnsupported = errors.New("netns link needs Linux network namespaces: use --link loopback or --link remote")

// Config shapes the link.
type Config struct {
	// BandwidthBps is the tbf rate in bits per second of payload; 0 leaves
	// the link unshaped.
	BandwidthBps int64
	// RTT is the round-trip delay netem adds (half in each direction);
	// 0 adds none.
	RTT time.Duration
}

// Pair is a created link.
type Pair struct {
	// Src and Dst name the sender's and the receiver's namespaces.
	Src, Dst string
	// Shaped reports that tbf limits the Src→Dst direction.
	Shaped bool
	// Delayed reports that netem adds Config.RTT; when false, DelayNote
	// says why and the engine must emulate the RTT itself.
	Delayed   bool
	DelayNote string

	srcDev    string
	closeOnce sync.Once
	closeErr  error
}

var seq atomic.Int64

// geteuid is replaced in tests.
var geteuid = os.Geteuid

// Available reports why Create cannot work here, or nil.
func Available() error {
	if !supported {
		return ErrUnsupported
	}
	if geteuid() != 0 {
		return ErrNotPermitted
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netns link needs %s from iproute2 (apt-get install iproute2): %w", tool, err)
		}
	}
	return nil
}

// Create builds the namespaces, the veth pair, addresses and qdiscs. On
// any error it removes what it built.
func Create(ctx context.Context, cfg Config) (p *Pair, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	RemoveStale(ctx)
	n := seq.Add(1)
	base := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), n)
	p = &Pair{Src: base + "-src", Dst: base + "-dst", srcDev: fmt.Sprintf("mws%d", n), DelayNote: "no delay asked"}
	dstDev := fmt.Sprintf("mwd%d", n)
	defer func() {
		if err != nil {
			_ = p.Close()
			p = nil
		}
	}()
	steps := [][]string{
		{"ip", "netns", "add", p.Src},
		{"ip", "netns", "add", p.Dst},
		{"ip", "link", "add", p.srcDev, "netns", p.Src, "type", "veth", "peer", "name", dstDev, "netns", p.Dst},
		{"ip", "-n", p.Src, "addr", "add", SrcAddr + "/30", "dev", p.srcDev},
		{"ip", "-n", p.Dst, "addr", "add", DstAddr + "/30", "dev", dstDev},
		{"ip", "-n", p.Src, "link", "set", p.srcDev, "up"},
		{"ip", "-n", p.Dst, "link", "set", dstDev, "up"},
		{"ip", "-n", p.Src, "link", "set", "lo", "up"},
		{"ip", "-n", p.Dst, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			if os.IsPermission(err) || strings.Contains(err.Error(), "Operation not permitted") {
				return p, fmt.Errorf("%w: %v", ErrNotPermitted, err)
			}
			return p, err
		}
	}
	// Half the RTT on each side's egress, so data and acks both pay.
	parent := "root"
	if cfg.RTT > 0 {
		half := strconv.FormatInt(int64(cfg.RTT/2/time.Microsecond), 10) + "us"
		err1 := run(ctx, "ip", "netns", "exec", p.Src, "tc", "qdisc", "add", "dev", p.srcDev, "root", "handle", "1:", "netem", "delay", half, "limit", "100000")
		err2 := error(nil)
		if err1 == nil {
			err2 = run(ctx, "ip", "netns", "exec", p.Dst, "tc", "qdisc", "add", "dev", dstDev, "root", "netem", "delay", half, "limit", "100000")
		}
		switch {
		case err1 == nil && err2 == nil:
			p.Delayed, p.DelayNote, parent = true, "", "parent 1:1"
		case err1 != nil:
			p.DelayNote = "kernel netem unavailable (" + firstLine(err1) + ")"
		default:
			return p, err2
		}
	}
	if cfg.BandwidthBps > 0 {
		args := append([]string{"ip", "netns", "exec", p.Src, "tc", "qdisc", "add", "dev", p.srcDev}, strings.Fields(parent)...)
		args = append(args, tbfArgs(cfg.BandwidthBps)...)
		if err := run(ctx, args...); err != nil {
			return p, fmt.Errorf("kernel tbf for the netns link: %w", err)
		}
		p.Shaped = true
	}
	return p, nil
}

// wireOverhead is the share of a full-size veth frame that is payload:
// 1500-byte MTU minus IPv4 (20) and TCP with timestamps (32) over the frame
// plus Ethernet header (14). tbf charges whole frames, so the rate is raised
// by its inverse to give the payload the configured bandwidth.
const wireOverhead = float64(1500-20-32) / float64(1500+14)

// tbfArgs returns the tbf parameters for a payload rate: a burst of at least
// 2 ms of traffic (and 64 KiB, above any GSO segment) and a queue of 100 ms
// and at least 16 MiB, more than the sender's socket buffer, so tbf never
// drops. A short queue drops a tenth of the packets of one TCP stream at
// 100 Mbit/s (retransmissions cost several percent of the rate), and a
// dropped tail costs a retransmission timeout of 200 ms or more, inside a
// measured downtime. A long queue distorts nothing: the engine waits for
// delivery before each batch, so no queue stands between a policy and the
// wire.
func tbfArgs(bps int64) []string {
	rate := int64(float64(bps) / wireOverhead)
	burst := max(rate/8/500, 64<<10)
	limit := max(rate/8/10, 16<<20)
	return []string{"handle", "10:", "tbf", "rate", strconv.FormatInt(rate, 10) + "bit",
		"burst", strconv.FormatInt(burst, 10), "limit", strconv.FormatInt(limit, 10)}
}

// SetUp brings the sender's side of the veth up or down; down stalls the
// link (tests use it to cut the wire without closing sockets).
func (p *Pair) SetUp(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run(ctx, "ip", "-n", p.Src, "link", "set", p.srcDev, state)
}

// Close removes both namespaces (and with them the veth pair and qdiscs).
// It is safe to call more than once.
func (p *Pair) Close() error {
	p.closeOnce.Do(func() {
		// A fresh context: cleanup must run even when the run was cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		for _, ns := range []string{p.Src, p.Dst} {
			if exists(ns) {
				if err := run(ctx, "ip", "netns", "del", ns); err != nil {
					errs = append(errs, err)
				}
			}
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// Listen opens a TCP listener inside the receiver's namespace.
func (p *Pair) Listen(port int) (net.Listener, error) {
	var ln net.Listener
	err := Do(p.Dst, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(DstAddr, strconv.Itoa(port)))
		return err
	})
	return ln, err
}

// Dial connects from the sender's namespace to addr (in the receiver's).
func (p *Pair) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(p.Src, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// RemoveStale deletes namespaces this package created in processes that no
// longer run. Errors are ignored: it is housekeeping.
func RemoveStale(ctx context.Context) {
	for _, ns := range List() {
		rest := strings.TrimPrefix(ns, Prefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if processGone(pid) {
			_ = run(ctx, "ip", "netns", "del", ns)
		}
	}
}

// List returns the namespaces of this package that exist now.
func List() []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), Prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func exists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

func run(ctx context.Context, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %s: %w", strings.Join(args, " "), strings.TrimSpace(out.String()), err)
	}
	return nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
