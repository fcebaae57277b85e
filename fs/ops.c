/* ops.c - the FUSE low-level operations: generic walkers over the node tables.
 *
 * Directories are walked here; a file's open, read, write, flush, poll and
 * size are its row kind's (kind.h), after the gate and the owner checks.
 * No handler ever waits for a task.  Files report size 0 and are opened
 * with direct I/O (as procfs does), except the append-only streams (stdout,
 * stderr) which report their true, growing size so `tail -f` follows them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kind.h"

/* What each kind of row does (kind.h): R_DIR rows are never opened. */
static const struct kind_ops *const kind_ops[] = {
	[R_TEXT] = &text_kind,
	[R_KV] = &kv_kind,
	[R_CTL] = &ctl_kind,
	[R_WAIT] = &wait_kind,
	[R_STREAM] = &stream_kind,
	[R_PULL] = &pull_kind,
	[R_MSG] = &msg_kind,
	[R_HOLD] = &hold_kind,
};

static const struct kind_ops no_ops;

static const struct kind_ops *kind_of(const struct row *row)
{
	unsigned k = row->kind;
	if (k < sizeof(kind_ops) / sizeof(kind_ops[0]) && kind_ops[k])
		return kind_ops[k];
	return &no_ops;
}

/* A row's name in its directory (/procs/ID/mem, /pools/NAME/submit) means
 * the same inode for as long as the directory exists: the kernel may keep it.
 * It is reached only through the directory's own entry, which is checked
 * again (ENTRY_TIMEOUT) or dropped when the object goes, taking its rows
 * along; and every open, getattr and opendir checks that the object still
 * exists.  Names in lists of objects come and go: a short timeout, so a
 * removed object disappears promptly (a new one is there at once: negative
 * entries are never cached).  Task directories are the exception: their
 * entries are dropped when the task is forgotten (PROC_ENTRY_TIMEOUT, inval.c),
 * so that a `watch` over hundreds of tasks walks no LOOKUP per task. */
#define ROW_ENTRY_TIMEOUT 86400.0
#define ENTRY_TIMEOUT 1.0
/* Attributes are computed from the inode number alone (mode, size 0, the
 * mount time) and inodes are never reused, so they never change: the kernel
 * may keep them, or it asks again on every path walk (default_permissions
 * checks the mode of each component).  Whether the object still exists is
 * the entries' business.  Exceptions: streams grow (0), and a symlink's
 * size is its target's length (1 s). */
#define ATTR_TIMEOUT 86400.0
#define LINK_ATTR_TIMEOUT 1.0

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int open_want(int flags)
{
	switch (flags & O_ACCMODE) {
	case O_WRONLY: return W_OK;
	case O_RDWR:   return R_OK | W_OK;
	default:       return R_OK;
	}
}

static struct timespec mount_time;

static int node_attr(struct fs *fs, fuse_ino_t ino, struct stat *st, double *timeout)
{
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, ino, &dd, &row);
	if (rc < 0)
		return rc;
	/* like /proc: an object's files belong to whoever owns the object */
	struct owner o;
	rc = dir_owner(fs, dd, ino_obj(ino), &o);
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = o.uid;
	st->st_gid = o.gid;
	st->st_atim = st->st_mtim = st->st_ctim = mount_time;
	st->st_blksize = 4096;
	*timeout = ATTR_TIMEOUT;
	if (!row && dd->readlink) {
		struct strbuf t = STRBUF_INIT;
		rc = dd->readlink(fs, ino_obj(ino), &t);
		*timeout = LINK_ATTR_TIMEOUT;
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)t.len;
		sb_free(&t);
		return rc;
	}
	if (!row) {
		st->st_mode = S_IFDIR | dd->mode;
		st->st_nlink = 2;
		return 0;
	}
	st->st_mode = S_IFREG | row->mode;
	st->st_nlink = 1;
	const struct kind_ops *k = kind_of(row);
	return k->attr ? k->attr(fs, row, ino_obj(ino), st, timeout) : 0;
}

