package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	// Start and End bound the mapping's addresses, [Start, End).
	Start, End uint64
	// Perms is the permission string, e.g. "rw-p".
	Perms string
	// Offset is the file offset of Start.
	Offset uint64
	// Dev is the backing file's device, major<<20 | minor.
	Dev uint64
	// Inode is the backing file's inode, 0 when anonymous.
	Inode uint64
	// Path is the backing file or pseudo-path ("[heap]"); empty when anonymous.
	Path string
}

// Writable reports whether the mapping may be written.
func (m Mapping) Writable() bool { return len(m.Perms) >= 2 && m.Perms[1] == 'w' }

// Private reports whether writes are private (copy-on-write).
func (m Mapping) Private() bool { return len(m.Perms) >= 4 && m.Perms[3] == 'p' }

// Shared reports whether the mapping is a shared memory object: writable,
// shared, and backed by a file of an in-memory file system (device major 0:
// the kernel's shmem for shared anonymous memory, SysV shm and memfd; tmpfs
// for POSIX shm under /dev/shm). Shared mappings of disk files are not.
func (m Mapping) Shared() bool {
	return m.Writable() && len(m.Perms) >= 4 && m.Perms[3] == 's' && m.Inode != 0 && m.Dev>>20 == 0
}

// Size is the mapping's length in bytes.
func (m Mapping) Size() uint64 { return m.End - m.Start }

// kernelSpecial names the pseudo-mappings that belong to the kernel: they
// cannot be registered with userfaultfd and a migration does not copy them.
var kernelSpecial = map[string]bool{
	"[vdso]": true, "[vvar]": true, "[vvar_vclock]": true, "[vsyscall]": true, "[uprobes]": true,
}

// ParseMaps reads the /proc/PID/maps format. A malformed line is an error
// naming the line.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		m, err := parseMapsLine(string(text))
		if err != nil {
			return nil, fmt.Errorf("maps line %d: %w", line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read maps: %w", err)
	}
	return out, nil
}

// parseMapsLine parses "start-end perms offset dev inode   path". The path
// may contain spaces and may end in " (deleted)"; both are kept verbatim.
func parseMapsLine(s string) (Mapping, error) {
	var m Mapping
	fields := make([]string, 0, 5)
	rest := s
	for i := 0; i < 5; i++ {
		rest = strings.TrimLeft(rest, " ")
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			if i < 4 {
				return m, fmt.Errorf("%q: want 'start-end perms offset dev inode [path]'", s)
			}
			fields = append(fields, rest)
			rest = ""
			break
		}
		fields = append(fields, rest[:j])
		rest = rest[j:]
	}
	addr, perms, off, dev, inode := fields[0], fields[1], fields[2], fields[3], fields[4]
	dash := strings.IndexByte(addr, '-')
	if dash < 0 {
		return m, fmt.Errorf("address range %q: want start-end in hex", addr)
	}
	var err error
	if m.Start, err = strconv.ParseUint(addr[:dash], 16, 64); err != nil {
		return m, fmt.Errorf("address range %q: %w", addr, err)
	}
	if m.End, err = strconv.ParseUint(addr[dash+1:], 16, 64); err != nil {
		return m, fmt.Errorf("address range %q: %w", addr, err)
	}
	if m.End < m.Start {
		return m, fmt.Errorf("address range %q: end before start", addr)
	}
	if len(perms) != 4 {
		return m, fmt.Errorf("permissions %q: want 4 characters like rw-p", perms)
	}
	m.Perms = perms
	if m.Offset, err = strconv.ParseUint(off, 16, 64); err != nil {
		return m, fmt.Errorf("offset %q: %w", off, err)
	}
	major, minor, ok := strings.Cut(dev, ":")
	maj, err1 := strconv.ParseUint(major, 16, 32)
	mnr, err2 := strconv.ParseUint(minor, 16, 20)
	if !ok || err1 != nil || err2 != nil {
		return m, fmt.Errorf("device %q: want major:minor in hex", dev)
	}
	m.Dev = maj<<20 | mnr
	if m.Inode, err = strconv.ParseUint(inode, 10, 64); err != nil {
		return m, fmt.Errorf("inode %q: %w", inode, err)
	}
	m.Path = strings.TrimLeft(rest, " ")
	return m, nil
}
