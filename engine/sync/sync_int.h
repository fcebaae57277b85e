/* sync_int.h - the sync room's private parts, shared by its files only.
 *
 * syncobj.c is the core of a synchronization object: its queues and
 * counters, pure (no engine, no lock, no clock of its own: the caller
 * passes the time), so the unit test drives it directly.  sync.c is the
 * room: the table of objects by name and id, the engine lock around every
 * call of the core, notifications, and the ctl grammars (cmdtab rows).
 *
 * A ticket is one descriptor's place at one object: a waiting or held
 * `hold` open, or a read of `wait` (an event's or a barrier's).  The
 * descriptor owns it (fs: handle->sync) and gives it back with
 * engine_sync_close when its last reference goes; while any ticket is out,
 * the object is not removed (rmdir: EBUSY), so ticket->obj stays valid.
 */
#ifndef PCFS_SYNC_INT_H
#define PCFS_SYNC_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

enum ticket_state {
	TK_WAITING,   /* in the object's queue */
	TK_HELD,      /* holds a unit (lock, semaphore) */
	TK_DONE,      /* a wait that was answered (event set, barrier passed) */
	TK_BROKEN,    /* a barrier wait that was aborted */
};

struct sync_obj;

struct sync_ticket {
	struct sync_ticket *next, *prev;   /* in obj->queue or obj->held */
	struct sync_obj *obj;              /* valid while it is in obj's lists */
	uint64_t obj_id;                   /* sync.c finds the object again by it */
	struct engine *e;                  /* sync.c's: who to give it back to */
	enum ticket_state state;
	pid_t pid;                         /* who opened the descriptor */
	uint64_t task;                     /* the pcfs task it is or descends from, 0 */
	int64_t since_ns;                  /* queued, then granted (CLOCK_MONOTONIC) */
	uint64_t generation;               /* barrier: the round it arrived in */
	unsigned index;                    /* barrier: its arrival index in that round */
	bool contended;                    /* it could not be granted at once */
};

struct tk_list {
	struct sync_ticket *first, *last;
	unsigned n;
};

struct sync_obj {
	struct sync_obj *next;             /* sync.c's table */
	uint64_t id;
	char name[SYNC_NAME_MAX + 1];
	enum sync_kind kind;
	struct owner owner;
	int64_t value;                     /* lock, semaphore: the free units */
	int64_t initial;                   /* semaphore: value= (bounded: the most) */
	bool bounded;
	bool set;                          /* event */
	unsigned parties;                  /* barrier */
	int64_t timeout_ms;                /* barrier: a wait longer breaks it (-1: none) */
	uint64_t generation;               /* barrier: rounds passed */
	bool broken;                       /* barrier: aborted until `reset` */
	struct tk_list queue, held;
	uint64_t acquisitions, contended, passed;
	int64_t longest_hold_ns;
};

/* The room's state (engine->sync): its tables, under the engine's lock. */
struct shm_obj;
struct sync {
	struct sync_obj *first;
	size_t n;
	uint64_t next_id;
	int timer_fd;            /* barriers' timeouts, -1 until one has timeout= */
	struct shm_obj *shm;     /* shm.c's segments and values */
	size_t nshm;
	uint64_t next_shm;
};
#define SYNC_OBJECTS_MAX 4096

/* sync.c: the task pid is or descends from (reads /proc: no lock held),
 * then its id with the lock held (0: none). */
int sync_ancestry(pid_t pid, pid_t *v, int max);
uint64_t sync_task_of(struct engine *e, const pid_t *v, int n);
/* shm.c: the segments' backing files go with the room */
void shm_fini(struct engine *e);
int shm_owner(struct engine *e, uint64_t id, struct owner *out);   /* lock held */

/* ---- syncobj.c: pure ---- */
void syncobj_init(struct sync_obj *o, enum sync_kind kind, int64_t value, bool bounded,
		  unsigned parties, int64_t timeout_ms);
/* A new ticket joins the object (a hold: the queue's tail; an event wait:
 * done at once if set, else queued; a barrier wait: arrives, and the round
 * passes when it completes the parties).  Returns true if others' waits
 * changed (a barrier round passed). */
bool syncobj_join(struct sync_obj *o, struct sync_ticket *t, int64_t now_ns);
/* Would the hold t be granted now?  (first in the queue, a unit free) */
bool syncobj_grantable(const struct sync_obj *o, const struct sync_ticket *t);
/* Grant t if it is grantable: true if it now holds a unit. */
bool syncobj_take(struct sync_obj *o, struct sync_ticket *t, int64_t now_ns);
/* t leaves: a held unit is given back, a waiter leaves the queue.  Returns
 * true if others may now proceed (notify them). */
bool syncobj_leave(struct sync_obj *o, struct sync_ticket *t, int64_t now_ns);
/* Event: set (every waiter is done) / clear.  Barrier: abort (every waiter
 * broken, later waits too until reset) / reset.  Semaphore: release N
 * units without a hold (bounded: never above value=; -EOVERFLOW).  Return
 * true if waiters changed, or -errno. */
int syncobj_set(struct sync_obj *o, bool set);
int syncobj_abort(struct sync_obj *o);
int syncobj_reset(struct sync_obj *o);
int syncobj_release(struct sync_obj *o, int64_t n);
/* Barrier: break it if its oldest waiter has waited timeout_ms. */
bool syncobj_expire(struct sync_obj *o, int64_t now_ns);
/* Is anyone holding or waiting (rmdir refuses)? */
bool syncobj_busy(const struct sync_obj *o);

#endif
