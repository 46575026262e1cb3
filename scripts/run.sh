#!/usr/bin/env bash
# run.sh BIN OUT: the body of `make run`. It generates the synthetic traces,
# describes them, and replays every trace through every policy.
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out/traces"

echo "== synthetic traces"
"$bin" trace gen --kind wws --memory 256MiB --duration 20s --seed 1 -o "$out/traces/wws.parquet"
"$bin" trace info "$out/traces/wws.parquet"
