/* fsbench.c - the C harness behind bench/run's rows that time single
 * requests: it drives pcfs through its files exactly as a program would (no
 * shell, no fork of cat) and measures the baseline the same way in the same
 * run, so the ratio compares like with like.
 *
 *   fsbench spawn-latency MNT N
 *       N times: open MNT/spawn, write "exec /bin/true\n", read the id back on
 *       the same descriptor, close; open+read+close MNT/procs/ID/wait.
 *       Alternating with it, N times posix_spawn(/bin/true) + waitpid.
 *       Prints "pcfs MEDIAN MIN MAX" and "posix_spawn MEDIAN MIN MAX" (ms).
 *   fsbench run-latency MNT N
 *       N times, on one descriptor of MNT/run kept open (as a program that
 *       runs commands one after another does): write "exec /bin/true\n",
 *       read the `ID CODE` line that comes once it has ended.  Alternating
 *       with it, N times posix_spawn(/bin/true) + waitpid.  Prints "pcfs
 *       MEDIAN MIN MAX" and "posix_spawn MEDIAN MIN MAX" (ms).
 *   fsbench spawn-throughput MNT N BATCH
 *       N `exec /bin/true` written to MNT/spawn BATCH lines per write; the ids
 *       are read back on the same descriptor and every task is waited for
 *       through MNT/wait, a batch at a time: its range written, its BATCH
 *       `ID CODE` lines read (batch k is waited for once batch k+1 is
 *       written, so two batches are in flight).  The same again with a read
 *       of every task's procs/ID/wait instead.  Then N posix_spawns keeping 2
 *       in flight.  Prints "pcfs SECONDS TASKS/S", "pcfs-each SECONDS
 *       TASKS/S" and "posix_spawn SECONDS TASKS/S".
 *   fsbench spawn MNT N BATCH LINE
 *       Only the pcfs half of spawn-throughput (procs/ID/wait per task), with
 *       any task line (for the scale row's 10,000 finished tasks); prints
 *       "pcfs SECONDS TASKS/S".
 *   fsbench spawn-batched MNT N BATCH LINE
 *       Only the pcfs half of spawn-throughput (waited through MNT/wait, a
 *       batch at a time), with any task line; prints "pcfs SECONDS TASKS/S".
 *   fsbench read N FILE...
 *       N rounds of open+read+close of each FILE in turn (after 100 unmeasured
 *       ones).  Prints "FILE MEDIAN MIN MAX" for each (microseconds).
 *   fsbench stat-status MNT N ID...
 *       N times, for a random ID of the list: stat MNT/procs/ID/status, then
 *       open+read+close it.  Prints "stat-status P50 P99 MAX" (microseconds).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The value at fraction q (0..1) of the sorted samples v[0..n). */
static double quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void print_stats(const char *name, double *v, size_t n, double scale)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("%s %.4f %.4f %.4f\n", name, quantile(v, n, 0.5) * scale, v[0] * scale,
	       v[n - 1] * scale);
}

/* Read one file whole into buf (at most len - 1 bytes); returns the length. */
static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t used = 0;
	ssize_t n;
	while (used < len - 1 && (n = read(fd, buf + used, len - 1 - used)) > 0)
		used += (size_t)n;
	close(fd);
	buf[used] = '\0';
	return (ssize_t)used;
}

static void wait_task(const char *mnt, unsigned long id)
{
	char path[4096], buf[64];
	snprintf(path, sizeof(path), "%s/procs/%lu/wait", mnt, id);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		die(path);
}

/* Read ids (one per line) from fd until `want` have come. */
static void read_ids(int fd, unsigned long *ids, size_t want)
{
	char buf[8192];
	size_t got = 0;
	unsigned long cur = 0;
	while (got < want) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n == 0)
				fprintf(stderr, "spawn: EOF after %zu of %zu ids\n", got, want);
			die("read spawn");
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = cur * 10 + (unsigned long)(buf[i] - '0');
			} else if (buf[i] == '\n') {
				if (got < want)
					ids[got++] = cur;
				cur = 0;
			} else {
				fprintf(stderr, "spawn replied: %.*s\n", (int)(n - i), buf + i);
				exit(1);
			}
		}
	}
}

