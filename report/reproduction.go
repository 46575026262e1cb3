package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
	"github.com/parquet-go/parquet-go"
)

// claimThreshold is the paper's claim: more than 50% less downtime than
// Xen's pre-copy (and fewer pages sent).
const claimThreshold = -50.0

// claimRow is one (variant, scenario) cell of the claim table.
type claimRow struct {
	Label    string
	Scenario Scenario
	Rel      relative
	// Holds: the median downtime is at least 50% below the baseline's and
	// the median pages sent below it, both significant.
	Holds bool
}

// claimRows lists, for every Microwiper label and scenario with a baseline
// run, the cell of the claim table, in scenario then label order.
func claimRows(g *grouping) []claimRow {
	var out []claimRow
	for _, sc := range g.Scenarios {
		base := g.Cells[sc][baseline]
		if base == nil {
			continue
		}
		for _, l := range g.Labels {
			c := g.Cells[sc][l]
			if c == nil || algorithms.Base(g.LabelAlgorithm[l]) != "microwiper" {
				continue
			}
			rel := relate(c, base)
			holds := rel.Downtime.N > 0 && rel.Downtime.Median <= -50 && rel.DowntimeSig &&
				rel.Pages.Median < 0 && rel.PagesSig
			out = append(out, claimRow{Label: l, Scenario: sc, Rel: rel, Holds: holds})
		}
	}
	return out
}

// claimCell is a workload × bandwidth cell.
type claimCell struct {
	trace string
	bw    int64
}

// ReproductionOptions say where the claim document goes.
type ReproductionOptions struct {
	// Path is the Markdown file (REPRODUCTION.md).
	Path string
	// FigDir receives the figures, as SVG, PNG and PDF; it is named
	// relative to Path's directory in the document.
	FigDir string
	// Command is how the document was made, quoted at its top.
	Command string
	// Traces are the trace files, profiled for the per-workload
	// properties (dirtying rate against the link, locality within stripes,
	// persistence of the written set); a trace not given is described by
	// its results alone.
	Traces []string
}

// WriteReproduction writes the claim document of s: the headline, the
// oracle's room, a table per variant group, the per-workload reading and
// the figures.
func WriteReproduction(s *Set, opt ReproductionOptions) error {
	md, figs, err := Reproduction(s, opt)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opt.FigDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", opt.FigDir, err)
	}
	for _, f := range figs {
		if err := f.Save(opt.FigDir); err != nil {
			return err
		}
	}
	return writeWhole(opt.Path, []byte(md))
}

