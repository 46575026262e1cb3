package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Every file a command writes appears whole or not at all, and no command
// removes or replaces what it did not create. checkOutput runs before any
// work; outFile does the writing.

// checkOutput refuses an output path that would destroy data or cannot be
// written whole: a directory, the same file as an input (by inode, so a
// link or another spelling is caught too), or, when regular is set, an
// existing file that is not a regular one (a device, a FIFO).
func checkOutput(out string, regular bool, ins ...string) error {
	st, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Dir(out)); err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	if st.IsDir() {
		return fmt.Errorf("output %s is a directory: name a file to write", out)
	}
	if regular && !st.Mode().IsRegular() {
		return fmt.Errorf("output %s is not a regular file (%v): name a file to write", out, st.Mode().Type())
	}
	for _, in := range ins {
		if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
			return fmt.Errorf("output %s is the input %s: writing it would destroy the input; name another file", out, in)
		}
	}
	return nil
}

// outFile is an output written whole or not at all. A regular file (or a
// new one) is written to a temporary file in the target's directory and
// renamed over the target by Commit; anything else (a device, a FIFO, a
// pipe) is written in place and never removed.
type outFile struct {
	path string
	f    *os.File
	temp bool
	stop func() bool
}

// createOutput opens path for writing. Opening a FIFO waits for a reader,
// and writing to one waits for it to read: both give up when ctx ends.
func createOutput(ctx context.Context, path string) (*outFile, error) {
	o := &outFile{path: path}
	st, err := os.Stat(path)
	if err == nil && !st.Mode().IsRegular() {
		type opened struct {
			f   *os.File
			err error
		}
		ch := make(chan opened, 1)
		go func() {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			ch <- opened{f, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				return nil, fmt.Errorf("open %s: %w", path, r.err)
			}
			o.f = r.f
		case <-ctx.Done():
			go func() { // a reader may still come: do not leak its file
				if r := <-ch; r.f != nil {
					r.f.Close()
				}
			}()
			return nil, fmt.Errorf("open %s: no reader came: %w", path, ctx.Err())
		}
	} else {
		dir, base := filepath.Split(path)
		if dir == "" {
			dir = "."
		}
		f, err := os.CreateTemp(dir, "."+base+".*.tmp")
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		if err := f.Chmod(0o644); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		o.f, o.temp = f, true
	}
	// A write blocked on a pipe nobody reads ends when the file closes.
	o.stop = context.AfterFunc(ctx, func() { o.f.Close() })
	return o, nil
}

func (o *outFile) Write(p []byte) (int, error) { return o.f.Write(p) }

// Commit finishes the output: synced and renamed over the target.
func (o *outFile) Commit() error {
	o.stop()
	if !o.temp {
		if err := o.f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", o.path, err)
		}
		return nil
	}
	for _, step := range []func() error{o.f.Sync, o.f.Close} {
		if err := step(); err != nil {
			os.Remove(o.f.Name())
			return fmt.Errorf("write %s: %w", o.path, err)
		}
	}
	if err := os.Rename(o.f.Name(), o.path); err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}

// Abort drops the output: the temporary file goes, the target stays as it
// was.
func (o *outFile) Abort() {
	o.stop()
	o.f.Close()
	if o.temp {
		os.Remove(o.f.Name())
	}
}
