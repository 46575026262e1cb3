//go:build !linux

package capture

import (
	"fmt"
	"runtime"
)

// SelectBackend is Linux-only.
func SelectBackend(requested string) (backend, reason string, err error) {
	return "", "", fmt.Errorf("capture: page-write capture needs Linux, not %s: %w", runtime.GOOS, ErrNotSupported)
}
