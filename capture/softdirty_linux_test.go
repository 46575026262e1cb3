package capture

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePagemap is a pagemap file: one entry per page number.
type fakePagemap map[uint64]PagemapEntry

func (f fakePagemap) ReadAt(b []byte, off int64) (int, error) {
	for i := 0; i+8 <= len(b); i += 8 {
		page := uint64(off)/8 + uint64(i/8)
		binary.LittleEndian.PutUint64(b[i:], uint64(f[page]))
	}
	return len(b), nil
}

// TestSoftDirtyEpochs drives the soft-dirty backend over a fake pagemap,
// since this kernel lacks CONFIG_MEM_SOFT_DIRTY: the initial image holds
// the pages with data, an epoch the soft-dirty pages of known ranges, and a
// new range every page with data.
func TestSoftDirtyEpochs(t *testing.T) {
	const ps = 4096
	pm := fakePagemap{}
	maps := []Mapping{{Start: 0x10000, End: 0x14000, Perms: "rw-p", Path: "[heap]"}, {Start: 0x20000, End: 0x21000, Perms: "r--p", Path: "/bin/x"}}
	refs := filepath.Join(t.TempDir(), "clear_refs")
	tr := &softDirtyTracker{pagemap: pm, closer: io.NopCloser(nil), refs: refs, idx: NewIndex(ps), pageSz: ps,
		buf:  make([]byte, 16), // two entries at a time: exercise the chunking
		maps: func() ([]Mapping, error) { return maps, nil }, log: logger(nil)}
	P := PagemapEntry(pmPresent)
	D := PagemapEntry(pmSoftDirty)
	pm[0x10] = P | D
	pm[0x12] = P
	pm[0x20] = P | D // read-only mapping: never captured
	_, err := tr.scan(true)
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 2}, tr.out, "initial image: pages with data")
	got, err := os.ReadFile(refs)
	require.NoError(t, err)
	assert.Equal(t, "4", string(got), "soft-dirty bits cleared after each scan")

	// The kernel cleared the bits; page 0x13 is written.
	pm[0x10] = P
	pm[0x13] = P | D
	sc, err := tr.Scan()
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, sc.Pages)
	assert.False(t, sc.Grew)

	// A new mapping: its pages with data count as written.
	maps = append(maps, Mapping{Start: 0x30000, End: 0x33000, Perms: "rw-p"})
	pm[0x13] = P
	pm[0x31] = P
	sc, err = tr.Scan()
	require.NoError(t, err)
	assert.True(t, sc.Grew)
	assert.Equal(t, []int64{5}, sc.Pages, "page 1 of the new mapping (index 4+1)")
	assert.Equal(t, int64(7), tr.idx.Pages())

	// The heap grows: only its new part counts pages with data; the old
	// part still needs the soft-dirty bit.
	maps[0].End = 0x16000
	pm[0x14] = P
	sc, err = tr.Scan()
	require.NoError(t, err)
	assert.True(t, sc.Grew)
	assert.Equal(t, []int64{7}, sc.Pages, "first page of the heap's new part")
}