// WriteReproductionRuns writes the runs of s, merged, as one runs.parquet
// in dir (a result directory that report and the reproduction test read),
// so that the claim document can be rebuilt from a few megabytes instead
// of every shard's rounds and curves. It refuses to replace a runs.parquet
// already there.
func WriteReproductionRuns(s *Set, dir string) error {
	path := filepath.Join(dir, results.RunsFile)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("write %s: it exists; remove it (make reproduce does) or name another directory", path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[Run](&buf, parquet.CreatedBy("microwiper", "results/v1", ""))
	if _, err := w.Write(s.Runs); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeWhole(path, buf.Bytes())
}

// writeWhole writes a file whole or not at all: a temporary file in the
// same directory, then a rename.
func writeWhole(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Reproduction returns the claim document's Markdown and its figures
// without writing anything; the test rebuilds the tables this way.
func Reproduction(s *Set, opt ReproductionOptions) (string, []*Figure, error) {
	g := group(s)
	claims := claimRows(g)
	if len(claims) == 0 {
		return "", nil, fmt.Errorf("no Microwiper run has a %s run in the same scenario: nothing to compare", baseline)
	}
	rel, err := filepath.Rel(filepath.Dir(opt.Path), opt.FigDir)
	if err != nil {
		rel = opt.FigDir
	}
	rel = filepath.ToSlash(rel)
	var b bytes.Buffer
	set := settings(s.Runs)
	fmt.Fprintf(&b, "# Reproducing Microwiper's claim\n\n")
	fmt.Fprintf(&b, "The paper (Du et al., ICPP 2010) claims that Microwiper migrates a VM with more than 50%% less downtime than Xen's pre-copy and sends fewer pages. ")
	fmt.Fprintf(&b, "The paper leaves four choices open; each reading is a variant here (see `microwiper algorithms`). This file puts the claim beside what the simulator measured for every variant, trace and bandwidth.\n\n")
	if opt.Command != "" {
		fmt.Fprintf(&b, "Made by `%s`; do not edit by hand. %s\n\n", opt.Command, set)
	} else {
		fmt.Fprintf(&b, "%s\n\n", set)
	}

	// Headline.
	cells := map[claimCell]bool{}
	holdCells := map[claimCell][]string{}
	perLabel := map[string]int{}
	for _, c := range claims {
		k := claimCell{c.Scenario.Trace, c.Scenario.BandwidthBps}
		cells[k] = true
		if c.Holds {
			holdCells[k] = append(holdCells[k], c.Label)
			perLabel[c.Label]++
		}
	}
	defaultHolds := perLabel["microwiper"]
	nStarts := maxN(g)
	fmt.Fprintf(&b, "## Headline\n\n")
	fmt.Fprintf(&b, "The claim holds (median downtime at least 50%% below %s and fewer pages sent, both significant; paired over %d start times per cell) in **%d of %d** workload × bandwidth cells under at least one variant, and in **%d** under the default reading (`microwiper`). ",
		baseline, nStarts, len(holdCells), len(cells), defaultHolds)
	var winners []string
	for l, n := range perLabel {
		winners = append(winners, fmt.Sprintf("%s (%d)", l, n))
	}
	sort.Slice(winners, func(i, j int) bool { return winners[i] < winners[j] })
	if len(winners) > 0 {
		fmt.Fprintf(&b, "Variants under which it holds somewhere (cells): %s.\n\n", strings.Join(winners, ", "))
	} else {
		fmt.Fprintf(&b, "No variant reaches it in any cell.\n\n")
	}
	// How often the claim was possible at all: the oracle's bound is the
	// least downtime any policy could have had.
	room, roomCells := 0, 0
	for _, sc := range g.Scenarios {
		base, o := g.Cells[sc][baseline], g.Cells[sc]["oracle"]
		if base == nil || o == nil || !cells[claimCell{sc.Trace, sc.BandwidthBps}] {
			continue
		}
		roomCells++
		if r := relate(o, base).Downtime; r.N > 0 && r.Median <= claimThreshold {
			room++
		}
	}
	if roomCells > 0 {
		fmt.Fprintf(&b, "The oracle's bound (the least downtime any policy switching over at any time could reach) is itself at least 50%% below %s in %d of those %d cells: elsewhere no policy could meet the claim on these traces.\n\n", baseline, room, roomCells)
	}
	keys := make([]claimCell, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].trace != keys[j].trace {
			return keys[i].trace < keys[j].trace
		}
		return keys[i].bw < keys[j].bw
	})

	// The oracle's room and the best variant per cell.
	fmt.Fprintf(&b, "## Room and best reading per cell\n\n")
	fmt.Fprintf(&b, "The oracle is a lower bound on any policy's downtime (it knows the future); its Δ is how much room any policy had against %s. Best variant: the least median downtime among the Microwiper variants. Δ: median of the paired relative differences with %s, 95%% interval in brackets, † significant.\n\n", baseline, baseline)
	fmt.Fprintf(&b, "| Trace | Link | %s downtime ms | oracle Δ downtime | microwiper Δ downtime / Δ pages | best variant | its Δ downtime / Δ pages | claim holds under |\n|---|---|---:|---:|---:|---|---:|---|\n", baseline)
	byCell := map[claimCell][]claimRow{}
	for _, c := range claims {
		k := claimCell{c.Scenario.Trace, c.Scenario.BandwidthBps}
		byCell[k] = append(byCell[k], c)
	}
	for _, k := range keys {
		cs := byCell[k]
		sc := cs[0].Scenario
		base := g.Cells[sc][baseline]
		oracle := "n/a"
		if o := g.Cells[sc]["oracle"]; o != nil {
			r := relate(o, base)
			oracle = fmtRel(r.Downtime, r.DowntimeSig)
		}
		def := "n/a"
		best := cs[0]
		for _, c := range cs {
			if c.Label == "microwiper" {
				def = fmtRel(c.Rel.Downtime, c.Rel.DowntimeSig) + " / " + fmtRel(c.Rel.Pages, c.Rel.PagesSig)
			}
			if c.Rel.Downtime.Median < best.Rel.Downtime.Median {
				best = c
			}
		}
		holds := "—"
		if hs := holdCells[k]; len(hs) > 0 {
			holds = fmt.Sprintf("%d variants", len(hs))
			if len(hs) <= 3 {
				holds = strings.Join(hs, ", ")
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k.trace, fmtBw(k.bw), fmtInterval(base.Downtime), oracle, def,
			best.Label, fmtRel(best.Rel.Downtime, best.Rel.DowntimeSig)+" / "+fmtRel(best.Rel.Pages, best.Rel.PagesSig), holds)
	}
	b.WriteString("\n")

	// Figures.
	figs := reproductionFigures(g, claims)
	for _, f := range figs {
		f.Caption += " " + set
		fmt.Fprintf(&b, "![%s](%s/%s.svg)\n\n*%s* ([PNG](%s/%s.png), [PDF](%s/%s.pdf))\n\n", f.Name, rel, f.Name, f.Caption, rel, f.Name, rel, f.Name)
	}

	// Per workload class.
	fmt.Fprintf(&b, "## What decides it, per workload\n\n")
	fmt.Fprintf(&b, "Each paragraph gives the trace's measured properties (profiled with the stripes of the default reading, pages/1024): its dirtying rate against each link (pages of 4 KiB plus a 16-byte header), the share of a written stripe's pages written in one epoch (locality of writes within stripes), and the share of the stripes written in one stretch of the trace that are written in the next (persistence; low means phase changes); then how the variants fared, and the property expected to decide it for this class. The expectation is a reading of these numbers, not a separate experiment.\n\n")
	profiles := map[string]*traceProfile{}
	for _, path := range opt.Traces {
		tp, err := profileTrace(path, 0)
		if err != nil {
			return "", nil, err
		}
		profiles[tp.Name] = tp
	}
	played := map[string]Scenario{} // a table's trace name: its file's name and speed
	for _, sc := range g.Scenarios {
		played[sc.Trace] = sc
	}
	for _, k := range uniqueTraces(keys) {
		sc := played[k]
		b.WriteString(workloadParagraph(g, k, byCellTrace(claims, k), profiles[sc.TraceName], sc.Speed))
		b.WriteString("\n\n")
	}

	// The full table.
	fmt.Fprintf(&b, "## The claim table\n\n")
	fmt.Fprintf(&b, "Every variant, trace and link. Δ: median of the paired relative differences with %s over the start times, 95%% interval in brackets, † significant. Holds: Δ downtime ≤ −50%% and Δ pages < 0, both significant.\n\n", baseline)
	fmt.Fprintf(&b, "| Variant | Trace | Link | n | Δ downtime | Δ pages | holds |\n|---|---|---|---:|---:|---:|---|\n")
	for _, c := range claims {
		yes := "no"
		if c.Holds {
			yes = "**yes**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", c.Label, c.Scenario.Trace, fmtBw(c.Scenario.BandwidthBps), c.Rel.Downtime.N,
			fmtRel(c.Rel.Downtime, c.Rel.DowntimeSig), fmtRel(c.Rel.Pages, c.Rel.PagesSig), yes)
	}
	return b.String(), figs, nil
}

func maxN(g *grouping) int {
	n := 0
	for _, m := range g.Cells {
		for _, c := range m {
			n = max(n, len(c.Runs))
		}
	}
	return n
}

func uniqueTraces(keys []claimCell) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[k.trace] {
			seen[k.trace] = true
			out = append(out, k.trace)
		}
	}
	return out
}

