/* pool.c - executors: pools of worker processes or threads running futures.
 *
 * concurrent.futures as an engine object.  A pool has a FIFO queue of
 * pending futures and `workers` slots.  Each slot lives in a pcfs-worker host
 * in `pool` mode: a process pool has one host (one process) per slot, a
 * thread pool one host whose slots are threads.  A slot runs one future at a
 * time: built-ins inside the slot itself (the cost of a process is paid once
 * per worker, not per future), exec/sh as a child of the worker.
 *
 * Pipelining.  A slot is handed futures ahead (its W_PW_RUNs go out in
 * batches) and queues them, so it never waits a round trip between two;
 * how many depends on how long the pool's futures take: about
 * `[pools] ahead` of work, at most `[pools] depth`, and just one while
 * nothing has been measured or while the slot's running future has already
 * run longer than the budget (so a long future does not hold short ones
 * back for long, and a pool of long futures hands out one at a time, as
 * before).  A handed future stays `pending` until its slot says W_PW_START,
 * which it sends before running it: `running`, `started`, timeouts and
 * attempts count from there.  Until then it can be taken back (W_PW_REVOKE)
 * to cancel it, on pause and `shutdown cancel`; a retired slot gives its
 * queue back by itself; a dead worker's queue goes back to the pool's queue
 * (in id order) and only its running future fails.
 *
 * Workers are tasks in /procs too (processes, or the slot threads of a thread
 * pool), so everything a task shows, a worker shows.  A worker that dies fails
 * only the future it was running (or retries it) and is replaced; the pool
 * goes on (unlike Python's BrokenProcessPool).
 *
 * Every future reaches exactly one final state (done, failed, cancelled) and
 * is appended to the pool's completion list exactly once, at that moment.
 * All of this runs under the engine lock; the engine thread feeds it host
 * messages, host deaths and timeouts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "pools_int.h"
#include "channels/channels.h"
#include "exec/exec.h"
#include "persist/persist.h"

struct future {
	uint64_t id;
	struct future *qnext;          /* the pending queue, or its slot's (at_host) */
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
	char *env;                     /* packed K=V\0... from env=, or NULL */
	char *stdin_chan, *stdout_chan; /* stdin=/stdout= channels (exec/sh), or NULL */
	size_t envlen;
	unsigned attempts, retries;
	int64_t timeout_ms;
	int timer_fd, timer_stage;
	bool timed_out, stopped;       /* stopped: by ctl term/kill (never retried) */
	int stop_sig;
	unsigned slot;
	uint64_t task;
	pid_t child;
	int64_t cpu_us;
	struct timespec submitted, started, ended;
	struct outbuf out[3];
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

	struct future **fut;           /* by id - 1 */
	size_t nfut, capfut;
	struct future *qhead, *qtail;
	size_t queued;
	size_t prefetched;             /* pending futures handed to slots (at_host) */
	uint64_t tickets;
	int64_t avg_run_ns;            /* recent futures' run time (EWMA), 0: none yet */
	bool dispatch_pending;         /* a host's messages freed room: hand out after them */
	int balance_fd;                /* timerfd: look at rebalancing again (-1 until needed) */
	uint64_t *done_order;          /* completion order */
	size_t ndone, capdone;
	uint64_t running, ndone_ok, nfailed, ncancelled;

	struct pslot **slots;          /* by slot number - 1; NULL when removed */
	size_t nslots;
	struct host *thread_host;      /* thread pools: the one host */
	unsigned failed_starts;        /* workers that died before ever being ready */
	struct timespec first_submit;
	/* finishing rate: futures done in the last window */
	struct timespec rate_t0;
	uint64_t rate_n0;
	double rate;
	/* executor=slurm: futures are jobs (slurm.c); workers= bounds the jobs in flight */
	bool slurm;
	struct slurm_opts sopt;
	uint64_t sl_inflight;          /* submitted (or being submitted), not yet ended in Slurm */
	/* who created it: its owner, and the credentials its work runs with */
	struct owner owner;
	struct cred *cred;             /* owned; NULL: the daemon's own */
};

static const char *const pool_state_names[] = {
	[POOL_RUNNING] = "running", [POOL_SHUTDOWN] = "shutdown", [POOL_CLOSED] = "closed",
};
static const char *const future_state_names[] = {
	[FUT_PENDING] = "pending", [FUT_RUNNING] = "running", [FUT_DONE] = "done",
	[FUT_FAILED] = "failed",   [FUT_CANCELLED] = "cancelled",
};

const char *pool_state_name(enum pool_state s) { return pool_state_names[s]; }
const char *future_state_name(enum future_state s) { return future_state_names[s]; }

static const struct host_ops pool_host_ops;

static bool fut_final(const struct future *f)
{
	return f->state == FUT_DONE || f->state == FUT_FAILED || f->state == FUT_CANCELLED;
}

static double since(struct timespec a, struct timespec b)
{
	if (!a.tv_sec && !a.tv_nsec)
		return 0;
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static struct timespec now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static struct pool *pool_by_id(struct engine *e, uint64_t id)
{
	for (struct pool *p = e->pools->first; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static struct future *fut_get(struct pool *p, uint64_t id)
{
	return id >= 1 && id <= p->nfut ? p->fut[id - 1] : NULL;
}

static void notify_future(struct engine *e, struct pool *p, struct future *f)
{
	engine_notify_locked(e, OBJ_FUTURE, FUTURE_KEY(p->id, f->id));
}

static void set_error(struct future *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct future *f, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(f->error);
	f->error = s;
}

/* ---- workers ---------------------------------------------------------------- */

static void pool_dispatch(struct engine *e, struct pool *p);
static void maybe_close(struct engine *e, struct pool *p);
/* the [state] dir's records (at the end of this file) */
static void journal_pool(struct engine *e, const char *kind, const struct pool *p,
			 const char *line);
static void journal_created(struct engine *e, const struct pool *p);
static void journal_submitted(struct engine *e, struct pool *p, struct future *f);
static void journal_running(struct engine *e, struct pool *p, struct future *f);
static void journal_requeued(struct engine *e, struct pool *p, struct future *f);
static void journal_job(struct engine *e, struct pool *p, struct future *f);
static void journal_final(struct engine *e, struct pool *p, struct future *f);
static void fut_prefix(const struct pool *p, char *buf, size_t len);
static void retire_all(struct engine *e, struct pool *p);
static int ask_back(struct pool *p, struct future *f);

static unsigned live_slots(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i] && !p->slots[i]->retiring)
			n++;
	return n;
}

static struct pslot *slot_new(struct pool *p, unsigned n)
{
	if (n > p->nslots) {
		struct pslot **v = realloc(p->slots, n * sizeof(*v));
		if (!v)
			return NULL;
		for (size_t i = p->nslots; i < n; i++)
			v[i] = NULL;
		p->slots = v;
		p->nslots = n;
	}
	struct pslot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->n = n;
	p->slots[n - 1] = s;
	return s;
}

static void slot_free(struct pool *p, struct pslot *s)
{
	p->slots[s->n - 1] = NULL;
	free(s);
}

/* The first free slot number: numbers are reused so workers/1..N stay dense. */
static unsigned free_slot_number(const struct pool *p)
{
	for (size_t i = 0; i < p->nslots; i++)
		if (!p->slots[i])
			return (unsigned)i + 1;
	return (unsigned)p->nslots + 1;
}

/* Who the pool's work runs as (engine_run_as): -EACCES when it may not run. */
static int pool_run_as(struct engine *e, const struct pool *p, const struct cred **drop,
		       char *err, size_t errlen)
{
	struct owner o;
	return engine_run_as(e, p->cred, drop, &o, err, errlen);
}

static int pool_owner(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out)
{
	if (kind != OBJ_POOL && kind != OBJ_FUTURE)
		return -ESRCH;
	const struct pool *p = pool_by_id(e, kind == OBJ_FUTURE ? FUTURE_POOL(id) : id);
	if (!p)
		return -ENOENT;
	*out = p->owner;
	return 0;
}

static struct host *host_new(struct engine *e, struct pool *p, unsigned nslots)
{
	char gil[2] = { p->gil ? '1' : '0', 0 }, deftime[32], count[16];
	snprintf(deftime, sizeof(deftime), "%lld", (long long)e->cfg.default_time_ms);
	snprintf(count, sizeof(count), "%u", nslots);
	char *argv[] = { "pcfs-worker", "pool", gil, deftime, count, NULL };
	int sock;
	const struct cred *drop;
	char why[256];
	if (pool_run_as(e, p, &drop, why, sizeof(why)) < 0) {
		log_add(e, LOG_LVL_ERROR, "pool %s: no worker started: %s", p->name, why);
		return NULL;
	}
	pid_t pid = spawn_host(e, argv, NULL, NULL, drop, WIRE_NO_NICE, &sock);
	if (pid < 0) {
		log_add(e, LOG_LVL_ERROR, "pool %s: cannot start a worker: %s", p->name,
			strerror((int)-pid));
		return NULL;
	}
	struct host *h = host_add(e, pid, sock, &pool_host_ops, p);
	if (!h) {
		kill(pid, SIGKILL);   /* reaped as a stranger */
		close(sock);
	}
	return h;
}

/* Attach a worker task to slot s of host h. */
static bool slot_attach(struct engine *e, struct pool *p, struct pslot *s, struct host *h,
			enum task_kind kind)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "pool %s worker %u", p->name, s->n);
	struct task *t = task_new_worker(e, kind, cmd);
	if (!t)
		return false;
	t->pid = h->pid;
	t->host = h;
	t->pool = p;
	t->slot = s->n;
	snprintf(t->name, sizeof(t->name), "%.50s.%u", p->name, s->n);
	t->owner = p->owner;
	h->live++;
	s->host = h;
	s->task = t->id;
	return true;
}

/* Bring the pool up to `target` live slots (lazily: on the first submit). */
static void ensure_workers(struct engine *e, struct pool *p)
{
	unsigned have = live_slots(p);
	if (p->slurm || have >= p->target || p->state == POOL_CLOSED)
		return;
	unsigned need = p->target - have;
	if (p->type == TASK_PROCESS) {
		for (unsigned i = 0; i < need; i++) {
			struct host *h = host_new(e, p, 1);
			struct pslot *s = h ? slot_new(p, free_slot_number(p)) : NULL;
			if (!s || !slot_attach(e, p, s, h, TASK_PROCESS)) {
				if (s)
					slot_free(p, s);
				if (h)
					kill(h->pid, SIGKILL);   /* reaped; its host record goes */
				return;
			}
		}
		return;
	}
	/* A thread pool: one host, started with its slots, resized with
	 * W_PW_SLOTS N, which means "slots 1..N".  Slots still retiring are taken
	 * back first (the host ends them, says W_PW_GONE, starts them again and
	 * says W_PW_READY), so numbers stay dense and N is the highest in use. */
	struct host *h = p->thread_host;
	bool fresh = !h || h->sock < 0;
	for (size_t i = 0; !fresh && need && i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		if (s && s->retiring) {
			s->retiring = false;
			s->ready = false;
			need--;
		}
	}
	unsigned total = 0;
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i])
			total = (unsigned)i + 1;
	total += need;
	if (fresh) {
		h = host_new(e, p, total);
		if (!h)
			return;
		p->thread_host = h;
	}
	for (unsigned i = 0; i < need; i++) {
		struct pslot *s = slot_new(p, free_slot_number(p));
		if (!s || !slot_attach(e, p, s, h, TASK_THREAD)) {
			if (s)
				slot_free(p, s);
			break;
		}
	}
	if (!fresh)
		wire_send(h->sock, W_PW_SLOTS, 0, total, 0, NULL, 0, NULL, 0);
}

/* End a slot's worker task and forget the slot. */
static void slot_remove(struct engine *e, struct pool *p, struct pslot *s)
{
	struct task *t = task_find(e, s->task);
	if (t && task_live(t)) {
		if (s->host && s->host->live)
			s->host->live--;
		task_ended(e, t, TS_EXITED, 0);
	}
	slot_free(p, s);
}

/* Let a process slot's worker go: EOF makes the host exit; the reaper ends
 * its task (the host record outlives the slot until reaped). */
static void process_slot_release(struct pool *p, struct pslot *s)
{
	if (s->host && s->host->sock >= 0) {
		close(s->host->sock);
		s->host->sock = -1;
	}
	s->host = NULL;
	p->slots[s->n - 1] = NULL;
	free(s);
}

/* Retire a slot: at once if it holds nothing, else once its running future
 * is over and its queue is back in the pool's.  A thread slot's host is told
 * by W_PW_SLOTS (retire_over_target) and says W_PW_GONE; a process slot
 * holding futures is told W_PW_SLOTS 0 here, and goes at its W_PW_GONE. */
static void slot_retire(struct engine *e, struct pool *p, struct pslot *s)
{
	(void)e;
	s->retiring = true;
	if (p->type != TASK_PROCESS || s->emptying)
		return;   /* thread slots leave when the host says W_PW_GONE */
	if (!s->running && !s->nq) {
		process_slot_release(p, s);
		return;
	}
	if (s->host && s->host->sock >= 0 &&
	    wire_send(s->host->sock, W_PW_SLOTS, 0, 0, 0, NULL, 0, NULL, 0) == 0)
		s->emptying = true;
}

