package capture

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// treeBin compiles testdata/tree/tree.c once per test binary, with the
// tree-exec link its exec'ing child runs through.
func treeBin(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("needs a C compiler (cc) for the process-tree target")
	}
	return treeProgram.get(t, "capture-tree-", func(dir string) (string, error) {
		path := filepath.Join(dir, "tree")
		if out, err := exec.Command("cc", "-O1", "-o", path, "testdata/tree/tree.c").CombinedOutput(); err != nil {
			return "", fmt.Errorf("cc testdata/tree/tree.c: %w\n%s", err, out)
		}
		return path, os.Symlink("tree", path+"-exec")
	})
}

// treeRun is what a tree process printed.
type treeRun struct {
	roles  map[int]int // pid -> role
	bufs   map[string]treeBuf
	phases []phaseSpan         // the parent's
	spans  map[int][]phaseSpan // each role's
	sums   map[int]string      // role -> checksum
	cow    bool                // tree cow: parent and child write halves
}

type treeBuf struct {
	role, pid int
	name      string
	addr      uint64
	pages     int
}

func readTree(t testing.TB, r io.Reader) *treeRun {
	t.Helper()
	tr := &treeRun{roles: map[int]int{}, bufs: map[string]treeBuf{}, sums: map[int]string{}, spans: map[int][]phaseSpan{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		atoi := func(s string) int { n, err := strconv.Atoi(s); require.NoError(t, err, sc.Text()); return n }
		switch f[0] {
		case "proc":
			tr.roles[atoi(f[2])] = atoi(f[1])
		case "buffer":
			a, err := strconv.ParseUint(f[4], 10, 64)
			require.NoError(t, err)
			b := treeBuf{role: atoi(f[1]), pid: atoi(f[2]), name: f[3], addr: a, pages: atoi(f[5])}
			tr.bufs[fmt.Sprintf("%d/%s", b.role, b.name)] = b
		case "phase":
			role := atoi(f[1])
			s, _ := strconv.ParseInt(f[3], 10, 64)
			e, _ := strconv.ParseInt(f[4], 10, 64)
			tr.spans[role] = append(tr.spans[role], phaseSpan{s, e})
			if role == 0 {
				tr.phases = append(tr.phases, phaseSpan{s, e})
			}
		case "done":
			tr.sums[atoi(f[1])] = f[3]
		}
	}
	_, tr.cow = tr.bufs["0/ro"]
	// Forked children write their copy of the parent's private buffer.
	if b, ok := tr.bufs["0/private"]; ok {
		for pid, role := range tr.roles {
			if role == 1 || role == 2 || role == 4 {
				tr.bufs[fmt.Sprintf("%d/private", role)] = treeBuf{role: role, pid: pid, name: "private", addr: b.addr, pages: b.pages}
			}
		}
	}
	return tr
}

// captureTree launches the tree program with args under a capture with
// opts (its Ready is taken) and returns what the tree printed, once all of
// it has exited, with the capture's stats and the launched command.
func captureTree(t *testing.T, opts Options, args ...string) (*treeRun, Stats, *exec.Cmd) {
	t.Helper()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(treeBin(t), args...)
	cmd.Stdout, cmd.Stderr = pw, os.Stderr
	wait, cancel := recordReady(t, Target{Cmd: cmd}, opts)
	t.Cleanup(cancel)
	// The tree's processes hold the only write ends left: readTree ends
	// when the last of them exits.
	pw.Close()
	run := readTree(t, pr)
	st, err := wait()
	require.NoError(t, err)
	return run, st, cmd
}

// treeSums runs the tree uncaptured and fast for the checksums each role
// must print.
func treeSums(t testing.TB, pages, phases string) map[int]string {
	t.Helper()
	out, err := exec.Command(treeBin(t), pages, phases, "20", "0", "50").Output()
	require.NoError(t, err)
	return readTree(t, strings.NewReader(string(out))).sums
}

// treeTruth reports whether the process of role writes page p of buffer
// name in phase k (mirrors tree.c).
func treeTruth(name string, role, p, k int) bool {
	if name == "private" {
		return inPhase(p, 7*k+role)
	}
	return inPhase(p, 100+k)
}

// treeScores scores a trace of the tree per process (private buffers, by
// role) and per shared buffer (by name), and checks that each shared
// buffer takes its size in the page space once.
func treeScores(t testing.TB, path string, run *treeRun, before, slack time.Duration, uncaptured map[string]bool) map[string]score {
	t.Helper()
	h, epochs, err := tracefmt.ReadAll(path)
	require.NoError(t, err)
	require.NotEmpty(t, run.phases)
	ps := uint64(h.PageSize)
	type loc struct {
		key  string
		page int
	}
	where := map[int64]loc{}
	sharedPages := map[string]int{}
	for _, r := range h.Regions {
		for i := int64(0); i < r.Pages; i++ {
			a := r.StartAddr + uint64(i)*ps
			for key, b := range run.bufs {
				if a < b.addr || a >= b.addr+uint64(b.pages)*ps {
					continue
				}
				switch {
				case r.Object != "" && b.name != "private" && b.role == 0:
					where[r.FirstPage+i] = loc{b.name, int((a - b.addr) / ps)}
					sharedPages[b.name]++
				case r.Object == "" && b.name == "private" && r.PID == b.pid:
					if b.role == 3 && r.Comm != "tree-exec" {
						continue // its memory before the exec
					}
					if b.role != 3 && r.Comm == "tree-exec" {
						continue
					}
					where[r.FirstPage+i] = loc{key, int((a - b.addr) / ps)}
				}
			}
		}
	}
	for _, name := range []string{"shanon", "sysv", "memfd"} {
		want := run.bufs["0/"+name].pages
		if uncaptured[name] {
			want = 0
		}
		assert.Equal(t, want, sharedPages[name], "shared buffer %s must take its size once in the page space", name)
	}
	// A private buffer is written when its process says; a shared one
	// from the first process's start to the last one's end of a phase (a
	// loaded machine can run a process's sweep late).
	windows := map[string][]phaseSpan{}
	for key, b := range run.bufs {
		if b.name == "private" {
			windows[key] = run.spans[b.role]
		}
	}
	for _, name := range []string{"shanon", "sysv", "memfd"} {
		ws := append([]phaseSpan(nil), run.phases...)
		for role, sp := range run.spans {
			if role == 3 {
				continue // writes no shared memory
			}
			for k := range sp {
				if k < len(ws) {
					ws[k].start, ws[k].end = min(ws[k].start, sp[k].start), max(ws[k].end, sp[k].end)
				}
			}
		}
		windows[name] = ws
	}
	start := h.StartedAt.UnixNano()
	obs := map[string][]map[int]bool{}
	stray := map[string]int{}
	for _, e := range epochs {
		if e.Initial {
			continue
		}
		wall := start + e.TNS
		for _, p := range e.Pages {
			l, ok := where[p]
			if !ok {
				continue
			}
			k := -1
			for i, ph := range windows[l.key] {
				if wall >= ph.start-before.Nanoseconds() && wall <= ph.end+slack.Nanoseconds() {
					k = i
				}
			}
			switch {
			case k >= 0:
				if obs[l.key] == nil {
					obs[l.key] = make([]map[int]bool, len(run.phases))
				}
				if obs[l.key][k] == nil {
					obs[l.key][k] = map[int]bool{}
				}
				obs[l.key][k][l.page] = true
			case len(windows[l.key]) > 0 && wall > windows[l.key][0].start:
				stray[l.key]++
				if os.Getenv("TREE_DEBUG") != "" {
					rel := []string{}
					for _, ph := range run.phases {
						rel = append(rel, fmt.Sprintf("[%d,%d]", (ph.start-wall)/1e6, (ph.end-wall)/1e6))
					}
					t.Logf("stray %s page %d at %v", l.key, l.page, rel)
				}
			}
		}
	}
	out := map[string]score{}
	for key, b := range run.bufs {
		if b.name != "private" && b.role != 0 || uncaptured[b.name] {
			continue
		}
		name := key
		if b.name != "private" {
			name = b.name
		}
		var s score
		s.stray = stray[name]
		for k := range run.phases {
			if b.role == 4 && k > 1 {
				break // it exited
			}
			var seen map[int]bool
			if obs[name] != nil {
				seen = obs[name][k]
			}
			for p := 0; p < b.pages; p++ {
				if treeTruth(b.name, b.role, p, k) && (!run.cow || (b.role == 0) == (p >= b.pages/2)) {
					s.truth++
					if seen[p] {
						s.hit++
					}
				}
			}
			s.observed += len(seen)
		}
		out[name] = s
	}
	return out
}

// TestTreeRecallPrecision launches a tree of five processes (a child, a
// grandchild, a child that execs, a child that exits after two phases)
// writing private copy-on-write pages and three kinds of shared memory.
func TestTreeRecallPrecision(t *testing.T) {
	for _, backend := range []string{"uffd-wp-async", "uffd-wp-sync"} {
		t.Run(backend, func(t *testing.T) {
			needUffdWP(t, backend)
			const pages, phases = "2048", "3"
			want := treeSums(t, pages, phases)
			out := filepath.Join(t.TempDir(), "trace.parquet")
			opts := Options{TrackerOptions: TrackerOptions{Backend: backend}, Epoch: 50 * time.Millisecond, Output: out,
				SegmentEvery: time.Second}
			run, st, _ := captureTree(t, opts, pages, phases, "400", "1000", "1200")
			assert.Equal(t, "exit", st.Stopped)
			assert.Equal(t, 6, st.Processes, "five processes and one exec")
			assert.Equal(t, want, run.sums, "the captured processes computed a different result")
			require.NoError(t, tracefmt.Validate(out))

			h, _, err := tracefmt.ReadAll(out)
			require.NoError(t, err)
			var execed, exited bool
			for _, r := range h.Regions {
				require.NotZero(t, r.PID, "every region names its process")
				if r.Comm == "tree-exec" {
					execed = true
				}
				if r.PID == findPID(run, 4) && r.ExitNS > 0 {
					// The child that left after phase 1: freed before phase 2 ends.
					wall := h.StartedAt.UnixNano() + r.ExitNS
					assert.Greater(t, wall, run.phases[1].start, "exit time")
					assert.Less(t, wall, run.phases[2].end, "exit time")
					exited = true
				}
				if r.Object != "" {
					assert.True(t, strings.HasPrefix(r.Object, "shmem:"), r.Object)
				}
			}
			assert.True(t, execed, "the exec'd program's memory is in the trace")
			assert.True(t, exited, "the exited child's memory is marked freed")

			// As in TestRecallPrecision: epoch rows can be late by
			// hundreds of milliseconds on a loaded machine; sync rows carry
			// fault times, and the parent stamps a phase's start a moment
			// after its siblings may begin.
			before, slack := time.Duration(0), 600*time.Millisecond
			uncaptured := map[string]bool{}
			if backend == "uffd-wp-sync" {
				// A loaded machine can run a child's first writes
				// well before the parent stamps the phase: the windows
				// may widen up to the 1 s gap between phases.
				before, slack = 250*time.Millisecond, 450*time.Millisecond
				// Synchronous write protection takes anonymous and shmem
				// mappings only; SysV segments have their own vm_ops.
				uncaptured["sysv"] = true
			}
			for name, s := range treeScores(t, out, run, before, slack, uncaptured) {
				t.Logf("%s: %s", name, s)
				assert.GreaterOrEqual(t, s.recall(), 0.99, "%s recall: %s", name, s)
				assert.GreaterOrEqual(t, s.precision(), 0.99, "%s precision: %s", name, s)
			}
		})
	}
}

func findPID(run *treeRun, role int) int {
	for pid, r := range run.roles {
		if r == role {
			return pid
		}
	}
	return -1
}

// TestTreeSigkillCapture kills a capture that follows a whole tree, in the
// middle of a phase: every process of the tree (including those forked and
// exec'd under capture) must finish with the right result, and the
// finished segments must form a valid trace.
func TestTreeSigkillCapture(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	bin := treeBin(t)
	const pages, phases = "2048", "3"
	want := treeSums(t, pages, phases)
	cmd := exec.Command(bin, pages, phases, "400", "300", "300", "wait")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	out := filepath.Join(t.TempDir(), "trace.parquet")
	capt := helperCmd(t, "record", "CAPTURE_PID="+strconv.Itoa(cmd.Process.Pid), "CAPTURE_OUT="+out)
	require.NoError(t, capt.Start())
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(out, "seg-000000.parquet")); return err == nil })
	fmt.Fprint(stdin, "g")
	time.Sleep(500 * time.Millisecond) // past the 300 ms settle and the forks: mid phase 0
	require.NoError(t, capt.Process.Kill())
	capt.Wait()
	run := readTree(t, stdout)
	require.NoError(t, cmd.Wait(), "the tree's parent reports every child's exit status")
	assert.Equal(t, want, run.sums, "every process of the tree must compute the same result after the capture died")
	assert.Len(t, run.sums, 5)
	require.NoError(t, tracefmt.Validate(out), "finished segments must read as a trace")
	h, epochs, err := tracefmt.ReadAll(out)
	require.NoError(t, err)
	pids := map[int]bool{}
	for _, r := range h.Regions {
		pids[r.PID] = true
	}
	t.Logf("%d epochs and %d processes survive in the killed capture's trace", len(epochs), len(pids))
	assert.Greater(t, len(pids), 1, "the forked children were captured before the kill")
}

