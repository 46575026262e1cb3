package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/microwiper/microwiper/capture"
)

// An explicit backend the kernel lacks fails at once, in one line naming
// the missing feature, the Linux version that has it, and a backend that
// works here.
func TestCaptureBackendMissing(t *testing.T) {
	needCaptureKernel(t)
	f := capture.KernelFeatures()
	ran := false
	for _, b := range capture.Backends {
		if f.Check(b) == nil {
			continue
		}
		ran = true
		t.Run(b, func(t *testing.T) {
			res := execBinary(t, "", "capture", "--backend", b, "-o", filepath.Join(t.TempDir(), "x.parquet"), "--", "true")
			assert.Equal(t, exitFailure, res.code, "stderr: %s", res.stderr)
			assert.Contains(t, res.stderr, "backend "+b+": kernel "+f.Kernel+" lacks ")
			assert.Regexp(t, `Linux \d+\.\d+|CONFIG_`, res.stderr)
			if best, err := f.Best(); err == nil {
				assert.Contains(t, res.stderr, "use --backend "+best)
			}
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.stderr), "\n")+1, "one line: %q", res.stderr)
		})
	}
	if !ran {
		t.Skip("this kernel offers every backend")
	}
}
