/* notice.c - the notice room's row: it observes every task's start and end
 * (task_started / task_ended), hears of futures from the pools room
 * (notice_future_started / _ended), and for each:
 *   - adds an event to the ring (events.c) and wakes its readers
 *     (OBJ_EVENTS 0, and OBJ_EVENTS POOL for a future's);
 *   - at an end, keeps a joblog entry (joblog.c): tasks spawned and futures
 *     that ran, not pool workers (they are the pool's machinery, not jobs);
 *   - at an end with on_end=, queues its hook (hooks.c).
 * A pool's worker is a task in /procs: its start and end are events of
 * kind `worker` in /events (with pool=NAME), not in its pool's events,
 * which are the pool's futures.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notice_int.h"

static void ring_add(struct engine *e, struct event *ev, const struct timespec *at)
{
	if (at)
		ev->at = *at;
	else
		clock_gettime(CLOCK_REALTIME, &ev->at);
	ev_ring_push(&e->notice->ring, ev);   /* a pool counter short of memory: kept anyway */
	engine_notify_locked(e, OBJ_EVENTS, 0);
	if (ev->pool)
		engine_notify_locked(e, OBJ_EVENTS, ev->pool);
}

/* A worker's pool, by the rooms' own account of the task (task_info). */
static void worker_pool_name(struct engine *e, struct task *t, char *buf, size_t len)
{
	struct task_info ti;
	memset(&ti, 0, sizeof(ti));
	ROOMS_CALL(e, task_info, t, &ti);
	snprintf(buf, len, "%s", ti.pool);
}

/* at: when it happened; NULL: now. */
static void task_event(struct engine *e, struct task *t, enum ev_what what,
		       const struct timespec *at)
{
	struct event ev = {
		.id = t->id, .what = what, .state = task_state_name(t->state),
		.source = t->pool ? EV_WORKER : EV_TASK,
		.has_code = ev_whats[what].final && task_state_has_code(t->state),
		.code = t->exitcode,
	};
	snprintf(ev.name, sizeof(ev.name), "%s", t->name);
	if (t->pool)
		worker_pool_name(e, t, ev.pool_name, sizeof(ev.pool_name));
	ring_add(e, &ev, at);
}

