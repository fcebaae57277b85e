/* sync.c - the sync room: the objects of /sync by name and id, and the
 * engine's API over them (engine.h).
 *
 * Every table here is under the engine's `lock`; syncobj.c does the
 * objects' logic without one.  A change that lets waiters go on (a unit
 * given back, an event set, a barrier passed or broken) is queued as an
 * OBJ_SYNC notification of the object's id and the loop is woken to tell
 * it (engine_wake): the tellers never run inside the caller, which may be
 * the last reference of a descriptor dropped in the middle of a FUSE
 * interrupt callback.
 *
 * A barrier with timeout= is broken when its oldest waiter has waited that
 * long: one timerfd (the room's, WATCH_SYNC) is armed for the earliest
 * such deadline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sync/sync.h"
#include "sync/sync_int.h"


static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int sync_init(struct engine *e, char *err, size_t errlen)
{
	e->sync = calloc(1, sizeof(*e->sync));
	if (!e->sync) {
		snprintf(err, errlen, "sync: out of memory");
		return -ENOMEM;
	}
	e->sync->next_id = 1;
	e->sync->timer_fd = -1;
	return 0;
}

static void sync_fini(struct engine *e)
{
	if (!e->sync)
		return;
	for (struct sync_obj *o = e->sync->first, *n; o; o = n) {
		n = o->next;
		free(o);
	}
	if (e->sync->timer_fd >= 0)
		close(e->sync->timer_fd);
	shm_fini(e);
	free(e->sync);
	e->sync = NULL;
}

static struct sync_obj *find(struct engine *e, uint64_t id)
{
	for (struct sync_obj *o = e->sync->first; o; o = o->next)
		if (o->id == id)
			return o;
	return NULL;
}

static struct sync_obj *find_name(struct engine *e, const char *name)
{
	for (struct sync_obj *o = e->sync->first; o; o = o->next)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

/* Tell o's waiters, from the loop (lock held). */
static void changed(struct engine *e, struct sync_obj *o)
{
	engine_notify_locked(e, OBJ_SYNC, o->id);
	engine_wake(e);
}

/* ---- barriers' timeouts --------------------------------------------------------- */

