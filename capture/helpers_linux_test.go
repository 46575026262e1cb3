package capture

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// builtOnce is a test program built at most once per test binary, in a
// temporary directory of its own that TestMain removes.
type builtOnce struct {
	once      sync.Once
	dir, path string
	err       error
}

// get builds the program on first use, build making it in dir and
// returning its path, and returns that path; a failed build fails every
// test that asks for the program.
func (b *builtOnce) get(t testing.TB, pattern string, build func(dir string) (string, error)) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", pattern)
		if b.err == nil {
			b.path, b.err = build(b.dir)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

var writerProgram, treeProgram builtOnce

// removeBuiltPrograms removes what the tests built.
func removeBuiltPrograms() {
	for _, b := range []*builtOnce{&writerProgram, &treeProgram} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
}

// writerBin builds testdata/writer once per test binary, or takes
// $CAPTURE_WRITER (a guest has no Go toolchain: make test-kernels).
func writerBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CAPTURE_WRITER"); p != "" {
		return p
	}
	return writerProgram.get(t, "capture-writer-", func(dir string) (string, error) {
		// Readable by everyone: the permission test runs it as nobody.
		os.Chmod(dir, 0o755)
		path := filepath.Join(dir, "writer")
		if out, err := exec.Command("go", "build", "-o", path, "./testdata/writer").CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./testdata/writer: %w\n%s", err, out)
		}
		return path, nil
	})
}

// needUffdWP skips when the kernel lacks what backend (any backend,
// despite the name) needs.
func needUffdWP(t testing.TB, backend string) {
	t.Helper()
	if err := KernelFeatures().Check(backend); err != nil {
		t.Skipf("kernel lacks a feature: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_PTRACE) to attach")
	}
}

// writerRun is a running writer process and what it printed.
type writerRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	base   uint64
	pages  int
	phases []phaseSpan
	sum    string
}

type phaseSpan struct{ start, end int64 } // unix ns

// newWriter prepares a writer command whose stdout the test reads.
func newWriter(t testing.TB, args ...string) *writerRun {
	w := &writerRun{cmd: exec.Command(writerBin(t), args...), lines: make(chan string, 64)}
	var err error
	w.stdin, err = w.cmd.StdinPipe()
	require.NoError(t, err)
	out, err := w.cmd.StdoutPipe()
	require.NoError(t, err)
	w.cmd.Stderr = os.Stderr
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	return w
}

// readBuffer waits for the "buffer ADDR PAGES" line.
func (w *writerRun) readBuffer(t testing.TB) {
	t.Helper()
	select {
	case l, ok := <-w.lines:
		require.True(t, ok, "writer exited before printing its buffer")
		f := strings.Fields(l)
		require.Len(t, f, 3, "writer line %q", l)
		var err error
		w.base, err = strconv.ParseUint(f[1], 10, 64)
		require.NoError(t, err)
		w.pages, err = strconv.Atoi(f[2])
		require.NoError(t, err)
	case <-time.After(2 * time.Minute):
		t.Fatal("writer printed nothing for 2 minutes")
	}
}

// readRest reads phases and the checksum until the writer's stdout closes.
func (w *writerRun) readRest(t testing.TB) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				return
			}
			f := strings.Fields(l)
			switch f[0] {
			case "phase":
				s, _ := strconv.ParseInt(f[2], 10, 64)
				e, _ := strconv.ParseInt(f[3], 10, 64)
				w.phases = append(w.phases, phaseSpan{s, e})
			case "done":
				w.sum = f[1]
			}
		case <-timeout:
			t.Fatal("writer did not finish within 60s")
		}
	}
}

// expectedSum runs the writer uncaptured, fast, for the checksum that the
// given arguments must produce.
func expectedSum(t testing.TB, args ...string) string {
	t.Helper()
	args = append(append([]string(nil), args...), "-phase", "30ms", "-gap", "0s", "-settle", "0s")
	out, err := exec.Command(writerBin(t), args...).Output()
	require.NoError(t, err)
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(l, "done "); ok {
			return s
		}
	}
	t.Fatalf("writer %v printed no checksum:\n%s", args, out)
	return ""
}

// inPhase mirrors testdata/writer.InPhase.
func inPhase(p, k int) bool { return splitmix(uint64(p)*1000003+uint64(k))%3 == 0 }

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// score compares a trace with what the writer did. Rows are attributed to
// the phase whose writing span holds them (an epoch-end row up to slack
// after the phase's end, since the scan comes after the writes); buffer
// rows after the first phase's start that fall in no phase are false
// positives.
type score struct {
	truth, hit, observed, stray int
}

func (s score) recall() float64    { return float64(s.hit) / float64(max(s.truth, 1)) }
func (s score) precision() float64 { return float64(s.hit) / float64(max(s.observed+s.stray, 1)) }
func (s score) String() string {
	return fmt.Sprintf("recall %.4f (%d/%d) precision %.4f (%d/%d, %d stray)", s.recall(), s.hit, s.truth,
		s.precision(), s.hit, s.observed+s.stray, s.stray)
}

func scoreTrace(t testing.TB, path string, w *writerRun, slackBefore, slackAfter time.Duration) score {
	t.Helper()
	return scoreTraceBlocks(t, path, w, slackBefore, slackAfter, 1)
}

