package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScaleOutFiles: the Slurm array script and the Kubernetes indexed Job
// shard the same experiment file the same way: their shard counts agree
// with their array sizes, the file they name loads, its last shard is not
// empty, and the script is valid bash.
func TestScaleOutFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	slurm, err := os.ReadFile(filepath.Join(root, "experiments", "slurm-reproduce.sh"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^#SBATCH --array=0-(\d+)$`).FindSubmatch(slurm)
	require.NotNil(t, m, "the script declares its array as 0-N")
	slurmN, _ := strconv.Atoi(string(m[1]))
	slurmN++
	exp := regexp.MustCompile(`EXP:-([^}]+)\}`).FindSubmatch(slurm)
	require.NotNil(t, exp)
	if bash, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(bash, "-n", filepath.Join(root, "experiments", "slurm-reproduce.sh")).CombinedOutput()
		require.NoError(t, err, "bash -n: %s", out)
	}

	k8s, err := os.ReadFile(filepath.Join(root, "experiments", "k8s-reproduce.yaml"))
	require.NoError(t, err)
	comp := regexp.MustCompile(`(?m)^\s+completions: (\d+)$`).FindSubmatch(k8s)
	shards := regexp.MustCompile(`(?s)name: SHARDS\s+value: "(\d+)"`).FindSubmatch(k8s)
	require.NotNil(t, comp)
	require.NotNil(t, shards)
	assert.Equal(t, string(comp[1]), string(shards[1]), "completions and SHARDS must agree")
	assert.Contains(t, string(k8s), "completionMode: Indexed")
	assert.Contains(t, string(k8s), string(exp[1]), "both run the same experiment file")
	k8sN, _ := strconv.Atoi(string(comp[1]))

	for _, n := range []int{slurmN, k8sN} {
		res := execBinary(t, root, "run", "--list", "--shard", strconv.Itoa(n-1)+"/"+strconv.Itoa(n), string(exp[1]))
		require.Zero(t, res.code, res.stderr)
		assert.NotEmpty(t, strings.TrimSpace(res.stdout), "the last of %d shards has jobs", n)
	}
}