static void retire_over_target(struct engine *e, struct pool *p)
{
	unsigned live = live_slots(p);
	for (size_t i = p->nslots; i-- > 0 && live > p->target;) {
		struct pslot *s = p->slots[i];
		if (!s || s->retiring)
			continue;
		slot_retire(e, p, s);
		live--;
	}
	if (p->type == TASK_THREAD && p->thread_host && p->thread_host->sock >= 0) {
		unsigned keep = 0;
		for (size_t i = 0; i < p->nslots; i++)
			if (p->slots[i] && !p->slots[i]->retiring)
				keep = (unsigned)i + 1;
		wire_send(p->thread_host->sock, W_PW_SLOTS, 0, keep, 0, NULL, 0, NULL, 0);
	}
}

/* ---- futures -------------------------------------------------------------- */

static void fut_free(struct engine *e, struct future *f)
{
	engine_close_watched(e, &f->timer_fd);
	out_free(e, &f->out[1]);
	out_free(e, &f->out[2]);
	free(f->error);
	free(f->line);
	free(f->env);
	free(f->stdin_chan);
	free(f->stdout_chan);
	free(f);
}

static void record_final(struct engine *e, struct pool *p, struct future *f)
{
	f->ended = now_mono();
	engine_close_watched(e, &f->timer_fd);
	if (p->ndone == p->capdone) {
		size_t cap = p->capdone ? p->capdone * 2 : 64;
		uint64_t *v = realloc(p->done_order, cap * sizeof(*v));
		if (v) {
			p->done_order = v;
			p->capdone = cap;
		}
	}
	if (p->ndone < p->capdone)
		p->done_order[p->ndone++] = f->id;
	if (f->state == FUT_DONE)
		p->ndone_ok++;
	else if (f->state == FUT_FAILED)
		p->nfailed++;
	else
		p->ncancelled++;
	journal_final(e, p, f);
	notify_future(e, p, f);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

/* A pending future, already taken off its queue (the pool's or a slot's),
 * ends cancelled, with why as its error. */
static void cancel_pending(struct engine *e, struct pool *p, struct future *f, const char *why)
{
	f->state = FUT_CANCELLED;
	set_error(f, "%s", why);
	record_final(e, p, f);
}

static void enqueue(struct pool *p, struct future *f, bool front)
{
	f->state = FUT_PENDING;
	f->qnext = NULL;
	if (front) {
		f->qnext = p->qhead;
		p->qhead = f;
		if (!p->qtail)
			p->qtail = f;
	} else {
		if (p->qtail)
			p->qtail->qnext = f;
		else
			p->qhead = f;
		p->qtail = f;
	}
	p->queued++;
}

static struct future *dequeue(struct pool *p)
{
	struct future *f = p->qhead;
	if (!f)
		return NULL;
	p->qhead = f->qnext;
	if (!p->qhead)
		p->qtail = NULL;
	f->qnext = NULL;
	p->queued--;
	return f;
}

static void unqueue(struct pool *p, struct future *f)
{
	for (struct future **pp = &p->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->qnext) {
		if (*pp != f)
			continue;
		*pp = f->qnext;
		if (p->qtail == f)
			p->qtail = prev;
		f->qnext = NULL;
		p->queued--;
		return;
	}
}

/* stdin=/stdout= on a pool line: the daemon makes the channel's ends (as
 * for a spawned task) and hands the child's ends to the worker with the
 * W_PW_RUN (b: 1 stdin, 2 stdout, in that order). */
static int wire_future(struct engine *e, struct pool *p, struct future *f, int fds[2], int *nfds,
		       int *flags, char *err, size_t errlen)
{
	struct chan_wiring w;
	int rc = chan_wire_prepare_locked(e, f->stdin_chan, f->stdout_chan, &p->owner, &w, err,
					  errlen);
	int out[2] = { -1, -1 };
	*nfds = *flags = 0;
	if (rc == 0 && f->stdout_chan && pipe2(out, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc < 0) {
		chan_wire_release(&w);
		return rc;
	}
	if (w.child_stdin >= 0) {
		fds[(*nfds)++] = w.child_stdin;
		w.child_stdin = -1;
		*flags |= 1;
	}
	if (out[0] >= 0) {
		fcntl(out[0], F_SETFL, O_NONBLOCK);
		if (!chan_wire_attach(e, 0, &w, out[0]))
			close(out[0]);   /* the channel went away: the child writes to nothing */
		fds[(*nfds)++] = out[1];
		*flags |= 2;
	} else {
		chan_wire_attach(e, 0, &w, -1);
	}
	chan_wire_release(&w);
	return 0;
}

/* ---- handing futures to slots ----------------------------------------------- */

/* [pools] ahead: the work (at the pool's recent pace) a slot is handed ahead */
static int64_t ahead_ns(const struct engine *e)
{
	return e->cfg.pool_ahead_ms * 1000000;
}
#define RUN_BATCH_BYTES 65536

/* W_PW_RUNs being built, for one host at a time (engine lock held). */
struct run_sender {
	struct wire_batch b;
	struct host *host;             /* the batch's */
	struct future **fut;           /* the futures in it: handed back if it cannot go */
	size_t nfut, capfut;
	struct strbuf pl;              /* one RUN's payload */
};

static struct run_sender *run_sender(struct engine *e)
{
	if (!e->pools->runs) {
		struct run_sender *r = calloc(1, sizeof(*r));
		if (r && !(r->b.buf = malloc(RUN_BATCH_BYTES))) {
			free(r);
			r = NULL;
		}
		if (r)
			r->b.cap = RUN_BATCH_BYTES;
		e->pools->runs = r;
	}
	return e->pools->runs;
}

static void run_sender_free(struct engine *e)
{
	if (!e->pools->runs)
		return;
	free(e->pools->runs->b.buf);
	free(e->pools->runs->fut);
	sb_free(&e->pools->runs->pl);
	free(e->pools->runs);
	e->pools->runs = NULL;
}

/* The slot number the host knows a slot by. */
static unsigned host_slot(const struct pool *p, const struct pslot *s)
{
	return p->type == TASK_THREAD ? s->n : 1;
}

/* Back in the pool's queue, in id order among what waits there: a future
 * taken back from a slot was submitted after those it passed on the way. */
static void requeue(struct pool *p, struct future *f)
{
	struct future **pp = &p->qhead;
	while (*pp && (*pp)->id < f->id)
		pp = &(*pp)->qnext;
	f->state = FUT_PENDING;
	f->qnext = *pp;
	*pp = f;
	if (!f->qnext)
		p->qtail = f;
	p->queued++;
}

/* Off slot s's queue (f is at_host there). */
static void slot_unlink(struct pool *p, struct pslot *s, struct future *f)
{
	for (struct future **pp = &s->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->qnext) {
		if (*pp != f)
			continue;
		*pp = f->qnext;
		if (s->qtail == f)
			s->qtail = prev;
		break;
	}
	f->qnext = NULL;
	f->at_host = false;
	f->revoking = false;
	s->nq--;
	p->prefetched--;
}

/* Take f back from its slot into the pool's queue (it never started). */
static void unhand(struct pool *p, struct pslot *s, struct future *f)
{
	slot_unlink(p, s, f);
	f->cancel_wanted = false;
	requeue(p, f);
}

/* Send the batch; if it cannot go, its futures go back to the queue (a
 * dying host's death handling, or its next message, tries again). */
static void runs_flush(struct engine *e, struct pool *p)
{
	struct run_sender *r = e->pools->runs;
	if (!r || !r->host)
		return;
	int rc = r->host->sock >= 0 ? wire_batch_send(r->host->sock, &r->b) : -EPIPE;
	r->b.len = 0;
	r->b.n = 0;
	if (rc < 0) {
		for (size_t i = r->nfut; i-- > 0;) {
			struct future *f = r->fut[i];
			struct pslot *s = f->at_host && f->hslot ? p->slots[f->hslot - 1] : NULL;
			if (s)
				unhand(p, s, f);
		}
		p->dispatch_pending = true;
	}
	r->nfut = 0;
	r->host = NULL;
}

/* The RUN payload: line \0 {K=V \0}*. */
static int run_payload(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
		       struct strbuf *pl)
{
	sb_reset(pl);
	sb_add(pl, f->line, strlen(f->line) + 1);
	if (f->env)
		sb_add(pl, f->env, f->envlen);
	sb_printf(pl, "PCFS_ID=%llu", (unsigned long long)f->id);
	sb_addc(pl, '\0');
	sb_printf(pl, "PCFS_SLOT=%u", s->n);
	sb_addc(pl, '\0');
	sb_printf(pl, "PCFS_POOL=%s", p->name);
	sb_addc(pl, '\0');
	sb_printf(pl, "PCFS_MOUNT=%s", e->mountpoint);
	sb_addc(pl, '\0');
	return sb_error(pl);
}

/* A future with stdin=/stdout= channels: its RUN carries descriptors, so it
 * goes alone (after the batch before it, to keep the order). */
/* f fails without having run (sbatch refused it, its channel is gone): exit
 * status 1, as a lost run's, with the reason in its error. */
static void fut_fail_unrun(struct engine *e, struct pool *p, struct future *f, const char *why)
{
	f->state = FUT_FAILED;
	f->exitcode = 1;
	set_error(f, "%s", why);
	record_final(e, p, f);
}

static int send_wired_run(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
			  const struct strbuf *pl)
{
	int fds[2], nfds = 0, flags = 0;
	char why[256];
	int rc = wire_future(e, p, f, fds, &nfds, &flags, why, sizeof(why));
	if (rc == -ENOENT || rc == -EACCES) {
		/* its channel is gone, or is now another's: it fails, never
		 * to run on a channel its owner may not use */
		slot_unlink(p, s, f);
		f->cancel_wanted = false;
		fut_fail_unrun(e, p, f, why);
		p->dispatch_pending = true;   /* the slot has room again */
		return 0;
	}
	if (rc == 0)
		rc = wire_send(s->host->sock, W_PW_RUN, f->id, host_slot(p, s), flags, pl->buf,
			       pl->len, nfds ? fds : NULL, nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);   /* the worker has its copies */
	return rc;
}

/* Put f (just dequeued) on slot s's queue; its RUN goes by send_handed. */
static void hand(struct pool *p, struct pslot *s, struct future *f)
{
	f->at_host = true;
	f->revoking = f->cancel_wanted = false;
	f->hslot = s->n;
	f->ticket = ++p->tickets;
	f->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = f;
	else
		s->qhead = f;
	s->qtail = f;
	s->nq++;
	p->prefetched++;
}

/* Add f's RUN to the batch (its host's), or send it alone if it carries
 * descriptors.  Returns 0 or -errno (f is not on its way). */
static int send_run(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	struct run_sender *r = e->pools->runs;
	int rc = run_payload(e, p, s, f, &r->pl);
	if (rc < 0)
		return rc;
	if (f->stdin_chan || f->stdout_chan) {
		runs_flush(e, p);
		return send_wired_run(e, p, s, f, &r->pl);
	}
	if (r->host != s->host)
		runs_flush(e, p);
	if (r->nfut == r->capfut) {
		size_t c = r->capfut ? r->capfut * 2 : 64;
		struct future **v = realloc(r->fut, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->fut = v;
		r->capfut = c;
	}
	if (!wire_batch_add(&r->b, W_PW_RUN, f->id, host_slot(p, s), 0, r->pl.buf, r->pl.len)) {
		runs_flush(e, p);
		/* too big for any batch (a line near SPEC_LINE_MAX, a large env=):
		 * it goes alone, as a message may be up to WIRE_MAX */
		if (!wire_batch_add(&r->b, W_PW_RUN, f->id, host_slot(p, s), 0, r->pl.buf, r->pl.len))
			return wire_send(s->host->sock, W_PW_RUN, f->id, host_slot(p, s), 0, r->pl.buf,
					 r->pl.len, NULL, 0);
	}
	r->host = s->host;
	r->fut[r->nfut++] = f;
	return 0;
}

/* Send the RUNs of the futures on s's queue from f on (those just handed). */
static void send_handed(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	while (f) {
		struct future *next = f->qnext;
		if (send_run(e, p, s, f) < 0) {
			/* not handed after all: it waits in the queue for the next try */
			unhand(p, s, f);
			p->dispatch_pending = true;
		}
		f = next;
	}
}

static int64_t ns_between(struct timespec a, struct timespec b)
{
	return (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
}

/* How many futures slot s may hold (running + queued) now: see the top. */
static unsigned slot_depth(struct engine *e, const struct pool *p, const struct pslot *s,
			   struct timespec now)
{
	unsigned max = e->cfg.pool_depth;
	int64_t ahead = ahead_ns(e);
	if (max <= 1 || ahead <= 0 || p->avg_run_ns <= 0)
		return 1;
	if (s->running && ns_between(s->running->started, now) > ahead)
		return 1;
	int64_t d = 1 + ahead / p->avg_run_ns;
	return d < (int64_t)max ? (unsigned)d : max;
}

static void arm_future_timer(struct engine *e, struct pool *p, struct future *f)
{
	if (f->timeout_ms == SPEC_UNSET)
		return;
	f->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (f->timer_fd < 0)
		return;
	f->timer_stage = 0;
	arm_timer_ms(f->timer_fd, f->timeout_ms);
	engine_watch(e, f->timer_fd, WATCH_FTIMER, FUTURE_KEY(p->id, f->id));
}

static int64_t running_for(const struct pslot *s, struct timespec now)
{
	return s->running ? ns_between(s->running->started, now) : 0;
}

/* Futures on a slot's queue behind a future that has run longer than the
 * budget are taken back while another slot has nothing to do: they run
 * there instead of waiting.  If the running one is younger, look again
 * when it reaches the budget (a pool timer). */
static void rebalance(struct engine *e, struct pool *p, struct timespec now)
{
	bool idle = false;
	int64_t soonest = -1, ahead = ahead_ns(e);
	for (size_t i = 0; i < p->nslots && !idle; i++) {
		struct pslot *s = p->slots[i];
		idle = s && s->ready && !s->retiring && !s->running && !s->nq;
	}
	if (!idle)
		return;
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		if (!s || !s->nq || !s->running)
			continue;
		int64_t ran = running_for(s, now);
		if (ran > ahead) {
			for (struct future *f = s->qhead; f; f = f->qnext)
				ask_back(p, f);
		} else if (soonest < 0 || ahead - ran < soonest) {
			soonest = ahead - ran;
		}
	}
	if (soonest < 0)
		return;
	if (p->balance_fd < 0) {
		p->balance_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (p->balance_fd < 0)
			return;
		engine_watch(e, p->balance_fd, WATCH_FTIMER, FUTURE_KEY(p->id, 0));
	}
	struct itimerspec its = { .it_value = { .tv_sec = soonest / 1000000000,
						.tv_nsec = soonest % 1000000000 + 100000 } };
	if (its.it_value.tv_nsec >= 1000000000) {
		its.it_value.tv_sec++;
		its.it_value.tv_nsec -= 1000000000;
	}
	timerfd_settime(p->balance_fd, 0, &its, NULL);
}

/* Hand queued futures to slots with room, one per slot in turn (so that
 * futures next to each other in the queue run side by side), then send each
 * slot's RUNs, a host's together.  A slot is topped up only once it has run
 * down to half its depth, so RUNs go out in batches. */
static void pool_dispatch(struct engine *e, struct pool *p)
{
	p->dispatch_pending = false;
	if (p->paused || p->held)
		return;
	if (p->slurm) {
		if (p->qhead)
			slurm_kick(e);   /* the poller submits, outside the lock */
		return;
	}
	if (!run_sender(e))
		return;
	struct timespec now = now_mono();
	struct fill { struct pslot *s; unsigned want; struct future *first; } stack_fill[16], *fill;
	size_t nfill = 0;
	fill = p->nslots <= 16 ? stack_fill : malloc(p->nslots * sizeof(*fill));
	if (!fill)
		return;
	for (size_t i = 0; i < p->nslots && p->qhead; i++) {
		struct pslot *s = p->slots[i];
		if (!s || !s->ready || s->retiring || !s->host || s->host->sock < 0)
			continue;
		unsigned depth = slot_depth(e, p, s, now);
		unsigned held = s->nq + (s->running != NULL);
		if (held >= depth || (held > 0 && held > depth / 2))
			continue;
		fill[nfill++] = (struct fill){ s, depth - held, NULL };
	}
	for (bool more = true; more && p->qhead;) {
		more = false;
		for (size_t i = 0; i < nfill && p->qhead; i++) {
			if (!fill[i].want)
				continue;
			struct future *f = dequeue(p);
			hand(p, fill[i].s, f);
			if (!fill[i].first)
				fill[i].first = f;
			more |= --fill[i].want > 0;
		}
	}
	for (size_t i = 0; i < nfill; i++)
		send_handed(e, p, fill[i].s, fill[i].first);
	runs_flush(e, p);
	if (fill != stack_fill)
		free(fill);
	if (!p->qhead)
		rebalance(e, p, now);
}

/* Slot s says f starts now. */
static void future_started(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	slot_unlink(p, s, f);
	f->cancel_wanted = false;
	f->state = FUT_RUNNING;
	f->attempts++;
	f->slot = s->n;
	f->task = s->task;
	f->child = 0;
	f->started = now_mono();
	s->running = f;
	p->running++;
	journal_running(e, p, f);
	arm_future_timer(e, p, f);
	notify_future(e, p, f);
}

/* A future's run ended (code >= 0 exit status, < 0 signal); decide its fate. */
static void future_ended(struct engine *e, struct pool *p, struct future *f, int code,
			 const char *why);

static void run_ended(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
		      int code, const char *why)
{
	s->running = NULL;
	p->running--;
	/* the pace that decides how far ahead slots are handed futures */
	int64_t ns = ns_between(f->started, now_mono());
	if (ns < 1)
		ns = 1;
	p->avg_run_ns = p->avg_run_ns ? p->avg_run_ns + (ns - p->avg_run_ns) / 8 : ns;
	future_ended(e, p, f, code, why);
}

/* A run of f ended, on any executor: done, failed, or retried (first in line). */
static void future_ended(struct engine *e, struct pool *p, struct future *f, int code,
			 const char *why)
{
	engine_close_watched(e, &f->timer_fd);
	f->exitcode = code;
	if (code == 0 && !why) {
		/* an earlier attempt's failure is not this future's: it is done */
		free(f->error);
		f->error = NULL;
		f->state = FUT_DONE;
		record_final(e, p, f);
		return;
	}
	if (why)
		set_error(f, "%s", why);
	else if (code > 0)
		set_error(f, "exit status %d", code);
	else
		set_error(f, "killed by signal %d%s", -code,
			  f->timed_out ? " (timeout)" : f->stopped ? " (ctl)" : "");
	if (!f->stopped && f->attempts <= f->retries && p->state != POOL_CLOSED) {
		/* run it again, first in line; keep only the last attempt's output */
		out_free(e, &f->out[1]);
		out_free(e, &f->out[2]);
		f->timed_out = false;
		enqueue(p, f, true);
		journal_requeued(e, p, f);
		notify_future(e, p, f);
		return;
	}
	f->state = FUT_FAILED;
	record_final(e, p, f);
}

/* ---- host messages (engine thread) ------------------------------------------ */

static struct pslot *slot_on_host(struct pool *p, struct host *h, unsigned hslot)
{
	if (p->type == TASK_THREAD)
		return hslot >= 1 && hslot <= p->nslots && p->slots[hslot - 1] &&
		       p->slots[hslot - 1]->host == h ? p->slots[hslot - 1] : NULL;
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i] && p->slots[i]->host == h)
			return p->slots[i];
	return NULL;
}

/* Future id of pool p if host h holds it (queued on one of its slots, or
 * running there), with that slot in *sp. */
static struct future *fut_on_host(struct pool *p, struct host *h, uint64_t id, struct pslot **sp)
{
	struct future *f = fut_get(p, id);
	unsigned n = !f ? 0 : f->at_host ? f->hslot : f->state == FUT_RUNNING ? f->slot : 0;
	struct pslot *s = n >= 1 && n <= p->nslots ? p->slots[n - 1] : NULL;
	if (!s || s->host != h || (!f->at_host && s->running != f))
		return NULL;
	*sp = s;
	return f;
}

/* The slot has nothing left: finish retiring it if it is. */
static void slot_settled(struct engine *e, struct pool *p, struct pslot *s)
{
	if (s->retiring && !s->running && !s->nq)
		slot_retire(e, p, s);
}

/* W_PW_REVOKED: f was taken off its slot's queue (taken), or had started. */
static void future_revoked(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
			   bool taken)
{
	if (!taken) {
		f->revoking = false;   /* too late: its W_PW_START came first */
		f->cancel_wanted = false;
	} else if (f->cancel_wanted) {
		slot_unlink(p, s, f);
		f->cancel_wanted = false;
		cancel_pending(e, p, f, "cancelled");
	} else {
		unhand(p, s, f);
	}
	pthread_cond_broadcast(&e->cond);   /* a cancel may wait for this answer */
	notify_future(e, p, f);
	p->dispatch_pending = true;
}

/* Everything slot s was handed and has not started goes back in the queue. */
static void slot_give_back(struct pool *p, struct pslot *s)
{
	while (s->qhead)
		unhand(p, s, s->qhead);
}

static void pool_host_message(struct engine *e, struct host *h, const struct wire_hdr *m,
		       const char *payload, size_t len)
{
	struct pool *p = h->pool;
	struct pslot *s;
	struct future *f;
	switch (m->type) {
	case W_PW_READY:
		s = slot_on_host(p, h, (unsigned)m->a);
		if (!s)
			break;
		s->ready = true;
		p->failed_starts = 0;
		struct task *t = task_find(e, s->task);
		if (t && t->kind == TASK_THREAD)
			t->tid = (pid_t)m->b;
		p->dispatch_pending = true;
		break;
	case W_PW_START:
		f = fut_on_host(p, h, m->id, &s);
		if (f && f->at_host)
			future_started(e, p, s, f);
		break;
	case W_PW_OUTPUT:
		/* a refused RUN's reason comes before its W_PW_DONE, unstarted */
		f = fut_on_host(p, h, m->id, &s);
		if (f && (m->a == 1 || m->a == 2)) {
			out_append(&f->out[m->a], payload, len, e->cfg.output_max);
			notify_future(e, p, f);
		}
		break;
	case W_PW_CHILD:
		f = fut_on_host(p, h, m->id, &s);
		if (f && !f->at_host)
			f->child = (pid_t)m->a;
		break;
	case W_PW_DONE:
		f = fut_on_host(p, h, m->id, &s);
		if (!f)
			break;
		if (f->at_host)
			future_started(e, p, s, f);   /* refused by the host: it ends at once */
		f->cpu_us = m->b;
		run_ended(e, p, s, f, (int)m->a, NULL);
		slot_settled(e, p, s);
		p->dispatch_pending = true;
		break;
	case W_PW_REVOKED:
		f = fut_on_host(p, h, m->id, &s);
		/* b = 0: a retired slot's queue, given back unasked */
		if (f && f->at_host && (m->b == 0 || (uint64_t)m->b == f->ticket)) {
			future_revoked(e, p, s, f, m->a == 1);
			slot_settled(e, p, s);
		}
		break;
	case W_PW_GONE:
		s = slot_on_host(p, h, (unsigned)m->a);
		if (!s)
			break;
		if (s->retiring) {
			slot_give_back(p, s);   /* the host gave it all back; never strand any */
			p->dispatch_pending = true;
		}
		if (s->retiring && !s->running && p->type == TASK_PROCESS)
			process_slot_release(p, s);
		else if (s->retiring && !s->running)
			slot_remove(e, p, s);
		else
			s->ready = false;   /* taken back: it says READY when it is up again */
		break;
	default:
		break;
	}
}

static void pool_host_drained(struct engine *e, struct pool *p)
{
	if (p->dispatch_pending)
		pool_dispatch(e, p);
	maybe_close(e, p);
}

/* A host died (or exited after retiring).  Its running futures fail (or are
 * retried); those queued on its slots go back to the pool's queue; slots
 * the pool still wants get a new worker. */
static void pool_host_died(struct engine *e, struct host *h, const char *why)
{
	struct pool *p = h->pool;
	if (!p)
		return;
	h->pool = NULL;
	if (p->thread_host == h)
		p->thread_host = NULL;
	bool was_ready = false;
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		if (!s || s->host != h)
			continue;
		was_ready |= s->ready;
		slot_give_back(p, s);
		if (s->running) {
			char msg[320];
			snprintf(msg, sizeof(msg), "worker %u died: %s", s->n,
				 why ? why : "it exited");
			run_ended(e, p, s, s->running, -SIGKILL, msg);
		}
		slot_free(p, s);
	}
	pthread_cond_broadcast(&e->cond);   /* a cancel waiting on one of them */
	/* Replace lost workers, but not a worker that cannot even start: that
	 * would be a fork loop.  After three such deaths in a row, stop and say
	 * so; the next submit or resize tries again. */
	if (e->stopping) {
		/* unmounting: workers die on purpose, nothing replaces them */
	} else if (why && !was_ready && ++p->failed_starts >= 3) {
		log_add(e, LOG_LVL_ERROR, "pool %s: workers die before they start (%s); "
			"not replacing them until the next submit or resize", p->name, why);
	} else if (p->state != POOL_CLOSED) {
		ensure_workers(e, p);
	}
	pool_dispatch(e, p);
	maybe_close(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

static void pool_timer_fired(struct engine *e, uint64_t key)
{
	struct pool *p = pool_by_id(e, FUTURE_POOL(key));
	if (p && FUTURE_ID(key) == 0) {   /* the pool's own: rebalance */
		uint64_t ticks;
		if (read(p->balance_fd, &ticks, sizeof(ticks)) == sizeof(ticks))
			pool_dispatch(e, p);
		return;
	}
	struct future *f = p ? fut_get(p, FUTURE_ID(key)) : NULL;
	if (!f || f->timer_fd < 0 || f->state != FUT_RUNNING)
		return;
	uint64_t ticks;
	if (read(f->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	struct pslot *s = p->slots[f->slot - 1];
	if (!s || !s->host || s->host->sock < 0)
		return;
	int sig = f->timer_stage == 0 ? SIGTERM : SIGKILL;
	f->timed_out = true;
	wire_send(s->host->sock, W_PW_STOP, f->id, sig, 0, NULL, 0, NULL, 0);
	if (f->timer_stage++ == 0)
		arm_timer_ms(f->timer_fd, e->cfg.kill_grace_ms);
	else
		engine_close_watched(e, &f->timer_fd);
}

/* Shut down and drained: let the workers go. */
static void maybe_close(struct engine *e, struct pool *p)
{
	if (p->state != POOL_SHUTDOWN || p->queued || p->prefetched || p->running || p->sl_inflight)
		return;
	p->state = POOL_CLOSED;
	retire_all(e, p);
	log_add(e, LOG_LVL_INFO, "pool %s: shut down and drained", p->name);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

/* ---- API -------------------------------------------------------------------- */

static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > POOL_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-") == n;
}

static struct pool *pool_by_name(struct engine *e, const char *name)
{
	for (struct pool *p = e->pools->first; p; p = p->next)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

int engine_pool_create(struct engine *e, const char *name, char *err, size_t errlen)
{
	return engine_pool_create_as(e, name, NULL, err, errlen);
}

int engine_pool_create_as(struct engine *e, const char *name, const struct cred *who,
			  char *err, size_t errlen)
{
	if (!valid_name(name)) {
		snprintf(err, errlen, "bad pool name (use 1-64 of A-Z a-z 0-9 . _ -)");
		return -EINVAL;
	}
	/* The creator's credentials, kept for its workers; without them the
	 * pool cannot exist (it would run as the daemon). */
	struct cred *cred = who ? malloc(sizeof(*cred)) : NULL;
	if (who && !cred)
		return -ENOMEM;
	if (cred)
		*cred = *who;
	pthread_mutex_lock(&e->lock);
	int rc = 0;
	if (pool_by_name(e, name)) {
		rc = -EEXIST;
	} else if (e->pools->n >= e->cfg.max_pools) {
		snprintf(err, errlen, "limit: max_pools=%u", e->cfg.max_pools);
		rc = -ENOSPC;
	} else {
		struct pool *p = calloc(1, sizeof(*p));
		if (!p) {
			rc = -ENOMEM;
		} else {
			p->id = e->pools->next_id++;
			p->balance_fd = -1;
			snprintf(p->name, sizeof(p->name), "%s", name);
			p->owner = who ? (struct owner){ .uid = who->uid, .gid = who->gid } : e->self;
			p->cred = cred;
			cred = NULL;
			p->type = TASK_PROCESS;
			p->target = e->cfg.pool_default_workers ? e->cfg.pool_default_workers
								: e->online_cpus;
			p->next = e->pools->first;
			e->pools->first = p;
			e->pools->n++;
			journal_created(e, p);
		}
	}
	pthread_mutex_unlock(&e->lock);
	free(cred);   /* not taken: the pool was refused */
	if (rc == 0)
		log_add(e, LOG_LVL_INFO, "pool %s created for uid %u", name,
			who ? (unsigned)who->uid : (unsigned)e->self.uid);
	engine_flush_notify(e);
	return rc;
}

static void pool_destroy(struct engine *e, struct pool *p)
{
	engine_close_watched(e, &p->balance_fd);
	for (size_t i = 0; i < p->nfut; i++)
		fut_free(e, p->fut[i]);
	for (size_t i = 0; i < p->nslots; i++)
		free(p->slots[i]);
	free(p->fut);
	free(p->slots);
	free(p->done_order);
	free(p->cred);
	free(p);
}

int engine_pool_remove(struct engine *e, const char *name)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_name(e, name);
	int rc = 0;
	if (!p) {
		rc = -ENOENT;
	} else if (p->state != POOL_CLOSED && (p->nfut || live_slots(p))) {
		rc = -EBUSY;   /* a pool that never ran anything may go at once */
	} else {
		for (struct pool **pp = &e->pools->first; *pp; pp = &(*pp)->next) {
			if (*pp == p) {
				*pp = p->next;
				break;
			}
		}
		for (struct host *h = e->hosts; h; h = h->next)
			if (h->pool == p)
				h->pool = NULL;
		for (struct task *t = e->first; t; t = t->next)
			if (t->pool == p)
				t->pool = NULL;
		e->pools->n--;
		if (e->state) {
			char prefix[POOL_NAME_MAX + 4];
			fut_prefix(p, prefix, sizeof(prefix));
			for (size_t i = 0; i < p->nfut; i++)
				state_remove_output(e, prefix, p->fut[i]->id);
			journal_pool(e, "X", p, NULL);
		}
		pool_destroy(e, p);
	}
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
	return rc;
}

static void pools_free(struct engine *e)
{
	run_sender_free(e);
	for (struct pool *p = e->pools->first, *n; p; p = n) {
		n = p->next;
		pool_destroy(e, p);
	}
	e->pools->first = NULL;
}

int engine_pool_find(struct engine *e, const char *name, uint64_t *id)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_name(e, name);
	if (p)
		*id = p->id;
	pthread_mutex_unlock(&e->lock);
	return p ? 0 : -ENOENT;
}

int engine_pool_list(struct engine *e, uint64_t **ids, char (**names)[POOL_NAME_MAX + 1],
		     size_t *n)
{
	pthread_mutex_lock(&e->lock);
	size_t k = e->pools->n ? e->pools->n : 1;
	*ids = malloc(k * sizeof(**ids));
	*names = malloc(k * sizeof(**names));
	size_t i = 0;
	if (*ids && *names) {
		for (struct pool *p = e->pools->first; p; p = p->next, i++) {
			(*ids)[i] = p->id;
			memcpy((*names)[i], p->name, sizeof(p->name));
		}
	}
	pthread_mutex_unlock(&e->lock);
	*n = i;
	if (!*ids || !*names) {
		free(*ids);
		free(*names);
		return -ENOMEM;
	}
	return 0;
}

int engine_pool_info(struct engine *e, uint64_t id, struct pool_info *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	if (!p) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	o->id = p->id;
	memcpy(o->name, p->name, sizeof(o->name));
	o->type = p->type;
	o->gil = p->gil;
	o->paused = p->paused;
	o->state = p->state;
	o->workers = p->target;
	o->slurm = p->slurm;
	o->slurm_opts = p->sopt;
	o->owner = p->owner;
	for (size_t i = 0; i < p->nslots; i++) {
		if (!p->slots[i] || p->slots[i]->retiring)
			continue;
		o->ready += p->slots[i]->ready;
		o->busy += p->slots[i]->running != NULL;
	}
	if (p->slurm) {   /* no local slots: workers= jobs may be in flight */
		o->ready = p->target;
		o->busy = (unsigned)p->sl_inflight;
	}
	o->submitted = p->nfut;
	o->queued = p->queued + p->prefetched;
	o->prefetched = p->prefetched;
	o->running = p->running;
	o->done = p->ndone_ok;
	o->failed = p->nfailed;
	o->cancelled = p->ncancelled;
	struct timespec now = now_mono();
	o->elapsed = since(p->first_submit, now);
	/* the finishing rate over the last few seconds */
	double dt = since(p->rate_t0, now);
	if (dt >= 2.0 || !p->rate_t0.tv_sec) {
		if (p->rate_t0.tv_sec && dt > 0)
			p->rate = (double)(p->ndone - p->rate_n0) / dt;
		p->rate_t0 = now;
		p->rate_n0 = p->ndone;
	}
	o->rate = p->rate ? p->rate : (o->elapsed > 0 ? (double)p->ndone / o->elapsed : 0);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

/* Ask for every future handed to a slot back (to cancel it, or into the
 * queue).  Answers come as W_PW_REVOKED; what had started runs on. */
static void revoke_handed(struct pool *p, bool cancel)
{
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		for (struct future *f = s ? s->qhead : NULL; f; f = f->qnext) {
			if (ask_back(p, f) == 0 && cancel)
				f->cancel_wanted = true;
		}
	}
}

/* Let every idle worker go (busy ones go when their future ends). */
static void retire_all(struct engine *e, struct pool *p)
{
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i])
			slot_retire(e, p, p->slots[i]);
	if (p->thread_host && p->thread_host->sock >= 0) {
		close(p->thread_host->sock);   /* the host exits; its slot tasks end */
		p->thread_host->sock = -1;
	}
	p->thread_host = NULL;
}

static int reconfigure(struct engine *e, struct pool *p, enum task_kind type, bool gil,
		       char *err, size_t errlen)
{
	if (p->type == type && p->gil == gil)
		return 0;
	if (p->running || p->queued || p->prefetched) {
		snprintf(err, errlen, "type= and gil= change only while nothing is queued or running");
		return -EBUSY;
	}
	/* idle workers of the old kind go; new ones start on the next submit */
	retire_all(e, p);
	p->type = type;
	p->gil = gil;
	return 0;
}

/* executor=local|slurm, Slurm options and workers=, several on one line:
 * all are checked before any applies. */
static int slurm_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen)
{
	int executor = -1;   /* -1 unchanged, 0 local, 1 slurm */
	uint64_t workers = 0;
	struct slurm_opts o;
	char *copy = strdup(line), *save = NULL;
	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	if (p)
		o = p->sopt;
	pthread_mutex_unlock(&e->lock);
	int rc = p ? 0 : -ENOENT;
	for (char *t = strtok_r(copy, " \t", &save); t && rc == 0; t = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(t, '=');
		if (!eq) {
			snprintf(err, errlen, "'%.40s': expected KEY=VALUE", t);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		if (!strcmp(t, "executor")) {
			if (strcmp(eq + 1, "local") && strcmp(eq + 1, "slurm")) {
				snprintf(err, errlen, "executor= is local or slurm");
				rc = -EINVAL;
			}
			executor = !strcmp(eq + 1, "slurm");
		} else if (!strcmp(t, "workers")) {
			if (parse_uint(eq + 1, 4096, &workers) < 0 || workers == 0) {
				snprintf(err, errlen, "workers= takes 1..4096");
				rc = -EINVAL;
			}
		} else if ((rc = slurm_opt_apply(&o, t, eq + 1, err, errlen)) == 0) {
			if (!strcmp(t, "type") || !strcmp(t, "gil"))
				snprintf(err, errlen, "%s= goes on a line of its own (a line of "
					 "several settings takes executor=, workers=, partition=, "
					 "account=, mem=, cpus=, slurm_time=)", t);
			else
				snprintf(err, errlen, "unknown pool setting '%.40s' in a line of "
					 "several (it takes executor=, workers=, partition=, "
					 "account=, mem=, cpus=, slurm_time=; type= and gil= go "
					 "on lines of their own)", t);
			rc = -EINVAL;
		} else if (rc > 0) {
			rc = 0;
		}
	}
	free(copy);
	if (rc == 0 && executor == 1 && !slurm_available(err, errlen))
		rc = -EINVAL;
	if (rc < 0)
		return rc;

	pthread_rwlock_rdlock(&e->reap_lock);
	pthread_mutex_lock(&e->lock);
	p = pool_by_id(e, id);
	if (!p) {
		rc = -ENOENT;
	} else if (executor >= 0 && (bool)executor != p->slurm &&
		   (p->running || p->queued || p->prefetched || p->sl_inflight)) {
		snprintf(err, errlen, "executor= changes only while nothing is queued or running");
		rc = -EBUSY;
	} else {
		if (executor >= 0 && (bool)executor != p->slurm) {
			/* idle local workers go (as for type=); a local pool starts
			 * new ones on the next submit */
			retire_all(e, p);
			p->slurm = executor == 1;
			log_add(e, LOG_LVL_INFO, "pool %s: executor=%s", p->name,
				p->slurm ? "slurm" : "local");
		}
		p->sopt = o;
		if (workers) {
			p->target = (unsigned)workers;
			p->failed_starts = 0;
			if (!p->slurm) {
				if (p->nfut && p->state != POOL_CLOSED)
					ensure_workers(e, p);
				retire_over_target(e, p);
			}
		}
		pool_dispatch(e, p);
		engine_notify_locked(e, OBJ_POOL, p->id);
	}
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);
	engine_flush_notify(e);
	return rc;
}

