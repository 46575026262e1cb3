//go:build linux

package guest

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LibraryDirs are the directories Program searches for shared libraries
// after an object's own DT_RUNPATH/DT_RPATH, in the order of Debian's
// dynamic loader on amd64 (multiarch first). The guest has no
// /etc/ld.so.cache, so the loader searches its built-in list, which holds
// the multiarch directories: libraries are put at the path found here.
var LibraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// Program returns the files that run the host program at hostPath in the
// guest at guestPath: the program itself and, if it is dynamically linked,
// its loader (PT_INTERP) at the same path as on the host and every shared
// library it needs (DT_NEEDED, transitively) where the host has it.
// Contents are those of the files symlinks point at, so a program that
// looks at its own name (redis-server is a link to redis-check-rdb) runs
// as the name given. A static program yields itself alone.
func Program(hostPath, guestPath string) ([]File, error) {
	return program(hostPath, guestPath, LibraryDirs)
}

func program(hostPath, guestPath string, dirs []string) ([]File, error) {
	if !filepath.IsAbs(guestPath) {
		return nil, fmt.Errorf("program %s: guest path %q is not absolute", hostPath, guestPath)
	}
	files := []File{{Path: guestPath, Source: hostPath}}
	f, err := elf.Open(hostPath)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", hostPath, err)
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", hostPath, err)
	}
	if interp == "" {
		return files, nil
	}
	if _, err := os.Stat(interp); err != nil {
		return nil, fmt.Errorf("program %s: its loader: %w", hostPath, err)
	}
	files = append(files, File{Path: interp, Source: interp})
	// Breadth-first over DT_NEEDED; a library is looked up once by name, as
	// the loader does (the first object found under a soname serves all).
	found := map[string]bool{filepath.Base(interp): true}
	type pending struct{ obj, origin string }
	queue := []pending{{hostPath, filepath.Dir(hostPath)}}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		needed, search, err := dynamic(cur.obj, cur.origin)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", hostPath, err)
		}
		for _, lib := range needed {
			if found[lib] {
				continue
			}
			p, err := findLibrary(lib, append(search, dirs...), f.Class, f.Machine)
			if err != nil {
				return nil, fmt.Errorf("program %s: needed by %s: %w", hostPath, cur.obj, err)
			}
			found[lib] = true
			files = append(files, File{Path: p, Source: p})
			queue = append(queue, pending{p, filepath.Dir(p)})
		}
	}
	return files, nil
}

// interpreter returns the PT_INTERP path, "" for a static program.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

// dynamic returns an object's DT_NEEDED names and its own search path
// (DT_RUNPATH, else DT_RPATH, with $ORIGIN expanded).
func dynamic(path, origin string) (needed, search []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, nil, fmt.Errorf("%s: DT_NEEDED: %w", path, err)
	}
	rp, _ := f.DynString(elf.DT_RUNPATH)
	if len(rp) == 0 {
		rp, _ = f.DynString(elf.DT_RPATH)
	}
	for _, s := range rp {
		for _, d := range strings.Split(s, ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
			if d != "" {
				search = append(search, d)
			}
		}
	}
	return needed, search, nil
}

// findLibrary looks name up in dirs and returns the first file of the
// program's class and machine (a 32-bit library of the same name is
// skipped, as the loader skips it).
func findLibrary(name string, dirs []string, class elf.Class, machine elf.Machine) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == machine
		f.Close()
		if ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("shared library %s not found in %s", name, strings.Join(dirs, ":"))
}
