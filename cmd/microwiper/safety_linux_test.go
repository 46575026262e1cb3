package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
	"github.com/microwiper/microwiper/tracefmt"
)

// The data-safety cases of issue 12, each through the real binary: no
// command destroys a file it did not create, every output appears whole
// or not at all, and Ctrl-C and dead readers end a command.

// genSmall writes a small trace at path with the binary.
func genSmall(t *testing.T, path string, extra ...string) {
	t.Helper()
	args := append([]string{"trace", "gen", "-kind", "uniform", "-pages", "256", "-duration", "2s", "-o", path}, extra...)
	res := execBinary(t, "", args...)
	require.Equal(t, 0, res.code, res.stderr)
}

// snapshot is a directory's names and contents, to show that a failed
// command left it as it was.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			out[e.Name()] = b
		} else {
			out[e.Name()] = []byte(e.Type().String())
		}
	}
	return out
}

// startBinary starts the binary in the background.
func startBinary(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	return cmd, &stderr
}

// waitExit waits at most d for cmd to end and returns its exit code; it
// fails the test (and kills cmd) if cmd hangs.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after %v", cmd.Args, d)
		return -1
	}
}

// TestConvertRefusesOutputIsInput: converting a file onto itself (by any
// name) would truncate the input; it is refused before any write.
func TestConvertRefusesOutputIsInput(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "a.parquet"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.csv"), []byte("t_ns,page\n100,1\n200,2\n"), 0o644))
	require.NoError(t, os.Link(filepath.Join(dir, "a.parquet"), filepath.Join(dir, "hard.parquet")))
	require.NoError(t, os.Symlink("a.parquet", filepath.Join(dir, "sym.csv")))
	before := snapshot(t, dir)
	for _, args := range [][]string{
		{"--to", "csv", "a.parquet", "a.parquet"},
		{"--to", "parquet", "in.csv", "in.csv"},
		{"--to", "csv", "a.parquet", "hard.parquet"},
		{"a.parquet", "sym.csv"},
		{"a.parquet", "./a.parquet", "--to", "csv"},
	} {
		res := execBinary(t, dir, append([]string{"trace", "convert"}, args...)...)
		assert.Equal(t, 1, res.code, "%v: %s", args, res.stderr)
		assert.Contains(t, res.stderr, "is the input", args)
	}
	assert.Equal(t, before, snapshot(t, dir), "inputs untouched")
}

// TestConvertKeepsExistingOutputOnFailure: a failed conversion leaves an
// existing OUT as it was, and leaves no temporary file.
func TestConvertKeepsExistingOutputOnFailure(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "precious.parquet"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "precious.csv"), []byte("keep me\n"), 0o644))
	// Unsorted (caught by the first pass), duplicate (caught while
	// converting, after the trace was created), and a broken Parquet input
	// (caught half way through the CSV).
	require.NoError(t, os.WriteFile(filepath.Join(dir, "unsorted.csv"), []byte("t_ns,page\n200,1\n100,2\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dup.csv"), []byte("t_ns,page\n100,1\n200,2\n200,2\n"), 0o644))
	writeRawTrace(t, filepath.Join(dir, "broken.parquet"), goodMeta(), []badRow{{100, 1, 1}, {200, 2, 1}, {150, 3, 1}})
	before := snapshot(t, dir)
	for _, args := range [][]string{
		{"unsorted.csv", "precious.parquet"},
		{"-pages", "16", "-epoch", "100ns", "dup.csv", "precious.parquet"},
		{"broken.parquet", "precious.csv"},
	} {
		res := execBinary(t, dir, append([]string{"trace", "convert"}, args...)...)
		assert.Equal(t, 1, res.code, "%v: %s", args, res.stderr)
		assert.Equal(t, before, snapshot(t, dir), "%v: existing output and inputs untouched, no temporary file left", args)
	}
}

