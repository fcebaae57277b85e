/* waiting.c - after=, after_any=, after_fail=: work that waits for other
 * tasks to end (Slurm's afterok, afterany, afternotok; pueue's --after).
 *
 * A line with after= is parsed, checked and reserved with its write like any
 * other (its tasks count as live from then on, so a pipeline is never refused
 * half way for max_processes), but its tasks are WAITING, with no process,
 * and the line (its launch: directory, environment, opened files) is held.
 * The room observes every task's end (its task_ended row): an end counts
 * down the waiters of that id.  A waiter whose dependencies have ended as it
 * needs is ready, and started after the loop's turn (after_turn: the engine
 * thread, without the lock); one whose dependencies cannot end as it needs
 * any more is SKIPPED at the end of that turn of the loop (once every room
 * has heard of the end that decided it), which is an end like any other, so
 * a chain of dependents is skipped in one go: through a worklist, never a
 * recursion as deep as the chain.
 *
 * Everything here runs with e->lock held, but waiting_start_ready (without).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "persist/persist.h"

#define EDGE_BUCKETS 1024

/* A line whose tasks wait: kept until each of them started or was skipped. */
struct held_line {
	int refs;                  /* its waiters still holding it */
	struct line_start ls;
	struct origin *origin;     /* owns the strings of ls.launch.env */
	bool has_drop;
	struct cred drop;          /* whom its tasks run as, if not the daemon */
};

struct waiter {
	uint64_t id;
	struct held_line *hl;
	enum after_kind kind;
	unsigned left;             /* dependencies not ended yet */
	unsigned refs;             /* the table's (until decided) and one per edge left */
	bool failed;               /* one of them did not succeed */
	bool decided;              /* ready, skipped or ended: edges firing later do nothing */
	char why[160];             /* the dependency that decides a skip */
	struct waiter *next_ready;
};

/* "task 7 waits for this one", kept under 7's id until 7 ends. */
struct edge {
	uint64_t dep;
	struct waiter *w;
	struct edge *next;
};

struct waiting {
	struct edge *edges[EDGE_BUCKETS];
	struct waiter *ready, *ready_tail;
	struct waiter **by_task;   /* the waiters, by index (a small vector) */
	size_t n, cap;
	struct task **skips;       /* decided to skip, not yet ended (the worklist) */
	size_t nskips, capskips;
	bool draining;
	bool held_back;            /* a restore is under way: nothing starts yet */
};

static struct waiting *W(struct engine *e)
{
	return e->exec->waiting;
}

/* ---- holding and releasing ------------------------------------------------------
 *
 * A waiter's references: the table's, until it is decided; one per edge not
 * fired yet; the ready list's, until it has started.  Its held line is let
 * go as soon as it is decided to skip, or has started: a skipped task does
 * not keep its files open while the rest of its dependencies run on. */

static void hold_put(struct held_line *hl)
{
	if (--hl->refs > 0)
		return;
	spec_free(&hl->ls.spec);
	launch_free(&hl->ls.launch);
	origin_put(hl->origin);
	free(hl);
}

static void let_line_go(struct waiter *w)
{
	if (w->hl)
		hold_put(w->hl);
	w->hl = NULL;
}

static void waiter_put(struct waiter *w)
{
	if (--w->refs > 0)
		return;
	let_line_go(w);
	free(w);
}

static struct waiter *table_find(struct waiting *wt, uint64_t id)
{
	for (size_t i = 0; i < wt->n; i++)
		if (wt->by_task[i]->id == id)
			return wt->by_task[i];
	return NULL;
}

/* w is decided: it leaves the table, and the table's reference goes. */
static void decide(struct waiting *wt, struct waiter *w)
{
	w->decided = true;
	for (size_t i = 0; i < wt->n; i++) {
		if (wt->by_task[i] == w) {
			wt->by_task[i] = wt->by_task[--wt->n];
			waiter_put(w);
			return;
		}
	}
}

/* ---- deciding ------------------------------------------------------------------ */

static bool succeeded(const struct task *t)
{
	return t->state == TS_EXITED && t->exitcode == 0;
}

