/* park.c - blocking without blocking the server.
 *
 * A read that must wait (a task's `wait`, later a future's `result` or a
 * queue's `get`) is not served by a sleeping worker thread: its request is
 * parked here, the worker returns to the loop, and the request is answered
 * later from whichever thread learns that the object changed (the engine
 * thread, via park_changed).  So a thousand waiters cost a thousand small
 * records, not a thousand threads, and the mount stays responsive.
 *
 * Two parties may race to answer a parked request: a change that makes it
 * ready, and an interrupt (Ctrl-C on the reader) that must answer EINTR.
 * Exactly one wins by setting `claimed` under the park lock (the claim
 * protocol; see shared research notes F3):
 *   - the parker registers the interrupt callback before publishing, since
 *     the callback can fire synchronously inside registration;
 *   - the completer claims under the lock, then calls
 *     fuse_req_interrupt_func(req, NULL, NULL) without the lock, which waits
 *     out a callback in flight, and only then replies;
 *   - each record is reference counted: one reference for the parker until it
 *     has published, one for whoever answers.
 *
 * park.c knows no row kind: whoever parks a request gives its park_ops, and
 * each change calls back through them (fs.h).  `ready` looks, under the
 * handle's lock, and only a request found ready is claimed, then answered by
 * `answer` under the same lock: what was found ready is what is sent, and an
 * interrupted request has moved nothing (message files park writes too).
 * One that `answer` could not serve after all (a faster request took the
 * message in between) is parked again under the same request.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define PARK_BUCKETS 256

struct parked {
	struct parked *next, *prev;
	fuse_req_t req;
	struct handle *h;
	size_t size;
	off_t off;
	enum eng_obj kind;
	uint64_t id;
	bool claimed;
	bool linked;
	int refs;
	const struct park_ops *ops;
	struct park_args a;   /* a.data is `copy` */
	char *copy;           /* owned: a parked write's data */
};

struct poller {
	struct poller *next;
	struct handle *h;
	struct fuse_pollhandle *ph;
	enum eng_obj kind;
	uint64_t id;
};

struct park {
	struct fs *fs;
	pthread_mutex_t lock;
	struct parked *bucket[PARK_BUCKETS];
	struct poller *pollers[PARK_BUCKETS];
};

static unsigned bucket_of(enum eng_obj kind, uint64_t id)
{
	return (unsigned)((id * 0x9E3779B97F4A7C15ULL + (uint64_t)kind) >> 56) % PARK_BUCKETS;
}