// TestConvertToDeviceKeepsDevice: a write error on a device is reported,
// and the device node stays (it was removed as a "partial output").
func TestConvertToDeviceKeepsDevice(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "a.parquet"))
	res := execBinary(t, dir, "trace", "convert", "--to", "csv", "a.parquet", "/dev/full")
	assert.Equal(t, 1, res.code, res.stderr)
	assert.Contains(t, res.stderr, "no space left")
	res = execBinary(t, dir, "trace", "convert", "a.parquet", "/dev/full")
	assert.Equal(t, 1, res.code, res.stderr)
	assert.Contains(t, res.stderr, "not a regular file")
	st, err := os.Stat("/dev/full")
	require.NoError(t, err, "the device node must survive")
	assert.NotZero(t, st.Mode()&os.ModeCharDevice)
}

// TestGenInterruptedKeepsOldTrace: Ctrl-C during gen over an existing
// trace leaves the old trace whole, and nothing else behind.
func TestGenInterruptedKeepsOldTrace(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "keep.parquet"))
	before := snapshot(t, dir)
	cmd, stderr := startBinary(t, dir, "trace", "gen", "-kind", "uniform", "-pages", "1048576", "-duration", "3000s", "-intensity", "1e5", "-o", "keep.parquet")
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitExit(t, cmd, 20*time.Second), stderr.String())
	assert.Contains(t, stderr.String(), "context canceled")
	assert.Equal(t, before, snapshot(t, dir), "the old trace whole, no partial file")
	require.NoError(t, tracefmt.Validate(filepath.Join(dir, "keep.parquet")))
}

// TestGenRefusesDirectory: -o naming a directory (empty, or /tmp-like) is
// refused before any work; nothing is created beside it or removed.
func TestGenRefusesDirectory(t *testing.T) {
	parent := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(parent, "empty"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(parent, "full"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(parent, "full", "x"), []byte("x"), 0o644))
	before := snapshot(t, parent)
	for _, out := range []string{"empty", "full", "full/"} {
		res := execBinary(t, parent, "trace", "gen", "-pages", "64", "-o", out)
		assert.Equal(t, 2, res.code, res.stderr)
		assert.Contains(t, res.stderr, "is a directory")
		assert.Equal(t, before, snapshot(t, parent), out)
		_, err := os.Stat(filepath.Join(parent, "full", "x"))
		assert.NoError(t, err)
	}
}

// TestConvertToCSVInterrupted: Ctrl-C while the CSV is being written (to
// a FIFO whose reader has stopped reading) ends the command.
func TestConvertToCSVInterrupted(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "a.parquet"), "-pages", "65536", "-duration", "20s", "-intensity", "1e5")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	// A reader that opens the FIFO and never reads: the writer fills the
	// pipe and blocks.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer r.Close()
	cmd, stderr := startBinary(t, dir, "trace", "convert", "--to", "csv", "a.parquet", "fifo")
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitExit(t, cmd, 10*time.Second), stderr.String())
	assert.Contains(t, stderr.String(), "interrupted")
	st, err := os.Stat(fifo)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeNamedPipe, "the FIFO stays a FIFO")
}

// TestConvertToFIFOWithoutReader: a FIFO nobody opens would block the open
// forever; Ctrl-C ends it.
func TestConvertToFIFOWithoutReader(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "a.parquet"))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	cmd, stderr := startBinary(t, dir, "trace", "convert", "--to", "csv", "a.parquet", "fifo")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitExit(t, cmd, 10*time.Second), stderr.String())
	assert.Contains(t, stderr.String(), "no reader came")
}

// TestConvertToClosingReader: like ">(head)", the reader takes a little
// and goes away; the command ends with an error instead of hanging.
func TestConvertToClosingReader(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "a.parquet"), "-pages", "65536", "-duration", "20s", "-intensity", "1e5")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			return
		}
		io.CopyN(io.Discard, f, 100)
		f.Close()
	}()
	cmd, stderr := startBinary(t, dir, "trace", "convert", "--to", "csv", "a.parquet", "fifo")
	assert.Equal(t, 1, waitExit(t, cmd, 20*time.Second), stderr.String())
	assert.Contains(t, stderr.String(), "broken pipe")
}