/* One pcfs spawn through the files, waited; returns microseconds. */
static double pcfs_spawn_line(const char *mnt, const char *spawn, const char *line)
{
	size_t len = strlen(line);
	double t0 = now_us();
	int fd = open(spawn, O_RDWR);
	if (fd < 0)
		die(spawn);
	if (write(fd, line, len) != (ssize_t)len)
		die("write spawn");
	unsigned long id;
	read_ids(fd, &id, 1);
	close(fd);
	wait_task(mnt, id);
	return now_us() - t0;
}

static double pcfs_spawn_once(const char *mnt, const char *spawn)
{
	return pcfs_spawn_line(mnt, spawn, "exec /bin/true\n");
}

/* Resource control's price: an unlimited task and a limited one (a cgroup
 * of its own, joined by a clone child before exec) alternate. */
static void limit_latency(const char *mnt, int n, const char *limited)
{
	char spawn[4096];
	snprintf(spawn, sizeof(spawn), "%s/spawn", mnt);
	double *p = malloc((size_t)n * sizeof(*p)), *l = malloc((size_t)n * sizeof(*l));
	if (!p || !l)
		die("malloc");
	char line[1024];
	snprintf(line, sizeof(line), "%s\n", limited);
	for (int i = -10; i < n; i++) {
		double tp = pcfs_spawn_once(mnt, spawn);
		double tl = pcfs_spawn_line(mnt, spawn, line);
		if (i >= 0) {
			p[i] = tp;
			l[i] = tl;
		}
	}
	print_stats("pcfs", p, (size_t)n, 1e-3);
	print_stats("limited", l, (size_t)n, 1e-3);
	free(p);
	free(l);
}

static double posix_spawn_once(void)
{
	char *args[] = { "true", NULL };
	double t0 = now_us();
	pid_t pid;
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ) != 0)
		die("posix_spawn");
	waitpid(pid, NULL, 0);
	return now_us() - t0;
}

/* The two alternate, iteration by iteration, so that whatever else the
 * machine does weighs on both alike. */
static void spawn_latency(const char *mnt, int n)
{
	char spawn[4096];
	snprintf(spawn, sizeof(spawn), "%s/spawn", mnt);
	double *p = malloc((size_t)n * sizeof(*p)), *b = malloc((size_t)n * sizeof(*b));
	if (!p || !b)
		die("malloc");
	for (int i = -10; i < n; i++) {   /* 10 unmeasured: lookups cached */
		double tp = pcfs_spawn_once(mnt, spawn);
		double tb = posix_spawn_once();
		if (i >= 0) {
			p[i] = tp;
			b[i] = tb;
		}
	}
	print_stats("pcfs", p, (size_t)n, 1e-3);
	print_stats("posix_spawn", b, (size_t)n, 1e-3);
	free(p);
	free(b);
}

/* One `exec /bin/true` started and waited for through the descriptor of
 * MNT/run; returns microseconds. */