/* Arm the timer for the earliest deadline of a waiting barrier (lock held). */
static void arm_timer(struct engine *e)
{
	int64_t first = -1;
	for (struct sync_obj *o = e->sync->first; o; o = o->next) {
		if (o->kind != SYNC_BARRIER || o->timeout_ms < 0 || !o->queue.first)
			continue;
		int64_t at = o->queue.first->since_ns + o->timeout_ms * 1000000;
		if (first < 0 || at < first)
			first = at;
	}
	if (e->sync->timer_fd < 0 && first >= 0) {
		e->sync->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (e->sync->timer_fd < 0 ||
		    engine_watch(e, e->sync->timer_fd, WATCH_SYNC, 0) < 0) {
			log_add(e, LOG_LVL_ERROR, "sync: no timer for barriers' timeouts: %s",
				strerror(errno));
			return;
		}
	}
	if (e->sync->timer_fd < 0)
		return;
	struct itimerspec its = { 0 };
	if (first >= 0) {   /* absolute; a deadline passed fires at once */
		its.it_value.tv_sec = first / 1000000000;
		its.it_value.tv_nsec = first % 1000000000;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(e->sync->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_timer(struct engine *e, uint64_t id, uint32_t events)
{
	uint64_t ticks;
	if (read(e->sync->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	int64_t now = now_ns();
	for (struct sync_obj *o = e->sync->first; o; o = o->next) {
		if (syncobj_expire(o, now)) {
			log_add(e, LOG_LVL_INFO, "barrier %s broken: a wait took over %lld ms",
				o->name, (long long)o->timeout_ms);
			changed(e, o);
		}
	}
	arm_timer(e);
}

/* ---- objects ------------------------------------------------------------------ */

int engine_sync_create(struct engine *e, const struct sync_spec *s, const struct owner *who,
		       uint64_t *id, char *err, size_t errlen)
{
	if (!sync_name_ok(s->name)) {
		snprintf(err, errlen, "bad name");
		return -EINVAL;
	}
	struct sync_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	strcpy(o->name, s->name);
	o->owner = *who;
	syncobj_init(o, s->kind, s->value, s->bounded, s->parties, s->timeout_ms);
	int rc = 0;
	pthread_mutex_lock(&e->lock);
	if (find_name(e, s->name)) {
		snprintf(err, errlen, "'%s' exists", s->name);
		rc = -EEXIST;
	} else if (e->sync->n >= SYNC_OBJECTS_MAX) {
		snprintf(err, errlen, "there are %d objects already", SYNC_OBJECTS_MAX);
		rc = -ENOSPC;
	} else {
		o->id = *id = e->sync->next_id++;
		o->next = e->sync->first;
		e->sync->first = o;
		e->sync->n++;
		log_add(e, LOG_LVL_INFO, "%s %s made", sync_kind_name(o->kind), o->name);
	}
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		free(o);
	return rc;
}

int engine_sync_remove(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, id);
	int rc = !o ? -ENOENT : syncobj_busy(o) ? -EBUSY : 0;
	if (rc == 0) {
		for (struct sync_obj **pp = &e->sync->first; *pp; pp = &(*pp)->next) {
			if (*pp == o) {
				*pp = o->next;
				break;
			}
		}
		e->sync->n--;
		log_add(e, LOG_LVL_INFO, "%s %s removed", sync_kind_name(o->kind), o->name);
		changed(e, o);   /* done descriptors' next reads see it gone */
		free(o);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_sync_lookup(struct engine *e, const char *name, uint64_t *id)
{
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find_name(e, name);
	if (o)
		*id = o->id;
	pthread_mutex_unlock(&e->lock);
	return o ? 0 : -ENOENT;
}

int engine_sync_kind(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, id);
	int rc = o ? (int)o->kind : -ENOENT;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct sync_entry *)a)->name, ((const struct sync_entry *)b)->name);
}

int engine_sync_list(struct engine *e, struct sync_entry **v, size_t *n)
{
	pthread_mutex_lock(&e->lock);
	*n = e->sync->n;
	*v = calloc(*n ? *n : 1, sizeof(**v));
	size_t i = 0;
	for (struct sync_obj *o = e->sync->first; *v && o; o = o->next, i++) {
		(*v)[i].id = o->id;
		strcpy((*v)[i].name, o->name);
	}
	pthread_mutex_unlock(&e->lock);
	if (!*v)
		return -ENOMEM;
	qsort(*v, *n, sizeof(**v), by_name);
	return 0;
}

static void copy_info(const struct sync_obj *o, struct sync_info *out, int64_t now)
{
	out->id = o->id;
	strcpy(out->name, o->name);
	out->kind = o->kind;
	out->value = o->value;
	out->initial = o->initial;
	out->bounded = o->bounded;
	out->set = o->set;
	out->parties = o->parties;
	out->arrived = o->kind == SYNC_BARRIER ? o->queue.n : 0;
	out->timeout_ms = o->timeout_ms;
	out->broken = o->broken;
	out->generation = o->generation;
	out->passed = o->passed;
	out->waiters = o->queue.n;
	out->holders = o->held.n;
	unsigned i = 0;
	for (const struct sync_ticket *t = o->held.first; t && i < SYNC_HOLDERS_MAX;
	     t = t->next, i++)
		out->holder[i] = (struct sync_holder){ .pid = t->pid, .task = t->task,
						       .held_for = (now - t->since_ns) / 1e9 };
	out->acquisitions = o->acquisitions;
	out->contended = o->contended;
	out->longest_hold = o->longest_hold_ns / 1e9;
	out->owner = o->owner;
}

/* A holder that opened before its task was in the table (a task's first
 * steps can race its spawner's bookkeeping) is looked for again now. */
static void find_tasks(struct engine *e, struct sync_info *out)
{
	pid_t chain[16];
	unsigned n = out->holders < SYNC_HOLDERS_MAX ? out->holders : SYNC_HOLDERS_MAX;
	for (unsigned i = 0; i < n; i++) {
		if (out->holder[i].task)
			continue;
		int k = sync_ancestry(out->holder[i].pid, chain, 16);
		pthread_mutex_lock(&e->lock);
		out->holder[i].task = sync_task_of(e, chain, k);
		pthread_mutex_unlock(&e->lock);
	}
}

int engine_sync_info(struct engine *e, uint64_t id, struct sync_info *out)
{
	memset(out, 0, sizeof(*out));
	int64_t now = now_ns();
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, id);
	if (o)
		copy_info(o, out, now);
	pthread_mutex_unlock(&e->lock);
	if (!o)
		return -ENOENT;
	find_tasks(e, out);
	return 0;
}

static int apply(struct sync_obj *o, const struct sync_cmd *c)
{
	switch (c->op) {
	case SYNC_OP_SET:     return syncobj_set(o, true);
	case SYNC_OP_CLEAR:   return syncobj_set(o, false);
	case SYNC_OP_ABORT:   return syncobj_abort(o);
	case SYNC_OP_RESET:   return syncobj_reset(o);
	case SYNC_OP_RELEASE: return syncobj_release(o, c->n);
	}
	return -EINVAL;
}

int engine_sync_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen)
{
	struct sync_cmd c;
	int rc = sync_parse_ctl(line, &c, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, id);
	if (!o) {
		rc = -ENOENT;
	} else if (sync_op_kind(c.op) != o->kind) {
		snprintf(err, errlen, "%s is for a %s; this is a %s", sync_op_name(c.op),
			 sync_kind_name(sync_op_kind(c.op)), sync_kind_name(o->kind));
		rc = -EINVAL;
	} else if ((rc = apply(o, &c)) == -EOVERFLOW) {
		snprintf(err, errlen, "a bounded semaphore never goes over value=%lld",
			 (long long)o->initial);
	} else if (rc >= 0) {
		changed(e, o);
		rc = 0;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* ---- tickets ---------------------------------------------------------------------- */

/* The task pid is, or the nearest task among its ancestors (up to `max`
 * parents, read before the lock: /proc is not read under it). */
int sync_ancestry(pid_t pid, pid_t *v, int max)
{
	int n = 0;
	while (pid > 1 && n < max) {
		v[n++] = pid;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "re");
		if (!f)
			break;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		const char *p = strrchr(buf, ')');
		int ppid;
		if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
			break;
		pid = ppid;
	}
	return n;
}

uint64_t sync_task_of(struct engine *e, const pid_t *v, int n)
{
	for (int i = 0; i < n; i++) {
		struct task *t = task_by_pid(e, v[i]);
		if (t)
			return t->id;
	}
	return 0;
}

int engine_sync_join(struct engine *e, uint64_t id, bool hold, pid_t pid,
		     struct sync_ticket **out)
{
	pid_t chain[16];
	int n = sync_ancestry(pid, chain, 16);
	struct sync_ticket *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->e = e;
	t->pid = pid;
	t->obj_id = id;
	int rc = 0;
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, id);
	bool holds = o && (o->kind == SYNC_LOCK || o->kind == SYNC_SEMAPHORE);
	if (!o) {
		rc = -ENOENT;
	} else if (hold != holds) {
		rc = -EINVAL;
	} else {
		t->task = sync_task_of(e, chain, n);
		if (syncobj_join(o, t, now_ns()))
			changed(e, o);
		if (o->kind == SYNC_BARRIER && o->timeout_ms >= 0)
			arm_timer(e);
	}
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		free(t);
	else
		*out = t;
	return rc;
}

