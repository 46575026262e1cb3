package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/internal/atomicfile"
	"github.com/microwiper/microwiper/results"
)

// Options says what to write and where.
type Options struct {
	// OutDir receives report.md, report.html and the figures; created if
	// missing.
	OutDir string
	// Traces are trace files to draw a dirtying heatmap of and to include
	// in the rate CDF.
	Traces []string
	// Stripes is the stripe count of the trace figures (DefaultStripes
	// when 0).
	Stripes int
	// RoundsTrace and RoundsBandwidthBps choose the scenario of the
	// per-round figure; empty or 0 lets the report choose.
	RoundsTrace        string
	RoundsBandwidthBps int64
	// Title heads the report; "microwiper report" when empty.
	Title string
}

// Written lists what Write produced, relative to OutDir.
type Written struct {
	Files   []string
	Figures []*Figure
}

// Write writes the report of s.
func Write(s *Set, opt Options) (*Written, error) {
	if opt.OutDir == "" {
		return nil, fmt.Errorf("no output directory (--out)")
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create report directory %s: %w", opt.OutDir, err)
	}
	var profiles []*traceProfile
	for _, t := range opt.Traces {
		tp, err := profileTrace(t, opt.Stripes)
		if err != nil {
			return nil, err
		}
		profiles = append(profiles, tp)
	}
	doc, figs, err := build(s, profiles, opt)
	if err != nil {
		return nil, err
	}
	w := &Written{Figures: figs}
	svgs := map[*Figure][]byte{}
	for _, f := range figs {
		if err := f.Save(opt.OutDir); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(opt.OutDir, f.Name+".svg"))
		if err != nil {
			return nil, fmt.Errorf("read back figure: %w", err)
		}
		svgs[f] = b
		for _, ext := range formats {
			w.Files = append(w.Files, f.Name+"."+ext)
		}
	}
	for i, b := range doc.blocks {
		if fb, ok := b.(figureBlock); ok {
			fb.svg = svgs[fb.fig]
			doc.blocks[i] = fb
		}
	}
	var md, ht bytes.Buffer
	if err := doc.markdown(&md); err != nil {
		return nil, err
	}
	if err := doc.html(&ht, title(opt)); err != nil {
		return nil, err
	}
	for name, b := range map[string][]byte{"report.md": md.Bytes(), "report.html": ht.Bytes()} {
		if err := atomicfile.WriteFile(filepath.Join(opt.OutDir, name), b); err != nil {
			return nil, err
		}
	}
	w.Files = append([]string{"report.md", "report.html"}, w.Files...)
	return w, nil
}

func title(opt Options) string {
	if opt.Title != "" {
		return opt.Title
	}
	return "microwiper report"
}

// markdown returns report.md's text without drawing figures to disk; the
// golden test compares it.
func markdown(s *Set, profiles []*traceProfile, opt Options) (string, error) {
	doc, _, err := build(s, profiles, opt)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = doc.markdown(&b)
	return b.String(), err
}

