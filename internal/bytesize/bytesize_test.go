package bytesize

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFormat(t *testing.T) {
	assert.Equal(t, "0 B", Format(int64(0)))
	assert.Equal(t, "1023 B", Format(uint64(1023)))
	assert.Equal(t, "1.0 KiB", Format(int64(1024)))
	assert.Equal(t, "2.3 GiB", Format(uint64(23<<30/10)))
	assert.Equal(t, "-5 B", Format(int64(-5)), "a negative count is shown as it is")
	assert.Equal(t, "8.0 EiB", Format(int64(math.MaxInt64)))
	assert.Equal(t, "16.0 EiB", Format(uint64(math.MaxUint64)), "beyond int64: no unit past E")
}
