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
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

var (
	treeOnce sync.Once
	treePath string
	treeErr  error
)

// treeBin compiles testdata/tree/tree.c once per test binary, with the
// tree-exec link its exec'ing child runs through.
func treeBin(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("needs a C compiler (cc) for the process-tree target")
	}
	treeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "capture-tree-")
		if err != nil {
			treeErr = err
			return
		}
		treePath = filepath.Join(dir, "tree")
		if out, err := exec.Command("cc", "-O1", "-o", treePath, "testdata/tree/tree.c").CombinedOutput(); err != nil {
			treeErr = fmt.Errorf("cc testdata/tree/tree.c: %v\n%s", err, out)
			return
		}
		treeErr = os.Symlink("tree", treePath+"-exec")
	})
	require.NoError(t, treeErr)
	return treePath
}

// treeRun is what a tree process printed.
type treeRun struct {
	roles  map[int]int // pid -> role
	bufs   map[string]treeBuf
	phases []phaseSpan
	sums   map[int]string // role -> checksum
}

type treeBuf struct {
	role, pid int
	name      string
	addr      uint64
	pages     int
}

func readTree(t testing.TB, r io.Reader) *treeRun {
	t.Helper()
	tr := &treeRun{roles: map[int]int{}, bufs: map[string]treeBuf{}, sums: map[int]string{}}
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
			s, _ := strconv.ParseInt(f[2], 10, 64)
			e, _ := strconv.ParseInt(f[3], 10, 64)
			tr.phases = append(tr.phases, phaseSpan{s, e})
		case "done":
			tr.sums[atoi(f[1])] = f[3]
		}
	}
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
	start := h.StartedAt.UnixNano()
	obs := map[string][]map[int]bool{}
	stray := map[string]int{}
	for _, e := range epochs {
		if e.Initial {
			continue
		}
		wall := start + e.TNS
		k := -1
		for i, ph := range run.phases {
			if wall >= ph.start-before.Nanoseconds() && wall <= ph.end+slack.Nanoseconds() {
				k = i
			}
		}
		for _, p := range e.Pages {
			l, ok := where[p]
			if !ok {
				continue
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
			case wall > run.phases[0].start:
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
				if treeTruth(b.name, b.role, p, k) {
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
			bin := treeBin(t)
			const pages, phases = "2048", "3"
			want := treeSums(t, pages, phases)
			out := filepath.Join(t.TempDir(), "trace.parquet")
			pr, pw, err := os.Pipe()
			require.NoError(t, err)
			cmd := exec.Command(bin, pages, phases, "400", "700", "800")
			cmd.Stdout, cmd.Stderr = pw, os.Stderr
			ready := make(chan struct{})
			opts := Options{TrackerOptions: TrackerOptions{Backend: backend}, Epoch: 50 * time.Millisecond, Output: out,
				SegmentEvery: time.Second, Ready: func() { close(ready) }}
			wait, _ := recordAsync(context.Background(), Target{Cmd: cmd}, opts)
			<-ready
			pw.Close()
			run := readTree(t, pr)
			st, err := wait()
			require.NoError(t, err)
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
					assert.Greater(t, wall, run.phases[1].end, "exit time")
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
				before, slack = 20*time.Millisecond, 100*time.Millisecond
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
