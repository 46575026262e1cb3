//go:build linux

// Command vmtraces captures the whole-VM workload traces of traces/vm/
// (`make traces`) and writes traces/vm/README.md from them.
//
// For each workload of internal/vmtraces it builds an initramfs (busybox,
// the workload's programs with their shared libraries, the static benchmark
// of scripts/vmtraces/bench), boots one QEMU TCG guest, reads the
// benchmark's time from the console, waits for the workload to run, captures
// the whole VM with `microwiper capture --qemu-qmp` for the window, stops
// the guest, and moves the trace into place, whole. The host's time for the
// same benchmark, taken first, makes each trace's guest_slowdown.
//
// Every QEMU it starts dies with it (internal/guest: own process group,
// Pdeathsig, killed on Ctrl-C).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/microwiper/microwiper/internal/atomicfile"
	"github.com/microwiper/microwiper/internal/ctxtime"
	"github.com/microwiper/microwiper/internal/guest"
	"github.com/microwiper/microwiper/internal/scriptguest"
	"github.com/microwiper/microwiper/internal/scriptmain"
	"github.com/microwiper/microwiper/internal/vmtraces"
)

func main() {
	scriptmain.Main("vmtraces", run)
}

type options struct {
	out, bin, work string
	only           string
	window         time.Duration
	epoch          time.Duration
	readmeOnly     bool
	log            *slog.Logger
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vmtraces", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.out, "traces", "traces/vm", "directory the traces and README.md go to")
	fs.StringVar(&o.bin, "bin", "bin/microwiper", "microwiper binary that captures")
	fs.StringVar(&o.work, "work", "", "work directory (default: a new temporary one, removed at the end)")
	fs.StringVar(&o.only, "only", "", "comma-separated workloads to capture (default all); README.md is rewritten only when all are")
	fs.DurationVar(&o.window, "window", vmtraces.CaptureSeconds*time.Second, "capture window per workload")
	fs.DurationVar(&o.epoch, "epoch", vmtraces.EpochMS*time.Millisecond, "capture epoch")
	fs.BoolVar(&o.readmeOnly, "readme-only", false, "rewrite README.md from the traces in -traces; no QEMU")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.log = scriptmain.Logger(false)
	var names []string
	for _, w := range vmtraces.Workloads {
		names = append(names, w.Name)
	}
	selected, err := scriptmain.Only(o.only, "workload", names)
	if err != nil {
		return err
	}
	readme := filepath.Join(o.out, "README.md")
	if o.readmeOnly {
		return writeREADME(o.out, readme)
	}
	if o.work == "" {
		d, err := os.MkdirTemp("", "vmtraces-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.work = d
	}
	start := time.Now()
	k, err := scriptguest.Kernel(ctx)
	if err != nil {
		return err
	}
	bench, tpcb, err := buildHelpers(ctx, o.work)
	if err != nil {
		return err
	}
	src, err := writeSources(filepath.Join(o.work, "src"))
	if err != nil {
		return err
	}
	for _, w := range vmtraces.Workloads {
		if !selected(w.Name) {
			continue
		}
		extra := []guest.File{{Path: "/bin/bench", Source: bench}}
		switch w.Name {
		case "sqlite-1gib":
			extra = append(extra, guest.File{Path: "/bin/tpcb", Source: tpcb})
		case "compile-2gib":
			// gcc pre-includes stdc-predef.h in every unit, headers or not.
			extra = append(extra, src...)
			extra = append(extra, guest.File{Path: "/usr/include/stdc-predef.h", Source: "/usr/include/stdc-predef.h", Mode: 0o644})
		}
		// The host's own time is taken again for each guest: the load
		// of the shared machine changes within minutes.
		hostNS, err := hostBench(ctx, bench)
		if err != nil {
			return err
		}
		o.log.Info("host benchmark", "cpu", time.Duration(hostNS), "load", scriptmain.LoadAvg())
		if err := capture(ctx, o, k, w, extra, hostNS); err != nil {
			return fmt.Errorf("%s: %w", w.Name, err)
		}
	}
	if o.only == "" {
		if err := writeREADME(o.out, readme); err != nil {
			return err
		}
	}
	o.log.Info("done", "took", time.Since(start).Round(time.Second), "load", scriptmain.LoadAvg())
	return nil
}

func writeREADME(dir, path string) error {
	text, err := vmtraces.README(dir, vmtraces.Workloads)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(text))
}

// buildHelpers builds the static benchmark (Go) and the TPC-B program (C
// against Debian's libsqlite3.a).
func buildHelpers(ctx context.Context, work string) (bench, tpcb string, err error) {
	bench = filepath.Join(work, "bench")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bench, "./scripts/vmtraces/bench")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build the benchmark: %v\n%s", err, out)
	}
	tpcb = filepath.Join(work, "tpcb")
	// -w: static glibc warns that sqlite's dlopen would need the host's
	// libraries at run time; tpcb loads no extensions.
	cmd = exec.CommandContext(ctx, "gcc", "-O2", "-static", "-w", "-o", tpcb, "scripts/vmtraces/tpcb/tpcb.c", "-lsqlite3", "-lm", "-lpthread", "-ldl")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build tpcb (needs gcc and libsqlite3-dev): %v\n%s", err, out)
	}
	return bench, tpcb, nil
}

