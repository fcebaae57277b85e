/* modes.h - private to pcfs-worker: the modes main.c dispatches to.
 *
 * Each returns the worker's exit code.  main.c has parsed and checked the
 * arguments; the modes with fd 3 (all but run) check the socket themselves.
 */
#ifndef PCFS_WORKER_MODES_H
#define PCFS_WORKER_MODES_H

#include <stdbool.h>
#include <stdint.h>

#define POOL_SLOTS_MAX 4096           /* slots one pool host may have */

/* `pcfs-worker run LINE`: one workload in this process (run.c). */
int run_main(const char *line, int64_t default_time_ms);

/* `pcfs-worker forkserver`: fork or clone tasks on request (forkserver.c). */
int forkserver_main(int64_t default_time_ms);

/* `pcfs-worker threads`: run tasks as threads of this process, until EOF
 * or until nthreads of them have ended if nthreads > 0 (threadhost.c). */
int threadhost_main(bool gil, int64_t default_time_ms, unsigned nthreads);

/* `pcfs-worker pool`: nslots (1..POOL_SLOTS_MAX) long-lived slots that run
 * futures (poolhost.c). */
int poolhost_main(bool gil, int64_t default_time_ms, unsigned nslots);

#endif
