package main

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/microwiper/microwiper/replay"
	"github.com/microwiper/microwiper/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplayStarts: -starts N -seed S runs every cell from the N start
// times replay.StartTimes draws (reps 0..N-1, seed S), prints one
// distribution row per cell, and a variant runs under its own name.
func TestReplayStarts(t *testing.T) {
	trace := writeReplayTrace(t)
	out := filepath.Join(t.TempDir(), "out")
	res := execBinary(t, "", "replay", "-alg", "xen-precopy,microwiper/held-final", "-bw", "100Mbit", "-starts", "10", "-seed", "3",
		"-bench=false", "-out", out, trace)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stdout, "starts")
	assert.Contains(t, res.stdout, "95% interval")
	assert.Contains(t, res.stdout, "microwiper/held-final")
	d, err := results.Read(out)
	require.NoError(t, err)
	runs := d.Runs
	require.Len(t, runs, 20)
	tr, err := replay.LoadTrace(trace)
	require.NoError(t, err)
	want := replay.StartTimes(tr, 10, 3)
	ids := map[string]bool{}
	for i, r := range runs {
		assert.Equal(t, int64(i%10), r.Rep)
		assert.Equal(t, int64(3), r.Seed)
		ids[r.RunID] = true
	}
	assert.Len(t, ids, 20, "every start is its own run")
	// The start shows in the result only through the run: replay one start
	// alone with -start and get the same downtime.
	one := filepath.Join(t.TempDir(), "one")
	res = execBinary(t, "", "replay", "-alg", "xen-precopy", "-bw", "100Mbit", "-start", fmtNS(want[4]), "-bench=false", "-out", one, trace)
	require.Equal(t, 0, res.code, res.stderr)
	sd, err := results.Read(one)
	require.NoError(t, err)
	single := sd.Runs
	assert.Equal(t, runs[4].DowntimeNS, single[0].DowntimeNS)
	assert.Equal(t, runs[4].PagesSent, single[0].PagesSent)

	res = execBinary(t, "", "replay", "-starts", "3", "-start", "1s", trace)
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "-starts draws the start times")
}

func fmtNS(ns int64) string { return strconv.FormatInt(ns, 10) + "ns" }