static bool is_slurm_ctl(const char *line, int nw, const char *word)
{
	static const char *const keys[] = { "executor=", "partition=", "account=", "mem=",
					    "cpus=", "slurm_time=" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strncmp(word, keys[i], strlen(keys[i])))
			return true;
	return nw > 1 && strchr(line, '=') && !strncmp(word, "workers=", 8);
}

static int pool_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen);

int engine_pool_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen)
{
	int rc = pool_ctl(e, id, line, err, errlen);
	if (rc == 0 && e->state) {
		pthread_mutex_lock(&e->lock);
		struct pool *p = pool_by_id(e, id);
		if (p)
			journal_pool(e, "C", p, line);
		pthread_mutex_unlock(&e->lock);
		engine_flush_notify(e);
	}
	return rc;
}

static int pool_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen)
{
	char word[64] = "", arg[64] = "", extra[8] = "";
	int nw = sscanf(line, "%63s %63s %7s", word, arg, extra);
	if (nw <= 0) {
		snprintf(err, errlen, "empty command");
		return -EINVAL;
	}
	if (is_slurm_ctl(line, nw, word))
		return slurm_ctl(e, id, line, err, errlen);
	pthread_rwlock_rdlock(&e->reap_lock);
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	int rc = 0;
	uint64_t v;
	if (!p) {
		rc = -ENOENT;
	} else if (!strncmp(word, "workers=", 8) && nw == 1) {
		if (parse_uint(word + 8, 4096, &v) < 0 || v == 0) {
			snprintf(err, errlen, "workers= takes 1..4096");
			rc = -EINVAL;
		} else {
			p->target = (unsigned)v;
			p->failed_starts = 0;
			if (p->nfut && p->state != POOL_CLOSED)
				ensure_workers(e, p);
			retire_over_target(e, p);
			pool_dispatch(e, p);
		}
	} else if (!strncmp(word, "type=", 5) && nw == 1) {
		if (strcmp(word + 5, "process") && strcmp(word + 5, "thread")) {
			snprintf(err, errlen, "type= is process or thread");
			rc = -EINVAL;
		} else {
			rc = reconfigure(e, p, strcmp(word + 5, "thread") ? TASK_PROCESS : TASK_THREAD,
					 p->gil, err, errlen);
		}
	} else if (!strncmp(word, "gil=", 4) && nw == 1) {
		if (strcmp(word + 4, "0") && strcmp(word + 4, "1")) {
			snprintf(err, errlen, "gil= is 0 or 1");
			rc = -EINVAL;
		} else if (p->type != TASK_THREAD && word[4] == '1') {
			snprintf(err, errlen, "gil=1 applies to thread pools (set type=thread first)");
			rc = -EINVAL;
		} else {
			rc = reconfigure(e, p, p->type, word[4] == '1', err, errlen);
		}
	} else if (!strcmp(word, "shutdown") && (nw == 1 || (nw == 2 && !strcmp(arg, "cancel")))) {
		if (p->state == POOL_RUNNING)
			p->state = POOL_SHUTDOWN;
		if (nw == 2) {
			struct future *f;
			while ((f = dequeue(p)))
				cancel_pending(e, p, f, "cancelled by shutdown");
			/* those handed to slots are cancelled as their workers
			 * give them back (the ones that started first run) */
			revoke_handed(p, true);
		}
		maybe_close(e, p);
		engine_notify_locked(e, OBJ_POOL, p->id);
	} else if (!strcmp(word, "pause") && nw == 1) {
		p->paused = true;
		revoke_handed(p, false);   /* nothing more starts: back to the queue */
	} else if (!strcmp(word, "resume") && nw == 1) {
		p->paused = false;
		pool_dispatch(e, p);
	} else {
		snprintf(err, errlen, "unknown pool command '%.40s' (workers=N, type=process|thread, "
			 "gil=0|1, shutdown [cancel], pause, resume)", line);
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);
	engine_flush_notify(e);
	return rc;
}

