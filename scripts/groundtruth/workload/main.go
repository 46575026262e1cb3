// Command workload runs inside the ground-truth guests (statically linked,
// started by the initramfs's script). Each mode dirties guest memory in a
// known way and prints "ready" on stdout once its memory is set up:
//
//   - idle: nothing (the guest kernel's own background writes only).
//   - hotset: rewrites one word in every page of a hot set of -hot MiB every
//     -period, sleeping in between: a rate-limited writer whose dirtying
//     does not depend on how fast the vCPU runs.
//   - kv: an in-memory key-value store serving -ops random SET/DEL
//     requests per second on -keys keys with values of 64 B to 8 KiB; Go's
//     garbage collector frees and reuses memory as a real server's would.
//   - stream: writes all of -hot MiB, every byte, in a loop as fast as the
//     vCPU runs: it outruns the migration cap, and only auto-converge's CPU
//     throttle lets the migration finish.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

func main() {
	mode := flag.String("mode", "idle", "idle, hotset, kv or stream")
	hot := flag.Int("hot", 4, "hotset/stream: MiB written")
	period := flag.Duration("period", 50*time.Millisecond, "hotset: time between passes over the hot set")
	keys := flag.Int("keys", 20000, "kv: number of keys")
	ops := flag.Int("ops", 2000, "kv: requests per second")
	flag.Parse()
	const page = 4096
	switch *mode {
	case "idle":
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
		}
	case "hotset", "stream":
		buf := make([]byte, *hot<<20)
		for i := range buf {
			buf[i] = byte(i)
		}
		fmt.Println("ready")
		var v byte
		passes, last := 0, time.Now()
		for {
			v++
			if *mode == "stream" {
				// Whole pages: the vCPU's speed sets the dirty rate.
				for i := range buf {
					buf[i] = v
				}
				// The writer's own rate, on the console, to compare with
				// what a capture sees (which slows it) and with QEMU's
				// throttle.
				passes++
				if now := time.Now(); now.Sub(last) >= time.Second {
					fmt.Printf("stream: %.1f passes/s\n", float64(passes)/now.Sub(last).Seconds())
					passes, last = 0, now
				}
				continue
			}
			for i := 0; i < len(buf); i += page {
				buf[i] = v
			}
			time.Sleep(*period)
		}
	case "kv":
		store := make(map[int][]byte, *keys)
		rng := rand.New(rand.NewPCG(1, 2))
		val := func() []byte {
			b := make([]byte, 64<<rng.IntN(8))
			for i := 0; i < len(b); i += 64 {
				b[i] = byte(rng.Uint32())
			}
			return b
		}
		for k := 0; k < *keys; k++ {
			store[k] = val()
		}
		fmt.Println("ready")
		tick := time.NewTicker(10 * time.Millisecond)
		perTick := max(*ops/100, 1)
		for range tick.C {
			for i := 0; i < perTick; i++ {
				k := rng.IntN(*keys)
				if rng.IntN(10) == 0 {
					delete(store, k)
				} else {
					store[k] = val()
				}
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "workload: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
}
