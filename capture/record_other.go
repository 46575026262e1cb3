//go:build !linux

package capture

import (
	"fmt"
	"log/slog"
	"runtime"
)

type proc struct{}

func startTarget(Target, TrackerOptions, bool, *slog.Logger) (*proc, Tracker, error) {
	return nil, nil, fmt.Errorf("capture: page-write capture needs Linux, not %s: %w", runtime.GOOS, ErrNotSupported)
}

func (p *proc) exited() <-chan struct{}           { return nil }
func (p *proc) hasExited() bool                   { return false }
func (p *proc) finish(string, *slog.Logger) error { return nil }
func (p *proc) release()                          {}
func (p *proc) poll()                             {}
func (p *proc) processes() int                    { return 0 }
func kernelRelease() string                       { return "" }
