//go:build !linux

package capture

import (
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
)

// Attach is Linux-only.
func Attach(pid int, opts TrackerOptions, log *slog.Logger) (Tracker, error) {
	return nil, fmt.Errorf("capture pid %d: page-write capture needs Linux, not %s: %w", pid, runtime.GOOS, ErrNotSupported)
}

// Launch is Linux-only.
func Launch(cmd *exec.Cmd, opts TrackerOptions, log *slog.Logger) (Tracker, error) {
	return nil, fmt.Errorf("capture %s: page-write capture needs Linux, not %s: %w", cmd.Path, runtime.GOOS, ErrNotSupported)
}

func nonZeroInitial(pid int, idx *Index, pages []int64) ([]int64, int, error) {
	return pages, 0, nil
}

// writeZeros reads no content outside Linux: no write is marked zero.
type writeZeros struct{}

func newWriteZeros(int) *writeZeros                               { return &writeZeros{} }
func (z *writeZeros) check(_ *Index, pages []int64) ([]bool, int) { return nil, 0 }
func (z *writeZeros) close()                                      {}
