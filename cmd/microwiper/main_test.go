package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// update rewrites golden files instead of comparing: go test -run X -update.
var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var (
	binDir     string
	binOnce    sync.Once
	binPath    string
	binErr     error
	binCleanup = func() {}
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	binCleanup()
	os.Exit(code)
}

// buildBinary builds the microwiper binary once per test run, into a
// temporary directory removed after the tests, and returns its path. CLI
// tests exec it so they see exactly what a user sees: flag parsing, exit
// codes, stdout and stderr.
func buildBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "microwiper-bin-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binCleanup = func() { os.RemoveAll(dir) }
		binPath = filepath.Join(dir, "microwiper")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("build microwiper: %v", binErr)
	}
	return binPath
}

// cliResult is what one execution of the binary produced.
type cliResult struct {
	stdout, stderr string
	code           int
}

// execBinary runs the binary with args in dir ("" for the test's working
// directory) and returns its output and exit status.
func execBinary(t testing.TB, dir string, args ...string) cliResult {
	t.Helper()
	return execBinaryStdin(t, dir, "", args...)
}

// execBinaryStdin is execBinary with stdin.
func execBinaryStdin(t testing.TB, dir, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	res := cliResult{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("run microwiper %v: %v", args, err)
	}
	return res
}

// checkGolden compares got with testdata/name, or rewrites it under
// -update. On a mismatch it writes testdata/name.got-stdout (git-ignored)
// and prints a line diff.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test -run %s -update", t.Name())
	if string(want) == got {
		return
	}
	_ = os.WriteFile(path+".got-stdout", []byte(got), 0o644)
	t.Errorf("output differs from %s (got written to %s.got-stdout; -update to accept):\n%s", path, path, lineDiff(string(want), got))
}

// lineDiff is a minimal diff: lines only in want (-) and only in got (+),
// in order, via a longest common subsequence.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out.WriteString("  " + a[i] + "\n")
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + b[j] + "\n")
			j++
		default:
			out.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return out.String()
}