// TestConvertKilledLeavesNoShortCSV: SIGKILL half way through a
// conversion leaves either no CSV or the complete one at OUT, never a
// truncated CSV that would convert back as a shorter trace.
func TestConvertKilledLeavesNoShortCSV(t *testing.T) {
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "a.parquet"), "-pages", "65536", "-duration", "30s", "-intensity", "1e5")
	res := execBinary(t, dir, "trace", "convert", "a.parquet", "whole.csv")
	require.Equal(t, 0, res.code, res.stderr)
	whole, err := os.ReadFile(filepath.Join(dir, "whole.csv"))
	require.NoError(t, err)
	for _, after := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond} {
		out := filepath.Join(dir, "out.csv")
		os.Remove(out)
		cmd, _ := startBinary(t, dir, "trace", "convert", "a.parquet", "out.csv")
		time.Sleep(after)
		cmd.Process.Kill()
		waitExit(t, cmd, 10*time.Second)
		got, err := os.ReadFile(out)
		if err == nil {
			assert.Equal(t, len(whole), len(got), "killed after %v: a CSV at OUT must be whole", after)
		} else {
			assert.ErrorIs(t, err, os.ErrNotExist)
		}
	}
}

// TestUnfinishedTraceIsReported: traces cut short never validate as a
// plain OK. An interrupted one-file gen leaves nothing; an interrupted
// segmented gen and a killed writer's segments read as unfinished.
func TestUnfinishedTraceIsReported(t *testing.T) {
	dir := t.TempDir()
	cmd, stderr := startBinary(t, dir, "trace", "gen", "-kind", "uniform", "-pages", "1048576", "-duration", "3000s", "-intensity", "1e5", "-o", "one.parquet")
	time.Sleep(400 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitExit(t, cmd, 20*time.Second), stderr.String())
	_, err := os.Stat(filepath.Join(dir, "one.parquet"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no cut-short trace at -o")

	cmd, stderr = startBinary(t, dir, "trace", "gen", "-kind", "uniform", "-pages", "1048576", "-duration", "3000s", "-intensity", "1e5", "-segment-rows", "200000", "-o", "segs")
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "segs", "seg-000001.parquet"))
		if len(m) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitExit(t, cmd, 20*time.Second), stderr.String())

	// A killed capture: segments finished, the writer never closed.
	killed := filepath.Join(dir, "killed")
	w, err := tracefmt.Create(killed, tracefmt.Header{PageSize: 4096, Pages: 64, EpochNS: 100, Backend: tracefmt.BackendUffdAsync}, tracefmt.WriterOptions{SegmentRows: 2})
	require.NoError(t, err)
	for i := int64(1); i <= 5; i++ {
		require.NoError(t, w.WriteEpoch(i*100, []int64{i, i + 10}, nil))
	}

	for _, path := range []string{"segs", "killed"} {
		res := execBinary(t, dir, "trace", "validate", path)
		assert.Equal(t, 0, res.code, res.stderr)
		assert.Regexp(t, `^WARN `+path+` \(\d+ rows\): unfinished`, res.stdout)
		assert.NotContains(t, res.stdout, "OK")
		res = execBinary(t, dir, "trace", "info", path)
		assert.Equal(t, 0, res.code, res.stderr)
		assert.Contains(t, res.stdout, "status       UNFINISHED")
	}
	genSmall(t, filepath.Join(dir, "whole.parquet"))
	res := execBinary(t, dir, "trace", "validate", "whole.parquet")
	assert.Regexp(t, `^OK whole.parquet`, res.stdout)
}

