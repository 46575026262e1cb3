package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkOutput checks, before anything starts, that the trace can be
// written at path: a segment directory that holds no trace yet (created
// if missing), or a single file that does not exist, in a writable
// directory. It reports whether the directory was created here.
func checkOutput(path string, segments bool) (created bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && segments && !fi.IsDir():
		return false, fmt.Errorf("-o %s exists and is not a directory: a segmented trace is a directory; choose a new -o, or --segment 0 for one file", path)
	case err == nil && segments:
		ents, err := os.ReadDir(path)
		if err != nil {
			return false, fmt.Errorf("-o %s: %w", path, err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".parquet") || strings.HasSuffix(e.Name(), ".partial") {
				return false, fmt.Errorf("-o %s already holds a trace (%s): choose a new -o or remove it", path, e.Name())
			}
		}
	case err == nil:
		return false, fmt.Errorf("-o %s exists: capture never overwrites a file; choose a new -o or remove it", path)
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("-o %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if segments && err == nil {
		dir = path
	}
	// Prove the directory writable now (a read-only file system, no
	// permission), rather than after the workload has started.
	probe, perr := os.CreateTemp(dir, ".capture-probe-*")
	if perr != nil {
		return false, fmt.Errorf("-o %s: cannot write in %s: %w", path, dir, perr)
	}
	probe.Close()
	os.Remove(probe.Name())
	return segments && err != nil, nil
}

// removeOutput removes a trace this capture wrote and no one wants.
func removeOutput(path string, createdDir bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if !fi.IsDir() {
		os.Remove(path)
		return
	}
	if createdDir {
		os.RemoveAll(path)
		return
	}
	ents, _ := os.ReadDir(path)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "seg-") {
			os.Remove(filepath.Join(path, e.Name()))
		}
	}
}
