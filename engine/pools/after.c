/* after.c - futures that wait for futures of their pool: after=, after_any=,
 * after_fail= on a submit line (the pool's side of exec/waiting.c).
 *
 * A future whose line names other futures of its pool is WAITING: it is in
 * no queue and holds no worker.  Each future it waits for keeps an edge
 * back to it (its `waiters`: the waiter's id and the generation of its
 * wait, so an edge left by a wait that was cancelled and held again counts
 * for nothing).  When a future reaches a final state (record_final calls
 * after_final), its waiters hear how it ended: a waiter whose dependencies
 * have all ended as it needs joins the pending queue (by priority, then id)
 * and the pool dispatches at the end of the engine's turn; one that can no
 * longer run is SKIPPED, a final state that is an end like any other, so
 * its own waiters hear of it in turn: through a worklist, never a recursion
 * as deep as the chain.
 *
 * Ids must be of futures already submitted before the line's write; a
 * future cannot wait for a task (ids are the pool's, and a pool's futures
 * are numbered apart from /procs), which a spawn line does instead.
 *
 * All with `lock` held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pools_int.h"

/* ---- the line's dependencies, kept with its future ------------------------------ */

int after_take(struct future *f, const struct task_spec *s)
{
	if (!s->nafter)
		return 0;
	struct fut_wait *w = calloc(1, sizeof(*w) + s->nafter * sizeof(w->ids[0]));
	if (!w)
		return -ENOMEM;
	w->kind = s->after_kind;
	w->n = s->nafter;
	memcpy(w->ids, s->after, s->nafter * sizeof(w->ids[0]));
	f->wait = w;
	return 0;
}

void after_free(struct future *f)
{
	free(f->wait);
	free(f->waiters);
	f->wait = NULL;
	f->waiters = NULL;
	f->nwaiters = f->capwaiters = 0;
}

