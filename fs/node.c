/* node.c - the directory kinds, and the small helpers the walkers share. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

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
};

const struct dirdesc *dirdesc_of(enum ntype t)
{
	return (unsigned)t < N__COUNT ? dirs[t] : NULL;
}

bool row_visible(struct fs *fs, const struct dirdesc *dd, const struct row *r, uint64_t obj)
{
	return !r->only || !dd->variant || (r->only & dd->variant(fs, obj));
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
	free(h->dir.v);
	free(h->ids);
	waitset_free(h->ws);
	chan_rest_clear(&h->rest);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void emit_owner(struct emit *e, const struct owner *o)
{
	struct passwd pw, *res = NULL;
	char buf[1024];
	emit_uint(e, "uid", o->uid);
	emit_uint(e, "gid", o->gid);
	if (getpwuid_r(o->uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		emit_str(e, "owner", pw.pw_name);
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

int run_commands(struct fs *fs, uint64_t obj, const char *buf, size_t len, cmd_fn run,
		 char *err, size_t errlen)
{
	char cmd[256];
	size_t pos = 0, n, ncmds = 0;
	for (const char *line; (line = next_line(buf, len, &pos, &n));) {
		if (line_is_blank(line, n))
			continue;
		ncmds++;
		if (line_has_ctrl(line, n)) {
			snprintf(err, errlen, "a control character in the command");
			return -EINVAL;
		}
		if (n >= sizeof(cmd)) {
			snprintf(err, errlen, "command too long");
			return -EINVAL;
		}
		memcpy(cmd, line, n);
		cmd[n] = '\0';
		int rc = run(fs, obj, cmd, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!ncmds) {
		snprintf(err, errlen, "no command in the write");
		return -EINVAL;
	}
	return 0;
}
