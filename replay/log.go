package replay

import (
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/microwiper/microwiper/algorithms"
)

// Log is the workload side of a migration that both engines share: the
// time model's event stream applied to the dirty log. The engine owns the
// memory (versions, content) and is told of every write, and of which
// writes left their page all zeros, through the function given to NewLog; the round driver owns the log's reads. Pages
// are int32 indices; bitmaps are []uint64 with page p at word p>>6, bit
// p&63.
type Log struct {
	ev    *events
	write func(pages []int32, z Zeros)
	n     int64

	dirty   []uint64 // the dirty log: dirtied since the last read
	pend    []uint64 // held back or left unsent, still to send
	count   int64    // pages set in dirty
	applied int64    // dirtying events applied

	// Under the continuous reading, the pages being written now: hot is
	// their bitmap. A hot page stays in the dirty log: a read puts it back
	// at once, so a send of it leaves it dirty, a peek sees it and the
	// pause puts it in the final set. Epochs of one page overlap only when
	// two epochs are less than E apart; for such traces hotN[p] counts p's
	// epochs in progress (nil otherwise: the counter costs a random access
	// a page event, and an endEpoch at the instant of the next beginEpoch
	// goes first).
	hot  []uint64
	hotN []uint16

	toSend, dirtied []int32 // the last read, valid until the next
	bufs            *logBufs
}

// logBufs are a log's arrays, pooled so that a sweep of runs reuses them
// instead of faulting in fresh memory each time.
type logBufs struct {
	dirty, pend, hot []uint64
	hotN             []uint16
	toSend, dirtied  []int32
}

var logPool sync.Pool

// NewLog returns the dirty log of a migration of tr under tm, with every
// page pending (each must be sent once). write is called, in time order,
// with the pages of each group of writes as it is applied and their zero
// marks (z.At(i): the write left pages[i] all zeros); it must not retain
// the slice.
func NewLog(tr *Trace, tm TimeModel, write func(pages []int32, z Zeros)) (*Log, error) {
	if tr.Header.Pages > math.MaxInt32 {
		return nil, fmt.Errorf("trace %s has %d pages: at most %d", tr.Name, tr.Header.Pages, math.MaxInt32)
	}
	ev, err := openEvents(tr, tm)
	if err != nil {
		return nil, err
	}
	n := tr.Header.Pages
	words := (n + 63) / 64
	b, _ := logPool.Get().(*logBufs)
	if b == nil {
		b = new(logBufs)
	}
	l := &Log{ev: ev, write: write, n: n, bufs: b,
		dirty: grow64(&b.dirty, words), pend: grow64(&b.pend, words),
		toSend: b.toSend[:0], dirtied: b.dirtied[:0]}
	setAll(l.pend, n)
	if DirtyModelFor(tr, tm) == Continuous {
		l.hot = grow64(&b.hot, words)
		if overlapping(tr, tm) {
			if int64(cap(b.hotN)) < n {
				b.hotN = make([]uint16, n)
			}
			l.hotN = b.hotN[:n]
			clear(l.hotN)
		}
		// An epoch that began before the migration and ends after its
		// start is in progress at the start.
		ev.Prehistory(func(k kind, ps []int32) { l.heat(k, ps) })
		copy(l.dirty, l.hot)
		l.count = popcount(l.hot)
	}
	return l, nil
}

// overlapping says whether two epochs of tr (looping as tm says) can be
// in progress at once: two epoch times less than E apart.
func overlapping(tr *Trace, tm TimeModel) bool {
	E := tr.Header.EpochNS
	for i := 1; i < len(tr.EpochT); i++ {
		if tr.EpochT[i]-tr.EpochT[i-1] < E {
			return true
		}
	}
	// Looping, the first epoch follows the last one at a distance of its
	// own time.
	return len(tr.EpochT) > 0 && tm.withDefaults(tr.Header).After == Loop && tr.EpochT[0] < E
}

// heat follows the epochs in progress: a beginEpoch makes its pages hot,
// an endEpoch cools them once no other epoch of theirs is in progress.
func (l *Log) heat(k kind, ps []int32) {
	if l.hotN == nil {
		hot := l.hot
		if k == beginEpoch {
			for _, p := range ps {
				hot[p>>6] |= 1 << (uint(p) & 63)
			}
		} else {
			for _, p := range ps {
				hot[p>>6] &^= 1 << (uint(p) & 63)
			}
		}
		return
	}
	switch k {
	case beginEpoch:
		for _, p := range ps {
			if l.hotN[p] == 0 {
				l.hot[p>>6] |= 1 << (uint(p) & 63)
			}
			l.hotN[p]++
		}
	case endEpoch:
		for _, p := range ps {
			switch l.hotN[p] {
			case 0: // began before the stream's first group
			case 1:
				l.hot[p>>6] &^= 1 << (uint(p) & 63)
				l.hotN[p] = 0
			default:
				l.hotN[p]--
			}
		}
	}
}

