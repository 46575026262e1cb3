//go:build !linux

package netns

// supported is false: Available refuses, so Create never reaches the
// namespace calls below.
const supported = false

// Do fails: there are no network namespaces to enter.
func Do(ns string, fn func() error) error { return ErrUnsupported }

// processGone is never asked: List finds no namespaces here.
func processGone(pid int) bool { return false }
