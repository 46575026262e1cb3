package results

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Run is one row of runs.parquet. Tags are the column names; renaming one
// is a format change (docs/RESULTS.md).
type Run struct {
	RunID     string `json:"run_id" parquet:"run_id"`
	Trace     string `json:"trace" parquet:"trace"`
	TraceID   string `json:"trace_id" parquet:"trace_id"`
	Algorithm string `json:"algorithm" parquet:"algorithm"`
	Params    string `json:"params" parquet:"params"`
	Engine    string `json:"engine" parquet:"engine"`
	// Link is the link kind: sim, loopback, netns or remote.
	Link         string `json:"link" parquet:"link"`
	BandwidthBps int64  `json:"bandwidth_bps" parquet:"bandwidth_bps"`
	RTTNS        int64  `json:"rtt_ns" parquet:"rtt_ns"`
	// ResumeOverheadNS is added to every downtime (--resume-overhead).
	ResumeOverheadNS int64  `json:"resume_overhead_ns" parquet:"resume_overhead_ns"`
	DirtyModel       string `json:"dirty_model" parquet:"dirty_model"`
	// Speed is trace time per migration time (--speed; at --speed guest,
	// the trace's guest_slowdown). Files older than the column read as 0,
	// which means 1 (SpeedOrOne).
	Speed      float64 `json:"speed" parquet:"speed,optional"`
	Seed       int64   `json:"seed" parquet:"seed"`
	Rep        int64   `json:"rep" parquet:"rep"`
	Rounds     int64   `json:"rounds" parquet:"rounds"`
	PagesSent  int64   `json:"pages_sent" parquet:"pages_sent"`
	BytesSent  int64   `json:"bytes_sent" parquet:"bytes_sent"`
	DowntimeNS int64   `json:"downtime_ns" parquet:"downtime_ns"`
	TotalNS    int64   `json:"total_ns" parquet:"total_ns"`
	Slowdown   float64 `json:"slowdown" parquet:"slowdown"`
	LostPages  int64   `json:"lost_pages" parquet:"lost_pages"`
	// ForcedStop: the policy had not stopped by the engine's bound and the
	// engine forced the final round; the downtime is not an ordinary one.
	ForcedStop bool `json:"forced_stop" parquet:"forced_stop"`
}

// Round is one row of rounds.parquet.
type Round struct {
	RunID          string  `json:"run_id" parquet:"run_id"`
	Round          int64   `json:"round" parquet:"round"`
	StartNS        int64   `json:"start_ns" parquet:"start_ns"`
	DurationNS     int64   `json:"duration_ns" parquet:"duration_ns"`
	PagesSent      int64   `json:"pages_sent" parquet:"pages_sent"`
	PagesSkipped   int64   `json:"pages_skipped" parquet:"pages_skipped"`
	PagesHeld      int64   `json:"pages_held" parquet:"pages_held"`
	PagesDirtied   int64   `json:"pages_dirtied" parquet:"pages_dirtied"`
	RemainingDirty int64   `json:"remaining_dirty" parquet:"remaining_dirty"`
	ThroughputBps  float64 `json:"throughput_bps" parquet:"throughput_bps"`
}

// CurvePoint is the oracle's downtime bound for one switch-over time
// (summary.json).
type CurvePoint struct {
	SwitchNS   int64 `json:"switch_ns"`
	Unclean    int64 `json:"unclean_pages"`
	DowntimeNS int64 `json:"downtime_ns"`
}

// Result is what an engine returns for one run: its runs.parquet row, its
// rounds and, for the oracle, its curve.
type Result struct {
	Run
	// RoundRows are the per-round rows, the final round last.
	RoundRows []Round `json:"-"`
	// Curve is the oracle's downtime for each switch-over time; empty for
	// policies.
	Curve []CurvePoint `json:"curve,omitempty"`
	// Events counts dirtying events applied (for throughput figures); not
	// written.
	Events int64 `json:"-"`
}

// ID is a short digest of what identifies a run. Parts are joined with a
// separator no part contains.
func ID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

// FormatBps writes a bit rate with the largest decimal prefix that keeps it
// an integer, the way the CLI reads it: 1000000000 → "1Gbit",
// 2500000000 → "2500Mbit".
func FormatBps(bps int64) string {
	for _, u := range []struct {
		div  int64
		name string
	}{{1e12, "Tbit"}, {1e9, "Gbit"}, {1e6, "Mbit"}, {1e3, "kbit"}} {
		if bps >= u.div && bps%u.div == 0 {
			return strconv.FormatInt(bps/u.div, 10) + u.name
		}
	}
	return strconv.FormatInt(bps, 10) + "bit"
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._+-]`)

// SpeedOrOne is the run's speed, 1 for a run recorded before the column.
func (r *Run) SpeedOrOne() float64 {
	if r.Speed == 0 {
		return 1
	}
	return r.Speed
}

// FormatSpeed writes a speed as the report and benchmark names show it.
func FormatSpeed(speed float64) string { return strconv.FormatFloat(speed, 'g', -1, 64) }

// BenchName is the Go benchmark name of a run, without the "Benchmark"
// prefix: Migrate/trace=T/alg=A/bw=B, then /link=K for a link other than
// the simulator's, /rtt=Nns when the RTT is not zero, /dirty=M for the
// once and end readings and /speed=S when the trace did not play at its
// own speed. Result directories and benchmark files of the same runs thus
// compare name by name.
func BenchName(r *Run) string {
	clean := func(s string) string { return unsafeName.ReplaceAllString(s, "_") }
	name := fmt.Sprintf("Migrate/trace=%s/alg=%s/bw=%s", clean(r.Trace), clean(r.Algorithm), FormatBps(r.BandwidthBps))
	if r.Link != "" && r.Link != "sim" {
		name += "/link=" + clean(r.Link)
	}
	if r.RTTNS != 0 {
		name += fmt.Sprintf("/rtt=%dns", r.RTTNS)
	}
	if r.DirtyModel != "" && r.DirtyModel != "continuous" && r.DirtyModel != "exact" {
		name += "/dirty=" + clean(r.DirtyModel)
	}
	if sp := r.SpeedOrOne(); sp != 1 {
		name += "/speed=" + FormatSpeed(sp)
	}
	return name
}

// WriteBenchLines writes one Go benchmark-format line per result, so that
// benchstat and compare read them with no glue.
func WriteBenchLines(w io.Writer, rs []*Result) error {
	for _, r := range rs {
		forced := 0
		if r.ForcedStop {
			forced = 1
		}
		_, err := fmt.Fprintf(w, "Benchmark%s 1 %d ns/op %.3f downtime-ms %d pages-sent %d bytes-sent %d rounds %d forced-stop\n",
			BenchName(&r.Run), r.TotalNS, float64(r.DowntimeNS)/1e6, r.PagesSent, r.BytesSent, r.Rounds, forced)
		if err != nil {
			return err
		}
	}
	return nil
}
