// Package replay migrates a trace under a policy: the in-memory trace, the
// time model (a trace's rows as dirtying events in migration time), the
// dirty log (Log), the one round driver both engines share (Drive, over
// an engine's Machine), the link model and the deterministic virtual-time
// engine Sim. Engines return a results.Result; package results writes it.
//
// # One round driver
//
// Drive is the round algorithm, written once: read and clear the log,
// ask the policy for a plan, send it in batches with a peek and a
// BeforeBatch before each, force the final round past the run bound, pause,
// send the rest. An engine is a Machine: its clock (Now), its pacing
// (StartRound, Send), its round trips (EndRound, Final) and a lock the
// driver holds while it touches the Log, because the socket engine's
// player applies writes concurrently. Sim's Machine is virtual time
// advanced by an exact pacer; the socket engine's is real time and a TCP
// link. The driver checks ctx before every round and batch, and the
// oracle every 256 event groups, so an interrupt stops a huge run promptly.
//
// # Time model (docs/DESIGN.md)
//
// Trace time runs at Speed times migration time from StartNS, slowed by the
// policy's throttle, and stops at the pause. A row (t, p) is read as
// --dirty says:
//   - continuous: p is being written throughout (t-E, t]. Its epoch begins
//     at t-E+1 (a beginEpoch group: p is written and becomes hot) and ends
//     at t+1 (an endEpoch group: written once more, no longer hot). The Log
//     keeps hot pages in the dirty log across reads, so a send of p inside
//     its epoch leaves it dirty, Xen's peek sees it and a pause inside it
//     puts p in the final set. A page written in every epoch is never clean
//     at the pause. The oracle reads it the same way: a hot page is unclean
//     at any T inside its epoch, and its release is the epoch's end.
//   - once: dirtied once, at t-E + SplitMix64(p XOR t) mod E (optimistic:
//     a round between two such instants sees p clean).
//   - end, exact: dirtied at t (end is optimistic for epoch traces; exact
//     is the truth for uffd-wp-sync traces, whose t is the write time).
//
// Writes before StartNS happened before the migration: they only mark pages
// as holding data (and, under continuous, an epoch in progress at the start
// is hot). Past the last epoch the trace loops with a period equal to the
// last epoch's time, or goes idle.
//
// Choices docs/DESIGN.md leaves open, fixed here:
//   - An event at migration time m is applied before a page whose send
//     starts at m; a page's content is captured when its send starts.
//   - Page k of a round starts at round start + floor(bits before it × 1e9
//     / rate). Live rounds are pipelined: the next starts when the last
//     page of this one is sent, with no RTT. The final round sends every
//     pending page in page order at the link rate with no peek; downtime =
//     its transfer time + one RTT + resume overhead. DefaultRTTNS and
//     DefaultResumeOverheadNS come from measurement (see link.go).
//   - pages_dirtied of a round counts distinct pages dirtied from its start
//     to the next round's start; pages being written at a read count again
//     in the next round. Throughput is the round's bytes over its duration.
//   - slowdown is the trace time lost to throttling over speed × the time
//     until the pause.
//   - A policy that has not stopped by Config.MaxNS (default ten times the
//     time to send memory once, at least a minute) or Config.MaxRounds
//     (10000) is stopped by the driver: the final round runs and the
//     Result says ForcedStop. QEMU without auto-converge needs this on
//     workloads that dirty faster than the link drains.
//
// # Oracle
//
// The oracle (algorithms.Oracle) is evaluated on a grid of switch-over
// times (the curve in summary.json) and just before every event instant,
// where the minimum of the bound lies. Release times are rounded down to a
// multiple of E/16, and event instants closer than that are taken as one
// cluster: both only loosen the bound (it stays a lower bound), keep it
// exact for epoch-aligned events, and keep it fast for the once reading.
// It assumes full-page sends, so a QEMU run whose final round holds zero
// pages, or that throttled the workload, can beat it.
//
// # Speed
//
// The simulator keeps per-page state in flat arrays (versions as uint32,
// dirty/pending/data/hot bitmaps as []uint64), applies events in groups
// that share a time, and calls the policy once per round and once per
// batch, never per page. A per-page epoch counter is kept only for traces
// whose epochs overlap (two less than E apart).
package replay
