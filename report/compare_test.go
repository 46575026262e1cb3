package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompareBenchGolden(t *testing.T) {
	old, err := ReadSamples("testdata/old.txt")
	require.NoError(t, err)
	new, err := ReadSamples("testdata/new.txt")
	require.NoError(t, err)
	require.Len(t, new.Warnings, 1, "the malformed line")
	assert.Contains(t, new.Warnings[0], "testdata/new.txt:")
	var b bytes.Buffer
	require.NoError(t, CompareSamples(old, new).Write(&b))
	out := b.String()
	golden(t, "compare.golden", out)

	// What the golden file must show, stated so that a bad -update fails.
	line := func(prefix string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, out)
		return ""
	}
	assert.Contains(t, line("downtime-ms"), "delta")
	mw := line("Migrate/trace=kv/alg=microwiper/bw=1Gbit ")
	assert.Regexp(t, `-[12][0-9]\.[0-9]{2}%\s+p=0\.00[0-9]\s+6\+6$`, mw, "a 20% cut in downtime is significant")
	xen := line("Migrate/trace=kv/alg=xen-precopy/bw=1Gbit ")
	assert.Regexp(t, `\s~\s+p=`, xen, "the same distribution is not")
	assert.Contains(t, out, "only in new: Migrate/trace=kv/alg=oracle/bw=1Gbit")
}

func TestCompareDirectoryAgainstBench(t *testing.T) {
	// A result directory and the benchmark lines of the same runs name
	// their benchmarks alike and compare as equal.
	s, err := Load(shard0)
	require.NoError(t, err)
	var lines strings.Builder
	for _, r := range s.Runs {
		lines.WriteString("Benchmark" + benchName(r) + " 1 " + itoa(r.TotalNS) + " ns/op " + ftoa(float64(r.DowntimeNS)/1e6) + " downtime-ms " + itoa(r.PagesSent) + " pages-sent\n")
	}
	bench := filepath.Join(t.TempDir(), "bench.txt")
	require.NoError(t, os.WriteFile(bench, []byte(lines.String()), 0o644))
	a, err := ReadSamples(shard0)
	require.NoError(t, err)
	b, err := ReadSamples(bench)
	require.NoError(t, err)
	c := CompareSamples(a, b)
	require.NotEmpty(t, c.Rows)
	assert.Empty(t, c.OnlyOld)
	assert.Empty(t, c.OnlyNew)
	for _, r := range c.Rows {
		assert.False(t, r.Test.Significant, "%s %s: %v vs %v", r.Name, r.Unit, r.Old, r.New)
	}
}

func itoa(v int64) string   { return strings.TrimSpace(fmtPlain(float64(v))) }
func ftoa(v float64) string { return fmtPlain(v) }
func fmtPlain(v float64) string {
	return strings.TrimRight(strings.TrimRight(strconvF(v), "0"), ".")
}

func TestCompareErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, []byte("goos: linux\n"), 0o644))
	_, err := ReadSamples(empty)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no benchmark results")

	_, err = ReadSamples(filepath.Join(dir, "missing.txt"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.txt")

	other := filepath.Join(dir, "other.txt")
	require.NoError(t, os.WriteFile(other, []byte("BenchmarkOther 1 5 ns/op\n"), 0o644))
	a, err := ReadSamples(other)
	require.NoError(t, err)
	b, err := ReadSamples("testdata/old.txt")
	require.NoError(t, err)
	err = CompareSamples(a, b).Write(&bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing to compare")
}

// FuzzReadBench: any input is read or refused, never a panic or a hang,
// and what is read has finite values under names and units it lists.
func FuzzReadBench(f *testing.F) {
	for _, p := range []string{"testdata/old.txt", "testdata/new.txt"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("BenchmarkX 1 NaN ns/op\n"))
	f.Add([]byte("BenchmarkX/a=b-8 3 1e400 ns/op 1 x\nUnit x better=higher\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang would stall the fuzzer silently; crash with the input and
		// every goroutine's stack.
		timer := time.AfterFunc(10*time.Second, func() { debug.SetTraceback("all"); panic(fmt.Sprintf("hang on %q", data)) })
		defer timer.Stop()
		s, err := ReadBench(bytes.NewReader(data), "fuzz.txt")
		if err != nil {
			return
		}
		for _, n := range s.Names {
			for u, vs := range s.Values[n] {
				assert.Contains(t, s.Units, u)
				for _, v := range vs {
					assert.False(t, v != v, "NaN kept")
				}
			}
		}
		c := CompareSamples(s, s)
		_ = c.Write(&bytes.Buffer{})
	})
}

func strconvF(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

func TestRegressions(t *testing.T) {
	old, err := ReadSamples("testdata/old.txt")
	require.NoError(t, err)
	new, err := ReadSamples("testdata/new.txt")
	require.NoError(t, err)
	assert.Empty(t, CompareSamples(old, new).Regressions(0), "new only improves")
	back := CompareSamples(new, old).Regressions(0)
	require.Len(t, back, 1, "the reverse is a downtime regression")
	assert.Equal(t, "downtime-ms", back[0].Unit)
	assert.Contains(t, back[0].Name, "alg=microwiper")
	assert.Empty(t, CompareSamples(new, old).Regressions(50), "25% is under a 50% threshold")
}