func byCellTrace(claims []claimRow, trace string) []claimRow {
	var out []claimRow
	for _, c := range claims {
		if c.Scenario.Trace == trace {
			out = append(out, c)
		}
	}
	return out
}

// workloadParagraph says, for one trace, how the default reading and the
// best variant fare at each link and what the trace's dirtying suggests
// decides it: the rate at which the working set is rewritten against the
// link, and whether holding stripes paid.
func workloadParagraph(g *grouping, trace string, cs []claimRow, tp *traceProfile, speed float64) string {
	var parts []string
	byBw := map[int64][]claimRow{}
	var bws []int64
	for _, c := range cs {
		if byBw[c.Scenario.BandwidthBps] == nil {
			bws = append(bws, c.Scenario.BandwidthBps)
		}
		byBw[c.Scenario.BandwidthBps] = append(byBw[c.Scenario.BandwidthBps], c)
	}
	sort.Slice(bws, func(i, j int) bool { return bws[i] < bws[j] })
	for _, bw := range bws {
		var def, best *claimRow
		spread := [2]float64{math.Inf(1), math.Inf(-1)}
		for i := range byBw[bw] {
			c := &byBw[bw][i]
			if c.Label == "microwiper" {
				def = c
			}
			if best == nil || c.Rel.Downtime.Median < best.Rel.Downtime.Median {
				best = c
			}
			spread[0] = math.Min(spread[0], c.Rel.Downtime.Median)
			spread[1] = math.Max(spread[1], c.Rel.Downtime.Median)
		}
		s := fmt.Sprintf("at %s the variants span %s to %s in downtime", fmtBw(bw), fmtDelta(spread[0]), fmtDelta(spread[1]))
		if def != nil {
			s += fmt.Sprintf(" (default %s)", fmtDelta(def.Rel.Downtime.Median))
		}
		if best != nil && best != def {
			s += fmt.Sprintf(", best %s", best.Label)
		}
		parts = append(parts, s)
	}
	var base *Cell
	for _, sc := range g.Scenarios {
		if sc.Trace == trace {
			if c := g.Cells[sc][baseline]; c != nil {
				base = c
				break
			}
		}
	}
	class, note := workloadClass(trace)
	out := fmt.Sprintf("**%s** (%s).", trace, class)
	if speed != 1 && speed > 0 {
		out += fmt.Sprintf(" Played at %s× the speed it was captured at: the guest's slowdown under TCG, so the workload runs at hardware speed.", results.FormatSpeed(speed))
	}
	if tp != nil {
		out += " " + traceProperties(tp, bws, speed)
	}
	out += " Results: " + strings.Join(parts, "; ") + "."
	if base != nil {
		if note != "" {
			out += " Expected to decide it: " + note
		}
	}
	return out
}