/* How dep ended, for a skip's reason: "task 7 exited with code 1". */
static void describe(const struct task *dep, char *buf, size_t len)
{
	unsigned long long id = (unsigned long long)dep->id;
	switch (dep->state) {
	case TS_EXITED:
		snprintf(buf, len, "task %llu exited with code %d", id, dep->exitcode);
		break;
	case TS_KILLED:
		snprintf(buf, len, "task %llu was killed (signal %d)", id, -dep->exitcode);
		break;
	case TS_FAILED:
		snprintf(buf, len, "task %llu could not start", id);
		break;
	default:
		snprintf(buf, len, "task %llu was %s", id, task_state_name(dep->state));
		break;
	}
}

static void push_skip(struct engine *e, struct waiter *w)
{
	struct waiting *wt = W(e);
	struct task *t = task_find(e, w->id);
	if (t && t->state == TS_WAITING)
		snprintf(t->error, sizeof(t->error), "%s", w->why);
	let_line_go(w);
	decide(wt, w);   /* (w may be gone from here on) */
	if (!t || t->state != TS_WAITING)
		return;
	if (wt->nskips == wt->capskips) {
		size_t cap = wt->capskips ? wt->capskips * 2 : 16;
		struct task **v = realloc(wt->skips, cap * sizeof(*v));
		if (!v) {   /* no room to defer it: end it here (a deeper stack, once) */
			task_ended(e, t, TS_SKIPPED, 0);
			return;
		}
		wt->skips = v;
		wt->capskips = cap;
	}
	wt->skips[wt->nskips++] = t;
}

static void push_ready(struct engine *e, struct waiter *w)
{
	struct waiting *wt = W(e);
	w->refs++;   /* the ready list's */
	decide(wt, w);
	w->next_ready = NULL;
	if (wt->ready_tail)
		wt->ready_tail->next_ready = w;
	else
		wt->ready = w;
	wt->ready_tail = w;
	engine_wake(e);   /* its start is after a turn of the loop */
}

/* One of w's dependencies, id, ended: ok (it succeeded) or as `how` says. */
static void dep_ended(struct engine *e, struct waiter *w, uint64_t id, bool ok, const char *how)
{
	if (w->decided)
		return;
	w->left--;
	if (!ok && !w->failed) {
		w->failed = true;
		snprintf(w->why, sizeof(w->why), "%s=%llu: %s", after_kind_name(w->kind),
			 (unsigned long long)id, how);
	}
	switch (after_decide(w->kind, w->left, w->failed)) {
	case AFTER_WAIT:
		return;
	case AFTER_SKIP:
		if (!w->failed)
			snprintf(w->why, sizeof(w->why), "after_fail=: every one of them succeeded");
		push_skip(e, w);
		return;
	case AFTER_READY:
		push_ready(e, w);
		return;
	}
}

/* End the tasks decided to skip, one after another: each end may decide more. */
static void drain_skips(struct engine *e)
{
	struct waiting *wt = W(e);
	if (wt->draining)
		return;
	wt->draining = true;
	while (wt->nskips) {
		struct task *t = wt->skips[--wt->nskips];
		if (t->state == TS_WAITING) {
			log_add(e, LOG_LVL_INFO, "task %llu skipped: %s", (unsigned long long)t->id,
				t->error);
			task_ended(e, t, TS_SKIPPED, 0);
		}
	}
	wt->draining = false;
}

/* The room's task_ended row: the waiters of t hear of it; a waiting task that
 * ended itself (ctl kill, shutdown) is forgotten here. */
void waiting_task_ended(struct engine *e, struct task *t)
{
	struct waiting *wt = W(e);
	if (!wt)
		return;
	/* only a waiting task ends skipped: no other needs looking up */
	struct waiter *self = t->state == TS_SKIPPED ? table_find(wt, t->id) : NULL;
	if (self) {   /* ended while it waited (ctl, shutdown): it never runs */
		let_line_go(self);
		decide(wt, self);
	}
	struct edge **pp = &wt->edges[t->id % EDGE_BUCKETS];
	while (*pp) {
		struct edge *x = *pp;
		if (x->dep != t->id) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		char how[96];
		describe(t, how, sizeof(how));
		dep_ended(e, x->w, t->id, succeeded(t), how);
		waiter_put(x->w);
		free(x);
	}
	/* the skips it decided end at the end of the turn, after every room
	 * (the events among them) has heard of this end: cause before effect */
	if (wt->nskips)
		engine_wake(e);
}

