#!/usr/bin/env bash
# capture-shipped.sh BIN DIR: record the small real traces shipped in
# traces/captured/ (needs root, redis-server, redis-benchmark, xz, sqlite3).
# Each capture is bounded in time so that the traces stay small.
set -euo pipefail
bin=$1
dir=$2
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true' EXIT

# redis: an in-memory key-value server under redis-benchmark's mixed load,
# attached by PID (the server was not started by the capture).
port=7399
redis-server --port "$port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" capture --pid "$redis_pid" --duration 10s --epoch 100ms --segment 0 -o "$work/redis.parquet" &
cap=$!
sleep 0.5
redis-benchmark -p "$port" -q -n 2000000 -c 20 -d 512 -r 200000 -t set,get,lpush,incr,hset >/dev/null 2>&1 &
bench=$!
wait "$cap"
kill "$bench" 2>/dev/null || true
kill "$redis_pid"; redis_pid=
mv "$work/redis.parquet" "$dir/redis.parquet"

# xz: a streaming compressor with a large dictionary (launch mode).
head -c 6000000 /dev/urandom | base64 >"$work/input.txt"
"$bin" capture --duration 15s --epoch 100ms --segment 0 -o "$dir/xz.parquet" -- \
	xz -6 -T1 -k -f "$work/input.txt"

# sqlite: an in-memory database taking inserts and index updates (B-tree
# pages: a hot/cold pattern with a moving frontier).
cat >"$work/load.sql" <<'SQL'
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
CREATE INDEX tk ON t(k);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 400000)
INSERT INTO t SELECT i, abs(random()) % 100000, hex(randomblob(64)) FROM n;
UPDATE t SET v = hex(randomblob(64)) WHERE k % 7 = 0;
SELECT count(*) FROM t;
SQL
"$bin" capture --duration 15s --epoch 100ms --segment 0 -o "$dir/sqlite.parquet" -- \
	sqlite3 :memory: ".read $work/load.sql" >/dev/null

for t in redis xz sqlite; do "$bin" trace validate "$dir/$t.parquet"; done
ls -la "$dir"
