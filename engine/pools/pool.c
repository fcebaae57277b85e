/* pool.c - executors: pools of worker processes or threads running futures.
 *
 * concurrent.futures as an engine object.  A pool has a queue of pending
 * futures (by priority, then in submission order: queue.c) and `workers`
 * slots.  Each slot lives in a pcfs-worker host in `pool` mode: a process
 * pool has one host (one process) per slot, a thread pool one host whose
 * slots are threads.  A slot runs one future at a
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "notice/notice.h"
#include "pools_int.h"
#include "channels/channels.h"
#include "exec/exec.h"
#include "persist/persist.h"
#include "cglib.h"

static const char *const pool_state_names[] = {
	[POOL_RUNNING] = "running", [POOL_SHUTDOWN] = "shutdown", [POOL_CLOSED] = "closed",
};
static const char *const future_state_names[] = {
	[FUT_PENDING] = "pending", [FUT_RUNNING] = "running", [FUT_DONE] = "done",
	[FUT_FAILED] = "failed",   [FUT_CANCELLED] = "cancelled", [FUT_WAITING] = "waiting",
	[FUT_SKIPPED] = "skipped",
};

const char *pool_state_name(enum pool_state s) { return pool_state_names[s]; }
const char *future_state_name(enum future_state s) { return future_state_names[s]; }
bool future_state_has_code(enum future_state s) { return s == FUT_DONE || s == FUT_FAILED; }

bool fut_final(const struct future *f)
{
	return f->state == FUT_DONE || f->state == FUT_FAILED || f->state == FUT_CANCELLED ||
	       f->state == FUT_SKIPPED;
}

double ts_since(struct timespec a, struct timespec b)
{
	if (!a.tv_sec && !a.tv_nsec)
		return 0;
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

struct timespec mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

struct pool *pool_by_id(struct engine *e, uint64_t id)
{
	for (struct pool *p = e->pools->first; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

struct future *fut_get(struct pool *p, uint64_t id)
{
	return id >= 1 && id <= p->nfut ? p->fut[id - 1] : NULL;
}

void notify_future(struct engine *e, struct pool *p, struct future *f)
{
	engine_notify_locked(e, OBJ_FUTURE, FUTURE_KEY(p->id, f->id));
}

void fut_set_error(struct future *f, const char *fmt, ...)
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

/* Who the pool's work runs as (engine_run_as): -EACCES when it may not run. */
int pool_run_as(struct engine *e, const struct pool *p, const struct cred **drop,
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

/* ---- futures -------------------------------------------------------------- */

static void fut_free(struct engine *e, struct future *f)
{
	engine_close_watched(e, &f->timer_fd);
	out_free(e, &f->out[1]);
	out_free(e, &f->out[2]);
	free(f->error);
	free(f->line);
	free(f->env);
	free(f->cwd);
	origin_put(f->origin);
	free(f->stdin_chan);
	free(f->stdout_chan);
	free(f->name);
	free(f->on_end);
	after_free(f);
	spec_limits_free(&f->lim);
	cgroup_group_remove(e, f->cg);
	free(f);
}

void record_final(struct engine *e, struct pool *p, struct future *f)
{
	f->ended = mono_now();
	if (f->state == FUT_DONE) {
		/* it runs no more: the environment is not needed (a failed or
		 * cancelled one keeps it for a `retry`, as its writer gave it) */
		origin_put(f->origin);
		f->origin = NULL;
	}
	engine_close_watched(e, &f->timer_fd);
	if (p->ndone == p->capdone) {
		size_t cap = p->capdone ? p->capdone * 2 : 64;
		uint64_t *v = realloc(p->done_order, cap * sizeof(*v));
		if (v) {
			p->done_order = v;
			p->capdone = cap;
		}
	}
	f->done_pos = 0;
	if (p->ndone < p->capdone) {
		p->done_order[p->ndone++] = f->id;
		f->done_pos = p->ndone;
	}
	if (f->state == FUT_DONE)
		p->ndone_ok++;
	else if (f->state == FUT_FAILED)
		p->nfailed++;
	else if (f->state == FUT_SKIPPED)
		p->nskipped++;
	else
		p->ncancelled++;
	journal_final(e, p, f);
	notice_of(e, p, f, true);
	notify_future(e, p, f);
	engine_notify_locked(e, OBJ_POOL, p->id);
	after_final(e, p, f);  /* what waits for it hears how it ended */
	halt_count(e, p, f);   /* last: it may end other futures */
}

void notice_of(struct engine *e, struct pool *p, struct future *f, bool ended)
{
	struct notice_future nf = {
		.pool = p->id, .pool_name = p->name, .id = f->id,
		.state = future_state_name(f->state),
	};
	if (!ended)
		return notice_future_started(e, &nf);
	struct strbuf line = STRBUF_INIT;
	fut_line(f, f->slot, &line);
	nf.has_code = f->state != FUT_CANCELLED && f->state != FUT_SKIPPED;
	nf.code = f->exitcode;
	nf.ran = f->started.tv_sec && nf.has_code;
	nf.runtime = f->started.tv_sec ? ts_since(f->started, f->ended) : 0;
	nf.line = sb_cstr(&line);
	nf.on_end = f->on_end ? f->on_end : p->on_end;
	nf.cwd = f->cwd;
	nf.drop = p->cred;
	notice_future_ended(e, &nf);
	sb_free(&line);
}

/* A pending future, already taken off its queue (the pool's or a slot's),
 * ends cancelled, with why as its error. */
void cancel_pending(struct engine *e, struct pool *p, struct future *f, const char *why)
{
	f->state = FUT_CANCELLED;
	fut_set_error(f, "%s", why);
	record_final(e, p, f);
}

/* A run of f ended, on any executor: done, failed, or retried (first in line). */
void future_ended(struct engine *e, struct pool *p, struct future *f, int code,
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
		fut_set_error(f, "%s", why);
	else if (code > 0)
		fut_set_error(f, "exit status %d", code);
	else
		fut_set_error(f, "killed by signal %d%s", -code,
			  f->timed_out ? " (timeout)" : f->halted ? " (halt)"
			  : f->stopped ? " (ctl)" : "");
	if (!f->stopped && f->attempts - f->retry_base <= f->retries &&
	    p->state != POOL_CLOSED) {
		/* run it again, first in line; keep only the last attempt's output */
		out_free(e, &f->out[1]);
		out_free(e, &f->out[2]);
		f->timed_out = false;
		fut_enqueue(p, f, true);
		journal_requeued(e, p, f);
		notify_future(e, p, f);
		return;
	}
	f->state = FUT_FAILED;
	record_final(e, p, f);
}


void maybe_close(struct engine *e, struct pool *p)
{
	if (p->state != POOL_SHUTDOWN || p->queued || p->prefetched || p->running || p->sl_inflight ||
	    p->nwaiting)
		return;
	p->state = POOL_CLOSED;
	retire_all(e, p);
	log_add(e, LOG_LVL_INFO, "pool %s: shut down and drained", p->name);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

/* ---- executors --------------------------------------------------------------------- */

static const struct executor *const executors[] = { &local_executor, &slurm_executor };

const struct executor *executor_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(executors) / sizeof(executors[0]); i++)
		if (!strcmp(executors[i]->name, name))
			return executors[i];
	return NULL;
}

