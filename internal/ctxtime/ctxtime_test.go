package ctxtime

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSleep(t *testing.T) {
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
	assert.NoError(t, Sleep(context.Background(), 0))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled, "a cancelled context ends a long wait")
	assert.Less(t, time.Since(start), time.Minute)
	assert.ErrorIs(t, Sleep(ctx, 0), context.Canceled, "a zero wait still reports the cancellation")
	assert.ErrorIs(t, Sleep(ctx, -time.Second), context.Canceled)
}