/* Check a parsed line against what a pool task may say. */
static int check_pool_spec(const struct pool *p, const struct task_spec *s, unsigned lineno,
			   char *err, size_t errlen)
{
	const char *why = NULL;
	if (s->kind_set && s->kind != p->type)
		why = p->type == TASK_THREAD ? "this pool runs threads: as=process does not apply "
					       "(ctl type=process)"
					     : "this pool runs processes: as=thread does not apply "
					       "(ctl type=thread)";
	else if (s->method != METHOD_DEFAULT)
		why = "method= does not apply to pool tasks: the pool's workers run them";
	else if (s->nice_set)
		why = "nice= does not apply to pool tasks";
	else if (s->gil_set)
		why = "gil= is a pool setting (ctl gil=1)";
	if (!why)
		return 0;
	snprintf(err, errlen, "line %u: %s", lineno, why);
	return -EINVAL;
}

static char *pack_env(const struct task_spec *s, size_t *len)
{
	struct strbuf b = STRBUF_INIT;
	for (size_t i = 0; i < s->nenv; i++)
		sb_add(&b, s->env[i], strlen(s->env[i]) + 1);
	*len = b.len;
	if (!b.len || sb_error(&b)) {
		sb_free(&b);
		return NULL;
	}
	return sb_steal(&b);
}

