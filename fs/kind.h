/* kind.h - the operations of a row kind (private to fs/).
 *
 * Like Linux's file_operations: a row's kind (fs.h, enum row_kind) selects
 * one `struct kind_ops`, and ops.c's FUSE entry points do the common part
 * (the gate, the owner checks, the handle's life) and then call through it.
 * Adding a kind is adding one struct and one row of ops.c's kind_ops[].  A
 * NULL member means the common behaviour named at it.
 */
#ifndef PCFS_KIND_H
#define PCFS_KIND_H

#include <sys/stat.h>

#include "fs.h"

#define KIND_ANSWERED 1   /* flush: req is answered or parked */

struct kind_ops {
	/* A new open of h (flags: the open's): render its snapshot.  0 or
	 * -errno.  NULL: nothing to do. */
	int (*open)(struct fs *fs, struct handle *h, int flags);
	/* Instead of `open`: an open that may wait.  It takes the caller's
	 * reference on h and answers req itself, now or parked (fi: the
	 * open's, valid during the call only).  NULL: `open`. */
	void (*open_wait)(struct fs *fs, fuse_req_t req, struct handle *h,
			  const struct fuse_file_info *fi);
	/* Answer req now, or park it.  The caller holds a reference on h for
	 * the call: a reply wakes the reader, who may close at once, and the
	 * release may run on another thread before this returns.  NULL: EIO. */
	void (*read)(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		     int flags);
	/* The same for a write (the caller has rechecked the access).  NULL:
	 * EBADF. */
	void (*write)(struct fs *fs, fuse_req_t req, struct handle *h, const char *buf,
		      size_t size, int flags);
	/* A close of the descriptor: 0 or -errno, which the caller replies, or
	 * KIND_ANSWERED: req was answered or parked here.  NULL: 0.  Only
	 * descriptors that can write get a flush: see op_open. */
	int (*flush)(struct fs *fs, fuse_req_t req, struct handle *h);
	/* The poll events now.  To be notified of a change it keeps *ph (and
	 * sets it NULL).  NULL: POLLIN, never notified. */
	unsigned (*poll)(struct fs *fs, struct handle *h, struct fuse_pollhandle **ph);
	/* getattr of a file of this kind: st_size and the attribute timeout.
	 * 0 or -errno.  NULL: size 0, kept ATTR_TIMEOUT. */
	int (*attr)(struct fs *fs, const struct row *row, uint64_t obj, struct stat *st,
		    double *timeout);
	/* May a row of this kind be opened for writing?  NULL: never. */
	bool (*writable)(const struct row *row);
	/* Offsets mean nothing: a stream of replies.  A non-seekable descriptor
	 * also makes `read` in shells take one line at a time. */
	bool nonseekable;
};

/* kind_snap.c: rendered once per open (R_TEXT, R_KV), or read in place (R_STREAM) */
extern const struct kind_ops text_kind, kv_kind, stream_kind;
/* kind_ctl.c: control files and files of replies (R_CTL, R_WAIT, R_PULL) */
extern const struct kind_ops ctl_kind, wait_kind, pull_kind;
/* msg.c: message ends (R_MSG) */
extern const struct kind_ops msg_kind;
/* kind_hold.c: holds of /sync objects (R_HOLD) */
extern const struct kind_ops hold_kind;

/* Serve [off, off+size) of b: the reply of snapshot files (kind_snap.c). */
void reply_slice(fuse_req_t req, const struct strbuf *b, size_t size, off_t off);

#endif
