package capture

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// zeroedPage and refilledPage mirror testdata/writer's ZeroedPage and
// RefilledPage.
func zeroedPage(p int) bool   { return p%3 == 0 }
func refilledPage(p int) bool { return p%9 == 0 }

// TestZeroWrites: a target fills its buffer, sets every third page back
// to zeros with memset, then refills every ninth. With Options.ZeroWrites
// the trace marks zero exactly the memset pages' writes, and each page's
// last row says what it holds at the end: zero for the pages zeroed and
// not refilled, data for every other.
func TestZeroWrites(t *testing.T) {
	cases := []struct {
		name    string
		backend string
		launch  bool
	}{
		{"attach/async", "uffd-wp-async", false},
		{"launch/async", "uffd-wp-async", true},
		{"attach/sync", "uffd-wp-sync", false},
		{"launch/sync", "uffd-wp-sync", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needUffdWP(t, c.backend)
			args := []string{"-mode", "zero", "-pages", "2048", "-gap", "400ms"}
			out := filepath.Join(t.TempDir(), "trace.parquet")
			opts := Options{TrackerOptions: TrackerOptions{Backend: c.backend}, Epoch: 50 * time.Millisecond, Output: out, ZeroWrites: true, Logger: testLogger(t)}
			var w *writerRun
			var wait func() (Stats, error)
			if c.launch {
				w = newWriter(t, append(args, "-settle", "300ms")...)
				wait, _ = recordAsync(context.Background(), Target{Cmd: w.cmd}, opts)
				w.readBuffer(t)
			} else {
				w = newWriter(t, append(args, "-wait")...)
				require.NoError(t, w.cmd.Start())
				w.readBuffer(t)
				var cancel context.CancelFunc
				wait, cancel = recordReady(t, Target{PID: w.cmd.Process.Pid}, opts)
				defer cancel()
				fmt.Fprintln(w.stdin, "go")
			}
			w.readRest(t)
			st, err := wait()
			require.NoError(t, err)
			if !c.launch {
				require.NoError(t, w.cmd.Wait())
			}
			require.Equal(t, "0", w.sum, "the writer did not finish")
			require.NoError(t, tracefmt.Validate(out))

			h, epochs, err := tracefmt.ReadAll(out)
			require.NoError(t, err)
			ps := uint64(h.PageSize)
			bufPage := func(p int64) int {
				for _, r := range h.Regions {
					if p >= r.FirstPage && p < r.FirstPage+r.Pages {
						if r.PID != 0 && r.PID != w.cmd.Process.Pid {
							return -1
						}
						a := r.StartAddr + uint64(p-r.FirstPage)*ps
						if a >= w.base && a < w.base+uint64(w.pages)*ps {
							return int((a - w.base) / ps)
						}
						return -1
					}
				}
				return -1
			}
			zeroRows := map[int]int{} // buffer page -> rows marking it zero
			last := map[int]bool{}    // buffer page -> its last row's flag
			for _, e := range epochs {
				if e.Initial {
					continue
				}
				require.Len(t, e.Zero, len(e.Pages), "a capture with ZeroWrites writes the zero column")
				for i, p := range e.Pages {
					b := bufPage(p)
					if b < 0 {
						continue
					}
					if e.Zero[i] {
						zeroRows[b]++
					}
					last[b] = e.Zero[i]
				}
			}
			var wrongZero, missedZero, wrongEnd []int
			for b := range w.pages {
				if zeroRows[b] > 0 && !zeroedPage(b) {
					wrongZero = append(wrongZero, b)
				}
				if zeroRows[b] == 0 && zeroedPage(b) {
					missedZero = append(missedZero, b)
				}
				if last[b] != (zeroedPage(b) && !refilledPage(b)) {
					wrongEnd = append(wrongEnd, b)
				}
			}
			assert.Empty(t, wrongZero, "pages marked zero that the writer never zeroed")
			assert.Empty(t, missedZero, "zeroed pages never marked zero")
			assert.Empty(t, wrongEnd, "pages whose last row disagrees with their final content")
			assert.GreaterOrEqual(t, st.ZeroWrites, int64(len(zeroRows)))
			assert.Positive(t, st.ZeroWriteChecked)
			t.Logf("%s: %d zero writes of %d checked in %v (%d epochs)", c.name, st.ZeroWrites, st.ZeroWriteChecked, st.ZeroWriteCheck, st.Epochs)
		})
	}
}

// TestZeroWritesOff: without the option the trace has no zero column.
func TestZeroWritesOff(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	out := filepath.Join(t.TempDir(), "trace.parquet")
	w := newWriter(t, "-mode", "zero", "-pages", "64", "-gap", "100ms", "-settle", "100ms")
	wait, _ := recordAsync(context.Background(), Target{Cmd: w.cmd}, Options{TrackerOptions: TrackerOptions{Backend: "uffd-wp-async"}, Epoch: 50 * time.Millisecond, Output: out})
	w.readBuffer(t)
	w.readRest(t)
	st, err := wait()
	require.NoError(t, err)
	assert.Zero(t, st.ZeroWriteChecked)
	r, err := tracefmt.Open(out)
	require.NoError(t, err)
	defer r.Close()
	assert.False(t, r.HasZero())
}
