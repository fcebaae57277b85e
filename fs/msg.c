/* msg.c - message files (R_MSG rows): a channel's ends.
 *
 * The channel's mode says how writes and reads frame messages (msgqueue.h):
 *   message  one write() is one message; one read() returns at most one.
 *   lines    a write() is split at newlines, each complete line one message,
 *            all of them or none (a write of more lines than the channel
 *            could ever hold goes in parts: write(2) returns the bytes of
 *            the lines taken, and the writer sends the rest again); a last
 *            line without a newline is kept on the descriptor (h->pend),
 *            completed by its next write, and put as a message of its own
 *            when the descriptor is closed (flush).  A read() returns as
 *            many whole messages as fit in its buffer.
 * Either way, a message longer than the read's buffer comes in parts: the
 * read keeps the rest on its descriptor (h->rest), and the next reads there
 * return more of it; a descriptor closed with a rest left drops it.
 *
 * A read with nothing to take, or a write (or a close with an unfinished
 * line) with no room, is parked (never a sleeping worker thread); reads and
 * writes that are O_NONBLOCK get EAGAIN instead.  When a parked request is
 * woken, park.c claims it first (once `ready` says it can proceed) and only
 * then takes or gives (`answer`), so a request answered EINTR has moved
 * nothing: a message is never lost to an interrupted reader nor put twice by
 * a retried write.  One that loses the message or the room to a faster
 * request after its claim is parked again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "kind.h"

/* Reply with what h->rest holds for a read of size: the unread part of its
 * first message, and whole messages after it while they fit.  Several are
 * copied into one buffer; without the memory for it, the first goes alone
 * and the others stay for the next read.  With h->lock held. */
static void reply_rest(struct handle *h, fuse_req_t req, size_t size)
{
	const char *p;
	size_t first = chan_rest_peek(&h->rest, size, &p);
	size_t total = chan_rest_fit(&h->rest, size);
	char *out = total > first ? malloc(total) : NULL;
	if (!out) {
		fuse_reply_buf(req, p, first);
		chan_rest_advance(&h->rest, first);
		return;
	}
	for (size_t n = 0, k; n < total; n += k) {
		k = chan_rest_peek(&h->rest, total - n, &p);
		memcpy(out + n, p, k);
		chan_rest_advance(&h->rest, k);
	}
	fuse_reply_buf(req, out, total);
	free(out);
}

/* Take messages (or go on with the rest of the last) and answer req: 1, or
 * 0 if there are none yet (req unanswered).  With h->lock held. */
static int try_read(struct fs *fs, struct handle *h, fuse_req_t req, size_t size)
{
	if (chan_rest_empty(&h->rest)) {
		struct chan_msg *m = NULL;
		int rc = h->row->msg->take(fs, h, size, &m);
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
	reply_rest(h, req, size);
	return 1;
}

/* Give buf (after the descriptor's unfinished line) and answer req: 1, or 0
 * if there is no room yet (req unanswered).  What follows the write's last
 * newline is the unfinished line now: room for it is made first, so a write
 * whose lines went in is never refused after all.  With h->lock held. */
static int try_write(struct fs *fs, struct handle *h, fuse_req_t req, const char *buf,
		     size_t len)
{
	const char *nl = memrchr(buf, '\n', len);
	size_t tail = nl ? len - (size_t)(nl - buf) - 1 : len;
	if (sb_reserve(&h->pend, tail) < 0) {
		fuse_reply_err(req, ENOMEM);
		return 1;
	}
	ssize_t used = h->row->msg->give(fs, h, h->pend.buf, h->pend.len, buf, len);
	if (used == -EAGAIN)
		return 0;
	if (used < 0) {
		fuse_reply_err(req, (int)-used);
		return 1;
	}
	if (used > 0)
		sb_reset(&h->pend);
	/* more lines than the channel could ever hold: taken in part, and the
	 * writer (stdio, cat, a shell) writes the rest again */
	bool part = memchr(buf + used, '\n', len - (size_t)used) != NULL;
	if (!part)
		sb_add(&h->pend, buf + used, len - (size_t)used);
	if (h->pend.len == 0)
		sb_free(&h->pend);   /* a writer of whole lines holds no memory */
	fuse_reply_write(req, part ? (size_t)used : len);
	return 1;
}

/* A parked read (a->data NULL) or write: can it proceed now?  A reader
 * with a rest in hand can always read. */
static int parked_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	if (!a->data)
		return !chan_rest_empty(&h->rest) || (h->row->msg->events(fs, h, 0) & POLLIN);
	return !h->row->msg->waits(fs, h, h->pend.len, a->data, a->len);
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

/* ---- the unfinished line at close ------------------------------------------------ */

/* Put a closing descriptor's unfinished line (a->data) and answer the
 * flush: 1, or 0 if there is no room yet.  With h->lock held. */
static int flush_answer(struct fs *fs, struct handle *h, fuse_req_t req,
			const struct park_args *a, int ready)
{
	int rc = h->row->msg->give_last(fs, h, a->data, a->len);
	if (rc == -EAGAIN)
		return 0;
	fuse_reply_err(req, -rc);
	return 1;
}

static int flush_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	return (h->row->msg->events(fs, h, a->len) & POLLOUT) != 0;
}

static const struct park_ops flush_later = {
	.ready = flush_ready,
	.answer = flush_answer,
	.waiting = parked_waiting,
};

/* A close: the descriptor's unfinished line becomes a message.  Without room
 * the close waits for it as a write would, O_NONBLOCK or not (a close that
 * gave up would lose the line); Ctrl-C ends it with EINTR, the line lost. */
static int msg_flush(struct fs *fs, fuse_req_t req, struct handle *h)
{
	pthread_mutex_lock(&h->lock);
	struct strbuf line = h->pend;   /* this close owns it now */
	h->pend = (struct strbuf)STRBUF_INIT;
	pthread_mutex_unlock(&h->lock);
	if (line.len == 0) {
		sb_free(&line);
		return 0;
	}
	int rc = recheck(req, h, W_OK);
	if (rc == 0)
		rc = h->row->msg->give_last(fs, h, line.buf, line.len);
	if (rc == -EAGAIN) {
		park_req(fs->park, req, h, &flush_later,
			 &(struct park_args){ .data = line.buf, .len = line.len },
			 h->row->waits_on, h->obj);
		rc = KIND_ANSWERED;
	}
	sb_free(&line);
	return rc;
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
	.flush = msg_flush,
	.poll = msg_poll,
	.writable = msg_writable,
	.nonseekable = true,
};
