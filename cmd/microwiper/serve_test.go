package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startServe execs `microwiper serve` on a free loopback port and returns
// the process and the address it listens on.
func startServe(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), append([]string{"serve", "-listen", "127.0.0.1:0"}, args...)...)
	addr, _ := startServeCmd(t, cmd)
	return cmd, addr
}

// startServeCmd starts cmd, a serve, and returns its address and a
// function returning what it logged so far.
func startServeCmd(t *testing.T, cmd *exec.Cmd) (string, func() string) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`listen=(\S+)`)
	addr := make(chan string, 1)
	go func() {
		found := false
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addr <- m[1]
			}
		}
	}()
	logged := func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
	select {
	case a := <-addr:
		return a, logged
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not report its address: %s", logged())
	}
	return "", nil
}

func genTrace(t *testing.T, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.parquet")
	out, err := exec.Command(buildBinary(t), append([]string{"trace", "gen", "-o", path}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return path
}

func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return o.String(), e.String(), code
}

// TestServeRemoteReplay runs replay -engine socket against a served
// destination, then kills the destination in the middle of a second run:
// that run must fail with the receiver error, promptly.
func TestServeRemoteReplay(t *testing.T) {
	serve, addr := startServe(t, "-token", "s3cret", "-max-memory", "64MiB")
	trace := genTrace(t, "-kind", "wws", "-memory", "4MiB", "-duration", "3s", "-epoch", "10ms")

	out, errOut, code := runBin(t, "replay", "-engine", "socket", "-link", "remote", "-remote", addr, "-token", "s3cret",
		"-alg", "all", "-bw", "1Gbit", trace)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	for _, alg := range []string{"xen-precopy", "xen-v2", "qemu-precopy", "microwiper", "stop-and-copy"} {
		assert.Contains(t, out, "alg="+alg+"/")
	}
	assert.NotContains(t, out, "oracle", "-alg all drops the bound for the socket engine")

	_, errOut, code = runBin(t, "replay", "-engine", "socket", "-link", "remote", "-remote", addr, "-token", "wrong", "-alg", "xen-v2", trace)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "receiver refused the handshake: authentication failed")

	big := genTrace(t, "-kind", "uniform", "-memory", "128MiB", "-duration", "1s")
	_, errOut, code = runBin(t, "replay", "-engine", "socket", "-link", "remote", "-remote", addr, "-token", "s3cret", "-alg", "xen-v2", big)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "memory request too large")

	// A slow run (4 MiB at 10 Mbit/s takes over 3 s); kill -9 the
	// destination after a moment.
	cmd := exec.Command(buildBinary(t), "replay", "-engine", "socket", "-link", "remote", "-remote", addr, "-token", "s3cret",
		"-alg", "stop-and-copy", "-bw", "10Mbit", "-timeout", "5s", trace)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, serve.Process.Signal(syscall.SIGKILL))
	start := time.Now()
	err := cmd.Wait()
	require.Error(t, err)
	assert.Less(t, time.Since(start), 4*time.Second)
	assert.Contains(t, stderr.String(), "receiver closed the connection (killed or gone)")
}

// TestServeOutOfDescriptors: with its file limit reached by idle
// unauthenticated connections (caps raised past the limit), serve backs
// off and keeps serving, and serves a replay once they are gone.
func TestServeOutOfDescriptors(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for ulimit")
	}
	cmd := exec.Command("sh", "-c", `ulimit -n 48 && exec "$0" "$@"`, buildBinary(t),
		"serve", "-listen", "127.0.0.1:0", "-token", "k", "-max-memory", "64MiB", "-max-conns", "500", "-max-handshakes", "500")
	addr, logged := startServeCmd(t, cmd)
	var idle []net.Conn
	for range 80 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		idle = append(idle, c)
	}
	require.Eventually(t, func() bool { return strings.Contains(logged(), "accept failed; retrying") }, 10*time.Second, 20*time.Millisecond,
		"serve never ran out of descriptors: %s", logged())
	assert.Contains(t, logged(), "too many open files")
	for _, c := range idle {
		c.Close()
	}
	trace := genTrace(t, "-kind", "wws", "-memory", "1MiB", "-duration", "1s", "-epoch", "10ms")
	_, errOut, code := runBin(t, "replay", "-engine", "socket", "-link", "remote", "-remote", addr, "-token", "k", "-alg", "xen-v2", trace)
	assert.Equal(t, 0, code, "stderr: %s\nserve: %s", errOut, logged())
}

// TestServeStopsOnSignal: SIGINT ends serve cleanly with status 0.
func TestServeStopsOnSignal(t *testing.T) {
	serve, _ := startServe(t)
	require.NoError(t, serve.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve ignored SIGINT")
	}
}

func TestServeUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-max-memory", "lots"}, "invalid value \"lots\" for flag -max-memory"},
		{[]string{"serve", "-timeout", "0s"}, "-timeout 0s: want a positive duration"},
		{[]string{"serve", "extra"}, "serve takes no arguments"},
		{[]string{"serve", "-max-conns", "0"}, "-max-conns 0, -max-handshakes 16: want positive counts"},
		{[]string{"replay", "-engine", "socket", "-link", "carrier-pigeon", "x.parquet"}, "-link \"carrier-pigeon\": want loopback, netns or remote"},
		{[]string{"replay", "-engine", "socket", "-link", "remote", "x.parquet"}, "-link remote needs -remote host:port"},
		{[]string{"replay", "-engine", "socket", "-alg", "oracle", "x.parquet"}, "only -engine sim runs it"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, errb.String(), tc.want)
		})
	}
}
