//go:build linux

package capture

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRAMBlocks(t *testing.T) {
	text, err := os.ReadFile("testdata/qemu/ramblock-7.2.txt")
	require.NoError(t, err)
	bs, err := ParseRAMBlocks(string(text))
	require.NoError(t, err)
	require.Len(t, bs, 9)
	assert.Equal(t, RAMBlock{Name: "pc.ram", PageSize: 4096, Offset: 0, Used: 512 << 20, Total: 512 << 20}, bs[0])
	assert.Equal(t, RAMBlock{Name: "/rom@etc/acpi/tables", PageSize: 4096, Offset: 0x21100000, Used: 0x20000, Total: 0x200000}, bs[2])
	assert.Equal(t, "/rom@etc/acpi/rsdp", bs[8].Name)

	bad := []struct{ name, text, want string }{
		{"empty", "", "no RAM blocks"},
		{"no header", "pc.ram 4 KiB 0x0 0x1000 0x1000\n", "want the header"},
		{"header only", "Block Name PSize Offset Used Total\n", "no RAM blocks"},
		{"short line", "Block Name PSize Offset Used Total\npc.ram 4 KiB 0x0\n", "want name, page size"},
		{"bad unit", "Block Name PSize Offset Used Total\npc.ram 4 KB 0x0 0x1000 0x1000\n", "page size"},
		{"not hex", "Block Name PSize Offset Used Total\npc.ram 4 KiB 0x0 4096 0x1000\n", "hex number"},
		{"used > total", "Block Name PSize Offset Used Total\npc.ram 4 KiB 0x0 0x2000 0x1000\n", "used <= total"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRAMBlocks(c.text)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func FuzzParseRAMBlocks(f *testing.F) {
	text, _ := os.ReadFile("testdata/qemu/ramblock-7.2.txt")
	f.Add(string(text))
	f.Add("Block Name PSize Offset Used Total\nx 2 MiB 0x0 0x200000 0x200000 0x7f00 ro\n")
	f.Fuzz(func(t *testing.T, s string) {
		bs, err := ParseRAMBlocks(s)
		if err != nil {
			return
		}
		for _, b := range bs {
			if b.Used == 0 || b.Used > b.Total || b.PageSize == 0 {
				t.Fatalf("accepted bad block %+v", b)
			}
		}
	})
}

// The fixture is the smaps of a QEMU 7.2 TCG guest (-m 512M) whose blocks
// were checked by content: pc.bios's mapping holds SeaBIOS's image.
func TestLocateRAMBlocksFixture(t *testing.T) {
	text, err := os.ReadFile("testdata/qemu/ramblock-7.2.txt")
	require.NoError(t, err)
	bs, err := ParseRAMBlocks(string(text))
	require.NoError(t, err)
	f, err := os.Open("testdata/qemu/smaps-7.2.txt")
	require.NoError(t, err)
	defer f.Close()
	maps, err := parseSmaps(f)
	require.NoError(t, err)
	require.NoError(t, locateRAMBlocks(bs, maps, 4096, nil))
	host := map[string]uint64{}
	for _, b := range bs {
		host[b.Name] = b.Host
	}
	assert.Equal(t, uint64(0x7f0983e00000), host["pc.ram"])
	assert.Equal(t, uint64(0x7f09f2400000), host["pc.bios"], "equal sizes: the lower offset has the higher address")
	assert.Equal(t, uint64(0x7f09f0c00000), host["0000:00:03.0/e1000.rom"])
	for _, m := range maps {
		if m.Perms == "rwxp" {
			for _, b := range bs {
				assert.NotEqual(t, m.Start, b.Host, "the TCG buffer is never a RAM block")
			}
		}
	}
	rs := Ranges(bs)
	assert.Equal(t, Range{Start: 0x7f09f0800000, End: 0x7f09f0800000 + 0x20000, Block: "/rom@etc/acpi/tables", Offset: 0x21100000}, rs[2],
		"a block's range is its used length, not its mapping")

	// Without the DONTFORK mappings nothing can be located.
	var plain []smapsEntry
	for _, m := range maps {
		m.flags = nil
		plain = append(plain, m)
	}
	err = locateRAMBlocks(bs, plain, 4096, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pc.ram")
}

func TestIndexLayout(t *testing.T) {
	x := NewIndex(4096)
	x.layout(spaceKey{}, owner{}, []Range{{Start: 0x200000, End: 0x202000, Block: "b", Offset: 0x1000}, {Start: 0x100000, End: 0x103000, Block: "a"}})
	require.Equal(t, int64(5), x.Pages())
	assert.False(t, x.Cover(Mapping{Start: 0x100000, End: 0x103000, Perms: "rw-p"}), "laid-out ranges keep their indexes")
	p, ok := x.Page(0x100000)
	require.True(t, ok)
	assert.Equal(t, int64(2), p, "ranges take indexes in the order given")
	r := x.Regions()
	assert.Equal(t, "b", r[0].RAMBlock)
	assert.Equal(t, uint64(0x1000), r[0].RAMOffset)
	assert.Equal(t, "a", r[1].Path)
}

func TestFilterRanges(t *testing.T) {
	f := Filter{Ranges: []Range{{Start: 0x1000, End: 0x3000, Block: "x"}}, MinBytes: 1 << 30}
	require.NoError(t, f.Check())
	m := Mapping{Start: 0x0, End: 0x10000, Perms: "rw-p"}
	assert.True(t, f.Eligible(m), "ranges override MinBytes")
	assert.Equal(t, []span{{0x1000, 0x3000}}, f.pieces(m))
	assert.False(t, f.Eligible(Mapping{Start: 0x3000, End: 0x4000, Perms: "rw-p"}))
	assert.False(t, f.Eligible(Mapping{Start: 0x0, End: 0x10000, Perms: "rw-s"}), "shared memory is never captured")
	assert.Error(t, Filter{Ranges: []Range{{Start: 5, End: 5}}}.Check())
}

func TestDropZeroPages(t *testing.T) {
	const ps = 4096
	// Memory at 0x10000: 8 pages; pages 1, 4 and 7 hold a byte each.
	mem := make([]byte, 0x10000+8*ps)
	for _, p := range []int{1, 4, 7} {
		mem[0x10000+p*ps+ps-1] = 0xff
	}
	x := NewIndex(ps)
	x.Cover(Mapping{Start: 0x10000, End: 0x10000 + 8*ps, Perms: "rw-p"})
	kept, zero := dropZeroPages(func(int, bool) io.ReaderAt { return bytes.NewReader(mem) }, x, []int64{0, 1, 2, 4, 5, 7})
	assert.Equal(t, []int64{1, 4, 7}, kept)
	assert.Equal(t, 3, zero)
	// A read that fails keeps the pages.
	kept, zero = dropZeroPages(func(int, bool) io.ReaderAt { return strings.NewReader("") }, x, []int64{0, 1})
	assert.Equal(t, []int64{0, 1}, kept)
	assert.Equal(t, 0, zero)
	// A process whose memory cannot be opened keeps its pages.
	kept, zero = dropZeroPages(func(int, bool) io.ReaderAt { return nil }, x, []int64{0, 1})
	assert.Equal(t, []int64{0, 1}, kept)
	assert.Equal(t, 0, zero)
}
