package report

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
)

// baseline is the algorithm every Δ column is measured against: the
// paper's baseline.
const baseline = "xen-precopy"

// Scenario is everything about a run except the algorithm and the
// repetition: runs of one scenario are directly comparable.
type Scenario struct {
	// Trace is the trace's name, with its content id when two traces of
	// one name are in the set ("redis@1a2b3c") and its speed when that is
	// not 1 ("sqlite-1gib ×5.1": a TCG guest's trace at hardware speed).
	Trace string
	// TraceName is the trace's own name (results.Run's Trace).
	TraceName string
	// TraceID identifies the trace by content.
	TraceID string
	// Speed is trace time per migration time (1: as captured).
	Speed        float64
	BandwidthBps int64
	// Link is the link kind (sim, loopback, netns, remote).
	Link       string
	RTTNS      int64
	DirtyModel string
	Engine     string
}

// withoutTrace is the scenario with everything that names the workload
// cleared (the trace and the speed it played at): the rest of its settings.
func (s Scenario) withoutTrace() Scenario {
	s.Trace, s.TraceName, s.TraceID, s.Speed = "", "", "", 0
	return s
}

// Cell is the repetitions of one algorithm (label) in one scenario,
// summarised.
type Cell struct {
	Scenario Scenario
	// Label names the algorithm, with the parameters that tell its
	// variants apart when the set holds more than one.
	Label string
	// Algorithm is the registry name.
	Algorithm string
	// Runs are the repetitions, by rep.
	Runs []Run

	Rounds, PagesSent, BytesSent, Downtime, Total Summary
	// Forced counts the repetitions the engine force-stopped: they never
	// converged, so their downtime is not an ordinary one.
	Forced int
}

// grouping is a Set arranged for tables and figures.
type grouping struct {
	// Scenarios in report order: trace, then bandwidth, then the rest.
	Scenarios []Scenario
	// Labels in report order: registry order of the algorithm, then
	// parameters.
	Labels []string
	// Cells maps scenario and label to the cell; absent when the
	// algorithm did not run in that scenario.
	Cells map[Scenario]map[string]*Cell
	// Varies says which Scenario fields take more than one value, so
	// tables show only those.
	Varies struct{ Trace, Bandwidth, RTT, DirtyModel, Engine bool }
	// LabelAlgorithm maps each label to its algorithm.
	LabelAlgorithm map[string]string
	// Default marks the labels that ran with the algorithm's default
	// parameters; they keep the algorithm's colour in figures.
	Default map[string]bool
}

