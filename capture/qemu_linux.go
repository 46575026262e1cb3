package capture

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// LocateRAMBlocks fills in the host address of each of the blocks in the
// QEMU process pid (see locateRAMBlocks for how).
func LocateRAMBlocks(pid int, blocks []RAMBlock, log *slog.Logger) error {
	name := fmt.Sprintf("/proc/%d/smaps", pid)
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, procErr(err))
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return locateRAMBlocks(blocks, maps, uint64(os.Getpagesize()), log)
}

// IsQEMU reports whether pid runs a QEMU system emulator.
func IsQEMU(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasPrefix(filepath.Base(exe), "qemu-system-")
}

// ExplainPick logs, for a process captured by --pid alone, which mappings
// the filter picks and which it leaves out and why. For a QEMU it warns
// about what is not guest RAM: QEMU's TCG translation buffer (a large rwx
// mapping) and its own heap would be captured as if they were the guest's.
func ExplainPick(pid int, f Filter, log *slog.Logger) {
	ms, err := readMaps(pid)
	if err != nil {
		return
	}
	qemu := IsQEMU(pid)
	var picked, suspect uint64
	for _, m := range ms {
		switch {
		case !m.Writable() || !m.Private() || kernelSpecial[m.Path] || m.Size() == 0:
			continue
		case !f.Eligible(m):
			if m.Size() >= 1<<20 {
				log.Debug("mapping left out by --region/--min-region", "start", fmt.Sprintf("%#x", m.Start), "bytes", m.Size(), "perms", m.Perms, "path", m.Path)
			}
			continue
		}
		picked += m.Size()
		why := "private writable mapping kept by the filter"
		if qemu && m.Perms[2] == 'x' {
			why = "rwx: most likely QEMU's TCG translation buffer, not guest RAM"
			suspect += m.Size()
		}
		if m.Size() >= 1<<20 || !qemu {
			log.Debug("mapping picked", "start", fmt.Sprintf("%#x", m.Start), "bytes", m.Size(), "perms", m.Perms, "path", m.Path, "why", why)
		}
	}
	if qemu {
		log.Warn(fmt.Sprintf("pid %d is QEMU: --pid alone captures every private writable mapping the filter keeps (%d MiB here), not QEMU's RAM blocks: %d MiB of it is rwx (the TCG translation buffer), and QEMU's heap and the ROMs are picked or missed by size alone; give --qemu-qmp SOCKET to capture exactly the RAM blocks QEMU migrates",
			pid, picked>>20, suspect>>20))
	}
}
