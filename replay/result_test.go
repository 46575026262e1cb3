package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/algorithms"
)

// TestRunIDChangesWithTheRun: every input that makes a different run
// changes run_id, among them the link kind and a trace of the same name
// with other content (a/redis.parquet, b/redis.parquet); the same inputs
// give the same id.
func TestRunIDChangesWithTheRun(t *testing.T) {
	tr := newTestTrace(t, 8, epoch{10, []int32{1, 2}})
	sameName := newTestTrace(t, 8, epoch{10, []int32{1, 2}}, epoch{20, []int32{3}})
	bigger := newTestTrace(t, 8, epoch{10, []int32{1, 2}})
	require.NoError(t, bigger.SetMemory(16))
	alg, err := algorithms.New("xen-precopy")
	require.NoError(t, err)
	cfg := handConfig(ms, Continuous, Idle)
	base := NewResult(tr, alg, "socket", "loopback", cfg)
	assert.Equal(t, base.RunID, NewResult(tr, alg, "socket", "loopback", cfg).RunID, "same inputs, same id")
	assert.Equal(t, tr.Name, sameName.Name)

	other := func(f func(c *Config)) Config { c := cfg; f(&c); return c }
	for name, id := range map[string]string{
		"link kind":      NewResult(tr, alg, "socket", "netns", cfg).RunID,
		"engine":         NewResult(tr, alg, "sim", "loopback", cfg).RunID,
		"trace content":  NewResult(sameName, alg, "socket", "loopback", cfg).RunID,
		"memory size":    NewResult(bigger, alg, "socket", "loopback", cfg).RunID,
		"bandwidth":      NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.Link.Bps *= 2 })).RunID,
		"rtt":            NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.Link.RTTNS++ })).RunID,
		"dirty model":    NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.Time.Dirty = Once })).RunID,
		"resume":         NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.ResumeOverheadNS = 1 })).RunID,
		"repetition":     NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.Rep = 1 })).RunID,
		"header bytes":   NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.Link.HeaderBytes = 16 })).RunID,
		"speed of trace": NewResult(tr, alg, "socket", "loopback", other(func(c *Config) { c.Time.Speed = 2 })).RunID,
	} {
		assert.NotEqual(t, base.RunID, id, name)
	}
	assert.NotEqual(t, tr.ID(), sameName.ID())
	r := NewResult(sameName, alg, "sim", LinkSim, cfg)
	assert.Equal(t, "sim", r.Link)
	assert.Equal(t, int64(msPage), r.BandwidthBps)
	assert.Equal(t, sameName.ID(), r.TraceID)
}
