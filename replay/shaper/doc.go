// Package shaper limits a byte stream to a rate in user space: a token
// bucket that a sender consults before each write. It is the socket
// engine's default link shaping (kernel tbf is used where the netns link
// can apply it).
//
// The bucket is kept as a theoretical arrival time (GCRA): every write
// moves it on by the write's cost at the configured rate, and a writer
// sleeps only when it runs further ahead than the burst allows. Timer
// overshoot therefore never accumulates: a late wake-up shortens the next
// wait, so the long-run rate equals the configured rate.
package shaper
