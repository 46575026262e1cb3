package capture

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestProgressLine(t *testing.T) {
	var sb strings.Builder
	p := newProgress(&sb)
	p.last = time.Now().Add(-time.Second)
	p.update(3*time.Second, 30, 500, 12345, 64<<20)
	p.finish()
	line := sb.String()
	assert.True(t, strings.HasPrefix(line, "\r"), "redraws in place: %q", line)
	assert.Contains(t, line, "epochs 30")
	assert.Contains(t, line, "rows 12345")
	assert.Contains(t, line, "64.0 MiB")
	assert.Contains(t, line, "dirty pages/s")
	assert.True(t, strings.HasSuffix(line, "\n"))
}
