// Package splitmix is the SplitMix64 finaliser, a cheap stateless 64-bit
// mixer, written once for every package that needs a reproducible hash:
// the trace generators (traces) and the time model's once reading and the
// socket engine's page contents (replay), whose constants docs/DESIGN.md
// fixes.
package splitmix

// Mix returns SplitMix64's output for state x: x plus the golden-ratio
// increment, then two xor-shift-multiply rounds and a final xor-shift.
func Mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}
