#!/usr/bin/env bash
# run.sh BIN OUT: the body of `make run`. It replays the shipped traces
# (synthetic and captured) through every policy in the simulator, prints
# the comparison at 100 Mbit/s and 1 Gbit/s, sweeps the bandwidth, and
# writes reports with figures under OUT. Every run pays a 1 ms RTT at the
# switch-over, a LAN-like link (the replay default is loopback's 20 µs).
set -euo pipefail
bin=$1
out=$2
traces=(traces/shipped/*.parquet traces/captured/*.parquet)
sweep=50Mbit,100Mbit,200Mbit,500Mbit,1Gbit,2Gbit,5Gbit,10Gbit
rm -rf "$out/results" "$out/results-once" "$out/report" "$out/report-once"
mkdir -p "$out"

echo "== traces"
for t in "${traces[@]}"; do
	"$bin" trace validate "$t"
done

echo
echo "== every policy, simulator, continuous dirtying (DESIGN.md's default reading)"
"$bin" replay --engine sim --alg all --rtt 1ms --bw 100Mbit,1Gbit --bench=false "${traces[@]}"

echo
echo "== the same under the optimistic 'once' reading"
"$bin" replay --engine sim --alg all --rtt 1ms --bw 100Mbit,1Gbit --dirty once --bench=false "${traces[@]}"

echo
echo "== bandwidth sweep ($sweep) -> $out/results, $out/results-once"
"$bin" replay --engine sim --alg all --rtt 1ms --bw "$sweep" --out "$out/results" "${traces[@]}" >"$out/results.txt"
"$bin" replay --engine sim --alg all --rtt 1ms --bw "$sweep" --dirty once --out "$out/results-once" "${traces[@]}" >"$out/results-once.txt"
grep '^Benchmark' "$out/results.txt" >"$out/results/bench.txt"
grep '^Benchmark' "$out/results-once.txt" >"$out/results-once/bench.txt"

echo
echo "== reports"
"$bin" report --out "$out/report" --title "microwiper: shipped traces, continuous dirtying" \
	--trace traces/shipped/wws-512mib.parquet --trace traces/captured/redis.parquet \
	--rounds-trace wws-512mib --rounds-bw 1Gbit "$out/results"
"$bin" report --out "$out/report-once" --title "microwiper: shipped traces, 'once' dirtying" \
	--rounds-trace wws-512mib --rounds-bw 1Gbit "$out/results-once"
echo "open $out/report/report.html (figures: $out/report/*.svg, *.png, *.pdf)"
