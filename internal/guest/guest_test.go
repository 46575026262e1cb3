//go:build linux

package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readCpio parses a newc archive: name -> (mode, data).
func readCpio(t *testing.T, b []byte) map[string]cpioEntry {
	t.Helper()
	out := map[string]cpioEntry{}
	for off := 0; ; {
		require.GreaterOrEqual(t, len(b)-off, 110, "truncated header at %d", off)
		h := string(b[off : off+110])
		require.Equal(t, "070701", h[:6])
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			require.NoError(t, err)
			return uint32(v)
		}
		mode, size, rmaj, rmin, nameSize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(nameSize)-1])
		off = align4(off + 110 + int(nameSize))
		data := b[off : off+int(size)]
		off = align4(off + int(size))
		if name == "TRAILER!!!" {
			require.Equal(t, len(b), off, "bytes after the trailer")
			return out
		}
		out[name] = cpioEntry{name: name, mode: mode, data: data, rmaj: rmaj, rmin: rmin}
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

func TestCpio(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "prog")
	require.NoError(t, os.WriteFile(src, []byte("hello, odd length"), 0o755))
	var buf bytes.Buffer
	require.NoError(t, writeCpio(&buf, []File{
		{Path: "/bin/prog", Source: src},
		{Path: "/etc/a/b/conf", Data: []byte("x=1\n"), Mode: 0o644},
		{Path: "/empty", Mode: 0o600},
	}))
	got := readCpio(t, buf.Bytes())
	assert.Equal(t, "hello, odd length", string(got["bin/prog"].data))
	assert.Equal(t, uint32(cpioReg|0o755), got["bin/prog"].mode)
	assert.Equal(t, "x=1\n", string(got["etc/a/b/conf"].data))
	assert.Equal(t, uint32(cpioReg|0o644), got["etc/a/b/conf"].mode)
	assert.Equal(t, uint32(cpioReg|0o600), got["empty"].mode)
	for _, d := range []string{"bin", "etc", "etc/a", "etc/a/b", "dev"} {
		assert.Equal(t, uint32(cpioDir|0o755), got[d].mode, d)
	}
	con := got["dev/console"]
	assert.Equal(t, uint32(cpioChr|0o600), con.mode)
	assert.Equal(t, [2]uint32{5, 1}, [2]uint32{con.rmaj, con.rmin})

	// Same input, same bytes.
	var again bytes.Buffer
	require.NoError(t, writeCpio(&again, []File{
		{Path: "/empty", Mode: 0o600},
		{Path: "/etc/a/b/conf", Data: []byte("x=1\n"), Mode: 0o644},
		{Path: "/bin/prog", Source: src},
	}))
	assert.Equal(t, buf.Bytes(), again.Bytes())
}

func TestCpioErrors(t *testing.T) {
	for name, f := range map[string]File{
		"relative":   {Path: "bin/x"},
		"root":       {Path: "/"},
		"no source":  {Path: "/x", Source: "/nonexistent/file"},
		"dir source": {Path: "/x", Source: "/"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, writeCpio(io.Discard, []File{f}))
		})
	}
}

func TestInitramfsWriteIsWhole(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "initrd")
	err := Initramfs{Busybox: "/nonexistent/busybox"}.Write(context.Background(), out)
	require.Error(t, err)
	ents, _ := os.ReadDir(dir)
	assert.Empty(t, ents, "a failed write leaves nothing behind")
	err = Initramfs{Modules: []string{"virtio_blk"}}.Write(context.Background(), out)
	assert.ErrorContains(t, err, "without a kernel")
}

func TestModules(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{Release: "9.9.9-test", Dir: dir}
	md := k.ModulesDir()
	require.NoError(t, os.MkdirAll(md, 0o755))
	dep := "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz\n" +
		"kernel/net/9p/9pnet.ko.xz:\n" +
		"kernel/fs/netfs/netfs.ko.xz:\n" +
		"kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko\n" +
		"kernel/drivers/virtio/virtio_ring.ko:\n"
	require.NoError(t, os.WriteFile(filepath.Join(md, "modules.dep"), []byte(dep), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(md, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci.ko\n"), 0o644))

	names := func(ms []Module) []string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name)
		}
		return s
	}
	ms, err := k.Modules("9p", "9pnet-virtio", "virtio_pci")
	require.NoError(t, err)
	assert.Equal(t, []string{"netfs", "9pnet", "9p", "virtio_ring", "9pnet_virtio"}, names(ms))
	assert.Equal(t, filepath.Join(md, "kernel/fs/9p/9p.ko.xz"), ms[2].Path)

	_, err = k.Modules("nosuch")
	assert.ErrorContains(t, err, `no module "nosuch"`)
}