void waiting_turn_end(struct engine *e)
{
	if (W(e))
		drain_skips(e);
}

/* ---- the journal: waiting work survives a restart ---------------------------------
 *
 * A task that waits has no start record yet (persist writes one when it
 * starts), so exec keeps its own: a W record with what it needs to wait and
 * start again in a new daemon (its line, owner, whom it runs as, its
 * writer's directory and environment).  Its T record, once it starts or is
 * skipped, supersedes it (waitjournal.c drops a W whose id has one). */

static void render_waiting(struct strbuf *sb, const struct task *t, const struct held_line *hl)
{
	char cred[3072];
	const struct origin *o = hl->origin;
	jr_begin(sb, "W");
	jr_u64(sb, "id", t->id);
	jr_ts(sb, "start", t->start_rt);
	jr_u64(sb, "uid", t->owner.uid);
	jr_u64(sb, "gid", t->owner.gid);
	if (hl->has_drop && cred_format(&hl->drop, cred, sizeof(cred)) == 0)
		jr_str(sb, "drop", cred);
	if (o && o->cwd)
		jr_str(sb, "cwd", o->cwd);
	else if (o)
		jr_i64(sb, "cwd_err", o->cwd_err);
	if (o && o->env)
		jr_mem(sb, "env", o->env, o->env_len);
	else if (o)
		jr_i64(sb, "env_err", o->env_err);
	jr_str(sb, "line", hl->ls.spec.line);
	jr_end(sb);
}

static void journal_waiting(struct engine *e, const struct task *t, const struct held_line *hl)
{
	struct strbuf *sb;
	if (t->state == TS_WAITING && t->persist && (sb = state_record(e)))
		render_waiting(sb, t, hl);
}

static size_t render_one(struct engine *e, struct strbuf *sb, const struct waiter *w)
{
	const struct task *t = task_find(e, w->id);
	if (!t || t->state != TS_WAITING || !w->hl || !t->persist)
		return 0;
	render_waiting(sb, t, w->hl);
	return 1;
}

/* The journal client's render: every task still waiting, and every one
 * whose wait is over but has not started yet (lock held). */
size_t waiting_render(struct engine *e, struct strbuf *sb)
{
	struct waiting *wt = W(e);
	size_t n = 0;
	for (size_t i = 0; wt && i < wt->n; i++)
		n += render_one(e, sb, wt->by_task[i]);
	for (struct waiter *w = wt ? wt->ready : NULL; w; w = w->next_ready)
		n += render_one(e, sb, w);
	return n;
}

/* How each dependency of a restored line stands: restored already (they
 * have lower ids), or forgotten, and then how it ended is not known. */
static void restore_seen(struct engine *e, const struct task_spec *s, struct dep_seen *seen)
{
	for (unsigned i = 0; i < s->nafter; i++) {
		const struct task *dep = task_find(e, s->after[i]);
		memset(&seen[i], 0, sizeof(seen[i]));
		if (dep) {
			seen[i].ended = task_state_ended(dep->state);
			seen[i].ok = succeeded(dep);
			describe(dep, seen[i].how, sizeof(seen[i].how));
		} else {
			seen[i].ended = seen[i].unknown = true;
			snprintf(seen[i].how, sizeof(seen[i].how), "task %llu was forgotten "
				 "before pcfs restarted: how it ended is not known",
				 (unsigned long long)s->after[i]);
		}
	}
}

void waiting_hold_back(struct engine *e, bool on)
{
	pthread_mutex_lock(&e->lock);
	W(e)->held_back = on;
	if (!on && W(e)->ready)
		engine_wake(e);
	pthread_mutex_unlock(&e->lock);
}

