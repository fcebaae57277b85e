/* workload.h - the built-in workloads (cpu, io, sleep, mem, cow, stack, noop).
 *
 * They run only inside pcfs-worker processes (a child the fork server forks
 * or clones, an exec'd `pcfs-worker run`, a thread of a thread host, or a
 * pool host's slot thread), never in the daemon.  A workload writes its output through ctx->out so the same code
 * serves a process (fds 1 and 2) and a thread (messages to the daemon).
 */
#ifndef PCFS_WORKLOAD_H
#define PCFS_WORKLOAD_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"

struct gil;  /* a fair (FIFO) lock shared by the threads of one host */

struct wl_ctx {
	const struct task_spec *spec;
	int64_t default_time_ms;     /* when the line has neither time= nor ops= */
	/* Threads: set to a signal number to ask the workload to stop; it
	 * returns -that number at its next check (every few ms at most).
	 * Processes: NULL (signals do the job). */
	atomic_int *stop;
	/* Threads with gil=1: hold it while computing, drop it while waiting,
	 * hand it over every switch interval (5 ms), as CPython's GIL does. */
	struct gil *gil;
	/* Where output goes: stream 1 = stdout, 2 = stderr. */
	void (*out)(struct wl_ctx *ctx, int stream, const char *buf, size_t len);
	void *opaque;                /* for `out` */
};

/* Run the built-in named by ctx->spec->workload.  Returns the exit code
 * (0 = success), or -signo when stopped through ctx->stop. */
int workload_run(struct wl_ctx *ctx);

/* printf to ctx->out */
void wl_printf(struct wl_ctx *ctx, int stream, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct gil *gil_new(int64_t switch_interval_us);
void gil_free(struct gil *g);
void gil_acquire(struct gil *g);
void gil_release(struct gil *g);

#endif
