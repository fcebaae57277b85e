/* kind_snap.c - files read as they are: snapshots and streams.
 *
 * R_TEXT and R_KV files are rendered once, at open, into a buffer the handle
 * owns: every read of that open sees the same content, whatever offsets it
 * reads at (like procfs' seq_file).  R_STREAM files (stdout, stderr) are
 * append-only and read in place, at the reader's offset; they report their
 * true, growing size so `tail -f` follows them.
 */
#include <errno.h>
#include <stdlib.h>

#include "kind.h"

void reply_slice(fuse_req_t req, const struct strbuf *b, size_t size, off_t off)
{
	if (off < 0 || (size_t)off >= b->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, b->buf + off,
			       b->len - (size_t)off < size ? b->len - (size_t)off : size);
}

static int text_open(struct fs *fs, struct handle *h, int flags)
{
	int rc = h->row->show(fs, h->obj, &h->buf);
	h->rendered = true;
	return rc;
}

static int kv_open(struct fs *fs, struct handle *h, int flags)
{
	struct emit e;
	emit_begin(&e, &h->buf, h->row->json ? EMIT_JSON : EMIT_TEXT);
	int rc = h->row->kv(fs, h->obj, &e);
	emit_end(&e);
	h->rendered = true;
	return rc;
}

static void snap_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off,
		      int flags)
{
	pthread_mutex_lock(&h->lock);
	reply_slice(req, &h->buf, size, off);
	pthread_mutex_unlock(&h->lock);
}

const struct kind_ops text_kind = {
	.open = text_open,
	.read = snap_read,
};

const struct kind_ops kv_kind = {
	.open = kv_open,
	.read = snap_read,
};

static void stream_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size,
			off_t off, int flags)
{
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	ssize_t n = h->row->stream(fs, h->obj, (uint64_t)off, buf, size, NULL);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static int stream_attr(struct fs *fs, const struct row *row, uint64_t obj, struct stat *st,
		       double *timeout)
{
	uint64_t total = 0;
	char c;
	ssize_t n = row->stream(fs, obj, UINT64_MAX, &c, 0, &total);
	if (n < 0)
		return (int)n;
	st->st_size = (off_t)total;
	*timeout = 0;   /* it grows: let tail -f see it */
	return 0;
}

const struct kind_ops stream_kind = {
	.read = stream_read,
	.attr = stream_attr,
};
