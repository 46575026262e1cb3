// Package units parses the quantities people type on the command line:
// bit rates (100Mbit, 1Gbit, 128MiB/s), byte sizes (4GiB) and durations
// (300ms). Every error names the accepted forms, so a user can fix a flag
// from the message alone.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Errors are plain values; the caller wraps them with the flag's name.

type suffix struct {
	name string
	mult float64
}

// Bit-rate suffixes: decimal for bits (networking convention), binary for
// IEC byte units, decimal for SI byte units. Longest first so that "Mbps"
// is not read as "M" + junk.
var rateSuffixes = []suffix{
	{"Tbit/s", 1e12}, {"Gbit/s", 1e9}, {"Mbit/s", 1e6}, {"kbit/s", 1e3}, {"Kbit/s", 1e3}, {"bit/s", 1},
	{"Tbps", 1e12}, {"Gbps", 1e9}, {"Mbps", 1e6}, {"kbps", 1e3}, {"Kbps", 1e3}, {"bps", 1},
	{"Tbit", 1e12}, {"Gbit", 1e9}, {"Mbit", 1e6}, {"kbit", 1e3}, {"Kbit", 1e3}, {"bit", 1},
	{"TiB/s", 8 << 40}, {"GiB/s", 8 << 30}, {"MiB/s", 8 << 20}, {"KiB/s", 8 << 10},
	{"TB/s", 8e12}, {"GB/s", 8e9}, {"MB/s", 8e6}, {"kB/s", 8e3}, {"KB/s", 8e3}, {"B/s", 8},
}

var sizeSuffixes = []suffix{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3}, {"B", 1},
}

const rateForms = "want a number and a unit such as 100Mbit, 1Gbit, 10Gbps or 128MiB/s"
const sizeForms = "want a number and a unit such as 4GiB, 512MiB, 1GB or 4096B"

// parse splits s into a number and a known suffix and returns number×mult.
func parse(s string, suffixes []suffix, forms string, allowBare bool) (float64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty value: %s", forms)
	}
	num, mult := t, 0.0
	for _, sf := range suffixes {
		if strings.HasSuffix(t, sf.name) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(t, sf.name)), sf.mult
			break
		}
	}
	if mult == 0 {
		if !allowBare {
			return 0, fmt.Errorf("%q has no known unit: %s", s, forms)
		}
		mult = 1
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number with a unit: %s", s, forms)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%q is not positive: %s", s, forms)
	}
	x := v * mult
	if x >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return x, nil
}

// BitRate parses a bandwidth and returns it in bits per second. Bits use
// decimal prefixes (1Gbit = 10^9 bit/s); bytes per second take IEC
// (128MiB/s) or SI (125MB/s) prefixes. A bare number is refused: "100"
// could mean bits or bytes.
func BitRate(s string) (int64, error) {
	v, err := parse(s, rateSuffixes, rateForms, false)
	if err != nil {
		return 0, err
	}
	bps := int64(math.Round(v))
	if bps < 1 {
		return 0, fmt.Errorf("%q is below 1 bit/s", s)
	}
	return bps, nil
}

// Bytes parses a size (4GiB, 100MB) and returns bytes. A bare integer is
// taken as bytes.
func Bytes(s string) (int64, error) {
	v, err := parse(s, sizeSuffixes, sizeForms, true)
	if err != nil {
		return 0, err
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// Duration parses a duration the way time.ParseDuration does (300ms, 1.5s,
// 2m) and also accepts a bare "0". Negative durations are refused.
func Duration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want a number and a unit such as 300ms, 1.5s or 2m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative: want a duration of 0 or more", s)
	}
	return d, nil
}
