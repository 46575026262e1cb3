package main

import (
	"context"
	"fmt"
	"net"
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

	"github.com/microwiper/microwiper/capture"
	"github.com/microwiper/microwiper/tracefmt"
)

func TestCaptureUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing", []string{"capture"}, exitUsage, "give --pid N, --cgroup DIR, --qemu-qmp SOCKET or a command after --"},
		{"both", []string{"capture", "--pid", "1", "--", "true"}, exitUsage, "give one of --pid, --cgroup or a command"},
		{"bad backend", []string{"capture", "--backend", "dirty", "--", "true"}, exitUsage, `--backend "dirty"`},
		{"bad epoch", []string{"capture", "--epoch", "0s", "--", "true"}, exitUsage, "--epoch"},
		{"bad region", []string{"capture", "--region", "[x", "--", "true"}, exitUsage, "--region"},
		{"negative slowdown", []string{"capture", "--guest-slowdown", "-3", "--", "true"}, exitUsage, "--guest-slowdown -3: want a factor"},
		{"absurd slowdown", []string{"capture", "--guest-slowdown", "1e9", "--", "true"}, exitUsage, "--guest-slowdown 1e+09"},
		{"NaN slowdown", []string{"capture", "--guest-slowdown", "NaN", "--", "true"}, exitUsage, "--guest-slowdown NaN"},
		{"pid gone", []string{"capture", "--pid", "4194303", "-o", filepath.Join(t.TempDir(), "x")}, exitFailure, "check --pid"},
		{"qmp and region", []string{"capture", "--qemu-qmp", "q.sock", "--min-region", "1GiB"}, exitUsage, "picks the VM's RAM blocks itself"},
		{"qmp and command", []string{"capture", "--qemu-qmp", "q.sock", "--", "true"}, exitUsage, "picks the VM's RAM blocks itself"},
		{"qmp soft-dirty", []string{"capture", "--qemu-qmp", "q.sock", "--backend", "soft-dirty"}, exitUsage, "needs a uffd backend"},
		{"qmp no socket", []string{"capture", "--qemu-qmp", filepath.Join(t.TempDir(), "none.sock"), "-o", filepath.Join(t.TempDir(), "x")}, exitFailure, "--qemu-qmp: connect to QMP socket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := execBinary(t, "", c.args...)
			assert.Equal(t, c.code, res.code, "stderr: %s", res.stderr)
			assert.Contains(t, res.stderr, c.want)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.stderr), "\n")+1, "one line: %q", res.stderr)
		})
	}
}

// needCaptureKernel skips where capture cannot run.
func needCaptureKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("capture tests need root (CAP_SYS_PTRACE)")
	}
	if _, err := os.Stat("/proc/self/pagemap"); err != nil {
		t.Skip("capture needs Linux /proc")
	}
}

// TestCaptureLaunch captures a short command and reads the trace back.
func TestCaptureLaunch(t *testing.T) {
	needCaptureKernel(t)
	out := filepath.Join(t.TempDir(), "sh.parquet")
	// A shell that builds a few MiB of data in memory, then exits.
	res := execBinary(t, "", "capture", "--epoch", "20ms", "--guest-slowdown", "7.5", "-o", out, "--", "sh", "-c", `x=$(head -c 3000000 /dev/zero | tr '\0' a); echo ${#x}`)
	if res.code != 0 && strings.Contains(res.stderr, "not supported") {
		t.Skipf("kernel lacks userfaultfd-wp: %s", res.stderr)
	}
	require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
	assert.Equal(t, "3000000\n", res.stdout, "the command's own output must pass through unchanged")
	assert.Contains(t, res.stderr, "stopped: exit")
	require.NoError(t, tracefmt.Validate(out))
	h, _, err := tracefmt.ReadAll(out)
	require.NoError(t, err)
	best, _, err := capture.SelectBackend("")
	require.NoError(t, err)
	assert.Equal(t, best, h.Backend, "no --backend: the best the kernel offers")
	assert.Contains(t, res.stderr, "backend "+best+" (the best this kernel")
	assert.Contains(t, h.Workload, "sh -c")
	assert.NotEmpty(t, h.Regions)
	assert.Equal(t, 7.5, h.GuestSlowdown, "--guest-slowdown is recorded")
	res = execBinary(t, "", "trace", "validate", out)
	assert.Equal(t, 0, res.code, "trace validate: %s %s", res.stdout, res.stderr)
	res = execBinary(t, "", "trace", "info", out)
	assert.Equal(t, 0, res.code, "trace info: %s", res.stderr)
	assert.Contains(t, res.stdout, "slowdown     7.5: the guest ran 7.5 times slower")
}

