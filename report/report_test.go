package report

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// golden compares got with testdata/name, rewriting it under -update. On a
// mismatch it writes testdata/name.got (git-ignored) and shows a diff.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./report -update to create %s", path)
	if string(want) == got {
		return
	}
	gotPath := path + ".got"
	require.NoError(t, os.WriteFile(gotPath, []byte(got), 0o644))
	diff, _ := exec.Command("diff", "-u", path, gotPath).CombinedOutput()
	t.Fatalf("%s differs from the output (wrote %s; go test ./report -update accepts it):\n%s", path, gotPath, diff)
}

func fixtureSet(t *testing.T) *Set {
	t.Helper()
	s, err := Load(shard0, shard1)
	require.NoError(t, err)
	return s
}

func fixtureProfile(t *testing.T) *traceProfile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shift.parquet")
	writeFixtureTrace(t, path)
	tp, err := profileTrace(path, 0)
	require.NoError(t, err)
	return tp
}

func TestReportMarkdownGolden(t *testing.T) {
	md, err := markdown(fixtureSet(t), []*traceProfile{fixtureProfile(t)}, Options{OutDir: "unused"})
	require.NoError(t, err)
	golden(t, "report.md.golden", md)
}

func TestReportMarkdownSingleScenario(t *testing.T) {
	// One trace at one bandwidth, one repetition, no baseline: names drop
	// what does not vary, there is no sweep, and Δ columns say n/a.
	runs, rounds := fixtureRuns()
	var keep []Run
	for _, r := range runs {
		if r.Trace == "kv" && r.BandwidthBps == 1e9 && r.Rep == 0 && r.Algorithm != baseline {
			keep = append(keep, r)
		}
	}
	dir := filepath.Join(t.TempDir(), "one")
	writeResultDir(t, dir, keep, rounds)
	s, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, len(rounds)-countRoundsOf(rounds, keep), s.OrphanRounds)
	md, err := markdown(s, nil, Options{OutDir: "unused"})
	require.NoError(t, err)
	assert.NotContains(t, md, "sweep.svg", "one bandwidth: no sweep figure")
	assert.Contains(t, md, "have no xen-precopy run")
	assert.Contains(t, md, "| n/a | n/a |")
	assert.NotContains(t, md, "## Traces")
}

func countRoundsOf(rounds []Round, runs []Run) int {
	ids := map[string]bool{}
	for _, r := range runs {
		ids[r.RunID] = true
	}
	n := 0
	for _, r := range rounds {
		if ids[r.RunID] {
			n++
		}
	}
	return n
}

// TestSpeedsStayApart: runs of one trace played at two speeds are two
// workloads: separate scenarios under names that say the speed, and the
// settings say what the mark means.
func TestSpeedsStayApart(t *testing.T) {
	runs, _ := fixtureRuns()
	var keep []Run
	for _, r := range runs {
		if r.Trace == "kv" && r.BandwidthBps == 1e9 {
			keep = append(keep, r)
			fast := r
			fast.RunID += "-fast"
			fast.Speed = 4.5
			fast.DowntimeNS *= 3
			keep = append(keep, fast)
		}
	}
	dir := filepath.Join(t.TempDir(), "speeds")
	writeResultDir(t, dir, keep, nil)
	s, err := Load(dir)
	require.NoError(t, err)
	g := group(s)
	require.Len(t, g.Scenarios, 2)
	assert.Equal(t, "kv", g.Scenarios[0].Trace)
	assert.Equal(t, 1.0, g.Scenarios[0].Speed)
	assert.Equal(t, "kv ×4.5", g.Scenarios[1].Trace)
	assert.Equal(t, "kv", g.Scenarios[1].TraceName)
	assert.Equal(t, 4.5, g.Scenarios[1].Speed)
	for _, sc := range g.Scenarios {
		for _, c := range g.Cells[sc] {
			for _, r := range c.Runs {
				assert.Equal(t, sc.Speed, r.SpeedOrOne(), "a cell holds runs of one speed")
			}
		}
	}
	md, err := markdown(s, nil, Options{OutDir: "unused"})
	require.NoError(t, err)
	assert.Contains(t, md, "kv ×4.5")
	assert.Contains(t, md, "those marked ×S played S times faster")
}

func TestLostPagesWarn(t *testing.T) {
	runs, _ := fixtureRuns()
	runs[3].LostPages = 7
	dir := filepath.Join(t.TempDir(), "lost")
	writeResultDir(t, dir, runs, nil)
	s, err := Load(dir)
	require.NoError(t, err)
	md, err := markdown(s, nil, Options{OutDir: "unused"})
	require.NoError(t, err)
	assert.Contains(t, md, "## Warnings")
	assert.Contains(t, md, "7 lost pages")
}

