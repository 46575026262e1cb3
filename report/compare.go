package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"

	"github.com/microwiper/microwiper/results"
)

// Samples are measurements grouped by benchmark name and unit: one side
// of a comparison.
type Samples struct {
	// Source is the file or directory they came from.
	Source string
	// Names in first-seen order ("Migrate/trace=wws/alg=microwiper/bw=1Gbit").
	Names []string
	// Units in first-seen order ("sec/op", "downtime-ms", ...).
	Units []string
	// Values[name][unit] are the repetitions.
	Values map[string]map[string][]float64
	// Warnings are lines that could not be read, as "file:line: msg".
	Warnings []string
}

func newSamples(src string) *Samples {
	return &Samples{Source: src, Values: map[string]map[string][]float64{}}
}

func (s *Samples) add(name, unit string, v float64) {
	m, ok := s.Values[name]
	if !ok {
		m = map[string][]float64{}
		s.Values[name] = m
		s.Names = append(s.Names, name)
	}
	if !containsString(s.Units, unit) {
		s.Units = append(s.Units, unit)
	}
	m[unit] = append(m[unit], v)
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// ReadSamples reads one side of a comparison: a result directory (its
// runs.parquet) or a file of Go benchmark-format lines.
func ReadSamples(path string) (*Samples, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.IsDir() {
		set, err := Load(path)
		if err != nil {
			return nil, err
		}
		return samplesFromRuns(path, set.Runs), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	return ReadBench(f, path)
}

// benchName is the benchmark name of a run without its "Benchmark"
// prefix, as replay writes it (results.BenchName), so that a result
// directory and a benchmark file of the same runs compare name by name.
func benchName(r Run) string { return results.BenchName(&r) }

// samplesFromRuns turns result rows into samples with the units of the
// benchmark lines replay prints (ns/op read as sec/op, as benchfmt tidies
// it).
func samplesFromRuns(src string, runs []Run) *Samples {
	s := newSamples(src)
	for _, r := range runs {
		n := benchName(r)
		s.add(n, "sec/op", float64(r.TotalNS)/1e9)
		s.add(n, "downtime-ms", float64(r.DowntimeNS)/1e6)
		s.add(n, "pages-sent", float64(r.PagesSent))
		s.add(n, "bytes-sent", float64(r.BytesSent))
		s.add(n, "rounds", float64(r.Rounds))
		forced := 0.0
		if r.ForcedStop {
			forced = 1
		}
		s.add(n, "forced-stop", forced)
	}
	return s
}

// ReadBench reads Go benchmark-format lines with benchfmt. Lines that are
// not results are skipped; malformed result lines become Warnings. A
// file with no result at all is an error.
func ReadBench(r io.Reader, name string) (*Samples, error) {
	s := newSamples(name)
	br := benchfmt.NewReader(r, name)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.SyntaxError:
			s.Warnings = append(s.Warnings, rec.Error())
		case *benchfmt.Result:
			n := benchKey(rec.Name)
			for _, v := range rec.Values {
				if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
					s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %s: %v %s is not a finite number", name, rec.Name, v.OrigValue, v.OrigUnit))
					continue
				}
				s.add(n, v.Unit, v.Value)
			}
		}
	}
	if err := br.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(s.Names) == 0 {
		return nil, fmt.Errorf("read %s: no benchmark results (want lines like \"BenchmarkMigrate/trace=t/alg=a/bw=1Gbit 1 123 ns/op 4.5 downtime-ms\", or a result directory)", name)
	}
	return s, nil
}

// benchKey drops the "Benchmark" prefix and a GOMAXPROCS suffix, which
// says nothing about a simulated migration.
func benchKey(n benchfmt.Name) string {
	base, parts := n.Parts()
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(string(base), "Benchmark"))
	for _, p := range parts {
		if bytes.HasPrefix(p, []byte("-")) {
			continue
		}
		b.Write(p)
	}
	return b.String()
}

// Row is one benchmark and unit compared.
type Row struct {
	Name, Unit string
	Old, New   Summary
	Test       Test
	// Delta is the change of the medians in percent (NaN when the old
	// median is 0).
	Delta float64
}

// Comparison is OLD against NEW.
type Comparison struct {
	Old, New *Samples
	Rows     []Row
	// OnlyOld and OnlyNew are names present on one side.
	OnlyOld, OnlyNew []string
}

