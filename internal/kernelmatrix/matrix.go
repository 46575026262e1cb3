// Package kernelmatrix runs capture's tests inside QEMU guests booted with
// Debian kernels (internal/guest) and tabulates, per kernel and backend,
// whether the backend starts, the precision and recall of the known-pattern
// tests and the cost of one scan of 1 GiB. `make test-kernels` runs it
// (TestMatrix); the table goes to $KERNEL_MATRIX_OUT (out/kernel-matrix.md).
//
// The guest runs a static build of capture's test binary, its writer
// target and the CLI; it reports on its second serial port in the lines
// this package parses (Parse): "== start BACKEND STATUS", the CLI's
// stderr, go test -v output and benchmark lines.
package kernelmatrix

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Backends are the capture backends, in the table's order.
var Backends = []string{"uffd-wp-async", "uffd-wp-sync", "soft-dirty"}

// Cell is one kernel × backend result.
type Cell struct {
	// Starts: the CLI captured with --backend set to it.
	Starts bool
	// StartErr is the CLI's error when it did not start.
	StartErr string
	// Cases are the known-pattern test cases run, with their scores.
	Cases []Case
	// ScanNS is one scan of 1 GiB populated, ns (0: not measured).
	ScanNS float64
	// Failed lists test cases that failed for this backend.
	Failed []string
}

// Case is one known-pattern test case's score.
type Case struct {
	Name                  string
	Hit, Truth, Observed  int
	Recall, Precision     float64
	Passed, Skipped, Seen bool
}

// Result is everything one guest reported.
type Result struct {
	Kernel string // uname -r in the guest
	// Auto is the backend the CLI chose with no --backend, and why.
	Auto, AutoReason string
	Cells            map[string]*Cell
	// Tests is the test binary's exit status (-1: not reported).
	Tests int
	// Failures are the failing tests' names, any backend.
	Failures []string
}

var (
	scoreRE = regexp.MustCompile(`^\s+\S+\.go:\d+: (\S+): recall ([0-9.]+) \((\d+)/(\d+)\) precision ([0-9.]+) \((\d+)/(\d+), (\d+) stray\)`)
	benchRE = regexp.MustCompile(`^BenchmarkScanBackend/backend=([a-z-]+)/mapped=1GiB(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op`)
	testRE  = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)
)

// backendOf maps a test case name (attach/softdirty/hugepage,
// attach/uffd-wp-sync/unpopulated) to its backend.
func backendOf(name string) string {
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "async", "uffd-wp-async":
			return "uffd-wp-async"
		case "sync", "uffd-wp-sync":
			return "uffd-wp-sync"
		case "softdirty", "soft-dirty":
			return "soft-dirty"
		}
	}
	return ""
}

