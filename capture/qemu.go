package capture

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/microwiper/microwiper/internal/qmp"
)

// RAMBlock is one of QEMU's RAM blocks, as its monitor lists them
// ("info ramblock"), with the host address of its memory once located.
type RAMBlock struct {
	// Name is the block's id string ("pc.ram", "0000:00:02.0/vga.vram").
	Name string
	// PageSize is the block's page size in bytes.
	PageSize uint64
	// Offset is the block's offset in QEMU's RAM address space (ram_addr_t).
	Offset uint64
	// Used is the length QEMU migrates (used_length).
	Used uint64
	// Total is the length reserved for the block (max_length): its host
	// mapping's size.
	Total uint64
	// Host is the address of the block's first byte in QEMU's address
	// space; 0 until LocateRAMBlocks finds it.
	Host uint64
}

// ParseRAMBlocks reads the table of QEMU's "info ramblock" (QEMU 7.x):
// a header line, then one line per block with its name, page size
// ("4 KiB"), offset, used and total lengths in hex. QEMU lists the blocks in
// the order it migrates them; the result keeps that order.
func ParseRAMBlocks(text string) ([]RAMBlock, error) {
	var out []RAMBlock
	sc := bufio.NewScanner(strings.NewReader(text))
	header := false
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if !header {
			if len(f) < 6 || f[0] != "Block" || f[1] != "Name" {
				return nil, fmt.Errorf("info ramblock line %d: %.80q: want the header 'Block Name PSize Offset Used Total'", line, sc.Text())
			}
			header = true
			continue
		}
		// name psize unit offset used total [more columns of newer QEMUs]
		if len(f) < 6 {
			return nil, fmt.Errorf("info ramblock line %d: %.80q: want name, page size, offset, used, total", line, sc.Text())
		}
		b := RAMBlock{Name: f[0]}
		ps, err := strconv.ParseUint(f[1], 10, 64)
		unit := map[string]uint64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[f[2]]
		if err != nil || unit == 0 || ps == 0 {
			return nil, fmt.Errorf("info ramblock line %d: page size %q %q: want e.g. '4 KiB'", line, f[1], f[2])
		}
		b.PageSize = ps * unit
		nums := []*uint64{&b.Offset, &b.Used, &b.Total}
		for i, dst := range nums {
			v, err := strconv.ParseUint(strings.TrimPrefix(f[3+i], "0x"), 16, 64)
			if err != nil || !strings.HasPrefix(f[3+i], "0x") {
				return nil, fmt.Errorf("info ramblock line %d: %q: want a hex number like 0x20000000", line, f[3+i])
			}
			*dst = v
		}
		if b.Used > b.Total || b.Used == 0 {
			return nil, fmt.Errorf("info ramblock line %d: block %s used %#x of %#x: want 0 < used <= total", line, b.Name, b.Used, b.Total)
		}
		out = append(out, b)
	}
	if !header || len(out) == 0 {
		return nil, fmt.Errorf("info ramblock listed no RAM blocks")
	}
	return out, nil
}

// queryRAMBlocks asks the QEMU of c for its RAM blocks (HMP "info
// ramblock": QMP has no command for them in QEMU 7.2).
func queryRAMBlocks(ctx context.Context, c *qmp.Client) ([]RAMBlock, error) {
	text, err := c.HMP(ctx, "info ramblock")
	if err != nil {
		return nil, fmt.Errorf("ask QEMU for its RAM blocks: %w", err)
	}
	return ParseRAMBlocks(text)
}

// smapsEntry is a mapping with its VmFlags from /proc/PID/smaps.
type smapsEntry struct {
	Mapping
	flags []string
}