void pool_dispatch(struct engine *e, struct pool *p)
{
	p->dispatch_pending = false;
	if (p->paused || p->held || p->halted)
		return;
	p->ex->dispatch(e, p);
}

/* ---- API -------------------------------------------------------------------- */

bool pool_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > POOL_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-") == n;
}

struct pool *pool_by_name(struct engine *e, const char *name)
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
	if (!pool_name_valid(name)) {
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
		if (p && queue_init(p) < 0) {
			free(p);
			p = NULL;
		}
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
			p->ex = &local_executor;
			spec_limits_init(&p->lim);
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
	free(p->tmpl);
	free(p->halt_why);
	queue_free(p);
	free(p->on_end);
	free(p->skips);
	spec_limits_free(&p->lim);
	cgroup_group_remove(e, p->cg);
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
	o->slurm = p->ex == &slurm_executor;
	o->slurm_opts = p->sopt;
	o->owner = p->owner;
	snprintf(o->tmpl, sizeof(o->tmpl), "%s", p->tmpl ? p->tmpl : "");
	halt_format(&p->halt, o->halt, sizeof(o->halt));
	o->halted = p->halted;
	snprintf(o->halt_why, sizeof(o->halt_why), "%s", p->halt_why ? p->halt_why : "");
	snprintf(o->on_end, sizeof(o->on_end), "%s", p->on_end ? p->on_end : "");
	cg_limits_format(&p->lim, o->limits, sizeof(o->limits));
	if (p->cg)   /* cgroupfs reads: in memory, short */
		cgroup_group_figures(e, p->cg, &o->cg);
	p->ex->load(p, &o->ready, &o->busy);
	o->submitted = p->nfut;
	o->queued = p->queued + p->prefetched;
	o->prefetched = p->prefetched;
	o->running = p->running;
	o->done = p->ndone_ok;
	o->failed = p->nfailed;
	o->cancelled = p->ncancelled;
	o->waiting = p->nwaiting;
	o->skipped = p->nskipped;
	struct timespec now = mono_now();
	o->elapsed = ts_since(p->first_submit, now);
	/* the finishing rate over the last few seconds */
	double dt = ts_since(p->rate_t0, now);
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

const char *pool_spec_refusal(enum task_kind type, const struct task_spec *s)
{
	const char *why = NULL;
	if (s->kind_set && s->kind != type)
		why = type == TASK_THREAD ? "this pool runs threads: as=process does not apply "
					       "(ctl type=process)"
					     : "this pool runs processes: as=thread does not apply "
					       "(ctl type=thread)";
	else if (s->method != METHOD_DEFAULT)
		why = "method= does not apply to pool tasks: the pool's workers run them";
	else if (s->nice_set)
		why = "nice= does not apply to pool tasks";
	else if (s->gil_set)
		why = "gil= is a pool setting (ctl gil=1)";
	else if (spec_limits_any(&s->lim) && type == TASK_THREAD)
		why = "mem_max=, pids_max=, cpu_max=, cpus=, swap_max=, io_weight= and cgroup=1 "
		      "bound a process: a thread pool's futures share one process (set the limits "
		      "on the pool's ctl, or use type=process)";
	else if (workload_is_builtin(s->workload) &&
		 (s->file[0].path || s->file[1].path || s->file[2].path))
		why = "stdin=/stdout=/stderr= files in a pool are for exec and sh (a built-in "
		      "runs inside its worker)";
	return why;
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
int parse_pool_line(struct engine *e, bool slurm, const char *line, size_t len,
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
	/* a future's limits: its worker moves into a cgroup of its own for the
	 * run (local executor); a Slurm job's are Slurm's */
	if (rc == 0 && spec_limits_any(&spec->lim)) {
		if (slurm) {
			snprintf(why, whylen, "mem_max=, pids_max=, cpu_max=, swap_max=, io_weight= "
				 "and cgroup= bound a local worker: a Slurm job takes Slurm's mem= "
				 "and cpus= (Slurm enforces them)");
			rc = -EINVAL;
		} else {
			rc = cgroup_check_limits(e, &spec->lim, why, whylen);
		}
		if (rc < 0)
			spec_free(spec);
	}
	return rc;
}

/* A pending future of this line, with nothing else set (NULL: no memory). */
struct future *fut_new(const char *line)
{
	struct future *f = calloc(1, sizeof(*f));
	if (!f || !(f->line = strdup(line))) {
		free(f);
		return NULL;
	}
	f->timer_fd = -1;
	f->out[1].fd = f->out[2].fd = -1;
	f->timeout_ms = SPEC_UNSET;
	spec_limits_init(&f->lim);
	return f;
}

/* What a parsed line says of its future: env=, stdin=/stdout=, retries=,
 * timeout=, and a Slurm pool's job options over the pool's.  -ENOMEM. */
int fut_apply_spec(struct future *f, const struct task_spec *s,
			  const struct slurm_opts *popts, const struct slurm_opts *lo, bool slurm)
{
	f->env = pack_env(s, &f->envlen);
	f->env_clean = s->env_clean;
	if ((s->stdin_chan && !(f->stdin_chan = strdup(s->stdin_chan))) ||
	    (s->stdout_chan && !(f->stdout_chan = strdup(s->stdout_chan))) ||
	    (s->on_end && !(f->on_end = strdup(s->on_end))))
		return -ENOMEM;
	if (after_take(f, s) < 0)
		return -ENOMEM;
	f->retries = (unsigned)s->retries;
	f->priority = s->priority;
	if (s->name[0] && !(f->name = strdup(s->name)))
		return -ENOMEM;
	f->timeout_ms = s->timeout_ms;
	if (spec_limits_copy(&f->lim, &s->lim) < 0)
		return -ENOMEM;
	f->sopt = *popts;
	slurm_opts_merge(&f->sopt, lo);
	/* timeout= is the job's time limit in Slurm (whole minutes), unless the
	 * line says slurm_time= */
	if (slurm && f->timeout_ms != SPEC_UNSET && !lo->time_min)
		f->sopt.time_min = slurm_minutes(f->timeout_ms);
	return 0;
}

/* What a submit needs of its pool, copied under the lock. */
struct submit_view {
	const struct executor *ex;
	struct slurm_opts popts;
	struct owner owner;
	uint64_t base;                 /* futures so far: the next one's id is base + 1 */
	bool templated;
	struct tmpl tmpl;              /* the pool's template=, when templated */
	bool has_drop;                 /* its work runs as drop (a root daemon's other user) */
	struct cred drop;
};

/* The lines of one write to submit, parsed. */
struct submit_batch {
	struct task_spec *specs;
	char **cwd;                    /* each line's directory (NULL: the worker's) */
	const struct origin *origin;   /* the writer's context */
	struct slurm_opts *lopts;      /* each line's own Slurm options */
	size_t n, cap;
	size_t total;                  /* futures: lines times their COUNT */
	bool slot_marks;               /* their lines hold {%} markers */
};

static void batch_free(struct submit_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		spec_free(&b->specs[i]);
		free(b->cwd ? b->cwd[i] : NULL);
	}
	free(b->specs);
	free(b->cwd);
	free(b->lopts);
}

static int batch_grow(struct submit_batch *b)
{
	if (b->n < b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : 8;
	struct task_spec *v = realloc(b->specs, cap * sizeof(*v));
	if (v)
		b->specs = v;
	struct slurm_opts *lo = v ? realloc(b->lopts, cap * sizeof(*lo)) : NULL;
	if (!lo)
		return -ENOMEM;
	b->lopts = lo;
	b->cap = cap;
	return 0;
}

/* Parse every line first: all or nothing.  Through a template every line,
 * blank or not, is an input. */
static int batch_parse(struct engine *e, const struct submit_view *v, const char *buf,
		       size_t len, struct submit_batch *b, char *err, size_t errlen)
{
	bool job_options = v->ex->job_options;
	unsigned lineno = 0;
	size_t pos = 0, ll;
	b->slot_marks = v->templated && v->tmpl.uses_slot;
	for (const char *line; (line = next_line(buf, len, &pos, &ll));) {
		lineno++;
		if (!v->templated && line_is_blank(line, ll))
			continue;
		if (batch_grow(b) < 0)
			return -ENOMEM;
		char why[256];
		int rc = v->templated
			 ? template_line(e, &v->tmpl, job_options, line, ll, v->base + b->n + 1,
					 &b->specs[b->n], &b->lopts[b->n], why, sizeof(why))
			 : parse_pool_line(e, job_options, line, ll, &b->specs[b->n],
					   &b->lopts[b->n], why, sizeof(why));
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			return rc;
		}
		b->total += b->specs[b->n++].count;
	}
	if (!b->n) {
		snprintf(err, errlen, "no task line in the write");
		return -EINVAL;
	}
	return 0;
}

/* Each line's directory, and whether its writer's environment could be
 * read if it takes it: a line that cannot run where it was written is
 * refused, not run somewhere else. */
static int batch_context(struct submit_batch *b, const struct origin *o,
			 const struct cred *drop, char *err, size_t errlen)
{
	b->origin = o;
	if (!(b->cwd = calloc(b->n ? b->n : 1, sizeof(*b->cwd)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n; i++) {
		char dir[ORIGIN_PATH_MAX], why[256];
		int rc = origin_cwd(o, b->specs[i].cwd, dir, sizeof(dir), why, sizeof(why));
		if (rc == 0)
			rc = exec_dir_check(b->specs[i].cwd, dir, drop, why, sizeof(why));
		if (rc == 0)   /* the vector itself is made at each hand-off */
			rc = origin_env_check(o, b->specs[i].env_clean, why, sizeof(why));
		if (rc == 0 && dir[0] && !(b->cwd[i] = strdup(dir)))
			rc = -ENOMEM;
		if (rc < 0) {
			snprintf(err, errlen, "line %zu: %s", i + 1, rc == -ENOMEM ? "out of memory" : why);
			return rc;
		}
	}
	return 0;
}

/* Wired channels must exist (checked without our lock: it takes it). */
static int batch_check_wiring(struct engine *e, const struct submit_batch *b,
			      const struct owner *owner, char *err, size_t errlen)
{
	for (size_t i = 0; i < b->n; i++) {
		char why[256];
		int rc = chan_check_wiring(e, &b->specs[i], owner, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %zu: %s", i + 1, why);
			return rc;
		}
	}
	return 0;
}

/* May p take the batch now, and is there room for it (lock held)? */
static int batch_admit(struct engine *e, struct pool *p, const struct executor *ex,
		       const struct submit_batch *b, char *err, size_t errlen)
{
	for (size_t i = 0; i < b->n; i++) {
		char why[256];
		const char *no = pool_spec_refusal(p->type, &b->specs[i]);
		if (no) {
			snprintf(err, errlen, "line %zu: %s", i + 1, no);
			return -EINVAL;
		}
		if (after_check(p, &b->specs[i], p->nfut + 1, b->total, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "line %zu: %s", i + 1, why);
			return -EINVAL;
		}
	}
	if (p->ex != ex) {
		snprintf(err, errlen, "the pool's executor changed during the write; submit again");
		return -EAGAIN;
	}
	if (p->state != POOL_RUNNING) {
		snprintf(err, errlen, "pool %s is shut down: no more submits", p->name);
		return -ESHUTDOWN;
	}
	if (p->halted) {
		snprintf(err, errlen, "pool %s is halted (%s): no more submits; ctl halt=never or "
			 "retry failed runs it again", p->name, p->halt_why ? p->halt_why : "halt=");
		return -ESHUTDOWN;
	}
	for (size_t i = 0; i < b->n; i++)   /* so that queueing them cannot fail */
		if (queue_bucket(p, b->specs[i].priority) < 0)
			return -ENOMEM;
	if (p->queued + p->prefetched + b->total > e->cfg.max_queued) {
		snprintf(err, errlen, "limit: %zu queued + %zu would exceed max_queued=%u",
			 p->queued + p->prefetched, b->total, e->cfg.max_queued);
		return -EAGAIN;
	}
	if (p->nfut + b->total > UINT32_MAX) {
		snprintf(err, errlen, "limit: a pool holds at most 2^32-1 futures");
		return -EAGAIN;
	}
	if (p->nfut + b->total > p->capfut) {
		size_t c = p->capfut ? p->capfut : 64;
		while (c < p->nfut + b->total)
			c *= 2;
		struct future **v = realloc(p->fut, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->fut = v;
		p->capfut = c;
	}
	return 0;
}

/* Every future of the batch, made before any is visible; NULL: no memory. */
static struct future **batch_futures(struct engine *e, const struct submit_batch *b,
				     const struct slurm_opts *popts, bool job_options)
{
	struct future **nf = calloc(b->total, sizeof(*nf));
	size_t k = 0;
	for (size_t i = 0; nf && i < b->n; i++) {
		for (unsigned c = 0; c < b->specs[i].count; c++) {
			struct future *f = fut_new(b->specs[i].line);
			if (f) {
				f->slot_marks = b->slot_marks;
				f->origin = origin_get((struct origin *)b->origin);
				if (b->cwd[i] && !(f->cwd = strdup(b->cwd[i]))) {
					fut_free(e, f);
					f = NULL;
				}
			}
			if (!f || fut_apply_spec(f, &b->specs[i], popts, &b->lopts[i],
						 job_options) < 0) {
				if (f)
					fut_free(e, f);
				for (size_t j = 0; j < k; j++)
					fut_free(e, nf[j]);
				free(nf);
				return NULL;
			}
			nf[k++] = f;
		}
	}
	return nf;
}

/* The futures get their ids, join the queue and are journaled; their
 * executor starts workers and hands them out (lock held). */
static void batch_publish(struct engine *e, struct pool *p, struct future **nf, size_t total,
			  uint64_t *ids, size_t *nids)
{
	struct timespec now = mono_now();
	if (!p->first_submit.tv_sec)
		p->first_submit = now;
	for (size_t j = 0; j < total; j++) {
		struct future *f = nf[j];
		f->id = ++p->nfut;
		f->submitted = now;
		p->fut[f->id - 1] = f;
		p->prio_mixed |= f->priority != 0;
		journal_submitted(e, p, f);
		if (f->wait)   /* (journaled first: a skip at once is an end after it) */
			after_hold(e, p, f);
		else
			fut_enqueue(p, f, false);
		ids[(*nids)++] = f->id;
	}
	p->failed_starts = 0;
	if (p->ex->workers)
		p->ex->workers(e, p);
	revoke_outranked(p);
	pool_dispatch(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

/* Under the locks: admit the batch, make its futures, publish them.
 * -ESTALE: its inputs were numbered ({#}) for ids another write took. */
static int batch_submit(struct engine *e, uint64_t id, const struct submit_view *v,
			const struct submit_batch *b, uint64_t **ids, size_t *nids, char *err,
			size_t errlen)
{
	struct pool *p = pool_by_id(e, id);
	if (!p)
		return -ENOENT;
	if (v->templated && v->tmpl.uses_seq && p->nfut != v->base)
		return -ESTALE;
	int rc = batch_admit(e, p, v->ex, b, err, errlen);
	if (rc < 0)
		return rc;
	struct future **nf = batch_futures(e, b, &v->popts, v->ex->job_options);
	uint64_t *out = nf ? realloc(*ids, (*nids + b->total) * sizeof(**ids)) : NULL;
	if (!out) {
		for (size_t j = 0; nf && j < b->total; j++)
			fut_free(e, nf[j]);
		free(nf);
		return -ENOMEM;
	}
	*ids = out;
	batch_publish(e, p, nf, b->total, out, nids);
	free(nf);
	return 0;
}

/* The pool as a submit sees it (lock taken here), its template compiled. */
static int submit_peek(struct engine *e, uint64_t id, struct submit_view *v, char *err,
		       size_t errlen)
{
	char tmpl[TMPL_MAX + 1] = "";
	const struct cred *drop = NULL;
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	int rc = p ? 0 : -ENOENT;
	if (p) {
		v->ex = p->ex;
		v->popts = p->sopt;
		v->owner = p->owner;
		v->base = p->nfut;
		snprintf(tmpl, sizeof(tmpl), "%s", p->tmpl ? p->tmpl : "");
		/* work it could not run as its owner is refused here, not later */
		rc = pool_run_as(e, p, &drop, err, errlen);
		v->has_drop = rc == 0 && drop;
		if (v->has_drop)   /* a copy: the pool may go once the lock is let go */
			v->drop = *drop;
	}
	pthread_mutex_unlock(&e->lock);
	v->templated = rc == 0 && tmpl[0];
	if (v->templated)
		rc = tmpl_compile(tmpl, &v->tmpl, err, errlen);   /* it compiled when it was set */
	return rc;
}

/* One try at a submit: -ESTALE when a write took the ids it numbered by. */
static int submit_once(struct engine *e, uint64_t id, const struct origin *o, const char *buf,
		       size_t len, uint64_t **ids, size_t *nids, char *err, size_t errlen)
{
	struct submit_batch b = { 0 };
	struct submit_view v;
	pthread_mutex_lock(&e->pools->seq_lock);
	int rc = submit_peek(e, id, &v, err, errlen);
	bool serial = rc == 0 && v.templated && v.tmpl.uses_seq;
	if (!serial)
		pthread_mutex_unlock(&e->pools->seq_lock);
	if (rc == 0)
		rc = batch_parse(e, &v, buf, len, &b, err, errlen);
	if (rc == 0)
		rc = batch_context(&b, o, v.has_drop ? &v.drop : NULL, err, errlen);
	if (rc == 0)
		rc = batch_check_wiring(e, &b, &v.owner, err, errlen);
	if (rc == 0) {
		pthread_rwlock_rdlock(&e->reap_lock);
		pthread_mutex_lock(&e->lock);
		rc = batch_submit(e, id, &v, &b, ids, nids, err, errlen);
		pthread_mutex_unlock(&e->lock);
		pthread_rwlock_unlock(&e->reap_lock);
		engine_flush_notify(e);
	}
	if (serial)
		pthread_mutex_unlock(&e->pools->seq_lock);
	batch_free(&b);
	return rc;
}

#define SUBMIT_TRIES 8   /* a write whose {#} went stale (task lines raced it) */

int engine_pool_submit(struct engine *e, uint64_t id, const struct origin *o, const char *buf,
		       size_t len, uint64_t **ids, size_t *nids, char *err, size_t errlen)
{
	int rc = -ESTALE;
	for (int i = 0; i < SUBMIT_TRIES && rc == -ESTALE; i++)
		rc = submit_once(e, id, o, buf, len, ids, nids, err, errlen);
	if (rc == -ESTALE) {
		snprintf(err, errlen, "other writes kept taking the ids this one numbered its "
			 "inputs with ({#}); submit again");
		rc = -EAGAIN;
	}
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
	struct timespec now = mono_now();
	o->pool = pid;
	o->owner = p->owner;
	o->id = fid;
	o->state = f->state;
	o->final = fut_final(f);
	o->exitcode = f->exitcode;
	if (f->error)
		snprintf(o->error, sizeof(o->error), "%s", f->error);
	cg_limits_format(&f->lim, o->limits, sizeof(o->limits));
	o->oom_killed = f->oom_killed;
	o->attempts = f->attempts;
	o->retries = f->retries;
	o->priority = f->priority;
	snprintf(o->name, sizeof(o->name), "%s", f->name ? f->name : "");
	o->slot = f->slot;
	o->task = f->task;
	o->child = f->child;
	o->timeout_ms = f->timeout_ms;
	o->slurm_job = f->job;
	o->queued_for = ts_since(f->submitted, f->started.tv_sec ? f->started :
					    o->final ? f->ended : now);
	o->runtime = f->started.tv_sec ? ts_since(f->started, o->final ? f->ended : now) : 0;
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
		fut_line(f, f->slot, out);
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
	} else if (f->state == FUT_PENDING || f->state == FUT_WAITING) {
		after_unwait(p, f);
		fut_unqueue(p, f);
		cancel_pending(e, p, f, "cancelled");
		if (p->ex->cancelled)
			p->ex->cancelled(e, p, f);
		maybe_close(e, p);
	} else if (f->state != FUT_CANCELLED) {
		rc = -EBUSY;   /* running or ended: too late, as in Python */
	}
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
	return rc;
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
	pthread_mutex_init(&e->pools->seq_lock, NULL);
	return 0;
}

static void pools_fini(struct engine *e)
{
	if (!e->pools)
		return;
	slurm_free(e);
	pools_free(e);
	pthread_mutex_destroy(&e->pools->seq_lock);
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
	.turn_end = after_turn_end,   /* futures whose wait is over are handed out */
	.journal = &pools_journal,
};

