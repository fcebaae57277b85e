/* syncobj.c - the core of a synchronization object: who waits, who holds.
 *
 * Pure: the caller (sync.c) holds the engine lock around every call and
 * passes the time.  A lock is a semaphore of one unit.  Holds are granted
 * strictly in the order they joined: only the first of the queue may take
 * a unit, so a later open never overtakes an earlier one (first come,
 * first served), even when a unit is free at the moment it arrives.
 */
#include <errno.h>
#include <string.h>

#include "sync_int.h"

static void tk_append(struct tk_list *l, struct sync_ticket *t)
{
	t->next = NULL;
	t->prev = l->last;
	if (l->last)
		l->last->next = t;
	else
		l->first = t;
	l->last = t;
	l->n++;
}

static void tk_unlink(struct tk_list *l, struct sync_ticket *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->first = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->last = t->prev;
	t->next = t->prev = NULL;
	l->n--;
}

void syncobj_init(struct sync_obj *o, enum sync_kind kind, int64_t value, bool bounded,
		  unsigned parties, int64_t timeout_ms)
{
	o->kind = kind;
	o->value = o->initial = kind == SYNC_LOCK ? 1 : value;
	o->bounded = bounded;
	o->parties = parties;
	o->timeout_ms = timeout_ms;
}

/* Every waiter of the queue ends in state s (an event set, a barrier's
 * round passed or broken). */
static void finish_all(struct sync_obj *o, enum ticket_state s)
{
	while (o->queue.first) {
		struct sync_ticket *t = o->queue.first;
		tk_unlink(&o->queue, t);
		t->state = s;
	}
}

static bool barrier_arrive(struct sync_obj *o, struct sync_ticket *t)
{
	if (o->broken) {
		t->state = TK_BROKEN;
		return false;
	}
	t->generation = o->generation;
	t->index = o->queue.n;
	tk_append(&o->queue, t);
	if (o->queue.n < o->parties)
		return false;
	finish_all(o, TK_DONE);
	o->generation++;
	o->passed++;
	return true;
}

bool syncobj_join(struct sync_obj *o, struct sync_ticket *t, int64_t now_ns)
{
	t->obj = o;
	t->since_ns = now_ns;
	t->state = TK_WAITING;
	switch (o->kind) {
	case SYNC_EVENT:
		if (o->set)
			t->state = TK_DONE;
		else
			tk_append(&o->queue, t);
		return false;
	case SYNC_BARRIER:
		return barrier_arrive(o, t);
	default:
		tk_append(&o->queue, t);
		return false;
	}
}

bool syncobj_grantable(const struct sync_obj *o, const struct sync_ticket *t)
{
	return (o->kind == SYNC_LOCK || o->kind == SYNC_SEMAPHORE) && t->state == TK_WAITING &&
	       o->queue.first == t && o->value > 0;
}

bool syncobj_take(struct sync_obj *o, struct sync_ticket *t, int64_t now_ns)
{
	if (!syncobj_grantable(o, t)) {
		if (t->state == TK_WAITING)
			t->contended = true;
		return false;
	}
	tk_unlink(&o->queue, t);
	tk_append(&o->held, t);
	t->state = TK_HELD;
	o->value--;
	o->acquisitions++;
	o->contended += t->contended;
	t->since_ns = now_ns;
	return true;
}

bool syncobj_leave(struct sync_obj *o, struct sync_ticket *t, int64_t now_ns)
{
	switch (t->state) {
	case TK_HELD:
		tk_unlink(&o->held, t);
		o->value++;
		if (now_ns - t->since_ns > o->longest_hold_ns)
			o->longest_hold_ns = now_ns - t->since_ns;
		return true;
	case TK_WAITING:
		/* the first waiter leaving lets the next one be first */
		tk_unlink(&o->queue, t);
		if (o->kind == SYNC_BARRIER) {   /* as Python's: a wait given up breaks it */
			o->broken = true;
			finish_all(o, TK_BROKEN);
		}
		return true;
	default:
		return false;
	}
}

int syncobj_set(struct sync_obj *o, bool set)
{
	if (o->kind != SYNC_EVENT)
		return -EINVAL;
	o->set = set;
	if (!set || !o->queue.n)
		return 0;
	finish_all(o, TK_DONE);
	return 1;
}

int syncobj_abort(struct sync_obj *o)
{
	if (o->kind != SYNC_BARRIER)
		return -EINVAL;
	o->broken = true;
	bool waiters = o->queue.n > 0;
	finish_all(o, TK_BROKEN);
	return waiters;
}

/* As Python's reset: the waiters of the round now are broken, and the
 * barrier takes new waits again. */
int syncobj_reset(struct sync_obj *o)
{
	if (o->kind != SYNC_BARRIER)
		return -EINVAL;
	bool waiters = o->queue.n > 0;
	finish_all(o, TK_BROKEN);
	o->broken = false;
	o->generation++;
	return waiters;
}

int syncobj_release(struct sync_obj *o, int64_t n)
{
	if (o->kind != SYNC_SEMAPHORE || n < 1)
		return -EINVAL;
	if (o->bounded && o->value + n + (int64_t)o->held.n > o->initial)
		return -EOVERFLOW;
	if (o->value > INT64_MAX - n)
		return -EOVERFLOW;
	o->value += n;
	return 1;
}

bool syncobj_expire(struct sync_obj *o, int64_t now_ns)
{
	if (o->kind != SYNC_BARRIER || o->timeout_ms < 0 || !o->queue.first ||
	    now_ns - o->queue.first->since_ns < o->timeout_ms * 1000000)
		return false;
	o->broken = true;
	finish_all(o, TK_BROKEN);
	return true;
}

bool syncobj_busy(const struct sync_obj *o)
{
	return o->queue.n || o->held.n;
}
