/* common.c - pcfs-worker: what more than one mode uses (see common.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "spec.h"

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

unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
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

/* --- shared by the hosts that run workloads in threads -------------------- */

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