// parseSmaps reads the mappings and their VmFlags from /proc/PID/smaps.
func parseSmaps(r io.Reader) ([]smapsEntry, error) {
	var out []smapsEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		if rest, ok := strings.CutPrefix(text, "VmFlags:"); ok {
			if len(out) > 0 {
				out[len(out)-1].flags = strings.Fields(rest)
			}
			continue
		}
		// A mapping line starts with "start-end "; field lines with "Name:".
		if i := strings.IndexByte(text, ' '); i < 0 || strings.HasSuffix(text[:i], ":") {
			continue
		}
		m, err := parseMapsLine(text)
		if err != nil {
			return nil, fmt.Errorf("smaps: %w", err)
		}
		out = append(out, smapsEntry{Mapping: m})
	}
	return out, sc.Err()
}

// locateRAMBlocks finds each block's host mapping among the process's
// mappings. QEMU maps every RAM block on its own (qemu_ram_mmap: an aligned
// mapping of the block's total size followed by a guard page) and marks it
// MADV_DONTFORK (VmFlags "dc"), which nothing else in QEMU uses; the TCG
// translation buffer is neither DONTFORK nor non-executable. So a block's
// mapping is the private, writable, non-executable "dc" mapping of exactly
// its total size. Blocks of equal size are told apart by allocation order:
// QEMU allocates blocks in RAM-offset order and the kernel hands out mmap
// addresses top down, so the lower offset has the higher address.
func locateRAMBlocks(blocks []RAMBlock, maps []smapsEntry, hostPage uint64, log *slog.Logger) error {
	log = logger(log)
	bySize := map[uint64][]smapsEntry{}
	for _, m := range maps {
		if !m.Writable() || !m.Private() || len(m.Perms) < 3 || m.Perms[2] == 'x' || !slices.Contains(m.flags, "dc") {
			continue
		}
		bySize[m.Size()] = append(bySize[m.Size()], m)
	}
	order := make([]int, len(blocks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(blocks[a].Offset, blocks[b].Offset) })
	for _, c := range bySize {
		slices.SortFunc(c, func(a, b smapsEntry) int { return cmp.Compare(b.Start, a.Start) })
	}
	for _, i := range order {
		b := &blocks[i]
		size := (b.Total + hostPage - 1) &^ (hostPage - 1)
		c := bySize[size]
		if len(c) == 0 {
			return fmt.Errorf("RAM block %s (%d bytes): no private writable MADV_DONTFORK mapping of that size in QEMU's address space; is this QEMU's pid, and is its RAM private (share=off)?", b.Name, b.Total)
		}
		b.Host = c[0].Start
		bySize[size] = c[1:]
		log.Debug("RAM block located", "block", b.Name, "offset", fmt.Sprintf("%#x", b.Offset), "used", b.Used, "total", b.Total,
			"host", fmt.Sprintf("%#x", b.Host), "candidates", len(c))
	}
	return nil
}

// Ranges turns located blocks into the capture filter's ranges: each
// block's used length, in QEMU's order.
func Ranges(blocks []RAMBlock) []Range {
	out := make([]Range, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, Range{Start: b.Host, End: b.Host + b.Used, Block: b.Name, Offset: b.Offset})
	}
	return out
}

// QEMU finds the QEMU process behind the QMP socket at path and its RAM
// blocks with their host addresses: what a whole-VM capture takes
// (Filter.Ranges = Ranges(blocks)). QEMU serves one client per QMP socket:
// the socket must be free for the moment this takes.
func QEMU(ctx context.Context, path string, log *slog.Logger) (pid int, blocks []RAMBlock, err error) {
	log = logger(log)
	c, err := qmp.Dial(ctx, path)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	if pid, err = c.PeerPID(); err != nil {
		return 0, nil, fmt.Errorf("QMP socket %s: %w", path, err)
	}
	if blocks, err = queryRAMBlocks(ctx, c); err != nil {
		return 0, nil, err
	}
	if err := LocateRAMBlocks(pid, blocks, log); err != nil {
		return 0, nil, fmt.Errorf("QEMU pid %d: %w", pid, err)
	}
	var used uint64
	for _, b := range blocks {
		used += b.Used
	}
	v := c.Version()
	log.Debug("QEMU RAM blocks", "pid", pid, "qemu", fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro), "blocks", len(blocks), "bytes", used)
	return pid, blocks, nil
}
