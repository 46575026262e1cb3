// Package vmtraces describes the whole-VM workload traces `make traces`
// captures into traces/vm/ (scripts/vmtraces) and writes their README
// table from the traces themselves, so that a test can check the shipped
// README against the shipped traces.
package vmtraces

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/microwiper/microwiper/tracefmt/profile"
)

// Workload is one guest and the real program it runs.
type Workload struct {
	// Name is the trace's file name without .parquet (redis-1gib).
	Name string
	// About says what the workload is, for the README.
	About string
	// MemoryMiB and CPUs size the guest.
	MemoryMiB, CPUs int
	// Programs are host programs put into the guest at the same path,
	// with their shared libraries (guest.Program).
	Programs []string
	// Setup is shell run in the guest before the workload starts (a
	// server started, its data loaded); it must return.
	Setup string
	// Run is the workload's command, started in the background after
	// Setup; the capture window runs while it does.
	Run string
	// Ready is the console line Run prints once it is running; empty means
	// the workload counts as running as soon as Run is started.
	Ready string
}

// CaptureSeconds is each trace's capture window, and EpochMS its epoch,
// that of the ground-truth and process traces. The largest trace (stress,
// a million rows in 15 s) took 60 KB at 100 ms in a calibration run: size
// does not constrain the epoch here; the README lists every size.
const (
	CaptureSeconds = 45
	EpochMS        = 100
)

// Workloads are the traces `make traces` captures, in README order.
var Workloads = []Workload{
	{
		Name: "idle-512mib", About: "idle guest: the kernel's own background writes only",
		MemoryMiB: 512, CPUs: 1,
		Run: "sleep 100000",
	},
	{
		Name: "redis-1gib", About: "Debian's redis-server (7.0) under its own redis-benchmark, both in the guest over a unix socket: " +
			"SET and GET of 512-byte values on 100,000 random keys, 4 clients, closed loop (as fast as the guest serves them), " +
			"after a load of 100,000 SETs on the same key space (about 63,000 distinct keys)",
		MemoryMiB: 1024, CPUs: 1,
		Programs: []string{"/usr/bin/redis-server", "/usr/bin/redis-benchmark"},
		Setup: "redis-server --port 0 --unixsocket /tmp/redis.sock --save '' --appendonly no --daemonize yes --logfile /tmp/redis.log\n" +
			"while [ ! -S /tmp/redis.sock ]; do sleep 0.2; done\n" +
			"redis-benchmark -s /tmp/redis.sock -t set -n 100000 -r 100000 -d 512 -c 4 -P 16 -q > /dev/null",
		Run: "redis-benchmark -s /tmp/redis.sock -t set,get -n 1000000000 -r 100000 -d 512 -c 4 -l -q > /dev/null",
	},
	{
		Name: "sqlite-1gib", About: "pgbench's TPC-B-like transaction (update an account, a teller and a branch, read the account, insert a history row) " +
			"on an SQLite database at scale 3 (300,000 accounts, 39 MB, WAL journal) in the guest's tmpfs, one client, back to back: " +
			"scripts/vmtraces/tpcb, a static C program built against Debian's libsqlite3.a",
		MemoryMiB: 1024, CPUs: 1,
		Run:   "tpcb /tmp/pgbench.db 3",
		Ready: "tpcb: database ready",
	},
	{
		Name: "compile-2gib", About: "Debian's gcc 12 (driver, cc1, as) compiling 8 generated C translation units (about 600 lines each of structs, loops, switches and recursion; no headers) " +
			"with -O2 -c, one after another, in a loop",
		MemoryMiB: 2048, CPUs: 1,
		Programs: []string{"/usr/bin/gcc", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "/usr/bin/as"},
		Setup:    "mkdir -p /tmp/obj",
		Run:      "n=0; while :; do for f in /src/*.c; do gcc -O2 -c -o /tmp/obj/$(basename $f .c).o $f || exit 1; done; n=$((n+1)); echo \"compile: $n passes\"; done",
	},
	{
		Name: "stress-1gib", About: "Debian's stress-ng (0.15) vm stressor: one worker cycling through its memory methods over a 256 MiB mapping it keeps",
		MemoryMiB: 1024, CPUs: 1,
		Programs: []string{"/usr/bin/stress-ng"},
		Run:      "stress-ng --vm 1 --vm-bytes 256M --vm-keep --timeout 0 --quiet",
	},
}

// Row is what the README says of one trace, measured from it.
type Row struct {
	Workload Workload
	// Bytes is the trace file's size.
	Bytes int64
	// Kernel is the guest's kernel release, MemoryMiB and CPUs the
	// guest's size, all read from the QEMU command line in the trace's
	// workload metadata.
	Kernel          string
	MemoryMiB, CPUs int
	// DurationNS is the time of the last epoch, EpochNS the epoch.
	DurationNS, EpochNS int64
	// TracedBytes is the memory the trace covers (every RAM block QEMU
	// migrates, so a little more than the guest's RAM).
	TracedBytes int64
	Rows        int64
	// Dirtyings counts page dirtyings (rows outside the initial image);
	// EverWritten distinct pages written.
	Dirtyings, EverWritten int64
	PageSize               int64
	// Slowdown is the guest_slowdown metadata, 0 if absent.
	Slowdown float64
}

var (
	kernelRe = regexp.MustCompile(`vmlinuz-(\S+)`)
	memRe    = regexp.MustCompile(`(?:^|\s)-m (\d+)`)
	smpRe    = regexp.MustCompile(`(?:^|\s)-smp (\d+)`)
)