// Parse reads a guest's report.
func Parse(out string) Result {
	r := Result{Cells: map[string]*Cell{}, Tests: -1}
	for _, b := range Backends {
		r.Cells[b] = &Cell{}
	}
	cur := "" // backend whose CLI start output follows
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r")
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "==" {
			cur = ""
			switch f[1] {
			case "kernel":
				r.Kernel = f[2]
			case "start":
				if len(f) >= 4 {
					if c, ok := r.Cells[f[2]]; ok {
						c.Starts = f[3] == "0"
						cur = f[2]
					} else if f[2] == "auto" {
						cur = "auto"
					}
				}
			case "tests":
				r.Tests, _ = strconv.Atoi(f[2])
			}
			continue
		}
		if m := scoreRE.FindStringSubmatch(l); m != nil {
			c := r.Cells[backendOf(m[1])]
			if c == nil {
				continue
			}
			cs := Case{Name: m[1], Seen: true}
			cs.Recall, _ = strconv.ParseFloat(m[2], 64)
			cs.Hit, _ = strconv.Atoi(m[3])
			cs.Truth, _ = strconv.Atoi(m[4])
			cs.Precision, _ = strconv.ParseFloat(m[5], 64)
			cs.Observed, _ = strconv.Atoi(m[7])
			c.Cases = append(c.Cases, cs)
			continue
		}
		if m := benchRE.FindStringSubmatch(l); m != nil {
			if c := r.Cells[m[1]]; c != nil {
				c.ScanNS, _ = strconv.ParseFloat(m[2], 64)
			}
			continue
		}
		if m := testRE.FindStringSubmatch(l); m != nil {
			name := m[2]
			if m[1] == "FAIL" {
				r.Failures = append(r.Failures, name)
			}
			b := backendOf(name)
			c := r.Cells[b]
			if c == nil {
				continue
			}
			short := name[strings.Index(name, "/")+1:]
			for i := range c.Cases {
				if c.Cases[i].Name == short || strings.HasSuffix(name, "/"+c.Cases[i].Name) {
					c.Cases[i].Passed = m[1] == "PASS"
				}
			}
			if m[1] == "FAIL" {
				c.Failed = append(c.Failed, name)
			}
			continue
		}
		switch cur {
		case "auto":
			// "backend soft-dirty (the best this kernel (...) offers; ...)"
			if rest, ok := strings.CutPrefix(l, "backend "); ok {
				name, why, _ := strings.Cut(rest, " ")
				r.Auto, r.AutoReason = name, strings.TrimSuffix(strings.TrimPrefix(why, "("), ")")
			}
		case "":
		default:
			c := r.Cells[cur]
			if !c.Starts && strings.TrimSpace(l) != "" && c.StartErr == "" {
				c.StartErr = strings.TrimSpace(l)
			}
		}
	}
	return r
}

// Summary is a cell's known-pattern figures: the worst recall and
// precision over its cases, and the totals.
func (c *Cell) Summary() (recall, precision float64, hit, truth, cases int) {
	recall, precision = 1, 1
	for _, cs := range c.Cases {
		recall = min(recall, cs.Recall)
		precision = min(precision, cs.Precision)
		hit += cs.Hit
		truth += cs.Truth
	}
	return recall, precision, hit, truth, len(c.Cases)
}

// Table renders results as a Markdown table, one row per kernel and
// backend.
func Table(rs []Result) string {
	var b strings.Builder
	b.WriteString("| Kernel | Backend | Starts | Recall (worst case) | Precision (worst case) | Cases | Scan of 1 GiB |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		for _, name := range Backends {
			c := r.Cells[name]
			starts := "yes"
			if !c.Starts {
				starts = "no: " + shortErr(c.StartErr)
			}
			if r.Auto == name {
				starts += " (auto)"
			}
			rec, prec, cases := "–", "–", "–"
			if len(c.Cases) > 0 {
				rc, pc, hit, truth, n := c.Summary()
				rec = fmt.Sprintf("%.4f (%d/%d pages)", rc, hit, truth)
				prec = fmt.Sprintf("%.4f", pc)
				var names []string
				for _, cs := range c.Cases {
					names = append(names, cs.Name)
				}
				slices.Sort(names)
				cases = fmt.Sprintf("%d: %s", n, strings.Join(names, ", "))
			}
			scan := "–"
			if c.ScanNS > 0 {
				scan = fmt.Sprintf("%.1f ms", c.ScanNS/1e6)
			}
			if len(c.Failed) > 0 {
				cases += " — FAILED: " + strings.Join(c.Failed, ", ")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Kernel, name, starts, rec, prec, cases, scan)
		}
	}
	return b.String()
}

// shortErr keeps the part of a start error that names what is missing.
func shortErr(e string) string {
	if i := strings.Index(e, "lacks "); i >= 0 {
		e = e[i:]
		if j := strings.Index(e, ": "); j >= 0 {
			e = e[:j]
		}
		return e
	}
	if len(e) > 80 {
		e = e[:80] + "…"
	}
	return e
}
