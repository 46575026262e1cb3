package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/parquet-go/parquet-go"
)

// Run is one row of runs.parquet. Field tags are the column names of
// docs/DESIGN.md "Results"; columns are matched by name, so extra columns in a
// file are ignored, and a missing one is an error naming it.
type Run struct {
	RunID        string  `parquet:"run_id"`
	Trace        string  `parquet:"trace"`
	Algorithm    string  `parquet:"algorithm"`
	Params       string  `parquet:"params"`
	Engine       string  `parquet:"engine"`
	Link         string  `parquet:"link"`
	BandwidthBps int64   `parquet:"bandwidth_bps"`
	RTTNS        int64   `parquet:"rtt_ns"`
	DirtyModel   string  `parquet:"dirty_model"`
	Seed         int64   `parquet:"seed"`
	Rep          int64   `parquet:"rep"`
	Rounds       int64   `parquet:"rounds"`
	PagesSent    int64   `parquet:"pages_sent"`
	BytesSent    int64   `parquet:"bytes_sent"`
	DowntimeNS   int64   `parquet:"downtime_ns"`
	TotalNS      int64   `parquet:"total_ns"`
	Slowdown     float64 `parquet:"slowdown"`
	LostPages    int64   `parquet:"lost_pages"`
}

// Round is one row of rounds.parquet.
type Round struct {
	RunID          string  `parquet:"run_id"`
	Round          int64   `parquet:"round"`
	StartNS        int64   `parquet:"start_ns"`
	DurationNS     int64   `parquet:"duration_ns"`
	PagesSent      int64   `parquet:"pages_sent"`
	PagesSkipped   int64   `parquet:"pages_skipped"`
	PagesHeld      int64   `parquet:"pages_held"`
	PagesDirtied   int64   `parquet:"pages_dirtied"`
	RemainingDirty int64   `parquet:"remaining_dirty"`
	ThroughputBps  float64 `parquet:"throughput_bps"`
}

// Set is the merged content of one or more result directories.
type Set struct {
	// Dirs are the directories read, in the order given.
	Dirs []string
	// Runs holds one row per distinct run_id, in the order first seen.
	Runs []Run
	// Rounds maps run_id to its rounds, sorted by round number.
	Rounds map[string][]Round
	// Duplicates counts rows dropped because their run_id was already
	// read (shards that overlap, or a directory given twice).
	Duplicates int
	// Conflicts counts the dropped duplicates whose values differed from
	// the kept row: the same inputs measured differently (a real-time
	// engine) or a directory mixed from different code versions.
	Conflicts int
	// OrphanRounds counts rounds.parquet rows whose run_id is in no
	// runs.parquet.
	OrphanRounds int
	// Curves maps an oracle run's run_id to its bound for each switch-over
	// time, from summary.json (absent when no directory has one).
	Curves map[string][]CurvePoint
}

// CurvePoint is the oracle's downtime bound for one switch-over time.
type CurvePoint struct {
	SwitchNS   int64 `json:"switch_ns"`
	Unclean    int64 `json:"unclean_pages"`
	DowntimeNS int64 `json:"downtime_ns"`
}

// readCurves reads the oracle curves of summary.json; a missing file is
// no curves.
func readCurves(path string) (map[string][]CurvePoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var sum struct {
		Runs []struct {
			RunID string       `json:"run_id"`
			Curve []CurvePoint `json:"curve"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, fmt.Errorf("read %s: %w (want the summary.json of microwiper replay --out)", path, err)
	}
	out := map[string][]CurvePoint{}
	for _, r := range sum.Runs {
		if len(r.Curve) > 0 {
			out[r.RunID] = r.Curve
		}
	}
	return out, nil
}

// Load reads the result directories and merges them, keeping the first row
// seen for each run_id. A directory must hold runs.parquet; rounds.parquet
// is optional (the per-round figure is then left out).
func Load(dirs ...string) (*Set, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no result directories given")
	}
	s := &Set{Dirs: dirs, Rounds: map[string][]Round{}, Curves: map[string][]CurvePoint{}}
	byID := map[string]int{}
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("read results %s: %w", dir, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("read results %s: not a directory (want the --out directory of microwiper replay or run)", dir)
		}
		runsPath := filepath.Join(dir, "runs.parquet")
		runs, err := readParquet[Run](runsPath)
		if err != nil {
			return nil, err
		}
		for i, r := range runs {
			if err := checkRun(r); err != nil {
				return nil, fmt.Errorf("read %s: row %d: %w", runsPath, i, err)
			}
			if k, ok := byID[r.RunID]; ok {
				s.Duplicates++
				if s.Runs[k] != r {
					s.Conflicts++
				}
				continue
			}
			byID[r.RunID] = len(s.Runs)
			s.Runs = append(s.Runs, r)
		}
		curves, err := readCurves(filepath.Join(dir, "summary.json"))
		if err != nil {
			return nil, err
		}
		for id, c := range curves {
			if _, ok := s.Curves[id]; !ok {
				if _, known := byID[id]; known {
					s.Curves[id] = c
				}
			}
		}
		roundsPath := filepath.Join(dir, "rounds.parquet")
		rounds, err := readParquet[Round](roundsPath)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, r := range rounds {
			if _, ok := byID[r.RunID]; !ok {
				s.OrphanRounds++
				continue
			}
			// A run's rounds come from the directory that first gave it
			// rounds: appending a duplicate shard's copy would double them.
			if len(s.Rounds[r.RunID]) > 0 && !seen[r.RunID] {
				continue
			}
			seen[r.RunID] = true
			s.Rounds[r.RunID] = append(s.Rounds[r.RunID], r)
		}
	}
	for id, rs := range s.Rounds {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Round < rs[j].Round })
		s.Rounds[id] = rs
	}
	return s, nil
}

// checkRun rejects rows that would make nonsense of every table.
func checkRun(r Run) error {
	switch {
	case r.RunID == "":
		return errors.New("empty run_id")
	case r.Algorithm == "":
		return fmt.Errorf("run %s: empty algorithm", r.RunID)
	case r.BandwidthBps <= 0:
		return fmt.Errorf("run %s: bandwidth_bps = %d, want > 0", r.RunID, r.BandwidthBps)
	case r.DowntimeNS < 0 || r.TotalNS < 0 || r.PagesSent < 0 || r.BytesSent < 0 || r.Rounds < 0:
		return fmt.Errorf("run %s: negative count or time", r.RunID)
	}
	return nil
}

// readParquet reads every row of a Parquet file into T by column name. A
// file that lacks one of T's columns is refused, naming the column: a zero
// would silently pass for a measurement.
func readParquet[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var rows []T
	err = guard(func() error {
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			return err
		}
		if err := hasColumns[T](pf.Schema()); err != nil {
			return err
		}
		r := parquet.NewGenericReader[T](pf)
		defer r.Close()
		rows = make([]T, pf.NumRows())
		n, err := r.Read(rows)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if int64(n) != pf.NumRows() {
			return fmt.Errorf("read %d of %d rows", n, pf.NumRows())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (want a results file written by microwiper replay --out)", path, err)
	}
	return rows, nil
}

// hasColumns checks that the file schema has a column for every tagged
// field of T.
func hasColumns[T any](s *parquet.Schema) error {
	t := reflect.TypeFor[T]()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("parquet")
		if name == "" || name == "-" {
			continue
		}
		if _, ok := s.Lookup(name); !ok {
			return fmt.Errorf("missing column %q", name)
		}
	}
	return nil
}

// guard turns a panic inside the Parquet library (a corrupt file can cause
// one) into an error.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt file: %v", p)
		}
	}()
	return f()
}
