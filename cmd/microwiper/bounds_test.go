package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// csvTrace writes a two-row CSV trace with the given metadata changes and
// converts it; it returns the Parquet path, or the CSV path and the
// conversion's stderr when conversion fails.
func csvTrace(t *testing.T, pages, pageSize, epochNS string) (string, string, int) {
	t.Helper()
	dir := t.TempDir()
	csv := filepath.Join(dir, "t.csv")
	body := fmt.Sprintf("# backend=synthetic\n# epoch_ns=%s\n# kernel=\n# microwiper.format=trace/v1\n# page_size=%s\n# pages=%s\n# workload=hand\nt_ns,page,writes\n1,0,1\n2,1,1\n",
		epochNS, pageSize, pages)
	require.NoError(t, os.WriteFile(csv, []byte(body), 0o644))
	out := filepath.Join(dir, "t.parquet")
	_, errOut, code := runBin(t, "trace", "convert", csv, out)
	return out, errOut, code
}

// TestResourceBounds plays the "resource bounds" cases of issue 12
// through the binary: each is refused promptly with the reason, exit 1
// (or 2 for a flag out of range), never a panic, a negative downtime or
// hours of work.
func TestResourceBounds(t *testing.T) {
	huge, _, code := csvTrace(t, "2147483647", "4096", "1000000")
	require.Equal(t, 0, code)
	tiny, _, code := csvTrace(t, "16", "4096", "1")
	require.Equal(t, 0, code)
	gib := genTrace(t, "-kind", "hotcold", "-memory", "1GiB", "-duration", "2s")
	rows := genTrace(t, "-kind", "uniform", "-memory", "64MiB", "-duration", "10s", "-epoch", "10ms")

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"trace claiming 2^31-1 pages", []string{"replay", "-alg", "xen-precopy", huge}, 1,
			"needs 64.0 GiB (2147483647 pages × 32 B/page"},
		{"--memory 7TiB", []string{"replay", "-alg", "xen-precopy", "-memory", "7TiB", gib}, 1,
			"needs 56.0 GiB (1879048192 pages × 32 B/page"},
		{"footer rows beyond --max-memory", []string{"replay", "-alg", "xen-precopy", "-max-memory", "32KiB", rows}, 1,
			"rows: loading needs"},
		{"--param stripe_pages=2^63-1", []string{"replay", "-alg", "microwiper", "-param", "microwiper.stripe_pages=9223372036854775807", gib}, 2,
			"stripe_pages = 9223372036854775807: want 0 (automatic) to 2147483648"},
		{"--resume-overhead 2562047h --rtt 10h", []string{"replay", "-alg", "xen-precopy", "-rtt", "10h", "-resume-overhead", "2562047h", gib}, 2,
			"want 0 to 1h0m0s"},
		{"--resume-overhead 2562047h", []string{"replay", "-alg", "xen-precopy", "-resume-overhead", "2562047h", gib}, 2,
			"resume overhead 2562047h0m0s: want 0 to 1h0m0s"},
		{"--bw 1bit", []string{"replay", "-alg", "xen-precopy", "-bw", "1bit", gib}, 1,
			"once takes 273.4 years at 1bit"},
		{"--rtt 1000h", []string{"replay", "-alg", "xen-precopy", "-rtt", "1000h", gib}, 2,
			"rtt 1000h0m0s: want 0 to 1h0m0s"},
		{"a cap of 1 B/s", []string{"replay", "-alg", "qemu-precopy", "-param", "qemu-precopy.max_bandwidth=1", gib}, 1,
			"max_bandwidth of 1 B/s one round takes"},
		{"2 rows with a 1 ns epoch, oracle", []string{"replay", "-alg", "oracle", tiny}, 1,
			"oracle would take about"},
		{"-fail-worse NaN", []string{"compare", "-fail-worse", "NaN", gib, gib}, 2,
			"-fail-worse NaN: want a percentage"},
		{"-fail-worse +Inf", []string{"compare", "-fail-worse", "+Inf", gib, gib}, 2,
			"-fail-worse +Inf: want a percentage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, errOut, code := runBin(t, tc.args...)
			assert.Equal(t, tc.code, code, "stderr: %s", errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, errOut, "panic")
			assert.Less(t, time.Since(start), 10*time.Second)
		})
	}
}

// TestHeaderBoundsRefused: memory overflowing int64 and a page size of
// 2^62 are refused as metadata, naming the key.
func TestHeaderBoundsRefused(t *testing.T) {
	_, errOut, code := csvTrace(t, "9223372036854775807", "4096", "1000000")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "pages = 9223372036854775807 of 4096 bytes: memory above 4611686018427387904 bytes")
	_, errOut, code = csvTrace(t, "16", "4611686018427387904", "1000000")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "page_size = 4611686018427387904: want a positive power of two up to 1073741824")
}

// TestRunRepsBounded: an experiment of 10^12 repetitions is refused
// before its matrix is built.
func TestRunRepsBounded(t *testing.T) {
	dir := t.TempDir()
	trace := genTrace(t, "-kind", "uniform", "-memory", "1MiB", "-duration", "1s")
	for _, tc := range []struct{ reps, want string }{
		{"1000000000000", "reps 1000000000000: want 0 to 100000"},
		{"100000", "take the matrix past 1000000 runs"},
	} {
		exp := filepath.Join(dir, "e"+tc.reps+".json")
		body := fmt.Sprintf(`{"experiments": [{"traces": [%q], "replay": ["-alg", "all", "-bw", "1Gbit,2Gbit"], "reps": %s}]}`, trace, tc.reps)
		require.NoError(t, os.WriteFile(exp, []byte(body), 0o644))
		start := time.Now()
		_, errOut, code := runBin(t, "run", "--list", exp)
		assert.Equal(t, 1, code, "stderr: %s", errOut)
		assert.Contains(t, errOut, tc.want)
		assert.Less(t, time.Since(start), 10*time.Second)
	}
}

// TestReplayStopsOnSignal: SIGINT and SIGTERM reach a running replay,
// which stops promptly with an error instead of finishing.
func TestReplayStopsOnSignal(t *testing.T) {
	trace := genTrace(t, "-kind", "wws", "-memory", "4MiB", "-duration", "3s", "-epoch", "10ms")
	hot := filepath.Join("..", "..", "traces", "shipped", "hotcold-1gib.parquet")
	runs := map[string][]string{
		// 4 MiB at 5 Mbit/s takes over 6 s on the socket engine.
		"socket": {"replay", "-engine", "socket", "-alg", "stop-and-copy", "-bw", "5Mbit", "-bench=false", trace},
		// Minutes of oracle scans, admitted by a raised --max-work.
		"sim": {"replay", "-alg", "oracle", "-dirty", "once", "-bw", "10Mbit", "-max-work", "1e12", "-bench=false", hot},
	}
	for _, eng := range []string{"socket", "sim"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(eng+"/"+sig.String(), func(t *testing.T) {
				cmd := exec.Command(buildBinary(t), runs[eng]...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				require.NoError(t, cmd.Start())
				time.Sleep(700 * time.Millisecond)
				require.NoError(t, cmd.Process.Signal(sig))
				start := time.Now()
				err := cmd.Wait()
				require.Error(t, err, "the run must not finish as if uninterrupted")
				assert.Less(t, time.Since(start), 3*time.Second)
				assert.True(t, strings.Contains(stderr.String(), "context canceled") || strings.Contains(stderr.String(), "interrupt"),
					"stderr: %s", stderr.String())
			})
		}
	}
}
