package main

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/microwiper/microwiper/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunShardsWithStartsAndVariants: the claim matrix's shape (drawn
// start times, Microwiper variants, an optional block whose traces are not
// captured yet) split into three shards gives exactly the runs of the
// unsharded matrix, and report merges the shards into a claim document.
func TestRunShardsWithStartsAndVariants(t *testing.T) {
	dir, _ := runFixture(t)
	exp := filepath.Join(dir, "exp", "claim.json")
	require.NoError(t, os.WriteFile(exp, []byte(`{"experiments": [
	  {"name": "claim", "traces": ["../traces/wws.parquet"],
	   "replay": ["-alg", "xen-precopy,oracle,microwiper,microwiper/held-final+shrink-stop", "-bw", "100Mbit", "-rtt", "1ms", "-starts", "10", "-seed", "4"]},
	  {"name": "vm", "traces": ["../traces/vm/*.parquet"], "optional": true, "replay": ["-alg", "xen-precopy"]}
	]}`), 0o644))

	whole := execBinary(t, dir, "run", "--out", "whole", exp)
	require.Zero(t, whole.code, whole.stderr)
	assert.Contains(t, whole.stderr, "block 1 (vm): skipped")
	wd, err := results.Read(filepath.Join(dir, "whole"))
	require.NoError(t, err)
	want := wd.Runs
	require.Len(t, want, 40)

	var got []results.Run
	var dirs []string
	for i, shard := range []string{"0/3", "1/3", "2/3"} {
		out := filepath.Join(dir, "shards", string(rune('0'+i)))
		r := execBinary(t, dir, "run", "--shard", shard, "--out", out, exp)
		require.Zero(t, r.code, r.stderr)
		rd, err := results.Read(out)
		require.NoError(t, err)
		got = append(got, rd.Runs...)
		dirs = append(dirs, out)
	}
	byID := func(rs []results.Run) {
		sort.Slice(rs, func(i, j int) bool { return rs[i].RunID < rs[j].RunID })
	}
	byID(want)
	byID(got)
	assert.Equal(t, want, got, "the shards' union is the unsharded run, row for row")

	repro := filepath.Join(dir, "REPRODUCTION.md")
	rep := execBinary(t, dir, append([]string{"report", "--out", "report", "--reproduction", repro, "--reproduction-figures", filepath.Join(dir, "figs")}, dirs...)...)
	require.Zero(t, rep.code, rep.stderr)
	b, err := os.ReadFile(repro)
	require.NoError(t, err)
	assert.Contains(t, string(b), "| microwiper/held-final+shrink-stop | wws | 100Mbit | 10 |")
	assert.FileExists(t, filepath.Join(dir, "figs", "claim.svg"))

	only := filepath.Join(dir, "exp", "only-vm.json")
	require.NoError(t, os.WriteFile(only, []byte(`{"experiments": [{"name": "vm", "traces": ["../traces/vm/*.parquet"], "optional": true, "replay": []}]}`), 0o644))
	r := execBinary(t, dir, "run", "--out", "o", only)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "every block was skipped")
}
