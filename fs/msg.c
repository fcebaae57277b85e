/* msg.c - message files (R_MSG rows): one write() is one message, one read()
 * returns at most one message.
 *
 * A read shorter than the message it takes keeps the rest on its descriptor
 * (h->rest), and the next read on that descriptor returns more of the same
 * message and nothing of the next; a descriptor closed with a rest left drops
 * it.  A read with nothing to take, or a write with no room, is parked (never
 * a sleeping worker thread) unless the descriptor is O_NONBLOCK (EAGAIN).
 * When a parked request is woken, park.c claims it first and only then takes
 * or gives, so a request answered EINTR has moved nothing: a message is
 * never lost to an interrupted reader nor put twice by a retried write.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#include "fs.h"

int msg_try_read(struct fs *fs, struct handle *h, fuse_req_t req, size_t size)
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

int msg_try_write(struct fs *fs, struct handle *h, fuse_req_t req, const char *buf, size_t len)
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

/* A reader with a rest in hand can always read. */
unsigned msg_events(struct fs *fs, struct handle *h, size_t len)
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

/* The caller holds a reference on h: once the reply is out, the reader may
 * close, and its release may run before these return. */
void msg_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, int flags)
{
	pthread_mutex_lock(&h->lock);
	int done = msg_try_read(fs, h, req, size);
	pthread_mutex_unlock(&h->lock);
	if (!done && (flags & O_NONBLOCK))
		fuse_reply_err(req, EAGAIN);
	else if (!done)
		park_msg(fs->park, req, h, size, NULL, 0);
}

void msg_write(struct fs *fs, fuse_req_t req, struct handle *h, const char *buf, size_t len,
	       int flags)
{
	pthread_mutex_lock(&h->lock);
	int done = msg_try_write(fs, h, req, buf, len);
	pthread_mutex_unlock(&h->lock);
	if (!done && (flags & O_NONBLOCK))
		fuse_reply_err(req, EAGAIN);
	else if (!done)
		park_msg(fs->park, req, h, 0, buf, len);
}
