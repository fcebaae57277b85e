/* node.c - the directory kinds, and the small helpers the walkers share. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "origin.h"

static const struct dirdesc *const dirs[N__COUNT] = {
	[N_ROOT] = &dir_root,
	[N_PROCS] = &dir_procs,
	[N_PROC] = &dir_proc,
	[N_POOLS] = &dir_pools,
	[N_POOL] = &dir_pool,
	[N_FUTURES] = &dir_futures,
	[N_FUTURE] = &dir_future,
	[N_WORKERS] = &dir_workers,
	[N_WORKER] = &dir_worker,
	[N_SYS] = &dir_sys,
	[N_CHANS] = &dir_chans,
	[N_CHAN] = &dir_chan,
	[N_SYNCS] = &dir_syncs,
	[N_SYNC] = &dir_sync,
	[N_SHMS] = &dir_shms,
	[N_SHM] = &dir_shm,
	[N_SHMDATA] = &dir_shmdata,
	[N_CHANFIFO] = &dir_chanfifo,
};

const struct dirdesc *dirdesc_of(enum ntype t)
{
	return (unsigned)t < N__COUNT ? dirs[t] : NULL;
}

bool row_visible(struct fs *fs, const struct dirdesc *dd, const struct row *r, uint64_t obj)
{
	return !r->only || !dd->variant || (r->only & dd->variant(fs, obj));
}

const struct row *dir_row(const struct dirdesc *dd, unsigned r)
{
	if (!r || r > dd->nrows || dd->rows[r - 1].kind == R_DIR)
		return NULL;
	return &dd->rows[r - 1];
}

fuse_ino_t row_ino(enum ntype t, uint64_t obj, const struct dirdesc *dd, unsigned i)
{
	const struct row *r = &dd->rows[i];
	return r->kind == R_DIR ? ino_make(r->subdir, obj, 0) : ino_make(t, obj, i + 1);
}

int dir_find(struct fs *fs, const struct dirdesc *dd, uint64_t obj, const char *name)
{
	for (unsigned i = 0; i < dd->nrows; i++)
		if (!strcmp(dd->rows[i].name, name) && row_visible(fs, dd, &dd->rows[i], obj))
			return (int)i;
	return -1;
}

int node_resolve(struct fs *fs, fuse_ino_t ino, const struct dirdesc **dd,
		 const struct row **row)
{
	*dd = dirdesc_of(ino_type(ino));
	if (!*dd)
		return -ENOENT;
	unsigned r = ino_row(ino);
	*row = NULL;
	if (r) {
		*row = dir_row(*dd, r);
		if (!*row || !row_visible(fs, *dd, *row, ino_obj(ino)))
			return -ENOENT;
	}
	if ((*dd)->exists && !(*dd)->exists(fs, ino_obj(ino)))
		return -ENOENT;
	return 0;
}

/* Lines of at most this many bytes per fill: a reader far behind takes the
 * ring in pieces, not in one buffer of all of it. */
#define EVENTS_FILL_MAX 65536

int fill_events_of(struct fs *fs, struct handle *h, uint64_t pool, bool json)
{
	if (!h->evr && !(h->evr = engine_events_open(fs->eng, pool, json)))
		return -ENOMEM;
	long n = engine_events_read(fs->eng, h->evr, &h->buf, EVENTS_FILL_MAX);
	if (n < 0)
		return (int)n;
	return h->rpos < h->buf.len;
}

int dirlist_add(struct dirlist *l, const char *name, fuse_ino_t ino, mode_t mode)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct dentry_out *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct dentry_out *d = &l->v[l->n++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ino = ino;
	d->mode = mode;
	return 0;
}

struct handle *handle_get(struct handle *h)
{
	__atomic_add_fetch(&h->refs, 1, __ATOMIC_RELAXED);
	return h;
}

void handle_put(struct handle *h)
{
	if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL))
		return;
	sb_free(&h->buf);
	sb_free(&h->pend);
	origin_put(h->origin);
	free(h->dir.v);
	free(h->ids);
	waitset_free(h->ws);
	engine_events_close(h->evr);
	chan_rest_clear(&h->rest);
	engine_sync_close(h->sync);   /* a held unit goes to the next waiter */
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void handle_opened(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->open_lock);
	h->open_prev = NULL;
	h->open_next = fs->open;
	if (fs->open)
		fs->open->open_prev = h;
	fs->open = h;
	pthread_mutex_unlock(&fs->open_lock);
}