static double pcfs_run_once(int fd)
{
	static const char line[] = "exec /bin/true\n";
	char buf[256];
	double t0 = now_us();
	if (write(fd, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1)
		die("write run");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	double t = now_us() - t0;
	if (n <= 0)
		die("read run");
	buf[n] = '\0';
	const char *sp = strchr(buf, ' ');
	if (!sp || strcmp(sp, " 0\n") != 0) {
		fprintf(stderr, "run replied: %s", buf);
		exit(1);
	}
	return t;
}

static void run_latency(const char *mnt, int n)
{
	char run[4096];
	snprintf(run, sizeof(run), "%s/run", mnt);
	int fd = open(run, O_RDWR);
	if (fd < 0)
		die(run);
	double *p = malloc((size_t)n * sizeof(*p)), *b = malloc((size_t)n * sizeof(*b));
	if (!p || !b)
		die("malloc");
	for (int i = -10; i < n; i++) {
		double tp = pcfs_run_once(fd);
		double tb = posix_spawn_once();
		if (i >= 0) {
			p[i] = tp;
			b[i] = tb;
		}
	}
	close(fd);
	print_stats("pcfs", p, (size_t)n, 1e-3);
	print_stats("posix_spawn", b, (size_t)n, 1e-3);
	free(p);
	free(b);
}

/* Wait for ids[0..n) (consecutive) through the descriptor of MNT/wait: write
 * their range, read until n `ID CODE` lines have come. */
static void wait_range(int wfd, const unsigned long *ids, int n)
{
	char line[64], buf[8192];
	int len = snprintf(line, sizeof(line), "%lu-%lu\n", ids[0], ids[n - 1]);
	if (write(wfd, line, (size_t)len) != len)
		die("write wait");
	for (int got = 0; got < n;) {
		ssize_t r = read(wfd, buf, sizeof(buf));
		if (r <= 0)
			die("read wait");
		for (ssize_t i = 0; i < r; i++)
			got += buf[i] == '\n';
	}
}

/* n task lines through MNT/spawn, batch lines per write, every task waited
 * (through MNT/wait a batch at a time, or through each procs/ID/wait).
 * Two batches in flight: batch k is waited for after batch k+1 is written. */
static double pcfs_spawn_batches(const char *mnt, int n, int batch, const char *line,
				 bool each)
{
	char spawn[4096], waitf[4096];
	snprintf(spawn, sizeof(spawn), "%s/spawn", mnt);
	snprintf(waitf, sizeof(waitf), "%s/wait", mnt);
	size_t llen = strlen(line);
	char *text = malloc((size_t)batch * (llen + 1));
	unsigned long *ids = malloc((size_t)n * sizeof(*ids));
	if (!text || !ids)
		die("malloc");
	for (int i = 0; i < batch; i++) {
		memcpy(text + (size_t)i * (llen + 1), line, llen);
		text[(size_t)i * (llen + 1) + llen] = '\n';
	}
	double t0 = now_us();
	int fd = open(spawn, O_RDWR), wfd = each ? -1 : open(waitf, O_RDWR);
	if (fd < 0 || (!each && wfd < 0))
		die(fd < 0 ? spawn : waitf);
	int done = 0, waited = 0;
	while (done < n) {
		int k = n - done < batch ? n - done : batch;
		size_t len = (size_t)k * (llen + 1);
		if (write(fd, text, len) != (ssize_t)len)
			die("write spawn");
		read_ids(fd, ids + done, (size_t)k);
		if (!each && waited < done)   /* the batch before this one */
			wait_range(wfd, ids + waited, done - waited);
		for (; each && waited < done; waited++)
			wait_task(mnt, ids[waited]);
		waited = done;
		done += k;
	}
	if (!each)
		wait_range(wfd, ids + waited, done - waited);
	for (; each && waited < done; waited++)
		wait_task(mnt, ids[waited]);
	close(fd);
	if (wfd >= 0)
		close(wfd);
	double secs = (now_us() - t0) / 1e6;
	free(text);
	free(ids);
	return secs;
}

/* n posix_spawns of /bin/true, 2 in flight. */
static double posix_spawn_two(int n)
{
	char *args[] = { "true", NULL };
	double t0 = now_us();
	int started = 0, inflight = 0;
	while (started < n || inflight) {
		while (started < n && inflight < 2) {
			pid_t pid;
			if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ) != 0)
				die("posix_spawn");
			started++;
			inflight++;
		}
		if (wait(NULL) < 0)
			die("wait");
		inflight--;
	}
	return (now_us() - t0) / 1e6;
}

/* open+read+close of each file in turn, n rounds (after 100 unmeasured). */
static void read_bench(char **files, int nfiles, int n)
{
	double *v = malloc((size_t)n * (size_t)nfiles * sizeof(*v));
	if (!v)
		die("malloc");
	char buf[65536];
	for (int i = -100; i < n; i++) {
		for (int f = 0; f < nfiles; f++) {
			double t0 = now_us();
			if (read_file(files[f], buf, sizeof(buf)) <= 0)
				die(files[f]);
			if (i >= 0)
				v[(size_t)f * (size_t)n + (size_t)i] = now_us() - t0;
		}
	}
	for (int f = 0; f < nfiles; f++)
		print_stats(files[f], v + (size_t)f * (size_t)n, (size_t)n, 1);
	free(v);
}

