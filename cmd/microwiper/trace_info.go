package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/microwiper/microwiper/tracefmt/profile"
)

var traceInfoCommand = command{
	name:     "trace info",
	synopsis: "summarise a trace: size, rows, bytes per row, dirty rate over time, writable working set",
	usage:    "[flags] trace.parquet",
	example: `microwiper trace info hot.parquet
microwiper trace info -window 500ms -table-rows 10 wws.parquet`,
	bind: withOptions(runTraceInfo),
}

// traceInfoOptions are the flags of trace info.
type traceInfoOptions struct {
	Window    time.Duration
	TableRows int64
}

func (o *traceInfoOptions) bind(fs *flag.FlagSet) {
	durationVar(fs, &o.Window, "window", time.Second, "window for the dirty rate and the writable working set")
	fs.Int64Var(&o.TableRows, "table-rows", 20, "at most this many lines in the rate table (windows are merged to fit)")
}

// maxInfoPages bounds the per-page tables of trace info.
const maxInfoPages = profile.MaxWorkingSetPages

func runTraceInfo(_ context.Context, cio *cmdIO, o *traceInfoOptions, args []string) error {
	if len(args) != 1 {
		return usageErrorf("want exactly one trace path, got %d arguments", len(args))
	}
	window := o.Window
	if window <= 0 {
		return usageErrorf("-window = %v: want a positive duration", window)
	}
	tableRows := o.TableRows
	if tableRows < 1 {
		return usageErrorf("-table-rows = %d: want at least 1", tableRows)
	}
	path := args[0]
	var procs *procStats // per process, for process-tree traces
	p, err := profile.Measure(path, profile.Options{WindowNS: int64(window), WorkingSet: true,
		Visit: func(h tracefmt.Header) func(tracefmt.Epoch) {
			if procs = newProcStats(h); procs == nil {
				return nil
			}
			return procs.add
		}})
	if err != nil {
		return err
	}
	size, files := traceFileBytes(path)
	printTraceInfo(cio.stdout, path, p, procs, size, files, int(tableRows))
	return nil
}

// traceFileBytes is the size on disk of a trace file or segment directory.
func traceFileBytes(path string) (int64, int) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0
	}
	if !fi.IsDir() {
		return fi.Size(), 1
	}
	var total int64
	files := 0
	matches, _ := filepath.Glob(filepath.Join(path, "*.parquet"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			total += fi.Size()
			files++
		}
	}
	return total, files
}

// traceHumanBytes writes n bytes with a binary prefix.
func traceHumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