var benchRe = regexp.MustCompile(`microwiper-bench cpu_ns=(\d+) .*\n`)

// guestBenchRuns is how often the guest runs the benchmark; the median
// counts. The host's load varies from second to second (other jobs share
// its two cores), and one run in the guest varied by a factor of 4 between
// guests booted a minute apart.
const guestBenchRuns = 3

// hostBench runs the benchmark three times on the host and returns its
// least CPU time: the hardware's speed, least disturbed by other jobs.
func hostBench(ctx context.Context, bench string) (int64, error) {
	best := int64(0)
	for i := 0; i < 3; i++ {
		out, err := exec.CommandContext(ctx, bench).Output()
		if err != nil {
			return 0, fmt.Errorf("host benchmark: %w", err)
		}
		ns, err := benchNS(string(out))
		if err != nil {
			return 0, fmt.Errorf("host benchmark: %w", err)
		}
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best, nil
}

func benchNS(out string) (int64, error) {
	ns, err := benchAll(out)
	if err != nil {
		return 0, err
	}
	if len(ns) == 0 {
		return 0, fmt.Errorf("no benchmark line in its output")
	}
	return ns[0], nil
}

// benchAll returns the CPU times of every complete benchmark line in out.
func benchAll(out string) ([]int64, error) {
	var ns []int64
	for _, m := range benchRe.FindAllStringSubmatch(out, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("benchmark line %q: %w", strings.TrimSpace(m[0]), err)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// median of a few values (the upper one of an even count).
func median(xs []int64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// readyMarker is what the guest script prints when a workload without its
// own Ready line has started.
const readyMarker = "microwiper-workload-running"

func script(w vmtraces.Workload) string {
	var b strings.Builder
	for i := 0; i < guestBenchRuns; i++ {
		b.WriteString("/bin/bench\n")
	}
	if w.Setup != "" {
		b.WriteString(w.Setup + " || exit 1\n")
	}
	fmt.Fprintf(&b, "( %s ) &\n", w.Run)
	if w.Ready == "" {
		b.WriteString("echo " + readyMarker + "\n")
	}
	b.WriteString("wait\n")
	return b.String()
}

// capture boots w's guest, captures it for the window and moves the trace
// into o.out.
func capture(ctx context.Context, o options, k *guest.Kernel, w vmtraces.Workload, extra []guest.File, hostNS int64) error {
	dir := filepath.Join(o.work, w.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := extra
	for _, p := range w.Programs {
		fs, err := guest.Program(p, p)
		if err != nil {
			return err
		}
		files = append(files, fs...)
	}
	initrd := filepath.Join(dir, "initrd")
	if err := (guest.Initramfs{Files: files, Script: script(w)}).Write(ctx, initrd); err != nil {
		return err
	}
	o.log.Info("boot", "workload", w.Name, "memory_mib", w.MemoryMiB, "load", scriptmain.LoadAvg())
	vm, capSock, err := scriptguest.StartCapturable(ctx, dir, guest.Config{Kernel: k.Image(), Initrd: initrd, MemoryMiB: w.MemoryMiB, CPUs: w.CPUs})
	if err != nil {
		return err
	}
	defer vm.Stop()
	bootCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var runs []int64
	for len(runs) < guestBenchRuns {
		select {
		case <-vm.Done():
			return fmt.Errorf("the guest ended before its benchmark; console ends: %s", tail(vm.Console(), 10))
		default:
		}
		if err := ctxtime.Sleep(bootCtx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait for the guest's benchmark: %w; console ends: %s", err, tail(vm.Console(), 10))
		}
		if runs, err = benchAll(vm.Console()); err != nil {
			return err
		}
	}
	guestNS := median(runs)
	slowdown := float64(guestNS) / float64(hostNS)
	o.log.Info("guest benchmark", "workload", w.Name, "runs", fmt.Sprint(runs), "median", time.Duration(guestNS), "slowdown", fmt.Sprintf("%.2f", slowdown))
	ready := w.Ready
	if ready == "" {
		ready = readyMarker
	}
	if err := vm.WaitFor(bootCtx, ready); err != nil {
		return err
	}
	// Let the workload's start-up settle: the window is its steady state.
	if err := ctxtime.Sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	if st, ok := vm.ScriptExit(); ok {
		return fmt.Errorf("the guest's workload ended (status %d) before the capture; console ends: %s", st, tail(vm.Console(), 10))
	}
	trace := filepath.Join(dir, "trace.parquet")
	o.log.Info("capture", "workload", w.Name, "window", o.window, "epoch", o.epoch, "load", scriptmain.LoadAvg())
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.bin, "capture", "--qemu-qmp", capSock, "--epoch", o.epoch.String(),
		"--duration", o.window.String(), "--segment", "0", "--guest-slowdown", strconv.FormatFloat(slowdown, 'f', 3, 64), "-o", trace)
	// Ctrl-C reaches the capture too (same process group): it stops and
	// writes its trace; the work directory goes with it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("capture: %v: %s", err, stderr.String())
	}
	if st, ok := vm.ScriptExit(); ok {
		return fmt.Errorf("the guest's workload ended (status %d) during the capture; console ends: %s", st, tail(vm.Console(), 10))
	}
	o.log.Info("captured", "workload", w.Name, "log", scriptmain.LastLine(stderr.String()))
	if err := vm.Stop(); err != nil {
		return err
	}
	return copyFile(trace, filepath.Join(o.out, w.Name+".parquet"))
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(to, b)
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// writeSources generates the compile workload's translation units: 8 files
// of plain C (no headers), each with structs, loops, switches, recursion
// and arithmetic enough to keep gcc -O2's optimisers busy. A fixed seed
// makes them the same every run.
func writeSources(dir string) ([]guest.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []guest.File
	rng := rand.New(rand.NewPCG(13, 1))
	for u := 0; u < 8; u++ {
		var b strings.Builder
		fmt.Fprintf(&b, "/* generated by scripts/vmtraces: translation unit %d */\n", u)
		fmt.Fprintf(&b, "typedef unsigned long u64;\ntypedef struct node%d { u64 key, val; struct node%d *l, *r; int h; } node%d;\n", u, u, u)
		fmt.Fprintf(&b, "static node%d pool%d[4096]; static int used%d;\n", u, u, u)
		fmt.Fprintf(&b, "static int height%d(node%d *n) { return n ? n->h : 0; }\n", u, u)
		fmt.Fprintf(&b, "static node%d *insert%d(node%d *n, u64 k, u64 v) {\n\tif (!n) { node%d *m = &pool%d[used%d++ & 4095]; m->key = k; m->val = v; m->l = m->r = 0; m->h = 1; return m; }\n"+
			"\tif (k < n->key) n->l = insert%d(n->l, k, v); else if (k > n->key) n->r = insert%d(n->r, k, v); else n->val += v;\n"+
			"\tint a = height%d(n->l), c = height%d(n->r); n->h = 1 + (a > c ? a : c); return n;\n}\n", u, u, u, u, u, u, u, u, u, u)
		const funcs = 30
		for f := 0; f < funcs; f++ {
			fmt.Fprintf(&b, "u64 f%d_%d(u64 *a, int n, u64 s) {\n\tu64 acc = s ^ %dUL; node%d *root = 0;\n", u, f, rng.Uint32(), u)
			fmt.Fprintf(&b, "\tfor (int i = 0; i < n; i++) {\n\t\tswitch ((a[i] + i) %% %d) {\n", 5+rng.IntN(6))
			cases := 5 + rng.IntN(6)
			for c := 0; c < cases; c++ {
				ops := []string{"acc += a[i] * %dUL;", "acc ^= (acc << %d) | (a[i] >> 3);", "a[i] = (a[i] * 2654435761UL) %% %dUL + 1;",
					"root = insert" + strconv.Itoa(u) + "(root, a[i] & 1023, %dUL);", "if (acc & %d) acc = ~acc; else acc >>= 1;", "for (int j = 0; j < (int)(a[i] & 7); j++) acc += j * %dUL;"}
				op := fmt.Sprintf(ops[rng.IntN(len(ops))], 1+rng.IntN(61))
				fmt.Fprintf(&b, "\t\tcase %d: %s break;\n", c, op)
			}
			b.WriteString("\t\tdefault: acc += i;\n\t\t}\n\t}\n")
			if f > 0 {
				fmt.Fprintf(&b, "\tif (n > 1 && (acc & 1)) acc += f%d_%d(a + 1, n - 1, acc);\n", u, rng.IntN(f))
			}
			b.WriteString("\twhile (root) { acc += root->val; root = (acc & 1) ? root->l : root->r; }\n\treturn acc;\n}\n")
		}
		fmt.Fprintf(&b, "u64 unit%d(u64 *a, int n) {\n\tu64 s = 0;\n", u)
		for f := 0; f < funcs; f++ {
			fmt.Fprintf(&b, "\ts += f%d_%d(a, n, s);\n", u, f)
		}
		b.WriteString("\treturn s;\n}\n")
		p := filepath.Join(dir, fmt.Sprintf("unit%d.c", u))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		files = append(files, guest.File{Path: fmt.Sprintf("/src/unit%d.c", u), Source: p, Mode: 0o644})
	}
	return files, nil
}