// workloadClasses name the class of each shipped, captured or whole-VM
// trace (by the prefix of its name) and the property
// that, by construction of the class, decides whether holding stripes back
// can pay.
// scatteredWrites is the property that decides the key-value and
// database classes.
const scatteredWrites = "the locality of writes within stripes. Scattered small writes dirty many stripes a little, so stripe rates tell hot from cold poorly and the variants stay close to Xen."

var workloadClasses = []struct{ prefix, class, note string }{
	// Whole-VM traces first: their names share prefixes with process ones.
	{"idle-512mib", "whole VM: an idle guest, the kernel's background writes",
		"nothing to hold: a few pages are written, every policy's final round is tiny and they differ by the zero pages and round counts alone."},
	{"redis-1gib", "whole VM: redis-server under redis-benchmark in the guest",
		scatteredWrites},
	{"sqlite-1gib", "whole VM: SQLite under a TPC-B (pgbench-like) load in the guest",
		scatteredWrites},
	{"compile-2gib", "whole VM: gcc compiling in a loop in the guest",
		"phase changes: each compiler process writes fresh memory for a short life, so the written set moves and a held stripe is often clean by the final round."},
	{"stress-1gib", "whole VM: stress-ng's vm stressor, memory-bound",
		"the working set's size against bandwidth: the stressor sweeps hundreds of MB, faster than the slower links drain, so no reading keeps it out of the final round there."},
	{"idle-rep", "whole VM (ground truth): an idle 256 MiB guest", "nothing to hold: every policy's final round is tiny."},
	{"hotset", "whole VM (ground truth): a 3 MiB hot set rewritten every 50 ms",
		"the hot set's rewriting rate against the link: held back, it still makes up the final round."},
	{"kv", "whole VM (ground truth): a Go key-value store with its garbage collector",
		scatteredWrites},
	{"stream", "whole VM (ground truth): 8 MiB rewritten as fast as the vCPU runs",
		"the working set's size against bandwidth: rewritten faster than the slower links drain, it is the whole final round under any reading."},
	{"hotcold", "synthetic: a Zipf-hot set of page clusters over a cold rest",
		"the hot set's rewriting rate against the link. Where the hot clusters outrun the link, holding them saves re-sends but they still make up the final round; where the link outruns them, every policy's final round is small and the variants meet Xen."},
	{"wws", "synthetic: a fixed writable working set, Clark-style",
		"the working set's size against bandwidth. A fixed hot set is rewritten every round, so no reading keeps it out of the final round; a held stripe also holds its cold pages, so holding can add to the final round."},
	{"phase", "synthetic: a working set that moves between phases",
		"phase changes. A stripe held in one phase cools in the next, so the fate of held pages (next, final, cool) and the rate window (last round, mean) matter most here."},
	{"build", "captured process tree: a parallel build, compilers starting and exiting",
		"phase changes: each compiler writes its own memory for a short life, so the written set moves, and a stripe held while one compiler runs is clean once it exits; the readings of held pages and of rates differ most here."},
	{"postgres", "captured process tree: database, PostgreSQL under pgbench",
		scatteredWrites},
	{"redis", "captured process: key-value store under redis-benchmark",
		scatteredWrites},
	{"sqlite", "captured process: database",
		scatteredWrites},
	{"xz", "captured process: compression, streaming through buffers",
		"the locality of writes within stripes: buffers are rewritten whole, so stripes go hot and cold together, the case stripe rates are made for."},
}

