// Package results is the schema of a migration's result files and the only
// code that reads and writes them: runs.parquet (one row a run),
// rounds.parquet (one row a round), summary.json (the runs with the
// oracle's curves) and Go benchmark-format lines. The engines (replay)
// write it, report and compare read it; docs/RESULTS.md describes every
// column with its unit.
//
// Columns are matched by name on reading, so a file that grew new columns
// still reads; a file that lacks one of the schema's columns is refused,
// naming it, because a zero would silently pass for a measurement.
//
// A run's run_id is a digest of everything that makes it a different run
// (trace content, algorithm and parameters, engine, link kind, bandwidth,
// RTT, time model, seed, repetition), so the same inputs give the same id
// and the same files, and two different runs never share one.
package results
