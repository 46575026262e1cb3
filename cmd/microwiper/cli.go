package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand. Its run function gets the arguments after the
// subcommand's name (or after "trace info" for grouped commands).
type command struct {
	// name is what the user types ("replay", "trace info").
	name string
	// synopsis is the one line shown by "microwiper help".
	synopsis string
	// usage is the argument pattern shown after the name ("[flags] trace.parquet").
	usage string
	// example is at least one complete command line, shown by -h.
	example string
	// bind declares the command's typed flags on fs and returns the
	// function that runs the command with them and its positional
	// arguments (withOptions, noFlags).
	bind func(fs *flag.FlagSet) runFunc
	// commandArgs says the arguments are a command line of their own
	// (capture -- make -j2): flags end at the first argument. Otherwise
	// flags may follow the arguments ("replay t.parquet --alg xen-precopy").
	commandArgs bool
}

// runFunc runs a command with its bound flags. Return usageErrorf for bad
// arguments.
type runFunc func(ctx context.Context, cio *cmdIO, args []string) error

// parse parses args for c and returns the positional arguments.
func (c *command) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	if c.commandArgs {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return fs.Args(), nil
	}
	return parseInterspersed(fs, args)
}

// cmdIO carries the streams a command writes to.
type cmdIO struct {
	stdout, stderr io.Writer
}

// usageError marks an error caused by how the command was called (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usageErrorf returns a usage error (exit status 2).
func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run is the whole program: it dispatches args to a subcommand and returns
// the exit status. Tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cio := &cmdIO{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printHelp(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, _ := findCommand(args[1:]); c != nil {
				printCommandUsage(stdout, c, nil)
				return exitOK
			}
			fmt.Fprintf(stderr, "microwiper: unknown command %q: run 'microwiper help' for the list\n", strings.Join(args[1:], " "))
			return exitUsage
		}
		printHelp(stdout)
		return exitOK
	}
	c, rest := findCommand(args)
	if c == nil {
		fmt.Fprintf(stderr, "microwiper: unknown command %q: run 'microwiper help' for the list\n", strings.Join(args, " "))
		return exitUsage
	}
	fs := flag.NewFlagSet("microwiper "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runCmd := c.bind(fs)
	pos, err := c.parse(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(stdout, c, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "microwiper %s: %v (run 'microwiper %s -h' for usage)\n", c.name, err, c.name)
		return exitUsage
	}
	if err := runCmd(ctx, cio, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "microwiper %s: %v (run 'microwiper %s -h' for usage)\n", c.name, err, c.name)
			return exitUsage
		}
		fmt.Fprintf(stderr, "microwiper %s: %v\n", c.name, err)
		return exitFailure
	}
	return exitOK
}

// findCommand matches the longest command name that prefixes args.
func findCommand(args []string) (*command, []string) {
	var best *command
	bestLen := 0
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(words) <= len(args) && len(words) > bestLen && equalWords(words, args[:len(words)]) {
			best, bestLen = &commands[i], len(words)
		}
	}
	if best == nil {
		return nil, args
	}
	return best, args[bestLen:]
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "microwiper: record page-write traces and replay them through live-migration policies.")
	fmt.Fprintln(w, "\nUsage: microwiper <command> [flags] [args]\n\nCommands:")
	cs := append([]command(nil), commands...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(w, "\nRun 'microwiper <command> -h' for a command's flags and an example.")
}

func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: microwiper %s %s\n\n%s\n", c.name, c.usage, c.synopsis)
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.bind(fs)
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n")
		for _, line := range strings.Split(strings.TrimSpace(c.example), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}
