//go:build !unix

package replay

import "time"

var processStart = time.Now()

// cpuNS falls back to wall time where getrusage is missing (Windows): the
// CPU-time figures then include waiting for a core.
func cpuNS() int64 { return int64(time.Since(processStart)) }
