package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: go test -run %s -update", t.Name())
	if string(want) != got {
		os.WriteFile(path+".got-stdout", []byte(got), 0o644)
		t.Errorf("%s differs (got written to %s.got-stdout; -update to accept)", path, path)
	}
}

func TestParseMapsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/maps/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			ms, err := ParseMaps(bytes.NewReader(b))
			require.NoError(t, err)
			var sb strings.Builder
			for _, m := range ms {
				fmt.Fprintf(&sb, "%#x-%#x %s off=%#x inode=%d path=%q eligible=%v\n", m.Start, m.End, m.Perms, m.Offset, m.Inode, m.Path, Filter{}.Eligible(m))
			}
			golden(t, strings.TrimSuffix(f, ".txt")[len("testdata/"):]+".golden", sb.String())
		})
	}
}

func TestParseMapsErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"zz-10 rw-p 0 00:00 0", "address range"},
		{"10-zz rw-p 0 00:00 0", "address range"},
		{"20-10 rw-p 0 00:00 0", "end before start"},
		{"10-20 rw 0 00:00 0", "permissions"},
		{"10-20 rw-p xx 00:00 0", "offset"},
		{"10-20 rw-p 0 00:00 x", "inode"},
		{"10-20 rw-p 0 0000 0", "device"},
		{"10-20 rw-p 0 00:zz 0", "device"},
		{"10-20 rw-p", "want 'start-end perms"},
		{"1020 rw-p 0 00:00 0", "address range"},
	}
	for _, c := range cases {
		_, err := ParseMaps(strings.NewReader("00400000-00401000 r-xp 00000000 08:01 1 /bin/x\n" + c.in + "\n"))
		require.Error(t, err, c.in)
		assert.Contains(t, err.Error(), "maps line 2", c.in)
		assert.Contains(t, err.Error(), c.want, c.in)
	}
}

func FuzzParseMaps(f *testing.F) {
	for _, name := range []string{"testdata/maps/go-writer.txt", "testdata/maps/odd-paths.txt"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("10-20 rw-p 0 00:00 0   a b  c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseMaps(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.End < m.Start || len(m.Perms) != 4 {
				t.Fatalf("accepted a bad mapping %+v", m)
			}
		}
	})
}

func TestFilter(t *testing.T) {
	heap := Mapping{Start: 0x1000, End: 0x5000, Perms: "rw-p", Path: "[heap]"}
	anon := Mapping{Start: 0x10000, End: 0x10000 + 1<<30, Perms: "rw-p"}
	shm := Mapping{Start: 0x1000, End: 0x2000, Perms: "rw-s", Dev: 8<<20 | 1, Inode: 9, Path: "/srv/db"}
	shmObj := Mapping{Start: 0x1000, End: 0x2000, Perms: "rw-s", Dev: 1, Inode: 7, Path: "/SYSV00000000 (deleted)"}
	shmRO := Mapping{Start: 0x1000, End: 0x2000, Perms: "r--s", Dev: 1, Inode: 7, Path: "/memfd:x (deleted)"}
	ro := Mapping{Start: 0x1000, End: 0x2000, Perms: "r--p", Path: "/bin/x"}
	vdso := Mapping{Start: 0x1000, End: 0x2000, Perms: "rw-p", Path: "[vvar]"}
	guest := Mapping{Start: 0x1000, End: 0x2000, Perms: "rw-p", Path: "/dev/hugepages/guest (deleted)"}
	cases := []struct {
		name string
		f    Filter
		m    Mapping
		want bool
	}{
		{"heap", Filter{}, heap, true},
		{"anon", Filter{}, anon, true},
		{"shared disk file", Filter{}, shm, false},
		{"shared memory object", Filter{}, shmObj, true},
		{"shared read-only", Filter{}, shmRO, false},
		{"read-only", Filter{}, ro, false},
		{"kernel", Filter{}, vdso, false},
		{"path match", Filter{Paths: []string{"[heap]"}}, heap, true},
		{"path miss", Filter{Paths: []string{"[heap]"}}, anon, false},
		{"anon by name", Filter{Paths: []string{AnonPath}}, anon, true},
		{"glob, deleted", Filter{Paths: []string{"/dev/hugepages/*"}}, guest, true},
		{"min size keeps big", Filter{MinBytes: 1 << 30}, anon, true},
		{"min size drops small", Filter{MinBytes: 1 << 30}, heap, false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.f.Eligible(c.m), c.name)
	}
	assert.Error(t, Filter{Paths: []string{"[bad"}}.Check())
}