// cgroup2Dir makes a cgroup v2 directory for one test and removes it after.
func cgroup2Dir(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	mount := ""
	for _, l := range strings.Split(string(b), "\n") {
		// ... MOUNTPOINT ... - FSTYPE SOURCE OPTIONS
		pre, post, ok := strings.Cut(l, " - ")
		if ok && strings.HasPrefix(post, "cgroup2 ") {
			mount = strings.Fields(pre)[4]
			break
		}
	}
	if mount == "" {
		t.Skip("no cgroup v2 file system mounted")
	}
	dir := filepath.Join(mount, fmt.Sprintf("microwiper-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Move anything left back to the root, then remove the group.
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(pid), 0)
			}
		}
		for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}

func joinCgroup(t *testing.T, dir string, pid int) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0))
}

// TestCgroupLateJoiner captures a cgroup holding one writer; a second
// writer joins it mid-capture and must be captured from then on.
func TestCgroupLateJoiner(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	dir := cgroup2Dir(t)
	args := []string{"-pages", "4096", "-threads", "2", "-phases", "3", "-phase", "300ms", "-gap", "700ms", "-wait"}
	// The late joiner's pages present when it joins count as written at
	// the next scan: it waits a few epochs before its first phase.
	a, b := newWriter(t, args...), newWriter(t, append(args, "-settle", "400ms")...)
	require.NoError(t, a.cmd.Start())
	require.NoError(t, b.cmd.Start())
	a.readBuffer(t)
	b.readBuffer(t)
	joinCgroup(t, dir, a.cmd.Process.Pid)
	out := filepath.Join(t.TempDir(), "trace.parquet")
	ready := make(chan struct{})
	wait, cancel := recordAsync(context.Background(), Target{Cgroup: dir},
		Options{Epoch: 50 * time.Millisecond, Output: out, SegmentEvery: time.Second, Ready: func() { close(ready) }})
	defer cancel()
	<-ready
	fmt.Fprintln(a.stdin, "go")
	joinCgroup(t, dir, b.cmd.Process.Pid)
	waitFor(t, func() bool { return tracerOf(b.cmd.Process.Pid) != 0 }) // seized: followed from now on
	fmt.Fprintln(b.stdin, "go")
	a.readRest(t)
	b.readRest(t)
	require.NoError(t, a.cmd.Wait())
	require.NoError(t, b.cmd.Wait())
	cancel()
	st, err := wait()
	require.NoError(t, err)
	assert.Equal(t, "signal", st.Stopped, "a cgroup capture runs until stopped")
	assert.Equal(t, 2, st.Processes)
	require.NoError(t, tracefmt.Validate(out))
	for name, w := range map[string]*writerRun{"first": a, "late joiner": b} {
		sc := scoreTrace(t, out, w, 0, 600*time.Millisecond)
		t.Logf("%s: %s", name, sc)
		assert.GreaterOrEqual(t, sc.recall(), 0.99, "%s recall: %s", name, sc)
		assert.GreaterOrEqual(t, sc.precision(), 0.99, "%s precision: %s", name, sc)
	}
}

