//go:build linux

package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const pollInterval = 50 * time.Millisecond

// Config describes one QEMU TCG guest.
type Config struct {
	// QEMU is the emulator binary; empty means qemu-system-x86_64.
	QEMU string
	// Kernel is the kernel image to boot (Kernel.Image()).
	Kernel string
	// Initrd is the initramfs (Initramfs.Write). Empty boots without one.
	Initrd string
	// Append is added to the kernel command line after the defaults
	// (console=ttyS0 panic=-1 rdinit=/init).
	Append string
	// MemoryMiB is the guest's RAM; 0 means 512.
	MemoryMiB int
	// CPUs is the number of vCPUs; 0 means 1.
	CPUs int
	// TBSizeMiB is TCG's translation-buffer size. QEMU's default is 1 GiB of
	// host memory per guest; 0 here means 128 MiB, plenty for a busybox
	// system and a few Go binaries.
	TBSizeMiB int
	// TCGThread is TCG's threading, "single" or "multi"; empty leaves
	// QEMU's default (multi-threaded TCG on x86 hosts).
	TCGThread string
	// Console is the host file the first serial port (ttyS0, the kernel's
	// console and Script's output) is written to. Required.
	Console string
	// Output, if set, is a host file for a second serial port (ttyS1),
	// raw, for data the guest sends out (results, traces as base64...).
	Output string
	// QMP, if set, is the path of a QMP unix socket QEMU listens on
	// (server, no wait). Use Dial to talk to it; Stop uses it to quit.
	QMP string
	// Incoming, if set, is passed as -incoming (tcp:127.0.0.1:4444, defer,
	// unix:/path): the guest waits for a migration instead of booting.
	Incoming string
	// Args are extra QEMU arguments (-device ..., -netdev ...).
	Args []string
	// Stderr, if set, receives QEMU's own stdout and stderr; the last few
	// KiB are kept for error messages either way.
	Stderr io.Writer
}

func (c Config) args() ([]string, error) {
	if c.Kernel == "" && c.Incoming == "" {
		return nil, errors.New("guest config: no Kernel")
	}
	if c.Console == "" {
		return nil, errors.New("guest config: no Console file")
	}
	mem, cpus, tb := c.MemoryMiB, c.CPUs, c.TBSizeMiB
	if mem == 0 {
		mem = 512
	}
	if cpus == 0 {
		cpus = 1
	}
	if tb == 0 {
		tb = 128
	}
	accel := fmt.Sprintf("tcg,tb-size=%d", tb)
	if c.TCGThread != "" {
		accel += ",thread=" + c.TCGThread
	}
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", "pc", "-accel", accel, "-cpu", "max",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-chardev", "file,id=con,path=" + c.Console, "-serial", "chardev:con",
	}
	if c.Output != "" {
		a = append(a, "-chardev", "file,id=out,path="+c.Output, "-serial", "chardev:out")
	}
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		cmdline := "console=ttyS0 panic=-1 rdinit=/init"
		if c.Append != "" {
			cmdline += " " + c.Append
		}
		a = append(a, "-append", cmdline)
	}
	if c.Initrd != "" {
		a = append(a, "-initrd", c.Initrd)
	}
	if c.QMP != "" {
		a = append(a, "-qmp", "unix:"+c.QMP+",server=on,wait=off")
	}
	if c.Incoming != "" {
		a = append(a, "-incoming", c.Incoming)
	}
	return append(a, c.Args...), nil
}

// VM is a running QEMU process.
type VM struct {
	cfg  Config
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error // Wait's error, valid after done
	tail *tailBuffer

	stopOnce sync.Once
}