func popcount(b []uint64) int64 {
	var n int
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// Release returns the log's arrays to a pool; the log must not be used
// after.
func (l *Log) Release() {
	if l.bufs == nil {
		return
	}
	l.bufs.toSend, l.bufs.dirtied = l.toSend, l.dirtied
	logPool.Put(l.bufs)
	l.bufs = nil
}

// Prehistory calls fn with the pages written before the migration started
// and their zero marks, each page's last write last.
func (l *Log) Prehistory(fn func(pages []int32, z Zeros)) {
	l.ev.prehistoryZeros(fn)
}

// NextNS is the migration time of the next write, math.MaxInt64 when none
// is due (paused, or idle past the trace).
func (l *Log) NextNS() int64 { return l.ev.next }

// Applied counts the dirtying events applied so far.
func (l *Log) Applied() int64 { return l.applied }

// ApplyUntil applies, in time order, every write due at or before
// migration time t: the engine's write function sees it, and its pages
// enter the dirty log. A real-time engine calls it under the lock it gives
// the driver.
func (l *Log) ApplyUntil(t int64) {
	for l.ev.next <= t {
		_, k, ps, z := l.ev.popZeros()
		if k != writeAt {
			l.heat(k, ps)
		}
		dirty := l.dirty
		added := uint64(0)
		for _, p := range ps {
			w, sh := p>>6, uint(p)&63
			d := dirty[w]
			added += ^d >> sh & 1
			dirty[w] = d | 1<<sh
		}
		l.count += int64(added)
		l.applied += int64(len(ps))
		l.write(ps, z)
	}
}

// read is the round start: it reads and clears the dirty log. Afterwards
// pend holds the union of the log and the pages still pending, toSend
// lists it ascending, and dirtied lists the log alone. Pages being written
// (continuous) are back in the log at once.
func (l *Log) read() {
	if int64(cap(l.toSend)) < l.n {
		// Round 1 lists every page: size the buffer once instead of
		// growing it.
		l.toSend = make([]int32, 0, l.n)
	}
	toSend, dirtied := l.toSend[:0], l.dirtied[:0]
	l.count = 0
	for w, d := range l.dirty {
		all := d | l.pend[w]
		l.pend[w] = all
		l.dirty[w] = 0
		if l.hot != nil {
			l.dirty[w] = l.hot[w]
			l.count += int64(bits.OnesCount64(l.hot[w]))
		}
		for x := d; x != 0; x &= x - 1 {
			dirtied = append(dirtied, int32(w<<6+bits.TrailingZeros64(x)))
		}
		for x := all; x != 0; x &= x - 1 {
			toSend = append(toSend, int32(w<<6+bits.TrailingZeros64(x)))
		}
	}
	l.toSend, l.dirtied = toSend, dirtied
}

// isDirty says whether p is in the dirty log.
func (l *Log) isDirty(p int32) bool { return l.dirty[p>>6]&(1<<(uint(p)&63)) != 0 }

// take takes a plan's pages out of the pending bitmap. Each must be
// pending and listed once: a policy that breaks this would make an engine
// send a page twice or one that needs no sending.
func (l *Log) take(policy string, round int, order []int32) error {
	for _, p := range order {
		if p < 0 || int64(p) >= l.n || l.pend[p>>6]&(1<<(uint(p)&63)) == 0 {
			return fmt.Errorf("algorithm %s round %d: plan lists page %d, which is not pending or is listed twice", policy, round, p)
		}
		l.pend[p>>6] &^= 1 << (uint(p) & 63)
	}
	return nil
}

// unsend puts pages a stopped round did not reach back into the pending
// bitmap, so the final round sends them.
func (l *Log) unsend(pages []int32) {
	for _, pg := range pages {
		l.pend[pg>>6] |= 1 << (uint(pg) & 63)
	}
}

// nextBatch selects a live round's next batch: from order[i:], up to
// batchLen pages, skipping with peek every page already back in the dirty
// log (Xen looks at the log once per batch). With headers not nil, such a
// page is not skipped but listed in headers (sent as a header-only record,
// Xen's HVM round 1); it still takes a place in the batch. It returns the
// batch (appended to batch[:0]), the headers (appended to headers[:0]), the
// index after the last page examined, and how many pages it skipped.
func (l *Log) nextBatch(order []int32, i, batchLen int, peek bool, batch, headers []int32) ([]int32, []int32, int, int64) {
	batch = batch[:0]
	if headers != nil {
		headers = headers[:0]
	}
	var skipped int64
	for i < len(order) && len(batch)+len(headers) < batchLen {
		pg := order[i]
		i++
		if peek && l.isDirty(pg) {
			if headers != nil {
				headers = append(headers, pg)
			} else {
				skipped++
			}
			continue
		}
		batch = append(batch, pg)
	}
	return batch, headers, i, skipped
}

// checkThrottle refuses a plan whose workload throttle is out of range.
func checkThrottle(policy string, round int, plan *algorithms.Plan) error {
	if plan.ThrottlePct < 0 || plan.ThrottlePct > 99 {
		return fmt.Errorf("algorithm %s round %d: throttle %d%%: want 0 to 99", policy, round, plan.ThrottlePct)
	}
	return nil
}

func grow64(b *[]uint64, n int64) []uint64 {
	if int64(cap(*b)) < n {
		*b = make([]uint64, n)
	}
	*b = (*b)[:n]
	clear(*b)
	return *b
}

func setAll(b []uint64, n int64) {
	for i := range b {
		b[i] = math.MaxUint64
	}
	if r := n & 63; r != 0 {
		b[len(b)-1] = 1<<uint(r) - 1
	}
}
