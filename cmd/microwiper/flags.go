package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/microwiper/microwiper/cmd/microwiper/internal/units"
	"github.com/microwiper/microwiper/results"
)

// options is a command's typed flags: bind declares every field on fs, in
// one place, with its default.
type options interface {
	bind(fs *flag.FlagSet)
}

// withOptions makes a command's bind function from its run function: a
// fresh options value per call, bound to the flag set, then handed to run
// with the positional arguments.
func withOptions[O any, P interface {
	*O
	options
}](run func(ctx context.Context, cio *cmdIO, o *O, args []string) error) func(*flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		o := P(new(O))
		o.bind(fs)
		return func(ctx context.Context, cio *cmdIO, args []string) error { return run(ctx, cio, (*O)(o), args) }
	}
}

// noFlags is the bind function of a command that takes arguments only.
func noFlags(run runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

// opt is a flag value that remembers whether the user gave it, for flags
// whose default comes from elsewhere (a CSV comment, the trace).
type opt[T any] struct {
	V   T
	Set bool
}

// value is a flag.Value of any type, parsed and printed by functions; set
// (optional) records that the user gave the flag.
type value[T any] struct {
	p      *T
	set    *bool
	parse  func(string) (T, error)
	format func(T) string
}

func (v value[T]) String() string {
	if v.p == nil { // flag.PrintDefaults probes a zero value
		return ""
	}
	return v.format(*v.p)
}

func (v value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	if v.set != nil {
		*v.set = true
	}
	return nil
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

// durationVar declares a duration flag parsed by units.Duration, so a bad
// value gets the same message everywhere.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(value[time.Duration]{p: p, parse: units.Duration, format: formatDuration}, name, usage)
}

// optDurationVar is durationVar that records whether the flag was given.
func optDurationVar(fs *flag.FlagSet, p *opt[time.Duration], name, usage string) {
	fs.Var(value[time.Duration]{p: &p.V, set: &p.Set, parse: units.Duration, format: func(d time.Duration) string {
		if d == 0 {
			return "" // no default to show: it comes from elsewhere
		}
		return d.String()
	}}, name, usage)
}

// bytesVar declares a byte-size flag (4GiB); 0 prints as no default.
func bytesVar(fs *flag.FlagSet, p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var(value[int64]{p: p, parse: units.Bytes, format: func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}}, name, usage)
}

// optInt64Var declares an integer flag that records whether it was given.
func optInt64Var(fs *flag.FlagSet, p *opt[int64], name, usage string) {
	fs.Var(value[int64]{p: &p.V, set: &p.Set, parse: func(s string) (int64, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	}, format: func(n int64) string { return "" }}, name, usage)
}

// optBytesVar is bytesVar that records whether the flag was given.
func optBytesVar(fs *flag.FlagSet, p *opt[int64], name, usage string) {
	fs.Var(value[int64]{p: &p.V, set: &p.Set, parse: units.Bytes, format: func(int64) string { return "" }}, name, usage)
}

// optStringVar declares a string flag that records whether it was given.
func optStringVar(fs *flag.FlagSet, p *opt[string], name, usage string) {
	fs.Var(value[string]{p: &p.V, set: &p.Set, parse: func(s string) (string, error) { return s, nil }, format: func(s string) string { return s }}, name, usage)
}

// bitRatesVar declares a comma-separated list of bandwidths (100Mbit,1Gbit).
func bitRatesVar(fs *flag.FlagSet, p *[]int64, name string, def []int64, usage string) {
	*p = def
	fs.Var(value[[]int64]{p: p, parse: func(s string) ([]int64, error) {
		var out []int64
		for _, b := range strings.Split(s, ",") {
			bps, err := units.BitRate(b)
			if err != nil {
				return nil, err
			}
			out = append(out, bps)
		}
		return out, nil
	}, format: func(bs []int64) string {
		s := make([]string, len(bs))
		for i, b := range bs {
			s[i] = results.FormatBps(b)
		}
		return strings.Join(s, ",")
	}}, name, usage)
}

// listVar declares a repeatable string flag: each use appends one value.
func listVar(fs *flag.FlagSet, p *[]string, name, usage string) {
	fs.Var(value[[]string]{p: p, parse: func(s string) ([]string, error) {
		if s == "" {
			return nil, fmt.Errorf("empty value")
		}
		return append(*p, s), nil
	}, format: func(l []string) string { return strings.Join(l, " ") }}, name, usage)
}

// parseInterspersed parses flags wherever they stand among the arguments
// ("replay t.parquet --alg xen-precopy"), as users expect; "--" ends the
// flags. It returns the positional arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
