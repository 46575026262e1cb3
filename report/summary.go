package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// relative is a cell's downtime and pages sent relative to the baseline in
// the same scenario, in percent (negative is better): the median of the
// per-start differences, each run paired with the baseline's run of the
// same repetition (the same drawn start time), and its 95% interval.
type relative struct {
	Downtime, Pages Summary
	// DowntimeSig and PagesSig: the interval excludes 0 (or, for runs that
	// all agree, the difference is not 0).
	DowntimeSig, PagesSig bool
}

// relate pairs c's runs with base's by repetition and seed (with
// --starts: the same drawn start time) and summarises the relative
// differences. Pairs whose baseline value is 0 are left out.
func relate(c, base *Cell) relative {
	type key struct{ rep, seed int64 }
	byRep := map[key]Run{}
	for _, r := range base.Runs {
		byRep[key{r.Rep, r.Seed}] = r
	}
	var dd, dp []float64
	for _, r := range c.Runs {
		b, ok := byRep[key{r.Rep, r.Seed}]
		if !ok {
			continue
		}
		if d := Delta(float64(r.DowntimeNS), float64(b.DowntimeNS)); !math.IsNaN(d) {
			dd = append(dd, d)
		}
		if d := Delta(float64(r.PagesSent), float64(b.PagesSent)); !math.IsNaN(d) {
			dp = append(dp, d)
		}
	}
	out := relative{Downtime: Summarize(dd), Pages: Summarize(dp)}
	out.DowntimeSig = significant(out.Downtime)
	out.PagesSig = significant(out.Pages)
	return out
}

// significant: a true 95% interval that excludes 0, or constant nonzero
// differences over two or more runs (a deterministic engine repeated: any
// difference is real). One run says nothing about the spread over start
// times, so it is never marked.
func significant(s Summary) bool {
	switch {
	case s.N < 2:
		return false
	case s.Exact():
		return s.Median != 0
	case s.Confidence < Confidence:
		return false
	}
	return s.Lo > 0 || s.Hi < 0
}

// fmtRel renders a relative median with its interval and a dagger where
// it is significant.
func fmtRel(s Summary, sig bool) string {
	if s.N == 0 {
		return "n/a"
	}
	mark := ""
	if sig {
		mark = "†"
	}
	if s.Exact() || s.N == 1 {
		return fmtDelta(s.Median) + mark
	}
	return fmt.Sprintf("%s%s [%s, %s]", fmtDelta(s.Median), mark, fmtDelta(s.Lo), fmtDelta(s.Hi))
}

// summaryTables are the report's opening: per bandwidth (and RTT, dirty
// model and engine where they vary), rows traces and columns every other
// policy and variant, each cell the median downtime and pages sent
// relative to the baseline.
func summaryTables(g *grouping) []struct {
	title string
	t     table
} {
	type key struct {
		bw     int64
		rtt    int64
		dirty  string
		engine string
	}
	var keys []key
	groups := map[key][]Scenario{}
	for _, sc := range g.Scenarios {
		k := key{sc.BandwidthBps, sc.RTTNS, sc.DirtyModel, sc.engineName()}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], sc)
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].bw < keys[j].bw })
	var labels []string
	for _, l := range g.Labels {
		if l != baseline {
			labels = append(labels, l)
		}
	}
	var out []struct {
		title string
		t     table
	}
	for _, k := range keys {
		t := table{header: []string{"Trace"}, right: []bool{false}}
		for _, l := range labels {
			t.header = append(t.header, l+" Δ downtime / Δ pages")
			t.right = append(t.right, true)
		}
		for _, sc := range groups[k] {
			base := g.Cells[sc][baseline]
			row := []string{sc.Trace}
			for _, l := range labels {
				c := g.Cells[sc][l]
				if c == nil || base == nil {
					row = append(row, "n/a")
					continue
				}
				rel := relate(c, base)
				row = append(row, fmtRel(rel.Downtime, rel.DowntimeSig)+" / "+fmtRel(rel.Pages, rel.PagesSig))
			}
			t.rows = append(t.rows, row)
		}
		parts := []string{"Link " + fmtBw(k.bw)}
		if g.Varies.RTT {
			parts = append(parts, "RTT "+fmtDuration(k.rtt))
		}
		if g.Varies.DirtyModel {
			parts = append(parts, "dirty model "+k.dirty)
		}
		if g.Varies.Engine {
			parts = append(parts, "engine "+k.engine)
		}
		out = append(out, struct {
			title string
			t     table
		}{strings.Join(parts, ", "), t})
	}
	return out
}

func fmtBw(bps int64) string { return Scenario{BandwidthBps: bps}.bandwidthName() }
