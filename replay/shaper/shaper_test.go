package shaper

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
		want  string
	}{
		{0, 0, "want a positive rate"},
		{-1, 0, "want a positive rate"},
		{1e6, -5, "burst -5 bytes"},
	} {
		_, err := New(tc.rate, tc.burst)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// TestReserveSchedule checks the GCRA arithmetic on a fake clock: at 8 Mbit/s
// (1 byte/µs) with a 1000-byte burst, the first 1000 bytes pass at once and
// each further byte costs 1 µs.
func TestReserveSchedule(t *testing.T) {
	b, err := New(8e6, 1000)
	require.NoError(t, err)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	assert.Equal(t, -500*time.Microsecond, b.Reserve(500))
	assert.Equal(t, time.Duration(0), b.Reserve(500))
	assert.Equal(t, 2000*time.Microsecond, b.Reserve(2000))
	// The writer waited 2000 µs but wakes 1000 µs late: it was not idle, so
	// it keeps its schedule (tat 3000 µs, now 4000 µs) and may send 2000
	// bytes at once.
	now = now.Add(4000 * time.Microsecond)
	assert.Equal(t, -1000*time.Microsecond, b.Reserve(1000))
	assert.Equal(t, time.Duration(0), b.Reserve(1000))
	// After Idle, 10 ms later, the bucket is full again, no fuller: idle
	// time banks no more than the burst.
	b.Idle()
	now = now.Add(10 * time.Millisecond)
	assert.Equal(t, -900*time.Microsecond, b.Reserve(100))
	assert.Equal(t, 100*time.Microsecond, b.Reserve(1000))
	// A writer gone for longer than the catch-up window is idle too.
	now = now.Add(catchUp + time.Second)
	assert.Equal(t, -900*time.Microsecond, b.Reserve(100))
}

// TestDrain: the burst lets a writer run ahead of the link; Drain waits
// until the link has caught up with every byte reserved.
func TestDrain(t *testing.T) {
	b, err := New(8e6, 1000)
	require.NoError(t, err)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	assert.Zero(t, b.ahead(), "a new bucket has nothing in flight")
	assert.Negative(t, b.Reserve(800), "within the burst: no wait to send")
	assert.Equal(t, 800*time.Microsecond, b.ahead(), "but the link needs 800 µs for it")
	now = now.Add(300 * time.Microsecond)
	assert.Equal(t, 500*time.Microsecond, b.ahead())
	now = now.Add(time.Second)
	assert.Zero(t, b.ahead())

	real, err := New(8e6, 4000) // 1 byte/µs
	require.NoError(t, err)
	start := time.Now()
	require.Negative(t, real.Reserve(3000))
	require.NoError(t, real.Drain(context.Background()))
	assert.GreaterOrEqual(t, time.Since(start), 3*time.Millisecond, "Drain returned before the link sent the bytes")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	real.Reserve(3000)
	assert.ErrorIs(t, real.Drain(ctx), context.Canceled)
}

// TestHold: held link time delays the next write like bytes would, and a
// writer that is late on its schedule does not win it back.
func TestHold(t *testing.T) {
	b, err := New(8e6, 1000) // 1 byte/µs
	require.NoError(t, err)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	assert.Equal(t, -500*time.Microsecond, b.Reserve(500))
	b.Hold(2 * time.Millisecond)
	assert.Equal(t, 2000*time.Microsecond, b.Reserve(500), "500 µs of bytes, 2 ms held, 1 ms of burst")
	assert.Equal(t, 3000*time.Microsecond, b.ahead())
	b.Hold(0)
	b.Hold(-time.Second)
	assert.Equal(t, 3000*time.Microsecond, b.ahead(), "no time or negative time holds nothing")
}

func TestWaitCancel(t *testing.T) {
	b, err := New(8, 1) // one byte per second
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Wait(ctx, 100)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestWriterPassesBytes(t *testing.T) {
	b, err := New(1e9, 0)
	require.NoError(t, err)
	var sink countWriter
	w := &Writer{W: &sink, B: b}
	n, err := w.Write(make([]byte, 300<<10))
	require.NoError(t, err)
	assert.Equal(t, 300<<10, n)
	assert.Equal(t, int64(300<<10), sink.n)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkShapedRate writes through the bucket into io.Discard and reports
// the achieved rate as a share of the configured one (target >= 0.95).
func BenchmarkShapedRate(b *testing.B) {
	for _, tc := range []struct {
		name string
		rate float64
	}{{"100Mbit", 100e6}, {"1Gbit", 1e9}} {
		rate := tc.rate
		b.Run("rate="+tc.name, func(b *testing.B) {
			bk, err := New(rate, 0)
			require.NoError(b, err)
			w := &Writer{W: io.Discard, B: bk}
			buf := make([]byte, 1<<20)
			// Spend the initial burst so it does not flatter the result.
			_, _ = w.Write(buf[:DefaultBurst])
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				_, _ = w.Write(buf)
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N*len(buf))*8/el/rate, "share-of-rate")
		})
	}
}