/* One line of a pool's submit: Slurm options (mem= cpus= ...) are the job's,
 * not the workload's, so a Slurm pool takes them out into *lo first. */
static int parse_pool_line(struct engine *e, bool slurm, const char *line, size_t len,
			   struct task_spec *spec, struct slurm_opts *lo, char *why, size_t whylen)
{
	char *stripped = NULL;
	int rc = 0;
	memset(lo, 0, sizeof(*lo));
	if (slurm)
		rc = slurm_line_opts(line, len, lo, &stripped, why, whylen);
	if (rc == 0)
		rc = spec_parse(stripped ? stripped : line, stripped ? strlen(stripped) : len,
				e->online_cpus, spec, why, whylen);
	free(stripped);
	return rc;
}

/* A pending future of this line, with nothing else set (NULL: no memory). */
static struct future *fut_new(const char *line)
{
	struct future *f = calloc(1, sizeof(*f));
	if (!f || !(f->line = strdup(line))) {
		free(f);
		return NULL;
	}
	f->timer_fd = -1;
	f->out[1].fd = f->out[2].fd = -1;
	f->timeout_ms = SPEC_UNSET;
	return f;
}

/* What a parsed line says of its future: env=, stdin=/stdout=, retries=,
 * timeout=, and a Slurm pool's job options over the pool's.  -ENOMEM. */
static int fut_apply_spec(struct future *f, const struct task_spec *s,
			  const struct slurm_opts *popts, const struct slurm_opts *lo, bool slurm)
{
	f->env = pack_env(s, &f->envlen);
	if ((s->stdin_chan && !(f->stdin_chan = strdup(s->stdin_chan))) ||
	    (s->stdout_chan && !(f->stdout_chan = strdup(s->stdout_chan))))
		return -ENOMEM;
	f->retries = (unsigned)s->retries;
	f->timeout_ms = s->timeout_ms;
	f->sopt = *popts;
	slurm_opts_merge(&f->sopt, lo);
	/* timeout= is the job's time limit in Slurm (whole minutes), unless the
	 * line says slurm_time= */
	if (slurm && f->timeout_ms != SPEC_UNSET && !lo->time_min)
		f->sopt.time_min = slurm_minutes(f->timeout_ms);
	return 0;
}

int engine_pool_submit(struct engine *e, uint64_t id, const char *buf, size_t len,
		       uint64_t **ids, size_t *nids, char *err, size_t errlen)
{
	/* parse everything first: all or nothing */
	struct task_spec *specs = NULL;
	struct slurm_opts *lopts = NULL;   /* Slurm pools: each line's own options */
	size_t nspec = 0, cap = 0, total = 0;
	unsigned lineno = 0;
	int rc = 0;
	bool slurm = false;
	struct slurm_opts popts = { 0 };
	struct owner owner = e->self;
	const struct cred *drop;
	pthread_mutex_lock(&e->lock);
	struct pool *peek = pool_by_id(e, id);
	if (peek) {
		slurm = peek->slurm;
		popts = peek->sopt;
		owner = peek->owner;
		/* work it could not run as its owner is refused here, not later */
		rc = pool_run_as(e, peek, &drop, err, errlen);
	}
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		goto out;
	size_t pos = 0, ll;
	for (const char *line; (line = next_line(buf, len, &pos, &ll));) {
		lineno++;
		if (line_is_blank(line, ll))
			continue;
		if (nspec == cap) {
			cap = cap ? cap * 2 : 8;
			struct task_spec *v = realloc(specs, cap * sizeof(*v));
			struct slurm_opts *lo = v ? realloc(lopts, cap * sizeof(*lo)) : NULL;
			if (v)
				specs = v;
			if (!lo) {
				rc = -ENOMEM;
				goto out;
			}
			lopts = lo;
		}
		char why[256];
		rc = parse_pool_line(e, slurm, line, ll, &specs[nspec], &lopts[nspec], why,
				     sizeof(why));
		if (rc == -ENOMEM)
			goto out;
		if (rc < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			goto out;
		}
		nspec++;
		total += specs[nspec - 1].count;
	}
	if (!nspec) {
		snprintf(err, errlen, "no task line in the write");
		rc = -EINVAL;
		goto out;
	}

	/* wired channels must exist (checked without our lock: it takes it) */
	for (size_t i = 0; i < nspec; i++) {
		char why[256];
		rc = chan_check_wiring(e, &specs[i], &owner, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %zu: %s", i + 1, why);
			goto out;
		}
	}

	pthread_rwlock_rdlock(&e->reap_lock);
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	if (!p) {
		rc = -ENOENT;
		goto unlock;
	}
	for (size_t i = 0; i < nspec && rc == 0; i++)
		rc = check_pool_spec(p, &specs[i], (unsigned)i + 1, err, errlen);
	if (rc < 0)
		goto unlock;
	if (p->slurm != slurm) {
		snprintf(err, errlen, "the pool's executor changed during the write; submit again");
		rc = -EAGAIN;
		goto unlock;
	}
	if (p->state != POOL_RUNNING) {
		snprintf(err, errlen, "pool %s is shut down: no more submits", p->name);
		rc = -ESHUTDOWN;
		goto unlock;
	}
	if (p->queued + p->prefetched + total > e->cfg.max_queued) {
		snprintf(err, errlen, "limit: %zu queued + %zu would exceed max_queued=%u",
			 p->queued + p->prefetched, total, e->cfg.max_queued);
		rc = -EAGAIN;
		goto unlock;
	}
	if (p->nfut + total > UINT32_MAX) {
		snprintf(err, errlen, "limit: a pool holds at most 2^32-1 futures");
		rc = -EAGAIN;
		goto unlock;
	}
	if (p->nfut + total > p->capfut) {
		size_t c = p->capfut ? p->capfut : 64;
		while (c < p->nfut + total)
			c *= 2;
		struct future **v = realloc(p->fut, c * sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			goto unlock;
		}
		p->fut = v;
		p->capfut = c;
	}
	/* allocate them all before any is visible */
	struct future **nf = calloc(total, sizeof(*nf));
	size_t k = 0;
	bool ok = nf != NULL;
	for (size_t i = 0; ok && i < nspec; i++) {
		for (unsigned c = 0; ok && c < specs[i].count; c++) {
			struct future *f = fut_new(specs[i].line);
			if (!f || fut_apply_spec(f, &specs[i], &popts, &lopts[i], slurm) < 0) {
				if (f)
					fut_free(e, f);
				ok = false;
				break;
			}
			nf[k++] = f;
		}
	}
	if (!ok) {
		for (size_t j = 0; j < k; j++)
			fut_free(e, nf[j]);
		free(nf);
		rc = -ENOMEM;
		goto unlock;
	}
	uint64_t *out = realloc(*ids, (*nids + total) * sizeof(**ids));
	if (!out) {
		for (size_t j = 0; j < total; j++)
			fut_free(e, nf[j]);
		free(nf);
		rc = -ENOMEM;
		goto unlock;
	}
	*ids = out;
	struct timespec now = now_mono();
	if (!p->first_submit.tv_sec)
		p->first_submit = now;
	for (size_t j = 0; j < total; j++) {
		struct future *f = nf[j];
		f->id = ++p->nfut;
		f->submitted = now;
		p->fut[f->id - 1] = f;
		enqueue(p, f, false);
		journal_submitted(e, p, f);
		(*ids)[(*nids)++] = f->id;
	}
	free(nf);
	p->failed_starts = 0;
	ensure_workers(e, p);
	pool_dispatch(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
unlock:
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);
	engine_flush_notify(e);
out:
	for (size_t i = 0; i < nspec; i++)
		spec_free(&specs[i]);
	free(specs);
	free(lopts);
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	return rc;
}

