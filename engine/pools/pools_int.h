/* pools_int.h - the pools room's own, shared by its files only:
 *   pool.c        the pool and future model: queues, fates, the API, the row
 *   workers.c     the local executor's workers: slots, hosts, their messages
 *   handing.c     the local executor's pipelining: futures handed to slots ahead
 *   slurm_exec.c  the Slurm executor: futures as jobs, the poller's side
 *   slurm.c       the Slurm poller (its own thread)
 *   ctl.c         pools/NAME/ctl and futures/N/ctl
 *   journal.c     pools and futures in the [state] dir's journal, and replay
 *   inputs.c      a pool's command template: checked, and inputs made task lines
 *   queue.c       the pending queue: by priority, then by submission
 *   policy.c      halt= (GNU parallel's --halt), retry failed, future priority=
 *   after.c       futures that wait for futures: after=, after_any=, after_fail=
 * Everything runs with `lock` held unless said otherwise.
 */
#ifndef PCFS_POOLS_INT_H
#define PCFS_POOLS_INT_H

#include <time.h>

#include "origin.h"
#include "pools.h"
#include "cgroup/cgroup.h"
#include "slurm.h"
#include "template.h"

struct run_sender;
struct slurm;
struct fut_wait;
struct fut_edge;
struct pool;
struct future;

/* An executor: where a pool's futures run.  Every pool has one (executor=,
 * by name in pool.c's `executors` table).  To add one, write NAME.c with its
 * `struct executor` and add a row to that table.  All with `lock` held. */
struct executor {
	const char *name;               /* executor=NAME */
	bool job_options;               /* lines and ctl take Slurm's job options */
	/* Hand out what is pending (the pool is neither paused nor held). */
	void (*dispatch)(struct engine *e, struct pool *p);
	/* workers= or the work there is changed: start or retire workers. */
	void (*workers)(struct engine *e, struct pool *p);
	/* The pool leaves it, or changes its kind of worker: idle workers go. */
	void (*retire_all)(struct engine *e, struct pool *p);
	/* For status: workers ready, and busy. */
	void (*load)(const struct pool *p, unsigned *ready, unsigned *busy);
	/* ctl term/kill/signal on a running future: 0 or -errno. */
	int (*signal)(struct engine *e, struct pool *p, struct future *f, int sig);
	/* A pending future was cancelled: what it waits in outside the pool
	 * (a Slurm job) goes too.  NULL: nothing to do. */
	void (*cancelled)(struct engine *e, struct pool *p, struct future *f);
	/* Replay: f was in flight in job `job` when the daemon stopped; watch it
	 * again (true) or let the pool decide its fate (false).  NULL: false. */
	bool (*readopt)(struct engine *e, struct pool *p, struct future *f, uint64_t job);
	/* The restore is done: look again at work in flight elsewhere. */
	void (*resume)(struct engine *e, struct pool *p);
};
extern const struct executor local_executor, slurm_executor;
const struct executor *executor_by_name(const char *name);

/* The room's state (e->pools). */
struct pools {
	struct pool *first;            /* every pool, newest first */
	uint64_t next_id;
	size_t n;
	struct run_sender *runs;       /* W_PW_RUN batches being built (handing.c) */
	struct slurm *slurm;           /* the Slurm poller, NULL until a pool uses it */
	/* Submits through a template with {#} expand and publish one write at
	 * a time, so the ids they number inputs with are the ids they get.
	 * Taken before reap_lock and lock. */
	pthread_mutex_t seq_lock;
	bool after_ready;              /* some pool has futures after.c made ready */
};


