/* worker.h - private to pcfs-worker: the modes and what they share. */
#ifndef PCFS_WORKER_H
#define PCFS_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workload.h"

#define WORKER_SOCK_FD 3  /* the daemon's SOCK_SEQPACKET socket (forkserver, threads, pool) */

#define WORKER_OUTPUT_CHUNK 65536     /* largest output message payload a host sends */
#define WORKER_GIL_INTERVAL_US 5000   /* CPython's default switch interval */
#define POOL_SLOTS_MAX 4096           /* slots one pool host may have */

/* `pcfs-worker forkserver`, `pcfs-worker threads` and `pcfs-worker pool`;
 * they return the exit code. */
int forkserver_main(int64_t default_time_ms);
int threadhost_main(bool gil, int64_t default_time_ms, unsigned nthreads);
int poolhost_main(bool gil, int64_t default_time_ms, unsigned nslots);

/* Make the worker die with the daemon (PR_SET_PDEATHSIG SIGKILL).  Returns
 * false if the daemon is already gone. */
bool watch_parent(void);

/* Check that WORKER_SOCK_FD is a SOCK_SEQPACKET socket and mark it
 * close-on-exec.  Returns false (after saying why on stderr) if not. */
bool check_sock(void);

/* Every signal back to its default action, none blocked. */
void reset_signals(void);

/* ctx->out for a process: write(2) everything to fd `stream` (1 or 2). */
void fd_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len);

/* --- shared by the hosts that run workloads in threads -------------------- */

/* Send buf to the daemon as `type` messages (W_TH_OUTPUT, W_PW_OUTPUT) for
 * task or future `id`, a = stream, at most WORKER_OUTPUT_CHUNK bytes each.
 * Errors are dropped: if the daemon is gone, there is no one to tell. */
void send_output(int sock, uint32_t type, uint64_t id, int stream, const char *buf,
		 size_t len);

/* CPU time the calling thread has used, in microseconds (0 if unknown). */
int64_t thread_cputime_us(void);

/* The stack a thread needs to run spec (a deep `stack` workload): its size
 * in bytes in *need, or 0 if the workload has no particular need.  Returns 0,
 * or ENOMEM if it is beyond size_t (a positive errno, as the pthread_attr_*
 * functions return). */
int thread_stack_need(const struct task_spec *spec, size_t *need);

/* What COUNT 0 means to spec_parse(). */
unsigned online_cpus(void);

/* A one-line diagnostic on stderr, prefixed "pcfs-worker: ". */
void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