int engine_pool_completed(struct engine *e, uint64_t id, size_t from, uint64_t *out, size_t max,
			  size_t *n, bool *more)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	if (!p) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	size_t k = 0;
	for (size_t i = from; i < p->ndone && k < max; i++)
		out[k++] = p->done_order[i];
	*n = k;
	*more = p->state != POOL_CLOSED || from + k < p->ndone;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int engine_pool_worker(struct engine *e, uint64_t id, unsigned slot, uint64_t *task)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	int rc = -ENOENT;
	if (p && slot >= 1 && slot <= p->nslots && p->slots[slot - 1] &&
	    !p->slots[slot - 1]->retiring) {
		*task = p->slots[slot - 1]->task;
		rc = 0;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_future_info(struct engine *e, uint64_t pid, uint64_t fid, struct future_info *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	struct future *f = p ? fut_get(p, fid) : NULL;
	if (!f) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	struct timespec now = now_mono();
	o->pool = pid;
	o->owner = p->owner;
	o->id = fid;
	o->state = f->state;
	o->final = fut_final(f);
	o->exitcode = f->exitcode;
	if (f->error)
		snprintf(o->error, sizeof(o->error), "%s", f->error);
	o->attempts = f->attempts;
	o->retries = f->retries;
	o->slot = f->slot;
	o->task = f->task;
	o->child = f->child;
	o->timeout_ms = f->timeout_ms;
	o->slurm_job = f->job;
	o->queued_for = since(f->submitted, f->started.tv_sec ? f->started :
					    o->final ? f->ended : now);
	o->runtime = f->started.tv_sec ? since(f->started, o->final ? f->ended : now) : 0;
	o->cpu = (double)f->cpu_us / 1e6;
	for (int s = 1; s <= 2; s++) {
		o->out_bytes[s] = f->out[s].len;
		o->out_dropped[s] = f->out[s].dropped;
	}
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int engine_future_cmd(struct engine *e, uint64_t pid, uint64_t fid, struct strbuf *out)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	struct future *f = p ? fut_get(p, fid) : NULL;
	if (f)
		sb_adds(out, f->line);
	pthread_mutex_unlock(&e->lock);
	return !f ? -ENOENT : sb_error(out);
}

bool engine_future_exists(struct engine *e, uint64_t pid, uint64_t fid)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	bool ok = p && fut_get(p, fid);
	pthread_mutex_unlock(&e->lock);
	return ok;
}

uint64_t engine_future_count(struct engine *e, uint64_t pid)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	uint64_t n = p ? p->nfut : 0;
	pthread_mutex_unlock(&e->lock);
	return n;
}

ssize_t engine_future_output(struct engine *e, uint64_t pid, uint64_t fid, int stream,
			     uint64_t off, char *buf, size_t size, uint64_t *total)
{
	if (stream != 1 && stream != 2)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	struct future *f = p ? fut_get(p, fid) : NULL;
	if (!f) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	size_t n = out_copy(&f->out[stream], off, buf, size, total);
	pthread_mutex_unlock(&e->lock);
	return (ssize_t)n;
}

/* Send W_PW_REVOKE for f (at_host), unless one is out already. */
static int ask_back(struct pool *p, struct future *f)
{
	struct pslot *s = p->slots[f->hslot - 1];
	if (f->revoking)
		return 0;
	if (!s || !s->host || s->host->sock < 0)
		return -ESRCH;   /* its host is going: its death gives f back */
	int rc = wire_send(s->host->sock, W_PW_REVOKE, f->id, host_slot(p, s), (int64_t)f->ticket,
			   NULL, 0, NULL, 0);
	if (rc == 0)
		f->revoking = true;
	return rc;
}

#define CANCEL_WAIT_MS 2000   /* for a worker to answer a revoke */

/* Cancel a future handed to a slot: only its worker knows whether it has
 * started, so ask (W_PW_REVOKE) and wait for the answer, lock released.
 * 0: cancelled; -EBUSY: it started first; -EAGAIN: no answer in time. */
static int cancel_at_host(struct engine *e, struct pool *p, struct future *f)
{
	uint64_t pid = p->id, fid = f->id;
	int rc = ask_back(p, f);
	if (rc < 0 && rc != -ESRCH)
		return rc;
	f->cancel_wanted = true;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CANCEL_WAIT_MS / 1000;
	until.tv_nsec += (CANCEL_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	for (;;) {
		int w = pthread_cond_timedwait(&e->cond, &e->lock, &until);
		p = pool_by_id(e, pid);
		f = p ? fut_get(p, fid) : NULL;
		if (!f)
			return -ENOENT;
		if (f->state == FUT_CANCELLED)
			return 0;
		if (f->state != FUT_PENDING)
			return -EBUSY;        /* it started (or ended) first */
		if (!f->at_host) {            /* back in the queue (its worker died) */
			unqueue(p, f);
			cancel_pending(e, p, f, "cancelled");
			maybe_close(e, p);
			return 0;
		}
		if (!f->revoking && !f->cancel_wanted)
			return -EBUSY;        /* the worker said it had started */
		if (w == ETIMEDOUT) {
			f->cancel_wanted = false;   /* if it comes back now, it waits again */
			log_add(e, LOG_LVL_WARN, "pool %s: future %llu: its worker did not answer "
				"the cancel within %d ms", p->name, (unsigned long long)fid,
				CANCEL_WAIT_MS);
			return -EAGAIN;
		}
	}
}

int engine_future_cancel(struct engine *e, uint64_t pid, uint64_t fid)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	struct future *f = p ? fut_get(p, fid) : NULL;
	int rc = 0;
	if (!f) {
		rc = -ENOENT;
	} else if (f->state == FUT_PENDING && f->at_host) {
		rc = cancel_at_host(e, p, f);
	} else if (f->state == FUT_PENDING) {
		unqueue(p, f);
		cancel_pending(e, p, f, "cancelled");
		if (f->job && !f->sl_gone) {
			f->sl_signal = -1;   /* a job waiting in Slurm: scancel it */
			slurm_kick(e);
		}   /* one still being submitted is scancelled once sbatch answers */
		maybe_close(e, p);
	} else if (f->state != FUT_CANCELLED) {
		rc = -EBUSY;   /* running or ended: too late, as in Python */
	}
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
	return rc;
}

int engine_future_ctl(struct engine *e, uint64_t pid, uint64_t fid, const char *cmd,
		      char *err, size_t errlen)
{
	char word[32] = "", arg[32] = "";
	int nw = sscanf(cmd, "%31s %31s", word, arg);
	int sig = 0;
	if (nw == 1 && !strcmp(word, "term"))
		sig = SIGTERM;
	else if (nw == 1 && !strcmp(word, "kill"))
		sig = SIGKILL;
	else if (nw == 2 && !strcmp(word, "signal") && parse_signal(arg, &sig) == 0)
		;
	else {
		snprintf(err, errlen, "unknown command '%.31s' (term, kill, signal N|NAME)", word);
		return -EINVAL;
	}
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	struct future *f = p ? fut_get(p, fid) : NULL;
	int rc = 0;
	if (!f) {
		rc = -ENOENT;
	} else if (f->state != FUT_RUNNING) {
		snprintf(err, errlen, "future %llu is %s, not running (cancel a pending one)",
			 (unsigned long long)fid, future_state_name(f->state));
		rc = -ESRCH;
	} else if (p->slurm) {
		f->stopped = true;
		f->stop_sig = sig;
		f->sl_signal = sig;       /* scancel --signal, by the poller */
		rc = slurm_kick(e);
	} else {
		struct pslot *s = p->slots[f->slot - 1];
		f->stopped = true;
		f->stop_sig = sig;
		rc = s && s->host && s->host->sock >= 0
			     ? wire_send(s->host->sock, W_PW_STOP, f->id, sig, 0, NULL, 0, NULL, 0)
			     : -ESRCH;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* ---- Slurm pools: the poller's side (slurm.c), engine lock held ----------------- */

static struct future *slurm_future(struct engine *e, uint64_t pool, uint64_t fut,
				   struct pool **pp)
{
	struct pool *p = pool_by_id(e, pool);
	*pp = p;
	return p && p->slurm ? fut_get(p, fut) : NULL;
}

size_t pool_slurm_take(struct engine *e, struct slurm_submit **out)
{
	struct slurm_submit *v = NULL;
	size_t n = 0, cap = 0;
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (!p->slurm || p->paused || p->held || p->state == POOL_CLOSED)
			continue;
		while (p->qhead && p->sl_inflight < p->target) {
			if (n == cap) {
				size_t c = cap ? cap * 2 : 16;
				struct slurm_submit *nv = realloc(v, c * sizeof(*nv));
				if (!nv)
					goto out;
				v = nv;
				cap = c;
			}
			struct future *f = p->qhead;
			char *line = strdup(f->line);
			if (!line)
				goto out;
			dequeue(p);
			f->sl_submitting = true;
			f->attempts++;
			p->sl_inflight++;
			v[n] = (struct slurm_submit){ .pool = p->id, .fut = f->id, .line = line,
						      .opts = f->sopt };
			/* sbatch runs as the pool's owner, as its local workers would
			 * (never as the daemon for someone else: a drop that cannot
			 * be done fails the submission) */
			if (p->cred && access_cred_plan(e->self.uid, p->cred) != CRED_KEEP) {
				v[n].drop = true;
				v[n].cred = *p->cred;
			}
			memcpy(v[n].pool_name, p->name, sizeof(p->name));
			n++;
		}
	}
out:   /* out of memory: what is not taken stays queued for the next round */
	*out = v;
	return n;
}

bool pool_slurm_submitted(struct engine *e, uint64_t pool, uint64_t fut, uint64_t job)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (!f)
		return false;
	f->sl_submitting = false;
	f->job = job;
	journal_job(e, p, f);
	if (fut_final(f)) {
		f->sl_signal = -1;        /* cancelled while sbatch ran */
		return false;
	}
	free(f->error);           /* "waiting for Slurm: ..." of an earlier try */
	f->error = NULL;
	notify_future(e, p, f);
	return true;
}

void pool_slurm_unsubmitted(struct engine *e, uint64_t pool, uint64_t fut, bool transient,
			    const char *why)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (!f)
		return;
	f->sl_submitting = false;
	p->sl_inflight--;
	if (fut_final(f)) {
		maybe_close(e, p);
		return;
	}
	if (transient) {
		/* the controller is away: first in line again, tried next round */
		f->attempts--;
		set_error(f, "waiting for Slurm: %s", why);
		enqueue(p, f, true);
	} else {
		log_add(e, LOG_LVL_ERROR, "pool %s: future %llu: sbatch refused the job: %s",
			p->name, (unsigned long long)f->id, why);
		char reason[512];
		snprintf(reason, sizeof(reason), "sbatch refused the job: %s", why);
		fut_fail_unrun(e, p, f, reason);
		maybe_close(e, p);
	}
	notify_future(e, p, f);
}

size_t pool_slurm_watch(struct engine *e, struct slurm_watch **out)
{
	size_t n = 0, cap = 0;
	struct slurm_watch *v = NULL;
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (!p->slurm || !p->sl_inflight || p->held)
			continue;
		for (size_t i = 0; i < p->nfut; i++) {
			struct future *f = p->fut[i];
			if (!f->job || f->sl_gone)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				struct slurm_watch *nv = realloc(v, c * sizeof(*nv));
				if (!nv)
					goto out;   /* the rest are watched next round */
				v = nv;
				cap = c;
			}
			v[n] = (struct slurm_watch){ .pool = p->id, .fut = f->id, .job = f->job,
						     .signal = f->sl_signal,
						     .running = f->state == FUT_RUNNING };
			memcpy(v[n++].pool_name, p->name, sizeof(p->name));
		}
	}
out:
	*out = v;
	return n;
}

void pool_slurm_signalled(struct engine *e, uint64_t pool, uint64_t fut, int sig)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (f && f->sl_signal == sig)
		f->sl_signal = 0;
}

/* The error of a job that ended badly: Slurm's state, its reason, the code. */
static void slurm_failure(struct future *f, const struct slurm_job *j, int code, char *buf,
			  size_t len)
{
	int n = snprintf(buf, len, "slurm job %llu %s", (unsigned long long)j->id, j->state);
	if (n < 0 || (size_t)n >= len)
		return;
	if (j->reason[0] && strcmp(j->reason, "None"))
		n += snprintf(buf + n, len - (size_t)n, " (%s)", j->reason);
	const char *why = slurm_state_reason(j->state);
	if (*why && strcmp(j->state, "FAILED") && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ": %s", why);
	if ((size_t)n >= len)
		return;
	if (!j->have_exit)
		snprintf(buf + n, len - (size_t)n, ", exit code unknown");
	else if (code > 0)
		snprintf(buf + n, len - (size_t)n, ", exit status %d", code);
	else if (code < 0)
		snprintf(buf + n, len - (size_t)n, ", killed by signal %d%s", -code,
			 f->stopped ? " (ctl)" : "");
}