static void stat_status(const char *mnt, int n, char **ids, int nids)
{
	double *v = malloc((size_t)n * sizeof(*v));
	if (!v)
		die("malloc");
	char path[4096], buf[65536];
	struct stat st;
	srand(7);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/procs/%s/status", mnt, ids[rand() % nids]);
		double t0 = now_us();
		if (stat(path, &st) < 0 || read_file(path, buf, sizeof(buf)) <= 0)
			die(path);
		v[i] = now_us() - t0;
	}
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("stat-status %.1f %.1f %.1f\n", quantile(v, (size_t)n, 0.5),
	       quantile(v, (size_t)n, 0.99), v[n - 1]);
	free(v);
}

static int count_arg(const char *s)
{
	int v = atoi(s);
	if (v <= 0) {
		fprintf(stderr, "fsbench: %s: not a positive count\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "spawn-latency") && argc == 4) {
		spawn_latency(argv[2], count_arg(argv[3]));
	} else if (!strcmp(cmd, "run-latency") && argc == 4) {
		run_latency(argv[2], count_arg(argv[3]));
	} else if (!strcmp(cmd, "spawn-throughput") && argc == 5) {
		int n = count_arg(argv[3]);
		double p = pcfs_spawn_batches(argv[2], n, count_arg(argv[4]), "exec /bin/true", false);
		printf("pcfs %.4f %.1f\n", p, n / p);
		double pe = pcfs_spawn_batches(argv[2], n, count_arg(argv[4]), "exec /bin/true", true);
		printf("pcfs-each %.4f %.1f\n", pe, n / pe);
		double b = posix_spawn_two(n);
		printf("posix_spawn %.4f %.1f\n", b, n / b);
	} else if (!strcmp(cmd, "limit-latency") && argc == 5) {
		limit_latency(argv[2], count_arg(argv[3]), argv[4]);
	} else if (!strcmp(cmd, "limit-throughput") && argc == 6) {
		int n = count_arg(argv[3]);
		double p = pcfs_spawn_batches(argv[2], n, count_arg(argv[4]), "exec /bin/true", false);
		printf("pcfs %.4f %.1f\n", p, n / p);
		double l = pcfs_spawn_batches(argv[2], n, count_arg(argv[4]), argv[5], false);
		printf("limited %.4f %.1f\n", l, n / l);
	} else if (!strcmp(cmd, "spawn") && argc == 6) {
		int n = count_arg(argv[3]);
		double p = pcfs_spawn_batches(argv[2], n, count_arg(argv[4]), argv[5], true);
		printf("pcfs %.4f %.1f\n", p, n / p);
	} else if (!strcmp(cmd, "spawn-batched") && argc == 6) {
		int n = count_arg(argv[3]);
		double p = pcfs_spawn_batches(argv[2], n, count_arg(argv[4]), argv[5], false);
		printf("pcfs %.4f %.1f\n", p, n / p);
	} else if (!strcmp(cmd, "read") && argc >= 4) {
		read_bench(argv + 3, argc - 3, count_arg(argv[2]));
	} else if (!strcmp(cmd, "stat-status") && argc >= 5) {
		stat_status(argv[2], count_arg(argv[3]), argv + 4, argc - 4);
	} else {
		fprintf(stderr, "usage: fsbench spawn-latency MNT N | run-latency MNT N |\n"
				"       spawn-throughput MNT N BATCH |\n"
				"       limit-latency MNT N LINE | limit-throughput MNT N BATCH LINE |\n"
				"       spawn MNT N BATCH LINE | spawn-batched MNT N BATCH LINE |\n"
				"       read N FILE... | stat-status MNT N ID...\n");
		return 2;
	}
	return 0;
}
