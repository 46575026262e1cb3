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
// # Time model (docs/DESIGN.md, followed to the letter)
//
// Trace time runs at Speed times migration time from StartNS, slowed by the
// policy's throttle, and stops at the pause. A row (t, p) dirties p at t-E
// and t (continuous), once at t-E + SplitMix64(p XOR t) mod E (once), at t
// (end, exact). Writes before StartNS happened before the migration: they
// only mark pages as holding data. Past the last epoch the trace loops with
// a period equal to the last epoch's time, or goes idle.
//
// Choices docs/DESIGN.md leaves open, fixed here:
//   - An event at migration time m is applied before a page whose send
//     starts at m; a page's content is captured when its send starts.
//   - Page k of a round starts at round start + floor(bits before it × 1e9
//     / rate). A live round lasts its transfer time plus one RTT; a round
//     the policy stops in the middle (QEMU) ends at once, with no RTT, and
//     the final round starts there.
//   - The final round sends every pending page in page order at the link
//     rate with no peek; downtime = its transfer time + RTT + resume
//     overhead.
//   - pages_dirtied of a round counts distinct pages dirtied from its start
//     to the next round's start (so the RTT is included); throughput is the
//     round's bytes over its whole duration.
//   - slowdown is the trace time lost to throttling over speed × the time
//     until the pause.
//   - A policy that has not stopped by Config.MaxNS (default ten times the
//     time to send memory once, at least a minute) or Config.MaxRounds
//     (10000) is stopped by the engine: the final round runs and the
//     Result says ForcedStop. QEMU without auto-converge needs this on
//     workloads that dirty faster than the link drains.
//   - Dirtying under the continuous reading happens only at epoch
//     boundaries, so a round shorter than an epoch can see none, and a
//     final round right after it can be empty (downtime = RTT + resume
//     overhead). That is the letter of docs/DESIGN.md; "once" spreads writes.
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
// dirty/pending/data bitmaps as []uint64), applies events in groups that
// share a time, and calls the policy once per round and once per batch, never
// per page.
package replay
