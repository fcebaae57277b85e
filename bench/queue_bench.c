/* queue_bench.c MOUNT SIZE N - messages through a pcfs queue beside a kernel
 * pipe and an AF_UNIX socketpair, one producer and one consumer process each,
 * in the same run.  Prints one line per transport: name, msgs/s, MB/s.
 *
 * The queue is MOUNT/channels/NAME/{put,get} in message mode (binary data):
 * each write() is one message and each read() returns one, so the producer writes SIZE bytes N times and the
 * consumer reads N messages.  The pipe and the socketpair get the same bytes
 * in SIZE writes and are read in SIZE reads (no message boundaries there). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void produce(int fd, size_t size, long n)
{
	char *buf = malloc(size);
	if (!buf)
		die("malloc");
	memset(buf, 'm', size);
	for (long i = 0; i < n; i++) {
		size_t off = 0;
		while (off < size) {   /* a pcfs put takes a message whole */
			ssize_t w = write(fd, buf + off, size - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				die("write");
			off += (size_t)w;
		}
	}
	free(buf);
}

/* Read `total` bytes (stream) or `n` messages (queue). */
static void consume(int fd, size_t size, long n, int messages)
{
	char *buf = malloc(size);
	if (!buf)
		die("malloc");
	long long left = messages ? n : (long long)size * n;
	while (left > 0) {
		ssize_t r = read(fd, buf, size);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read");
		left -= messages ? 1 : r;
	}
	free(buf);
}

/* Run producer and consumer as two processes over (wfd, rfd); seconds. */
static double run(int wfd, int rfd, size_t size, long n, int messages)
{
	double t0 = now();
	pid_t p = fork();
	if (p < 0)
		die("fork");
	if (p == 0) {
		close(rfd);
		produce(wfd, size, n);
		_exit(0);
	}
	consume(rfd, size, n, messages);
	int st;
	waitpid(p, &st, 0);
	return now() - t0;
}

static void report(const char *name, size_t size, long n, double secs)
{
	printf("%s %.0f %.1f\n", name, (double)n / secs, (double)size * (double)n / secs / 1e6);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: queue_bench MOUNT SIZE N\n");
		return 2;
	}
	const char *mnt = argv[1];
	size_t size = strtoul(argv[2], NULL, 10);
	long n = strtol(argv[3], NULL, 10);
	char path[4096];

	/* a fresh queue with room for the messages in flight */
	char name[64], line[256];
	snprintf(name, sizeof(name), "bench%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/channels/ctl", mnt);
	int ctl = open(path, O_WRONLY);
	int len = snprintf(line, sizeof(line), "queue %s capacity=256 maxmsg=%zu mode=message\n", name, size);
	if (ctl < 0 || write(ctl, line, (size_t)len) != len)
		die(path);
	close(ctl);
	snprintf(path, sizeof(path), "%s/channels/%s/put", mnt, name);
	int put = open(path, O_WRONLY);
	snprintf(path, sizeof(path), "%s/channels/%s/get", mnt, name);
	int get = open(path, O_RDONLY);
	if (put < 0 || get < 0)
		die(path);
	double tq = run(put, get, size, n, 1);
	close(put);
	close(get);
	report("pcfs-queue", size, n, tq);

	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	double tp = run(p[1], p[0], size, n, 0);
	close(p[0]);
	close(p[1]);
	report("pipe", size, n, tp);

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair");
	double ts = run(sv[1], sv[0], size, n, 0);
	report("socketpair", size, n, ts);
	return 0;
}