void pool_slurm_update(struct engine *e, uint64_t pool, uint64_t fut, const struct slurm_job *j,
		       const char *out, size_t outlen, const char *err, size_t errlen)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (!f || f->job != j->id || f->sl_gone)
		return;
	enum slurm_fate fate = slurm_state_fate(j->state);
	if (fate == SF_RUNNING && f->state == FUT_PENDING) {
		f->state = FUT_RUNNING;
		f->started = now_mono();
		p->running++;
		notify_future(e, p, f);
		engine_notify_locked(e, OBJ_POOL, p->id);
		return;
	}
	if (!slurm_fate_final(fate))
		return;
	f->sl_gone = true;
	p->sl_inflight--;
	if (f->state == FUT_RUNNING)
		p->running--;
	if (fut_final(f)) {        /* cancelled by us earlier: Slurm agrees now */
		maybe_close(e, p);
		slurm_kick(e);
		return;
	}
	if (!f->started.tv_sec)
		f->started = now_mono();   /* it ran between two polls */
	out_free(e, &f->out[1]);
	out_free(e, &f->out[2]);
	out_append(&f->out[1], out, outlen, e->cfg.output_max);
	out_append(&f->out[2], err, errlen, e->cfg.output_max);
	int code = j->have_exit ? j->exitcode : fate == SF_DONE ? 0 : 1;
	char why[256];
	if (fate == SF_CANCELLED && !f->stopped) {
		/* not by this pool: an admin's (or the user's own) scancel */
		f->state = FUT_CANCELLED;
		set_error(f, "slurm job %llu was cancelled in Slurm (scancel)",
			  (unsigned long long)j->id);
		record_final(e, p, f);
	} else if (f->stopped) {
		/* ctl term/kill: it fails with -N and is never retried (a job
		 * Slurm turned into a cancel reports 0:15 whatever the signal) */
		if (code >= 0 || fate == SF_CANCELLED)
			code = -f->stop_sig;
		slurm_failure(f, j, code, why, sizeof(why));
		future_ended(e, p, f, code, why);
	} else if (fate == SF_DONE && code == 0) {
		future_ended(e, p, f, 0, NULL);
	} else {
		slurm_failure(f, j, code, why, sizeof(why));
		future_ended(e, p, f, code, why);
	}
	if (f->state == FUT_PENDING) {   /* retried: a new job next round */
		f->job = 0;
		f->sl_gone = false;
		f->started = (struct timespec){ 0 };
	}
	maybe_close(e, p);
	pool_dispatch(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

/* ---- the [state] dir (state.c): pools and futures in the journal -----------
 *
 * Records: P (a pool made), C (a ctl line it took), X (removed), S (a future
 * submitted, with its line), R (it started on a local worker), J (its Slurm
 * job id), Q (a run failed and it waits to be retried: the attempts so far;
 * the R or J before it is over), D (its final state, its output in
 * DIR/out/pNAME.ID.STREAM).
 * Replay makes the pools again with the same settings and the futures with
 * the same ids: final ones as they ended (in the same completion order),
 * pending ones (retries too) queued again, Slurm ones with a job watched
 * again, and local ones that were running fail as lost, unless they have a
 * retry left: the lost run counts as a failed attempt and they are queued
 * again (the next compaction writes its Q).
 */

static void fut_prefix(const struct pool *p, char *buf, size_t len)
{
	snprintf(buf, len, "p%s.", p->name);
}

/* C: a ctl line the pool took; X: it was removed (no line) */
static void render_pool_line(struct strbuf *sb, const char *kind, const struct pool *p,
			     const char *line)
{
	jr_begin(sb, kind);
	jr_str(sb, "name", p->name);
	jr_str(sb, "line", line);
	jr_end(sb);
}

static void journal_pool(struct engine *e, const char *kind, const struct pool *p,
			 const char *line)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_pool_line(sb, kind, p, line);
}

/* P: a pool, with the credentials its work runs with (none: the daemon's) */
static void render_created(struct strbuf *sb, const struct pool *p)
{
	jr_begin(sb, "P");
	jr_str(sb, "name", p->name);
	if (p->cred) {
		jr_u64(sb, "uid", p->cred->uid);
		jr_u64(sb, "gid", p->cred->gid);
		if (p->cred->ngroups >= 0) {
			struct strbuf g = STRBUF_INIT;
			for (int i = 0; i < p->cred->ngroups; i++)
				sb_printf(&g, "%s%u", i ? "," : "", (unsigned)p->cred->groups[i]);
			jr_u64(sb, "ngroups", (uint64_t)p->cred->ngroups);
			jr_str(sb, "groups", sb_cstr(&g));
			sb_free(&g);
		}
	}
	jr_end(sb);
}

static void journal_created(struct engine *e, const struct pool *p)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_created(sb, p);
}

static void fut_record(struct strbuf *sb, const char *kind, const struct pool *p,
		       const struct future *f)
{
	jr_begin(sb, kind);
	jr_str(sb, "pool", p->name);
	jr_u64(sb, "id", f->id);
}

static void render_submitted(struct strbuf *sb, const struct pool *p, const struct future *f)
{
	fut_record(sb, "S", p, f);
	jr_str(sb, "line", f->line);
	jr_end(sb);
}

static void render_final(struct strbuf *sb, const struct pool *p, const struct future *f)
{
	fut_record(sb, "D", p, f);
	jr_str(sb, "state", future_state_name(f->state));
	jr_i64(sb, "code", f->exitcode);
	jr_u64(sb, "attempts", f->attempts);
	int64_t run_ns = f->started.tv_sec ? (int64_t)(since(f->started, f->ended) * 1e9) : 0;
	jr_i64(sb, "run_ns", run_ns);
	jr_i64(sb, "cpu_us", f->cpu_us);
	if (f->timed_out)
		jr_u64(sb, "timed_out", 1);
	if (f->job)
		jr_u64(sb, "job", f->job);
	for (int s = 1; s <= 2; s++)
		if (f->out[s].dropped)
			jr_u64(sb, s == 1 ? "dropped1" : "dropped2", f->out[s].dropped);
	jr_str(sb, "error", f->error);
	jr_end(sb);
}

static void journal_submitted(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_submitted(sb, p, f);
}

static void journal_running(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	fut_record(sb, "R", p, f);
	jr_end(sb);
}

/* Q: attempts that ended; the run in progress (if any) is not one of them */
static void render_requeued(struct strbuf *sb, const struct pool *p, const struct future *f,
			    unsigned attempts)
{
	fut_record(sb, "Q", p, f);
	jr_u64(sb, "attempts", attempts);
	jr_end(sb);
}

static void journal_requeued(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_requeued(sb, p, f, f->attempts);
}

static void journal_job(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	fut_record(sb, "J", p, f);
	jr_u64(sb, "job", f->job);
	jr_end(sb);
}

static void journal_final(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	char prefix[POOL_NAME_MAX + 4];
	fut_prefix(p, prefix, sizeof(prefix));
	for (int s = 1; s <= 2; s++) {
		int rc = state_write_output(e, prefix, f->id, s, f->out[s].data, f->out[s].len);
		if (rc < 0)
			state_failed(e, "future output", rc);
	}
	render_final(sb, p, f);
}

/* The pool's settings as ctl lines replay understands. */
static size_t render_settings(struct strbuf *sb, const struct pool *p)
{
	char line[512];
	size_t n = 0;
	if (p->type == TASK_THREAD) {
		render_pool_line(sb, "C", p, "type=thread");
		n++;
	}
	if (p->gil) {
		render_pool_line(sb, "C", p, "gil=1");
		n++;
	}
	int len = snprintf(line, sizeof(line), "%sworkers=%u", p->slurm ? "executor=slurm " : "",
			   p->target);
	if (p->slurm)
		slurm_opts_format(&p->sopt, line + len, sizeof(line) - (size_t)len);
	render_pool_line(sb, "C", p, line);
	n++;
	if (p->paused) {
		render_pool_line(sb, "C", p, "pause");
		n++;
	}
	return n;
}

