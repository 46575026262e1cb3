package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/microwiper/microwiper/results"
)

var runCommand = command{
	name:     "run",
	synopsis: "run an experiment matrix (traces x algorithms x parameters x repetitions), or one shard of it (--shard $SLURM_ARRAY_TASK_ID/N)",
	usage:    "[--shard i/n] [--list] --out DIR experiment.json",
	example: `microwiper run --out out/paper experiments/paper.json
microwiper run --list --shard 3/16 experiments/paper.json
microwiper run --shard 3/16 --out out/paper-3 experiments/paper.json
microwiper report --out out/report out/paper-3`,
	bind: withOptions(runRun),
}

// runOptions are the flags of run.
type runOptions struct {
	Shard shard
	Out   string
	List  bool
	Bench bool
}

// shard is one of n parts of a job list: the jobs whose index is I mod N.
type shard struct{ I, N int }

func (o *runOptions) bind(fs *flag.FlagSet) {
	o.Shard = shard{0, 1}
	fs.Var(value[shard]{p: &o.Shard, parse: parseShard, format: func(s shard) string { return fmt.Sprintf("%d/%d", s.I, s.N) }},
		"shard", "run only shard i of n (0 <= i < n): the jobs whose index is i modulo n")
	fs.StringVar(&o.Out, "out", "", "directory for this shard's result sets (runs, rounds, bench lines and summary: see docs/RESULTS.md); shards may share one (required unless --list)")
	fs.BoolVar(&o.List, "list", false, "print the jobs of this shard (index, trace, algorithm, bandwidth, repetition) and run nothing")
	fs.BoolVar(&o.Bench, "bench", false, "print Go benchmark-format lines after the table (always written to each set's bench-ID.txt)")
}

// experimentFile is the JSON an experiment is written in. Paths and globs in
// traces are relative to the file's directory.
//
//	{
//	  "experiments": [
//	    {"name": "baseline", "traces": ["../traces/shipped/*.parquet"],
//	     "replay": ["-alg", "all", "-bw", "100Mbit,1Gbit", "-rtt", "1ms"]},
//	    {"name": "stripes", "traces": ["../traces/captured/redis.parquet"], "reps": 3,
//	     "replay": ["-alg", "microwiper", "-param", "microwiper.stripe_pages=32"]}
//	  ]
//	}
type experimentFile struct {
	// Experiments are expanded in order into one list of jobs.
	Experiments []experiment `json:"experiments"`
}

// experiment is one block of the matrix.
type experiment struct {
	// Name labels the block in errors and --list.
	Name string `json:"name"`
	// Traces are trace paths or globs.
	Traces []string `json:"traces"`
	// Replay holds flags of 'microwiper replay' (not -out, not traces).
	Replay []string `json:"replay"`
	// Reps repeats every run; 0 means 1. Repetitions differ in their rep
	// and seed fields, and in measurements on the socket engine.
	Reps int64 `json:"reps"`
	// Optional skips the block, with a note, when its traces match no
	// file (traces still to be captured, e.g. traces/vm/).
	Optional bool `json:"optional"`
}

func runRun(ctx context.Context, cio *cmdIO, o *runOptions, args []string) error {
	if len(args) != 1 {
		return usageErrorf("want one experiment file, got %d arguments", len(args))
	}
	i, n := o.Shard.I, o.Shard.N
	list, out := o.List, o.Out
	if out == "" && !list {
		return usageErrorf("-out is required: name a directory for this shard's results")
	}
	jobs, notes, err := loadExperimentNotes(args[0])
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(cio.stderr, "note: %s\n", n)
	}
	var mine []replayJob
	for k, j := range jobs {
		if k%n == i {
			mine = append(mine, j)
			if list {
				fmt.Fprintf(cio.stdout, "%d\t%s\t%s\t%s\trep=%d\n", k, j.path, j.alg, results.FormatBps(j.bps), j.rep)
			}
		}
	}
	if list {
		return nil
	}
	if len(mine) == 0 {
		fmt.Fprintf(cio.stderr, "shard %d/%d has no jobs (the matrix has %d)\n", i, n, len(jobs))
		return nil
	}
	return executeReplay(ctx, cio, mine, out, o.Bench)
}

