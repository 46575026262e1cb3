//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/internal/vmtraces"
)

// The compile workload's generated sources are valid C that gcc compiles
// without headers, and the same every time.
func TestSourcesCompile(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	dir := t.TempDir()
	files, err := writeSources(filepath.Join(dir, "a"))
	require.NoError(t, err)
	require.Len(t, files, 8)
	again, err := writeSources(filepath.Join(dir, "b"))
	require.NoError(t, err)
	for i, f := range files {
		a, _ := os.ReadFile(f.Source)
		b, _ := os.ReadFile(again[i].Source)
		assert.Equal(t, a, b, "same sources every run")
		if i > 0 {
			continue // one compile shows they are C; each takes a second
		}
		out, err := exec.Command(gcc, "-O2", "-c", "-Wall", "-Werror", "-nostdinc", "-o", filepath.Join(dir, "x.o"), f.Source).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
}

func TestScript(t *testing.T) {
	s := script(vmtraces.Workload{Setup: "setup", Run: "work"})
	assert.Equal(t, "/bin/bench\n/bin/bench\n/bin/bench\nsetup || exit 1\n( work ) &\necho "+readyMarker+"\nwait\n", s)
	s = script(vmtraces.Workload{Run: "work", Ready: "mine"})
	assert.NotContains(t, s, readyMarker)
}

func TestBenchNS(t *testing.T) {
	ns, err := benchNS("boot noise\nmicrowiper-bench cpu_ns=123 wall_ns=456 sum=ff\n")
	require.NoError(t, err)
	assert.Equal(t, int64(123), ns)
	_, err = benchNS("nothing")
	assert.Error(t, err)
	all, err := benchAll("microwiper-bench cpu_ns=5 wall_ns=1 sum=0\nmicrowiper-bench cpu_ns=9 wall_ns=1 sum=0\nmicrowiper-bench cpu_ns=7 wall")
	require.NoError(t, err)
	assert.Equal(t, []int64{5, 9}, all, "a line still being written does not count")
	assert.Equal(t, int64(7), median([]int64{9, 7, 5}))
}