// build lays out the report: inputs, warnings, tables, figures.
func build(s *Set, profiles []*traceProfile, opt Options) (*document, []*Figure, error) {
	g := group(s)
	doc := &document{}
	set := settings(s.Runs)
	var figs []*Figure
	addFig := func(f *Figure) {
		if f != nil {
			// Every figure states the settings its numbers were made under.
			f.Caption += " " + set
			figs = append(figs, f)
			doc.add(figureBlock{fig: f})
		}
	}
	doc.h(1, title(opt))
	// The answer first: how every policy and variant compares with the
	// baseline, before any detail.
	doc.h(2, "Summary")
	doc.p("Median downtime / pages sent relative to %s in the same scenario (negative is better), each run paired with %s's run from the same start time; 95%% interval in brackets when the runs differ; † where the difference is significant (the interval excludes 0, or two or more runs all differ alike; a single run is never marked: replay with --starts N for a distribution over start times). %s", baseline, baseline, set)
	for _, st := range summaryTables(g) {
		doc.h(3, "Summary: "+st.title)
		doc.add(st.t)
	}
	items := make([]string, 0, len(s.Dirs))
	for _, d := range s.Dirs {
		items = append(items, d)
	}
	nt, nb := countDistinct(s.Runs, func(r Run) any { return r.Trace }), countDistinct(s.Runs, func(r Run) any { return r.BandwidthBps })
	doc.p("%d runs from %d result %s (merged by run_id; %d duplicate rows dropped). %d %s, %d %s, %d %s.",
		len(s.Runs), len(s.Dirs), plural(len(s.Dirs), "directory", "directories"), s.Duplicates,
		nt, plural(nt, "trace", "traces"), nb, plural(nb, "bandwidth", "bandwidths"), len(g.Labels), plural(len(g.Labels), "algorithm", "algorithms"))
	doc.add(bullets{items})
	doc.p("%s", set)
	if w := warnings(s, g); len(w) > 0 {
		doc.h(2, "Warnings")
		doc.add(bullets{w})
	}

	if notes := dirtyModelNotes(g); len(notes) > 0 {
		doc.h(2, "Dirty models")
		doc.p("The same scenarios were replayed under more than one reading of the trace (--dirty). Where the reading changes which policy has the least downtime, it changes a conclusion:")
		doc.add(bullets{notes})
	}

	forced := 0
	for _, sc := range g.Scenarios {
		for _, c := range g.Cells[sc] {
			forced += c.Forced
		}
	}
	doc.h(2, "Figures")
	forcedNote := ""
	if forced > 0 {
		forcedNote = " A black ring marks a cell with force-stopped repetitions (the migration never converged)."
	}
	addFig(metricFigure(g, "downtime",
		"Downtime per algorithm: median over repetitions (bar) with its 95% confidence interval (whisker, left out where every repetition agreed), grouped by scenario. On a log axis bars rise from the bottom edge, and zero downtimes sit on it (a flat stroke)."+forcedNote,
		"downtime (ms)", func(c *Cell) Summary { return c.Downtime }))
	addFig(metricFigure(g, "pages",
		"Pages sent per algorithm (all rounds, including the stop-and-copy round): median (bar) with 95% confidence interval (whisker)."+forcedNote,
		"pages sent", func(c *Cell) Summary { return c.PagesSent }))
	addFig(metricFigure(g, "total",
		"Total migration time per algorithm (from the migration's start until the VM resumes at the destination, downtime included): median (bar) with 95% confidence interval (whisker)."+forcedNote,
		"total time (s)", func(c *Cell) Summary { return c.Total }))
	// Downtime over start times: the registered policies, and for the
	// Microwiper variants only the default and the best in the scenario,
	// so the panels stay readable.
	best := bestVariants(claimRows(g))
	addFig(downtimeCDFFigure(g, "cdf-downtime", func(sc Scenario) []string {
		var ls []string
		for _, l := range g.Labels {
			if algorithms.Base(g.LabelAlgorithm[l]) != "microwiper" || g.Default[l] && g.LabelAlgorithm[l] == "microwiper" || l == best[sc] {
				ls = append(ls, l)
			}
		}
		return ls
	}))
	if sc, ok := roundsScenario(s, g, opt.RoundsTrace, opt.RoundsBandwidthBps); ok {
		addFig(roundsFigure(s, g, sc))
	} else if opt.RoundsTrace != "" || opt.RoundsBandwidthBps != 0 {
		return nil, nil, fmt.Errorf("no runs with rounds for trace %q at %s (--rounds-trace, --rounds-bw)", opt.RoundsTrace, results.FormatBps(opt.RoundsBandwidthBps))
	}
	addFig(sweepFigure(g))
	addFig(oracleFigure(s, g))
	doc.h(2, "Results")
	doc.p(set+" Medians over repetitions; downtime shows the median and its 95%% confidence interval in brackets (distribution-free, from order statistics; with fewer than 6 repetitions no interval reaches 95%%, and the bracket is the range of the repetitions). Δ columns compare medians with %s in the same scenario; negative is better.", baseline)
	for _, grp := range tableGroups(g) {
		doc.h(3, grp.title)
		doc.add(resultTable(g, grp.scenarios))
	}
	if forced > 0 {
		doc.p("Downtimes marked with an asterisk: the migration never converged and the engine forced the final round at its bound (10 × the time to send memory once, at least 60 s), so the downtime is that of a forced stop, not an ordinary one (k/n: k of n repetitions); %d runs in all.", forced)
	}

	if len(profiles) > 0 {
		doc.h(2, "Traces")
		rows := [][]string{}
		for _, tp := range profiles {
			h := tp.Header
			rows = append(rows, []string{tp.Name, h.Backend, fmtBytes(h.MemoryBytes()), fmtSeconds(float64(h.EpochNS) / 1e9),
				fmtSeconds(float64(tp.Windows*tp.WindowNS) / 1e9), fmtInt(float64(tp.Dirtyings))})
		}
		doc.add(table{header: []string{"Trace", "Backend", "Memory", "Epoch", "Duration", "Page dirtyings"},
			right: []bool{false, false, true, true, true, true}, rows: rows})
		for _, tp := range profiles {
			addFig(heatmapFigure(tp))
		}
		addFig(cdfFigure(profiles))
	}
	return doc, figs, nil
}