static double ts_seconds(struct timespec t)
{
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void task_joblog(struct engine *e, struct task *t)
{
	struct jl_entry x = {
		.seq = t->id, .start = ts_seconds(t->start_rt),
		.runtime = ts_seconds(t->end_mono) - ts_seconds(t->start_mono), .line = t->cmd,
	};
	if (x.runtime < 0)
		x.runtime = 0;
	jl_codes(task_state_has_code(t->state), t->exitcode, t->state != TS_EXITED || t->exitcode,
		 &x.exitval, &x.signal);
	if (jl_push(&e->notice->jl, &x) < 0)
		log_add(e, LOG_LVL_WARN, "joblog: out of memory: task %" PRIu64 " left out", t->id);
}

static void set_code_env(struct hook_job *j, bool has_code, int code)
{
	char v[16] = "";
	if (has_code)
		snprintf(v, sizeof(v), "%d", code);
	hook_job_setenv(j, "PCFS_EXITCODE", v);
}

static void task_hook(struct engine *e, struct task *t)
{
	const struct end_hook *eh = t->on_end;
	struct hook_job *j = hook_job_new(eh->cmd, eh->cwd, eh->drop ? &eh->cred : NULL);
	if (!j) {
		log_add(e, LOG_LVL_WARN, "on_end of task %" PRIu64 " not run: out of memory", t->id);
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%" PRIu64, t->id);
	snprintf(j->what, sizeof(j->what), "task %s", id);
	hook_job_setenv(j, "PCFS_ID", id);
	hook_job_setenv(j, "PCFS_STATE", task_state_name(t->state));
	set_code_env(j, task_state_has_code(t->state), t->exitcode);
	hooks_queue(e, j);
}

static void notice_task_started(struct engine *e, struct task *t)
{
	t->announced = true;
	task_event(e, t, EV_STARTED, NULL);
}

/* A task that ran and ended before the rooms heard of its start (`sh true`
 * often does: core.h) gets its start, as of when it started, before its
 * end: every reader sees both.  One that failed to start, or was skipped
 * (after=: it never ran), has its end only. */
static void notice_task_ended(struct engine *e, struct task *t)
{
	if (!t->announced && t->state != TS_FAILED && t->state != TS_SKIPPED) {
		enum task_state end = t->state;
		t->state = TS_RUNNING;   /* what it was then, for the line */
		task_event(e, t, EV_STARTED, &t->start_rt);
		t->state = end;
	}
	t->announced = true;
	task_event(e, t, EV_ENDED, NULL);
	/* skipped work never ran: no line, as parallel writes none for a job it
	 * never started (so --resume runs it) */
	if (!t->pool && t->state != TS_SKIPPED)
		task_joblog(e, t);
	if (t->on_end)
		task_hook(e, t);
}

/* ---- futures, as the pools room tells of them ---------------------------------- */

static void future_event(struct engine *e, const struct notice_future *f, enum ev_what what)
{
	struct event ev = {
		.id = f->id, .pool = f->pool, .what = what, .state = f->state,
		.source = EV_FUTURE, .has_code = ev_whats[what].final && f->has_code,
		.code = f->code,
	};
	snprintf(ev.pool_name, sizeof(ev.pool_name), "%s", f->pool_name);
	ring_add(e, &ev, NULL);
}

void notice_future_started(struct engine *e, const struct notice_future *f)
{
	future_event(e, f, EV_STARTED);
}

static void future_joblog(struct engine *e, const struct notice_future *f)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct jl_entry x = {
		.pool = f->pool, .seq = f->id, .runtime = f->runtime,
		.start = ts_seconds(now) - f->runtime, .line = (char *)f->line,   /* copied */
	};
	jl_codes(f->has_code, f->code, !strcmp(f->state, "failed"), &x.exitval, &x.signal);
	if (jl_push(&e->notice->jl, &x) < 0)
		log_add(e, LOG_LVL_WARN, "joblog: out of memory: pool %s future %" PRIu64
			" left out", f->pool_name, f->id);
}

static void future_hook(struct engine *e, const struct notice_future *f)
{
	struct hook_job *j = hook_job_new(f->on_end, f->cwd, f->drop);
	if (!j) {
		log_add(e, LOG_LVL_WARN, "on_end of pool %s future %" PRIu64 " not run: out of "
			"memory", f->pool_name, f->id);
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%" PRIu64, f->id);
	snprintf(j->what, sizeof(j->what), "pool %s future %s", f->pool_name, id);
	hook_job_setenv(j, "PCFS_ID", id);
	hook_job_setenv(j, "PCFS_STATE", f->state);
	set_code_env(j, f->has_code, f->code);
	hook_job_setenv(j, "PCFS_POOL", f->pool_name);
	hooks_queue(e, j);
}

void notice_future_ended(struct engine *e, const struct notice_future *f)
{
	future_event(e, f, EV_ENDED);
	if (f->ran)
		future_joblog(e, f);
	if (f->on_end && f->on_end[0])
		future_hook(e, f);
}

/* ---- the row -------------------------------------------------------------------- */

static int notice_init(struct engine *e, char *err, size_t errlen)
{
	struct notice *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->notice = n;
	n->hooks.wakefd = -1;
	if (ev_ring_init(&n->ring, e->cfg.events) < 0 || jl_init(&n->jl, e->cfg.joblog) < 0) {
		snprintf(err, errlen, "out of memory for the events ring and joblog");
		return -ENOMEM;
	}
	int rc = hooks_init(e, &n->hooks);
	if (rc < 0)
		snprintf(err, errlen, "on_end hooks: eventfd: %s", strerror(-rc));
	return rc;
}

static void notice_start(struct engine *e)
{
	hooks_start(e, &e->notice->hooks);
}

static void notice_stop(struct engine *e)
{
	hooks_stop(e, &e->notice->hooks);
}

static void notice_fini(struct engine *e)
{
	struct notice *n = e->notice;
	if (!n)
		return;
	if (n->hooks.wakefd >= 0)
		hooks_free(&n->hooks);
	ev_ring_free(&n->ring);
	jl_free(&n->jl);
	free(n);
	e->notice = NULL;
}

const struct room notice_room = {
	.name = "notice",
	.init = notice_init,
	.start = notice_start,
	.stop = notice_stop,
	.fini = notice_fini,
	.task_started = notice_task_started,
	.task_ended = notice_task_ended,
	.claim_child = hooks_claim_child,
};
