package main

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
)

// procStats splits a trace by the process (or shared memory object) each
// page belongs to, from the regions metadata of a process-tree capture.
type procStats struct {
	regions []tracefmt.Region // sorted by FirstPage
	owner   []int             // per region: index into owners
	owners  []*ownerStat
	seen    []bool // per page: written at least once (nil when too large)
}

type ownerStat struct {
	name     string
	pid      int
	pages    int64 // size in pages
	dirtied  int64 // page dirtyings (rows outside the initial image)
	written  int64 // distinct pages written
	first    int64 // time of its first row, -1 before any
	last     int64 // time of its last row
	exitNS   int64
	isShared bool
}

// newProcStats returns nil for a trace of one process recorded without
// process metadata.
func newProcStats(h tracefmt.Header) *procStats {
	ps := &procStats{regions: h.Regions}
	byKey := map[string]int{}
	for _, r := range h.Regions {
		if r.PID == 0 && r.Object == "" {
			ps.owner = append(ps.owner, -1)
			continue
		}
		key := fmt.Sprintf("%d %s %d", r.PID, r.Comm, r.ExitNS)
		name := fmt.Sprintf("pid %d %s", r.PID, r.Comm)
		if r.Object != "" {
			key, name = r.Object, "shared "+r.Object
		}
		i, ok := byKey[key]
		if !ok {
			i = len(ps.owners)
			byKey[key] = i
			ps.owners = append(ps.owners, &ownerStat{name: name, pid: r.PID, first: -1, exitNS: r.ExitNS, isShared: r.Object != ""})
		}
		ps.owners[i].pages += r.Pages
		ps.owner = append(ps.owner, i)
	}
	if len(ps.owners) == 0 {
		return nil
	}
	if h.Pages <= maxInfoPages {
		ps.seen = make([]bool, h.Pages)
	}
	return ps
}

func (ps *procStats) ownerOf(p int64) *ownerStat {
	i := sort.Search(len(ps.regions), func(i int) bool { return ps.regions[i].FirstPage+ps.regions[i].Pages > p })
	if i == len(ps.regions) || p < ps.regions[i].FirstPage || ps.owner[i] < 0 {
		return nil
	}
	return ps.owners[ps.owner[i]]
}

// add counts one epoch.
func (ps *procStats) add(e tracefmt.Epoch) {
	for _, p := range e.Pages {
		o := ps.ownerOf(p)
		if o == nil {
			continue
		}
		if o.first < 0 {
			o.first = e.TNS
		}
		o.last = e.TNS
		if e.Initial {
			continue
		}
		o.dirtied++
		if ps.seen != nil && !ps.seen[p] {
			ps.seen[p] = true
			o.written++
		}
	}
}

// print writes the per-process table: size, pages written, dirty rate over
// the process's time in the trace, and when its memory was freed.
func (ps *procStats) print(w io.Writer, h tracefmt.Header, lastT int64, maxLines int) {
	var freed int64
	procs := 0
	for _, o := range ps.owners {
		if o.exitNS > 0 {
			freed += o.pages
		}
		if !o.isShared {
			procs++
		}
	}
	fmt.Fprintf(w, "\nprocesses    %d address spaces, %d shared objects; freed by exit or exec: %d pages (%s), live at the end: %d pages\n",
		procs, len(ps.owners)-procs, freed, traceHumanBytes(freed*h.PageSize), h.Pages-freed)
	sorted := append([]*ownerStat(nil), ps.owners...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].dirtied > sorted[j].dirtied })
	fmt.Fprintf(w, "  %-34s %10s %10s %14s  %s\n", "process", "pages", "written", "dirty pages/s", "freed at")
	for i, o := range sorted {
		if i == maxLines {
			fmt.Fprintf(w, "  ... %d more\n", len(sorted)-maxLines)
			break
		}
		end := lastT
		freedAt := "-"
		if o.exitNS > 0 {
			end, freedAt = o.exitNS, time.Duration(o.exitNS).String()
		}
		rate := 0.0
		// A process's last writes are recorded at the end of the epoch it
		// exits in, a moment after its exit.
		// A row at t stands for a write in (t-epoch, t]: the process was
		// there from the start of its first row's epoch.
		if span := max(end, o.last) - max(o.first-h.EpochNS, 0); span > 0 {
			rate = float64(o.dirtied) / (float64(span) / 1e9)
		}
		written := "-"
		if ps.seen != nil {
			written = fmt.Sprint(o.written)
		}
		name := o.name
		if len(name) > 34 {
			name = name[:33] + "…"
		}
		fmt.Fprintf(w, "  %-34s %10d %10s %14.0f  %s\n", name, o.pages, written, rate, freedAt)
	}
}