// TestTreeNoFollow: with NoFollow the launched process alone is captured,
// as before process trees; its children run uncaptured and unharmed.
func TestTreeNoFollow(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	want := treeSums(t, "512", "2")
	out := filepath.Join(t.TempDir(), "trace.parquet")
	run, st, cmd := captureTree(t, Options{Epoch: 50 * time.Millisecond, Output: out, NoFollow: true}, "512", "2", "100", "100", "300")
	assert.Equal(t, 1, st.Processes)
	assert.Equal(t, want, run.sums, "the uncaptured children computed the same result")
	h, _, err := tracefmt.ReadAll(out)
	require.NoError(t, err)
	for _, r := range h.Regions {
		assert.Equal(t, cmd.Process.Pid, r.PID, "only the launched process's memory: %+v", r)
	}
}

// TestTreeCopyOnWrite launches a parent that fills two private buffers and
// forks: in each phase the child writes pages of the lower half of one,
// the parent pages of its upper half, and nobody writes the other after
// the fork. Each process's writes must be scored in its own regions, and
// the page space must hold each really distinct page once: the buffers'
// pages as the parent had them, plus one new page for each page either
// side wrote after the fork; nothing for the child's unwritten copies.
func TestTreeCopyOnWrite(t *testing.T) {
	for _, backend := range []string{"uffd-wp-async", "uffd-wp-sync"} {
		t.Run(backend, func(t *testing.T) {
			needUffdWP(t, backend)
			bin := treeBin(t)
			const pages, phases = 2048, 3
			args := func(phase, gap, settle int) []string {
				return []string{"cow", strconv.Itoa(pages), strconv.Itoa(phases), strconv.Itoa(phase), strconv.Itoa(gap), strconv.Itoa(settle)}
			}
			fast, err := exec.Command(bin, args(20, 0, 50)...).Output()
			require.NoError(t, err)
			want := readTree(t, strings.NewReader(string(fast))).sums
			out := filepath.Join(t.TempDir(), "trace.parquet")
			opts := Options{TrackerOptions: TrackerOptions{Backend: backend}, Epoch: 50 * time.Millisecond, Output: out,
				SegmentEvery: time.Second}
			run, st, _ := captureTree(t, opts, args(400, 1000, 1200)...)
			require.True(t, run.cow)
			assert.Equal(t, 2, st.Processes)
			assert.Equal(t, want, run.sums, "the captured processes computed a different result")
			require.NoError(t, tracefmt.Validate(out))

			h, _, err := tracefmt.ReadAll(out)
			require.NoError(t, err)
			parent, child := findPID(run, 0), findPID(run, 1)
			ps := uint64(h.PageSize)
			count := map[string]int{} // "pid/buffer" -> indexes
			childPages := 0
			for _, r := range h.Regions {
				if r.PID == child {
					childPages += int(r.Pages)
				}
				for i := int64(0); i < r.Pages; i++ {
					a := r.StartAddr + uint64(i)*ps
					for _, name := range []string{"private", "ro"} {
						b := run.bufs["0/"+name]
						if a >= b.addr && a < b.addr+uint64(b.pages)*ps {
							count[fmt.Sprintf("%d/%s", r.PID, name)]++
						}
					}
				}
			}
			written := map[int]int{} // role -> pages written after the fork
			for p := 0; p < pages; p++ {
				for role := 0; role < 2; role++ {
					for k := 0; k < phases; k++ {
						if treeTruth("private", role, p, k) && (role == 0) == (p >= pages/2) {
							written[role]++
							break
						}
					}
				}
			}
			assert.Equal(t, pages, count[fmt.Sprintf("%d/ro", parent)], "an inherited buffer nobody writes is the parent's pages")
			assert.Zero(t, count[fmt.Sprintf("%d/ro", child)], "an inherited buffer nobody writes takes no page of the child's")
			assert.Equal(t, pages+written[0], count[fmt.Sprintf("%d/private", parent)],
				"the parent's pages: the buffer as it was, and a new page for each page it wrote after the fork")
			assert.Equal(t, written[1], count[fmt.Sprintf("%d/private", child)], "the child's pages: one for each page it wrote")
			// Beyond its buffer, the child writes a few pages of its stack
			// and libc; the rest of its memory is the parent's.
			assert.Less(t, childPages-written[1], 64, "the child's own pages outside the buffer")
			t.Logf("page space %d pages; parent wrote %d, child %d of the buffer after the fork; child regions %d pages",
				h.Pages, written[0], written[1], childPages)

			before, slack := time.Duration(0), 600*time.Millisecond
			if backend == "uffd-wp-sync" {
				// A loaded machine can run a child's first writes
				// well before the parent stamps the phase: the windows
				// may widen up to the 1 s gap between phases.
				before, slack = 250*time.Millisecond, 450*time.Millisecond
			}
			scores := treeScores(t, out, run, before, slack, map[string]bool{"ro": true, "shanon": true, "sysv": true, "memfd": true})
			require.Len(t, scores, 2)
			for name, s := range scores {
				t.Logf("%s: %s", name, s)
				assert.GreaterOrEqual(t, s.recall(), 0.99, "%s recall: %s", name, s)
				assert.GreaterOrEqual(t, s.precision(), 0.99, "%s precision: %s", name, s)
			}
		})
	}
}
