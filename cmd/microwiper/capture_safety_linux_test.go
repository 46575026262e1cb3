package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCaptureRefusesTargets: processes a capture must not touch are
// refused with a one-line reason, and nothing is written.
func TestCaptureRefusesTargets(t *testing.T) {
	needCaptureKernel(t)
	// A zombie: a child that exited, under a parent that never collects it.
	zparent := exec.Command("sh", "-c", "sleep 0 & echo $!; exec sleep 30")
	zout, err := zparent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, zparent.Start())
	defer func() { zparent.Process.Kill(); zparent.Wait() }()
	line, err := bufio.NewReader(zout).ReadString('\n')
	require.NoError(t, err)
	zombie := strings.TrimSpace(line)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile("/proc/" + zombie + "/stat"); strings.Contains(string(b), ") Z ") {
			break
		}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"init", []string{"--pid", "1"}, "pid 1 is init"},
		{"kernel thread", []string{"--pid", "2"}, "kernel thread"},
		{"ancestor", []string{"--pid", strconv.Itoa(os.Getpid())}, "ancestor of this capture"},
		{"zombie", []string{"--pid", zombie}, "is a zombie"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "t.parquet")
			res := execBinary(t, "", append([]string{"capture", "--duration", "1s", "-o", out}, c.args...)...)
			assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
			assert.Contains(t, res.stderr, c.want)
			assert.NotContains(t, res.stderr, "run as root", "the reason, not a permission guess")
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.stderr), "\n")+1, "one line: %q", res.stderr)
			assert.NoFileExists(t, out)
			assert.NoDirExists(t, out)
		})
	}
	t.Run("self", func(t *testing.T) {
		// The shell becomes the capture, so $$ is the capture's own pid.
		out := filepath.Join(t.TempDir(), "t.parquet")
		cmd := exec.Command("sh", "-c", `exec "$0" capture --duration 1s -o "$1" --pid $$`, buildBinary(t), out)
		b, err := cmd.CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(b), "this capture's own process")
		assert.NoDirExists(t, out)
	})
}

// pgrepArgs lists the pids whose command line is exactly args.
func pgrepArgs(t *testing.T, args ...string) []int {
	t.Helper()
	want := strings.Join(args, "\x00") + "\x00"
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && string(b) == want {
			out = append(out, pid)
		}
	}
	return out
}

// TestCaptureLeavesNoOrphan: when the capture cannot start or is killed,
// the command it launched does not run on without it.
func TestCaptureLeavesNoOrphan(t *testing.T) {
	needCaptureKernel(t)
	// A sleep no one else runs: its argument is unique to this test.
	marker := fmt.Sprintf("%d.%d", 30+os.Getpid()%60, time.Now().UnixNano()%1000000)
	gone := func(t *testing.T) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if len(pgrepArgs(t, "sleep", marker)) == 0 {
				return
			}
		}
		for _, pid := range pgrepArgs(t, "sleep", marker) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("the launched command (sleep %s) outlived its capture", marker)
	}
	t.Run("read-only output", func(t *testing.T) {
		dir := t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
			t.Skipf("cannot mount a read-only tmpfs: %v", err)
		}
		defer syscall.Unmount(dir, 0)
		res := execBinary(t, "", "capture", "-o", filepath.Join(dir, "t.parquet"), "--", "sleep", marker)
		assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, "read-only file system")
		gone(t)
	})
	t.Run("output holds segments", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "t.parquet")
		require.NoError(t, os.MkdirAll(out, 0o755))
		seg := filepath.Join(out, "seg-000000.parquet")
		require.NoError(t, os.WriteFile(seg, []byte("precious"), 0o644))
		res := execBinary(t, "", "capture", "-o", out, "--", "sleep", marker)
		assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, "already holds a trace")
		gone(t)
		b, err := os.ReadFile(seg)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(b), "an existing trace is never touched")
	})
	t.Run("capture killed", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "t.parquet")
		cmd := exec.Command(buildBinary(t), "capture", "--segment", "200ms", "-o", out, "--", "sleep", marker)
		require.NoError(t, cmd.Start())
		for end := time.Now().Add(20 * time.Second); len(pgrepArgs(t, "sleep", marker)) == 0; time.Sleep(20 * time.Millisecond) {
			require.True(t, time.Now().Before(end), "the command never started")
		}
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, cmd.Process.Kill())
		cmd.Wait()
		gone(t) // the parent-death signal ended it
		res := execBinary(t, "", "trace", "validate", out)
		assert.Equal(t, 0, res.code, "finished segments of a killed capture validate: %s %s", res.stdout, res.stderr)
	})
}

// TestCaptureOutcome: the workload's failure is the capture's, and a
// filter that matches nothing writes no trace.
func TestCaptureOutcome(t *testing.T) {
	needCaptureKernel(t)
	t.Run("false", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "t.parquet")
		res := execBinary(t, "", "capture", "-o", out, "--", "false")
		assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, "false failed: exit status 1")
		assert.Contains(t, res.stderr, "the trace of its run is complete")
		assert.Equal(t, 0, execBinary(t, "", "trace", "validate", out).code)
	})
	t.Run("killed by a signal", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "t.parquet")
		res := execBinary(t, "", "capture", "-o", out, "--", "sh", "-c", "kill -SEGV $$")
		assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, "killed by signal 11")
	})
	t.Run("nothing matched, launched", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "t.parquet")
		res := execBinary(t, "", "capture", "--min-region", "1TiB", "-o", out, "--", "true")
		assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, "no memory matched --min-region")
		assert.NoDirExists(t, out, "no empty trace left behind")
	})
	t.Run("nothing matched, attached", func(t *testing.T) {
		target := exec.Command("sleep", "30")
		require.NoError(t, target.Start())
		defer func() { target.Process.Kill(); target.Wait() }()
		out := filepath.Join(t.TempDir(), "t.parquet")
		start := time.Now()
		res := execBinary(t, "", "capture", "--min-region", "1TiB", "-o", out, "--pid", strconv.Itoa(target.Process.Pid))
		assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, "matched --min-region")
		assert.Less(t, time.Since(start), 10*time.Second, "said at once, not after the capture")
		assert.NoDirExists(t, out)
		assert.NoError(t, target.Process.Signal(syscall.Signal(0)), "the target runs on")
	})
}