func warnings(s *Set, g *grouping) []string {
	var w []string
	for _, r := range s.Runs {
		if r.LostPages > 0 {
			w = append(w, fmt.Sprintf("run %s (%s, %s, %s): %d lost pages: the destination's memory differs from the source's, so this run's numbers are not valid.",
				r.RunID, r.Trace, r.Algorithm, results.FormatBps(r.BandwidthBps), r.LostPages))
		}
	}
	if s.Conflicts > 0 {
		w = append(w, fmt.Sprintf("%d duplicate run_ids carried different values; the first directory's row was kept.", s.Conflicts))
	}
	if s.OrphanRounds > 0 {
		w = append(w, fmt.Sprintf("%d rows of rounds.parquet name a run_id that is in no runs.parquet and were ignored.", s.OrphanRounds))
	}
	missing := 0
	for _, sc := range g.Scenarios {
		if g.Cells[sc][baseline] == nil {
			missing++
		}
	}
	if missing > 0 {
		w = append(w, fmt.Sprintf("%d scenarios have no %s run, so their Δ columns are empty.", missing, baseline))
	}
	return w
}

type tableGroup struct {
	title     string
	scenarios []Scenario
}

// tableGroups makes one table per trace (and per RTT, dirty model and
// engine when those vary), with a row per bandwidth and algorithm.
func tableGroups(g *grouping) []tableGroup {
	var out []tableGroup
	idx := map[string]int{}
	for _, sc := range g.Scenarios {
		parts := []string{"Trace " + sc.Trace}
		if g.Varies.RTT {
			parts = append(parts, "RTT "+fmtDuration(sc.RTTNS))
		}
		if g.Varies.DirtyModel {
			parts = append(parts, "dirty model "+sc.DirtyModel)
		}
		if g.Varies.Engine {
			parts = append(parts, "engine "+sc.engineName())
		}
		t := strings.Join(parts, ", ")
		i, ok := idx[t]
		if !ok {
			i = len(out)
			idx[t] = i
			out = append(out, tableGroup{title: t})
		}
		out[i].scenarios = append(out[i].scenarios, sc)
	}
	return out
}

func resultTable(g *grouping, scs []Scenario) table {
	t := table{
		header: []string{"Link bandwidth", "Algorithm", "n", "Rounds", "Pages sent", "GB sent", "Downtime ms [95% CI]", "Total s", "Δ downtime", "Δ pages"},
		right:  []bool{false, false, true, true, true, true, true, true, true, true},
	}
	for _, sc := range scs {
		base := g.Cells[sc][baseline]
		for _, l := range g.Labels {
			c := g.Cells[sc][l]
			if c == nil {
				continue
			}
			dDown, dPages := "n/a", "n/a"
			if base != nil {
				dDown = fmtDelta(Delta(c.Downtime.Median, base.Downtime.Median))
				dPages = fmtDelta(Delta(c.PagesSent.Median, base.PagesSent.Median))
				if c == base {
					dDown, dPages = "—", "—"
				}
			}
			t.rows = append(t.rows, []string{
				sc.bandwidthName(), l, strconv.Itoa(c.Downtime.N),
				fmtInt(c.Rounds.Median), fmtInt(c.PagesSent.Median), fmtSig(c.BytesSent.Median / 1e9),
				fmtInterval(c.Downtime) + forcedMark(c), fmtSig(c.Total.Median), dDown, dPages,
			})
		}
	}
	return t
}

// forcedMark marks a cell with force-stopped repetitions: " *" when all
// were, " *k/n" when k of n were.
func forcedMark(c *Cell) string {
	switch {
	case c.Forced == 0:
		return ""
	case c.Forced == len(c.Runs):
		return " *"
	}
	return fmt.Sprintf(" *%d/%d", c.Forced, len(c.Runs))
}

