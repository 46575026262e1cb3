package capture

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	sock, cmd, err := startQMPServer(t, bin, nil, "-S", "-machine", "pc", "-m", mem, "-display", "none", "-monitor", "none", "-serial", "none")
	if err != nil {
		t.Fatal(err)
	}
	return sock, cmd
}

// startQMPServer starts QEMU bin with args and a QMP socket, its stderr to
// stderr (nil: discarded), kills it at cleanup, and returns the socket's
// path once the socket is there; an error when QEMU did not create it
// within 20 s.
func startQMPServer(t *testing.T, bin string, stderr io.Writer, args ...string) (string, *exec.Cmd, error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(bin, append(args, "-qmp", "unix:"+sock+",server=on,wait=off")...)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock, cmd, nil
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			return "", nil, fmt.Errorf("QEMU's QMP socket %s did not appear", sock)
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
		Epoch: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Output: out, ZeroWrites: true})
	require.NoError(t, err)
	assert.Equal(t, int64(used/4096), st.Pages, "the page space is exactly the RAM blocks' used lengths")
	assert.Greater(t, st.InitialZero, 0, "ROM blocks have all-zero pages")
	t.Logf("zero writes: %d of %d written pages", st.ZeroWrites, st.ZeroWriteChecked)
	r, err := tracefmt.Open(out)
	require.NoError(t, err)
	h := r.Header()
	assert.True(t, r.HasZero(), "a whole-VM capture with ZeroWrites has the zero column")
	r.Close()
	require.Len(t, h.Regions, len(blocks))
	for i, b := range blocks {
		assert.Equal(t, b.Name, h.Regions[i].RAMBlock, "regions in QEMU's migration order")
		assert.Equal(t, b.Offset, h.Regions[i].RAMOffset)
		assert.Equal(t, int64(b.Used/4096), h.Regions[i].Pages)
	}
	require.NoError(t, cmd.Process.Signal(syscall.Signal(0)), "QEMU runs on after the capture")
}

// TestQEMUKVMWrites checks that capture sees the writes of a guest run by
// KVM: they reach memory through KVM's own page tables, not through QEMU
// code, and still fault on the write-protected host mapping. The guest is
// the firmware alone (no kernel): SeaBIOS writes guest RAM as it boots.
func TestQEMUKVMWrites(t *testing.T) {
	needUffdWP(t, "uffd-wp-async")
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("needs qemu-system-x86_64 (Debian package qemu-system-x86)")
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	f.Close()
	// -cpu host fails on this kind of nested host (QEMU cannot set MSR
	// 0x10a); qemu64 runs.
	var stderr strings.Builder
	sock, _, err := startQMPServer(t, bin, &stderr, "-accel", "kvm", "-cpu", "qemu64", "-machine", "pc", "-m", "64M", "-nodefaults",
		"-display", "none", "-monitor", "none", "-serial", "none")
	if err != nil {
		t.Skipf("QEMU with -accel kvm did not start: %s", stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pid, blocks, err := QEMU(ctx, sock, nil)
	if err != nil && strings.Contains(stderr.String(), "kvm") {
		t.Skipf("QEMU with -accel kvm failed: %s", stderr.String())
	}
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "kvm.parquet")
	_, err = Record(ctx, Target{PID: pid}, Options{TrackerOptions: TrackerOptions{Filter: Filter{Ranges: Ranges(blocks)}},
		Epoch: 100 * time.Millisecond, Duration: 3 * time.Second, Output: out})
	require.NoError(t, err)
	h, eps, err := tracefmt.ReadAll(out)
	require.NoError(t, err)
	ramPages := h.Regions[0].Pages
	written := 0
	for _, e := range eps {
		if e.TNS == 0 {
			continue
		}
		for _, p := range e.Pages {
			if p < ramPages {
				written++
			}
		}
	}
	t.Logf("KVM guest (firmware): %d page writes to pc.ram seen in 3 s", written)
	assert.Positive(t, written, "no write of the KVM guest to pc.ram was seen in 3 s")
}
