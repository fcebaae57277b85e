/* worker.h - private to pcfs-worker: the modes and what they share. */
#ifndef PCFS_WORKER_H
#define PCFS_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workload.h"

#define WORKER_SOCK_FD 3  /* the daemon's SOCK_SEQPACKET socket (forkserver, threads) */

/* `pcfs-worker forkserver` and `pcfs-worker threads`; they return the exit code. */
int forkserver_main(int64_t default_time_ms);
int threadhost_main(bool gil, int64_t default_time_ms, unsigned nthreads);

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

/* What COUNT 0 means to spec_parse(). */
unsigned online_cpus(void);

/* A one-line diagnostic on stderr, prefixed "pcfs-worker: ". */
void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