static void reply_entry(fuse_req_t req, struct fs *fs, fuse_ino_t ino, double entry_timeout)
{
	struct fuse_entry_param e = { .ino = ino, .entry_timeout = entry_timeout };
	int rc = node_attr(fs, ino, &e.attr, &e.attr_timeout);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	clock_gettime(CLOCK_REALTIME, &mount_time);
	/* readdirplus would take a lookup reference on every entry listed */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, parent, &dd, &row);
	if (rc < 0 || row)
		return (void)fuse_reply_err(req, rc < 0 ? -rc : ENOTDIR);
	uint64_t obj = ino_obj(parent);
	int i = dir_find(fs, dd, obj, name);
	if (i >= 0)
		return reply_entry(req, fs, row_ino(ino_type(parent), obj, dd, (unsigned)i),
				   ROW_ENTRY_TIMEOUT);
	uint64_t child;
	if (dd->lookup && dd->lookup(fs, obj, name, &child) == 0)
		return reply_entry(req, fs, ino_make(dd->child, child, 0),
				   dd->child == N_PROC ? PROC_ENTRY_TIMEOUT : ENTRY_TIMEOUT);
	fuse_reply_err(req, ENOENT);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fuse_reply_none(req);   /* inodes are computed: nothing to drop */
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct stat st;
	double timeout;
	int rc = node_attr(fs_of(req), ino, &st, &timeout);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* Can the row be opened for writing?  Control files, and message ends
 * whose mode says so (`get` is a read-only end). */
static bool row_writable(const struct row *row)
{
	const struct kind_ops *k = kind_of(row);
	return k->writable && k->writable(row);
}

/* Only a control file's size may be "set" (to 0: `>` and ftruncate). */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, ino, &dd, &row);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	if (!row || !row_writable(row) || (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
						       FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
						       FUSE_SET_ATTR_MTIME_NOW)))
		return (void)fuse_reply_err(req, EPERM);
	struct caller c = caller_of(req);
	rc = row_access(fs, &c, ino, row, W_OK);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	struct stat st;
	double timeout;
	rc = node_attr(fs, ino, &st, &timeout);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_attr(req, &st, timeout);
}

static struct handle *handle_new(fuse_ino_t ino, const struct row *row, int flags)
{
	struct handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->row = row;
	h->ino = ino;
	h->obj = ino_obj(ino);
	h->flags = flags;
	h->refs = 1;
	return h;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, ino, &dd, &row);
	if (rc < 0 || row)
		return (void)fuse_reply_err(req, rc < 0 ? -rc : ENOTDIR);
	struct handle *h = handle_new(ino, NULL, fi->flags);
	if (!h)
		return (void)fuse_reply_err(req, ENOMEM);
	/* The listing is a snapshot taken now, and readdir's offset is an index
	 * into it: objects coming and going mid-listing skip or repeat nothing. */
	uint64_t obj = ino_obj(ino);
	rc = dirlist_add(&h->dir, ".", ino, S_IFDIR);
	if (!rc)
		rc = dirlist_add(&h->dir, "..", FUSE_ROOT_ID, S_IFDIR);
	for (unsigned i = 0; !rc && i < dd->nrows; i++) {
		const struct row *r = &dd->rows[i];
		if (!row_visible(fs, dd, r, obj))
			continue;
		const struct dirdesc *sub = r->kind == R_DIR ? dirdesc_of(r->subdir) : NULL;
		rc = dirlist_add(&h->dir, r->name, row_ino(ino_type(ino), obj, dd, i),
				 !sub ? S_IFREG : sub->readlink ? S_IFLNK : S_IFDIR);
	}
	if (!rc && dd->list)
		rc = dd->list(fs, obj, &h->dir);
	const struct dirdesc *cd = dd->child ? dirdesc_of(dd->child) : NULL;
	for (size_t i = 2 + dd->nrows; cd && cd->readlink && i < h->dir.n; i++)
		h->dir.v[i].mode = S_IFLNK;
	if (rc < 0) {
		handle_put(h);
		return (void)fuse_reply_err(req, -rc);
	}
	fi->fh = (uintptr_t)h;
	fi->cache_readdir = 0;
	handle_opened(fs, h);
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, h);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	size_t used = 0;
	for (size_t i = (size_t)off; i < h->dir.n; i++) {
		const struct dentry_out *d = &h->dir.v[i];
		struct stat st = { .st_ino = d->ino, .st_mode = d->mode };
		size_t n = fuse_add_direntry(req, buf + used, size - used, d->name, &st,
					     (off_t)(i + 1));
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_release(fs_of(req), (struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, ino, &dd, &row);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	if (!row)
		return (void)fuse_reply_err(req, EISDIR);
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !row_writable(row))
		return (void)fuse_reply_err(req, EACCES);
	struct caller c = caller_of(req);
	rc = row_access(fs, &c, ino, row, open_want(fi->flags));
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);

	struct handle *h = handle_new(ino, row, fi->flags);
	if (!h)
		return (void)fuse_reply_err(req, ENOMEM);
	/* Snapshot files are rendered here, once, by their kind: every read of
	 * this open sees the same content, whatever offsets it reads at. */
	const struct kind_ops *k = kind_of(row);
	if (k->open_wait)   /* it answers, now or later, with h */
		return k->open_wait(fs, req, h, fi);
	if (k->open)
		rc = k->open(fs, h, fi->flags);
	if (rc == 0)
		rc = sb_error(&h->buf);
	if (rc < 0) {
		handle_put(h);
		return (void)fuse_reply_err(req, -rc);
	}
	fi->direct_io = 1;
	fi->keep_cache = 0;
	/* Only descriptors that write a file acting on close (a control file's
	 * last line without a newline runs then, a message end's becomes a
	 * message) get a FLUSH: the rest need no round trip on every close. */
	fi->noflush = !k->flush || (!row->store && (fi->flags & O_ACCMODE) == O_RDONLY);
	fi->nonseekable = k->nonseekable;
	fi->fh = (uintptr_t)h;
	handle_opened(fs, h);
	if (fuse_reply_open(req, fi) != 0)
		handle_release(fs, h);   /* the kernel gave up: no release will come */
}