func printTraceInfo(w io.Writer, path string, st *profile.Profile, procs *procStats, size int64, files int, tableRows int) {
	h := st.Header
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	kv := func(k, format string, args ...any) { fmt.Fprintf(w, "%-12s %s\n", k, fmt.Sprintf(format, args...)) }
	kv("trace", "%s", path)
	plural := "s"
	if files == 1 {
		plural = ""
	}
	kv("format", "%s, %d file%s, %s (%d bytes)", tracefmt.FormatVersion, files, plural, traceHumanBytes(size), size)
	if st.Finished {
		kv("status", "finished")
	} else {
		kv("status", "UNFINISHED: its writer never closed it (a killed capture or generator); the rows present are valid")
	}
	kv("backend", "%s", orDash(h.Backend))
	kv("workload", "%s", orDash(h.Workload))
	kv("kernel", "%s", orDash(h.Kernel))
	started := "-"
	if !h.StartedAt.IsZero() {
		started = h.StartedAt.UTC().Format(time.RFC3339)
	}
	kv("started", "%s", started)
	if h.GuestSlowdown != 0 {
		kv("slowdown", "%g: the guest ran %g times slower than hardware ('replay --speed guest' plays it at hardware speed)", h.GuestSlowdown, h.GuestSlowdown)
	}
	kv("page size", "%d B", h.PageSize)
	kv("pages", "%d (%s)", h.Pages, traceHumanBytes(h.MemoryBytes()))
	kv("epoch", "%v", time.Duration(h.EpochNS))
	kv("duration", "%v (time of the last epoch)", time.Duration(st.LastTNS))
	kv("epochs", "%d with writes", st.Epochs)
	kv("rows", "%d (%d initial image, %d writes)", st.Rows, st.Initial, st.Rows-st.Initial)
	kv("bytes/row", "%.3f", float64(size)/float64(max(st.Rows, 1)))
	if st.Initial == 0 {
		kv("initial", "no initial-image rows: every page holds data")
	} else {
		kv("initial", "%d pages hold data (%.1f%%), the rest are zero pages until written", st.Initial, 100*float64(st.Initial)/float64(h.Pages))
	}
	kv("writes", "%d counted (%.2f a row)", st.Writes, float64(st.Writes)/float64(max(st.Rows-st.Initial, 1)))
	if st.HasZero {
		kv("zero writes", "%d (%.2f%% of the rows outside the initial image left the page all zeros)", st.ZeroWrites, 100*float64(st.ZeroWrites)/float64(max(st.Dirtyings, 1)))
	} else {
		kv("zero writes", "not recorded (no zero column: capture with --zero-writes checks content)")
	}
	if st.WorkingSet != nil {
		kv("written", "%d distinct pages (%.1f%% of memory)", st.EverWritten, 100*float64(st.EverWritten)/float64(h.Pages))
	}
	kv("regions", "%d", len(h.Regions))
	for i, r := range h.Regions {
		if i == 8 {
			fmt.Fprintf(w, "%-12s ... %d more\n", "", len(h.Regions)-8)
			break
		}
		fmt.Fprintf(w, "%-12s pages [%d, %d) at %#x %s %s\n", "", r.FirstPage, r.FirstPage+r.Pages, r.StartAddr, r.Perms, orDash(r.Path))
	}
	if procs != nil {
		procs.print(w, h, st.LastTNS, tableRows)
	}
	if len(st.Rate) == 0 {
		return
	}
	win := time.Duration(st.WindowNS)
	fmt.Fprintf(w, "\ndirty rate and writable working set per %v window (%d windows)\n", win, len(st.Rate))
	// The last window may be cut short by the end of the trace: rates
	// divide by the time each window actually covers.
	end := func(bin int) int64 {
		return min(int64(bin+1)*st.WindowNS, max(st.LastTNS, int64(bin)*st.WindowNS+h.EpochNS))
	}
	covered := func(from, to int) float64 { return float64(end(to-1)-int64(from)*st.WindowNS) / 1e9 }
	rates := make([]float64, len(st.Rate))
	for i, n := range st.Rate {
		rates[i] = float64(n) / covered(i, i+1)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "rate", sparkline(rates, 64))
	if st.WorkingSet != nil {
		wws := make([]float64, len(st.WorkingSet))
		var sum, peak int64
		for i, n := range st.WorkingSet {
			wws[i] = float64(n)
			sum += n
			peak = max(peak, n)
		}
		fmt.Fprintf(w, "  %-9s %s\n", "wws", sparkline(wws, 64))
		mean := float64(sum) / float64(len(st.WorkingSet))
		fmt.Fprintf(w, "  wws mean %.0f pages (%s), max %d pages (%s)\n",
			mean, traceHumanBytes(int64(mean*float64(h.PageSize))), peak, traceHumanBytes(peak*h.PageSize))
	}
	// The table merges consecutive windows so it fits in tableRows lines.
	per := (len(st.Rate) + tableRows - 1) / tableRows
	fmt.Fprintf(w, "\n  %-17s %14s %12s\n", "from", "dirty pages/s", "wws pages")
	for i := 0; i < len(st.Rate); i += per {
		j := min(i+per, len(st.Rate))
		var rows, wwsMax int64
		for k := i; k < j; k++ {
			rows += st.Rate[k]
			if st.WorkingSet != nil {
				wwsMax = max(wwsMax, st.WorkingSet[k])
			}
		}
		span := fmt.Sprintf("%v-%v", time.Duration(int64(i)*st.WindowNS), time.Duration(end(j-1)))
		wws := "-"
		if st.WorkingSet != nil {
			wws = fmt.Sprint(wwsMax)
		}
		fmt.Fprintf(w, "  %-17s %14.0f %12s\n", span, float64(rows)/covered(i, j), wws)
	}
	if per > 1 {
		fmt.Fprintf(w, "  (each line merges %d windows: mean rate, max wws)\n", per)
	}
}

// sparkline draws vs in at most width cells, averaging neighbours.
func sparkline(vs []float64, width int) string {
	per := (len(vs) + width - 1) / width
	var cells []float64
	peak := 0.0
	for i := 0; i < len(vs); i += per {
		j := min(i+per, len(vs))
		s := 0.0
		for _, v := range vs[i:j] {
			s += v
		}
		c := s / float64(j-i)
		cells = append(cells, c)
		peak = math.Max(peak, c)
	}
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	var b strings.Builder
	for _, c := range cells {
		k := 0
		if peak > 0 {
			k = int(math.Round(c / peak * float64(len(runes)-1)))
		}
		b.WriteRune(runes[k])
	}
	return fmt.Sprintf("%s  peak %.0f", b.String(), peak)
}