struct future {
	uint64_t id;
	struct future *qnext;          /* the pending queue, or its slot's (at_host) */
	struct future *qprev;          /* the pending queue only (its bucket's list) */
	bool in_queue;                 /* in the pool's pending queue (queue.c) */
	int priority;                  /* priority=: bigger first (queue.c) */
	char *name;                    /* name=, NULL if none (owned) */
	enum future_state state;
	/* handed to a slot, not started (still FUT_PENDING, not in the pool's queue) */
	bool at_host;
	bool revoking;                 /* a W_PW_REVOKE is out for it */
	bool cancel_wanted;            /* ...to cancel it (else it goes back in the queue) */
	unsigned hslot;                /* the slot it was handed to */
	uint64_t ticket;               /* which handing: a revoke's answer names it */
	int exitcode;
	char *error;                   /* NULL until there is one */
	char *line;
	bool slot_marks;               /* line holds {%} markers: filled with the slot it runs on */
	char *env;                     /* packed env= edits (K=V\0 and -K\0...), or NULL */
	bool env_clean;                /* env=-: none of the writer's environment */
	struct origin *origin;         /* the writer's context (its environment), until
					  the future's end; NULL: the daemon's */
	char *cwd;                     /* where it runs (absolute); NULL: the worker's */
	char *stdin_chan, *stdout_chan; /* stdin=/stdout= channels (exec/sh), or NULL */
	char *on_end;                  /* the line's on_end=, or NULL (then the pool's) */
	struct fut_wait *wait;         /* after=: what it waits for (after.c), or NULL */
	struct fut_edge *waiters;      /* futures waiting for this one to end (after.c) */
	size_t nwaiters, capwaiters;
	size_t envlen;
	unsigned attempts, retries;
	unsigned retry_base;           /* attempts before the last `retry` (ctl): retries= counts
					  from there */
	size_t done_pos;               /* its place in done_order + 1; 0: not there */
	int64_t timeout_ms;
	int timer_fd, timer_stage;
	bool timed_out, stopped;       /* stopped: by ctl term/kill (never retried) */
	bool halted;                   /* stopped by the pool's halt=now */
	int stop_sig;
	unsigned slot;
	uint64_t task;
	pid_t child;
	int64_t cpu_us;
	struct timespec submitted, started, ended;
	struct outbuf out[3];
	/* its line's mem_max=, cpus=, ...: its run has a cgroup of its own (cg,
	 * made as it is handed to an idle worker, removed at its end; limits.c) */
	struct spec_limits lim;
	struct cg_group *cg;
	bool oom_killed;               /* its last run was killed by the OOM killer */
	/* Slurm pools (slurm.c): the job's options and id */
	struct slurm_opts sopt;
	uint64_t job;                  /* 0 until sbatch answers */
	bool sl_submitting;            /* handed to the poller, no job id yet */
	bool sl_gone;                  /* Slurm said the job ended: no longer in flight */
	int sl_signal;                 /* a scancel to send: > 0 --signal, < 0 plain; 0 none */
};

struct pslot {
	unsigned n;                    /* 1-based */
	struct host *host;
	uint64_t task;                 /* the worker's /procs id */
	struct future *running;
	struct future *qhead, *qtail;  /* handed to it, not started, in order */
	unsigned nq;
	bool ready;                    /* its thread said W_PW_READY */
	bool retiring;                 /* being removed by a resize or a close */
	bool emptying;                 /* a process slot told W_PW_SLOTS 0: gone at W_PW_GONE */
};

/* The pending queue (queue.c): one FIFO bucket per priority, by priority. */
struct pbucket {
	int prio;
	struct future *head, *tail;
};
struct pqueue {
	struct pbucket *b;             /* lowest priority first; never shrinks */
	size_t n, cap;
	size_t top;                    /* no bucket above it holds a future */
};

/* halt= (policy.c): GNU parallel's --halt WHEN,WHAT=N|P% */
enum halt_when { HALT_NEVER, HALT_SOON, HALT_NOW };
struct halt_rule {
	enum halt_when when;
	bool on_success;               /* success=; else fail= */
	bool percent;                  /* N is a percentage of the futures counted */
	unsigned n;
};

struct pool {
	uint64_t id;
	char name[POOL_NAME_MAX + 1];
	struct pool *next;
	enum task_kind type;
	bool gil, paused;
	bool held;                     /* restored, the restore not done: nothing is handed out,
					  submitted to Slurm or watched there (pool_replay_done) */
	enum pool_state state;
	unsigned target;               /* workers= */
	char *tmpl;                    /* template=: its text (owned), NULL: lines are task lines */
	char *on_end;                  /* on_end=: its futures' hook (owned), NULL: none */

	struct future **fut;           /* by id - 1 */
	size_t nfut, capfut;
	struct pqueue q;               /* pending, not handed out: queue.c */
	size_t queued;
	size_t prefetched;             /* pending futures handed to slots (at_host) */
	uint64_t tickets;
	int64_t avg_run_ns;            /* recent futures' run time (EWMA), 0: none yet */
	bool dispatch_pending;         /* a host's messages freed room: hand out after them */
	int balance_fd;                /* timerfd: look at rebalancing again (-1 until needed) */
	uint64_t *done_order;          /* completion order; 0: a future that ran again */
	size_t ndone, capdone;
	uint64_t running, ndone_ok, nfailed, ncancelled, nskipped;
	uint64_t nwaiting;             /* FUT_WAITING: in no queue (after.c) */
	uint64_t *skips;               /* after.c: decided to skip, not yet ended */
	size_t nskips, capskips;
	bool draining;                 /* after.c is ending the skips */
	bool after_ready;              /* after.c queued futures: dispatch at the turn's end */