struct park *park_new(struct fs *fs)
{
	struct park *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fs = fs;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void park_free(struct park *p)
{
	if (!p)
		return;
	for (unsigned b = 0; b < PARK_BUCKETS; b++) {
		for (struct poller *q = p->pollers[b], *n; q; q = n) {
			n = q->next;
			fuse_pollhandle_destroy(q->ph);
			handle_put(q->h);
			free(q);
		}
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void unlink_locked(struct park *p, struct parked *pk)
{
	if (!pk->linked)
		return;
	if (pk->prev)
		pk->prev->next = pk->next;
	else
		p->bucket[bucket_of(pk->kind, pk->id)] = pk->next;
	if (pk->next)
		pk->next->prev = pk->prev;
	pk->next = pk->prev = NULL;
	pk->linked = false;
}

static void put(struct park *p, struct parked *pk)
{
	pthread_mutex_lock(&p->lock);
	int left = --pk->refs;
	pthread_mutex_unlock(&p->lock);
	if (left)
		return;
	if (pk->ops->waiting)
		pk->ops->waiting(p->fs, pk->h, &pk->a, -1);
	handle_put(pk->h);
	free(pk->copy);
	free(pk);
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct parked *pk = data;
	struct park *p = ((struct fs *)fuse_req_userdata(req))->park;
	bool won = false;

	pthread_mutex_lock(&p->lock);
	if (!pk->claimed) {
		pk->claimed = true;
		unlink_locked(p, pk);
		won = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (won) {
		/* libfuse holds its own reference on req while we run */
		fuse_reply_err(req, EINTR);
		put(p, pk);
	}
}

/* Claim pk if it is still unclaimed; the caller then owns the answer. */
static bool claim(struct park *p, struct parked *pk)
{
	bool won = false;
	pthread_mutex_lock(&p->lock);
	if (!pk->claimed) {
		pk->claimed = true;
		unlink_locked(p, pk);
		won = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (won)
		fuse_req_interrupt_func(pk->req, NULL, NULL);   /* waits out a racing callback */
	return won;
}

static void publish(struct park *p, struct parked *pk);

/* A record for req, holding a reference on h and owning copy (a write's
 * data, or NULL); told to ops->waiting from now until it is freed. */
static struct parked *record_new(struct park *p, fuse_req_t req, struct handle *h,
				 const struct park_ops *ops, const struct park_args *a,
				 char *copy, enum eng_obj kind, uint64_t id)
{
	struct parked *pk = calloc(1, sizeof(*pk));
	if (!pk)
		return NULL;
	pk->req = req;
	pk->h = handle_get(h);
	pk->ops = ops;
	pk->a = *a;
	pk->a.data = copy;
	pk->copy = copy;
	pk->kind = kind;
	pk->id = id;
	pk->refs = 2;   /* ours until published, and the answerer's */
	if (ops->waiting)
		ops->waiting(p->fs, h, &pk->a, +1);
	return pk;
}

/* Claimed, but `answer` could not serve it after all: the same request is
 * parked again under a new record, which takes over the data.  The new one
 * is counted before the old one goes, so the count never drops in between. */
static void repark(struct park *p, struct parked *pk)
{
	struct parked *again = record_new(p, pk->req, pk->h, pk->ops, &pk->a, pk->copy,
					  pk->kind, pk->id);
	if (!again)
		return (void)fuse_reply_err(pk->req, ENOMEM);
	pk->copy = NULL;
	publish(p, again);
}

/* Re-check a parked request; answer it if it can be answered now.  The
 * handle's lock is held from the check to the reply, so what was found ready
 * is what is sent, and only a request found ready is claimed. */
static void try_complete(struct park *p, struct parked *pk)
{
	struct handle *h = pk->h;
	pthread_mutex_lock(&p->lock);
	bool done = pk->claimed;
	pthread_mutex_unlock(&p->lock);
	if (done)
		return;

	pthread_mutex_lock(&h->lock);
	int rc = pk->ops->ready(p->fs, h, &pk->a);
	bool won = rc != 0 && claim(p, pk);
	int answered = won ? pk->ops->answer(p->fs, h, pk->req, &pk->a, rc) : 0;
	pthread_mutex_unlock(&h->lock);
	if (won && !answered)
		repark(p, pk);
	if (won)
		put(p, pk);
}

void park_req(struct park *p, fuse_req_t req, struct handle *h, const struct park_ops *ops,
	      const struct park_args *a, enum eng_obj kind, uint64_t id)
{
	char *copy = NULL;
	if (a->data) {
		copy = malloc(a->len ? a->len : 1);
		if (!copy)
			return (void)fuse_reply_err(req, ENOMEM);
		memcpy(copy, a->data, a->len);
	}
	struct parked *pk = record_new(p, req, h, ops, a, copy, kind, id);
	if (!pk) {
		free(copy);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	publish(p, pk);
}

/* Make pk findable by changes and interrupts, then look once more: the
 * change may have come between the caller's check and now. */
static void publish(struct park *p, struct parked *pk)
{
	fuse_req_t req = pk->req;
	enum eng_obj kind = pk->kind;
	uint64_t id = pk->id;

	fuse_req_interrupt_func(req, on_interrupt, pk);   /* may answer EINTR right here */
	pthread_mutex_lock(&p->lock);
	if (!pk->claimed) {
		unsigned b = bucket_of(kind, id);
		pk->next = p->bucket[b];
		if (pk->next)
			pk->next->prev = pk;
		p->bucket[b] = pk;
		pk->linked = true;
	}
	pthread_mutex_unlock(&p->lock);
	try_complete(p, pk);
	put(p, pk);
}

void park_poll(struct park *p, struct handle *h, struct fuse_pollhandle *ph,
	       enum eng_obj kind, uint64_t id)
{
	unsigned b = bucket_of(kind, id);
	pthread_mutex_lock(&p->lock);
	/* one handle keeps one poll handle: the newest replaces the older */
	for (struct poller *q = p->pollers[b]; q; q = q->next) {
		if (q->h == h && q->kind == kind && q->id == id) {
			struct fuse_pollhandle *old = q->ph;
			q->ph = ph;
			pthread_mutex_unlock(&p->lock);
			fuse_pollhandle_destroy(old);
			return;
		}
	}
	struct poller *q = calloc(1, sizeof(*q));
	if (!q) {
		pthread_mutex_unlock(&p->lock);
		fuse_pollhandle_destroy(ph);
		return;
	}
	q->h = handle_get(h);
	q->ph = ph;
	q->kind = kind;
	q->id = id;
	q->next = p->pollers[b];
	p->pollers[b] = q;
	pthread_mutex_unlock(&p->lock);
}

void park_changed(void *ctx, enum eng_obj kind, uint64_t id)
{
	struct park *p = ((struct fs *)ctx)->park;
	unsigned b = bucket_of(kind, id);
	struct parked **todo = NULL;
	size_t n = 0, cap = 0;
	struct poller *wake = NULL;

	pthread_mutex_lock(&p->lock);
	for (struct parked *pk = p->bucket[b]; pk; pk = pk->next) {
		if (pk->kind != kind || pk->id != id || pk->claimed)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct parked **v = realloc(todo, cap * sizeof(*v));
			if (!v)
				break;   /* the rest stay parked until the next change */
			todo = v;
		}
		pk->refs++;
		todo[n++] = pk;
	}
	for (struct poller **qq = &p->pollers[b]; *qq;) {
		struct poller *q = *qq;
		if (q->kind == kind && q->id == id) {
			*qq = q->next;
			q->next = wake;
			wake = q;
		} else {
			qq = &q->next;
		}
	}
	pthread_mutex_unlock(&p->lock);

	for (size_t i = 0; i < n; i++) {
		try_complete(p, todo[i]);
		put(p, todo[i]);
	}
	free(todo);
	for (struct poller *q = wake, *nx; q; q = nx) {
		nx = q->next;
		fuse_lowlevel_notify_poll(q->ph);
		fuse_pollhandle_destroy(q->ph);
		handle_put(q->h);
		free(q);
	}
}

void park_fail_all(struct park *p, int err)
{
	for (unsigned b = 0; b < PARK_BUCKETS; b++) {
		for (;;) {
			pthread_mutex_lock(&p->lock);
			struct parked *pk = p->bucket[b];
			if (pk)
				pk->refs++;
			pthread_mutex_unlock(&p->lock);
			if (!pk)
				break;
			if (claim(p, pk)) {
				fuse_reply_err(pk->req, err);
				put(p, pk);
			}
			put(p, pk);
		}
	}
}
