package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/microwiper/microwiper/replay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseInterspersed(t *testing.T) {
	defRTT := time.Duration(replay.DefaultRTTNS)
	tests := []struct {
		args []string
		pos  []string
		alg  string
		rtt  time.Duration
	}{
		{[]string{"a.parquet"}, []string{"a.parquet"}, "all", defRTT},
		{[]string{"a.parquet", "--alg", "xen-precopy"}, []string{"a.parquet"}, "xen-precopy", defRTT},
		{[]string{"-rtt", "1ms", "a", "-alg=x", "b", "--rtt", "2ms"}, []string{"a", "b"}, "x", 2 * time.Millisecond},
		{[]string{"a", "--", "-alg", "b"}, []string{"a", "-alg", "b"}, "all", defRTT},
		{[]string{"-", "out.parquet"}, []string{"-", "out.parquet"}, "all", defRTT},
		{nil, nil, "all", defRTT},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var o replayOptions
		o.bind(fs)
		pos, err := parseInterspersed(fs, tc.args)
		require.NoError(t, err, tc.args)
		assert.Equal(t, tc.pos, pos, tc.args)
		assert.Equal(t, tc.alg, o.Alg, tc.args)
		assert.Equal(t, tc.rtt, o.RTT, tc.args)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o replayOptions
	o.bind(fs)
	_, err := parseInterspersed(fs, []string{"a", "--nope"})
	assert.ErrorContains(t, err, "flag provided but not defined: -nope")
}

// TestTypedFlags: every typed flag parses into its field, with the
// shared units, and repeatable flags collect.
func TestTypedFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o replayOptions
	o.bind(fs)
	require.NoError(t, fs.Parse([]string{"-bw", "100Mbit,1Gbit", "-memory", "4GiB", "-param", "a.b=1", "-param", "c.d=2",
		"-start", "10s", "-link", "netns", "-timeout", "5s", "-token", "x"}))
	assert.Equal(t, []int64{100e6, 1e9}, o.BW)
	assert.EqualValues(t, 4<<30, o.Memory)
	assert.Equal(t, []string{"a.b=1", "c.d=2"}, o.Params)
	assert.Equal(t, 10*time.Second, o.Start)
	assert.Equal(t, "netns", o.Socket.Link)
	assert.Equal(t, 5*time.Second, o.Socket.Peer.Timeout)
	assert.Equal(t, "x", o.Socket.Peer.Token)
	assert.Error(t, fs.Parse([]string{"-bw", "fast"}))
	assert.Error(t, fs.Parse([]string{"-rtt", "-1s"}))
	assert.Error(t, fs.Parse([]string{"-param", ""}))

	var c traceConvertOptions
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	c.bind(fs)
	require.NoError(t, fs.Parse([]string{"-pages", "64", "-workload", ""}))
	assert.Equal(t, opt[int64]{64, true}, c.Pages)
	assert.Equal(t, opt[string]{"", true}, c.Workload)
	assert.False(t, c.Epoch.Set)
}