// scoreTraceBlocks is scoreTrace over blocks of block pages, a block
// written in a phase if any of its pages is: the precision a backend can
// reach when it sees writes at huge-page granularity.
func scoreTraceBlocks(t testing.TB, path string, w *writerRun, slackBefore, slackAfter time.Duration, block int) score {
	t.Helper()
	h, epochs, err := tracefmt.ReadAll(path)
	require.NoError(t, err)
	require.NotEmpty(t, w.phases, "writer ran no phases")
	bufPage := w.bufferPage(h)
	start := h.StartedAt.UnixNano()
	obs := make([]map[int]bool, len(w.phases))
	for k := range obs {
		obs[k] = map[int]bool{}
	}
	var sc score
	for _, e := range epochs {
		if e.Initial {
			continue
		}
		wall := start + e.TNS
		k := -1
		for i, ph := range w.phases {
			if wall >= ph.start-slackBefore.Nanoseconds() && wall <= ph.end+slackAfter.Nanoseconds() {
				k = i
			}
		}
		for _, p := range e.Pages {
			b := bufPage(p)
			if b < 0 {
				continue
			}
			switch {
			case k >= 0:
				obs[k][b/block] = true
			case wall > w.phases[0].start:
				sc.stray++
			}
		}
	}
	for k := range w.phases {
		truth := map[int]bool{}
		for b := 0; b < w.pages; b++ {
			if inPhase(b, k) {
				truth[b/block] = true
			}
		}
		for blk := range truth {
			sc.truth++
			if obs[k][blk] {
				sc.hit++
			}
		}
		sc.observed += len(obs[k])
	}
	return sc
}

// bufferPage maps a trace's dense page numbers to the writer's buffer
// pages, -1 outside the buffer.
func (w *writerRun) bufferPage(h tracefmt.Header) func(page int64) int {
	ps := uint64(h.PageSize)
	return func(p int64) int {
		for _, r := range h.Regions {
			if p >= r.FirstPage && p < r.FirstPage+r.Pages {
				if r.PID != 0 && w.cmd.Process != nil && r.PID != w.cmd.Process.Pid {
					return -1 // another process's memory
				}
				a := r.StartAddr + uint64(p-r.FirstPage)*ps
				if a >= w.base && a < w.base+uint64(w.pages)*ps {
					return int((a - w.base) / ps)
				}
				return -1
			}
		}
		return -1
	}
}

// backgroundRecord is a Record running in a goroutine.
type backgroundRecord struct {
	done  chan struct{} // closed when Record has returned
	stats Stats
	err   error
}

func startRecord(ctx context.Context, target Target, opts Options) *backgroundRecord {
	r := &backgroundRecord{done: make(chan struct{})}
	go func() {
		r.stats, r.err = Record(ctx, target, opts)
		close(r.done)
	}()
	return r
}

// wait waits for Record to return and returns what it returned.
func (r *backgroundRecord) wait() (Stats, error) {
	<-r.done
	return r.stats, r.err
}

// recordAsync runs Record in the background.
func recordAsync(ctx context.Context, target Target, opts Options) (func() (Stats, error), context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	return startRecord(ctx, target, opts).wait, cancel
}

// testLogger sends capture's warnings to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// recordReady runs Record in the background and returns once the target
// is tracked (Options.Ready), so the test's writes that follow are in the
// trace; if Record fails first, wait returns its error at once.
func recordReady(t testing.TB, target Target, opts Options) (func() (Stats, error), context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	r := startRecord(ctx, target, opts)
	select {
	case <-ready:
	case <-r.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("capture did not start within 2 minutes")
	}
	return r.wait, cancel
}

// writerCapture is the test writer under a capture, launched by Record or
// attached to once it has printed its buffer and before it writes.
type writerCapture struct {
	*writerRun
	launched bool
	wait     func() (Stats, error)
}

// captureWriter starts the writer with args under a capture with opts and
// returns once its buffer is known and the capture will see its phases. A
// launched writer waits settle before its first phase, for Record to set
// up; an attached one waits for "go" on stdin, sent once the capture is
// ready. beforeAttach, if not nil, sees an attached writer before the
// capture touches it.
func captureWriter(t *testing.T, launch bool, settle time.Duration, opts Options, beforeAttach func(*writerRun), args ...string) *writerCapture {
	t.Helper()
	c := &writerCapture{launched: launch}
	if launch {
		c.writerRun = newWriter(t, append(args, "-settle", settle.String())...)
		var cancel context.CancelFunc
		c.wait, cancel = recordAsync(context.Background(), Target{Cmd: c.cmd}, opts)
		t.Cleanup(cancel)
		c.readBuffer(t)
		return c
	}
	c.writerRun = newWriter(t, append(args, "-wait")...)
	require.NoError(t, c.cmd.Start())
	c.readBuffer(t)
	if beforeAttach != nil {
		beforeAttach(c.writerRun)
	}
	var cancel context.CancelFunc
	c.wait, cancel = recordReady(t, Target{PID: c.cmd.Process.Pid}, opts)
	t.Cleanup(cancel)
	fmt.Fprintln(c.stdin, "go")
	return c
}

// finish reads the writer's output to its end, waits for the capture, and
// for an attached writer, which the capture does not reap, for its exit.
func (c *writerCapture) finish(t *testing.T) Stats {
	t.Helper()
	c.readRest(t)
	st, err := c.wait()
	require.NoError(t, err)
	if !c.launched {
		require.NoError(t, c.cmd.Wait())
	}
	return st
}