	struct pslot **slots;          /* by slot number - 1; NULL when removed */
	size_t nslots;
	struct host *thread_host;      /* thread pools: the one host */
	unsigned failed_starts;        /* workers that died before ever being ready */
	struct timespec first_submit;
	/* finishing rate: futures done in the last window */
	struct timespec rate_t0;
	uint64_t rate_n0;
	double rate;
	const struct executor *ex;      /* executor=: local, or slurm (futures are jobs;
					 * workers= bounds the jobs in flight) */
	struct slurm_opts sopt;
	/* halt= and its count: futures that ended done or failed since it was set
	 * (or since the last retry); of those the pool held then or got since */
	struct halt_rule halt;
	uint64_t halt_ok, halt_failed, halt_base;
	bool halted;                   /* nothing starts; submits refused (ESHUTDOWN) */
	char *halt_why;                /* why (owned), NULL unless halted */
	bool prio_mixed;               /* a future ever had a priority other than 0 */
	uint64_t sl_inflight;          /* submitted (or being submitted), not yet ended in Slurm */
	/* who created it: its owner, and the credentials its work runs with */
	struct owner owner;
	struct cred *cred;             /* owned; NULL: the daemon's own */
	/* ctl mem_max=, cpus=, ...: the pool's workers share one cgroup (cg,
	 * made by the first limit, or the first future with limits; limits.c) */
	struct spec_limits lim;
	struct cg_group *cg;
};


/* ---- limits.c: a pool's and its futures' cgroups ---------------------------------- */
/* The pool's cgroup, made (with its limits) if it has none; its live workers moved in. */
int pool_cg_ensure(struct engine *e, struct pool *p, char *why, size_t whylen);
/* ctl: may the pool take limits l over its own (enforceable here)? */
int pool_limits_check(struct engine *e, const struct pool *p, const struct spec_limits *l,
		      char *err, size_t errlen);
/* ctl: each limit l sets replaces the pool's, written to its live cgroup. */
int pool_limits_apply(struct engine *e, struct pool *p, const struct spec_limits *l, char *err,
		      size_t errlen);
/* Has f limits of its own (its run gets a cgroup, on an idle worker, alone)? */
bool fut_limited(const struct future *f);
/* Does slot s hold a limited future (running or handed): it takes no other. */
bool slot_alone(const struct pslot *s);
/* Just before f's RUN goes to slot s: s's worker into f's cgroup. */
int fut_cg_enter(struct engine *e, struct pool *p, struct pslot *s, struct future *f, char *why,
		 size_t whylen);
/* f's run on s (NULL: not local) ended with code: an OOM kill replaces *why
 * (written to buf) and sets f->oom_killed; the worker leaves f's cgroup,
 * which goes with what is left in it. */
/* f's worker on s leaves f's cgroup (its run is over, or it was taken
 * back before it began), which goes with what is left in it. */
void fut_cg_leave(struct engine *e, struct pool *p, struct pslot *s, struct future *f);
void fut_run_over(struct engine *e, struct pool *p, struct pslot *s, struct future *f, int code,
		  const char **why, char *buf, size_t n);

/* ---- pool.c: the model ---------------------------------------------------------- */
bool fut_final(const struct future *f);
double ts_since(struct timespec a, struct timespec b);   /* 0 if a is unset */
struct timespec mono_now(void);
struct pool *pool_by_id(struct engine *e, uint64_t id);
struct pool *pool_by_name(struct engine *e, const char *name);
bool pool_name_valid(const char *name);
struct future *fut_get(struct pool *p, uint64_t id);
/* How the pool's work runs: as its owner (drop), or as the daemon. */
int pool_run_as(struct engine *e, const struct pool *p, const struct cred **drop, char *err,
		size_t errlen);
