package netns

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func needNetns(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		tb.Skipf("netns link unavailable: %v", err)
	}
}

func TestNotRoot(t *testing.T) {
	if !supported {
		t.Skip("no network namespaces on this system: TestUnsupported covers it")
	}
	old := geteuid
	geteuid = func() int { return 1000 }
	defer func() { geteuid = old }()
	_, err := Create(context.Background(), Config{})
	require.ErrorIs(t, err, ErrNotPermitted)
	assert.Contains(t, err.Error(), "run as root or use --link loopback")
}

func TestUnsupported(t *testing.T) {
	if supported {
		t.Skip("network namespaces exist on this system")
	}
	_, err := Create(context.Background(), Config{})
	require.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "use --link loopback")
	assert.ErrorIs(t, Do("x", func() error { return nil }), ErrUnsupported)
	assert.Empty(t, List())
}

func TestCreateConnectClose(t *testing.T) {
	needNetns(t)
	fds := openFDs(t)
	p, err := Create(context.Background(), Config{BandwidthBps: 100e6})
	require.NoError(t, err)
	assert.True(t, p.Shaped)
	assert.ElementsMatch(t, []string{p.Src, p.Dst}, List())

	ln, err := p.Listen(0)
	require.NoError(t, err)
	done := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		done <- string(b)
	}()
	c, err := p.Dial(context.Background(), ln.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, SrcAddr, c.LocalAddr().(*net.TCPAddr).IP.String())
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, "hello", <-done)
	require.NoError(t, ln.Close())

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close twice")
	assert.Empty(t, List())
	assert.Equal(t, fds, openFDs(t), "file descriptors leaked")
}

func TestDelayOrNote(t *testing.T) {
	needNetns(t)
	p, err := Create(context.Background(), Config{RTT: 10 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	if !p.Delayed {
		assert.Contains(t, p.DelayNote, "netem unavailable")
		t.Skipf("RTT not measurable here: %s", p.DelayNote)
	}
	ln, err := p.Listen(0)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := p.Dial(context.Background(), ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, _ = c.Write([]byte{1})
	_, err = c.Read(make([]byte, 1))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 9*time.Millisecond)
}

func TestRemoveStale(t *testing.T) {
	needNetns(t)
	// pid 0x7fffffff cannot exist (pid_max is at most 2^22).
	name := Prefix + "2147483647-1-src"
	require.NoError(t, run(context.Background(), "ip", "netns", "add", name))
	RemoveStale(context.Background())
	assert.NotContains(t, List(), name)
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// BenchmarkTBFThroughput streams through the tbf-shaped veth pair and
// reports the payload rate the receiver sees as a share of the configured
// rate (target >= 0.95). Each op is 1 MiB; the clock runs from the first
// write to the receiver's last byte, so kernel buffers cannot flatter it.
func BenchmarkTBFThroughput(b *testing.B) {
	needNetns(b)
	for _, tc := range []struct {
		name string
		bps  int64
	}{{"100Mbit", 100e6}, {"1Gbit", 1e9}} {
		b.Run("rate="+tc.name, func(b *testing.B) {
			p, err := Create(context.Background(), Config{BandwidthBps: tc.bps})
			require.NoError(b, err)
			defer p.Close()
			ln, err := p.Listen(0)
			require.NoError(b, err)
			defer ln.Close()
			got := make(chan time.Time, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_, _ = io.Copy(io.Discard, c)
					c.Close()
				}
				got <- time.Now()
			}()
			c, err := p.Dial(context.Background(), ln.Addr().String())
			require.NoError(b, err)
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				_, err := c.Write(buf)
				require.NoError(b, err)
			}
			require.NoError(b, c.Close())
			el := (<-got).Sub(start).Seconds()
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(buf))*8/el/float64(tc.bps), "share-of-rate")
		})
	}
}
