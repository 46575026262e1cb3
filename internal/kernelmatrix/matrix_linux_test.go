package kernelmatrix

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/internal/guest"
)

// guestScript runs in each guest. Its report goes to the raw second serial
// port; the console gets the kernel's messages only.
const guestScript = `
export CAPTURE_WRITER=/bin/writer MICROWIPER_GUEST_TESTS=1
out=/dev/ttyS1
cd /tmp
echo "== kernel $(uname -r)" > $out
for b in auto uffd-wp-async uffd-wp-sync soft-dirty; do
	/bin/microwiper capture --backend $b --epoch 50ms --segment 0 -o /tmp/start-$b.parquet -- \
		/bin/writer -pages 256 -threads 1 -phases 1 -phase 100ms -gap 0s -settle 200ms > /dev/null 2> /tmp/err
	echo "== start $b $?" > $out
	cat /tmp/err > $out
done
/bin/capture.test -test.v -test.short -test.count=1 -test.timeout 15m \
	-test.run '^(TestRecallPrecision|TestKnownPatternUnpopulated|TestSelectBackendHere|TestSoftDirty.*|TestFreezer.*|TestFirstTouch|TestSelf.*|TestScanPagemapFallback|TestBackendChoice)$' > $out 2>&1
echo "== tests $?" > $out
/bin/capture.test -test.run '^$' -test.bench BenchmarkScanBackend -test.benchtime 5x > $out 2>&1
echo "== bench $?" > $out
`

// kernels are the Debian packages to boot: $KERNELS (comma-separated), else
// bookworm's default 6.1 and the newest kernel the archive carries for it.
func kernels() []string {
	if k := os.Getenv("KERNELS"); k != "" {
		return strings.Split(k, ",")
	}
	return []string{"linux-image-amd64", "linux-image-6.12-amd64"}
}

// buildStatic builds the guest's binaries: capture's tests, their writer
// and the CLI, statically linked.
func buildStatic(t *testing.T, dir string) []guest.File {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	builds := []struct{ out, pkg string }{
		{"capture.test", "./capture"},
		{"writer", "./capture/testdata/writer"},
		{"microwiper", "./cmd/microwiper"},
	}
	var files []guest.File
	for _, b := range builds {
		out := filepath.Join(dir, b.out)
		args := []string{"build", "-o", out, b.pkg}
		if strings.HasSuffix(b.out, ".test") {
			args = []string{"test", "-c", "-o", out, b.pkg}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v: %s", args, msg)
		files = append(files, guest.File{Path: "/bin/" + b.out, Source: out})
	}
	return files
}

func TestMatrix(t *testing.T) {
	if os.Getenv("MICROWIPER_GUEST_TESTS") == "" {
		t.Skip("boots QEMU guests for minutes: set MICROWIPER_GUEST_TESTS=1 (make test-kernels does)")
	}
	dir := t.TempDir()
	files := buildStatic(t, dir)
	cache, err := guest.DefaultCacheDir()
	require.NoError(t, err)
	var results []Result
	for _, pkg := range kernels() {
		ok := t.Run(pkg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			k, err := guest.FetchKernel(ctx, cache, pkg)
			require.NoError(t, err)
			t.Logf("%s -> %s %s", pkg, k.ImagePackage, k.Version)
			gd := filepath.Join(dir, pkg)
			require.NoError(t, os.MkdirAll(gd, 0o755))
			rd := filepath.Join(gd, "initrd")
			script := guestScript
			if s := os.Getenv("KERNEL_MATRIX_SCRIPT"); s != "" {
				script = s // to debug in a guest by hand
			}
			require.NoError(t, guest.Initramfs{Files: files, Script: script}.Write(ctx, rd))
			start := time.Now()
			vm, err := guest.Start(ctx, guest.Config{Kernel: k.Image(), Initrd: rd, MemoryMiB: 2048, CPUs: 2,
				Append:  "quiet transparent_hugepage=madvise",
				Console: filepath.Join(gd, "console.log"), Output: filepath.Join(gd, "report.log")})
			require.NoError(t, err)
			t.Cleanup(func() { vm.Stop() })
			err = vm.Wait(ctx)
			report := vm.Output()
			if os.Getenv("KERNEL_MATRIX_VERBOSE") != "" || t.Failed() || err != nil {
				t.Logf("guest report:\n%s", report)
			}
			require.NoError(t, err, "console: %s", vm.Console())
			t.Logf("%s: guest ran for %v", pkg, time.Since(start).Round(time.Second))
			r := Parse(report)
			require.NotEmpty(t, r.Kernel, "guest printed no kernel line; console:\n%s", vm.Console())
			results = append(results, r)
			check(t, k, r, report)
		})
		if !ok {
			t.Logf("%s failed", pkg)
		}
	}
	table := Table(results)
	t.Logf("kernel × backend:\n%s", table)
	if out := os.Getenv("KERNEL_MATRIX_OUT"); out != "" && len(results) > 0 {
		require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
		require.NoError(t, os.WriteFile(out+".tmp", []byte(table), 0o644))
		require.NoError(t, os.Rename(out+".tmp", out))
	}
}

// check holds a guest's results to what its kernel promises.
func check(t *testing.T, k *guest.Kernel, r Result, report string) {
	soft, err := k.Config("CONFIG_MEM_SOFT_DIRTY")
	require.NoError(t, err)
	assert.Zero(t, r.Tests, "capture tests failed in the guest: %v", r.Failures)
	assert.True(t, r.Cells["uffd-wp-sync"].Starts, "uffd-wp-sync must start on every kernel ≥ 5.7: %s", r.Cells["uffd-wp-sync"].StartErr)
	assert.Equal(t, soft == "y", r.Cells["soft-dirty"].Starts, "soft-dirty starts iff CONFIG_MEM_SOFT_DIRTY=y: %s", r.Cells["soft-dirty"].StartErr)
	want := "uffd-wp-async"
	if !r.Cells[want].Starts {
		want = "soft-dirty"
		assert.Contains(t, r.Cells["uffd-wp-async"].StartErr, "Linux 6.7", "a refused backend names the version that has it")
		assert.Contains(t, r.Cells["uffd-wp-async"].StartErr, "use --backend soft-dirty")
	}
	assert.Equal(t, want, r.Auto, "automatic choice")
	for _, b := range Backends {
		c := r.Cells[b]
		if !c.Starts {
			continue
		}
		assert.NotEmpty(t, c.Cases, "%s starts but no known-pattern case ran", b)
		rc, pc, hit, truth, _ := c.Summary()
		assert.GreaterOrEqual(t, rc, 0.99, "%s recall (%d/%d)", b, hit, truth)
		assert.GreaterOrEqual(t, pc, 0.99, "%s precision", b)
		assert.Positive(t, c.ScanNS, "%s: no scan benchmark", b)
	}
	if t.Failed() {
		t.Logf("guest report:\n%s", report)
	}
}
