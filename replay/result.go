package replay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Result is one migration run, the same for every engine. Field names
// follow docs/DESIGN.md "Results"; renaming one is a format change.
type Result struct {
	RunID        string  `json:"run_id" parquet:"run_id"`
	Trace        string  `json:"trace" parquet:"trace"`
	Algorithm    string  `json:"algorithm" parquet:"algorithm"`
	Params       string  `json:"params" parquet:"params"`
	Engine       string  `json:"engine" parquet:"engine"`
	Link         string  `json:"link" parquet:"link"`
	BandwidthBps int64   `json:"bandwidth_bps" parquet:"bandwidth_bps"`
	RTTNS        int64   `json:"rtt_ns" parquet:"rtt_ns"`
	DirtyModel   string  `json:"dirty_model" parquet:"dirty_model"`
	Seed         int64   `json:"seed" parquet:"seed"`
	Rep          int64   `json:"rep" parquet:"rep"`
	Rounds       int64   `json:"rounds" parquet:"rounds"`
	PagesSent    int64   `json:"pages_sent" parquet:"pages_sent"`
	BytesSent    int64   `json:"bytes_sent" parquet:"bytes_sent"`
	DowntimeNS   int64   `json:"downtime_ns" parquet:"downtime_ns"`
	TotalNS      int64   `json:"total_ns" parquet:"total_ns"`
	Slowdown     float64 `json:"slowdown" parquet:"slowdown"`
	LostPages    int64   `json:"lost_pages" parquet:"lost_pages"`
	// ForcedStop: the policy had not stopped by Config.MaxNS or MaxRounds
	// and the engine forced the final round.
	ForcedStop bool `json:"forced_stop" parquet:"forced_stop"`

	// RoundRows are the per-round rows, the final round last.
	RoundRows []RoundRow `json:"-" parquet:"-"`
	// Curve is the oracle's downtime for each switch-over time; empty for
	// policies.
	Curve []CurvePoint `json:"curve,omitempty" parquet:"-"`
	// Events counts dirtying events applied (for throughput figures).
	Events int64 `json:"-" parquet:"-"`
}

// RoundRow is one round of one run (rounds.parquet).
type RoundRow struct {
	RunID          string  `json:"run_id" parquet:"run_id"`
	Round          int64   `json:"round" parquet:"round"`
	StartNS        int64   `json:"start_ns" parquet:"start_ns"`
	DurationNS     int64   `json:"duration_ns" parquet:"duration_ns"`
	PagesSent      int64   `json:"pages_sent" parquet:"pages_sent"`
	PagesSkipped   int64   `json:"pages_skipped" parquet:"pages_skipped"`
	PagesHeld      int64   `json:"pages_held" parquet:"pages_held"`
	PagesDirtied   int64   `json:"pages_dirtied" parquet:"pages_dirtied"`
	RemainingDirty int64   `json:"remaining_dirty" parquet:"remaining_dirty"`
	ThroughputBps  float64 `json:"throughput_bps" parquet:"throughput_bps"`
}

// CurvePoint is the oracle's bound for one switch-over time.
type CurvePoint struct {
	SwitchNS   int64 `json:"switch_ns"`
	Unclean    int64 `json:"unclean_pages"`
	DowntimeNS int64 `json:"downtime_ns"`
}

// runID is a short digest of what identifies a run, so that the same inputs
// give the same id and result files stay byte-identical.
func runID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._+-]`)

// BenchName is the Go benchmark name of a result:
// BenchmarkMigrate/trace=T/alg=A/bw=B, with rtt and dirty model added when
// they are not the defaults.
func (r *Result) BenchName() string {
	clean := func(s string) string { return unsafeName.ReplaceAllString(s, "_") }
	name := fmt.Sprintf("BenchmarkMigrate/trace=%s/alg=%s/bw=%s", clean(r.Trace), clean(r.Algorithm), clean(r.Link))
	if r.RTTNS != 0 {
		name += fmt.Sprintf("/rtt=%dns", r.RTTNS)
	}
	if r.DirtyModel != string(Continuous) && r.DirtyModel != string(Exact) {
		name += "/dirty=" + clean(r.DirtyModel)
	}
	return name
}

// WriteBenchLines writes one Go benchmark-format line per result, so that
// benchstat reads them with no glue.
func WriteBenchLines(w io.Writer, results []*Result) error {
	for _, r := range results {
		_, err := fmt.Fprintf(w, "%s 1 %d ns/op %.3f downtime-ms %d pages-sent %d bytes-sent %d rounds\n",
			r.BenchName(), r.TotalNS, float64(r.DowntimeNS)/1e6, r.PagesSent, r.BytesSent, r.Rounds)
		if err != nil {
			return err
		}
	}
	return nil
}

// summary is summary.json.
type summary struct {
	Runs []*Result `json:"runs"`
}

// WriteResults writes runs.parquet, rounds.parquet and summary.json into
// dir, creating it. The same results give byte-identical files.
func WriteResults(dir string, results []*Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory %s: %w", dir, err)
	}
	runs := make([]Result, len(results))
	var rounds []RoundRow
	for i, r := range results {
		runs[i] = *r
		rounds = append(rounds, r.RoundRows...)
	}
	if err := writeParquet(filepath.Join(dir, "runs.parquet"), runs); err != nil {
		return err
	}
	if err := writeParquet(filepath.Join(dir, "rounds.parquet"), rounds); err != nil {
		return err
	}
	js, err := json.MarshalIndent(summary{Runs: results}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary.json: %w", err)
	}
	js = append(js, '\n')
	if err := writeFileAtomic(filepath.Join(dir, "summary.json"), js); err != nil {
		return err
	}
	return nil
}

func writeParquet[T any](path string, rows []T) error {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.CreatedBy("microwiper", "results/v1", ""))
	if _, err := w.Write(rows); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeFileAtomic(path, buf.Bytes())
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadRuns reads a runs.parquet written by WriteResults.
func ReadRuns(path string) ([]Result, error) {
	rows, err := parquet.ReadFile[Result](path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return rows, nil
}

// ReadRounds reads a rounds.parquet written by WriteResults.
func ReadRounds(path string) ([]RoundRow, error) {
	rows, err := parquet.ReadFile[RoundRow](path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return rows, nil
}
