package capture

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

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
			w := captureWriter(t, c.launch, 300*time.Millisecond, opts, nil, args...)
			st := w.finish(t)
			require.Equal(t, "0", w.sum, "the writer did not finish")
			require.NoError(t, tracefmt.Validate(out))

			h, epochs, err := tracefmt.ReadAll(out)
			require.NoError(t, err)
			bufPage := w.bufferPage(h)
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

// TestWriteZerosReads checks the content check on this process's own
// memory, through process_vm_readv and through the /proc/PID/mem
// fallback: zero pages found, data pages not, and a page that cannot be
// read (unmapped after the scan, in the middle of a batch) is not zero
// and does not stop the pages after it from being checked.
func TestWriteZerosReads(t *testing.T) {
	ps := os.Getpagesize()
	const n = 3000 // more than one batch of prefixes and of whole pages
	buf, err := unix.Mmap(-1, 0, n*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	start := uint64(uintptr(unsafe.Pointer(&buf[0])))
	x := NewIndex(uint64(ps))
	require.True(t, x.Cover(Mapping{Start: start, End: start + uint64(n*ps), Perms: "rw-p"}))
	want := make([]bool, n)
	for p := range n {
		switch {
		case p%5 == 0:
			want[p] = true // never touched: reads as zeros
		case p%5 == 1:
			buf[(p+1)*ps-1] = 7 // zero prefix, data at the end
		default:
			buf[p*ps] = 1
		}
	}
	// Pages 1500..1509 unmapped after the scan: unreadable.
	require.NoError(t, unix.MunmapPtr(unsafe.Pointer(&buf[1500*ps]), uintptr(10*ps)))
	defer unix.MunmapPtr(unsafe.Pointer(&buf[0]), uintptr(1500*ps))
	defer unix.MunmapPtr(unsafe.Pointer(&buf[1510*ps]), uintptr((n-1510)*ps))
	for p := 1500; p < 1510; p++ {
		want[p] = false
	}
	var pages []int64
	for p := int64(0); p < n; p++ {
		if p%7 != 3 { // gaps: runs and single pages
			pages = append(pages, p)
		}
	}
	for _, fallback := range []bool{false, true} {
		z := newWriteZeros(os.Getpid())
		z.noVM = fallback
		mask, count := z.check(x, pages)
		wantCount := 0
		for k, p := range pages {
			if !assert.Equal(t, want[p], mask[k], "page %d (fallback %v)", p, fallback) {
				break
			}
			if want[p] {
				wantCount++
			}
		}
		assert.Equal(t, wantCount, count)
		z.close()
	}
}