// CompareSamples compares every (name, unit) present on both sides.
func CompareSamples(old, new *Samples) *Comparison {
	c := &Comparison{Old: old, New: new}
	units := append([]string(nil), old.Units...)
	for _, u := range new.Units {
		if !containsString(units, u) {
			units = append(units, u)
		}
	}
	sort.SliceStable(units, func(i, j int) bool { return unitRank(units[i]) < unitRank(units[j]) })
	for _, u := range units {
		for _, n := range old.Names {
			ov, nv := old.Values[n][u], new.Values[n][u]
			if len(ov) == 0 || len(nv) == 0 {
				continue
			}
			os, ns := Summarize(ov), Summarize(nv)
			c.Rows = append(c.Rows, Row{Name: n, Unit: u, Old: os, New: ns, Test: Compare(ov, nv), Delta: Delta(ns.Median, os.Median)})
		}
	}
	for _, n := range old.Names {
		if _, ok := new.Values[n]; !ok {
			c.OnlyOld = append(c.OnlyOld, n)
		}
	}
	for _, n := range new.Names {
		if _, ok := old.Values[n]; !ok {
			c.OnlyNew = append(c.OnlyNew, n)
		}
	}
	return c
}

// unitRank puts the metrics that matter first.
func unitRank(u string) int {
	for i, k := range []string{"downtime-ms", "pages-sent", "bytes-sent", "sec/op", "rounds"} {
		if u == k {
			return i
		}
	}
	return 100
}

// Write prints the comparison as benchstat does: a table per unit with
// each side's median and interval, the change, and the p-value; "~" marks
// a change that is not significant.
func (c *Comparison) Write(w io.Writer) error {
	if len(c.Rows) == 0 {
		return errors.New("no benchmark is in both inputs: nothing to compare (names must match, e.g. Migrate/trace=t/alg=a/bw=1Gbit)")
	}
	fmt.Fprintf(w, "old: %s\nnew: %s\n", c.Old.Source, c.New.Source)
	var section [][]string
	flush := func() {
		if len(section) > 0 {
			fmt.Fprintln(w)
			writeAligned(w, section)
		}
		section = nil
	}
	unit := ""
	for _, r := range c.Rows {
		if r.Unit != unit {
			flush()
			unit = r.Unit
			section = append(section, []string{unit, "old", "new", "delta", "p", "n"})
		}
		delta, p := "~", fmt.Sprintf("p=%.3f", r.Test.P)
		if r.Test.Significant {
			delta = fmtDeltaCompare(r.Delta)
		}
		if r.Test.Exact {
			p = "exact"
			if !r.Test.Significant {
				delta = "0.00%"
			}
		}
		section = append(section, []string{r.Name, fmtCenter(r.Old), fmtCenter(r.New), delta, p, fmt.Sprintf("%d+%d", r.Old.N, r.New.N)})
	}
	flush()
	fmt.Fprintln(w, "\nmedian ± the farther bound of its 95% confidence interval, in percent (∞: fewer than 6 runs); p from a two-sided Mann-Whitney U test;")
	fmt.Fprintln(w, "~: no significant difference at alpha 0.05; exact: both sides constant (a deterministic engine), so any difference is real.")
	for _, n := range c.OnlyOld {
		fmt.Fprintf(w, "only in old: %s\n", n)
	}
	for _, n := range c.OnlyNew {
		fmt.Fprintf(w, "only in new: %s\n", n)
	}
	return nil
}

func fmtCenter(s Summary) string {
	if s.Exact() {
		return fmtSig(s.Median)
	}
	bs := benchmath.Summary{Center: s.Median, Lo: s.Lo, Hi: s.Hi}
	if s.Confidence < Confidence {
		bs.Lo, bs.Hi = math.Inf(-1), math.Inf(1)
	}
	return fmt.Sprintf("%s ± %s", fmtSig(s.Median), bs.PctRangeString())
}

func fmtDeltaCompare(d float64) string {
	if math.IsNaN(d) {
		return "?"
	}
	return fmt.Sprintf("%+.2f%%", d)
}

// writeAligned prints rows as columns: the first left-aligned, the rest
// right-aligned, two spaces apart.
func writeAligned(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// Regressions are the rows that got significantly worse by more than
// threshold percent. Every metric we record (downtime, pages, bytes, time,
// rounds) is better lower, so worse is a positive change.
func (c *Comparison) Regressions(threshold float64) []Row {
	var out []Row
	for _, r := range c.Rows {
		if r.Test.Significant && !math.IsNaN(r.Delta) && r.Delta > threshold {
			out = append(out, r)
		}
	}
	return out
}
