//go:build linux

package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel is a Debian kernel package unpacked in the cache.
type Kernel struct {
	// Package is the name it was asked for (possibly a meta-package such as
	// linux-image-amd64).
	Package string `json:"package"`
	// ImagePackage is the package that holds the image
	// (linux-image-<release>).
	ImagePackage string `json:"image_package"`
	// Version is ImagePackage's Debian version (6.1.192-3).
	Version string `json:"version"`
	// Release is the kernel's uname -r (6.1.0-57-amd64).
	Release string `json:"release"`
	// Dir is the unpacked package's root.
	Dir string `json:"dir"`
}

// Image is the path of the bootable kernel image (vmlinuz).
func (k *Kernel) Image() string { return filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Release) }

// ConfigFile is the path of the kernel's build configuration.
func (k *Kernel) ConfigFile() string { return filepath.Join(k.Dir, "boot", "config-"+k.Release) }

// ModulesDir is /lib/modules/<release> inside the unpacked package.
func (k *Kernel) ModulesDir() string { return filepath.Join(k.Dir, "lib", "modules", k.Release) }

// Config returns the value of one build option (CONFIG_MEM_SOFT_DIRTY ->
// "y", "m", or "" when unset).
func (k *Kernel) Config(option string) (string, error) {
	f, err := os.Open(k.ConfigFile())
	if err != nil {
		return "", fmt.Errorf("kernel %s config: %w", k.Release, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), option+"="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", sc.Err()
}

// DefaultCacheDir is $MICROWIPER_GUEST_CACHE, else
// $XDG_CACHE_HOME/microwiper/guest (~/.cache/microwiper/guest).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("MICROWIPER_GUEST_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("guest cache dir: %w (set MICROWIPER_GUEST_CACHE)", err)
	}
	return filepath.Join(d, "microwiper", "guest"), nil
}

var pkgName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// FetchKernel returns the Debian kernel package pkg unpacked under
// cacheDir, downloading it with apt-get the first time (a cache hit needs
// no network). A meta-package (linux-image-amd64, linux-image-6.12-amd64)
// is followed to the image package it depends on. Modules get a
// modules.dep (Debian generates it at install time, not in the package).
// Concurrent callers sharing cacheDir, in this or other processes,
// serialise on a lock file.
func FetchKernel(ctx context.Context, cacheDir, pkg string) (*Kernel, error) {
	if !pkgName.MatchString(pkg) {
		return nil, fmt.Errorf("kernel package %q: not a Debian package name", pkg)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	return fetchLocked(ctx, cacheDir, pkg, 0)
}

func fetchLocked(ctx context.Context, cacheDir, pkg string, depth int) (*Kernel, error) {
	if depth > 3 {
		return nil, fmt.Errorf("kernel package %s: meta-packages nest too deep", pkg)
	}
	meta := filepath.Join(cacheDir, pkg+".json")
	if b, err := os.ReadFile(meta); err == nil {
		var k Kernel
		if err := json.Unmarshal(b, &k); err == nil {
			if _, err := os.Stat(k.Image()); err == nil {
				return &k, nil
			}
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := run(ctx, tmp, "apt-get", "download", "-q", pkg); err != nil {
		return nil, fmt.Errorf("download kernel package %s (is it in `apt-cache search linux-image`? run apt-get update): %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("download kernel package %s: want one .deb, got %d", pkg, len(debs))
	}
	deb := debs[0]
	ver, err := output(ctx, "dpkg-deb", "-f", deb, "Version")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", deb, err)
	}
	root := filepath.Join(tmp, "root")
	if err := run(ctx, tmp, "dpkg-deb", "-x", deb, root); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", deb, err)
	}
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	var k *Kernel
	if len(images) == 0 {
		// A meta-package: follow its linux-image dependency.
		deps, err := output(ctx, "dpkg-deb", "-f", deb, "Depends")
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", deb, err)
		}
		dep := imageDependency(deps)
		if dep == "" {
			return nil, fmt.Errorf("kernel package %s: no kernel image and no linux-image dependency (Depends: %s)", pkg, deps)
		}
		if k, err = fetchLocked(ctx, cacheDir, dep, depth+1); err != nil {
			return nil, err
		}
		k2 := *k
		k2.Package = pkg
		k = &k2
	} else {
		release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
		// depmod writes modules.dep into the unpacked tree.
		if _, err := os.Stat(filepath.Join(root, "lib", "modules", release)); err == nil {
			if err := run(ctx, tmp, "depmod", "-b", root, release); err != nil {
				return nil, fmt.Errorf("depmod for %s (install kmod): %w", release, err)
			}
		}
		dir := filepath.Join(cacheDir, pkg+"_"+ver)
		os.RemoveAll(dir) // a leftover of an interrupted fetch has no .json pointing at it
		if err := os.Rename(root, dir); err != nil {
			return nil, fmt.Errorf("kernel cache: %w", err)
		}
		k = &Kernel{Package: pkg, ImagePackage: pkg, Version: ver, Release: release, Dir: dir}
	}
	b, _ := json.MarshalIndent(k, "", "  ")
	if err := writeAtomic(meta, b, 0o644); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	return k, nil
}

// imageDependency picks the linux-image package out of a Depends field.
func imageDependency(deps string) string {
	for _, alt := range strings.Split(deps, ",") {
		for _, d := range strings.Split(alt, "|") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), " ")
			if strings.HasPrefix(name, "linux-image-") {
				return name
			}
		}
	}
	return ""
}

// Module is one loadable kernel module file.
type Module struct {
	// Name is the module's name with underscores (virtio_blk).
	Name string
	// Path is the file in the unpacked package (.ko, .ko.xz or .ko.zst).
	Path string
}

// Modules resolves module names to the files to load, dependencies first,
// each once. Names built into the kernel resolve to nothing. Dashes and
// underscores are the same, as for modprobe.
func (k *Kernel) Modules(names ...string) ([]Module, error) {
	dir := k.ModulesDir()
	deps, err := readModulesDep(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel %s modules: %w", k.Release, err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	byName := map[string]string{}
	for p := range deps {
		byName[moduleName(p)] = p
	}
	var out []Module
	seen := map[string]bool{}
	var visit func(p string, stack int) error
	visit = func(p string, stack int) error {
		if seen[p] {
			return nil
		}
		if stack > 64 {
			return fmt.Errorf("module %s: dependency cycle", p)
		}
		// modules.dep lists the deepest dependency last; load it first.
		ds := deps[p]
		for i := len(ds) - 1; i >= 0; i-- {
			if err := visit(ds[i], stack+1); err != nil {
				return err
			}
		}
		seen[p] = true
		out = append(out, Module{Name: moduleName(p), Path: filepath.Join(dir, p)})
		return nil
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		p, ok := byName[n]
		if !ok {
			if builtin[n] {
				continue
			}
			return nil, fmt.Errorf("kernel %s: no module %q (neither built in nor in modules.dep)", k.Release, n)
		}
		if err := visit(p, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readModulesDep(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		mod, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		deps[strings.TrimSpace(mod)] = strings.Fields(rest)
	}
	return deps, nil
}

// moduleName turns kernel/fs/9p/9p.ko.xz into 9p.
func moduleName(path string) string {
	n := filepath.Base(path)
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

// lockFile takes an exclusive flock, polling so ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("kernel cache lock %s: %w", path, err)
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			f.Close()
			return nil, fmt.Errorf("kernel cache lock %s: %w", path, err)
		}
	}
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(out, 5))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// writeAtomic writes a file whole or not at all.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
