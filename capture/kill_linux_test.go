package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/microwiper/microwiper/tracefmt"
)

// helperMain is the test binary acting as a capture process:
//
//	record: capture CAPTURE_PID into CAPTURE_OUT until killed or the target exits.
//	attach: attach to CAPTURE_PID and print the error (permission tests).
func helperMain(mode string) int {
	pid, _ := strconv.Atoi(os.Getenv("CAPTURE_PID"))
	opts := TrackerOptions{Backend: os.Getenv("CAPTURE_BACKEND")}
	switch mode {
	case "record":
		_, err := Record(context.Background(), Target{PID: pid}, Options{TrackerOptions: opts,
			Epoch: 50 * time.Millisecond, Output: os.Getenv("CAPTURE_OUT"), SegmentEvery: 200 * time.Millisecond})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "attach":
		tr, err := Attach(pid, opts, nil)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		tr.Close()
		return 0
	}
	return 2
}

// helperCmd runs this test binary as a capture helper.
func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), "CAPTURE_HELPER="+mode), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestSigkillCapture kills the capture mid-run: the target must finish
// with the right result, and the finished segments must form a valid trace.
func TestSigkillCapture(t *testing.T) {
	for _, backend := range []string{"uffd-wp-async", "uffd-wp-sync"} {
		t.Run(backend, func(t *testing.T) {
			needUffdWP(t, backend)
			args := []string{"-pages", "4096", "-threads", "3", "-phases", "4", "-phase", "300ms", "-gap", "100ms"}
			want := expectedSum(t, args...)
			w := newWriter(t, append(args, "-wait")...)
			require.NoError(t, w.cmd.Start())
			w.readBuffer(t)
			out := filepath.Join(t.TempDir(), "trace.parquet")
			cap := helperCmd(t, "record", "CAPTURE_PID="+strconv.Itoa(w.cmd.Process.Pid), "CAPTURE_OUT="+out, "CAPTURE_BACKEND="+backend)
			require.NoError(t, cap.Start())
			waitFor(t, func() bool { _, err := os.Stat(filepath.Join(out, "seg-000000.parquet")); return err == nil })
			assert.Empty(t, uffdFDs(t, w.cmd.Process.Pid), "the injected descriptor must be closed in the target")
			fmt.Fprintln(w.stdin, "go")
			time.Sleep(700 * time.Millisecond) // mid-phase
			require.NoError(t, cap.Process.Kill())
			cap.Wait()
			w.readRest(t)
			require.NoError(t, w.cmd.Wait())
			assert.Equal(t, want, w.sum, "the target computed a different result after the capture died")
			assert.Len(t, w.phases, 4)
			require.NoError(t, tracefmt.Validate(out), "finished segments must read as a trace")
			h, epochs, err := tracefmt.ReadAll(out)
			require.NoError(t, err)
			t.Logf("%s: %d epochs survive in the killed capture's trace (%d pages)", backend, len(epochs), h.Pages)
			assert.NotEmpty(t, epochs)
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 20s")
}

// uffdFDs lists pid's userfaultfd descriptors.
func uffdFDs(t *testing.T, pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); strings.Contains(l, "userfaultfd") {
			out = append(out, e.Name()+" -> "+l)
		}
	}
	return out
}

// TestAttachBlockedInSyscall attaches to processes sleeping in restartable
// system calls: the injection interrupts them, and restoring the registers
// must make them resume as if nothing happened.
func TestAttachBlockedInSyscall(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	cmd := exec.Command("sleep", "1.5")
	start := time.Now()
	require.NoError(t, cmd.Start())
	time.Sleep(300 * time.Millisecond)
	st, err := Record(context.Background(), Target{PID: cmd.Process.Pid},
		Options{Epoch: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Output: filepath.Join(t.TempDir(), "t.parquet")})
	require.NoError(t, err)
	assert.Equal(t, "duration", st.Stopped)
	require.NoError(t, cmd.Wait(), "sleep must exit 0")
	el := time.Since(start)
	// Returning early would show a lost restart; restarting the whole sleep
	// would take 0.3 s more.
	assert.GreaterOrEqual(t, el.Seconds(), 1.5, "sleep returned early")
	assert.Less(t, el.Seconds(), 1.79, "sleep restarted from scratch")
}

func TestErrors(t *testing.T) {
	t.Run("pid gone", func(t *testing.T) {
		needUffdWP(t, "uffd-wp-async")
		cmd := exec.Command("true")
		require.NoError(t, cmd.Run())
		_, err := Attach(cmd.Process.Pid, TrackerOptions{}, nil)
		require.Error(t, err)
		assert.True(t, errors.Is(err, ErrTargetGone), "%v", err)
		assert.Contains(t, err.Error(), strconv.Itoa(cmd.Process.Pid))
	})
	t.Run("soft-dirty missing", func(t *testing.T) {
		if probeSoftDirty() == nil {
			t.Skip("this kernel has CONFIG_MEM_SOFT_DIRTY")
		}
		_, err := Attach(os.Getpid(), TrackerOptions{Backend: "soft-dirty"}, nil)
		require.Error(t, err)
		assert.True(t, errors.Is(err, ErrNotSupported))
		assert.Contains(t, err.Error(), "CONFIG_MEM_SOFT_DIRTY")
		assert.Contains(t, err.Error(), "uffd-wp-async")
	})
	t.Run("bad backend", func(t *testing.T) {
		_, err := Attach(os.Getpid(), TrackerOptions{Backend: "dirty-bits"}, nil)
		assert.ErrorContains(t, err, `backend "dirty-bits"`)
	})
	t.Run("ptrace not permitted", func(t *testing.T) {
		needUffdWP(t, "uffd-wp-async")
		// Run the capture as nobody against a root process.
		exe, err := os.Executable()
		require.NoError(t, err)
		dir, err := os.MkdirTemp("", "capture-nobody-")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		require.NoError(t, os.Chmod(dir, 0o755))
		bin := filepath.Join(dir, "capture.test")
		copyFile(t, exe, bin)
		target := exec.Command("sleep", "10")
		require.NoError(t, target.Start())
		defer func() { target.Process.Kill(); target.Wait() }()
		h := exec.Command(bin)
		h.Env = append(os.Environ(), "CAPTURE_HELPER=attach", "CAPTURE_PID="+strconv.Itoa(target.Process.Pid))
		h.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := h.Output()
		msg := string(out)
		assert.Contains(t, msg, "ptrace not permitted")
		assert.Contains(t, msg, "CAP_SYS_PTRACE")
		assert.Contains(t, msg, "ptrace_scope")
	})
	t.Run("disk full", func(t *testing.T) {
		needUffdWP(t, "uffd-wp-async")
		dir := t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16k"); err != nil {
			t.Skipf("needs a small tmpfs to fill: mount: %v", err)
		}
		defer syscall.Unmount(dir, 0)
		args := []string{"-pages", "4096", "-phases", "3", "-phase", "300ms", "-gap", "50ms"}
		want := expectedSum(t, args...)
		opts := Options{Epoch: 20 * time.Millisecond, Output: filepath.Join(dir, "t.parquet"), SegmentEvery: 50 * time.Millisecond}
		w := captureWriter(t, false, 0, opts, nil, args...)
		w.readRest(t)
		require.NoError(t, w.cmd.Wait())
		_, err := w.wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "disk full")
		assert.Equal(t, want, w.sum, "the target must not suffer from the capture's full disk")
	})
}

func copyFile(t *testing.T, src, dst string) {
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
