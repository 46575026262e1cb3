package traces

import "time"

// ShippedTrace is one of the small traces kept in the repository under
// traces/shipped, so that a fresh clone can run a replay without
// generating or capturing anything. They are stand-ins until captured
// traces replace them; a test regenerates each and checks it is unchanged.
type ShippedTrace struct {
	// Name is the file name without ".parquet".
	Name string
	// About says what workload the trace imitates.
	About string
	// Config generates it.
	Config Config
}

// Shipped lists the shipped traces. Each is below 1 MiB on disk.
var Shipped = []ShippedTrace{
	{
		Name:  "wws-512mib",
		About: "Clark-style writable working set: 8 MiB rewritten every 100 ms epoch over a 512 MiB guest, slow uniform background",
		Config: Config{Kind: WWS, Pages: 131072, Duration: 30 * time.Second, Epoch: 100 * time.Millisecond,
			Intensity: 20000, HotPages: 2048, Seed: 11},
	},
	{
		Name:  "hotcold-1gib",
		About: "database-like Zipf (s = 1.1) writes over 64 KiB runs of a 1 GiB guest, 60% of pages holding data at the start",
		Config: Config{Kind: HotCold, Pages: 262144, Duration: 20 * time.Second, Epoch: 100 * time.Millisecond,
			Intensity: 40000, Skew: 1.1, Cluster: 16, Initial: 0.6, Seed: 12},
	},
	{
		Name:  "phase-256mib",
		About: "batch job whose 16 MiB working set moves every 5 s over a 256 MiB guest",
		Config: Config{Kind: Phase, Pages: 65536, Duration: 30 * time.Second, Epoch: 100 * time.Millisecond,
			Intensity: 15000, WorkingSet: 4096, PhaseLength: 5 * time.Second, Seed: 13},
	},
}