func TestImageDependency(t *testing.T) {
	for deps, want := range map[string]string{
		"linux-image-6.1.0-57-amd64 (= 6.1.192-3)":                         "linux-image-6.1.0-57-amd64",
		"kmod, linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1)":    "linux-image-6.12.117+deb12-amd64",
		"initramfs-tools | linux-initramfs-tool":                           "",
		"foo | linux-image-6.1.0-57-cloud-amd64-unsigned (>= 1), bar (<2)": "linux-image-6.1.0-57-cloud-amd64-unsigned",
	} {
		assert.Equal(t, want, imageDependency(deps), deps)
	}
}

func TestConfigArgs(t *testing.T) {
	_, err := Config{Console: "c"}.args()
	assert.ErrorContains(t, err, "no Kernel")
	_, err = Config{Kernel: "k"}.args()
	assert.ErrorContains(t, err, "no Console")
	a, err := Config{Kernel: "k", Console: "c", MemoryMiB: 2048, CPUs: 2, QMP: "/q", Incoming: "defer", Args: []string{"-x"}}.args()
	require.NoError(t, err)
	s := fmt.Sprint(a)
	for _, want := range []string{"tcg,tb-size=128", "-m 2048", "-smp 2", "-qmp unix:/q,server=on,wait=off", "-incoming defer", "-no-reboot"} {
		assert.Contains(t, s, want)
	}
	assert.Equal(t, "-x", a[len(a)-1])
}

// guestKernel fetches the kernel for the boot tests, which need network on
// first use and a minute of CPU: they run when MICROWIPER_GUEST_TESTS=1
// (make test-kernels sets it).
func guestKernel(t *testing.T) *Kernel {
	t.Helper()
	if os.Getenv("MICROWIPER_GUEST_TESTS") == "" {
		t.Skip("boots a QEMU guest: set MICROWIPER_GUEST_TESTS=1 (make test-kernels does)")
	}
	cache, err := DefaultCacheDir()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := FetchKernel(ctx, cache, "linux-image-amd64")
	require.NoError(t, err)
	return k
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestBoot(t *testing.T) {
	k := guestKernel(t)
	soft, err := k.Config("CONFIG_MEM_SOFT_DIRTY")
	require.NoError(t, err)
	assert.Equal(t, "y", soft)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rd := Initramfs{Kernel: k, Modules: []string{"virtio_blk"},
		Files: []File{{Path: "/etc/greeting", Data: []byte("hi from the host"), Mode: 0o644}},
		Script: `echo "ready $(uname -r)"
cat /etc/greeting > /dev/ttyS1
lsmod | grep -q virtio_blk || exit 3
exit 7`}
	require.NoError(t, rd.Write(ctx, filepath.Join(dir, "initrd")))
	vm, err := Start(ctx, Config{Kernel: k.Image(), Initrd: filepath.Join(dir, "initrd"), MemoryMiB: 256,
		Console: filepath.Join(dir, "console"), Output: filepath.Join(dir, "out"), QMP: filepath.Join(dir, "qmp")})
	require.NoError(t, err)
	t.Cleanup(func() { vm.Stop() })
	require.NoError(t, vm.WaitFor(ctx, "ready "+k.Release))
	require.NoError(t, vm.Wait(ctx))
	st, ok := vm.ScriptExit()
	require.True(t, ok, vm.Console())
	assert.Equal(t, 7, st, vm.Console())
	assert.Equal(t, "hi from the host", vm.Output())
	assert.False(t, alive(vm.Pid()))
}

func TestStopAndCancel(t *testing.T) {
	k := guestKernel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rd := filepath.Join(dir, "initrd")
	require.NoError(t, Initramfs{Script: "echo up; sleep 1000"}.Write(ctx, rd))
	start := func(name string, ctx context.Context) *VM {
		vm, err := Start(ctx, Config{Kernel: k.Image(), Initrd: rd, MemoryMiB: 128,
			Console: filepath.Join(dir, name+".log"), QMP: filepath.Join(dir, name+".qmp")})
		require.NoError(t, err)
		t.Cleanup(func() { vm.Stop() })
		require.NoError(t, vm.WaitFor(ctx, "up"))
		return vm
	}

	// Stop through QMP: query-status first, to show the socket works.
	vm := start("a", ctx)
	q, err := Dial(ctx, filepath.Join(dir, "a.qmp"))
	require.NoError(t, err)
	ret, err := q.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
	var status struct{ Status string }
	require.NoError(t, json.Unmarshal(ret, &status))
	assert.Equal(t, "running", status.Status)
	_, err = q.Execute(ctx, "no-such-command", nil)
	var qe *QMPError
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, "CommandNotFound", qe.Class)
	q.Close()
	require.NoError(t, vm.Stop())
	assert.False(t, alive(vm.Pid()))
	require.NoError(t, vm.Stop(), "a second Stop is harmless")

	// Cancelling Start's context kills QEMU.
	cctx, ccancel := context.WithCancel(ctx)
	vm = start("b", cctx)
	ccancel()
	select {
	case <-vm.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("qemu still running 10 s after its context was cancelled")
	}
	assert.False(t, alive(vm.Pid()))
}

