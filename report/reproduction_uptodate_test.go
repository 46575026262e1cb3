package report

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReproductionUpToDate rebuilds REPRODUCTION.md from the results
// make reproduce stored (experiments/results/reproduce) and requires the
// committed file to be exactly that: tables edited by hand, or results
// changed without regenerating, fail here.
func TestReproductionUpToDate(t *testing.T) {
	root := filepath.Join("..")
	s, err := Load(filepath.Join(root, "experiments", "results", "reproduce"))
	require.NoError(t, err)
	var traces []string
	// The traces make reproduce profiles (Makefile's REPRO_TRACES): the
	// whole-VM workload traces, not every ground-truth repetition.
	for _, pat := range []string{"shipped/*.parquet", "captured/*.parquet", "vm/*ib.parquet"} {
		m, err := filepath.Glob(filepath.Join(root, "traces", pat))
		require.NoError(t, err)
		traces = append(traces, m...)
	}
	md, _, err := Reproduction(s, ReproductionOptions{Path: filepath.Join(root, "REPRODUCTION.md"),
		FigDir: filepath.Join(root, "docs", "reproduction"), Command: "make reproduce", Traces: traces})
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(root, "REPRODUCTION.md"))
	require.NoError(t, err)
	if string(want) != md {
		got := filepath.Join(t.TempDir(), "REPRODUCTION.md")
		require.NoError(t, os.WriteFile(got, []byte(md), 0o644))
		t.Fatalf("REPRODUCTION.md differs from what its stored results give (rebuilt copy: %s); run make reproduce", got)
	}
}
