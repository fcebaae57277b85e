/* kind_ctl.c - files that answer: control files (R_CTL), files that block
 * until their object is ready (R_WAIT), and files of replies produced over
 * time (R_PULL).
 *
 * A control file runs each complete line written to it (its row's `store`)
 * and gives its replies and errors back to reads, as a stream.  A WAIT or
 * PULL read that cannot be answered yet is parked (park.c) with the two
 * callbacks below that look again and answer it: no worker thread sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "kind.h"
#include "origin.h"
#include "spec.h"

/* Serve the unread replies of a stream-like handle (CTL, PULL); an empty
 * reply is EOF.  Called with h->lock held. */
static void reply_stream(fuse_req_t req, struct handle *h, size_t size)
{
	size_t avail = h->buf.len - h->rpos;
	size_t n = avail < size ? avail : size;
	fuse_reply_buf(req, h->buf.buf ? h->buf.buf + h->rpos : NULL, n);
	h->rpos += n;
	if (h->rpos == h->buf.len) {   /* all read: start afresh */
		sb_reset(&h->buf);
		h->rpos = 0;
	}
}

/* ---- control files ------------------------------------------------------------- */

/* A control file that has a `show` shows it first to a reader. */
static int ctl_open(struct fs *fs, struct handle *h, int flags)
{
	if (!h->row->show || (flags & O_ACCMODE) == O_WRONLY)
		return 0;
	return h->row->show(fs, h->obj, &h->buf);
}

static void ctl_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		     int flags)
{
	pthread_mutex_lock(&h->lock);
	reply_stream(req, h, size);
	pthread_mutex_unlock(&h->lock);
}

/* Run the lines gathered in h->pend.  Errors are also kept for reading back. */
static int run_pending(struct fs *fs, struct handle *h, const struct caller *c)
{
	char err[512] = "";
	int rc = h->row->store(fs, h, h->pend.buf, h->pend.len, c, err, sizeof(err));
	sb_reset(&h->pend);
	if (rc < 0) {
		sb_printf(&h->buf, "error: %s\n", err[0] ? err : strerror(-rc));
		engine_log(fs->eng, "%s: refused (%s): %s", h->row->name, strerror(-rc),
			   err[0] ? err : "-");
	}
	return rc;
}

/* Refuse a write that makes the pending bytes too long: over max_write, or
 * a line longer than any control file takes (refused on the piece that
 * shows it, not after the kernel has fed us a megabyte in 128 KiB pieces,
 * which would leave the writer with a short count).  0 or -E2BIG, with the
 * error kept for reading back.  With h->lock held. */
static int pend_too_long(struct fs *fs, struct handle *h, size_t size)
{
	if (h->pend.len + size > fs->cfg->max_write) {
		sb_reset(&h->pend);
		sb_printf(&h->buf, "error: write of %zu bytes is over max_write=%llu\n",
			  h->pend.len + size, (unsigned long long)fs->cfg->max_write);
		engine_log(fs->eng, "%s: refused: write over max_write", h->row->name);
		return -E2BIG;
	}
	return 0;
}

static int line_too_long(struct fs *fs, struct handle *h)
{
	const char *nl = h->pend.len ? memrchr(h->pend.buf, '\n', h->pend.len) : NULL;
	size_t tail = nl ? h->pend.len - (size_t)(nl - h->pend.buf) - 1 : h->pend.len;
	if (tail <= SPEC_LINE_MAX)
		return 0;
	sb_reset(&h->pend);
	sb_printf(&h->buf, "error: a line longer than %d bytes\n", SPEC_LINE_MAX);
	engine_log(fs->eng, "%s: refused: a line longer than %d bytes", h->row->name,
		   SPEC_LINE_MAX);
	return -E2BIG;
}

/* The writer's directory and environment, read while it waits in write().
 * A root daemon reads them for another user only as that user could. */
static struct origin *capture_writer(struct fs *fs, const struct caller *c)
{
	uid_t as = geteuid() == 0 && c->uid != 0 ? c->uid : (uid_t)-1;
	return origin_capture(c->pid, as);
}

/* A control write: complete lines run when the write that ends them arrives
 * (a line split across writes, as the kernel does with big writes, is
 * gathered first); a final line without a newline runs at close (flush). */
