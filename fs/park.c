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
 * Message files (R_MSG) park writes as well as reads.  Their waiters are
 * claimed before anything is moved (try_message), so an interrupted request
 * has taken or put nothing; one that loses the message to a faster request
 * after its claim is parked again under the same request.
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
	bool msg;           /* R_MSG: told to the row's `blocked` while it lives */
	bool write;         /* R_MSG: a parked write of data[0..len) */
	char *data;
	size_t len;
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

void reply_slice(fuse_req_t req, const struct strbuf *b, size_t size, off_t off)
{
	if (off < 0 || (size_t)off >= b->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, b->buf + off,
			       b->len - (size_t)off < size ? b->len - (size_t)off : size);
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
	if (pk->msg)
		pk->h->row->msg->blocked(p->fs, pk->h, pk->write, -1);
	handle_put(pk->h);
	free(pk->data);
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

/* A parked message read or write: claim it only once it can proceed, then
 * move the message.  Parked again if a faster request took the message or
 * the room in between (then it sees the next change). */
static void try_message(struct park *p, struct parked *pk)
{
	struct handle *h = pk->h;
	pthread_mutex_lock(&h->lock);
	unsigned want = pk->write ? POLLOUT : POLLIN;
	bool ready = (!pk->write && !chan_rest_empty(&h->rest)) ||
		     (h->row->msg->events(p->fs, h, pk->len) & want);
	bool won = ready && claim(p, pk);
	int answered = 0;
	if (won)
		answered = pk->write ? msg_try_write(p->fs, h, pk->req, pk->data, pk->len)
				     : msg_try_read(p->fs, h, pk->req, pk->size);
	pthread_mutex_unlock(&h->lock);
	if (won && !answered) {
		park_msg(p, pk->req, h, pk->size, pk->data, pk->len);
		free(pk->data);   /* park_msg kept its own copy */
		pk->data = NULL;
	}
	if (won)
		put(p, pk);
}

/* Re-check a parked read; answer it if it can be answered now.  The handle's
 * lock is held from the check to the reply, so what was found ready is what
 * is sent. */
static void try_complete(struct park *p, struct parked *pk)
{
	struct handle *h = pk->h;
	pthread_mutex_lock(&p->lock);
	bool done = pk->claimed;
	pthread_mutex_unlock(&p->lock);
	if (done)
		return;
	if (pk->msg)
		return try_message(p, pk);

	pthread_mutex_lock(&h->lock);
	int rc = handle_ready(p->fs, h);
	bool answered = rc != 0 && claim(p, pk);
	if (answered) {
		if (rc < 0)
			handle_reply_err(h, pk->req, -rc);
		else
			handle_reply(h, pk->req, pk->size, pk->off);
	}
	pthread_mutex_unlock(&h->lock);
	if (answered)
		put(p, pk);
}

void park_read(struct park *p, fuse_req_t req, struct handle *h, size_t size, off_t off,
	       enum eng_obj kind, uint64_t id)
{
	struct parked *pk = calloc(1, sizeof(*pk));
	if (!pk) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pk->req = req;
	pk->h = handle_get(h);
	pk->size = size;
	pk->off = off;
	pk->kind = kind;
	pk->id = id;
	pk->refs = 2;   /* ours until published, and the answerer's */
	publish(p, pk);
}

void park_msg(struct park *p, fuse_req_t req, struct handle *h, size_t size,
	      const char *data, size_t len)
{
	struct parked *pk = calloc(1, sizeof(*pk));
	char *copy = data ? malloc(len) : NULL;
	if (!pk || (data && !copy)) {
		free(pk);
		free(copy);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (data)
		memcpy(copy, data, len);
	pk->req = req;
	pk->h = handle_get(h);
	pk->size = size;
	pk->kind = h->row->waits_on;
	pk->id = h->obj;
	pk->refs = 2;
	pk->msg = true;
	pk->write = data != NULL;
	pk->data = copy;
	pk->len = len;
	h->row->msg->blocked(p->fs, h, pk->write, +1);
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