// Start launches QEMU. The process runs in its own process group and gets
// SIGKILL if the thread that started it dies (Pdeathsig; the starting
// goroutine keeps its thread locked for the process's whole life, because
// Pdeathsig follows the thread, not the process). Cancelling ctx kills it.
// Call Stop when done, also on failure paths (t.Cleanup(vm.Stop)).
func Start(ctx context.Context, cfg Config) (*VM, error) {
	args, err := cfg.args()
	if err != nil {
		return nil, err
	}
	bin := cfg.QEMU
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if cfg.QMP != "" {
		// A socket left by a killed QEMU would make this one fail to bind.
		if st, err := os.Lstat(cfg.QMP); err == nil && st.Mode()&os.ModeSocket != 0 {
			os.Remove(cfg.QMP)
		}
	}
	v := &VM{cfg: cfg, done: make(chan struct{}), tail: &tailBuffer{max: 8 << 10}}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out io.Writer = v.tail
	if cfg.Stderr != nil {
		out = io.MultiWriter(v.tail, cfg.Stderr)
	}
	cmd.Stdout, cmd.Stderr = out, out
	v.cmd = cmd
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see Start's comment
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		v.err = cmd.Wait()
		close(v.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	v.pid = cmd.Process.Pid
	go func() {
		select {
		case <-ctx.Done():
			v.kill()
		case <-v.done:
		}
	}()
	return v, nil
}

// Pid is QEMU's process id (also its process group id).
func (v *VM) Pid() int { return v.pid }

// Done is closed when QEMU has exited.
func (v *VM) Done() <-chan struct{} { return v.done }

// Wait waits for QEMU to exit by itself (the guest powered off) or ctx to
// end; on ctx's end it stops the guest.
func (v *VM) Wait(ctx context.Context) error {
	select {
	case <-v.done:
		return v.exitErr()
	case <-ctx.Done():
		v.Stop()
		return ctx.Err()
	}
}

func (v *VM) exitErr() error {
	if v.err != nil {
		return fmt.Errorf("qemu: %w: %s", v.err, v.tail.String())
	}
	return nil
}

// Console returns the console output so far, with the serial line's CRs
// removed.
func (v *VM) Console() string { return readLog(v.cfg.Console) }

// Output returns the second serial port's output so far ("" without one).
func (v *VM) Output() string {
	if v.cfg.Output == "" {
		return ""
	}
	return readLog(v.cfg.Output)
}

func readLog(p string) string {
	b, _ := os.ReadFile(p)
	return strings.ReplaceAll(string(b), "\r", "")
}

// WaitFor waits until the console shows marker. It fails early if QEMU
// exits first, or when ctx ends, quoting the console's last lines.
func (v *VM) WaitFor(ctx context.Context, marker string) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if strings.Contains(v.Console(), marker) {
			return nil
		}
		select {
		case <-v.done:
			if strings.Contains(v.Console(), marker) {
				return nil
			}
			return fmt.Errorf("guest exited before printing %q (%v); console ends: %s", marker, v.exitErr(), lastLines([]byte(v.Console()), 10))
		case <-ctx.Done():
			return fmt.Errorf("wait for %q: %w; console ends: %s", marker, ctx.Err(), lastLines([]byte(v.Console()), 10))
		case <-t.C:
		}
	}
}

// ScriptExit returns the exit status of Initramfs.Script, once /init has
// printed it (ok false before).
func (v *VM) ScriptExit() (status int, ok bool) {
	c := v.Console()
	i := strings.LastIndex(c, ExitMarker)
	if i < 0 {
		return 0, false
	}
	rest := c[i+len(ExitMarker):]
	if j := strings.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	} else {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	return n, err == nil
}

// Stop ends the guest and waits for QEMU to exit: QMP quit if there is a
// QMP socket, else SIGTERM to the process group; SIGKILL after 5 s. It is
// safe to call more than once and after QEMU has exited; it returns nil
// unless QEMU could not be reaped.
func (v *VM) Stop() error {
	v.stopOnce.Do(func() {
		select {
		case <-v.done:
			return
		default:
		}
		quit := false
		if v.cfg.QMP != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if q, err := Dial(ctx, v.cfg.QMP); err == nil {
				_, err = q.Execute(ctx, "quit", nil)
				q.Close()
				quit = err == nil || errors.Is(err, io.EOF)
			}
			cancel()
		}
		if !quit {
			syscall.Kill(-v.pid, syscall.SIGTERM)
		}
		select {
		case <-v.done:
		case <-time.After(5 * time.Second):
			v.kill()
		}
	})
	select {
	case <-v.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("qemu pid %d did not exit after SIGKILL", v.pid)
	}
}

// kill sends SIGKILL to QEMU's process group (only QEMU is in it).
func (v *VM) kill() {
	syscall.Kill(-v.pid, syscall.SIGKILL)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
