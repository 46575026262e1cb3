#!/usr/bin/env bash
# capture-shipped.sh BIN DIR [NAME...]: record the small real traces
# shipped in traces/captured/ (needs root, redis-server, redis-benchmark,
# xz, sqlite3, make, cc, postgresql and pgbench). Each capture is bounded
# in time so that the traces stay small. With names, only those traces.
set -euo pipefail
bin=$(realpath "$1")
dir=$(realpath -m "$2")
shift 2
want=" ${*:-redis xz sqlite build postgres} "
mkdir -p "$dir"
work=$(mktemp -d)
chmod 1777 "$work" # the postgres user puts its socket and log here
src=$(cd "$(dirname "$0")/.." && pwd)
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
cleanup() {
	[ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null
	[ -n "${pgdata:-}" ] && su postgres -c "$pgbin/pg_ctl -D $pgdata -m immediate stop" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
# Captures write to $work and are moved into $dir: capture never
# overwrites a trace.
put() { rm -rf "${dir:?}/$1.parquet"; mv "$work/$1.parquet" "$dir/$1.parquet"; }
on() { [[ $want == *" $1 "* ]]; }

# redis: an in-memory key-value server under redis-benchmark's mixed load,
# attached by PID (the server was not started by the capture), with a
# background save every 2 s: each BGSAVE forks a child that writes the
# snapshot while the server goes on (copy-on-write), followed as a process
# of its own.
if on redis; then
port=7399
redis-server --port "$port" --bind 127.0.0.1 --save "2 1" --dir "$work" --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" capture --pid "$redis_pid" --duration 10s --epoch 100ms --segment 0 -o "$work/redis.parquet" &
cap=$!
sleep 0.5
redis-benchmark -p "$port" -q -n 2000000 -c 20 -d 512 -r 200000 -t set,get,lpush,incr,hset >/dev/null 2>&1 &
bench=$!
wait "$cap"
kill "$bench" 2>/dev/null || true
# Wait for the server's exit: it saves on SIGTERM, and refuses to exit if
# $work is gone by then.
kill "$redis_pid"; wait "$redis_pid" || true; redis_pid=
put redis
fi

# xz: a streaming compressor with a large dictionary (launch mode).
if on xz; then
head -c 6000000 /dev/urandom | base64 >"$work/input.txt"
"$bin" capture --duration 15s --epoch 100ms --segment 0 -o "$work/xz.parquet" -- \
	xz -6 -T1 -k -f "$work/input.txt"
put xz
fi

# sqlite: an in-memory database taking inserts and index updates (B-tree
# pages: a hot/cold pattern with a moving frontier).
if on sqlite; then
cat >"$work/load.sql" <<'SQL'
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
CREATE INDEX tk ON t(k);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 400000)
INSERT INTO t SELECT i, abs(random()) % 100000, hex(randomblob(64)) FROM n;
UPDATE t SET v = hex(randomblob(64)) WHERE k % 7 = 0;
SELECT count(*) FROM t;
SQL
"$bin" capture --duration 15s --epoch 100ms --segment 0 -o "$work/sqlite.parquet" -- \
	sqlite3 :memory: ".read $work/load.sql" >/dev/null
put sqlite
fi

# build: make -j2 compiling eight units of a C program (the capture tests'
# tree.c) and linking them: make, its shells, and every cc, cc1, as and ld
# it forks, each an address space of its own, most living a second or less.
if on build; then
mkdir "$work/build"
{
	printf 'CFLAGS = -O2\nall: prog\nprog: u0.o u1.o u2.o u3.o u4.o u5.o u6.o u7.o\n\t$(CC) -o $@ u0.o\n'
	printf 'u%%.o: %s\n\t$(CC) $(CFLAGS) -DUNIT=$* -c -o $@ $<\n' "$src/capture/testdata/tree/tree.c"
} >"$work/build/Makefile"
(cd "$work/build" && "$bin" capture --epoch 100ms --segment 0 -o "$work/build.parquet" -- make -j2 >/dev/null)
put build
fi

# postgres: a PostgreSQL server under pgbench (TPC-B-like, 4 clients),
# attached by the postmaster's PID: its background processes are followed
# from the start, and every backend it forks for a client from its fork.
# The shared buffers (16 MiB, shared anonymous memory) count once.
if on postgres; then
pgdata=$work/pg
mkdir -m 700 "$pgdata" && chown postgres "$pgdata"
su postgres -c "$pgbin/initdb -D $pgdata -A trust" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $pgdata -w -l $work/pg.log -o '-p 7432 -k $work -c listen_addresses= -c shared_buffers=16MB' start" >/dev/null
pgbench -h "$work" -p 7432 -U postgres -i -s 4 -q postgres >/dev/null 2>&1
"$bin" capture --pid "$(head -1 "$pgdata/postmaster.pid")" --duration 10s --epoch 100ms --segment 0 -o "$work/postgres.parquet" &
cap=$!
sleep 0.5
pgbench -h "$work" -p 7432 -U postgres -c 4 -j 2 -T 8 postgres >/dev/null 2>&1 || true
wait "$cap"
su postgres -c "$pgbin/pg_ctl -D $pgdata -m fast stop" >/dev/null; pgdata=
put postgres
fi

for t in $want; do "$bin" trace validate "$dir/$t.parquet"; done
ls -la "$dir"