/* Unlink h from fs->open; false if it was not linked (already released). */
static bool handle_unlink(struct fs *fs, struct handle *h)
{
	if (h->open_prev)
		h->open_prev->open_next = h->open_next;
	else if (fs->open == h)
		fs->open = h->open_next;
	else
		return false;   /* not on the list */
	if (h->open_next)
		h->open_next->open_prev = h->open_prev;
	h->open_next = h->open_prev = NULL;
	return true;
}

void handle_release(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->open_lock);
	bool linked = handle_unlink(fs, h);
	pthread_mutex_unlock(&fs->open_lock);
	if (linked)
		handle_put(h);
}

void handles_release_all(struct fs *fs)
{
	for (;;) {
		pthread_mutex_lock(&fs->open_lock);
		struct handle *h = fs->open;
		if (h)
			handle_unlink(fs, h);
		pthread_mutex_unlock(&fs->open_lock);
		if (!h)
			return;
		handle_put(h);
	}
}

/* The name of uid into name (false: it has none), from fs->names while the
 * lookup is younger than OWNER_NAME_TTL, else from getpwuid_r (outside the
 * lock), kept for the next. */
static bool owner_name(struct fs *fs, uid_t uid, char *name, size_t len)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&fs->names_lock);
	for (unsigned i = 0; i < OWNER_NAMES; i++) {
		const struct owner_name *n = &fs->names[i];
		if (n->used && n->uid == uid && now.tv_sec - n->at.tv_sec < OWNER_NAME_TTL) {
			bool known = n->known;
			if (known)
				snprintf(name, len, "%s", n->name);
			pthread_mutex_unlock(&fs->names_lock);
			return known;
		}
	}
	pthread_mutex_unlock(&fs->names_lock);

	struct passwd pw, *res = NULL;
	char buf[1024];
	bool known = getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res;
	if (known)
		snprintf(name, len, "%s", pw.pw_name);
	if (known && strlen(pw.pw_name) >= sizeof(fs->names[0].name))
		return true;               /* too long to keep: looked up each time */

	pthread_mutex_lock(&fs->names_lock);
	struct owner_name *slot = NULL;
	for (unsigned i = 0; i < OWNER_NAMES && !slot; i++)
		if (fs->names[i].used && fs->names[i].uid == uid)
			slot = &fs->names[i];
	if (!slot)
		slot = &fs->names[fs->names_next++ % OWNER_NAMES];
	*slot = (struct owner_name){ .used = true, .known = known, .uid = uid, .at = now };
	if (known)
		snprintf(slot->name, sizeof(slot->name), "%s", pw.pw_name);
	pthread_mutex_unlock(&fs->names_lock);
	return known;
}

void emit_owner(struct fs *fs, struct emit *e, const struct owner *o)
{
	char name[256];
	emit_uint(e, "uid", o->uid);
	emit_uint(e, "gid", o->gid);
	if (owner_name(fs, o->uid, name, sizeof(name)))
		emit_str(e, "owner", name);
	else
		emit_null(e, "owner");
}

int handle_add_id(struct handle *h, uint64_t id)
{
	if (h->nids == h->capids) {
		size_t cap = h->capids ? h->capids * 2 : 16;
		uint64_t *v = realloc(h->ids, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->ids = v;
		h->capids = cap;
	}
	h->ids[h->nids++] = id;
	return 0;
}

/* cmd_each_line's context: which object, and what runs each line. */
struct run_ctx {
	struct fs *fs;
	uint64_t obj;
	cmd_fn run;
};

static int run_one(void *ctx, const char *line, char *err, size_t errlen)
{
	const struct run_ctx *r = ctx;
	return r->run(r->fs, r->obj, line, err, errlen);
}

int run_commands(struct fs *fs, uint64_t obj, const char *buf, size_t len,
		 const struct cmd_write *how, cmd_fn run, char *err, size_t errlen)
{
	struct run_ctx r = { fs, obj, run };
	return cmd_each_line(buf, len, how, run_one, &r, err, errlen);
}