/* A reply wakes the caller, who may close at once: its release can then run
 * on another thread before the handler has unlocked h or finished with it.
 * Reads and writes hold a reference on h for as long as they use it. */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct handle *h = handle_get((struct handle *)(uintptr_t)fi->fh);
	const struct kind_ops *k = kind_of(h->row);
	/* before anything is taken or parked: a refused wait never waits */
	int rc = recheck(req, h, R_OK);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (!k->read)
		fuse_reply_err(req, EIO);
	else
		k->read(fs_of(req), req, h, size, off, fi->flags);
	handle_put(h);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct handle *h = handle_get((struct handle *)(uintptr_t)fi->fh);
	const struct kind_ops *k = kind_of(h->row);
	int rc = recheck(req, h, W_OK);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (!k->write)
		fuse_reply_err(req, EBADF);
	else
		k->write(fs_of(req), req, h, buf, size, fi->flags);
	handle_put(h);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!admit(req))
		return;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const struct kind_ops *k = kind_of(h->row);
	int rc = k->flush ? k->flush(fs_of(req), req, h) : 0;
	if (rc != KIND_ANSWERED)
		fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_release(fs_of(req), (struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	if (!admit(req))
		return;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const struct kind_ops *k = kind_of(h->row);
	unsigned revents = k->poll ? k->poll(fs_of(req), h, &ph) : POLLIN | POLLRDNORM;
	if (ph)   /* not kept: nothing will notify it */
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, revents);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, parent, &dd, &row);
	if (rc < 0 || row)
		return (void)fuse_reply_err(req, rc < 0 ? -rc : ENOTDIR);
	for (unsigned i = 0; i < dd->nrows; i++)
		if (!strcmp(dd->rows[i].name, name))
			return (void)fuse_reply_err(req, EEXIST);
	if (!dd->mkdir)
		return (void)fuse_reply_err(req, EPERM);
	struct caller c = caller_of(req);
	uint64_t child;
	rc = dd->mkdir(fs, ino_obj(parent), name, &c, &child);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	reply_entry(req, fs, ino_make(dd->child, child, 0), ENTRY_TIMEOUT);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd;
	const struct row *row;
	int rc = node_resolve(fs, parent, &dd, &row);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	for (unsigned i = 0; dd && i < dd->nrows; i++)
		if (!strcmp(dd->rows[i].name, name))
			return (void)fuse_reply_err(req, dd->rows[i].kind == R_DIR ? EPERM : ENOTDIR);
	if (!dd->rmdir)
		return (void)fuse_reply_err(req, EPERM);
	struct caller c = caller_of(req);
	/* removing an object is controlling it: its owner's, or root's */
	uint64_t child;
	struct owner o;
	if (dd->lookup(fs, ino_obj(parent), name, &child) < 0)
		return (void)fuse_reply_err(req, ENOENT);
	rc = dir_owner(fs, dirdesc_of(dd->child), child, &o);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	if (!access_may_control(&o, c.uid)) {
		log_refusal(fs, "uid %u (pid %d) refused rmdir of %s: it belongs to uid %u",
			    (unsigned)c.uid, (int)c.pid, name, (unsigned)o.uid);
		return (void)fuse_reply_err(req, EACCES);
	}
	rc = dd->rmdir(fs, ino_obj(parent), name, &c);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (!admit(req))
		return;
	struct fs *fs = fs_of(req);
	const struct dirdesc *dd = dirdesc_of(ino_type(ino));
	if (!dd || !dd->readlink || ino_row(ino))
		return (void)fuse_reply_err(req, EINVAL);
	struct strbuf t = STRBUF_INIT;
	int rc = dd->readlink(fs, ino_obj(ino), &t);
	if (rc == 0)
		rc = sb_error(&t);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, sb_cstr(&t));
	sb_free(&t);
}

const struct fuse_lowlevel_ops pcfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.poll = op_poll,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.readlink = op_readlink,
};