// TestMain lets TestOwnerKilled re-run this binary as a QEMU owner.
func TestMain(m *testing.M) {
	if os.Getenv("GUEST_TEST_OWNER") != "" {
		ownQEMU()
		return
	}
	os.Exit(m.Run())
}

// ownQEMU starts a guest, prints QEMU's pid and blocks until killed.
func ownQEMU() {
	ctx := context.Background()
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv("GUEST_TEST_OWNER")), &cfg); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	vm, err := Start(ctx, cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(vm.Pid())
	select {} // until the test kills us

}

// A test binary killed with SIGKILL (no cleanup runs at all) takes its
// QEMU with it.
func TestOwnerKilled(t *testing.T) {
	k := guestKernel(t)
	dir := t.TempDir()
	rd := filepath.Join(dir, "initrd")
	require.NoError(t, Initramfs{Script: "echo up; sleep 1000"}.Write(context.Background(), rd))
	cfg, _ := json.Marshal(Config{Kernel: k.Image(), Initrd: rd, MemoryMiB: 128, Console: filepath.Join(dir, "console")})
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "GUEST_TEST_OWNER="+string(cfg))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var pid int
	_, err = fmt.Fscan(stdout, &pid)
	require.NoError(t, err)
	require.True(t, alive(pid))
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) }) // only if the test fails
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.False(t, alive(pid), "qemu pid %d outlived its killed owner", pid)
}

// lddPaths runs ldd on prog and returns the libraries it resolved, and the
// loader, by path.
func lddPaths(t *testing.T, prog string) map[string]bool {
	t.Helper()
	out, err := exec.Command("ldd", prog).Output()
	require.NoError(t, err, "ldd %s", prog)
	paths := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			paths[f[2]] = true
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			paths[f[0]] = true
		}
	}
	return paths
}

// Program finds what ldd finds, from the ELF headers alone.
func TestProgramMatchesLdd(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd to compare with")
	}
	tested := 0
	for _, prog := range []string{"/bin/ls", "/usr/bin/stress-ng", "/usr/bin/redis-benchmark", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "/usr/bin/qemu-system-x86_64"} {
		if _, err := os.Stat(prog); err != nil {
			continue
		}
		tested++
		t.Run(filepath.Base(prog), func(t *testing.T) {
			files, err := Program(prog, "/usr/bin/x")
			require.NoError(t, err)
			require.Equal(t, "/usr/bin/x", files[0].Path)
			require.Equal(t, prog, files[0].Source)
			got := map[string]bool{}
			for _, f := range files[1:] {
				assert.Equal(t, f.Path, f.Source, "libraries keep their host path")
				got[f.Path] = true
			}
			assert.Equal(t, lddPaths(t, prog), got)
		})
	}
	require.NotZero(t, tested, "no dynamically linked program found to test with")
}

func TestProgramStaticAndErrors(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err == nil {
		files, err := Program("/bin/busybox", "/bin/busybox")
		require.NoError(t, err)
		assert.Equal(t, []File{{Path: "/bin/busybox", Source: "/bin/busybox"}}, files, "a static program needs nothing else")
	}
	_, err := Program("/bin/ls", "bin/ls")
	assert.ErrorContains(t, err, "not absolute")
	notELF := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755))
	_, err = Program(notELF, "/bin/script")
	assert.ErrorContains(t, err, notELF)
	// With no library directories, the first DT_NEEDED cannot be found.
	_, err = program("/bin/ls", "/bin/ls", nil)
	assert.ErrorContains(t, err, "not found")
}
