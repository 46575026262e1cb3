// Package report turns migration results into a paper-style report.
//
// It reads the result directories that `microwiper replay --out DIR` and
// `microwiper run` write (runs.parquet, rounds.parquet), merges the shards
// of a sweep by run_id, summarises repetitions with medians and 95%
// confidence intervals, and writes report.md, a self-contained report.html
// (SVG inlined) and every figure as SVG, PNG (300 dpi) and PDF: downtime
// and pages sent per algorithm with error bars, pages sent and dirtied per
// round, downtime against bandwidth, and the oracle's bound against the
// switch-over time (from summary.json). Traces given alongside add a
// dirtying heatmap (time x stripe) and a CDF of stripe rewriting rates.
// When runs were replayed under several dirty models, the report says
// whether the model changes which policy wins. Compare tests two result sets (directories or Go benchmark-format
// files) for significant differences, as benchstat does.
//
// Columns are read by name, so result files that grew new columns still
// read; the package depends on no engine (it imports tracefmt and
// algorithms only). Statistics come from golang.org/x/perf/benchmath, not
// hand-written code: a median's confidence interval is distribution-free
// (order statistics) and Mann-Whitney U tests differences.
//
// Every function that reads input returns an error naming the file, and the
// row or line, that broke it; none panics on bad input.
package report
