/*
 * tree: the process-tree capture tests' target. A parent maps four buffers
 * of PAGES pages each, fills them, then forks:
 *
 *   role 0  the parent
 *   role 1  a child, which forks
 *   role 2  a grandchild
 *   role 3  a child that execs this program again as "tree-exec ..." (a
 *           symlink, so its comm differs) and writes a fresh private buffer
 *   role 4  a child that exits after phase 1
 *
 * Buffers: "private" (MAP_PRIVATE, copy-on-write after fork), "shanon"
 * (MAP_SHARED|MAP_ANONYMOUS), "sysv" (SysV shm) and "memfd" (a shared
 * memfd mapping). Every process writes, in phase k, the private pages p
 * with in_phase(p, 7k + role) and the shared pages p with in_phase(p, 100
 * + k): shared pages are written by several processes at once.
 *
 * Phases follow one wall-clock schedule fixed by the parent before it
 * forks: phase k runs from T0 + k*(PHASE+GAP) for PHASE ms.
 *
 * Output lines (each process prints its own):
 *   proc ROLE PID
 *   buffer ROLE PID NAME ADDR PAGES
 *   phase ROLE K START_NS END_NS     (when it wrote in phase K)
 *   done ROLE PID CHECKSUM           (checksum of its private buffer)
 *
 * Usage: tree PAGES PHASES PHASE_MS GAP_MS SETTLE_MS [WAITFD]
 *        tree-exec ROLE T0_NS PAGES PHASES PHASE_MS GAP_MS
 *        tree cow PAGES PHASES PHASE_MS GAP_MS SETTLE_MS
 *
 * cow: copy-on-write halves. The parent fills "private" and "ro" (both
 * MAP_PRIVATE), forks one child (role 1), and they write "private" by the
 * rule above, the parent only in its upper half and the child only in its
 * lower half; nobody writes "ro" after the fork.
 * With WAITFD, the parent reads one byte from stdin before it starts its
 * schedule (for attach tests).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ps;
static int pages, phases, phase_ms, gap_ms;
static int64_t t0;
static int cow;

static uint64_t splitmix(uint64_t x) {
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static int in_phase(int p, int k) { return splitmix((uint64_t)p * 1000003 + (uint64_t)k) % 3 == 0; }

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t) {
	int64_t d = t - now_ns();
	if (d > 0) {
		struct timespec ts = {d / 1000000000, d % 1000000000};
		nanosleep(&ts, NULL);
	}
}

static void *map_or_die(int flags, int fd) {
	void *p = mmap(NULL, (size_t)pages * ps, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED) {
		perror("tree: mmap");
		exit(1);
	}
	return p;
}

static void fill(char *b, int seed) {
	for (int p = 0; p < pages; p++)
		b[p * ps] = (char)(seed + p);
}

static void print_buf(int role, const char *name, void *b) {
	printf("buffer %d %d %s %lu %d\n", role, getpid(), name, (unsigned long)(uintptr_t)b, pages);
	fflush(stdout);
}

/* run writes the phases of one role; last is the last phase it runs. */
static void run(int role, char *priv, char **shared, int nshared, int last) {
	for (int k = 0; k <= last && k < phases; k++) {
		int64_t start = t0 + (int64_t)k * (phase_ms + gap_ms) * 1000000;
		int64_t end = start + (int64_t)phase_ms * 1000000;
		sleep_until(start);
		int64_t s = now_ns();
		for (int first = 1; first || now_ns() < end; first = 0) {
			for (int p = 0; p < pages; p++) {
				if (in_phase(p, 7 * k + role) && (!cow || (role == 0) == (p >= pages / 2)))
					((volatile uint64_t *)(priv + p * ps))[1 + k] = (uint64_t)(k + 1) * (p + 1) + role;
				for (int i = 0; i < nshared; i++)
					if (in_phase(p, 100 + k))
						((volatile uint64_t *)(shared[i] + p * ps))[1 + role] = (uint64_t)(k + 1) * (p + 1);
			}
		}
		printf("phase %d %d %lld %lld\n", role, k, (long long)s, (long long)now_ns());
		fflush(stdout);
	}
}

static uint64_t checksum(char *b) {
	uint64_t sum = 0;
	uint64_t *w = (uint64_t *)b;
	for (long i = 0; i < (long)pages * ps / 8; i++)
		sum = sum * 31 + (w[i] ^ (uint64_t)i);
	return sum;
}

static void finish(int role, char *priv) {
	printf("done %d %d %llu\n", role, getpid(), (unsigned long long)checksum(priv));
	fflush(stdout);
}

