package report

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/microwiper/microwiper/results"
)

// Run, Round and CurvePoint are the rows of a result directory, in the
// one schema replay writes (package results, docs/RESULTS.md).
type (
	Run        = results.Run
	Round      = results.Round
	CurvePoint = results.CurvePoint
)

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
	// Incomplete lists result sets left out because their writer failed
	// or was killed before committing them (results.Dir.Incomplete).
	Incomplete []string
	// OrphanRounds counts rounds.parquet rows whose run_id is in no
	// runs.parquet.
	OrphanRounds int
	// Curves maps an oracle run's run_id to its bound for each switch-over
	// time, from summary.json (absent when no directory has one).
	Curves map[string][]CurvePoint
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
		d, err := results.Read(dir)
		if err != nil {
			return nil, err
		}
		for _, id := range d.Incomplete {
			s.Incomplete = append(s.Incomplete, filepath.Join(dir, "runs-"+id+".parquet"))
		}
		// Each set counts as a directory of its own: sets of one
		// directory merge like shards.
		for _, set := range d.Sets {
			if err := s.add(dir, set, byID); err != nil {
				return nil, err
			}
		}
	}
	for id, rs := range s.Rounds {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Round < rs[j].Round })
		s.Rounds[id] = rs
	}
	return s, nil
}

// add merges one result set, keeping the first row seen for each run_id.
func (s *Set) add(dir string, d *results.Set, byID map[string]int) error {
	runsPath := filepath.Join(dir, "runs-"+d.ID+".parquet")
	if d.ID == "" {
		runsPath = filepath.Join(dir, results.RunsFile)
	}
	for i, r := range d.Runs {
		if err := checkRun(r); err != nil {
			return fmt.Errorf("read %s: row %d: %w", runsPath, i, err)
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
	for id, c := range d.Curves {
		if _, ok := s.Curves[id]; !ok {
			if _, known := byID[id]; known {
				s.Curves[id] = c
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range d.Rounds {
		if _, ok := byID[r.RunID]; !ok {
			s.OrphanRounds++
			continue
		}
		// A run's rounds come from the set that first gave it rounds:
		// appending a duplicate set's copy would double them.
		if len(s.Rounds[r.RunID]) > 0 && !seen[r.RunID] {
			continue
		}
		seen[r.RunID] = true
		s.Rounds[r.RunID] = append(s.Rounds[r.RunID], r)
	}
	return nil
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