func TestWriteProducesEveryFile(t *testing.T) {
	if testing.Short() {
		t.Skip("draws every figure in three formats: skipped with -short")
	}
	trace := filepath.Join(t.TempDir(), "shift.parquet")
	writeFixtureTrace(t, trace)
	out := filepath.Join(t.TempDir(), "report")
	w, err := Write(fixtureSet(t), Options{OutDir: out, Traces: []string{trace}})
	require.NoError(t, err)

	names := map[string]bool{}
	for _, f := range w.Figures {
		names[f.Name] = true
	}
	for _, n := range []string{"downtime", "pages", "rounds", "sweep", "heatmap-shift", "ratecdf"} {
		assert.True(t, names[n], "figure %s", n)
	}
	for _, f := range w.Files {
		st, err := os.Stat(filepath.Join(out, f))
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(1000), "%s is too small to hold a figure", f)
	}
	for _, f := range w.Figures {
		b, err := os.ReadFile(filepath.Join(out, f.Name+".png"))
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err, f.Name)
		wantW := int(f.Width.Points() / 72 * pngDPI)
		wantH := int(f.Height.Points() / 72 * pngDPI)
		assert.InDelta(t, wantW, img.Bounds().Dx(), 1, "%s.png width at %d dpi", f.Name, pngDPI)
		assert.InDelta(t, wantH, img.Bounds().Dy(), 1, "%s.png height at %d dpi", f.Name, pngDPI)
		// A blank canvas would be one colour; a figure has ink.
		assert.True(t, hasInk(img), "%s.png is blank", f.Name)

		pdf, err := os.ReadFile(filepath.Join(out, f.Name+".pdf"))
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")), "%s.pdf header", f.Name)
		svg, err := os.ReadFile(filepath.Join(out, f.Name+".svg"))
		require.NoError(t, err)
		assert.Contains(t, string(svg), "<svg")
		assert.Contains(t, string(svg), "</svg>")
	}
	// Every label of a figure is text in the SVG, so the axes are
	// labelled with units.
	svg, err := os.ReadFile(filepath.Join(out, "downtime.svg"))
	require.NoError(t, err)
	for _, s := range []string{"downtime (ms)", "xen-precopy", "microwiper (order=true)", "stop-and-copy"} {
		assert.Contains(t, string(svg), s)
	}

	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "![downtime](downtime.svg)")
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	require.NoError(t, err)
	h := string(html)
	assert.Equal(t, len(w.Figures), strings.Count(h, "<svg"), "every figure inlined")
	assert.NotContains(t, h, "<?xml", "prologues stripped from inlined SVG")
	assert.NotContains(t, h, `src="`, "self-contained: no external images")
	assert.Contains(t, h, "<td class=\"r\">")
}

func hasInk(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	r0, g0, b0, _ := first.RGBA()
	other := 0
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r != r0 || g != g0 || bb != b0 {
				other++
			}
		}
	}
	return other > 100
}

func TestHTMLIsWellFormed(t *testing.T) {
	if testing.Short() {
		t.Skip("draws every figure: skipped with -short")
	}
	out := t.TempDir()
	_, err := Write(fixtureSet(t), Options{OutDir: out})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(out, "report.html"))
	require.NoError(t, err)
	// The page is also well-formed XML (inline SVG must be, and the rest
	// is written so): every element opened is closed, in order.
	dec := xml.NewDecoder(bytes.NewReader(bytes.Replace(b, []byte("<!DOCTYPE html>"), nil, 1)))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	assert.Zero(t, depth)
}

func TestDirtyModelNotes(t *testing.T) {
	mk := func(id, alg, model string, down int64) Run {
		return Run{RunID: id, Trace: "kv", Algorithm: alg, Params: "{}", BandwidthBps: 1e9, Link: "sim", DirtyModel: model, DowntimeNS: down}
	}
	runs := []Run{
		mk("1", "xen-precopy", "continuous", 50), mk("2", "microwiper", "continuous", 30), mk("3", "oracle", "continuous", 1),
		mk("4", "xen-precopy", "once", 20), mk("5", "microwiper", "once", 25), mk("6", "stop-and-copy", "once", 2),
	}
	g := group(&Set{Runs: runs, Rounds: map[string][]Round{}})
	notes := dirtyModelNotes(g)
	require.Len(t, notes, 1)
	assert.Equal(t, "kv at 1Gbit: least downtime microwiper under continuous, xen-precopy under once; the conclusion depends on the model.", notes[0])

	runs[3].DowntimeNS = 40
	notes = dirtyModelNotes(group(&Set{Runs: runs, Rounds: map[string][]Round{}}))
	require.Len(t, notes, 1)
	assert.Contains(t, notes[0], "the models agree")

	md, err := markdown(&Set{Runs: runs, Rounds: map[string][]Round{}}, nil, Options{OutDir: "unused"})
	require.NoError(t, err)
	assert.Contains(t, md, "## Dirty models")
	assert.Contains(t, md, "### Trace kv, dirty model once")
}

func TestDirtyModelNotesTies(t *testing.T) {
	mk := func(id, alg, model string, down int64) Run {
		return Run{RunID: id, Trace: "kv", Algorithm: alg, Params: "{}", BandwidthBps: 1e9, Link: "sim", DirtyModel: model, DowntimeNS: down}
	}
	runs := []Run{
		mk("1", "xen-precopy", "continuous", 1e6), mk("2", "microwiper", "continuous", 1e6),
		mk("3", "xen-precopy", "once", 1e6), mk("4", "microwiper", "once", 2e6),
	}
	notes := dirtyModelNotes(group(&Set{Runs: runs, Rounds: map[string][]Round{}}))
	require.Len(t, notes, 1)
	assert.Equal(t, "kv at 1Gbit: least downtime xen-precopy = microwiper under continuous, xen-precopy under once; the conclusion depends on the model.", notes[0])
}
