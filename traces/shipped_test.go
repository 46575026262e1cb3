package traces

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/microwiper/microwiper/tracefmt"
)

var update = flag.Bool("update", false, "regenerate the shipped traces")

// TestShippedTraces checks that every shipped trace is exactly what its
// Config generates, is valid and stays below 1 MiB. With -update it
// rewrites them.
func TestShippedTraces(t *testing.T) {
	dir := "shipped"
	for _, s := range Shipped {
		t.Run(s.Name, func(t *testing.T) {
			path := filepath.Join(dir, s.Name+".parquet")
			if *update {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				_, err := Write(context.Background(), path, s.Config, tracefmt.WriterOptions{})
				require.NoError(t, err)
			}
			fi, err := os.Stat(path)
			require.NoError(t, err, "run go test ./traces -run TestShippedTraces -update")
			assert.Less(t, fi.Size(), int64(1<<20), "shipped traces must stay below 1 MiB")
			require.NoError(t, tracefmt.Validate(path))
			if testing.Short() {
				return
			}
			h, got, err := tracefmt.ReadAll(path)
			require.NoError(t, err)
			want := collectAll(t, s.Config)
			assert.Equal(t, s.Config.Header().Workload, h.Workload)
			assert.Equal(t, s.Config.Header().Pages, h.Pages)
			require.Equal(t, len(want), len(got), "epochs")
			for i := range want {
				require.Equal(t, want[i], got[i], "epoch %d differs from the generator: regenerate with -update", i)
			}
		})
	}
}
