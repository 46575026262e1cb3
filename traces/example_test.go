package traces_test

import (
	"fmt"
	"time"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/microwiper/microwiper/traces"
)

// scanner is the epoch-stream shape shared by tracefmt.Reader and
// traces.Generator (replay.Scanner has the same methods), so consumers
// take either without touching disk.
type scanner interface {
	Header() tracefmt.Header
	Scan() bool
	Epoch() tracefmt.Epoch
	Err() error
}

var (
	_ scanner = (*traces.Generator)(nil)
	_ scanner = (*tracefmt.Reader)(nil)
)

// A writable working set: 4 hot pages rewritten every epoch, and a thin
// background elsewhere.
func ExampleNew() {
	g, err := traces.New(traces.Config{
		Kind: traces.WWS, Pages: 64, HotPages: 4, Cluster: 4,
		Duration: 500 * time.Millisecond, Intensity: 60, Seed: 3,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Header().Workload)
	for g.Scan() {
		e := g.Epoch()
		fmt.Println(time.Duration(e.TNS), e.Pages, e.Writes)
	}
	// Output:
	// synthetic:wws pages=64 duration=500ms epoch=100ms intensity=60 seed=3 hot-pages=4 hot-share=0.9 cluster=4
	// 100ms [4 5 6 7] [1 1 1 1]
	// 200ms [4 5 6 7 53] [1 1 1 1 1]
	// 300ms [4 5 6 7] [1 1 1 1]
	// 400ms [4 5 6 7 37] [1 1 1 1 1]
	// 500ms [4 5 6 7] [1 1 1 1]
}

// A sweep is fully determined: 24 pages a second in 100 ms epochs is 2.4
// pages an epoch, so epochs write 2, 2, 3, 2 pages as the fraction
// carries over, wrapping at the end of memory.
func ExampleNew_sweep() {
	g, _ := traces.New(traces.Config{Kind: traces.Sweep, Pages: 8, Duration: 400 * time.Millisecond, Intensity: 24})
	for g.Scan() {
		fmt.Println(g.Epoch().TNS/1e6, g.Epoch().Pages)
	}
	// Output:
	// 100 [0 1]
	// 200 [2 3]
	// 300 [4 5 6]
	// 400 [0 7]
}
