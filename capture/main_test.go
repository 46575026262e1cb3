package capture

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// TestMain also lets the test binary act as a capture process of its own
// (CAPTURE_HELPER set), so tests can SIGKILL a capture or run one as
// another user.
func TestMain(m *testing.M) {
	if mode := os.Getenv("CAPTURE_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	code := m.Run()
	removeBuiltPrograms()
	os.Exit(code)
}
