package report

import (
	"path/filepath"
	"testing"
)

// BenchmarkProfileTrace measures the trace pass behind the heatmap and
// the rate CDF, per row of the trace.
func BenchmarkProfileTrace(b *testing.B) {
	path := filepath.Join(b.TempDir(), "shift.parquet")
	writeFixtureTrace(b, path)
	tp, err := profileTrace(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := profileTrace(path, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tp.Dirtyings), "ns/row")
}

// BenchmarkLoadGroup measures reading and summarising the fixture shards.
func BenchmarkLoadGroup(b *testing.B) {
	for b.Loop() {
		s, err := Load(shard0, shard1)
		if err != nil {
			b.Fatal(err)
		}
		group(s)
	}
}

// BenchmarkWrite measures a whole report: tables and every figure in
// SVG, PNG and PDF.
func BenchmarkWrite(b *testing.B) {
	s, err := Load(shard0, shard1)
	if err != nil {
		b.Fatal(err)
	}
	trace := filepath.Join(b.TempDir(), "shift.parquet")
	writeFixtureTrace(b, trace)
	out := b.TempDir()
	for b.Loop() {
		if _, err := Write(s, Options{OutDir: out, Traces: []string{trace}}); err != nil {
			b.Fatal(err)
		}
	}
}
