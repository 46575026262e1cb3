package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"github.com/parquet-go/parquet-go"
)

// File names inside a result directory.
const (
	RunsFile    = "runs.parquet"
	RoundsFile  = "rounds.parquet"
	SummaryFile = "summary.json"
)

// summary is summary.json.
type summary struct {
	Runs []*Result `json:"runs"`
}

// Write writes runs.parquet, rounds.parquet and summary.json into dir,
// creating it. The same results give byte-identical files; each file
// appears whole or not at all.
func Write(dir string, rs []*Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory %s: %w", dir, err)
	}
	runs := make([]Run, len(rs))
	var rounds []Round
	for i, r := range rs {
		runs[i] = r.Run
		rounds = append(rounds, r.RoundRows...)
	}
	if err := writeParquet(filepath.Join(dir, RunsFile), runs); err != nil {
		return err
	}
	if err := writeParquet(filepath.Join(dir, RoundsFile), rounds); err != nil {
		return err
	}
	js, err := json.MarshalIndent(summary{Runs: rs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", SummaryFile, err)
	}
	js = append(js, '\n')
	return writeFileAtomic(filepath.Join(dir, SummaryFile), js)
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
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Dir is the content of one result directory.
type Dir struct {
	Runs []Run
	// Rounds is nil when the directory has no rounds.parquet.
	Rounds []Round
	// Curves maps an oracle run's run_id to its curve, from summary.json
	// (empty when there is none).
	Curves map[string][]CurvePoint
}

// Read reads a result directory: runs.parquet (required), rounds.parquet
// and summary.json (both optional).
func Read(dir string) (*Dir, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read results %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("read results %s: not a directory (want the --out directory of microwiper replay or run)", dir)
	}
	d := &Dir{}
	if d.Runs, err = ReadRuns(filepath.Join(dir, RunsFile)); err != nil {
		return nil, err
	}
	if d.Rounds, err = ReadRounds(filepath.Join(dir, RoundsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if d.Curves, err = readCurves(filepath.Join(dir, SummaryFile)); err != nil {
		return nil, err
	}
	return d, nil
}

// ReadRuns reads a runs.parquet.
func ReadRuns(path string) ([]Run, error) { return readParquet[Run](path) }

// ReadRounds reads a rounds.parquet.
func ReadRounds(path string) ([]Round, error) { return readParquet[Round](path) }

// readCurves reads the oracle curves of summary.json; a missing file is
// no curves.
func readCurves(path string) (map[string][]CurvePoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]CurvePoint{}, nil
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

// readParquet reads every row of a Parquet file into T by column name. A
// file that lacks one of T's columns is refused, naming the column.
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
		return nil, fmt.Errorf("read %s: %w (want a results file written by this version of microwiper replay --out)", path, err)
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
