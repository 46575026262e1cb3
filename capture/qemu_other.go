//go:build !linux

package capture

import (
	"fmt"
	"log/slog"
)

// LocateRAMBlocks needs /proc/PID/smaps.
func LocateRAMBlocks(pid int, blocks []RAMBlock, log *slog.Logger) error {
	return fmt.Errorf("locate QEMU RAM blocks: %w", ErrNotSupported)
}

// IsQEMU is false where /proc is missing.
func IsQEMU(pid int) bool { return false }

// ExplainPick needs /proc.
func ExplainPick(pid int, f Filter, log *slog.Logger) {}
