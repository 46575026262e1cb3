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
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/microwiper/microwiper/internal/atomicfile"
)

// A result directory holds result sets, each the output of one Write:
//
//	runs-ID.parquet     one row a run
//	rounds-ID.parquet   one row a round
//	bench-ID.txt        the runs as Go benchmark lines
//	summary-ID.json     the runs with the oracle's curves, written last
//
// ID is the write's UTC time to the nanosecond, the writer's process id
// and a sequence number, so that concurrent writers (shards of one run,
// replays started together) never share a name and sets sort in the
// order they were written. Every file is written to a temporary file in
// the directory and renamed into place; summary-ID.json comes last and
// commits the set: a set without it (a full disk, a killed writer) is
// incomplete, and Read leaves it out and says so. Read merges every
// complete set. A directory written before sets existed (runs.parquet,
// rounds.parquet, summary.json) reads as one set.
const (
	RunsFile    = "runs.parquet"
	RoundsFile  = "rounds.parquet"
	SummaryFile = "summary.json"
)

// summary is summary.json.
type summary struct {
	Runs []*Result `json:"runs"`
}

// setSeq numbers the sets this process writes.
var setSeq atomic.Int64

// setPrefix is the file-name prefix of each of a set's files, in the
// order Write writes them; the last one commits the set.
var setPrefix = [...]struct{ prefix, ext string }{{"runs-", ".parquet"}, {"rounds-", ".parquet"}, {"bench-", ".txt"}, {"summary-", ".json"}}

// Write writes rs as a new result set in dir, creating dir. The same
// results give byte-identical files. Nothing is written for no results.
// On failure the files of the set already in place are removed: they were
// this call's, and no incomplete set is left to mislead a reader.
func Write(dir string, rs []*Result) (err error) {
	if len(rs) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory %s: %w", dir, err)
	}
	id := fmt.Sprintf("%s-%d-%d", time.Now().UTC().Format("20060102T150405.000000000Z"), os.Getpid(), setSeq.Add(1))
	runs := make([]Run, len(rs))
	var rounds []Round
	for i, r := range rs {
		runs[i] = r.Run
		rounds = append(rounds, r.RoundRows...)
	}
	var contents [len(setPrefix)][]byte
	if contents[0], err = encodeParquet(runs); err != nil {
		return fmt.Errorf("write results in %s: %w", dir, err)
	}
	if contents[1], err = encodeParquet(rounds); err != nil {
		return fmt.Errorf("write results in %s: %w", dir, err)
	}
	var bench bytes.Buffer
	if err := WriteBenchLines(&bench, rs); err != nil {
		return err
	}
	contents[2] = bench.Bytes()
	js, err := json.MarshalIndent(summary{Runs: rs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	contents[3] = append(js, '\n')
	var written []string
	for i, f := range setPrefix {
		path := filepath.Join(dir, f.prefix+id+f.ext)
		if err := atomicfile.WriteFile(path, contents[i]); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return err
		}
		written = append(written, path)
	}
	return nil
}

func encodeParquet[T any](rows []T) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.CreatedBy("microwiper", "results/v1", ""))
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Dir is the content of one result directory: its complete sets merged.
type Dir struct {
	// Sets are the complete sets, in the order they were written.
	Sets []*Set
	// Runs, Rounds and Curves merge the sets' (Rounds is nil when no set
	// has rounds).
	Runs   []Run
	Rounds []Round
	Curves map[string][]CurvePoint
	// Incomplete names the sets left out: their writer failed or was
	// killed before committing them.
	Incomplete []string
}

// Set is one result set.
type Set struct {
	// ID is the set's name ("" for a directory from before sets).
	ID     string
	Runs   []Run
	Rounds []Round
	Curves map[string][]CurvePoint
}

// Read reads a result directory: every complete set, merged.
func Read(dir string) (*Dir, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read results %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("read results %s: not a directory (want the --out directory of microwiper replay or run)", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read results %s: %w", dir, err)
	}
	d := &Dir{Curves: map[string][]CurvePoint{}}
	committed := map[string]bool{}
	var ids []string
	legacy := false
	for _, e := range ents {
		name := e.Name()
		if name == RunsFile {
			legacy = true
		}
		if id, ok := strings.CutPrefix(name, "summary-"); ok && strings.HasSuffix(id, ".json") {
			id = strings.TrimSuffix(id, ".json")
			committed[id] = true
			ids = append(ids, id)
		}
	}
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), "runs-"); ok && strings.HasSuffix(id, ".parquet") {
			if id = strings.TrimSuffix(id, ".parquet"); !committed[id] {
				d.Incomplete = append(d.Incomplete, id)
			}
		}
	}
	if legacy {
		s, err := readSet(dir, "", RunsFile, RoundsFile, SummaryFile, true)
		if err != nil {
			return nil, err
		}
		d.add(s)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s, err := readSet(dir, id, "runs-"+id+".parquet", "rounds-"+id+".parquet", "summary-"+id+".json", false)
		if err != nil {
			return nil, err
		}
		d.add(s)
	}
	if len(d.Sets) == 0 {
		msg := "no results"
		if len(d.Incomplete) > 0 {
			msg = fmt.Sprintf("no complete results (%d incomplete sets: their writer failed or was killed)", len(d.Incomplete))
		}
		return nil, fmt.Errorf("read results %s: %s: want the --out directory of microwiper replay or run", dir, msg)
	}
	return d, nil
}

