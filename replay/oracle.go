package replay

import (
	"context"
	"math"
	"math/bits"

	"github.com/microwiper/microwiper/algorithms"
	"github.com/microwiper/microwiper/results"
)

// maxOraclePoints bounds the switch-over grid.
const maxOraclePoints = 20000

// runOracle evaluates algorithms.Oracle's bound on a grid of switch-over
// times T (the curve) and just before every event instant up to the
// horizon (where the minimum lies). Each group of events gets a sequence number; a page's release is
// the sequence of its last write, and count[seq] tracks how many pages have
// their release there, so each T needs only a backward scan over recent
// groups (algorithms.Unclean). Throttling does not apply: the oracle
// never throttles.
func runOracle(ctx context.Context, tr *Trace, ev *events, cfg Config, o *algorithms.Oracle, res *results.Result) error {
	n := tr.Header.Pages
	pageBits := (tr.Header.PageSize + cfg.Link.HeaderBytes) * 8
	bps := cfg.Link.Bps
	memNS := transferNS(n, pageBits, bps)
	horizon := int64(o.P.Horizon)
	if horizon == 0 {
		horizon = 3 * memNS
	}
	step := int64(o.P.Step)
	if step == 0 {
		step = tr.Header.EpochNS
	}
	if horizon/step > maxOraclePoints {
		step = (horizon + maxOraclePoints - 1) / maxOraclePoints
	}
	// slots(dt) is how many pages fit in dt ns: floor(dt·bps / (pageBits·1e9)).
	slots := func(dt int64) int64 {
		hi, lo := bits.Mul64(uint64(dt), uint64(bps))
		den := uint64(pageBits) * 1e9
		if hi >= den {
			return math.MaxInt64
		}
		q, _ := bits.Div64(hi, lo, den)
		return int64(min(q, math.MaxInt64))
	}
	last := make([]int32, n) // 1 + sequence of the page's last write; 0 = none
	// Under the continuous reading a page is being written from its
	// epoch's first instant to its end: whatever T inside, it cannot be
	// clean at T. Such pages (hotN > 0, hotPages of them) are left out of
	// the release schedule and counted unclean; the epoch's end is their
	// release.
	var hotN []uint16
	var hotBits []uint64 // when no two epochs overlap, a bitmap does
	var hotPages int64
	continuous := DirtyModelFor(tr, cfg.Time) == Continuous
	heat := func(k kind, p int32) {
		if hotBits != nil {
			w, b := p>>6, uint64(1)<<(uint(p)&63)
			switch {
			case k == beginEpoch && hotBits[w]&b == 0:
				hotBits[w] |= b
				hotPages++
			case k == endEpoch && hotBits[w]&b != 0:
				hotBits[w] &^= b
				hotPages--
			}
			return
		}
		switch {
		case k == beginEpoch:
			hotN[p]++
			if hotN[p] == 1 {
				hotPages++
			}
		case k == endEpoch && hotN[p] > 0:
			hotN[p]--
			if hotN[p] == 0 {
				hotPages--
			}
		}
	}
	if continuous {
		if overlapping(tr, cfg.Time) {
			hotN = make([]uint16, n)
		} else {
			hotBits = make([]uint64, (n+63)/64)
		}
		ev.Prehistory(func(k kind, ps []int32) {
			for _, p := range ps {
				heat(k, p)
			}
		})
	}
	var seqTime, seqCount []int64
	var rel, cnt []int64
	overhead := cfg.Link.RTTNS + cfg.ResumeOverheadNS
	best := results.CurvePoint{DowntimeNS: math.MaxInt64}
	eval := func(T int64) results.CurvePoint {
		// Releases at or after s, newest first, until s is far enough back
		// that every page fits after it.
		rel, cnt = rel[:0], cnt[:0]
		for i := len(seqTime) - 1; i >= 0; i-- {
			if seqCount[i] == 0 {
				continue
			}
			if slots(T-seqTime[i]) >= n {
				break
			}
			rel = append(rel, seqTime[i])
			cnt = append(cnt, seqCount[i])
		}
		u := hotPages + algorithms.Unclean(rel, cnt, n-hotPages, T, slots)
		pt := results.CurvePoint{SwitchNS: T, Unclean: u, DowntimeNS: transferNS(u, pageBits, bps) + overhead}
		if pt.DowntimeNS < best.DowntimeNS {
			best = pt
		}
		return pt
	}
	// apply records a group's writes as releases. Release times are
	// rounded down to a multiple of q: a page released earlier is easier
	// to send clean, so the bound stays a lower bound, and the backward
	// scan stays short when events are dense (the once reading puts every
	// row at its own instant). Epoch-aligned events lose nothing.
	q := max(tr.Header.EpochNS/16, 1)
	apply := func(m int64, k kind, ps []int32) {
		res.Events += int64(len(ps))
		if k == beginEpoch {
			for _, p := range ps {
				if l := last[p]; l != 0 {
					seqCount[l-1]--
					last[p] = 0
				}
				if hotBits != nil {
					// heat, inlined: this loop sees every page event.
					w, b := p>>6, uint64(1)<<(uint(p)&63)
					hotPages += int64(^hotBits[w] >> (uint(p) & 63) & 1)
					hotBits[w] |= b
				} else {
					heat(k, p)
				}
			}
			return
		}
		if k == endEpoch {
			if hotBits != nil {
				for _, p := range ps {
					w, b := p>>6, uint64(1)<<(uint(p)&63)
					hotPages -= int64(hotBits[w] >> (uint(p) & 63) & 1)
					hotBits[w] &^= b
				}
			} else {
				for _, p := range ps {
					heat(k, p)
				}
			}
		}
		rt := m - m%q
		if k := len(seqTime); k == 0 || seqTime[k-1] != rt {
			seqTime = append(seqTime, rt)
			seqCount = append(seqCount, 0)
		}
		seq := int32(len(seqTime) - 1)
		seqCount[seq] += int64(len(ps))
		for _, p := range ps {
			if l := last[p]; l != 0 {
				seqCount[l-1]--
			}
			last[p] = seq + 1
		}
	}
	type group struct {
		m  int64
		k  kind
		ps []int32
	}
	var cluster []group
	// Between two event instants the bound only falls (more time, same
	// releases), so besides the grid (the reported curve) the minimum is
	// sought just before each event instant. Instants closer than q are
	// taken as one cluster: for T inside it the bound at its last instant
	// with none of its events applied is lower than every true value
	// (fewer writes and more time both make pages easier).
	grid := int64(0)
	stepGrid := func() {
		if grid == horizon {
			grid++ // past the end: the curve is complete
		} else {
			grid = min(grid+step, horizon)
		}
	}
	for iter := 0; ; iter++ {
		if iter&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		next := ev.next
		for grid <= horizon && grid < next {
			res.Curve = append(res.Curve, eval(grid))
			stepGrid()
		}
		if next > horizon {
			break
		}
		cluster = cluster[:0]
		for ev.next <= horizon && ev.next < next+q {
			m, k, ps := ev.Pop()
			cluster = append(cluster, group{m, k, ps})
		}
		if next > 0 {
			eval(next - 1)
		}
		if lastM := cluster[len(cluster)-1].m; lastM > next {
			eval(lastM - 1)
		}
		for _, g := range cluster {
			for grid <= horizon && grid < g.m {
				res.Curve = append(res.Curve, eval(grid))
				stepGrid()
			}
			apply(g.m, g.k, g.ps)
		}
	}
	res.PagesSent = n
	res.BytesSent = n * (tr.Header.PageSize + cfg.Link.HeaderBytes)
	res.DowntimeNS = best.DowntimeNS
	res.TotalNS = best.SwitchNS + best.DowntimeNS
	if best.SwitchNS > 0 {
		res.RoundRows = append(res.RoundRows, results.Round{Round: 1, StartNS: 0, DurationNS: best.SwitchNS, PagesSent: n - best.Unclean})
	}
	res.RoundRows = append(res.RoundRows, results.Round{Round: int64(len(res.RoundRows) + 1), StartNS: best.SwitchNS,
		DurationNS: best.DowntimeNS, PagesSent: best.Unclean})
	res.Rounds = int64(len(res.RoundRows))
	return nil
}