static int by_pool_id(const void *a, const void *b)
{
	const struct pool *x = *(struct pool *const *)a, *y = *(struct pool *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static size_t pool_render_state(struct engine *e, struct strbuf *sb)
{
	size_t n = 0, np = 0;
	struct pool **v = calloc(e->pools->n ? e->pools->n : 1, sizeof(*v));
	if (!v)
		return 0;
	for (struct pool *p = e->pools->first; p && np < e->pools->n; p = p->next)
		v[np++] = p;
	qsort(v, np, sizeof(*v), by_pool_id);   /* the order they were made in */
	for (size_t i = 0; i < np; i++) {
		struct pool *p = v[i];
		render_created(sb, p);
		n++;
		n += render_settings(sb, p);
		for (size_t k = 0; k < p->nfut; k++) {
			struct future *f = p->fut[k];
			render_submitted(sb, p, f);
			n++;
			/* a run in progress (a local one, a Slurm job or its sbatch)
			 * counted its attempt when it began */
			bool in_progress = f->state == FUT_RUNNING || f->sl_submitting || f->job;
			unsigned ended = f->attempts - (in_progress && f->attempts ? 1 : 0);
			if (!fut_final(f) && ended) {
				render_requeued(sb, p, f, ended);
				n++;
			}
			if (f->job && !fut_final(f)) {
				fut_record(sb, "J", p, f);
				jr_u64(sb, "job", f->job);
				jr_end(sb);
				n++;
			} else if (f->state == FUT_RUNNING) {
				fut_record(sb, "R", p, f);
				jr_end(sb);
				n++;
			}
		}
		for (size_t k = 0; k < p->ndone; k++) {   /* completion order */
			struct future *f = fut_get(p, p->done_order[k]);
			if (f) {
				render_final(sb, p, f);
				n++;
			}
		}
		if (p->state != POOL_RUNNING) {
			render_pool_line(sb, "C", p, "shutdown");
			n++;
		}
	}
	free(v);
	return n;
}

/* Is DIR/out/<file> (pNAME.ID.STREAM) the output of a final future? */
static bool pool_output_known(struct engine *e, const char *file)
{
	const char *dot2 = strrchr(file, '.');
	if (!dot2 || dot2 == file || (strcmp(dot2, ".1") && strcmp(dot2, ".2")))
		return false;
	const char *dot1 = dot2 - 1;
	while (dot1 > file && *dot1 != '.')
		dot1--;
	if (dot1 <= file + 1 || (size_t)(dot1 - file - 1) > POOL_NAME_MAX)
		return false;
	char name[POOL_NAME_MAX + 1];
	memcpy(name, file + 1, (size_t)(dot1 - file - 1));
	name[dot1 - file - 1] = '\0';
	char *end;
	uint64_t id = strtoull(dot1 + 1, &end, 10);
	struct pool *p = end == dot2 ? pool_by_name(e, name) : NULL;
	struct future *f = p ? fut_get(p, id) : NULL;
	return f && fut_final(f);
}

/* ---- replay ---- */

struct rfut {
	char *line;                    /* S: the line (owned) */
	char *final;                   /* D: the raw record (owned) */
	bool running;                  /* R */
	uint64_t job;                  /* J */
	unsigned attempts;             /* Q: attempts that ended before a retry */
};

struct rpool {
	char name[POOL_NAME_MAX + 1];
	bool has_cred;                 /* the owner's credentials, from P */
	struct cred cred;
	char **ctl;                    /* C lines, in order (owned) */
	size_t nctl;
	struct rfut *f;                /* by id - 1 */
	size_t nf;
	uint64_t *done;                /* ids, in the order D records came */
	size_t ndone;
	bool removed;
};

struct pool_replay {
	struct rpool *p;
	size_t n;
};

static struct pool_replay *pool_replay_new(void)
{
	return calloc(1, sizeof(struct pool_replay));
}

static void rpool_clear(struct rpool *rp)
{
	for (size_t i = 0; i < rp->nctl; i++)
		free(rp->ctl[i]);
	for (size_t i = 0; i < rp->nf; i++) {
		free(rp->f[i].line);
		free(rp->f[i].final);
	}
	free(rp->ctl);
	free(rp->f);
	free(rp->done);
	memset(rp, 0, sizeof(*rp));
}

static void pool_replay_free(struct pool_replay *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		rpool_clear(&r->p[i]);
	free(r->p);
	free(r);
}

static struct rpool *rpool_find(struct pool_replay *r, const char *name)
{
	for (size_t i = r->n; i-- > 0;)      /* the newest of that name */
		if (!r->p[i].removed && !strcmp(r->p[i].name, name))
			return &r->p[i];
	return NULL;
}

static bool push(void **v, size_t *n, size_t size)
{
	void *nv = realloc(*v, (*n + 1) * size);
	if (!nv)
		return false;
	*v = nv;
	memset((char *)nv + *n * size, 0, size);
	(*n)++;
	return true;
}

static struct rfut *rfut_at(struct rpool *rp, uint64_t id, bool grow)
{
	if (!id || id > UINT32_MAX)
		return NULL;
	while (grow && rp->nf < id)
		if (!push((void **)&rp->f, &rp->nf, sizeof(*rp->f)))
			return NULL;
	return id <= rp->nf ? &rp->f[id - 1] : NULL;
}

/* 0 and takes `line` (the raw record) when the record is a pool's; -ENOENT
 * when it is not a pool's kind; -EINVAL when it is, unreadable. */
static int pool_replay_record(struct pool_replay *r, const struct jrec *rec, char *line)
{
	const char *k = rec->kind;
	if (strlen(k) != 1 || !strchr("PCXSRJQD", k[0]))
		return -ENOENT;
	const char *name = jr_get(rec, k[0] == 'P' || k[0] == 'C' || k[0] == 'X' ? "name" : "pool",
				  NULL);
	if (!name || strlen(name) > POOL_NAME_MAX || !valid_name(name))
		return -EINVAL;
	struct rpool *rp = rpool_find(r, name);
	if (k[0] == 'P') {
		if (rp)
			rp->removed = true;   /* a stale one of the same name */
		if (!push((void **)&r->p, &r->n, sizeof(*r->p)))
			return -EINVAL;
		rp = &r->p[r->n - 1];
		snprintf(rp->name, sizeof(rp->name), "%s", name);
		uint64_t uid, gid, ng;
		if (jr_get_u64(rec, "uid", &uid) && jr_get_u64(rec, "gid", &gid)) {
			rp->has_cred = true;
			rp->cred.uid = (uid_t)uid;
			rp->cred.gid = (gid_t)gid;
			rp->cred.ngroups = -1;
			const char *g = jr_get(rec, "groups", NULL);
			if (jr_get_u64(rec, "ngroups", &ng) && ng <= CRED_GROUPS_MAX && g) {
				int gi = 0;
				for (char *end; *g && gi < (int)ng; g = *end ? end + 1 : end, gi++)
					rp->cred.groups[gi] = (gid_t)strtoul(g, &end, 10);
				rp->cred.ngroups = gi;
			}
		}
		free(line);
		return 0;
	}
	if (!rp)
		return -EINVAL;
	if (k[0] == 'X') {
		rp->removed = true;
		free(line);
		return 0;
	}
	if (k[0] == 'C') {
		const char *v = jr_get(rec, "line", NULL);
		char *c = v ? strdup(v) : NULL;
		if (!c || !push((void **)&rp->ctl, &rp->nctl, sizeof(*rp->ctl))) {
			free(c);
			return -EINVAL;
		}
		rp->ctl[rp->nctl - 1] = c;
		free(line);
		return 0;
	}
	uint64_t id;
	if (!jr_get_u64(rec, "id", &id))
		return -EINVAL;
	struct rfut *f = rfut_at(rp, id, k[0] == 'S');
	if (!f || (k[0] != 'S' && !f->line))
		return -EINVAL;
	switch (k[0]) {
	case 'S': {
		const char *v = jr_get(rec, "line", NULL);
		if (!v || f->line || !(f->line = strdup(v)))
			return -EINVAL;
		free(line);
		return 0;
	}
	case 'R':
		f->running = true;
		free(line);
		return 0;
	case 'J':
		if (!jr_get_u64(rec, "job", &f->job))
			return -EINVAL;
		free(line);
		return 0;
	case 'Q': {   /* the run (R) or job (J) before it is over */
		uint64_t a;
		if (!jr_get_u64(rec, "attempts", &a) || a > UINT32_MAX)
			return -EINVAL;
		f->attempts = (unsigned)a;
		f->running = false;
		f->job = 0;
		free(line);
		return 0;
	}
	default:   /* D */
		if (f->final || !push((void **)&rp->done, &rp->ndone, sizeof(*rp->done)))
			return -EINVAL;
		rp->done[rp->ndone - 1] = id;
		f->final = line;        /* parsed again when applied */
		return 0;
	}
}

/* A future back from its S line (lock held): as submit makes it, but one
 * future whatever COUNT the line says, and without the limits: it was
 * admitted once.  A line that no longer parses fails the future. */
static struct future *fut_restore(struct engine *e, struct pool *p, uint64_t id,
				  const char *line)
{
	struct future *f = fut_new(line ? line : "");
	if (!f)
		return NULL;
	f->id = id;
	f->sopt = p->sopt;
	f->submitted = now_mono();
	struct task_spec spec;
	struct slurm_opts lo;
	char why[256] = "";
	int rc = line ? parse_pool_line(e, p->slurm, line, strlen(line), &spec, &lo, why,
					 sizeof(why))
		      : -EINVAL;
	if (rc == 0) {
		rc = fut_apply_spec(f, &spec, &p->sopt, &lo, p->slurm);
		spec_free(&spec);
	}
	if (rc < 0) {
		f->state = FUT_FAILED;
		f->exitcode = 1;
		set_error(f, "not restored from the [state] dir: %s", why[0] ? why : "no line");
	}
	return f;
}

static enum future_state fstate_of(const char *name)
{
	for (int s = FUT_DONE; s <= FUT_CANCELLED; s++)
		if (name && !strcmp(name, future_state_names[s]))
			return (enum future_state)s;
	return FUT_FAILED;
}

/* A D record onto its future (lock held). */
static void apply_final(struct engine *e, struct pool *p, struct future *f, char *raw)
{
	struct jrec rec;
	if (jr_parse(raw, &rec) < 0)
		return;
	f->state = fstate_of(jr_get(&rec, "state", NULL));
	int64_t x = 0;
	uint64_t u = 0;
	if (jr_get_i64(&rec, "code", &x))
		f->exitcode = (int)x;
	if (jr_get_u64(&rec, "attempts", &u))
		f->attempts = (unsigned)u;
	if (jr_get_i64(&rec, "cpu_us", &x))
		f->cpu_us = x;
	if (jr_get_u64(&rec, "job", &u))
		f->job = u;
	f->timed_out = jr_get_u64(&rec, "timed_out", &u) && u;
	const char *err = jr_get(&rec, "error", NULL);
	if (err)
		set_error(f, "%s", err);
	char prefix[POOL_NAME_MAX + 4];
	fut_prefix(p, prefix, sizeof(prefix));
	for (int s = 1; s <= 2; s++) {
		state_read_output(e, prefix, f->id, s, &f->out[s]);
		if (jr_get_u64(&rec, s == 1 ? "dropped1" : "dropped2", &u))
			f->out[s].dropped += u;
	}
	int64_t run_ns = 0;
	jr_get_i64(&rec, "run_ns", &run_ns);
	record_final(e, p, f);
	/* record_final stamped `ended` now: keep the recorded run time */
	if (run_ns) {
		int64_t s_ns = (int64_t)f->ended.tv_sec * 1000000000 + f->ended.tv_nsec - run_ns;
		f->started = (struct timespec){ s_ns / 1000000000, s_ns % 1000000000 };
	}
}

/* Replay one pool's ctl lines: pause/resume and shutdown are held back
 * (futures come first; the pool stays paused until they are all back). */
static void replay_ctl(struct engine *e, uint64_t id, const struct rpool *rp, bool *paused,
		       bool *shut)
{
	for (size_t i = 0; i < rp->nctl; i++) {
		const char *l = rp->ctl[i];
		char err[256] = "";
		if (!strncmp(l, "shutdown", 8))
			*shut = true;
		else if (!strcmp(l, "pause"))
			*paused = true;
		else if (!strcmp(l, "resume"))
			*paused = false;
		else if (engine_pool_ctl(e, id, l, err, sizeof(err)) < 0)
			log_add(e, LOG_LVL_WARN, "[state] pool %s: '%s' not replayed: %s", rp->name,
				l, err);
	}
}

static size_t pool_replay_apply(struct engine *e, struct pool_replay *r)
{
	size_t made = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct rpool *rp = &r->p[i];
		char err[256] = "";
		uint64_t id;
		if (rp->removed)
			continue;
		if (engine_pool_create_as(e, rp->name, rp->has_cred ? &rp->cred : NULL, err,
					  sizeof(err)) < 0 ||
		    engine_pool_find(e, rp->name, &id) < 0) {
			log_add(e, LOG_LVL_ERROR, "[state] pool %s not restored: %s", rp->name, err);
			continue;
		}
		made++;
		pthread_mutex_lock(&e->lock);
		struct pool *p = pool_by_id(e, id);
		p->paused = true;
		p->held = true;   /* until the restore is done: pool_replay_done */
		pthread_mutex_unlock(&e->lock);
		bool paused = false, shut = false;
		replay_ctl(e, id, rp, &paused, &shut);

		pthread_rwlock_rdlock(&e->reap_lock);
		pthread_mutex_lock(&e->lock);
		p = pool_by_id(e, id);
		struct future **v = rp->nf ? calloc(rp->nf, sizeof(*v)) : NULL;
		if (rp->nf && !v) {
			pthread_mutex_unlock(&e->lock);
			pthread_rwlock_unlock(&e->reap_lock);
			continue;
		}
		p->fut = v;
		p->capfut = rp->nf;
		for (size_t k = 0; k < rp->nf; k++) {
			struct future *f = fut_restore(e, p, k + 1, rp->f[k].line);
			if (!f)
				break;
			p->fut[p->nfut++] = f;
		}
		if (p->nfut)
			p->first_submit = now_mono();
		/* final ones, in the order they ended */
		for (size_t k = 0; k < rp->ndone; k++) {
			struct future *f = fut_get(p, rp->done[k]);
			struct rfut *rf = &rp->f[rp->done[k] - 1];
			if (f && !fut_final(f))
				apply_final(e, p, f, rf->final);
		}
		for (size_t k = 0; k < p->nfut; k++) {
			struct future *f = p->fut[k];
			struct rfut *rf = &rp->f[k];
			if (fut_final(f)) {
				if (!rf->final)          /* its line no longer parses */
					record_final(e, p, f);
			} else if (rf->job && p->slurm) {
				/* the job outlived us: watch it again */
				f->job = rf->job;
				f->attempts = rf->attempts + 1;
				p->sl_inflight++;
			} else if (rf->running && rf->attempts + 1 <= f->retries) {
				/* the crash ended that run, as a failure would have:
				 * with a retry left it runs again (future_ended's rule) */
				f->attempts = rf->attempts + 1;
				set_error(f, "lost: pcfs stopped while it ran; it runs again");
				log_add(e, LOG_LVL_WARN, "[state] pool %s: future %zu was running when "
					"pcfs stopped: it runs again (attempt %u of %u)", p->name,
					k + 1, f->attempts + 1, f->retries + 1);
				enqueue(p, f, false);
			} else if (rf->running) {
				f->state = FUT_FAILED;
				f->exitcode = 1;
				f->attempts = rf->attempts + 1;
				set_error(f, "lost: pcfs stopped while it ran; its result cannot "
					  "be known");
				record_final(e, p, f);
			} else {
				/* never started, or waited for a retry: it runs now */
				f->attempts = rf->attempts;
				enqueue(p, f, false);
			}
		}
		if (shut && p->state == POOL_RUNNING)
			p->state = POOL_SHUTDOWN;
		p->paused = paused;
		if (p->queued && !p->slurm)
			ensure_workers(e, p);   /* they start; nothing runs until done */
		maybe_close(e, p);
		engine_notify_locked(e, OBJ_POOL, p->id);
		pthread_mutex_unlock(&e->lock);
		pthread_rwlock_unlock(&e->reap_lock);
	}
	return made;
}

/* The restore is done (journaling again): restored pools run.  A future
 * that ended while journaling was off would have left no output file. */
static void pool_replay_done(struct engine *e)
{
	bool kick = false;
	pthread_mutex_lock(&e->lock);
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (!p->held)
			continue;
		p->held = false;
		kick |= p->slurm && p->sl_inflight;
		pool_dispatch(e, p);
	}
	if (kick)
		slurm_kick(e);
	pthread_mutex_unlock(&e->lock);
}

/* ---- the room ----------------------------------------------------------------- */

static int pools_init(struct engine *e, char *err, size_t errlen)
{
	e->pools = calloc(1, sizeof(*e->pools));
	if (!e->pools) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->pools->next_id = 1;
	return 0;
}

static void pools_fini(struct engine *e)
{
	if (!e->pools)
		return;
	slurm_free(e);
	pools_free(e);
	free(e->pools);
	e->pools = NULL;
}

static void pool_task_info(struct engine *e, const struct task *t, struct task_info *ti)
{
	if (!t->pool)
		return;
	snprintf(ti->pool, sizeof(ti->pool), "%s", t->pool->name);
	ti->slot = t->slot;
}

static void pool_timer_event(struct engine *e, uint64_t key, uint32_t events)
{
	pool_timer_fired(e, key);
}

static void *replay_new(void) { return pool_replay_new(); }
static int replay_record(void *r, const struct jrec *rec, char *line)
{
	return pool_replay_record(r, rec, line);
}
static size_t replay_apply(struct engine *e, void *r) { return pool_replay_apply(e, r); }
static void replay_free(void *r) { pool_replay_free(r); }

static const struct journal_client pools_journal = {
	.render = pool_render_state,
	.output_known = pool_output_known,
	.replay_new = replay_new,
	.replay_record = replay_record,
	.replay_apply = replay_apply,
	.replay_free = replay_free,
	.replay_done = pool_replay_done,
};

static const struct host_ops pool_host_ops = {
	.what = "pool worker",
	.killed_whole = true,    /* its futures end with it */
	.message = pool_host_message,
	.died = pool_host_died,
	.drained = pool_host_drained,
};

static const struct watch_row pools_watches[] = {
	{ .type = WATCH_FTIMER, .fn = pool_timer_event },
};

const struct room pools_room = {
	.name = "pools",
	.init = pools_init,
	.stop = slurm_stop,
	.fini = pools_fini,
	.task_info = pool_task_info,
	.claim_child = slurm_reaped,
	.watches = pools_watches,
	.nwatches = sizeof(pools_watches) / sizeof(pools_watches[0]),
	.owner = pool_owner,
	.journal = &pools_journal,
};
