//go:build linux

package scriptguest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/microwiper/microwiper/internal/guest"
)

// Kernel fetches (or finds in guest.DefaultCacheDir) the Debian kernel the
// scripts' guests boot, linux-image-amd64.
func Kernel(ctx context.Context) (*guest.Kernel, error) {
	cache, err := guest.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	return guest.FetchKernel(ctx, cache, "linux-image-amd64")
}

// BuildWorkload builds scripts/groundtruth/workload as a static
// linux/amd64 binary at out: a guest's initramfs has no C library. It runs
// go from the repository's root, where the scripts run.
func BuildWorkload(ctx context.Context, out string) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./scripts/groundtruth/workload")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the guest workload: %w\n%s", err, b)
	}
	return nil
}

// StartCapturable starts cfg with its console ("console") and QMP socket
// ("ctl.qmp") in dir, and a second QMP socket there for the capture, whose
// path it returns: QEMU serves one client per socket, and VM.Stop uses the
// first.
func StartCapturable(ctx context.Context, dir string, cfg guest.Config) (vm *guest.VM, captureQMP string, err error) {
	captureQMP = filepath.Join(dir, "cap.qmp")
	cfg.Console = filepath.Join(dir, "console")
	cfg.QMP = filepath.Join(dir, "ctl.qmp")
	cfg.Args = append(cfg.Args, "-qmp", "unix:"+captureQMP+",server=on,wait=off")
	vm, err = guest.Start(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	return vm, captureQMP, nil
}
