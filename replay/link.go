package replay

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/microwiper/microwiper/results"
)

// Defaults of --rtt and --resume-overhead, from measurement (docs/DESIGN.md,
// "Time model"). DefaultRTT is the TCP round trip on loopback, the link
// against which the engines were checked with QEMU: a 24-byte message and
// its reply took 13 µs median, 17.5 µs at the 90th percentile (20,000
// exchanges on the 2-vCPU development VM under load 10), rounded up.
// DefaultResumeOverhead is 0: QEMU's reported downtime on loopback was the
// final round's transfer with no fixed part that could be told apart.
const (
	DefaultRTTNS            = int64(20 * time.Microsecond)
	DefaultResumeOverheadNS = 0
)

// Link is the network a migration runs over.
type Link struct {
	// Bps is the bandwidth in bits per second.
	Bps int64
	// RTTNS is the round-trip time. Live rounds are pipelined over one
	// stream and pay none; the switch-over pays one.
	RTTNS int64
	// HeaderBytes is the framing sent with every page (a zero page under
	// zero-page detection costs this alone).
	HeaderBytes int64
}

// Check reports the first bad field.
func (l Link) Check() error {
	switch {
	case l.Bps <= 0:
		return fmt.Errorf("bandwidth %d bit/s: want a positive rate", l.Bps)
	case l.RTTNS < 0 || l.RTTNS > MaxRTTNS:
		return fmt.Errorf("rtt %v: want 0 to %v", time.Duration(l.RTTNS), time.Duration(MaxRTTNS))
	case l.HeaderBytes < 0 || l.HeaderBytes > 1<<20:
		return fmt.Errorf("header %d bytes: want 0 to 1MiB", l.HeaderBytes)
	}
	return nil
}

// Name is the bandwidth written the way people type it ("1Gbit").
func (l Link) Name() string { return results.FormatBps(l.Bps) }

// transferNS is the time to send n units of b bits at bps: floor(n·b·1e9 /
// bps), in 128-bit arithmetic so that no product overflows.
func transferNS(n, b, bps int64) int64 {
	hi, lo := bits.Mul64(uint64(n), uint64(b))
	hi2, lo2 := bits.Mul64(lo, 1e9)
	hi = hi*1e9 + hi2
	if hi >= uint64(bps) {
		return 1<<63 - 1
	}
	q, _ := bits.Div64(hi, lo2, uint64(bps))
	if q > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(q)
}

// pacer gives the start time of each page of a round: page k starts at
// start + floor(bits before it · 1e9 / bps). It adds page costs with a
// remainder instead of dividing, so a round costs no division a page.
type pacer struct {
	bps      int64
	q, r     int64 // elapsed ns and remainder (in units of 1/bps ns)
	dqF, drF int64 // one full page
	dqZ, drZ int64 // one header-only page
}

func newPacer(bps, fullBits, zeroBits int64) pacer {
	return pacer{bps: bps,
		dqF: fullBits * 1e9 / bps, drF: fullBits * 1e9 % bps,
		dqZ: zeroBits * 1e9 / bps, drZ: zeroBits * 1e9 % bps}
}

// withZeroScan adds the source's own time per zero page
// (algorithms.Traits.ZeroPageNS) to a header-only page's cost.
func (p pacer) withZeroScan(ns int64) pacer {
	p.dqZ += ns
	return p
}

func (p *pacer) full() { p.advance(p.dqF, p.drF) }

func (p *pacer) zero() { p.advance(p.dqZ, p.drZ) }

// advance adds one page's cost, carrying the remainder into whole ns.
func (p *pacer) advance(dq, dr int64) {
	p.q += dq
	p.r += dr
	if p.r >= p.bps {
		p.r -= p.bps
		p.q++
	}
}
