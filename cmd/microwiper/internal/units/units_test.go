package units

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBitRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"100Mbit", 100_000_000, ""},
		{"1Gbit", 1_000_000_000, ""},
		{"1Gbit/s", 1_000_000_000, ""},
		{"10Gbps", 10_000_000_000, ""},
		{"2.5Gbit", 2_500_000_000, ""},
		{"128MiB/s", 128 * 1024 * 1024 * 8, ""},
		{"125MB/s", 1_000_000_000, ""},
		{" 1 Gbit ", 1_000_000_000, ""},
		{"100", 0, "no known unit"},
		{"fastGbit", 0, "not a number"},
		{"-1Gbit", 0, "not positive"},
		{"0Mbit", 0, "not positive"},
		{"", 0, "empty"},
		{"NaNGbit", 0, "not a number"},
		{"1e300Gbit", 0, "too large"},
		{"0.1bit", 0, "below 1 bit/s"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := BitRate(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"4GiB", 4 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"1GB", 1_000_000_000, ""},
		{"4096", 4096, ""},
		{"4096B", 4096, ""},
		{"0.5KiB", 512, ""},
		{"1.5B", 0, "whole number"},
		{"4Gib", 0, "not a number"},
		{"lots", 0, "not a number"},
		{"-4GiB", 0, "not positive"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Bytes(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDuration(t *testing.T) {
	d, err := Duration("300ms")
	require.NoError(t, err)
	assert.Equal(t, 300*time.Millisecond, d)
	d, err = Duration("0")
	require.NoError(t, err)
	assert.Equal(t, time.Duration(0), d)
	_, err = Duration("300")
	require.ErrorContains(t, err, "not a duration")
	_, err = Duration("-1s")
	require.ErrorContains(t, err, "negative")
}

// FuzzBitRate checks that no input panics and that every accepted rate is
// positive and reads back the same from its value in bits.
func FuzzBitRate(f *testing.F) {
	for _, s := range []string{"100Mbit", "1Gbit", "128MiB/s", "", "1e308Tbit", "-0bit", "0x10Gbit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := BitRate(s)
		if err != nil {
			return
		}
		if v <= 0 {
			t.Fatalf("BitRate(%q) = %d, want > 0", s, v)
		}
		back, err := BitRate(strconv.FormatInt(v, 10) + "bit")
		if err != nil || back != v {
			t.Fatalf("round trip of %d: %d, %v", v, back, err)
		}
	})
}

func FuzzBytes(f *testing.F) {
	for _, s := range []string{"4GiB", "4096", "1.5KiB", "", "9e18B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Bytes(s)
		if err == nil && v <= 0 {
			t.Fatalf("Bytes(%q) = %d, want > 0", s, v)
		}
		_, _ = Duration(s)
	})
}
