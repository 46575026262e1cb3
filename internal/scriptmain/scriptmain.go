package scriptmain

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// Main runs a script's run function with the command-line arguments and a
// context that an interrupt or SIGTERM cancels, and exits with status 1
// and "name: error" on stderr when run fails. It returns only on success.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	// os.Exit skips deferred calls: the signal handler is released first.
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Logger is a script's progress log: text on stderr, debug lines only when
// verbose.
func Logger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages as
// /proc/loadavg gives them ("0.52 0.61 0.70"), or "" where it cannot be
// read: timings are logged beside it because a shared machine's load
// changes them.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return loadAverages(string(b))
}

func loadAverages(procLoadavg string) string {
	f := strings.Fields(procLoadavg)
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// LastLine is the last non-blank line of s, such as the last line of a
// console or of a command's output, for an error message.
func LastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Only reads an -only flag: a comma-separated subset of names, "" for all.
// It returns whether a name is selected, or an error naming what is not
// one of names, so a typo fails at once instead of running nothing.
func Only(only, what string, names []string) (func(name string) bool, error) {
	if only == "" {
		return func(string) bool { return true }, nil
	}
	picked := strings.Split(only, ",")
	for _, p := range picked {
		if !slices.Contains(names, p) {
			return nil, fmt.Errorf("-only %s: no %s %q (want a comma-separated list of: %s)", only, what, p, strings.Join(names, ", "))
		}
	}
	return func(name string) bool { return slices.Contains(picked, name) }, nil
}
