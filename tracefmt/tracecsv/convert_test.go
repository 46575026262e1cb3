package tracecsv

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// importFile converts csv to a trace at path, with a first pass.
func importFile(t testing.TB, csv, path string, set map[string]string) (tracefmt.Header, []string, error) {
	t.Helper()
	var notes []string
	scan, err := ScanRows(context.Background(), strings.NewReader(csv), "in.csv")
	if err != nil {
		return tracefmt.Header{}, nil, err
	}
	h, err := Import(context.Background(), strings.NewReader(csv), ImportOptions{Set: set, Name: "in.csv", Scan: scan, Note: func(m string) { notes = append(notes, m) }},
		func(h tracefmt.Header, wo tracefmt.WriterOptions) (*tracefmt.Writer, error) {
			return tracefmt.Create(path, h, wo)
		})
	return h, notes, err
}

func TestExportImportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.parquet")
	h := tracefmt.Header{PageSize: 4096, Pages: 16, EpochNS: 100, Backend: tracefmt.BackendUffdSync, Workload: "w x", Kernel: "6.18",
		Regions: []tracefmt.Region{{FirstPage: 0, Pages: 16, StartAddr: 4096, Perms: "rw-p", Path: "[heap]"}}}
	w, err := tracefmt.Create(src, h, tracefmt.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.WriteInitial([]int64{1, 3}))
	require.NoError(t, w.WriteEpoch(0, []int64{2}, []int32{5}))
	require.NoError(t, w.WriteEpoch(100, []int64{1, 15}, nil))
	require.NoError(t, w.Close())

	r, err := tracefmt.Open(src)
	require.NoError(t, err)
	var csv bytes.Buffer
	require.NoError(t, Export(context.Background(), r, &csv))
	r.Close()
	assert.Contains(t, csv.String(), "t_ns,page,writes\n0,1,0\n0,2,5\n0,3,0\n100,1,1\n100,15,1\n", "the initial image merged with the writes at 0")

	back := filepath.Join(dir, "b.parquet")
	got, notes, err := importFile(t, csv.String(), back, nil)
	require.NoError(t, err)
	assert.Empty(t, notes, "everything came from the comments")
	assert.Equal(t, h, got)
	_, e1, err := tracefmt.ReadAll(src)
	require.NoError(t, err)
	_, e2, err := tracefmt.ReadAll(back)
	require.NoError(t, err)
	assert.Equal(t, e1, e2)
}

// TestZeroRoundTrip: a trace with the zero column exports a fourth CSV
// column and imports back to the same epochs; a CSV with zero 1 on an
// initial-image row is refused.
func TestZeroRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.parquet")
	h := tracefmt.Header{PageSize: 4096, Pages: 16, EpochNS: 100, Backend: tracefmt.BackendUffdAsync, Workload: "w", Kernel: "6.18",
		Regions: []tracefmt.Region{{FirstPage: 0, Pages: 16, StartAddr: 4096, Perms: "rw-p", Path: "[heap]"}}}
	w, err := tracefmt.Create(src, h, tracefmt.WriterOptions{ZeroWrites: true})
	require.NoError(t, err)
	require.NoError(t, w.WriteInitial([]int64{1, 3}))
	require.NoError(t, w.WriteEpochZero(0, []int64{2}, []int32{5}, []bool{true}))
	require.NoError(t, w.WriteEpochZero(100, []int64{1, 15}, nil, []bool{false, true}))
	require.NoError(t, w.Close())

	r, err := tracefmt.Open(src)
	require.NoError(t, err)
	var csv bytes.Buffer
	require.NoError(t, Export(context.Background(), r, &csv))
	r.Close()
	assert.Contains(t, csv.String(), "t_ns,page,writes,zero\n0,1,0,0\n0,2,5,1\n0,3,0,0\n100,1,1,0\n100,15,1,1\n")

	back := filepath.Join(dir, "b.parquet")
	_, _, err = importFile(t, csv.String(), back, nil)
	require.NoError(t, err)
	_, e1, err := tracefmt.ReadAll(src)
	require.NoError(t, err)
	_, e2, err := tracefmt.ReadAll(back)
	require.NoError(t, err)
	assert.Equal(t, e1, e2)

	_, _, err = importFile(t, "# pages=8\n# epoch_ns=10\nt_ns,page,writes,zero\n0,1,0,1\n10,1,1,0\n", filepath.Join(dir, "c.parquet"), nil)
	assert.ErrorContains(t, err, "line 4: initial-image row (page 1) has zero 1")
}