// group arranges the runs of a set by scenario and algorithm label.
func group(s *Set) *grouping {
	g := &grouping{Cells: map[Scenario]map[string]*Cell{}, LabelAlgorithm: map[string]string{}, Default: map[string]bool{}}
	labels := variantLabels(s.Runs)
	vals := map[string]map[any]bool{}
	note := func(k string, v any) {
		if vals[k] == nil {
			vals[k] = map[any]bool{}
		}
		vals[k][v] = true
	}
	// Two traces of one name (a/redis.parquet, b/redis.parquet) stay apart:
	// their content ids differ, and their names get the id.
	ids := map[string]map[string]bool{}
	for _, r := range s.Runs {
		if ids[r.Trace] == nil {
			ids[r.Trace] = map[string]bool{}
		}
		ids[r.Trace][r.TraceID] = true
	}
	for _, r := range s.Runs {
		name := r.Trace
		if len(ids[r.Trace]) > 1 {
			name += "@" + r.TraceID[:min(6, len(r.TraceID))]
		}
		// A trace played at another speed is another workload: its runs
		// stay apart, under a name that says so.
		speed := r.SpeedOrOne()
		if speed != 1 {
			name += " ×" + results.FormatSpeed(speed)
		}
		sc := Scenario{Trace: name, TraceName: r.Trace, TraceID: r.TraceID, Speed: speed, BandwidthBps: r.BandwidthBps, Link: r.Link, RTTNS: r.RTTNS, DirtyModel: r.DirtyModel, Engine: r.Engine}
		note("trace", name)
		note("bw", r.BandwidthBps)
		note("rtt", r.RTTNS)
		note("dirty", r.DirtyModel)
		note("engine", sc.engineName())
		label := labels[runVariant(r)]
		g.LabelAlgorithm[label] = r.Algorithm
		g.Default[label] = isDefault(r.Algorithm, r.Params)
		m := g.Cells[sc]
		if m == nil {
			m = map[string]*Cell{}
			g.Cells[sc] = m
			g.Scenarios = append(g.Scenarios, sc)
		}
		c := m[label]
		if c == nil {
			c = &Cell{Scenario: sc, Label: label, Algorithm: r.Algorithm}
			m[label] = c
		}
		c.Runs = append(c.Runs, r)
		if r.ForcedStop {
			c.Forced++
		}
	}
	g.Varies.Trace = len(vals["trace"]) > 1
	g.Varies.Bandwidth = len(vals["bw"]) > 1
	g.Varies.RTT = len(vals["rtt"]) > 1
	g.Varies.DirtyModel = len(vals["dirty"]) > 1
	g.Varies.Engine = len(vals["engine"]) > 1
	sort.SliceStable(g.Scenarios, func(i, j int) bool { return scenarioLess(g.Scenarios[i], g.Scenarios[j]) })
	for l := range g.LabelAlgorithm {
		g.Labels = append(g.Labels, l)
	}
	sort.Slice(g.Labels, func(i, j int) bool {
		ai, aj := algorithmRank(g.LabelAlgorithm[g.Labels[i]]), algorithmRank(g.LabelAlgorithm[g.Labels[j]])
		if ai != aj {
			return ai < aj
		}
		return g.Labels[i] < g.Labels[j]
	})
	for _, m := range g.Cells {
		for _, c := range m {
			sort.SliceStable(c.Runs, func(i, j int) bool { return c.Runs[i].Rep < c.Runs[j].Rep })
			c.Rounds = summarizeRuns(c.Runs, func(r Run) float64 { return float64(r.Rounds) })
			c.PagesSent = summarizeRuns(c.Runs, func(r Run) float64 { return float64(r.PagesSent) })
			c.BytesSent = summarizeRuns(c.Runs, func(r Run) float64 { return float64(r.BytesSent) })
			c.Downtime = summarizeRuns(c.Runs, func(r Run) float64 { return float64(r.DowntimeNS) / 1e6 })
			c.Total = summarizeRuns(c.Runs, func(r Run) float64 { return float64(r.TotalNS) / 1e9 })
		}
	}
	return g
}

func summarizeRuns(runs []Run, f func(Run) float64) Summary {
	vs := make([]float64, len(runs))
	for i, r := range runs {
		vs[i] = f(r)
	}
	return Summarize(vs)
}

func scenarioLess(a, b Scenario) bool {
	switch {
	case a.Trace != b.Trace:
		return a.Trace < b.Trace
	case a.BandwidthBps != b.BandwidthBps:
		return a.BandwidthBps < b.BandwidthBps
	case a.RTTNS != b.RTTNS:
		return a.RTTNS < b.RTTNS
	case a.DirtyModel != b.DirtyModel:
		return a.DirtyModel < b.DirtyModel
	case a.Engine != b.Engine:
		return a.Engine < b.Engine
	default:
		return a.Link < b.Link
	}
}

// algorithmRank orders algorithms as the registry does (baselines, the
// paper's policy, bounds); unknown names come after, alphabetically.
func algorithmRank(name string) int {
	name = algorithms.Base(name) // a Microwiper variant sorts with Microwiper
	for i, n := range algorithms.Names() {
		if n == name {
			return i
		}
	}
	return len(algorithms.Names())
}

// Delta returns (v - base) / base in percent, NaN when base is 0 or either
// is NaN.
func Delta(v, base float64) float64 {
	if base == 0 || math.IsNaN(base) || math.IsNaN(v) {
		return math.NaN()
	}
	return (v - base) / base * 100
}