// TestCaptureRedis captures redis-server under redis-benchmark for 10 s,
// end to end through the binary, and checks the trace with trace info and
// trace validate.
func TestCaptureRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s end-to-end capture: skipped with -short")
	}
	needCaptureKernel(t)
	server, err1 := exec.LookPath("redis-server")
	bench, err2 := exec.LookPath("redis-benchmark")
	if err1 != nil || err2 != nil {
		t.Skip("needs redis-server and redis-benchmark: apt-get install redis-server redis-tools")
	}
	port := freePort(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "redis.parquet")
	capCmd := exec.Command(buildBinary(t), "capture", "--epoch", "100ms", "--duration", "12s", "--segment", "2s", "-o", out, "--",
		server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	var capErr strings.Builder
	capCmd.Stderr = &capErr
	require.NoError(t, capCmd.Start())
	waitPort(t, port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := exec.CommandContext(ctx, bench, "-p", strconv.Itoa(port), "-q", "-n", "100000000", "-r", "200000", "-d", "256",
		"-c", "16", "-t", "set,get,incr,lpush,hset")
	bout, _ := b.CombinedOutput()
	t.Logf("redis-benchmark (stopped after 10 s): %s", lastLine(string(bout)))
	require.NoError(t, capCmd.Wait(), "capture: %s", capErr.String())
	t.Logf("capture: %s", strings.TrimSpace(capErr.String()))
	require.NoError(t, tracefmt.Validate(out))
	res := execBinary(t, "", "trace", "validate", out)
	assert.Equal(t, 0, res.code, "trace validate: %s %s", res.stdout, res.stderr)
	res = execBinary(t, "", "trace", "info", out)
	require.Equal(t, 0, res.code, "trace info: %s", res.stderr)
	assert.Contains(t, res.stdout, "uffd-wp-async")
	assert.Contains(t, res.stdout, "redis-server")
	h, err := tracefmt.Open(out)
	require.NoError(t, err)
	defer h.Close()
	epochs := 0
	for h.Scan() {
		epochs++
	}
	require.NoError(t, h.Err())
	assert.Greater(t, epochs, 50, "a busy server writes memory in most 100 ms epochs of 10 s")
	t.Logf("trace: %d epochs with writes, %d rows, %d pages", epochs, h.Rows(), h.Header().Pages)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d after 20 s", port)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestCaptureSignal stops captures with SIGINT and SIGTERM: each must
// finish a readable trace and exit 0; an attached target runs on, a
// launched one is stopped with the capture.
func TestCaptureSignal(t *testing.T) {
	needCaptureKernel(t)
	for _, c := range []struct {
		name   string
		sig    os.Signal
		launch bool
	}{
		{"attach/SIGTERM", syscall.SIGTERM, false},
		{"attach/SIGINT", os.Interrupt, false},
		{"launch/SIGTERM", syscall.SIGTERM, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "t.parquet")
			args := []string{"capture", "--epoch", "50ms", "--segment", "0", "-o", out}
			var target *exec.Cmd
			if c.launch {
				args = append(args, "--", "sleep", "30")
			} else {
				target = exec.Command("sleep", "30")
				require.NoError(t, target.Start())
				defer func() { target.Process.Kill(); target.Wait() }()
				args = append(args, "--pid", strconv.Itoa(target.Process.Pid))
			}
			cmd := exec.Command(buildBinary(t), args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			time.Sleep(time.Second)
			require.NoError(t, cmd.Process.Signal(c.sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				require.NoError(t, err, "stderr: %s", stderr.String())
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("capture did not stop on %v; stderr: %s", c.sig, stderr.String())
			}
			assert.Contains(t, stderr.String(), "stopped: signal")
			require.NoError(t, tracefmt.Validate(out), "one-file trace finished on the signal")
			if target != nil {
				assert.NoError(t, target.Process.Signal(syscall.Signal(0)), "the attached target must still run")
			}
		})
	}
}

// TestCaptureZeroWrites: --zero-writes through the binary. The capture
// tests' writer fills 256 pages, sets every third back to zeros and
// refills every ninth: the trace marks the 86 zeroed pages' writes, the
// capture says how many it found, and trace info counts them.
func TestCaptureZeroWrites(t *testing.T) {
	needCaptureKernel(t)
	dir := t.TempDir()
	writer := filepath.Join(dir, "writer")
	build, err := exec.Command("go", "build", "-o", writer, "../../capture/testdata/writer").CombinedOutput()
	require.NoError(t, err, "%s", build)
	out := filepath.Join(dir, "zero.parquet")
	res := execBinary(t, "", "capture", "--zero-writes", "--epoch", "20ms", "-o", out, "--", writer, "-mode", "zero", "-pages", "256", "-gap", "200ms", "-settle", "100ms")
	if res.code != 0 && strings.Contains(res.stderr, "not supported") {
		t.Skipf("kernel lacks userfaultfd-wp: %s", res.stderr)
	}
	require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
	assert.Regexp(t, `zero writes: \d+ of \d+ written pages held only zeros at the end of their epoch \(checked in [^,]+, [^ ]+ an epoch\)`, res.stderr)
	_, epochs, err := tracefmt.ReadAll(out)
	require.NoError(t, err)
	zero := 0
	for _, e := range epochs {
		for _, z := range e.Zero {
			if z {
				zero++
			}
		}
	}
	assert.GreaterOrEqual(t, zero, 86, "every zeroed page's write is marked")
	res = execBinary(t, "", "trace", "info", out)
	require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
	assert.Contains(t, res.stdout, fmt.Sprintf("zero writes  %d (", zero))
}