func TestImportSettlesTheHeader(t *testing.T) {
	dir := t.TempDir()
	h, notes, err := importFile(t, "t_ns,page\n100,7\n300,2\n", filepath.Join(dir, "a.parquet"), nil)
	require.NoError(t, err)
	assert.Equal(t, tracefmt.Header{PageSize: 4096, Pages: 8, EpochNS: 200, Backend: tracefmt.BackendUffdAsync, Workload: "csv:in.csv"}, h)
	assert.Len(t, notes, 3, "pages, epoch and backend inferred: %v", notes)

	// Flags beat comments, comments beat inference.
	h, notes, err = importFile(t, "# pages=32\n# epoch_ns=50\n# backend=soft-dirty\nt_ns,page\n100,7\n", filepath.Join(dir, "b.parquet"),
		map[string]string{tracefmt.KeyPages: "64", tracefmt.KeyWorkload: ""})
	require.NoError(t, err)
	assert.EqualValues(t, 64, h.Pages)
	assert.EqualValues(t, 50, h.EpochNS)
	assert.Equal(t, tracefmt.BackendSoftDirty, h.Backend)
	assert.Equal(t, "", h.Workload)
	assert.Empty(t, notes)

	_, _, err = importFile(t, "# microwiper.format=trace/v9\nt_ns,page\n1,1\n2,1\n", filepath.Join(dir, "c.parquet"), nil)
	assert.ErrorContains(t, err, "this build reads trace/v1 only")

	// One pass (stdin): no epoch anywhere is ErrNeedEpoch.
	_, err = Import(context.Background(), strings.NewReader("t_ns,page\n1,1\n"), ImportOptions{Name: "-"},
		func(h tracefmt.Header, wo tracefmt.WriterOptions) (*tracefmt.Writer, error) {
			return tracefmt.Create(filepath.Join(dir, "d.parquet"), h, wo)
		})
	assert.ErrorIs(t, err, ErrNeedEpoch)
}

// TestImportFailureLeavesTargetAlone: an error after the trace was created
// aborts it: an older file at the path stays, and nothing else is left.
func TestImportFailureLeavesTargetAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.parquet")
	require.NoError(t, os.WriteFile(path, []byte("precious"), 0o644))
	_, _, err := importFile(t, "t_ns,page\n100,1\n200,2\n200,2\n", path, nil)
	assert.ErrorContains(t, err, "duplicate row (t_ns 200, page 2)")
	b, _ := os.ReadFile(path)
	assert.Equal(t, "precious", string(b))
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 1)
}

func TestExportStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.parquet")
	w, err := tracefmt.Create(path, tracefmt.Header{PageSize: 4096, Pages: 1 << 20, EpochNS: 100, Backend: tracefmt.BackendSynthetic}, tracefmt.WriterOptions{})
	require.NoError(t, err)
	pages := make([]int64, 1<<17)
	for i := range pages {
		pages[i] = int64(i)
	}
	require.NoError(t, w.WriteEpoch(100, pages, nil))
	require.NoError(t, w.Close())
	r, err := tracefmt.Open(path)
	require.NoError(t, err)
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	assert.ErrorIs(t, Export(ctx, r, &out), context.Canceled)
	assert.Less(t, out.Len(), 1<<17*8, "stopped before the end")
}

// FuzzImport: any CSV either converts to a trace that validates, or fails
// leaving nothing at the target.
func FuzzImport(f *testing.F) {
	f.Add("t_ns,page\n100,7\n100,3\n300,2\n")
	f.Add("# pages=8\n# epoch_ns=10\nt_ns,page,writes\n0,1,0\n0,2,3\n10,1,1\n")
	f.Add("# pages=8\n# epoch_ns=10\nt_ns,page,writes,zero\n0,1,0,0\n0,2,3,1\n10,1,1,1\n20,1,1,0\n")
	f.Add("# regions=[{\"first_page\":0,\"pages\":99}]\nt_ns,page\n1,1\n2,2\n")
	f.Fuzz(func(t *testing.T, csv string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "t.parquet")
		if _, _, err := importFile(t, csv, path, nil); err != nil {
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("failed import left %d files: %v", len(ents), err)
			}
			return
		}
		if err := tracefmt.Validate(path); err != nil {
			t.Fatalf("import wrote an invalid trace: %v\n%s", err, csv)
		}
	})
}
