//go:build linux

// Command zerocost measures what capture --zero-writes costs: the capture
// process's CPU time with and without the check, and the check's own time
// per epoch, on the shipped process traces' workloads (sqlite launched,
// redis attached under redis-benchmark, as scripts/capture-shipped.sh
// captures them) and on a whole 4 GiB TCG guest captured over QMP whose
// workload rewrites a hot set (scripts/groundtruth/workload). Runs with
// and without the check alternate; each line gives the load average.
//
//	go run ./scripts/zerocost -bin ./microwiper [-reps 3] [-only sqlite,redis,vm]
//
// Every process it starts (QEMU included) dies with it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/microwiper/microwiper/internal/guest"
	"github.com/microwiper/microwiper/internal/scriptguest"
	"github.com/microwiper/microwiper/internal/scriptmain"
)

func main() {
	scriptmain.Main("zerocost", run)
}

type options struct {
	bin  string
	reps int
	only string
	hot  string
	dur  time.Duration
}

func run(ctx context.Context, args []string) error {
	var o options
	flag.StringVar(&o.bin, "bin", "./microwiper", "the microwiper binary")
	flag.IntVar(&o.reps, "reps", 3, "captures with and without the check, per workload")
	flag.StringVar(&o.only, "only", "sqlite,redis,vm", "workloads to measure")
	flag.StringVar(&o.hot, "hot", "256,2048", "vm: hot-set sizes in MiB, one guest each")
	flag.DurationVar(&o.dur, "duration", 15*time.Second, "length of each capture")
	if err := flag.CommandLine.Parse(args); err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	work, err := os.MkdirTemp("", "zerocost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Printf("| workload | --zero-writes | capture CPU (user+sys) | wall | epochs | pages checked | zero | check total | check per epoch | load avg (1 min) before/after |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range strings.Split(o.only, ",") {
		switch w {
		case "sqlite":
			err = each(o, w, func(zero bool) (*result, error) { return sqlite(ctx, o, work, zero) })
		case "redis":
			err = each(o, w, func(zero bool) (*result, error) { return redis(ctx, o, work, zero) })
		case "vm":
			for _, hot := range strings.Split(o.hot, ",") {
				if err = vm(ctx, o, work, hot); err != nil {
					break
				}
			}
		default:
			err = fmt.Errorf("unknown workload %q", w)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// result is one capture's cost.
type result struct {
	cpu, wall              time.Duration
	epochs                 string
	checked, zero          string
	checkTotal, checkEpoch string
	load0, load1           string
}

// each runs reps captures with and without the check, alternating.
func each(o options, name string, f func(zero bool) (*result, error)) error {
	for r := 0; r < o.reps; r++ {
		for _, zero := range []bool{false, true} {
			res, err := f(zero)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			res.print(name, zero)
		}
	}
	return nil
}

func (r *result) print(name string, zero bool) {
	on := "off"
	if zero {
		on = "on"
	}
	fmt.Printf("| %s | %s | %.2f s | %.1f s | %s | %s | %s | %s | %s | %s / %s |\n", name, on, r.cpu.Seconds(), r.wall.Seconds(),
		r.epochs, r.checked, r.zero, r.checkTotal, r.checkEpoch, r.load0, r.load1)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

var (
	epochsRE = regexp.MustCompile(`(\d+) epochs`)
	zeroRE   = regexp.MustCompile(`zero writes: (\d+) of (\d+) written pages .*checked in ([^,]+), ([^ ]+) an epoch`)
)

// capture runs the capture command to its end and measures it. The CPU
// time is the capture process's own: wait4's rusage counts the children it
// reaped too (a launched workload), so a capture that launches one is
// sampled from /proc/PID/stat instead, every 20 ms until it exits.
func capture(ctx context.Context, o options, zero bool, args ...string) (*result, error) {
	launches := false
	for _, a := range args {
		launches = launches || a == "--"
	}
	if zero {
		args = append([]string{"--zero-writes"}, args...)
	}
	cmd := exec.CommandContext(ctx, o.bin, append([]string{"capture"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	r := &result{load0: loadavg(), epochs: "?", checked: "-", zero: "-", checkTotal: "-", checkEpoch: "-"}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var sampled time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if d, ok := ownCPU(cmd.Process.Pid); ok {
				sampled = d
			} else {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err := cmd.Wait()
	<-done
	if err != nil {
		return nil, fmt.Errorf("capture %v: %w\n%s", args, err, stderr.String())
	}
	r.wall = time.Since(t0)
	r.load1 = loadavg()
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if launches {
		r.cpu = sampled
	}
	if m := epochsRE.FindStringSubmatch(stderr.String()); m != nil {
		r.epochs = m[1]
	}
	if m := zeroRE.FindStringSubmatch(stderr.String()); m != nil {
		r.zero, r.checked, r.checkTotal, r.checkEpoch = m[1], m[2], m[3], m[4]
	}
	return r, nil
}

// ownCPU reads a process's own user and system time (not its children's)
// from /proc/PID/stat; false once it is gone or reaped.
func ownCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	// Fields after the command name (in parentheses, may hold spaces).
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 || f[0] == "Z" {
		return 0, false
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	// USER_HZ is 100 on Linux.
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

// sqlite is scripts/capture-shipped.sh's sqlite capture: an in-memory
// database taking 400k inserts and index updates.
func sqlite(ctx context.Context, o options, work string, zero bool) (*result, error) {
	sql := filepath.Join(work, "load.sql")
	if err := os.WriteFile(sql, []byte(`PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
CREATE INDEX tk ON t(k);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 400000)
INSERT INTO t SELECT i, abs(random()) % 100000, hex(randomblob(64)) FROM n;
UPDATE t SET v = hex(randomblob(64)) WHERE k % 7 = 0;
SELECT count(*) FROM t;
`), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(work, fmt.Sprintf("sqlite-%d.parquet", time.Now().UnixNano()))
	defer os.Remove(out)
	return capture(ctx, o, zero, "--duration", o.dur.String(), "--epoch", "100ms", "--segment", "0", "-o", out,
		"--", "sqlite3", ":memory:", ".read "+sql)
}

// redis is scripts/capture-shipped.sh's redis capture: a server attached
// by PID under redis-benchmark's mixed load, saving in the background
// every 2 s (forked children followed).
func redis(ctx context.Context, o options, work string, zero bool) (*result, error) {
	const port = "7398"
	dir, err := os.MkdirTemp(work, "redis-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv := exec.CommandContext(ctx, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "2 1", "--dir", dir, "--appendonly", "no")
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	for i := 0; i < 50; i++ {
		if exec.Command("redis-cli", "-p", port, "ping").Run() == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := filepath.Join(dir, "redis.parquet")
	bench := exec.CommandContext(ctx, "redis-benchmark", "-p", port, "-q", "-n", "2000000", "-c", "20", "-d", "512", "-r", "200000", "-t", "set,get,lpush,incr,hset")
	bench.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	go func() {
		time.Sleep(500 * time.Millisecond)
		if bench.Start() == nil {
			bench.Wait()
		}
	}()
	defer func() {
		if bench.Process != nil {
			bench.Process.Kill()
		}
	}()
	return capture(ctx, o, zero, "--pid", fmt.Sprint(srv.Process.Pid), "--duration", o.dur.String(), "--epoch", "100ms", "--segment", "0", "-o", out)
}

// vm boots a 4 GiB TCG guest whose workload rewrites one word in each page
// of a hot set of hot MiB every 100 ms, and captures it over QMP with and
// without the check, alternating.
func vm(ctx context.Context, o options, work, hot string) error {
	k, err := scriptguest.Kernel(ctx)
	if err != nil {
		return err
	}
	wl := filepath.Join(work, "workload")
	if err := scriptguest.BuildWorkload(ctx, wl); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(work, "vm-")
	if err != nil {
		return err
	}
	initrd := filepath.Join(dir, "initrd")
	rd := guest.Initramfs{Files: []guest.File{{Path: "/bin/workload", Source: wl}},
		Script: "exec /bin/workload -mode hotset -period 100ms -hot " + hot}
	if err := rd.Write(ctx, initrd); err != nil {
		return err
	}
	g, capSock, err := scriptguest.StartCapturable(ctx, dir, guest.Config{Kernel: k.Image(), Initrd: initrd, MemoryMiB: 4096})
	if err != nil {
		return err
	}
	defer g.Stop()
	bootCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	err = g.WaitFor(bootCtx, "ready")
	cancel()
	if err != nil {
		return fmt.Errorf("boot the 4 GiB guest: %w\n%s", err, g.Console())
	}
	time.Sleep(2 * time.Second)
	name := "vm 4GiB hot " + hot + "MiB"
	return each(o, name, func(zero bool) (*result, error) {
		out := filepath.Join(dir, fmt.Sprintf("vm-%d.parquet", time.Now().UnixNano()))
		defer os.Remove(out)
		return capture(ctx, o, zero, "--qemu-qmp", capSock, "--duration", o.dur.String(), "--epoch", "100ms", "--segment", "0", "-o", out)
	})
}