static void ctl_write(struct fs *fs, fuse_req_t req, struct handle *h, const char *buf,
		      size_t size, int flags)
{
	if (!h->row->store)
		return (void)fuse_reply_err(req, EBADF);
	struct caller c = caller_of(req);
	struct origin *o = NULL;
	if (h->row->here && !(o = capture_writer(fs, &c)))
		return (void)fuse_reply_err(req, ENOMEM);

	pthread_mutex_lock(&h->lock);
	if (o) {   /* the lines this write ends run with its writer's context */
		origin_put(h->origin);
		h->origin = o;
	}
	int rc = pend_too_long(fs, h, size);
	if (rc == 0) {
		sb_add(&h->pend, buf, size);
		rc = sb_error(&h->pend);
		if (rc == 0)
			rc = line_too_long(fs, h);
		if (rc == 0 && size && buf[size - 1] == '\n')
			rc = run_pending(fs, h, &c);
	}
	pthread_mutex_unlock(&h->lock);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/* A last line without a newline runs at close. */
static int ctl_flush(struct fs *fs, fuse_req_t req, struct handle *h)
{
	if (!h->row->store)
		return 0;
	int rc = h->pend.len ? recheck(req, h, W_OK) : 0;
	if (rc < 0)
		return rc;
	struct caller c = caller_of(req);
	pthread_mutex_lock(&h->lock);
	if (h->pend.len)
		rc = run_pending(fs, h, &c);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* Always readable (an empty read is EOF), writable if it takes writes. */
static unsigned ctl_events(const struct handle *h)
{
	unsigned ev = POLLIN | POLLRDNORM;
	if (h->row->store)
		ev |= POLLOUT | POLLWRNORM;
	return ev;
}

static unsigned ctl_poll(struct fs *fs, struct handle *h, struct fuse_pollhandle **ph)
{
	return ctl_events(h);
}

static bool has_store(const struct row *row)
{
	return row->store != NULL;
}

const struct kind_ops ctl_kind = {
	.open = ctl_open,
	.read = ctl_read,
	.write = ctl_write,
	.flush = ctl_flush,
	.poll = ctl_poll,
	.writable = has_store,
	.nonseekable = true,
};

/* ---- reads that wait: WAIT and PULL ------------------------------------------------
 *
 * Each has a park_ops: `ready` says whether a read can be answered now (1),
 * not yet (0) or never (-errno), `answer` replies.  The same pair serves the
 * read that comes in, the parked read that park.c retries at each change of
 * the row's object, and poll. */

/* A WAIT file's content, once its row's `ready` gives it, is kept: every
 * later read of the open sees the same. */
static int wait_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	if (h->rendered)
		return 1;
	int rc = h->row->ready(fs, h->obj, &h->buf);
	if (rc == 1)
		h->rendered = true;
	else
		sb_reset(&h->buf);
	return rc;
}

static int wait_answer(struct fs *fs, struct handle *h, fuse_req_t req,
		       const struct park_args *a, int ready)
{
	if (ready < 0)
		fuse_reply_err(req, -ready);
	else
		reply_slice(req, &h->buf, a->size, a->off);
	return 1;
}

static const struct park_ops wait_later = { .ready = wait_ready, .answer = wait_answer };

/* A PULL row's error moves its fill past what failed, so it is kept until a
 * read reports it: a poll() in between only looks at it. */
static int pull_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	if (h->rpos < h->buf.len)
		return 1;
	if (!h->pull_err) {
		int rc = h->row->fill(fs, h);
		if (rc >= 0)
			return rc;
		h->pull_err = rc;
	}
	return h->pull_err;
}

/* A read answered with the error: it is reported, and gone. */
static int pull_answer(struct fs *fs, struct handle *h, fuse_req_t req,
		       const struct park_args *a, int ready)
{
	if (ready < 0) {
		h->pull_err = 0;
		fuse_reply_err(req, -ready);
	} else {
		reply_stream(req, h, a->size);
	}
	return 1;
}

static const struct park_ops pull_later = { .ready = pull_ready, .answer = pull_answer };

/* Answer now if it can be; else EAGAIN (O_NONBLOCK) or park until the row's
 * object changes. */
static void read_later(struct fs *fs, fuse_req_t req, struct handle *h, size_t size,
		       off_t off, int flags, const struct park_ops *later)
{
	struct park_args a = { .size = size, .off = off };
	pthread_mutex_lock(&h->lock);
	int rc = later->ready(fs, h, &a);
	if (rc != 0)
		later->answer(fs, h, req, &a, rc);
	pthread_mutex_unlock(&h->lock);
	if (rc != 0)
		return;
	if (flags & O_NONBLOCK)
		return (void)fuse_reply_err(req, EAGAIN);
	park_req(fs->park, req, h, later, &a, h->row->waits_on, h->obj);
}

/* Readable when a read would not wait (POLLERR if it would fail); else the
 * poll handle is kept, to be notified when the object changes. */
static unsigned poll_later(struct fs *fs, struct handle *h, struct fuse_pollhandle **ph,
			   const struct park_ops *later)
{
	unsigned revents = ctl_events(h);
	pthread_mutex_lock(&h->lock);
	int rc = later->ready(fs, h, &(struct park_args){ 0 });
	pthread_mutex_unlock(&h->lock);
	if (rc < 0)
		return POLLERR;
	if (rc == 0) {
		revents &= ~(unsigned)(POLLIN | POLLRDNORM);
		if (*ph) {
			park_poll(fs->park, h, *ph, h->row->waits_on, h->obj);
			*ph = NULL;
		}
	}
	return revents;
}

static void wait_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		      int flags)
{
	read_later(fs, req, h, size, off, flags, &wait_later);
}

static unsigned wait_poll(struct fs *fs, struct handle *h, struct fuse_pollhandle **ph)
{
	return poll_later(fs, h, ph, &wait_later);
}

const struct kind_ops wait_kind = {
	.read = wait_read,
	.poll = wait_poll,
};

static void pull_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		      int flags)
{
	read_later(fs, req, h, size, off, flags, &pull_later);
}

static unsigned pull_poll(struct fs *fs, struct handle *h, struct fuse_pollhandle **ph)
{
	return poll_later(fs, h, ph, &pull_later);
}

/* Lines written to a PULL file (when its row takes them) are commands, as
 * on a control file: `map` and `as_completed` submit what they then answer. */
const struct kind_ops pull_kind = {
	.read = pull_read,
	.write = ctl_write,
	.flush = ctl_flush,
	.poll = pull_poll,
	.writable = has_store,
	.nonseekable = true,
};