static int cow_main(int argc, char **argv) {
	if (argc != 7)
		return 2;
	cow = 1;
	pages = atoi(argv[2]), phases = atoi(argv[3]), phase_ms = atoi(argv[4]), gap_ms = atoi(argv[5]);
	int settle_ms = atoi(argv[6]);
	char *priv = map_or_die(MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *ro = map_or_die(MAP_PRIVATE | MAP_ANONYMOUS, -1);
	fill(priv, 0), fill(ro, 5);
	printf("proc 0 %d\n", getpid());
	print_buf(0, "private", priv);
	print_buf(0, "ro", ro);
	t0 = now_ns() + (int64_t)settle_ms * 1000000;
	pid_t c = fork();
	if (c == 0) {
		printf("proc 1 %d\n", getpid());
		run(1, priv, NULL, 0, phases - 1);
		finish(1, priv);
		_exit(checksum(ro) == 0);
	}
	run(0, priv, NULL, 0, phases - 1);
	int st;
	waitpid(c, &st, 0);
	finish(0, priv);
	return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

int main(int argc, char **argv) {
	ps = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "cow") == 0)
		return cow_main(argc, argv);
	if (strstr(argv[0], "tree-exec")) {
		if (argc != 7)
			return 2;
		int role = atoi(argv[1]);
		t0 = atoll(argv[2]);
		pages = atoi(argv[3]), phases = atoi(argv[4]), phase_ms = atoi(argv[5]), gap_ms = atoi(argv[6]);
		char *priv = map_or_die(MAP_PRIVATE | MAP_ANONYMOUS, -1);
		fill(priv, role);
		printf("proc %d %d\n", role, getpid());
		print_buf(role, "private", priv);
		run(role, priv, NULL, 0, phases - 1);
		finish(role, priv);
		return 0;
	}
	if (argc < 6)
		return 2;
	pages = atoi(argv[1]), phases = atoi(argv[2]), phase_ms = atoi(argv[3]), gap_ms = atoi(argv[4]);
	int settle_ms = atoi(argv[5]);

	char *priv = map_or_die(MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *shanon = map_or_die(MAP_SHARED | MAP_ANONYMOUS, -1);
	int id = shmget(IPC_PRIVATE, (size_t)pages * ps, IPC_CREAT | 0600);
	if (id < 0) {
		perror("tree: shmget");
		return 1;
	}
	char *sysv = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL); /* gone when the last process detaches */
	if (sysv == (void *)-1) {
		perror("tree: shmat");
		return 1;
	}
	int mfd = memfd_create("tree", 0);
	if (mfd < 0 || ftruncate(mfd, (off_t)pages * ps) < 0) {
		perror("tree: memfd");
		return 1;
	}
	char *memfd = map_or_die(MAP_SHARED, mfd);
	fill(priv, 0), fill(shanon, 1), fill(sysv, 2), fill(memfd, 3);
	char *shared[3] = {shanon, sysv, memfd};
	printf("proc 0 %d\n", getpid());
	print_buf(0, "private", priv);
	print_buf(0, "shanon", shanon);
	print_buf(0, "sysv", sysv);
	print_buf(0, "memfd", memfd);
	if (argc > 6) {
		char c;
		if (read(0, &c, 1) != 1)
			return 1;
	}
	t0 = now_ns() + (int64_t)settle_ms * 1000000;

	pid_t kids[3];
	int nk = 0;
	pid_t c1 = fork();
	if (c1 == 0) {
		pid_t g = fork();
		if (g == 0) {
			printf("proc 2 %d\n", getpid());
			run(2, priv, shared, 3, phases - 1);
			finish(2, priv);
			_exit(0);
		}
		printf("proc 1 %d\n", getpid());
		run(1, priv, shared, 3, phases - 1);
		waitpid(g, NULL, 0);
		finish(1, priv);
		_exit(0);
	}
	kids[nk++] = c1;
	pid_t c3 = fork();
	if (c3 == 0) {
		char exe[4096], a[6][32];
		snprintf(exe, sizeof exe, "%s-exec", argv[0]);
		snprintf(a[0], 32, "3"), snprintf(a[1], 32, "%lld", (long long)t0), snprintf(a[2], 32, "%d", pages);
		snprintf(a[3], 32, "%d", phases), snprintf(a[4], 32, "%d", phase_ms), snprintf(a[5], 32, "%d", gap_ms);
		execl(exe, exe, a[0], a[1], a[2], a[3], a[4], a[5], (char *)NULL);
		perror("tree: exec");
		_exit(1);
	}
	kids[nk++] = c3;
	pid_t c4 = fork();
	if (c4 == 0) {
		printf("proc 4 %d\n", getpid());
		run(4, priv, shared, 3, 1);
		finish(4, priv);
		_exit(0);
	}
	kids[nk++] = c4;
	run(0, priv, shared, 3, phases - 1);
	int bad = 0;
	for (int i = 0; i < nk; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	finish(0, priv);
	return bad;
}
