package capture

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// TestRecallPrecision checks that a capture sees the pages a program wrote,
// phase by phase, from several threads, and nothing else, in every mode.
func TestRecallPrecision(t *testing.T) {
	cases := []struct {
		name    string
		backend string
		launch  bool
		huge    bool
	}{
		{"attach/async", "uffd-wp-async", false, false},
		{"launch/async", "uffd-wp-async", true, false},
		{"attach/sync", "uffd-wp-sync", false, false},
		{"launch/sync", "uffd-wp-sync", true, false},
		{"attach/async/hugepage", "uffd-wp-async", false, true},
		{"attach/sync/hugepage", "uffd-wp-sync", false, true},
		{"attach/softdirty", "soft-dirty", false, false},
		{"launch/softdirty", "soft-dirty", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needUffdWP(t, c.backend)
			phases := "4"
			if testing.Short() {
				phases = "2"
			}
			args := []string{"-pages", "8192", "-threads", "4", "-phases", phases, "-phase", "400ms", "-gap", "700ms"}
			if c.huge {
				args = append(args, "-huge")
			}
			want := expectedSum(t, args...)
			epoch := 50 * time.Millisecond
			out := filepath.Join(t.TempDir(), "trace.parquet")
			opts := Options{TrackerOptions: TrackerOptions{Backend: c.backend}, Epoch: epoch, Output: out, SegmentEvery: time.Second}
			var beforeAttach func(*writerRun)
			if c.huge {
				beforeAttach = func(w *writerRun) { logHugePages(t, w.cmd.Process.Pid, w.base) }
			}
			w := captureWriter(t, c.launch, 500*time.Millisecond, opts, beforeAttach, args...)
			st := w.finish(t)
			assert.Equal(t, want, w.sum, "the captured program computed a different result")
			assert.Equal(t, "exit", st.Stopped, "the target's exit should end the capture")
			require.NoError(t, tracefmt.Validate(out))
			// An epoch's rows carry the time of its scan, which a loaded
			// machine can delay by hundreds of milliseconds; phases are
			// 700 ms apart, so a slack of 600 ms still tells them apart.
			slack := 600 * time.Millisecond
			before := time.Duration(0)
			if c.backend == "uffd-wp-sync" {
				// Sync rows carry the fault time itself: a late handler
				// delays the write too, so a small slack suffices.
				slack, before = 50*time.Millisecond, 20*time.Millisecond
			}
			sc := scoreTrace(t, out, w.writerRun, before, slack)
			t.Logf("%s: %s (%d epochs, %d rows)", c.name, sc, st.Epochs, st.Rows)
			assert.GreaterOrEqual(t, sc.recall(), 0.99, "recall: %s", sc)
			assert.GreaterOrEqual(t, sc.precision(), 0.99, "precision: %s", sc)
		})
	}
}

// logHugePages reports how much of the buffer is backed by huge pages, so
// that the huge-page cases say whether they tested what they claim.
func logHugePages(t *testing.T, pid int, base uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Logf("smaps: %v", err)
		return
	}
	var in bool
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			a := strings.SplitN(f[0], "-", 2)
			s, _ := strconv.ParseUint(a[0], 16, 64)
			e, _ := strconv.ParseUint(a[1], 16, 64)
			in = base >= s && base < e
		}
		if in && strings.HasPrefix(l, "AnonHugePages:") {
			t.Logf("buffer mapping %s", strings.Join(strings.Fields(l), " "))
			if strings.Fields(l)[1] == "0" {
				t.Log("no huge pages: THP disabled? the case still runs at 4 KiB")
			}
		}
	}
}