int after_check(const struct pool *p, const struct task_spec *s, uint64_t first_new,
		uint64_t nnew, char *err, size_t errlen)
{
	const char *key = after_kind_name(s->after_kind);
	for (unsigned i = 0; i < s->nafter; i++) {
		unsigned long long id = s->after[i];
		if (id >= first_new && id < first_new + nnew) {
			snprintf(err, errlen, "%s=%llu: future %llu is one of this write's own: work "
				 "cannot wait for itself or for what waits for it (a cycle)", key,
				 id, id);
			return -EINVAL;
		}
		if (id == 0 || id >= first_new) {
			snprintf(err, errlen, "%s=%llu: pool %s has no future %llu (ids are the "
				 "pool's futures; a future cannot wait for a task)", key, id,
				 p->name, id);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- deciding -------------------------------------------------------------------- */

static bool fut_succeeded(const struct future *d)
{
	return d->state == FUT_DONE;
}

/* "future 3 failed (exit status 1)" */
static void describe(const struct future *d, char *buf, size_t len)
{
	snprintf(buf, len, "future %llu %s%s%.96s%s", (unsigned long long)d->id,
		 d->state == FUT_DONE ? "succeeded" : future_state_name(d->state),
		 d->error ? " (" : "", d->error ? d->error : "", d->error ? ")" : "");
}

/* w can never run: into the worklist, ended at once by its drain. */
static void push_skip(struct pool *p, struct future *w)
{
	w->wait->decided = true;
	if (p->nskips == p->capskips) {
		size_t cap = p->capskips ? p->capskips * 2 : 16;
		uint64_t *v = realloc(p->skips, cap * sizeof(*v));
		if (!v) {   /* no room to defer it: it is left to be decided now */
			w->wait->decided = false;
			w->wait->skip_now = true;
			return;
		}
		p->skips = v;
		p->capskips = cap;
	}
	p->skips[p->nskips++] = w->id;
}

/* Everything w waited for ended as it needs: it joins the queue. */
static void make_ready(struct engine *e, struct pool *p, struct future *w)
{
	if (p->halted) {   /* nothing starts in a halted pool: it is cancelled */
		snprintf(w->wait->why, sizeof(w->wait->why), "halted: %.180s",
			 p->halt_why ? p->halt_why : "halt=");
		w->wait->cancel = true;
		push_skip(p, w);
		return;
	}
	w->wait->decided = true;
	p->nwaiting--;
	fut_enqueue_by_id(p, w);
	p->after_ready = true;
	e->pools->after_ready = true;
	engine_wake(e);   /* the pool hands it out at the end of the turn */
	notify_future(e, p, w);
}

/* One of w's dependencies, d, has ended (or was final when w was held). */
static void dep_ended(struct engine *e, struct pool *p, struct future *w, const struct future *d)
{
	struct fut_wait *x = w->wait;
	if (x->decided)
		return;
	x->left--;
	if (!fut_succeeded(d) && !x->failed) {
		char how[160];
		x->failed = true;
		describe(d, how, sizeof(how));
		snprintf(x->why, sizeof(x->why), "%s=%llu: %s", after_kind_name(x->kind),
			 (unsigned long long)d->id, how);
	}
	switch (after_decide(x->kind, x->left, x->failed)) {
	case AFTER_WAIT:
		return;
	case AFTER_SKIP:
		if (!x->failed)
			snprintf(x->why, sizeof(x->why), "after_fail=: every one of them succeeded");
		push_skip(p, w);
		return;
	case AFTER_READY:
		make_ready(e, p, w);
		return;
	}
}

/* w is skipped: a final state, which its own waiters hear of (record_final). */
static void skip_one(struct engine *e, struct pool *p, struct future *w)
{
	if (w->state != FUT_WAITING)
		return;
	p->nwaiting--;
	w->state = w->wait->cancel ? FUT_CANCELLED : FUT_SKIPPED;
	fut_set_error(w, "%s", w->wait->why);
	log_add(e, LOG_LVL_INFO, "pool %s: future %llu %s: %s", p->name,
		(unsigned long long)w->id, future_state_name(w->state), w->wait->why);
	record_final(e, p, w);
}

static void drain_skips(struct engine *e, struct pool *p)
{
	if (p->draining)
		return;
	p->draining = true;
	while (p->nskips) {
		struct future *w = fut_get(p, p->skips[--p->nskips]);
		if (w)
			skip_one(e, p, w);
	}
	p->draining = false;
}

/* ---- holding, and hearing of ends ------------------------------------------------ */

static int add_waiter(struct future *d, const struct future *w)
{
	if (d->nwaiters == d->capwaiters) {
		size_t cap = d->capwaiters ? d->capwaiters * 2 : 4;
		struct fut_edge *v = realloc(d->waiters, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->waiters = v;
		d->capwaiters = cap;
	}
	d->waiters[d->nwaiters++] = (struct fut_edge){ .id = w->id, .gen = w->wait->gen };
	return 0;
}

void after_hold(struct engine *e, struct pool *p, struct future *f)
{
	struct fut_wait *x = f->wait;
	x->gen++;
	x->left = x->n;
	x->failed = x->decided = x->skip_now = x->cancel = false;
	x->why[0] = '\0';
	f->state = FUT_WAITING;
	p->nwaiting++;
	for (unsigned i = 0; i < x->n && !x->decided && !x->skip_now; i++) {
		struct future *d = fut_get(p, x->ids[i]);
		if (d && !fut_final(d) && add_waiter(d, f) == 0)
			continue;
		if (d && fut_final(d)) {
			dep_ended(e, p, f, d);
		} else {   /* no memory for the edge, or no such future (a torn journal) */
			snprintf(x->why, sizeof(x->why), "%s=%llu: %s", after_kind_name(x->kind),
				 (unsigned long long)x->ids[i],
				 d ? "out of memory waiting for it" : "there is no such future");
			push_skip(p, f);
		}
	}
	if (x->skip_now)
		skip_one(e, p, f);
	drain_skips(e, p);
}

void after_final(struct engine *e, struct pool *p, struct future *d)
{
	size_t n = d->nwaiters;
	struct fut_edge *v = d->waiters;
	d->waiters = NULL;   /* a retry of d, and the waiters' own, start new lists */
	d->nwaiters = d->capwaiters = 0;
	for (size_t i = 0; i < n; i++) {
		struct future *w = fut_get(p, v[i].id);
		if (!w || w->state != FUT_WAITING || !w->wait || w->wait->gen != v[i].gen)
			continue;   /* cancelled, or waiting again since: not this edge's */
		dep_ended(e, p, w, d);
		if (w->wait->skip_now)
			skip_one(e, p, w);
	}
	free(v);
	drain_skips(e, p);
}

void after_unwait(struct pool *p, struct future *f)
{
	if (f->state != FUT_WAITING)
		return;
	p->nwaiting--;
	f->wait->decided = true;
	f->state = FUT_PENDING;   /* what cancel_pending ends */
}

void after_cancel_all(struct engine *e, struct pool *p, const char *why)
{
	for (size_t i = 0; i < p->nfut; i++) {
		struct future *f = p->fut[i];
		if (f->state != FUT_WAITING)
			continue;
		after_unwait(p, f);
		cancel_pending(e, p, f, why);
	}
}

/* The end of the engine's turn: pools with futures made ready hand them out. */
void after_turn_end(struct engine *e)
{
	if (!e->pools || !e->pools->after_ready)
		return;
	e->pools->after_ready = false;
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (!p->after_ready)
			continue;
		p->after_ready = false;
		if (p->ex->workers)
			p->ex->workers(e, p);
		pool_dispatch(e, p);
		maybe_close(e, p);
	}
}