void notify_future(struct engine *e, struct pool *p, struct future *f);
/* The notice room hears that f started, or reached its final state. */
void notice_of(struct engine *e, struct pool *p, struct future *f, bool ended);
void fut_set_error(struct future *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- queue.c: the pending queue, by priority then submission ------------------------- */
int queue_init(struct pool *p);
void queue_free(struct pool *p);
/* Make sure priority prio has its bucket: 0 or -ENOMEM.  Done wherever a
 * future gets a priority, so that enqueueing it never allocates. */
int queue_bucket(struct pool *p, int prio);
/* Into the queue; front: first among its priority (a retry). */
void fut_enqueue(struct pool *p, struct future *f, bool front);
/* Into the queue in id order among its priority. */
void fut_enqueue_by_id(struct pool *p, struct future *f);
struct future *fut_queue_first(struct pool *p);
struct future *fut_dequeue(struct pool *p);
/* Out of the queue, if it is there. */
void fut_unqueue(struct pool *p, struct future *f);
/* The highest priority waiting: 0, or -ENOENT when nothing waits. */
int queue_highest(struct pool *p, int *prio);
/* f reached its final state: counted, listed in `completed`, journaled. */
void record_final(struct engine *e, struct pool *p, struct future *f);
void cancel_pending(struct engine *e, struct pool *p, struct future *f, const char *why);
/* A run of f ended, on any executor (code >= 0 exit status, < 0 signal;
 * why: a failure's reason, NULL for the code's): done, failed, or retried. */
void future_ended(struct engine *e, struct pool *p, struct future *f, int code,
		  const char *why);
/* A pool shut down with nothing left becomes closed. */
void maybe_close(struct engine *e, struct pool *p);
/* Hand out what is pending through its executor, unless paused or held. */
void pool_dispatch(struct engine *e, struct pool *p);
int parse_pool_line(struct engine *e, bool slurm, const char *line, size_t len,
		    struct task_spec *spec, struct slurm_opts *lo, char *err, size_t errlen);
/* Why a pool of this type cannot run the line, or NULL. */
const char *pool_spec_refusal(enum task_kind type, const struct task_spec *s);
struct future *fut_new(const char *line);
int fut_apply_spec(struct future *f, const struct task_spec *s, const struct slurm_opts *pool_opts,
		   const struct slurm_opts *line_opts, bool slurm);

/* ---- workers.c: the local executor's workers ---------------------------------------- */
extern const struct host_ops pool_host_ops;
unsigned live_slots(const struct pool *p);
/* Start workers up to workers= (a process pool: one host each). */
void ensure_workers(struct engine *e, struct pool *p);
void retire_over_target(struct engine *e, struct pool *p);
/* Let every idle worker go (busy ones go when their future ends). */
void retire_all(struct engine *e, struct pool *p);
void pool_timer_fired(struct engine *e, uint64_t key);
/* Slot s's worker task is named after f while it runs f (f has a name=),
 * else POOL.SLOT: /top shows what a worker does.  f NULL: it is idle. */
void worker_shows(struct engine *e, struct pool *p, struct pslot *s, const struct future *f);

/* ---- handing.c: futures handed to slots ahead ---------------------------------------- */
/* The local executor's dispatch: hand pending futures to slots with room. */
void local_dispatch(struct engine *e, struct pool *p);
void run_sender_free(struct engine *e);
void slot_hand(struct pool *p, struct pslot *s, struct future *f);
void slot_unlink(struct pool *p, struct pslot *s, struct future *f);
void slot_unhand(struct pool *p, struct pslot *s, struct future *f);
void pool_rebalance(struct engine *e, struct pool *p, struct timespec now);
void fut_fail_unrun(struct engine *e, struct pool *p, struct future *f, const char *why);
void future_started(struct engine *e, struct pool *p, struct pslot *s, struct future *f);
void run_ended(struct engine *e, struct pool *p, struct pslot *s, struct future *f, int code,
	       const char *why);
/* Ask for every future handed to a slot back (to cancel it, or into the queue). */
void revoke_handed(struct pool *p, bool cancel);
/* Ask back the futures handed to slots that one waiting in the queue outranks. */
void revoke_outranked(struct pool *p);
/* Cancel a future handed to a slot (waits for its worker, lock released). */
int cancel_at_host(struct engine *e, struct pool *p, struct future *f);

/* ---- policy.c: halt=, retry, a future's priority= ------------------------------------ */
/* halt=VALUE: never, or now|soon,fail|success=N|P%.  0, or -EINVAL with why. */
int halt_parse(const char *v, struct halt_rule *out, char *err, size_t errlen);
/* "now,fail=3" as ctl shows and takes it; "" for never. */
void halt_format(const struct halt_rule *r, char *buf, size_t len);
/* A halt= took effect: counting starts again; a halted pool runs again. */
void halt_set(struct engine *e, struct pool *p, const struct halt_rule *r);
/* f reached its final state (record_final): counted; the pool halts when
 * the rule is met (which ends other futures: callers expect that). */
void halt_count(struct engine *e, struct pool *p, struct future *f);
/* Halt now: the pool's state says why; what waits is cancelled, and with
 * halt=now what runs is stopped (TERM, KILL after [tasks] kill_grace). */
void pool_halt(struct engine *e, struct pool *p, const char *why);
/* retry: every final future of the states asked runs again, as a new
 * attempt of the same future.  How many, or -errno with the reason. */
long pool_retry(struct engine *e, struct pool *p, bool failed, bool cancelled, char *err,
		size_t errlen);
/* One future runs again (retry, and its replay). */
void fut_again(struct engine *e, struct pool *p, struct future *f);
/* A pending future's priority=: it takes its new place.  0 or -errno. */
int fut_set_priority(struct engine *e, struct pool *p, struct future *f, int prio, char *err,
		     size_t errlen);
/* Pool status: the running futures, `ID` or `ID:NAME`, blank-separated. */
void running_futures(struct pool *p, struct strbuf *out);

/* ---- after.c: futures that wait for futures ------------------------------------------ */
struct fut_wait {
	enum after_kind kind;
	unsigned n, left;              /* ids, and those not ended yet */
	unsigned gen;                  /* which hold: an edge of an older one counts for nothing */
	bool failed;                   /* one of them did not succeed */
	bool decided;                  /* ready or skipped: later ends do nothing */
	bool skip_now;                 /* skipped with no room in the worklist */
	bool cancel;                   /* made ready in a halted pool: cancelled, not run */
	char why[200];                 /* what decided a skip */
	uint64_t ids[];
};
struct fut_edge {
	uint64_t id;                   /* the waiting future */
	unsigned gen;                  /* its wait's gen when the edge was made */
};
/* The line's after= kept with its future: 0 or -ENOMEM. */
int after_take(struct future *f, const struct task_spec *s);
void after_free(struct future *f);
/* Every id of s names a future submitted before this write (first_new is
 * the first id it will give, nnew how many): 0, or -EINVAL with why. */
int after_check(const struct pool *p, const struct task_spec *s, uint64_t first_new,
		uint64_t nnew, char *err, size_t errlen);
/* f (with a wait) waits: its dependencies that ended count now; it may be
 * queued or skipped at once. */
void after_hold(struct engine *e, struct pool *p, struct future *f);
/* d reached its final state: its waiters hear of it (record_final). */
void after_final(struct engine *e, struct pool *p, struct future *d);
/* f, waiting, leaves the wait (to be cancelled): it is FUT_PENDING in no queue. */
void after_unwait(struct pool *p, struct future *f);
/* Every waiting future of p is cancelled with why. */
void after_cancel_all(struct engine *e, struct pool *p, const char *why);
/* The room's turn_end: pools with futures made ready hand them out. */
void after_turn_end(struct engine *e);

/* ---- inputs.c: a pool's template ----------------------------------------------------- */
/* May a pool of this type and executor run text's lines (lock held)?  0,
 * or -EINVAL with the reason. */
int template_check(struct engine *e, const char *text, enum task_kind type,
		   const struct executor *ex, char *err, size_t errlen);
/* One input of a submit: its future's task line, parsed into *spec and
 * *lo; seq is the id the future will have.  0, or -errno with the reason. */
int template_line(struct engine *e, const struct tmpl *t, bool job_options, const char *in,
		  size_t len, uint64_t seq, struct task_spec *spec, struct slurm_opts *lo,
		  char *why, size_t whylen);
/* f's line as it runs on slot (0: not known yet, its markers stay). */
void fut_line(const struct future *f, unsigned slot, struct strbuf *out);

/* ---- journal.c: the [state] dir's records ------------------------------------------- */
extern const struct journal_client pools_journal;
void fut_prefix(const struct pool *p, char *buf, size_t len);
void journal_pool(struct engine *e, const char *kind, const struct pool *p, const char *line);
void journal_created(struct engine *e, const struct pool *p);
void journal_submitted(struct engine *e, struct pool *p, struct future *f);
void journal_running(struct engine *e, struct pool *p, struct future *f);
void journal_requeued(struct engine *e, struct pool *p, struct future *f);
void journal_job(struct engine *e, struct pool *p, struct future *f);
void journal_final(struct engine *e, struct pool *p, struct future *f);
void journal_halted(struct engine *e, struct pool *p);
void journal_again(struct engine *e, struct pool *p, struct future *f);
void journal_priority(struct engine *e, struct pool *p, struct future *f);

/* ---- slurm_exec.c, for slurm.c: futures of Slurm pools.  All with `lock` held. */
struct slurm_submit {                /* a future to submit: copied out of the pool */
	uint64_t pool, fut;
	char pool_name[POOL_NAME_MAX + 1];
	char *line;                      /* owned (free) */
	char *cwd;                       /* where the job runs; NULL: sbatch's default (owned) */
	char *env;                       /* its environment, K=V\0... (owned; NULL: none) */
	size_t envlen;
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
