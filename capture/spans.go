package capture

import "sort"

// span is an address range [start, end).
type span struct{ start, end uint64 }

// spanSet is a sorted list of disjoint, non-adjacent spans.
type spanSet []span

// add returns s ∪ {x}.
func (s spanSet) add(x span) spanSet {
	if x.start >= x.end {
		return s
	}
	i := sort.Search(len(s), func(i int) bool { return s[i].end >= x.start })
	j := i
	for j < len(s) && s[j].start <= x.end {
		x.start = min(x.start, s[j].start)
		x.end = max(x.end, s[j].end)
		j++
	}
	out := make(spanSet, 0, len(s)-(j-i)+1)
	out = append(out, s[:i]...)
	out = append(out, x)
	return append(out, s[j:]...)
}

// minus returns the parts of x not in s.
func (s spanSet) minus(x span) []span {
	var out []span
	a := x.start
	i := sort.Search(len(s), func(i int) bool { return s[i].end > a })
	for ; i < len(s) && a < x.end; i++ {
		if s[i].start >= x.end {
			break
		}
		if s[i].start > a {
			out = append(out, span{a, s[i].start})
		}
		a = max(a, s[i].end)
	}
	if a < x.end {
		out = append(out, span{a, x.end})
	}
	return out
}

// intersect returns s ∩ t.
func (s spanSet) intersect(t spanSet) spanSet {
	var out spanSet
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		a, b := max(s[i].start, t[j].start), min(s[i].end, t[j].end)
		if a < b {
			out = out.add(span{a, b})
		}
		if s[i].end < t[j].end {
			i++
		} else {
			j++
		}
	}
	return out
}

// remove returns s without x.
func (s spanSet) remove(x span) spanSet {
	var out spanSet
	for _, y := range s {
		if y.end <= x.start || y.start >= x.end {
			out = append(out, y)
			continue
		}
		if y.start < x.start {
			out = append(out, span{y.start, x.start})
		}
		if y.end > x.end {
			out = append(out, span{x.end, y.end})
		}
	}
	return out
}

// contains reports whether a is in s.
func (s spanSet) contains(a uint64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].end > a })
	return i < len(s) && s[i].start <= a
}
