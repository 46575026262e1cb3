#!/usr/bin/env bash
# The full claim matrix (experiments/reproduce-full.json) as a Slurm job
# array: task i of n runs 'microwiper run --shard i/n'; a second job that
# depends on the array merges the shards with 'microwiper report'.
#
# From the repository root, after 'make build' (bin/microwiper must be on a
# file system every node sees):
#
#   jid=$(sbatch --parsable experiments/slurm-reproduce.sh)
#   sbatch --dependency=afterok:$jid experiments/slurm-reproduce.sh merge
#
# OUT (default out/reproduce-full) and EXP may be overridden with --export.
# The shard count is the array's size: change --array and nothing else.
#SBATCH --job-name=microwiper-reproduce
#SBATCH --array=0-31
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=02:00:00
#SBATCH --output=out/slurm/%x-%A_%a.log
set -euo pipefail

BIN=${BIN:-bin/microwiper}
EXP=${EXP:-experiments/reproduce-full.json}
OUT=${OUT:-out/reproduce-full}

if [[ "${1:-}" == merge ]]; then
	shopt -s nullglob
	shards=("$OUT"/shard-*)
	if ((${#shards[@]} == 0)); then
		echo "no shards under $OUT: run the array first" >&2
		exit 1
	fi
	traces=()
	for t in traces/shipped/*.parquet traces/captured/*.parquet traces/vm/*.parquet; do
		traces+=(--trace "$t")
	done
	exec "$BIN" report --out "$OUT/report" --title "microwiper: the full claim matrix" "${traces[@]}" \
		--reproduction "$OUT/REPRODUCTION.md" --reproduction-figures "$OUT/figures" "${shards[@]}"
fi

i=${SLURM_ARRAY_TASK_ID:?run this under sbatch --array, or with 'merge'}
n=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX + 1))}
exec "$BIN" run --shard "$i/$n" --out "$OUT/shard-$i" "$EXP"
