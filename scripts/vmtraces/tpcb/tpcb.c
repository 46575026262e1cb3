/*
 * tpcb runs pgbench's default transaction (TPC-B-like) on an SQLite
 * database, as the `sqlite` workload of `make traces`. It is built
 * statically against Debian's libsqlite3.a, so the guest needs no shared
 * libraries.
 *
 *   tpcb DB SCALE
 *
 * creates DB with pgbench's four tables at the given scale (100,000
 * accounts, 10 tellers and 1 branch per unit, the filler columns pgbench
 * pads its rows with), prints "ready", then runs transactions back to back
 * until killed, one client, as `pgbench -c 1` does. Every 5 s it prints the
 * transactions done so far. The database uses WAL journaling with
 * synchronous=NORMAL, the usual setting for a server-side SQLite.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sqlite3 *db;

static void die(const char *what) {
	fprintf(stderr, "tpcb: %s: %s\n", what, sqlite3_errmsg(db));
	exit(1);
}

static void exec(const char *sql) {
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "tpcb: %s: %s\n", sql, err);
		exit(1);
	}
}

static sqlite3_stmt *prep(const char *sql) {
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die(sql);
	return s;
}

static void step(sqlite3_stmt *s) {
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		die(sqlite3_sql(s));
	sqlite3_reset(s);
}

/* xorshift64*: reproducible, and no libc state. */
static unsigned long long rng = 88172645463325252ULL;
static long rnd(long lo, long hi) {
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return lo + (long)((rng * 2685821657736338717ULL) % (unsigned long long)(hi - lo + 1));
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: tpcb DB SCALE\n");
		return 2;
	}
	long scale = atol(argv[2]);
	if (scale < 1) {
		fprintf(stderr, "tpcb: scale %s: want a positive integer\n", argv[2]);
		return 2;
	}
	if (sqlite3_open(argv[1], &db) != SQLITE_OK)
		die(argv[1]);
	exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
	exec("CREATE TABLE pgbench_branches(bid INTEGER PRIMARY KEY, bbalance INTEGER, filler CHAR(88));"
	     "CREATE TABLE pgbench_tellers(tid INTEGER PRIMARY KEY, bid INTEGER, tbalance INTEGER, filler CHAR(84));"
	     "CREATE TABLE pgbench_accounts(aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler CHAR(84));"
	     "CREATE TABLE pgbench_history(tid INTEGER, bid INTEGER, aid INTEGER, delta INTEGER, mtime TIMESTAMP, filler CHAR(22));");
	char filler[85];
	memset(filler, ' ', 84);
	filler[84] = 0;
	exec("BEGIN");
	sqlite3_stmt *ib = prep("INSERT INTO pgbench_branches VALUES (?, 0, ?)");
	sqlite3_stmt *it = prep("INSERT INTO pgbench_tellers VALUES (?, ?, 0, ?)");
	sqlite3_stmt *ia = prep("INSERT INTO pgbench_accounts VALUES (?, ?, 0, ?)");
	for (long b = 1; b <= scale; b++) {
		sqlite3_bind_int64(ib, 1, b);
		sqlite3_bind_text(ib, 2, filler, 84, SQLITE_STATIC);
		step(ib);
	}
	for (long t = 1; t <= 10 * scale; t++) {
		sqlite3_bind_int64(it, 1, t);
		sqlite3_bind_int64(it, 2, (t - 1) / 10 + 1);
		sqlite3_bind_text(it, 3, filler, 84, SQLITE_STATIC);
		step(it);
	}
	for (long a = 1; a <= 100000 * scale; a++) {
		sqlite3_bind_int64(ia, 1, a);
		sqlite3_bind_int64(ia, 2, (a - 1) / 100000 + 1);
		sqlite3_bind_text(ia, 3, filler, 84, SQLITE_STATIC);
		step(ia);
	}
	exec("COMMIT");
	exec("PRAGMA wal_checkpoint(TRUNCATE)");
	printf("tpcb: database ready\n");
	fflush(stdout);

	sqlite3_stmt *begin = prep("BEGIN");
	sqlite3_stmt *ua = prep("UPDATE pgbench_accounts SET abalance = abalance + ?1 WHERE aid = ?2");
	sqlite3_stmt *sa = prep("SELECT abalance FROM pgbench_accounts WHERE aid = ?1");
	sqlite3_stmt *ut = prep("UPDATE pgbench_tellers SET tbalance = tbalance + ?1 WHERE tid = ?2");
	sqlite3_stmt *ub = prep("UPDATE pgbench_branches SET bbalance = bbalance + ?1 WHERE bid = ?2");
	sqlite3_stmt *ih = prep("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?1, ?2, ?3, ?4, CURRENT_TIMESTAMP)");
	sqlite3_stmt *end = prep("END");
	long n = 0;
	time_t last = time(NULL);
	for (;;) {
		long aid = rnd(1, 100000 * scale), tid = rnd(1, 10 * scale), bid = rnd(1, scale), delta = rnd(-5000, 5000);
		step(begin);
		sqlite3_bind_int64(ua, 1, delta);
		sqlite3_bind_int64(ua, 2, aid);
		step(ua);
		sqlite3_bind_int64(sa, 1, aid);
		step(sa);
		sqlite3_bind_int64(ut, 1, delta);
		sqlite3_bind_int64(ut, 2, tid);
		step(ut);
		sqlite3_bind_int64(ub, 1, delta);
		sqlite3_bind_int64(ub, 2, bid);
		step(ub);
		sqlite3_bind_int64(ih, 1, tid);
		sqlite3_bind_int64(ih, 2, bid);
		sqlite3_bind_int64(ih, 3, aid);
		sqlite3_bind_int64(ih, 4, delta);
		step(ih);
		step(end);
		n++;
		time_t now = time(NULL);
		if (now - last >= 5) {
			printf("tpcb: %ld transactions\n", n);
			fflush(stdout);
			last = now;
		}
	}
}
