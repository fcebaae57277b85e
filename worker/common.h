/* common.h - private to pcfs-worker: what more than one mode uses.
 *
 * Nothing here knows about any mode; the modes call in, never the reverse.
 */
#ifndef PCFS_WORKER_COMMON_H
#define PCFS_WORKER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workload.h"

#define WORKER_SOCK_FD 3  /* the daemon's SOCK_SEQPACKET socket (forkserver, threads, pool) */

/* A one-line diagnostic on stderr, prefixed "pcfs-worker: ". */
void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Make the worker die with the daemon (PR_SET_PDEATHSIG SIGKILL).  Returns
 * false if the daemon is already gone. */
bool watch_parent(void);

/* Check that WORKER_SOCK_FD is a SOCK_SEQPACKET socket and mark it
 * close-on-exec.  Returns false (after saying why on stderr) if not. */
bool check_sock(void);

/* What COUNT 0 means to spec_parse(). */
unsigned online_cpus(void);

/* ctx->out for a process: write(2) everything to fd `stream` (1 or 2). */
void fd_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len);

/* --- shared by the hosts that run workloads in threads -------------------- */

#define WORKER_OUTPUT_CHUNK 65536     /* largest output message payload a host sends */
#define WORKER_GIL_INTERVAL_US 5000   /* CPython's default switch interval */

/* CPU time the calling thread has used, in microseconds (0 if unknown). */
int64_t thread_cputime_us(void);

/* The stack a thread needs to run spec (a deep `stack` workload): its size
 * in bytes in *need, or 0 if the workload has no particular need.  Returns 0,
 * or ENOMEM if it is beyond size_t (a positive errno, as the pthread_attr_*
 * functions return). */
int thread_stack_need(const struct task_spec *spec, size_t *need);

#endif
