package scriptmain

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadAverages(t *testing.T) {
	assert.Equal(t, "0.52 0.61 0.70", loadAverages("0.52 0.61 0.70 1/234 5678\n"))
	assert.Equal(t, "", loadAverages("0.52 0.61\n"), "a short line is no reading")
	assert.Equal(t, "", loadAverages(""))
}

func TestLastLine(t *testing.T) {
	assert.Equal(t, "three", LastLine("one\ntwo\nthree\n\n"))
	assert.Equal(t, "only", LastLine("  only  "))
	assert.Equal(t, "", LastLine(""))
}

func TestOnly(t *testing.T) {
	all := []string{"idle", "kv", "stream-ac"}
	sel, err := Only("", "scenario", all)
	require.NoError(t, err)
	assert.True(t, sel("kv"))
	sel, err = Only("kv,idle", "scenario", all)
	require.NoError(t, err)
	assert.True(t, sel("idle"))
	assert.False(t, sel("stream-ac"))
	_, err = Only("kv,stream", "scenario", all)
	assert.EqualError(t, err, `-only kv,stream: no scenario "stream" (want a comma-separated list of: idle, kv, stream-ac)`)
}