// TestFullDisk: on a file system that fills up, gen and convert fail and
// leave neither a half-written file at OUT nor a temporary one, and an
// existing OUT stays.
func TestFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	require.NoError(t, os.Mkdir(dir, 0o755))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	src := filepath.Join(t.TempDir(), "a.parquet")
	genSmall(t, src, "-pages", "65536", "-duration", "10s", "-intensity", "1e5")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.csv"), []byte("keep\n"), 0o644))
	genSmall(t, filepath.Join(dir, "old.parquet"))
	before := snapshot(t, dir)
	for _, args := range [][]string{
		{"trace", "gen", "-kind", "uniform", "-pages", "65536", "-duration", "10s", "-intensity", "1e5", "-o", "old.parquet"},
		{"trace", "gen", "-kind", "uniform", "-pages", "65536", "-duration", "10s", "-intensity", "1e5", "-o", "new.parquet"},
		{"trace", "convert", src, "old.csv"},
		{"trace", "convert", src, "new.csv"},
	} {
		res := execBinary(t, dir, args...)
		assert.Equal(t, 1, res.code, "%v: %s", args, res.stderr)
		assert.Contains(t, res.stderr, "no space left", args)
		got := snapshot(t, dir)
		assert.Equal(t, slices.Sorted(mapsKeys(before)), slices.Sorted(mapsKeys(got)), "%v: no new or temporary file", args)
		assert.Equal(t, before, got, args)
	}
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestConcurrentReplaysKeepEverySet: replays writing into one --out at the
// same time each keep their whole result set.
func TestConcurrentReplaysKeepEverySet(t *testing.T) {
	trace := writeReplayTrace(t)
	out := filepath.Join(t.TempDir(), "out")
	bws := []string{"50Mbit", "100Mbit", "200Mbit", "1Gbit"}
	var cmds []*exec.Cmd
	var errs []*bytes.Buffer
	for _, bw := range bws {
		cmd, stderr := startBinary(t, "", "replay", "-alg", "all", "-bw", bw, "-out", out, "--bench=false", trace)
		cmds, errs = append(cmds, cmd), append(errs, stderr)
	}
	for i, cmd := range cmds {
		assert.Equal(t, 0, waitExit(t, cmd, time.Minute), errs[i].String())
	}
	d, err := results.Read(out)
	require.NoError(t, err)
	assert.Len(t, d.Sets, len(bws))
	assert.Len(t, d.Runs, len(bws)*len(algorithms.Names()))
	assert.Empty(t, d.Incomplete)
	left, _ := filepath.Glob(filepath.Join(out, ".*"))
	assert.Empty(t, left, "no temporary files")
}

// TestRunShardsShareOut: the shards of one run, started together into one
// --out, keep every job; an earlier bench.txt there stays as it was.
func TestRunShardsShareOut(t *testing.T) {
	dir, exp := runFixture(t)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "out"), 0o755))
	mine := filepath.Join(dir, "out", "bench.txt")
	require.NoError(t, os.WriteFile(mine, []byte("my notes\n"), 0o644))
	var cmds []*exec.Cmd
	var errs []*bytes.Buffer
	for _, shard := range []string{"0/3", "1/3", "2/3"} {
		cmd, stderr := startBinary(t, dir, "run", "--shard", shard, "--out", "out", exp)
		cmds, errs = append(cmds, cmd), append(errs, stderr)
	}
	for i, cmd := range cmds {
		assert.Equal(t, 0, waitExit(t, cmd, 2*time.Minute), errs[i].String())
	}
	d, err := results.Read(filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Len(t, d.Runs, 16, "every job of the matrix")
	b, err := os.ReadFile(mine)
	require.NoError(t, err)
	assert.Equal(t, "my notes\n", string(b))
	rep := execBinary(t, dir, "report", "--out", "report", "out")
	require.Equal(t, 0, rep.code, rep.stderr)
	assert.Contains(t, rep.stdout, "16 runs from 1 directory")
}

// TestReplayChecksOutFirst: an --out that is a file, or a directory of
// traces, is refused before any job runs, and left as it was.
func TestReplayChecksOutFirst(t *testing.T) {
	trace := writeReplayTrace(t)
	dir := t.TempDir()
	genSmall(t, filepath.Join(dir, "t.parquet"))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "traces"), 0o755))
	genSmall(t, filepath.Join(dir, "traces", "a.parquet"))
	before := snapshot(t, dir)
	beforeTraces := snapshot(t, filepath.Join(dir, "traces"))
	for _, tc := range []struct{ out, want string }{
		{"t.parquet", "-out t.parquet is a file"},
		{"traces", "-out traces holds a.parquet, not a result file"},
	} {
		start := time.Now()
		res := execBinary(t, dir, "replay", "-alg", "all", "-bw", "1bit", "-out", tc.out, trace)
		assert.Equal(t, 2, res.code, res.stderr)
		assert.Contains(t, res.stderr, tc.want)
		assert.Less(t, time.Since(start), 10*time.Second, "refused before replaying at 1 bit/s")
	}
	assert.Equal(t, before, snapshot(t, dir))
	assert.Equal(t, beforeTraces, snapshot(t, filepath.Join(dir, "traces")))
}

