/* msg.c - message files (R_MSG rows): one write() is one message, one read()
 * returns at most one message.
 *
 * A read shorter than the message it takes keeps the rest on its descriptor
 * (h->rest), and the next read on that descriptor returns more of the same
 * message and nothing of the next; a descriptor closed with a rest left drops
 * it.  A read with nothing to take, or a write with no room, is parked (never
 * a sleeping worker thread) unless the descriptor is O_NONBLOCK (EAGAIN).
 * When a parked request is woken, park.c claims it first (once `parked_ready`
 * says it can proceed) and only then takes or gives (`parked_answer`), so a
 * request answered EINTR has moved nothing: a message is never lost to an
 * interrupted reader nor put twice by a retried write.  One that loses the
 * message or the room to a faster request after its claim is parked again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#include "kind.h"

/* Take the next message (or the rest of the last) and answer req: 1, or 0
 * if there is none yet (req unanswered).  With h->lock held. */
static int try_read(struct fs *fs, struct handle *h, fuse_req_t req, size_t size)
{
	if (chan_rest_empty(&h->rest)) {
		struct chan_msg *m = NULL;
		int rc = h->row->msg->take(fs, h, &m);
		if (rc == -EAGAIN)
			return 0;
		if (rc == 0)   /* the end: EOF */
			fuse_reply_buf(req, NULL, 0);
		else if (rc < 0)
			fuse_reply_err(req, -rc);
		if (rc <= 0)
			return 1;
		chan_rest_set(&h->rest, m);
	}
	const char *p;
	size_t n = chan_rest_peek(&h->rest, size, &p);
	fuse_reply_buf(req, p, n);
	chan_rest_advance(&h->rest, n);
	return 1;
}

/* Give buf as one message and answer req: 1, or 0 if there is no room yet
 * (req unanswered).  With h->lock held. */
static int try_write(struct fs *fs, struct handle *h, fuse_req_t req, const char *buf,
		     size_t len)
{
	int rc = h->row->msg->give(fs, h, buf, len);
	if (rc == -EAGAIN)
		return 0;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, len);
	return 1;
}

/* A parked read (a->data NULL) or write: can it proceed now?  A reader
 * with a rest in hand can always read. */
static int parked_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	if (!a->data)
		return !chan_rest_empty(&h->rest) || (h->row->msg->events(fs, h, 0) & POLLIN);
	return (h->row->msg->events(fs, h, a->len) & POLLOUT) != 0;
}

static int parked_answer(struct fs *fs, struct handle *h, fuse_req_t req,
			 const struct park_args *a, int ready)
{
	return a->data ? try_write(fs, h, req, a->data, a->len) : try_read(fs, h, req, a->size);
}

/* The row's object counts the requests waiting on each end. */
static void parked_waiting(struct fs *fs, struct handle *h, const struct park_args *a,
			   int delta)
{
	h->row->msg->blocked(fs, h, a->data != NULL, delta);
}

static const struct park_ops msg_later = {
	.ready = parked_ready,
	.answer = parked_answer,
	.waiting = parked_waiting,
};

/* What would not wait now: a reader with a rest in hand can always read. */
static unsigned msg_events(struct fs *fs, struct handle *h, size_t len)
{
	pthread_mutex_lock(&h->lock);
	unsigned ev = h->row->msg->events(fs, h, len);
	if (!chan_rest_empty(&h->rest))
		ev |= POLLIN;
	pthread_mutex_unlock(&h->lock);
	if (ev & POLLIN)
		ev |= POLLRDNORM;
	if (ev & POLLOUT)
		ev |= POLLWRNORM;
	return ev;
}

static void msg_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		     int flags)
{
	pthread_mutex_lock(&h->lock);
	int done = try_read(fs, h, req, size);
	pthread_mutex_unlock(&h->lock);
	if (!done && (flags & O_NONBLOCK))
		fuse_reply_err(req, EAGAIN);
	else if (!done)
		park_req(fs->park, req, h, &msg_later, &(struct park_args){ .size = size },
			 h->row->waits_on, h->obj);
}

static void msg_write(struct fs *fs, fuse_req_t req, struct handle *h, const char *buf,
		      size_t len, int flags)
{
	pthread_mutex_lock(&h->lock);
	int done = try_write(fs, h, req, buf, len);
	pthread_mutex_unlock(&h->lock);
	if (!done && (flags & O_NONBLOCK))
		fuse_reply_err(req, EAGAIN);
	else if (!done)
		park_req(fs->park, req, h, &msg_later,
			 &(struct park_args){ .data = buf, .len = len }, h->row->waits_on, h->obj);
}

/* Keep the poll handle first, then look: a change in between still
 * notifies it, so no wakeup is lost. */
static unsigned msg_poll(struct fs *fs, struct handle *h, struct fuse_pollhandle **ph)
{
	if (*ph) {
		park_poll(fs->park, h, *ph, h->row->waits_on, h->obj);
		*ph = NULL;
	}
	return msg_events(fs, h, 1);
}

/* A message end is written to if its mode says so (`get` is read-only). */
static bool msg_writable(const struct row *row)
{
	return (row->mode & 0222) != 0;
}

const struct kind_ops msg_kind = {
	.read = msg_read,
	.write = msg_write,
	.poll = msg_poll,
	.writable = msg_writable,
	.nonseekable = true,
};