int engine_sync_try(struct sync_ticket *t, bool take, unsigned *index)
{
	struct engine *e = t->e;
	int rc = 0;
	*index = 0;
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, t->obj_id);
	if (t->state == TK_HELD || t->state == TK_DONE) {
		*index = t->index;
		rc = 1;
	} else if (t->state == TK_BROKEN) {
		rc = -EPIPE;
	} else if (!o) {
		rc = -EIDRM;
	} else if (take) {
		rc = syncobj_take(o, t, now_ns());
	} else {
		rc = syncobj_grantable(o, t);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

void engine_sync_close(struct sync_ticket *t)
{
	if (!t)
		return;
	struct engine *e = t->e;
	pthread_mutex_lock(&e->lock);
	struct sync_obj *o = find(e, t->obj_id);
	if (o && syncobj_leave(o, t, now_ns()))
		changed(e, o);
	pthread_mutex_unlock(&e->lock);
	free(t);
}

static int sync_owner(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out)
{
	if (kind == OBJ_SHM)
		return shm_owner(e, id, out);
	if (kind != OBJ_SYNC)
		return -ESRCH;
	struct sync_obj *o = find(e, id);
	if (!o)
		return -ENOENT;
	*out = o->owner;
	return 0;
}

static const struct watch_row sync_watches[] = {
	{ .type = WATCH_SYNC, .fn = on_timer },
};

const struct room sync_room = {
	.name = "sync",
	.init = sync_init,
	.fini = sync_fini,
	.watches = sync_watches,
	.nwatches = sizeof(sync_watches) / sizeof(sync_watches[0]),
	.owner = sync_owner,
};
