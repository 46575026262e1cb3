package replay

import (
	"fmt"
	"math/bits"

	"github.com/microwiper/microwiper/algorithms"
)

// ReadLog is the round start that both engines share: it reads and clears
// the dirty log. dirty and pend are page bitmaps (page p at word p>>6, bit
// p&63): the pages dirtied since the last read, and those still to send
// (held back or left unsent). Afterwards pend holds their union and dirty
// is empty. It returns, ascending, the union as toSend and the log alone as
// dirtied, appended to the given slices after truncating them.
func ReadLog(dirty, pend []uint64, toSend, dirtied []int32) ([]int32, []int32) {
	toSend, dirtied = toSend[:0], dirtied[:0]
	for w, d := range dirty {
		all := d | pend[w]
		pend[w] = all
		dirty[w] = 0
		for x := d; x != 0; x &= x - 1 {
			dirtied = append(dirtied, int32(w<<6+bits.TrailingZeros64(x)))
		}
		for x := all; x != 0; x &= x - 1 {
			toSend = append(toSend, int32(w<<6+bits.TrailingZeros64(x)))
		}
	}
	return toSend, dirtied
}

// Bound returns the limits past which an engine forces the final round of
// a migration that does not converge: Config.MaxNS and MaxRounds, or by
// default ten times the time to send all pages once (at least MinMaxNS) and
// DefaultMaxRounds. Both engines use it, so that they stop alike.
func (c Config) Bound(pages, pageBits int64) (maxNS int64, maxRounds int) {
	maxNS, maxRounds = c.MaxNS, c.MaxRounds
	if maxNS <= 0 {
		once := transferNS(pages, pageBits, c.Link.Bps)
		maxNS = MinMaxNS
		if once < (1<<63-1)/DefaultMaxMemoryTimes {
			maxNS = max(DefaultMaxMemoryTimes*once, MinMaxNS)
		} else {
			maxNS = 1<<63 - 1
		}
	}
	if maxRounds <= 0 {
		maxRounds = DefaultMaxRounds
	}
	return maxNS, maxRounds
}

// CheckThrottle refuses a plan whose workload throttle is out of range.
func CheckThrottle(policy string, round int, plan *algorithms.Plan) error {
	if plan.ThrottlePct < 0 || plan.ThrottlePct > 99 {
		return fmt.Errorf("algorithm %s round %d: throttle %d%%: want 0 to 99", policy, round, plan.ThrottlePct)
	}
	return nil
}

// TakeOrder takes a plan's pages out of the pending bitmap. Each must be
// pending and listed once: a policy that breaks this would make an engine
// send a page twice or one that needs no sending.
func TakeOrder(policy string, round int, order []int32, pend []uint64, pages int64) error {
	for _, p := range order {
		if p < 0 || int64(p) >= pages || pend[p>>6]&(1<<(uint(p)&63)) == 0 {
			return fmt.Errorf("algorithm %s round %d: plan lists page %d, which is not pending or is listed twice", policy, round, p)
		}
		pend[p>>6] &^= 1 << (uint(p) & 63)
	}
	return nil
}

// NextBatch selects a live round's next batch: from order[i:], up to
// batchLen pages, skipping with peek every page already back in the dirty
// log (Xen looks at the log once per batch). It returns the batch
// (appended to batch[:0]), the index after the last page examined, and how
// many pages it skipped.
func NextBatch(order []int32, i, batchLen int, peek bool, dirty []uint64, batch []int32) ([]int32, int, int64) {
	batch = batch[:0]
	var skipped int64
	for i < len(order) && len(batch) < batchLen {
		pg := order[i]
		i++
		if peek && dirty[pg>>6]&(1<<(uint(pg)&63)) != 0 {
			skipped++
			continue
		}
		batch = append(batch, pg)
	}
	return batch, i, skipped
}

// Unsend puts pages a stopped round did not reach back into the pending
// bitmap, so the final round sends them.
func Unsend(pages []int32, pend []uint64) {
	for _, pg := range pages {
		pend[pg>>6] |= 1 << (uint(pg) & 63)
	}
}
