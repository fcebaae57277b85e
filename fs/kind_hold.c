/* kind_hold.c - holding is an open descriptor (R_HOLD: /sync/NAME/hold).
 *
 * The open of a lock's or a semaphore's `hold` returns once a unit is the
 * opener's, and the descriptor's release gives it back: so a shell's
 * `exec 9>hold ... exec 9>&-` is a critical section, and a holder that dies
 * gives its unit back when the kernel closes its descriptors.
 *
 * An open that must wait is parked (park.c) like a read: the request
 * waits, no worker thread does.  The handle is made first and joins the
 * object's queue (its ticket, h->sync, in the engine); the park_ops below
 * look (`ready`: may the ticket be granted now?) and answer (`answer`:
 * take the unit, then fuse_reply_open with the open's fuse_file_info,
 * which park_req kept a copy of).  A waiting open that is interrupted
 * (Ctrl-C) is answered EINTR by park.c and took nothing: its record's
 * reference on h is the last, and the ticket leaves the queue with it.
 * Only the first of the queue is ever granted (syncobj.c), so waiting
 * opens are served first come, first served.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>

#include "kind.h"

/* The open succeeded: the kernel now holds h (its release drops the last
 * reference, and with it the unit). */
static void reply_opened(struct fs *fs, fuse_req_t req, struct handle *h,
			 const struct fuse_file_info *orig)
{
	struct fuse_file_info fi = *orig;
	fi.direct_io = 1;
	fi.keep_cache = 0;
	fi.noflush = 1;       /* a close of one copy of the descriptor gives nothing back */
	fi.nonseekable = 1;
	fi.fh = (uintptr_t)handle_get(h);
	handle_opened(fs, h);
	if (fuse_reply_open(req, &fi) != 0)
		handle_release(fs, h);   /* no release will come: the unit goes back */
}

static int hold_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	unsigned index;
	return engine_sync_try(h->sync, false, &index);
}

/* Take the unit `ready` saw free, and answer the open. */
static int hold_answer(struct fs *fs, struct handle *h, fuse_req_t req,
		       const struct park_args *a, int ready)
{
	unsigned index;
	int rc = ready < 0 ? ready : engine_sync_try(h->sync, true, &index);
	if (rc == 0)
		return 0;   /* parked again (not expected: only the first is granted) */
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_opened(fs, req, h, (const struct fuse_file_info *)a->data);
	return 1;
}

static const struct park_ops hold_later = { .ready = hold_ready, .answer = hold_answer };

static void hold_open(struct fs *fs, fuse_req_t req, struct handle *h,
		      const struct fuse_file_info *fi)
{
	struct caller c = caller_of(req);
	int rc = engine_sync_join(fs->eng, h->obj, true, c.pid, &h->sync);
	if (rc == 0) {
		pthread_mutex_lock(&h->lock);
		unsigned index;
		rc = engine_sync_try(h->sync, true, &index);
		if (rc == 1)
			reply_opened(fs, req, h, fi);
		pthread_mutex_unlock(&h->lock);
	}
	if (rc == 0 && (fi->flags & O_NONBLOCK))
		rc = -EAGAIN;
	if (rc == 0) {
		struct park_args a = { .data = (const char *)fi, .len = sizeof(*fi) };
		park_req(fs->park, req, h, &hold_later, &a, OBJ_SYNC, h->obj);
	} else if (rc < 0) {
		fuse_reply_err(req, -rc);
	}
	handle_put(h);   /* the caller's: the kernel's or the park's hold h now */
}

/* A hold has nothing to read: EOF. */
static void hold_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		      int flags)
{
	fuse_reply_buf(req, NULL, 0);
}

/* Writes are taken and dropped: `9>hold` in a shell opens it for writing. */
static void hold_write(struct fs *fs, fuse_req_t req, struct handle *h, const char *buf,
		       size_t size, int flags)
{
	fuse_reply_write(req, size);
}

static bool always(const struct row *row)
{
	return true;
}

const struct kind_ops hold_kind = {
	.open_wait = hold_open,
	.read = hold_read,
	.write = hold_write,
	.writable = always,
	.nonseekable = true,
};
