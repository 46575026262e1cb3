// Package traces generates synthetic page-write traces: deterministic,
// seeded stand-ins for captured workloads, so that policies can be compared
// on dirtying patterns whose shape is known exactly.
//
// Every generator takes the same core parameters (Config): the memory size
// in pages, the trace duration, the epoch, the intensity (mean page writes
// per second) and a seed. The same Config yields the same rows on every
// run; the shipped-trace test would catch a Go release that changed
// math/rand/v2's sequences. Kinds:
//
//   - uniform: every write picks a page uniformly at random.
//   - hotcold: writes follow a Zipf law over runs of Cluster contiguous
//     pages scattered through memory, so a few runs take most writes.
//   - sweep: a cursor walks memory in page order at Intensity pages per
//     second, wrapping at the end (a large sequential copy or scan).
//   - phase: writes are uniform inside a working set of WorkingSet
//     contiguous pages that jumps to a new random place every PhaseLength.
//   - wws: a Clark-style writable working set: HotPages pages (in runs of
//     Cluster) are written in every epoch, and a slow uniform background
//     takes the rest of the writes.
//
// A generator is an epoch stream with the shape of tracefmt.Reader (Scan,
// Epoch, Err), so replay can consume it without touching disk; Write
// stores it as a trace file through tracefmt.Writer with backend
// "synthetic" and a workload string that records every parameter.
//
// The initial image: by default a synthetic trace has no initial-image
// rows, which the format reads as "every page holds data". With Initial
// = f in (0, 1] a pseudo-random fraction f of the pages (chosen page by
// page from the seed) is listed as holding data at the start; the others
// are zero pages until first written.
package traces
