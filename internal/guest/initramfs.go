//go:build linux

package guest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"

	"github.com/microwiper/microwiper/internal/atomicfile"
)

// ExitMarker starts the line /init prints on the console when Script
// returns: "microwiper-guest: exit <status>". VM.ScriptExit reads it.
const ExitMarker = "microwiper-guest: exit "

// File is one file to put into the initramfs.
type File struct {
	// Path is its absolute path in the guest (/bin/capture.test).
	Path string
	// Source is a host file to copy; if empty, Data is the content.
	Source string
	Data   []byte
	// Mode is the permission bits; 0 means 0755 (most files are programs).
	Mode os.FileMode
}

// Initramfs describes a guest's whole root file system: busybox, the files,
// kernel modules and an init that runs Script.
type Initramfs struct {
	// Busybox is a statically linked busybox; empty means /bin/busybox
	// (Debian's busybox-static).
	Busybox string
	// Kernel supplies Modules; it may be nil when Modules is empty.
	Kernel *Kernel
	// Modules are loaded, with their dependencies, before Script runs.
	Modules []string
	// Files are added as given; directories are created as needed.
	Files []File
	// Script is run by busybox sh as a child of /init, with /proc, /sys,
	// /dev (devtmpfs) and /tmp (tmpfs) mounted and PATH=/bin:/sbin. Its
	// output goes to the console (ttyS0). When it returns, /init prints
	// ExitMarker and its status, and powers the guest off.
	Script string
}

// initScript is PID 1. It must never exit (the kernel would panic), so the
// user's script runs as a child and init ends in poweroff.
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /root
while read -r m; do
	[ -n "$m" ] && { insmod "$m" || echo "microwiper-guest: insmod $m failed"; }
done < /etc/microwiper-modules
# A second serial port (Config.Output) carries data: no CR/LF translation.
[ -e /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 2>/dev/null
sh /etc/microwiper-script
echo "` + ExitMarker + `$?"
sync
poweroff -f
reboot -f
`

// Write builds the initramfs (an uncompressed newc cpio archive, which
// every kernel accepts) at path, whole or not at all.
func (s Initramfs) Write(ctx context.Context, path string) error {
	bb := s.Busybox
	if bb == "" {
		bb = "/bin/busybox"
	}
	files := []File{
		{Path: "/bin/busybox", Source: bb},
		{Path: "/init", Data: []byte(initScript)},
		{Path: "/etc/microwiper-script", Data: []byte(s.Script), Mode: 0o644},
	}
	var modList strings.Builder
	if len(s.Modules) > 0 {
		if s.Kernel == nil {
			return fmt.Errorf("initramfs: modules %v asked for without a kernel", s.Modules)
		}
		mods, err := s.Kernel.Modules(s.Modules...)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		for _, m := range mods {
			data, err := readModule(ctx, m.Path)
			if err != nil {
				return fmt.Errorf("initramfs: module %s: %w", m.Name, err)
			}
			p := "/lib/modules/" + m.Name + ".ko"
			files = append(files, File{Path: p, Data: data, Mode: 0o644})
			modList.WriteString(p + "\n")
		}
	}
	files = append(files, File{Path: "/etc/microwiper-modules", Data: []byte(modList.String()), Mode: 0o644})
	files = append(files, s.Files...)

	if err := atomicfile.Write(path, func(w io.Writer) error { return writeCpio(w, files) }); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// readModule returns a module's bytes, decompressed: busybox's insmod
// loads plain .ko files only, and Debian compresses modules since 6.x.
func readModule(ctx context.Context, p string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko"):
		return os.ReadFile(p)
	case strings.HasSuffix(p, ".xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(p, ".gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("%s: unknown compression", p)
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, "-dc", p)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -dc %s: %w: %s", tool, p, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// cpio "newc" format constants.
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChr  = 0o020000
	cpioType = 0o170000
)

type cpioEntry struct {
	name       string
	mode       uint32
	data       []byte
	source     string
	size       int64
	rmaj, rmin uint32
}

// writeCpio writes files, their parent directories and /dev/console (the
// kernel opens it for init's stdio before devtmpfs is mounted) as a newc
// archive. Entries are sorted so the same inputs give the same bytes.
func writeCpio(w io.Writer, files []File) error {
	dirs := map[string]bool{"/dev": true}
	byPath := map[string]File{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(p) || p == "/" {
			return fmt.Errorf("file path %q: want an absolute path", f.Path)
		}
		byPath[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var entries []cpioEntry
	for d := range dirs {
		entries = append(entries, cpioEntry{name: d, mode: cpioDir | 0o755})
	}
	entries = append(entries, cpioEntry{name: "/dev/console", mode: cpioChr | 0o600, rmaj: 5, rmin: 1})
	for p, f := range byPath {
		mode := uint32(f.Mode.Perm())
		if mode == 0 {
			mode = 0o755
		}
		e := cpioEntry{name: p, mode: cpioReg | mode, data: f.Data, size: int64(len(f.Data))}
		if f.Source != "" {
			st, err := os.Stat(f.Source)
			if err != nil {
				return fmt.Errorf("file %s: %w", p, err)
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("file %s: source %s is not a regular file", p, f.Source)
			}
			e.source, e.size, e.data = f.Source, st.Size(), nil
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for i, e := range entries {
		if err := writeCpioEntry(w, uint32(i+1), e); err != nil {
			return err
		}
	}
	return writeCpioEntry(w, 0, cpioEntry{name: "TRAILER!!!"})
}

func writeCpioEntry(w io.Writer, ino uint32, e cpioEntry) error {
	name := strings.TrimPrefix(e.name, "/")
	nlink := uint32(1)
	if e.mode&cpioType == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.mode, 0, 0, nlink, 0, uint32(e.size), 0, 0, e.rmaj, e.rmin, len(name)+1, 0)
	if e.size > 1<<32-1 {
		return fmt.Errorf("file %s: too large for cpio (%d bytes)", e.name, e.size)
	}
	if _, err := io.WriteString(w, hdr+name+"\x00"); err != nil {
		return err
	}
	if err := pad(w, len(hdr)+len(name)+1); err != nil {
		return err
	}
	switch {
	case e.source != "":
		f, err := os.Open(e.source)
		if err != nil {
			return fmt.Errorf("file %s: %w", e.name, err)
		}
		n, err := io.Copy(w, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("file %s: %w", e.name, err)
		}
		if n != e.size {
			return fmt.Errorf("file %s: %s changed size while being copied", e.name, e.source)
		}
	case len(e.data) > 0:
		if _, err := w.Write(e.data); err != nil {
			return err
		}
	}
	return pad(w, int(e.size))
}

func pad(w io.Writer, n int) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