// workloadClass returns the class of trace and the property expected to
// decide it ("workload" and no property for a trace of no known class).
func workloadClass(trace string) (class, note string) {
	for _, c := range workloadClasses {
		if strings.HasPrefix(trace, c.prefix) {
			return c.class, c.note
		}
	}
	return "workload", ""
}

// traceProperties describes a trace's dirtying against the links: its
// rate in pages per second and as a share of each link, the locality of
// writes within stripes, and the persistence of the written stripes.
func traceProperties(tp *traceProfile, bws []int64, speed float64) string {
	span := float64(tp.Windows*tp.WindowNS) / 1e9
	if span <= 0 {
		return "It has no writes after its initial image."
	}
	if speed <= 0 {
		speed = 1
	}
	// Played at speed S, the trace's span passes S times faster.
	span /= speed
	rate := float64(tp.Dirtyings) / span
	var links []string
	for _, bw := range bws {
		pps := float64(bw) / float64((4096+16)*8)
		if r := rate / pps; r >= 0.995 {
			links = append(links, fmt.Sprintf("%s the %s link", fmtPct(r), fmtBw(bw)))
		} else {
			links = append(links, fmt.Sprintf("%s of the %s link", fmtPct(r), fmtBw(bw)))
		}
	}
	var cells, pages int64
	for k, n := range tp.CountHist {
		cells += n
		pages += k * n
	}
	fill := 0.0
	if cells > 0 && tp.StripePages > 0 {
		fill = float64(pages) / float64(cells) / float64(tp.StripePages)
	}
	return fmt.Sprintf("It dirties %s pages/s on average over %s (%s); a written stripe has %s of its %d pages written per epoch; %s of the stripes written in one stretch of the trace are written in the next.",
		fmtInt(math.Round(rate)), fmtSeconds(span), strings.Join(links, ", "), fmtShare(fill), tp.StripePages, fmtShare(persistence(tp)))
}

// persistence is the mean, over adjacent heatmap columns, of the share of
// the stripes written in one column that are written in the next.
func persistence(tp *traceProfile) float64 {
	var sum float64
	n := 0
	for c := 0; c+1 < len(tp.Heat); c++ {
		var here, both int
		for s, v := range tp.Heat[c] {
			if v == 0 {
				continue
			}
			here++
			if s < len(tp.Heat[c+1]) && tp.Heat[c+1][s] > 0 {
				both++
			}
		}
		if here > 0 {
			sum += float64(both) / float64(here)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func fmtPct(f float64) string {
	switch {
	case f >= 10:
		return fmt.Sprintf("%.0f×", f)
	case f >= 0.995:
		return fmt.Sprintf("%.1f×", f)
	}
	return fmt.Sprintf("%.1f%%", f*100)
}

func fmtShare(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