// parseShard reads "i/n".
func parseShard(s string) (shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return shard{}, fmt.Errorf("%q: want i/n with 0 <= i < n, e.g. 0/4", s)
	}
	return shard{i, n}, nil
}

// loadExperiment reads an experiment file and expands it into its jobs,
// checking every block's replay flags the way 'microwiper replay' does.
func loadExperiment(path string) ([]replayJob, error) {
	jobs, _, err := loadExperimentNotes(path)
	return jobs, err
}

// loadExperimentNotes is loadExperiment that also returns a note for
// every optional block skipped because its traces are not there yet.
func loadExperimentNotes(path string) ([]replayJob, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read experiment: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ef experimentFile
	if err := dec.Decode(&ef); err != nil {
		return nil, nil, fmt.Errorf("experiment %s: %w (see 'microwiper run -h' for the format)", path, err)
	}
	if len(ef.Experiments) == 0 {
		return nil, nil, fmt.Errorf("experiment %s: no experiments listed", path)
	}
	dir := filepath.Dir(path)
	var jobs []replayJob
	var notes []string
	for i, e := range ef.Experiments {
		where := fmt.Sprintf("experiment %s, block %d", path, i)
		if e.Name != "" {
			where += fmt.Sprintf(" (%s)", e.Name)
		}
		traces, err := expandTraces(dir, e.Traces)
		if err != nil && e.Optional && errors.Is(err, errNoMatch) {
			notes = append(notes, fmt.Sprintf("%s: skipped: %v", where, err))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		if e.Reps < 0 || e.Reps > maxReps {
			return nil, nil, fmt.Errorf("%s: reps %d: want 0 to %d", where, e.Reps, maxReps)
		}
		fs := flag.NewFlagSet("replay", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var o replayOptions
		o.bind(fs)
		stray, err := parseInterspersed(fs, e.Replay)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: replay flags: %w", where, err)
		}
		if len(stray) > 0 {
			return nil, nil, fmt.Errorf("%s: replay holds a stray argument %q: traces belong in \"traces\"", where, stray[0])
		}
		if o.Out != "" {
			return nil, nil, fmt.Errorf("%s: replay sets -out: results go to run's --out", where)
		}
		p, err := o.plan(traces)
		if err != nil {
			// A bad flag in the file is bad input, not a bad command line.
			return nil, nil, fmt.Errorf("%s: %s", where, err)
		}
		// Count before expanding: the matrix is built in memory.
		n := float64(len(p.tracePath)) * float64(len(p.bws)) * float64(len(p.algs)) * float64(max(e.Reps, 1)) * float64(max(p.starts, 1))
		if float64(len(jobs))+n > maxJobs {
			return nil, nil, fmt.Errorf("%s: %.0f runs (%d traces × %d bandwidths × %d algorithms × %d reps × %d starts) take the matrix past %d runs: split it into several experiment files",
				where, n, len(p.tracePath), len(p.bws), len(p.algs), max(e.Reps, 1), max(p.starts, 1), maxJobs)
		}
		jobs = append(jobs, p.jobs(e.Reps)...)
	}
	if len(jobs) == 0 {
		return nil, notes, fmt.Errorf("experiment %s: every block was skipped: %s", path, strings.Join(notes, "; "))
	}
	return jobs, notes, nil
}

// errNoMatch is a trace pattern that matches no file.
var errNoMatch = errors.New("matches no file")

// maxReps and maxJobs bound an experiment: a million runs is months of
// machine time, and the matrix is held in memory before the first runs.
const (
	maxReps = 100_000
	maxJobs = 1_000_000
)

// expandTraces resolves paths and globs against dir, in sorted order.
func expandTraces(dir string, patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, errors.New("no traces listed")
	}
	var out []string
	for _, pat := range patterns {
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(dir, pat)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("trace pattern %q: %w", pat, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("trace pattern %q: %w", pat, errNoMatch)
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	return out, nil
}
