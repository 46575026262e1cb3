package shaper

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/microwiper/microwiper/internal/ctxtime"
)

// DefaultBurst is the least burst used when New gets 0: one write chunk,
// so a writer sleeps at most once per chunk.
const DefaultBurst = 64 << 10

// burstTime is the default burst in time: longer than a timer's overshoot
// (a wake-up later than the burst loses tokens for good), short enough that
// credit banked while idle barely shortens a measured transfer.
const burstTime = 4 * time.Millisecond

// catchUp bounds how far a late writer may catch up on its schedule: a
// thread starved of the CPU on a loaded machine can lose hundreds of
// milliseconds, which a real link's queue would have spent sending.
const catchUp = time.Second

// Bucket is a token bucket that refills at a fixed rate. It is safe for
// concurrent use.
type Bucket struct {
	nsPerByte float64
	burst     time.Duration

	mu        sync.Mutex
	tat       time.Time // when the bucket would be full again if nothing more were sent
	streaming bool      // no Idle since the last reservation
	now       func() time.Time
}

// New returns a bucket passing bitsPerSec bits per second with a burst of
// burstBytes bytes (when 0: 4 ms of traffic, at least DefaultBurst).
func New(bitsPerSec float64, burstBytes int) (*Bucket, error) {
	if !(bitsPerSec > 0) {
		return nil, fmt.Errorf("shaper rate %v bit/s: want a positive rate", bitsPerSec)
	}
	if burstBytes < 0 {
		return nil, fmt.Errorf("shaper burst %d bytes: want zero (default) or positive", burstBytes)
	}
	if burstBytes == 0 {
		burstBytes = max(DefaultBurst, int(bitsPerSec/8*burstTime.Seconds()))
	}
	ns := 8e9 / bitsPerSec
	return &Bucket{nsPerByte: ns, burst: time.Duration(float64(burstBytes) * ns), now: time.Now}, nil
}

// Reserve charges n bytes and returns how long the caller must wait before
// sending them.
func (b *Bucket) Reserve(n int) time.Duration {
	return b.reserve(time.Duration(float64(n) * b.nsPerByte))
}

// Hold keeps the link busy for d without sending, as a sender's own work
// between two writes would when the model charges it serially with the
// transfer (QEMU reading a page to find it zero): the next write waits d
// longer. A writer that slept d instead would find the schedule behind
// and catch up on it, overlapping the work with the transfer.
func (b *Bucket) Hold(d time.Duration) {
	if d > 0 {
		b.reserve(d)
	}
}

// reserve takes d of link time and returns how long the caller must wait
// before using it.
func (b *Bucket) reserve(d time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	// A streaming writer that fell behind (a late timer, a descheduled
	// thread) was not idle: a real link would have drained its queue
	// meanwhile, so it keeps the schedule and catches up.
	if b.tat.Before(now) && !(b.streaming && now.Sub(b.tat) < catchUp) {
		b.tat = now
	}
	b.streaming = true
	b.tat = b.tat.Add(d)
	return b.tat.Sub(now) - b.burst
}

// Idle tells the bucket its writer stopped on purpose (waiting for a
// reply, sleeping): the time until its next write is idleness, which banks
// at most the burst, not lateness to catch up on.
func (b *Bucket) Idle() {
	b.mu.Lock()
	b.streaming = false
	b.mu.Unlock()
}

// Drain blocks until the bytes reserved so far are through: until a link
// at the bucket's rate would have sent them, which the burst lets a writer
// run ahead of. A writer that decides next (what to send, whether to stop)
// then sees the moment the link is at, not one up to a burst earlier.
func (b *Bucket) Drain(ctx context.Context) error {
	return ctxtime.Sleep(ctx, b.ahead())
}

// ahead is how far the bytes reserved so far run ahead of the link.
func (b *Bucket) ahead() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.tat.Sub(b.now()), 0)
}

// Wait blocks until n bytes may be sent, or ctx ends.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	return ctxtime.Sleep(ctx, b.Reserve(n))
}

// chunk is the most a Writer passes on per wait, so a large write is
// spread over time instead of leaving in one burst after one long sleep.
const chunk = 64 << 10

// Writer shapes the writes to W through a Bucket.
type Writer struct {
	// W receives the bytes.
	W io.Writer
	// B paces them; nil passes them unshaped.
	B *Bucket
	// Ctx cancels a wait; nil means never.
	Ctx context.Context
}

// Write writes p in chunks, waiting for the bucket before each.
func (w *Writer) Write(p []byte) (int, error) {
	if w.B == nil {
		return w.W.Write(p)
	}
	ctx := w.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	done := 0
	for done < len(p) {
		n := min(len(p)-done, chunk)
		if err := w.B.Wait(ctx, n); err != nil {
			return done, fmt.Errorf("shaped write: %w", err)
		}
		m, err := w.W.Write(p[done : done+n])
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