func (d *Dir) add(s *Set) {
	d.Sets = append(d.Sets, s)
	d.Runs = append(d.Runs, s.Runs...)
	d.Rounds = append(d.Rounds, s.Rounds...)
	for id, c := range s.Curves {
		if _, ok := d.Curves[id]; !ok {
			d.Curves[id] = c
		}
	}
}

// readSet reads one set's files. A legacy set's rounds and summary are
// optional; a committed set's summary must list exactly its runs, so that
// a damaged set is refused rather than half read.
func readSet(dir, id, runsName, roundsName, summaryName string, legacy bool) (*Set, error) {
	s := &Set{ID: id}
	var err error
	if s.Runs, err = ReadRuns(filepath.Join(dir, runsName)); err != nil {
		return nil, err
	}
	if s.Rounds, err = ReadRounds(filepath.Join(dir, roundsName)); err != nil && !(legacy && errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	var ids []string
	if s.Curves, ids, err = readSummary(filepath.Join(dir, summaryName)); err != nil && !(legacy && errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	if !legacy {
		if len(ids) != len(s.Runs) {
			return nil, fmt.Errorf("read results %s: set %s: %s lists %d runs, %s holds %d: a damaged set; remove its files", dir, id, summaryName, len(ids), runsName, len(s.Runs))
		}
		for i, r := range s.Runs {
			if r.RunID != ids[i] {
				return nil, fmt.Errorf("read results %s: set %s: run %d is %s in %s and %s in %s: a damaged set; remove its files", dir, id, i, r.RunID, runsName, ids[i], summaryName)
			}
		}
	}
	return s, nil
}

// ReadRuns reads a runs.parquet.
func ReadRuns(path string) ([]Run, error) { return readParquet[Run](path) }

// ReadRounds reads a rounds.parquet.
func ReadRounds(path string) ([]Round, error) { return readParquet[Round](path) }

// readSummary reads the oracle curves and the run ids of a summary.json.
func readSummary(path string) (map[string][]CurvePoint, []string, error) {
	out := map[string][]CurvePoint{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out, nil, fmt.Errorf("read %s: %w", path, err)
	}
	var sum struct {
		Runs []struct {
			RunID string       `json:"run_id"`
			Curve []CurvePoint `json:"curve"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w (want the summary.json of microwiper replay --out)", path, err)
	}
	ids := make([]string, len(sum.Runs))
	for i, r := range sum.Runs {
		ids[i] = r.RunID
		if len(r.Curve) > 0 {
			out[r.RunID] = r.Curve
		}
	}
	return out, ids, nil
}

// maxReadBytes bounds the memory a results file's rows may take (a
// variable for tests), and readChunk the rows decoded at once.
var maxReadBytes int64 = 2 << 30

const readChunk = 4096

// readParquet reads every row of a Parquet file into T by column name. A
// file that lacks one of T's columns is refused, naming the column, unless
// the column is optional (added later: older files read as its zero).
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
		// The footer's row count is a claim: a few KB of file can claim
		// 10^9 rows. Refuse claims beyond the memory bound, and read in
		// chunks so even an allowed claim allocates only what arrives.
		claim := pf.NumRows()
		size := int64(reflect.TypeFor[T]().Size())
		if claim < 0 || claim > maxReadBytes/size {
			return fmt.Errorf("footer claims %d rows of %d B: more than the %d rows (%d MiB) results are read into", claim, size, maxReadBytes/size, maxReadBytes>>20)
		}
		r := parquet.NewGenericReader[T](pf)
		defer r.Close()
		chunk := make([]T, min(claim, readChunk))
		for int64(len(rows)) < claim {
			n, err := r.Read(chunk[:min(int64(len(chunk)), claim-int64(len(rows)))])
			rows = append(rows, chunk[:n]...)
			if errors.Is(err, io.EOF) || (err == nil && n == 0) {
				break
			}
			if err != nil {
				return err
			}
		}
		if int64(len(rows)) != claim {
			return fmt.Errorf("read %d of %d rows", len(rows), claim)
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
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		if name == "" || name == "-" || slices.Contains(strings.Split(opts, ","), "optional") {
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
