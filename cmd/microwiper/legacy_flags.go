package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/microwiper/microwiper/cmd/microwiper/internal/units"
)

// The older flag form, which reads values back by name: only capture.go
// (command.setFlags/run) still uses it. When capture moves to typed
// options (withOptions, flags.go), this file goes.

// traceFlags reads back the flags a subcommand declared, by name.
type traceFlags struct{ fs *flag.FlagSet }

func (f traceFlags) get(name string) any {
	fl := f.fs.Lookup(name)
	if fl == nil {
		panic("trace: flag -" + name + " not declared") // a programming error, caught by tests
	}
	return fl.Value.(flag.Getter).Get()
}

func (f traceFlags) str(name string) string             { return f.get(name).(string) }
func (f traceFlags) int64(name string) int64            { return f.get(name).(int64) }
func (f traceFlags) duration(name string) time.Duration { return f.get(name).(time.Duration) }

// durationFlag is a time.Duration flag parsed by units.Duration, so that a
// bad value gets the same message everywhere.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }
func (d *durationFlag) Get() any       { return time.Duration(*d) }
func (d *durationFlag) Set(s string) error {
	v, err := units.Duration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

// declareDuration adds a duration flag with a default.
func declareDuration(fs *flag.FlagSet, name string, def time.Duration, usage string) {
	d := durationFlag(def)
	fs.Var(&d, name, usage)
}

// bytesFlag is a byte size flag (4GiB) parsed by units.Bytes.
type bytesFlag int64

func (b *bytesFlag) String() string {
	if *b == 0 {
		return ""
	}
	return fmt.Sprint(int64(*b))
}
func (b *bytesFlag) Get() any { return int64(*b) }
func (b *bytesFlag) Set(s string) error {
	v, err := units.Bytes(s)
	if err != nil {
		return err
	}
	*b = bytesFlag(v)
	return nil
}
