package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends, and then returns ctx's error. A
// d <= 0 does not wait, but still reports a context that has ended, so
// that a loop of zero waits stops on cancellation.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
