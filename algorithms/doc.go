// Package algorithms holds the live-migration policies: what to send, in
// what order, whether to skip a page, and when to stop and copy. A policy
// never touches a clock, a socket or memory; an engine (replay's virtual-time
// simulator or its real socket engine) owns time, the dirty log and the link,
// and drives the very same policy values through the seam below.
//
// # The seam
//
// The engine calls, for one migration:
//
//  1. Begin(Migration) once, with the memory size, page size, per-page header
//     bytes, link rate and RTT. It returns Traits (e.g. whether zero pages
//     cost a header only).
//
//  2. PlanRound(*Round) at the start of every live round. The engine first
//     applies all dirtying up to now, then reads and clears the dirty log.
//     Round.ToSend is every page that still needs sending: the pages in the
//     log (dirtied since the previous round began) plus the pages the policy
//     held back or that were left unsent. Round.Dirtied is the log alone
//     (pages dirtied during the previous round), so policies can compute
//     per-page or per-stripe rates over Round.Last.DurationNS. Round 1 gets
//     every page in ToSend and nil Dirtied. The policy answers with a Plan:
//     Stop (pause the workload and run the final round now) or an ordered
//     list of pages (a subset of ToSend, each at most once). Pages of ToSend
//     left out of Order are held back: they stay pending and come back in
//     the next round's ToSend. Plan.Peek asks for Xen's peek: before each
//     batch the engine looks at the dirty log (without clearing it) and skips
//     every page of the batch window dirtied since the round began; a
//     skipped page costs nothing and stays in the log. Plan.BatchPages is
//     the batch length in selected (not skipped) pages. Plan.RateBps caps
//     this round's sending rate (QEMU's max-bandwidth). Plan.ThrottlePct is
//     the workload throttle from now on (QEMU's auto-converge): the engine
//     slows the trace clock by that share.
//
//  3. BeforeBatch(*Batch) before every batch of a live round, after dirtying
//     up to now has been applied. Returning true stops the round at once and
//     starts the final round (QEMU samples throughput every 100 ms and
//     switches over here). Batch.RemainingDirty, if the engine provides it,
//     counts the remaining pages already in the dirty log, so that a policy
//     can size what a sync would leave (QEMU's exact pending count).
//
// Engines must also bound a migration whose policy never stops (replay's
// Config.MaxNS / MaxRounds) and mark the result as forced.
//
// The final round is the engine's: with the workload paused it sends every
// pending page (dirty log ∪ held ∪ unsent) in page order at the full link
// rate, with no peek. Its transfer time plus one RTT plus the resume
// overhead is the downtime.
//
// Slices passed to a policy (ToSend, Dirtied) belong to the engine and stay
// valid and unchanged until the next PlanRound, so a plan may return ToSend
// (or part of it) as Order; Plan.Order must likewise stay unchanged until
// the next PlanRound. Pages are int32 indices into the
// trace's dense page space, so memory is limited to 2^31-1 pages (8 TiB of
// 4 KiB pages).
//
// # Policies
//
// xen-precopy, xen-v2, qemu-precopy, microwiper and stop-and-copy implement
// Policy. oracle is a lower bound computed from the future trace; it does not
// plan rounds, so it implements Bound instead and only the simulator runs it.
//
// Every policy has a typed parameter struct whose fields carry a `param`
// tag (the key of --param alg.key=value) and a doc comment naming where the
// default comes from. Set and Params reach those fields by reflection, so a
// new field is a new parameter with no other code.
package algorithms
