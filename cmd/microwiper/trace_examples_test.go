package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// TestTraceExamples runs every example line of the trace subcommands, in
// order (gen makes the files the others read), so the -h text cannot go
// stale.
func TestTraceExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the documented examples end to end: skipped under -short")
	}
	dir := t.TempDir()
	for _, c := range []command{traceGenCommand, traceInfoCommand, traceValidateCommand, traceConvertCommand} {
		for _, line := range strings.Split(strings.TrimSpace(c.example), "\n") {
			line, _, _ = strings.Cut(line, "|") // "| head" only trims what a person sees
			args := splitExample(t, line)
			require.Equal(t, "microwiper", args[0], line)
			res := execBinary(t, dir, args[1:]...)
			require.Equal(t, 0, res.code, "%s\nstderr: %s", line, res.stderr)
		}
	}
	for _, f := range []string{"hot.parquet", "wws.parquet", "back.parquet"} {
		require.NoError(t, tracefmt.Validate(filepath.Join(dir, f)))
	}
}

// splitExample splits a command line on spaces, honouring double quotes.
func splitExample(t *testing.T, line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	require.False(t, inQuote, "unbalanced quote in %q", line)
	if have {
		args = append(args, cur.String())
	}
	return args
}

// FuzzTraceConvertCSV feeds arbitrary CSV to 'trace convert' in-process:
// it must never panic, must fail with exit 1 or 2 and a one-line error, and
// whenever it succeeds the trace it wrote must pass Validate.
func FuzzTraceConvertCSV(f *testing.F) {
	f.Add([]byte("t_ns,page\n100,7\n100,3\n300,2\n"), false)
	f.Add([]byte("# pages=8\n# epoch_ns=10\nt_ns,page,writes\n0,1,0\n0,2,3\n10,1,1\n"), true)
	f.Add([]byte("t_ns,page,writes\n0,1,0\n0,1,2\n"), true)
	f.Add([]byte("# page_size=3\nt_ns,page\n1,1\n2,2\n"), false)
	f.Add([]byte("# regions=[{\"first_page\":0,\"pages\":99}]\nt_ns,page\n1,1\n2,2\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, flags bool) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.parquet")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"trace", "convert"}
		if flags {
			args = append(args, "-pages", "64", "-epoch", "10ns")
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(args, in, out), &stdout, &stderr)
		switch code {
		case 0:
			if err := tracefmt.Validate(out); err != nil {
				t.Fatalf("convert succeeded but wrote an invalid trace: %v\ninput:\n%s", err, data)
			}
		case 1, 2:
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("failed conversion left %d files behind (want only the input): %s", len(ents)-1, stderr.String())
			}
		default:
			t.Fatalf("exit %d", code)
		}
	})
}
