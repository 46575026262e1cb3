package scriptmain

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// A Ctrl-C during a long wait ends the wait at once.
func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	assert.Less(t, time.Since(start), time.Minute)
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
}
