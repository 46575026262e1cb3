package kernelmatrix

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleReport = `== kernel 6.1.0-57-amd64
== start auto 0
captured /bin/writer for 0.6s (stopped: exit): 1 epochs, 369 rows, 3 initial pages, memory 10969 pages (42.8 MiB) -> /tmp/start-auto.parquet
backend soft-dirty (the best this kernel (6.1.0-57-amd64) offers; uffd-wp-async needs UFFD_FEATURE_WP_ASYNC (Linux 6.7))
== start uffd-wp-async 1
microwiper capture: backend uffd-wp-async: kernel 6.1.0-57-amd64 lacks UFFD_FEATURE_WP_ASYNC (Linux 6.7): use --backend soft-dirty (or leave --backend out to pick the best available): not supported
== start uffd-wp-sync 0
backend uffd-wp-sync
== start soft-dirty 0
backend soft-dirty
=== RUN   TestRecallPrecision/attach/sync
    recall_linux_test.go:92: attach/sync: recall 1.0000 (11025/11025) precision 1.0000 (11025/11025, 0 stray) (142 epochs, 21931 rows)
    recall_linux_test.go:92: attach/softdirty: recall 0.9803 (10808/11025) precision 1.0000 (10808/10808, 0 stray) (87 epochs, 42049 rows)
    backend_kernels_linux_test.go:147: attach/uffd-wp-sync/unpopulated: recall 0.9990 (4042/4046) precision 0.9995 (4042/4044, 0 stray)
--- FAIL: TestRecallPrecision (51.62s)
    --- PASS: TestRecallPrecision/attach/sync (8.31s)
    --- FAIL: TestRecallPrecision/attach/softdirty (5.65s)
== tests 1
BenchmarkScanBackend/backend=uffd-wp-sync/mapped=1GiB-2          	       5	 438017678 ns/op
BenchmarkScanBackend/backend=soft-dirty/mapped=1GiB-2            	       5	 173894108 ns/op
== bench 0
`

func TestParse(t *testing.T) {
	r := Parse(sampleReport)
	assert.Equal(t, "6.1.0-57-amd64", r.Kernel)
	assert.Equal(t, "soft-dirty", r.Auto)
	assert.Contains(t, r.AutoReason, "UFFD_FEATURE_WP_ASYNC (Linux 6.7)")
	assert.Equal(t, 1, r.Tests)
	assert.Equal(t, []string{"TestRecallPrecision", "TestRecallPrecision/attach/softdirty"}, r.Failures)

	async, sync, soft := r.Cells["uffd-wp-async"], r.Cells["uffd-wp-sync"], r.Cells["soft-dirty"]
	assert.False(t, async.Starts)
	assert.Contains(t, async.StartErr, "lacks UFFD_FEATURE_WP_ASYNC")
	assert.True(t, sync.Starts)
	assert.True(t, soft.Starts)
	assert.Zero(t, async.ScanNS)
	assert.InDelta(t, 438017678, sync.ScanNS, 1)
	assert.InDelta(t, 173894108, soft.ScanNS, 1)

	require.Len(t, sync.Cases, 2)
	assert.Equal(t, "attach/sync", sync.Cases[0].Name)
	assert.True(t, sync.Cases[0].Passed)
	rc, pc, hit, truth, n := sync.Summary()
	assert.Equal(t, 0.9990, rc)
	assert.Equal(t, 0.9995, pc)
	assert.Equal(t, 11025+4042, hit)
	assert.Equal(t, 11025+4046, truth)
	assert.Equal(t, 2, n)
	require.Len(t, soft.Cases, 1)
	assert.False(t, soft.Cases[0].Passed)
	assert.Equal(t, []string{"TestRecallPrecision/attach/softdirty"}, soft.Failed)

	table := Table([]Result{r})
	assert.Contains(t, table, "| 6.1.0-57-amd64 | uffd-wp-async | no: lacks UFFD_FEATURE_WP_ASYNC (Linux 6.7) | – |")
	assert.Contains(t, table, "| 6.1.0-57-amd64 | soft-dirty | yes (auto) | 0.9803 (10808/11025 pages) | 1.0000 |")
	assert.Contains(t, table, "FAILED: TestRecallPrecision/attach/softdirty")
	assert.Contains(t, table, "| 438.0 ms |")
}

func TestParseEmpty(t *testing.T) {
	r := Parse("garbage\n== start\n== start nosuch 0\n")
	assert.Empty(t, r.Kernel)
	assert.Equal(t, -1, r.Tests)
	for _, b := range Backends {
		assert.False(t, r.Cells[b].Starts)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sampleReport)
	f.Add("== start soft-dirty 0\n--- FAIL: x/softdirty\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := Parse(s)
		_ = Table([]Result{r})
	})
}