int waiting_restore_locked(struct engine *e, const struct restored_wait *r, struct line_start *ls)
{
	struct task *t = task_restored(e, r->id, ls->spec.line);
	if (!t)
		return -ENOMEM;
	t->start_rt = r->start_rt;
	clock_gettime(CLOCK_MONOTONIC, &t->start_mono);
	t->persist = true;
	const struct cred *drop = r->has_drop ? &r->drop : NULL;
	int rc = line_task_fill(t, ls, &r->owner, drop);
	task_restored_live(e, t, TS_STARTING);
	if (rc < 0 || r->why[0]) {
		/* (the error field is shorter than a reason may be: it is cut) */
		snprintf(t->error, sizeof(t->error), "it waited when pcfs stopped, and cannot wait "
			 "again: %.200s", rc < 0 ? "out of memory" : r->why);
		log_add(e, LOG_LVL_WARN, "task %llu: %s", (unsigned long long)t->id, t->error);
		task_ended(e, t, TS_FAILED, 126);
		return 0;
	}
	struct dep_seen *seen = calloc(ls->spec.nafter ? ls->spec.nafter : 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	restore_seen(e, &ls->spec, seen);
	rc = waiting_add_locked(e, ls, r->origin, drop, seen, &t, 1);
	free(seen);
	return rc;
}

/* ---- a write's waiting lines -------------------------------------------------------- */

int waiting_check_locked(struct engine *e, const struct task_spec *s, uint64_t first_new,
			 uint64_t nnew, struct dep_seen *seen, char *err, size_t errlen)
{
	const char *key = after_kind_name(s->after_kind);
	for (unsigned i = 0; i < s->nafter; i++) {
		unsigned long long id = s->after[i];
		struct task *dep = id < first_new ? task_find(e, id) : NULL;
		if (id >= first_new && id < first_new + nnew) {
			snprintf(err, errlen, "%s=%llu: task %llu is one of this write's own: work "
				 "cannot wait for itself or for what waits for it (a cycle)", key,
				 id, id);
			return -EINVAL;
		}
		if (!dep) {
			snprintf(err, errlen, "%s=%llu: there is no task %llu (%s)", key, id, id,
				 id >= first_new ? "not started yet" : "forgotten, or never started");
			return -EINVAL;
		}
		seen[i].ended = task_state_ended(dep->state);
		seen[i].ok = succeeded(dep);
		describe(dep, seen[i].how, sizeof(seen[i].how));
	}
	return 0;
}

static int add_edge(struct waiting *wt, uint64_t dep, struct waiter *w)
{
	struct edge *x = malloc(sizeof(*x));
	if (!x)
		return -ENOMEM;
	*x = (struct edge){ .dep = dep, .w = w, .next = wt->edges[dep % EDGE_BUCKETS] };
	wt->edges[dep % EDGE_BUCKETS] = x;
	w->refs++;
	return 0;
}

static int table_add(struct waiting *wt, struct waiter *w)
{
	if (wt->n == wt->cap) {
		size_t cap = wt->cap ? wt->cap * 2 : 16;
		struct waiter **v = realloc(wt->by_task, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		wt->by_task = v;
		wt->cap = cap;
	}
	wt->by_task[wt->n++] = w;
	return 0;
}

/* One task of a held line waits: its dependencies that ended already count
 * now, the others get an edge.  Out of memory for an edge: it is skipped,
 * saying so (never left waiting for nothing). */
static void wait_one(struct engine *e, struct held_line *hl, const struct dep_seen *seen,
		     struct task *t)
{
	struct waiting *wt = W(e);
	const struct task_spec *s = &hl->ls.spec;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w || table_add(wt, w) < 0) {
		free(w);
		snprintf(t->error, sizeof(t->error), "out of memory holding it to wait");
		task_ended(e, t, TS_SKIPPED, 0);
		return;
	}
	*w = (struct waiter){ .id = t->id, .hl = hl, .kind = s->after_kind,
			      .left = s->nafter, .refs = 1 };
	hl->refs++;
	t->state = TS_WAITING;
	t->waited = true;   /* shown from now on, also while it starts */
	e->st.waiting++;
	for (unsigned i = 0; i < s->nafter && !w->decided; i++) {
		if (seen[i].unknown && w->kind != AFTER_ANY) {
			/* how it ended is what decides, and nobody knows any more */
			snprintf(w->why, sizeof(w->why), "%s=%llu: %s", after_kind_name(w->kind),
				 (unsigned long long)s->after[i], seen[i].how);
			push_skip(e, w);
		} else if (seen[i].ended || add_edge(wt, s->after[i], w) < 0)
			dep_ended(e, w, s->after[i], seen[i].ended && seen[i].ok,
				  seen[i].ended ? seen[i].how : "out of memory waiting for it");
	}
}

int waiting_add_locked(struct engine *e, struct line_start *ls, const struct origin *o,
		       const struct cred *drop, const struct dep_seen *seen, struct task **tasks,
		       unsigned count)
{
	struct held_line *hl = calloc(1, sizeof(*hl));
	if (!hl)
		return -ENOMEM;
	hl->refs = 1;   /* this function's, let go at its end */
	hl->ls = *ls;
	launch_init(&ls->launch);   /* the line is the hold's now */
	memset(&ls->spec, 0, sizeof(ls->spec));
	hl->origin = origin_get((struct origin *)o);
	hl->has_drop = drop != NULL;
	if (drop)
		hl->drop = *drop;
	for (unsigned i = 0; i < count; i++) {
		log_add(e, LOG_LVL_INFO, "task %llu waits: %s", (unsigned long long)tasks[i]->id,
			hl->ls.spec.line);
		wait_one(e, hl, seen, tasks[i]);
		journal_waiting(e, tasks[i], hl);
	}
	hold_put(hl);
	drain_skips(e);
	return 0;
}

/* ---- starting the ready ---------------------------------------------------------- */

static struct waiter *take_ready(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	struct waiting *wt = W(e);
	struct waiter *list = wt && !wt->held_back ? wt->ready : NULL;
	if (list)
		wt->ready = wt->ready_tail = NULL;
	pthread_mutex_unlock(&e->lock);
	return list;
}

/* Its turn: it leaves `waiting` for STARTING, unless something ended it. */
static struct task *claim(struct engine *e, struct waiter *w)
{
	struct task *t = task_find(e, w->id);
	if (!t || t->state != TS_WAITING)
		return NULL;
	t->state = TS_STARTING;
	e->st.waiting--;
	return t;
}

static void start_one(struct engine *e, struct waiter *w)
{
	pthread_mutex_lock(&e->lock);
	struct task *t = claim(e, w);
	pthread_mutex_unlock(&e->lock);
	if (t) {
		struct held_line *hl = w->hl;
		const struct cred *drop = hl->has_drop ? &hl->drop : NULL;
		const struct line_start *one[1] = { &hl->ls };
		log_add(e, LOG_LVL_INFO, "task %llu: what it waited for has ended: it starts",
			(unsigned long long)t->id);
		if (hl->ls.spec.kind == TASK_THREAD)
			spawn_thread_tasks(e, &hl->ls, &t, 1, drop);
		else
			spawn_processes(e, one, &t, 1, drop);
	}
	pthread_mutex_lock(&e->lock);
	if (t && task_find(e, w->id) == t && task_live(t))
		task_started(e, t);
	engine_notify_locked(e, OBJ_TASK, w->id);
	engine_notify_locked(e, OBJ_STATS, 0);
	let_line_go(w);
	waiter_put(w);
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
}

void waiting_start_ready(struct engine *e)
{
	for (struct waiter *w = take_ready(e), *next; w; w = next) {
		next = w->next_ready;
		start_one(e, w);
	}
}

/* ---- the room's own ---------------------------------------------------------------- */

int waiting_init(struct engine *e)
{
	e->exec->waiting = calloc(1, sizeof(struct waiting));
	return e->exec->waiting ? 0 : -ENOMEM;
}

void waiting_fini(struct engine *e)
{
	struct waiting *wt = e->exec ? e->exec->waiting : NULL;
	if (!wt)
		return;
	for (size_t b = 0; b < EDGE_BUCKETS; b++) {
		for (struct edge *x = wt->edges[b], *next; x; x = next) {
			next = x->next;
			waiter_put(x->w);
			free(x);
		}
	}
	for (struct waiter *w = wt->ready, *next; w; w = next) {
		next = w->next_ready;
		waiter_put(w);
	}
	while (wt->n) {
		struct waiter *w = wt->by_task[0];
		let_line_go(w);
		decide(wt, w);
	}
	free(wt->by_task);
	free(wt->skips);
	free(wt);
	e->exec->waiting = NULL;
}