func TestIndex(t *testing.T) {
	const ps = 4096
	x := NewIndex(ps)
	m := func(s, e uint64, path string) Mapping { return Mapping{Start: s, End: e, Perms: "rw-p", Path: path} }
	require.True(t, x.Cover(m(0x10000, 0x14000, "[heap]")))
	assert.Equal(t, int64(4), x.Pages())
	// The heap grows: the same region is extended.
	require.True(t, x.Cover(m(0x10000, 0x16000, "[heap]")))
	assert.Len(t, x.Regions(), 1)
	assert.Equal(t, int64(6), x.Pages())
	// A mapping below gets the next indexes, not renumbering.
	require.True(t, x.Cover(m(0x8000, 0xa000, "")))
	assert.Equal(t, []tracefmt.Region{
		{FirstPage: 0, Pages: 6, StartAddr: 0x10000, Perms: "rw-p", Path: "[heap]"},
		{FirstPage: 6, Pages: 2, StartAddr: 0x8000, Perms: "rw-p", Path: ""},
	}, x.Regions())
	// Seen before: nothing new.
	assert.False(t, x.Cover(m(0x8000, 0xa000, "")))
	// Overlapping both and the gap between.
	require.True(t, x.Cover(m(0x9000, 0x11000, "")))
	assert.Equal(t, int64(6+2+6), x.Pages())
	p, ok := x.Page(0x10fff)
	assert.True(t, ok)
	assert.Equal(t, int64(0), p)
	p, ok = x.Page(0xa000)
	assert.True(t, ok)
	assert.Equal(t, int64(8), p)
	_, ok = x.Page(0x7000)
	assert.False(t, ok)
	assert.Equal(t, []int64{7, 8, 9, 10, 11, 12, 13, 0, 1}, x.Append(nil, 0x9000, 0x12000))
	assert.Len(t, x.Regions(), 2, "the gap continued the region below it")
	h := tracefmt.Header{PageSize: ps, Pages: x.Pages(), EpochNS: 1, Backend: "x", Regions: x.Regions()}
	assert.NoError(t, h.Check(), "the region table must satisfy the trace format")
}

func TestSpanSet(t *testing.T) {
	var s spanSet
	s = s.add(span{10, 20}).add(span{30, 40}).add(span{20, 25})
	assert.Equal(t, spanSet{{10, 25}, {30, 40}}, s)
	assert.Equal(t, []span{{5, 10}, {25, 30}, {40, 45}}, s.minus(span{5, 45}))
	assert.Empty(t, s.minus(span{12, 18}))
	assert.Equal(t, spanSet{{15, 25}, {30, 35}}, s.intersect(spanSet{{15, 35}}))
	assert.Equal(t, spanSet{{10, 12}, {18, 25}, {30, 40}}, s.remove(span{12, 18}))
	assert.True(t, s.contains(10))
	assert.False(t, s.contains(25))
	assert.False(t, s.contains(5))
	assert.True(t, s.contains(39))
}

func TestDecodePagemapFixtures(t *testing.T) {
	b, err := os.ReadFile("testdata/pagemap/softdirty.bin")
	require.NoError(t, err)
	es, err := DecodePagemap(b)
	require.NoError(t, err)
	var sb strings.Builder
	for i, e := range es {
		fmt.Fprintf(&sb, "%d present=%v swapped=%v soft-dirty=%v exclusive=%v file=%v data=%v pfn=%#x\n",
			i, e.Present(), e.Swapped(), e.SoftDirty(), e.Exclusive(), e.FileShared(), e.HasData(), e.PFN())
	}
	fmt.Fprintf(&sb, "written: %v\n", SoftDirtyPages(es))
	golden(t, "pagemap/softdirty.golden", sb.String())

	b, err = os.ReadFile("testdata/pagemap/truncated.bin")
	require.NoError(t, err)
	_, err = DecodePagemap(b)
	assert.ErrorContains(t, err, "multiple of 8")
}

func FuzzDecodePagemap(f *testing.F) {
	if b, err := os.ReadFile("testdata/pagemap/softdirty.bin"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodePagemap(b)
		if err != nil {
			return
		}
		if len(es) != len(b)/8 {
			t.Fatalf("%d entries from %d bytes", len(es), len(b))
		}
		for _, i := range SoftDirtyPages(es) {
			if !es[i].SoftDirty() {
				t.Fatal("listed a clean page")
			}
		}
	})
}

func TestRegionsJSON(t *testing.T) {
	// The regions metadata is JSON in the trace: keep the field names.
	b, err := json.Marshal(tracefmt.Region{FirstPage: 1, Pages: 2, StartAddr: 3, Perms: "rw-p", Path: "[heap]"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"first_page":1,"pages":2,"start_addr":3,"perms":"rw-p","path":"[heap]"}`, string(b))
}
