package scriptmain

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLoadAverages(t *testing.T) {
	assert.Equal(t, "0.52 0.61 0.70", loadAverages("0.52 0.61 0.70 1/234 5678\n"))
	assert.Equal(t, "", loadAverages("0.52 0.61\n"), "a short line is no reading")
	assert.Equal(t, "", loadAverages(""))
}

func TestLastLine(t *testing.T) {
	assert.Equal(t, "three", LastLine("one\ntwo\nthree\n\n"))
	assert.Equal(t, "only", LastLine("  only  "))
	assert.Equal(t, "", LastLine(""))
}
