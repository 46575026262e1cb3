// Package socket is the real-time, real-bytes migration engine and its
// destination.
//
// The engine is a replay.Machine: replay.Drive runs its rounds, as it runs
// the simulator's. The source keeps a real memory buffer (page size ×
// pages, outside the Go heap). A player goroutine plays the trace's
// dirtying events (replay's time model, through the shared replay.Log)
// into it in real time: each write bumps the page's version,
// rewrites its content as a function of (page, version) (all zeros for a
// write the trace marks as leaving the page zero, which zero-page
// detection then sends as a header) and marks the dirty log. The sender asks the policy exactly as the simulator does (at
// each round start, and before each batch), copies the pages it picks
// under the memory lock and streams them over TCP in wire.Batch frames;
// each round ends with a RoundEnd/RoundAck exchange in which the receiver
// confirms it verified and wrote every page of the round. That exchange is
// one real round trip of the link (tens of microseconds on loopback and
// veth) and keeps the receiver caught up; the modelled RTT is not slept
// between live rounds, which are pipelined as in the simulator. At stop-and-copy
// the player is paused and the rest is sent; the measured downtime runs
// from the pause to the receipt of the final round's acknowledgement (plus
// an emulated RTT where the link cannot delay, plus the resume overhead).
// Finally the receiver returns every page's version and CRC-32C and the
// sender compares them with its own memory: any difference is a lost
// update and fails the run, listing the pages.
//
// Links (LinkConfig.Kind): loopback runs an in-process Receiver on
// 127.0.0.1 behind a userspace token bucket; netns runs it inside a
// namespace pair (replay/netns) with kernel tbf shaping; remote connects to
// `microwiper serve`. On a kernel-shaped link the kernel's queues let the
// sender run ahead of the wire, so before each batch and before the pause
// the engine waits until everything written has been delivered (SIOCOUTQ
// reaches 0): the policy then sees the moment the simulator would show it.
//
// Choices the simulator fixes and this engine follows: a round the policy
// stops in the middle has no RoundEnd of its own (the final round's
// acknowledgement covers its pages); pages_dirtied counts distinct pages
// dirtied from a round's start to the next round's start.
//
// The Receiver trusts no peer: a sender authenticates by challenge-response
// (replay/wire) before it gets any memory, failed attempts are
// rate-limited, connections and pending handshakes are capped, the whole
// handshake has a deadline, and every byte a session holds (memory image,
// 8 bytes a page of versions, frame and stream buffers) is counted against
// MaxMemory before it is allocated and freed when the connection closes.
// Accept errors (out of descriptors) back off and never stop the receiver.
//
// Every wait on the peer is bounded by the timeout (--timeout): a killed
// receiver or a stalled link ends the run with an error saying which, and
// a cancelled context interrupts every blocked read and write at once.
package socket