// TestRunFailureKeepsFinishedRuns: when a job fails half way through a
// matrix, the runs already computed are in --out.
func TestRunFailureKeepsFinishedRuns(t *testing.T) {
	dir, _ := runFixture(t)
	// The second trace passes the glob but is broken half way: its jobs
	// fail after the first trace's have run.
	writeRawTrace(t, filepath.Join(dir, "traces", "z-broken.parquet"), goodMeta(), []badRow{{100, 1, 1}, {200, 2, 1}, {150, 3, 1}})
	exp := filepath.Join(dir, "exp", "fail.json")
	require.NoError(t, os.WriteFile(exp, []byte(`{"experiments": [{"traces": ["../traces/wws.parquet", "../traces/z-broken.parquet"],
	  "replay": ["-alg", "xen-precopy,microwiper", "-bw", "100Mbit,1Gbit"]}]}`), 0o644))
	res := execBinary(t, dir, "run", "--out", "out", exp)
	assert.Equal(t, 1, res.code, res.stderr)
	assert.Contains(t, res.stderr, "the 4 finished runs are in out")
	d, err := results.Read(filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Len(t, d.Runs, 4, "the wws trace's 4 runs")
}

// TestResultsOnFullDisk: a result set that does not fit leaves no file
// behind, and report does not take a half-written set.
func TestResultsOnFullDisk(t *testing.T) {
	small := filepath.Join(t.TempDir(), "small")
	require.NoError(t, os.Mkdir(small, 0o755))
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=12k"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	defer syscall.Unmount(small, syscall.MNT_DETACH)
	trace := writeReplayTrace(t)
	out := filepath.Join(small, "out")
	res := execBinary(t, "", "replay", "-alg", "all", "-bw", "10Mbit,100Mbit,1Gbit", "-out", out, trace)
	assert.Equal(t, 1, res.code, res.stderr)
	assert.Contains(t, res.stderr, "no space left")
	ents, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, ents, "no half-written set, no temporary file")
	rep := execBinary(t, "", "report", "--out", filepath.Join(t.TempDir(), "r"), out)
	assert.Equal(t, 1, rep.code, rep.stderr)
	assert.Contains(t, rep.stderr, "no results")
}

// TestKilledCaptureIsUnfinished: the segments a SIGKILLed capture leaves
// validate as WARN (unfinished), not as a plain OK.
func TestKilledCaptureIsUnfinished(t *testing.T) {
	needCaptureKernel(t)
	target := exec.Command("sh", "-c", `i=0; while :; do i=$((i+1)); x="$x$i"; [ ${#x} -gt 100000 ] && x=; done`)
	require.NoError(t, target.Start())
	defer func() { target.Process.Kill(); target.Wait() }()
	out := filepath.Join(t.TempDir(), "segs")
	cmd, stderr := startBinary(t, "", "capture", "--epoch", "20ms", "--segment", "100ms", "-o", out, "--pid", strconv.Itoa(target.Process.Pid))
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, "seg-000001.parquet")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			waitExit(t, cmd, 10*time.Second)
			t.Skipf("capture wrote no second segment in 15 s (kernel without userfaultfd-wp?): %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill())
	waitExit(t, cmd, 10*time.Second)
	res := execBinary(t, "", "trace", "validate", out)
	assert.Equal(t, 0, res.code, res.stderr)
	assert.Regexp(t, `^WARN .*segs \(\d+ rows\): unfinished`, res.stdout)
	res = execBinary(t, "", "trace", "info", out)
	assert.Contains(t, res.stdout, "status       UNFINISHED")
}
