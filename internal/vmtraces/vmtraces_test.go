package vmtraces

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite traces/vm/README.md from the shipped traces")

const shipped = "../../traces/vm"

// TestREADMEUpToDate rebuilds traces/vm/README.md from the shipped traces:
// a trace recaptured, added or removed without `make traces` rewriting the
// README fails here.
func TestREADMEUpToDate(t *testing.T) {
	want, err := README(shipped, Workloads)
	require.NoError(t, err)
	path := filepath.Join(shipped, "README.md")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "traces/vm/README.md is stale: run make traces, or go test ./internal/vmtraces -update")
}

// The shipped traces keep the sizes issue 13 asks for, and each records
// its guest's slowdown and the guest it describes.
func TestShippedTraces(t *testing.T) {
	var total int64
	for _, w := range Workloads {
		r, err := Measure(shipped, w)
		require.NoError(t, err)
		total += r.Bytes
		assert.LessOrEqual(t, r.Bytes, int64(5e6), "%s: at most 5 MB", w.Name)
		assert.Greater(t, r.Slowdown, 1.0, "%s: a TCG guest is slower than its host", w.Name)
		assert.Equal(t, w.MemoryMiB, r.MemoryMiB, w.Name)
		assert.Equal(t, w.CPUs, r.CPUs, w.Name)
		assert.NotEmpty(t, r.Kernel, w.Name)
		assert.GreaterOrEqual(t, r.DurationNS, int64(30e9), "%s: 30-60 s", w.Name)
		assert.LessOrEqual(t, r.DurationNS, int64(61e9), "%s: 30-60 s", w.Name)
		assert.Positive(t, r.Dirtyings, w.Name)
	}
	assert.LessOrEqual(t, total, int64(40e6), "all workload traces together at most 40 MB")
}
