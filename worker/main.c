/* main.c - pcfs-worker: runs built-in workloads on behalf of the daemon.
 *
 *   pcfs-worker run LINE                          one workload in this process
 *   pcfs-worker forkserver DEFAULT_TIME_MS        fork/clone tasks on request (fd 3)
 *   pcfs-worker threads GIL DEFAULT_TIME_MS N     run tasks as threads (fd 3)
 *   pcfs-worker pool GIL DEFAULT_TIME_MS NSLOTS   run futures on long-lived slots (fd 3)
 *
 * The daemon is the only intended caller; argument errors exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "spec.h"
#include "wire.h"
#include "worker.h"

#define DEFAULT_TIME_MS 10000  /* run mode, without PCFS_DEFAULT_TIME_MS */
#define STACK_PER_FRAME 2048   /* `stack` frame (1 KiB buffer) plus generous overhead */
#define STACK_SLACK (1 << 20)

void wlog(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	/* One write, so concurrent workers' lines do not interleave mid-line. */
	dprintf(STDERR_FILENO, "pcfs-worker: %.*s\n", n, buf);
}

void fd_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len)
{
	(void)ctx;
	while (len > 0) {
		ssize_t n = write(stream, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;  /* nowhere to report it; EPIPE already raised SIGPIPE */
		}
		buf += n;
		len -= (size_t)n;
	}
}

void send_output(int sock, uint32_t type, uint64_t id, int stream, const char *buf,
		 size_t len)
{
	while (len > 0) {
		size_t n = len < WORKER_OUTPUT_CHUNK ? len : WORKER_OUTPUT_CHUNK;

		wire_send(sock, type, id, stream, 0, buf, n, NULL, 0);
		buf += n;
		len -= n;
	}
}

int64_t thread_cputime_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A `stack` task recurses depth= frames on its thread's stack, which must be
 * big enough for them (a default stack is RLIMIT_STACK, 8 MiB typically). */
int thread_stack_need(const struct task_spec *spec, size_t *need)
{
	*need = 0;
	if (spec->workload != WL_STACK || spec->depth == SPEC_UNSET)
		return 0;
	if (__builtin_mul_overflow((size_t)spec->depth, (size_t)STACK_PER_FRAME, need) ||
	    __builtin_add_overflow(*need, (size_t)STACK_SLACK, need))
		return ENOMEM;
	return 0;
}

unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

void reset_signals(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&sa.sa_mask);
	/* SIGKILL, SIGSTOP and the signals glibc keeps for itself refuse with
	 * EINVAL; that is fine, they cannot be left non-default anyway. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

bool watch_parent(void)
{
	pid_t parent = getppid();

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		wlog("PR_SET_PDEATHSIG: %s", strerror(errno));
		return false;
	}
	/* The daemon may have died before prctl took effect: then we have
	 * been reparented already and no signal will ever come. */
	return getppid() == parent;
}

bool check_sock(void)
{
	int type;
	socklen_t sl = sizeof type;

	if (getsockopt(WORKER_SOCK_FD, SOL_SOCKET, SO_TYPE, &type, &sl) < 0) {
		wlog("fd %d: %s (expected the daemon's socket)", WORKER_SOCK_FD, strerror(errno));
		return false;
	}
	if (type != SOCK_SEQPACKET) {
		wlog("fd %d is not a SOCK_SEQPACKET socket", WORKER_SOCK_FD);
		return false;
	}
	if (fcntl(WORKER_SOCK_FD, F_SETFD, FD_CLOEXEC) < 0) {
		wlog("fd %d: F_SETFD: %s", WORKER_SOCK_FD, strerror(errno));
		return false;
	}
	return true;
}

/* A strict integer argument in [0, max]. */
static bool arg_uint(const char *what, const char *s, uint64_t max, uint64_t *out)
{
	if (parse_uint(s, max, out) == 0)
		return true;
	wlog("bad %s: '%s'", what, s);
	return false;
}

static int usage(void)
{
	wlog("usage: pcfs-worker run LINE\n"
	     "       pcfs-worker forkserver DEFAULT_TIME_MS\n"
	     "       pcfs-worker threads GIL DEFAULT_TIME_MS N\n"
	     "       pcfs-worker pool GIL DEFAULT_TIME_MS NSLOTS");
	return 2;
}

/* pcfs-worker run LINE: the workload runs here, output on fds 1 and 2. */
static int run_main(const char *line)
{
	const char *env = getenv("PCFS_DEFAULT_TIME_MS");
	uint64_t default_ms = DEFAULT_TIME_MS;
	struct task_spec spec;
	struct wl_ctx ctx;
	char err[256];
	int code;

	if (env && !arg_uint("PCFS_DEFAULT_TIME_MS", env, INT64_MAX, &default_ms))
		return 2;
	if (spec_parse(line, strlen(line), online_cpus(), &spec, err, sizeof err) < 0) {
		wlog("%s", err);
		return 2;
	}
	if (!workload_is_builtin(spec.workload)) {
		wlog("run: %s lines are not run by the worker", workload_name(spec.workload));
		spec_free(&spec);
		return 2;
	}
	ctx = (struct wl_ctx){
		.spec = &spec,
		.default_time_ms = (int64_t)default_ms,
		.out = fd_out,
	};
	code = workload_run(&ctx);
	spec_free(&spec);
	return code;
}

int main(int argc, char **argv)
{
	uint64_t ms, gil, n;

	if (argc == 3 && strcmp(argv[1], "run") == 0)
		return run_main(argv[2]);
	if (argc == 3 && strcmp(argv[1], "forkserver") == 0) {
		if (!arg_uint("DEFAULT_TIME_MS", argv[2], INT64_MAX, &ms))
			return 2;
		return forkserver_main((int64_t)ms);
	}
	if (argc == 5 && strcmp(argv[1], "threads") == 0) {
		if (!arg_uint("GIL", argv[2], 1, &gil) ||
		    !arg_uint("DEFAULT_TIME_MS", argv[3], INT64_MAX, &ms) ||
		    !arg_uint("N", argv[4], UINT32_MAX, &n))
			return 2;
		return threadhost_main(gil == 1, (int64_t)ms, (unsigned)n);
	}
	if (argc == 5 && strcmp(argv[1], "pool") == 0) {
		if (!arg_uint("GIL", argv[2], 1, &gil) ||
		    !arg_uint("DEFAULT_TIME_MS", argv[3], INT64_MAX, &ms) ||
		    !arg_uint("NSLOTS", argv[4], POOL_SLOTS_MAX, &n))
			return 2;
		if (n == 0) {
			wlog("bad NSLOTS: '%s'", argv[4]);
			return 2;
		}
		return poolhost_main(gil == 1, (int64_t)ms, (unsigned)n);
	}
	return usage();
}
