/* pools_int.h - the pools room's own: the pool and future model (pool.c) and
 * the Slurm executor's poller (slurm.c).  Included by those files only.
 * Everything runs with `lock` held unless said otherwise.
 */
#ifndef PCFS_POOLS_INT_H
#define PCFS_POOLS_INT_H

#include "pools.h"
#include "slurm.h"

struct run_sender;
struct slurm;

/* The room's state (e->pools). */
struct pools {
	struct pool *first;            /* every pool, newest first */
	uint64_t next_id;
	size_t n;
	struct run_sender *runs;       /* W_PW_RUN batches being built */
	struct slurm *slurm;           /* the Slurm poller, NULL until a pool uses it */
};

/* pool.c, for slurm.c: futures of Slurm pools.  All with `lock` held. */
struct slurm_submit {                /* a future to submit: copied out of the pool */
	uint64_t pool, fut;
	char pool_name[POOL_NAME_MAX + 1];
	char *line;                      /* owned (free) */
	struct slurm_opts opts;
	bool drop;                       /* sbatch runs as cred, the pool's owner */
	struct cred cred;
};
struct slurm_watch {                 /* a job in flight */
	uint64_t pool, fut, job;
	char pool_name[POOL_NAME_MAX + 1];
	int signal;                      /* > 0: scancel --signal it; < 0: a plain scancel (cancel) */
	bool running;                    /* the future is running (as of the last poll) */
};
/* Dequeue what may be submitted now (workers= bounds the jobs in flight). */
size_t pool_slurm_take(struct engine *e, struct slurm_submit **out);
/* sbatch gave `job`; false if the future was cancelled meanwhile (scancel it). */
bool pool_slurm_submitted(struct engine *e, uint64_t pool, uint64_t fut, uint64_t job);
/* sbatch failed: transient (controller down) requeues it first in line;
 * otherwise the future fails with `why`. */
void pool_slurm_unsubmitted(struct engine *e, uint64_t pool, uint64_t fut, bool transient,
			    const char *why);
size_t pool_slurm_watch(struct engine *e, struct slurm_watch **out);
void pool_slurm_signalled(struct engine *e, uint64_t pool, uint64_t fut, int sig);
/* What Slurm says of the job; for a final one, its stdout/stderr text. */
void pool_slurm_update(struct engine *e, uint64_t pool, uint64_t fut, const struct slurm_job *j,
		       const char *out, size_t outlen, const char *err, size_t errlen);

/* slurm.c: the poller (its own thread, started on first use) */
/* Is Slurm usable from here (sbatch on PATH)?  false with a reason. */
bool slurm_available(char *err, size_t errlen);
/* Start the poller thread if it is not running; wake it.  Lock not required. */
int slurm_kick(struct engine *e);
/* Stop the poller (engine_shutdown, before the engine thread goes): scancel
 * the jobs in flight unless [unmount] policy = leave. */
void slurm_stop(struct engine *e);
void slurm_free(struct engine *e);
/* Engine thread, engine lock held: was pid one of the poller's commands?
 * Then its status is handed to the poller and true is returned. */
bool slurm_reaped(struct engine *e, pid_t pid, int status, const struct rusage *ru);

#endif