// Measure reads the trace of w in dir.
func Measure(dir string, w Workload) (Row, error) {
	path := filepath.Join(dir, w.Name+".parquet")
	st, err := os.Stat(path)
	if err != nil {
		return Row{}, fmt.Errorf("trace of %s: %w (run make traces)", w.Name, err)
	}
	p, err := profile.Measure(path, profile.Options{WorkingSet: true, WindowNS: 1e9})
	if err != nil {
		return Row{}, err
	}
	h := p.Header
	r := Row{Workload: w, Bytes: st.Size(), DurationNS: p.LastTNS, EpochNS: h.EpochNS, TracedBytes: h.MemoryBytes(),
		Rows: p.Rows, Dirtyings: p.Dirtyings, EverWritten: p.EverWritten, PageSize: h.PageSize, Slowdown: h.GuestSlowdown}
	if m := kernelRe.FindStringSubmatch(h.Workload); m != nil {
		r.Kernel = m[1]
	}
	if m := memRe.FindStringSubmatch(h.Workload); m != nil {
		r.MemoryMiB, _ = strconv.Atoi(m[1])
	}
	r.CPUs = 1
	if m := smpRe.FindStringSubmatch(h.Workload); m != nil {
		r.CPUs, _ = strconv.Atoi(m[1])
	}
	return r, nil
}

// README returns traces/vm/README.md for the traces of ws in dir.
func README(dir string, ws []Workload) (string, error) {
	var rows []Row
	for _, w := range ws {
		r, err := Measure(dir, w)
		if err != nil {
			return "", err
		}
		rows = append(rows, r)
	}
	var b strings.Builder
	b.WriteString(`# Whole-VM traces

Two sets of page-write traces of QEMU TCG guests, both captured with
` + "`microwiper capture --qemu-qmp`" + ` (every RAM block QEMU migrates, at 4 KiB,
never the TCG buffer).

## Workload traces (` + "`make traces`" + `)

Each guest boots Debian's linux-image-amd64 with an initramfs of
busybox-static, the workload's programs with their shared libraries, and
the fixed CPU benchmark scripts/vmtraces/bench. The guest runs the benchmark,
then the workload's setup, then the workload; once it runs, the capture
records the whole VM for the window below. ` + "`make traces`" + ` (scripts/vmtraces)
recaptures every trace and rewrites this file; a test checks that the table
matches the shipped traces.

*Slowdown* is the guest's own: the CPU time of a fixed benchmark
(integer work, random memory writes, page faults on fresh memory and
system calls) in the guest, the median of three runs just before the
workload starts, over its CPU time on the host, the best of three runs of
the same static binary just before the guest boots. The ratio is stored in
the trace as guest_slowdown. TCG runs the guest that many times slower than
the hardware, so the workload dirties memory that many times more slowly
per second of trace than it would on hardware; ` + "`replay --speed guest`" + `
replays it at hardware speed. The ratio includes what the host's other jobs
took from the guest's vCPU thread at the time (the two cores were shared
with other work), and the host is itself a virtual machine, whose page
faults and system calls cost more than bare metal's: against bare hardware
the slowdown would be larger.

| trace | size | guest | duration | epoch | memory | rows | mean dirty rate | writable working set | slowdown |
|---|---|---|---|---|---|---|---|---|---|
`)
	for _, r := range rows {
		secs := float64(r.DurationNS) / 1e9
		rate := 0.0
		if secs > 0 {
			rate = float64(r.Dirtyings) / secs
		}
		slow := "—"
		if r.Slowdown > 0 {
			slow = fmt.Sprintf("%.1f×", r.Slowdown)
		}
		fmt.Fprintf(&b, "| %s.parquet | %.2f MB | %s, %d MiB, %d vCPU | %.1f s | %d ms | %.1f MiB | %d | %.0f pages/s (%.2f MB/s) | %d pages (%.1f MiB) | %s |\n",
			r.Workload.Name, float64(r.Bytes)/1e6, r.Kernel, r.MemoryMiB, r.CPUs, secs, r.EpochNS/1e6,
			float64(r.TracedBytes)/(1<<20), r.Rows, rate, rate*float64(r.PageSize)/1e6,
			r.EverWritten, float64(r.EverWritten*r.PageSize)/(1<<20), slow)
	}
	b.WriteString(`
*memory* is the traced page space (the guest's RAM plus QEMU's ROM and
firmware blocks); *rows* counts the initial image and the writes; the
dirty rate is page dirtyings (one per page and epoch) over the duration;
the writable working set is the number of distinct pages written.

### What each guest runs
`)
	for _, r := range rows {
		w := r.Workload
		fmt.Fprintf(&b, "\n**%s**: %s.\n\n```sh\n", w.Name, w.About)
		if w.Setup != "" {
			fmt.Fprintf(&b, "%s\n", w.Setup)
		}
		fmt.Fprintf(&b, "%s\n```\n", w.Run)
	}
	b.WriteString(`
## Ground-truth traces (` + "`make groundtruth`" + `)

` + "`{idle,hotset,kv,stream-ac,stream-noac}-rep{1,2,3}.parquet`" + ` with QEMU's own
figures in ` + "`NAME.qemu.json`" + `: 256 MiB guests running the static
scripts/groundtruth/workload for about 10 s each, captured just before and
during real QEMU live migrations. GROUNDTRUTH.md sets our replays beside
QEMU's figures, and a test holds them there.
`)
	return b.String(), nil
}
