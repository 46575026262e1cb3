package report_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/microwiper/microwiper/report"
)

// Six repetitions are the fewest for which a median has a 95%
// distribution-free interval; with five, the interval is the range and
// says what it covers.
func ExampleSummarize() {
	six := report.Summarize([]float64{31, 29, 30, 35, 28, 30})
	fmt.Printf("median %.1f [%.0f, %.0f] covers %.1f%%\n", six.Median, six.Lo, six.Hi, 100*six.Confidence)
	five := report.Summarize([]float64{31, 29, 30, 35, 28})
	fmt.Printf("median %.1f [%.0f, %.0f] covers %.2f%%\n", five.Median, five.Lo, five.Hi, 100*five.Confidence)
	// Output:
	// median 30.0 [28, 35] covers 96.9%
	// median 30.0 [28, 35] covers 93.75%
}

// Compare reads either side from a result directory or from Go benchmark
// lines, and marks unchanged metrics with "~".
func ExampleCompareSamples() {
	old, _ := report.ReadBench(strings.NewReader(`
BenchmarkMigrate/trace=kv/alg=microwiper/bw=1Gbit 1 2200000000 ns/op 30.1 downtime-ms
BenchmarkMigrate/trace=kv/alg=microwiper/bw=1Gbit 1 2200000000 ns/op 30.4 downtime-ms
BenchmarkMigrate/trace=kv/alg=microwiper/bw=1Gbit 1 2200000000 ns/op 29.8 downtime-ms
`), "old.txt")
	new, _ := report.ReadBench(strings.NewReader(`
BenchmarkMigrate/trace=kv/alg=microwiper/bw=1Gbit 1 2200000000 ns/op 24.0 downtime-ms
BenchmarkMigrate/trace=kv/alg=microwiper/bw=1Gbit 1 2200000000 ns/op 24.2 downtime-ms
BenchmarkMigrate/trace=kv/alg=microwiper/bw=1Gbit 1 2200000000 ns/op 23.9 downtime-ms
`), "new.txt")
	c := report.CompareSamples(old, new)
	for _, r := range c.Rows {
		fmt.Printf("%s %s: p=%.2f significant=%v exact=%v\n", r.Name, r.Unit, r.Test.P, r.Test.Significant, r.Test.Exact)
	}
	_ = c.Write(os.Stdout)
	// Output:
	// Migrate/trace=kv/alg=microwiper/bw=1Gbit downtime-ms: p=0.10 significant=false exact=false
	// Migrate/trace=kv/alg=microwiper/bw=1Gbit sec/op: p=1.00 significant=false exact=true
	// old: old.txt
	// new: new.txt
	//
	// downtime-ms                                    old     new  delta        p    n
	// Migrate/trace=kv/alg=microwiper/bw=1Gbit  30.1 ± ∞  24 ± ∞      ~  p=0.100  3+3
	//
	// sec/op                                     old   new  delta      p    n
	// Migrate/trace=kv/alg=microwiper/bw=1Gbit  2.20  2.20  0.00%  exact  3+3
	//
	// median ± the farther bound of its 95% confidence interval, in percent (∞: fewer than 6 runs); p from a two-sided Mann-Whitney U test;
	// ~: no significant difference at alpha 0.05; exact: both sides constant (a deterministic engine), so any difference is real.
}
