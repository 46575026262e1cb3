package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

// startQEMU starts a paused QEMU (no guest code runs) with a QMP socket
// and returns the socket's path; the QEMU is killed at cleanup.
func startQEMU(t *testing.T, mem string) (string, *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("needs qemu-system-x86_64 (Debian package qemu-system-x86)")
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(bin, "-S", "-machine", "pc", "-m", mem, "-display", "none", "-monitor", "none", "-serial", "none",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock, cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU's QMP socket %s did not appear", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestQEMUWholeVM(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	sock, cmd := startQEMU(t, "64M")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, blocks, err := QEMU(ctx, sock, nil)
	require.NoError(t, err)
	assert.Equal(t, cmd.Process.Pid, pid, "the socket's peer is the QEMU")
	require.Equal(t, "pc.ram", blocks[0].Name)
	var used uint64
	for _, b := range blocks {
		used += b.Used
		if b.Name == "pc.bios" {
			// The located mapping holds what QEMU loaded there.
			bios, err := os.ReadFile("/usr/share/seabios/bios-256k.bin")
			if err == nil && uint64(len(bios)) == b.Used {
				mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
				require.NoError(t, err)
				got := make([]byte, len(bios))
				_, err = mem.ReadAt(got, int64(b.Host))
				mem.Close()
				require.NoError(t, err)
				assert.Equal(t, bios, got, "pc.bios located at the wrong mapping")
			}
		}
	}

	out := filepath.Join(t.TempDir(), "vm.parquet")
	st, err := Record(ctx, Target{PID: pid}, Options{TrackerOptions: TrackerOptions{Filter: Filter{Ranges: Ranges(blocks)}},
		Epoch: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Output: out})
	require.NoError(t, err)
	assert.Equal(t, int64(used/4096), st.Pages, "the page space is exactly the RAM blocks' used lengths")
	assert.Greater(t, st.InitialZero, 0, "ROM blocks have all-zero pages")
	r, err := tracefmt.Open(out)
	require.NoError(t, err)
	h := r.Header()
	r.Close()
	require.Len(t, h.Regions, len(blocks))
	for i, b := range blocks {
		assert.Equal(t, b.Name, h.Regions[i].RAMBlock, "regions in QEMU's migration order")
		assert.Equal(t, b.Offset, h.Regions[i].RAMOffset)
		assert.Equal(t, int64(b.Used/4096), h.Regions[i].Pages)
	}
	require.NoError(t, cmd.Process.Signal(syscall.Signal(0)), "QEMU runs on after the capture")
}
