package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// TestCaptureMakeJ2 captures a parallel build: make, the shells it runs,
// and every compiler process they fork (cc, cc1, as, collect2, ld). trace
// info must show them as processes, each with its pages and dirty rate.
func TestCaptureMakeJ2(t *testing.T) {
	needCaptureKernel(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("needs a C compiler (cc)")
	}
	src, err := filepath.Abs("../../capture/testdata/tree/tree.c")
	require.NoError(t, err)
	dir := t.TempDir()
	// Eight translation units compiled in parallel, then linked: the
	// process tree of any C build.
	var objs []string
	for i := 0; i < 8; i++ {
		objs = append(objs, fmt.Sprintf("u%d.o", i))
	}
	mk := "CFLAGS = -O2\nall: prog\nprog: " + strings.Join(objs, " ") + "\n\t$(CC) -o $@ u0.o\n" +
		"u%.o: " + src + "\n\t$(CC) $(CFLAGS) -DUNIT=$* -c -o $@ $<\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644))
	out := filepath.Join(dir, "build.parquet")
	res := execBinary(t, dir, "capture", "--epoch", "50ms", "-o", out, "--", "make", "-j2")
	require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
	assert.FileExists(t, filepath.Join(dir, "prog"), "the build succeeded under capture")
	m := regexp.MustCompile(`(\d+) processes`).FindStringSubmatch(res.stderr)
	require.NotNil(t, m, res.stderr)
	n, _ := strconv.Atoi(m[1])
	assert.GreaterOrEqual(t, n, 1+8*3, "make, and for each unit at least cc, cc1 and as: %s", res.stderr)
	require.NoError(t, tracefmt.Validate(out))

	res = execBinary(t, "", "trace", "info", out)
	require.Equal(t, 0, res.code, "trace info: %s", res.stderr)
	t.Logf("trace info:\n%s", res.stdout)
	assert.Contains(t, res.stdout, "processes ")
	for _, comm := range []string{"make", "cc1", "as"} {
		assert.Regexp(t, `pid \d+ `+comm+` +\d+ +\d+ +\d+ `, res.stdout, "a line for %s with pages, written and dirty rate", comm)
	}
	assert.Regexp(t, `freed by exit or exec: [1-9]\d* pages`, res.stdout, "the compilers' memory is freed when they exit")
}