// settings describes the link and time-model settings of the runs: every
// table's downtime includes the RTT and the resume overhead, so a reader
// must see them.
func settings(runs []Run) string {
	var rtts, overheads, models, links []string
	faster := false
	seen := map[string]bool{}
	add := func(list *[]string, key, v string) {
		if !seen[key+v] {
			seen[key+v] = true
			*list = append(*list, v)
		}
	}
	for _, r := range runs {
		add(&rtts, "rtt", fmtDuration(r.RTTNS))
		add(&overheads, "ro", fmtDuration(r.ResumeOverheadNS))
		add(&models, "dm", r.DirtyModel)
		link := r.Link
		if link == "" {
			link = "sim"
		}
		add(&links, "ln", link)
		if r.SpeedOrOne() != 1 {
			faster = true
		}
	}
	speed := ""
	if faster {
		speed = "; speed: traces as captured, those marked ×S played S times faster (a TCG guest's trace at its recorded slowdown: hardware speed)"
	}
	return fmt.Sprintf("Settings: dirty reading %s; RTT %s (paid once, at switch-over); resume overhead %s; link %s%s; cap: a migration not stopped by 10 × the time to send memory once (at least 60 s) is force-stopped. Downtime = final round's transfer + RTT + resume overhead.",
		strings.Join(models, ", "), strings.Join(rtts, ", "), strings.Join(overheads, ", "), strings.Join(links, ", "), speed)
}

// fmtInterval renders "median [lo, hi]", or the median alone when every
// repetition agreed.
func fmtInterval(s Summary) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.Exact() {
		return fmtSig(s.Median)
	}
	return fmt.Sprintf("%s [%s, %s]", fmtSig(s.Median), fmtSig(s.Lo), fmtSig(s.Hi))
}

// fmtSig prints v with three significant digits (more for large
// integers-as-floats, never an exponent for the ranges a report shows).
func fmtSig(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v == 0:
		return "0"
	}
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a >= 0.001:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// fmtInt prints a count with thousands separators; a median that fell
// between two counts keeps its half.
func fmtInt(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	frac := ""
	if v != math.Trunc(v) {
		frac = ".5"
		v = math.Trunc(v)
	}
	s := strconv.FormatInt(int64(v), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String() + frac
	if neg {
		out = "-" + out
	}
	return out
}

func fmtDelta(d float64) string {
	if math.IsNaN(d) {
		return "n/a"
	}
	if math.Abs(d) < 0.05 {
		return "0.0%"
	}
	return fmt.Sprintf("%+.1f%%", d)
}

func fmtBytes(b int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v := float64(b)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return trimFloat(v) + " " + units[i]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func countDistinct(runs []Run, key func(Run) any) int {
	m := map[any]bool{}
	for _, r := range runs {
		m[key(r)] = true
	}
	return len(m)
}

// dirtyModelNotes compares, for every scenario replayed under several
// dirty models, which policy has the least median downtime under each
// (bounds left out: the oracle is not a policy, stop-and-copy is the
// ceiling), and says whether the models agree.
func dirtyModelNotes(g *grouping) []string {
	if !g.Varies.DirtyModel {
		return nil
	}
	type key struct {
		Trace        string
		BandwidthBps int64
		RTTNS        int64
		Engine       string
	}
	best := map[key]map[string]string{} // dirty model -> best label
	var keys []key
	names := map[key]string{}
	for _, sc := range g.Scenarios {
		k := key{sc.Trace, sc.BandwidthBps, sc.RTTNS, sc.Engine}
		// Ties are named together ("xen-precopy = microwiper"): the
		// winner alone would claim a difference that is not there.
		var tied []string
		bestV := math.Inf(1)
		for _, l := range g.Labels {
			alg := g.LabelAlgorithm[l]
			c := g.Cells[sc][l]
			if c == nil || alg == "oracle" || alg == "stop-and-copy" {
				continue
			}
			switch v := c.Downtime.Median; {
			case v < bestV:
				tied, bestV = []string{l}, v
			case v == bestV:
				tied = append(tied, l)
			}
		}
		if len(tied) == 0 {
			continue
		}
		bestLabel := strings.Join(tied, " = ")
		if best[k] == nil {
			best[k] = map[string]string{}
			keys = append(keys, k)
			names[k] = sc.Trace + " at " + sc.bandwidthName()
		}
		best[k][sc.DirtyModel] = bestLabel
	}
	var out []string
	for _, k := range keys {
		if len(best[k]) < 2 {
			continue
		}
		models := make([]string, 0, len(best[k]))
		for m := range best[k] {
			models = append(models, m)
		}
		sort.Strings(models)
		agree := true
		var parts []string
		for _, m := range models {
			parts = append(parts, fmt.Sprintf("%s under %s", best[k][m], m))
			agree = agree && best[k][m] == best[k][models[0]]
		}
		verdict := "the models agree"
		if !agree {
			verdict = "the conclusion depends on the model"
		}
		out = append(out, fmt.Sprintf("%s: least downtime %s; %s.", names[k], strings.Join(parts, ", "), verdict))
	}
	return out
}