// isDefault reports whether params (JSON) sets every parameter of a
// registered algorithm to its default. Unknown algorithms and unreadable
// params are not default.
func isDefault(alg, params string) bool {
	d := algorithmDefaults(alg)
	m := effectiveParams(alg, params)
	if d == nil || m == nil {
		return false
	}
	for k, v := range d {
		if m[k] != v {
			return false
		}
	}
	return true
}

// variant is an algorithm with its effective parameters: the params
// JSON with every parameter it leaves out filled in with the registry's
// default, so that result files that spell parameters differently (all of
// them, or only the changed ones) still name the same configuration alike.
type variant struct{ alg, params string }

var (
	defaultsMu    sync.Mutex
	defaultsCache = map[string]map[string]string{}
)

// algorithmDefaults maps a registered algorithm's parameter keys to their
// defaults; nil for an unknown algorithm.
func algorithmDefaults(alg string) map[string]string {
	defaultsMu.Lock()
	defer defaultsMu.Unlock()
	if d, ok := defaultsCache[alg]; ok {
		return d
	}
	a, err := algorithms.New(alg)
	var d map[string]string
	if err == nil {
		d = map[string]string{}
		for _, p := range algorithms.Params(a) {
			d[p.Key] = p.Default
		}
	}
	defaultsCache[alg] = d
	return d
}

// effectiveParams is params with defaults filled in; nil if params is not
// a JSON object.
func effectiveParams(alg, params string) map[string]string {
	m := flatParams(params)
	if m == nil {
		return nil
	}
	for k, v := range algorithmDefaults(alg) {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return m
}

func runVariant(r Run) variant {
	m := effectiveParams(r.Algorithm, r.Params)
	if m == nil {
		return variant{r.Algorithm, r.Params}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return variant{r.Algorithm, strings.Join(parts, ",")}
}

// variantLabels names each variant. An algorithm that ran with one
// configuration is called by its name; one that ran with several gets the
// parameters that differ between them appended, so microwiper with order
// off reads "microwiper (order=false)".
func variantLabels(runs []Run) map[variant]string {
	byAlg := map[string][]variant{}
	params := map[variant]map[string]string{}
	for _, r := range runs {
		v := runVariant(r)
		if _, ok := params[v]; !ok {
			params[v] = effectiveParams(r.Algorithm, r.Params)
			byAlg[r.Algorithm] = append(byAlg[r.Algorithm], v)
		}
	}
	out := map[variant]string{}
	for alg, vs := range byAlg {
		if len(vs) == 1 {
			out[vs[0]] = alg
			continue
		}
		varying := map[string]bool{}
		for _, a := range vs {
			for k, x := range params[a] {
				for _, b := range vs {
					if y, ok := params[b][k]; !ok || y != x {
						varying[k] = true
					}
				}
			}
		}
		keys := make([]string, 0, len(varying))
		for k := range varying {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, v := range vs {
			var parts []string
			for _, k := range keys {
				if x, ok := params[v][k]; ok {
					parts = append(parts, k+"="+x)
				}
			}
			desc := strings.Join(parts, ",")
			if params[v] == nil {
				desc = v.params // not JSON: show it as it is
			}
			out[v] = fmt.Sprintf("%s (%s)", alg, desc)
		}
	}
	return out
}

// flatParams decodes a params JSON object into key → compact JSON value;
// nil if it is not an object.
func flatParams(p string) map[string]string {
	var m map[string]json.RawMessage
	if p == "" {
		return map[string]string{}
	}
	if err := json.Unmarshal([]byte(p), &m); err != nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s := strings.Trim(string(v), `"`)
		out[k] = s
	}
	return out
}

// bandwidthName is the link's rate as the CLI writes it.
func (s Scenario) bandwidthName() string { return results.FormatBps(s.BandwidthBps) }

// engineName is the engine, with the link kind for a real link
// ("socket loopback").
func (s Scenario) engineName() string {
	if s.Link == "" || s.Link == "sim" {
		return s.Engine
	}
	return s.Engine + " " + s.Link
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
