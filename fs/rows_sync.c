/* rows_sync.c - /sync and /sync/NAME: locks, semaphores, events and
 * barriers as files.
 *
 * One table serves the four kinds of object directory: each row says which
 * kinds show it (`only`).  A lock's and a semaphore's `hold` is held by
 * opening it (R_HOLD, kind_hold.c); an event's and a barrier's `wait` is a
 * file of replies (R_PULL) whose read parks until the event is set or the
 * barrier's round passes, then gives one line ("set", or the reader's
 * arrival index) and EOF.  The objects live in the engine's sync room.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define LOCK (1u << SYNC_LOCK)
#define SEMAPHORE (1u << SYNC_SEMAPHORE)
#define EVENT (1u << SYNC_EVENT)
#define BARRIER (1u << SYNC_BARRIER)

/* ---- /sync ----------------------------------------------------------------------- */

static int syncs_list(struct fs *fs, uint64_t obj, struct dirlist *out)
{
	struct sync_entry *v;
	size_t n;
	int rc = engine_sync_list(fs->eng, &v, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = dirlist_add(out, v[i].name, ino_make(N_SYNC, v[i].id, 0), S_IFDIR);
	free(v);
	return rc;
}

static int syncs_lookup(struct fs *fs, uint64_t obj, const char *name, uint64_t *child)
{
	return engine_sync_lookup(fs->eng, name, child);
}

static int syncs_rmdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c)
{
	uint64_t id;
	int rc = engine_sync_lookup(fs->eng, name, &id);
	return rc < 0 ? rc : engine_sync_remove(fs->eng, id);
}

static int create(struct fs *fs, const struct caller *c, const struct sync_spec *s,
		  uint64_t *id, char *err, size_t errlen)
{
	struct owner who = { .uid = c->uid, .gid = c->gid };
	return engine_sync_create(fs->eng, s, &who, id, err, errlen);
}

/* mkdir /sync/NAME: a lock. */
static int syncs_mkdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c,
		       uint64_t *child)
{
	struct sync_spec s = { .kind = SYNC_LOCK, .timeout_ms = -1 };
	char err[256] = "";
	if (!sync_name_ok(name)) {
		engine_log(fs->eng, "mkdir /sync/%.64s: refused: a name is 1 to %d of "
			   "A-Z a-z 0-9 . _ - (not . or ..)", name, SYNC_NAME_MAX);
		return -EINVAL;
	}
	strcpy(s.name, name);
	int rc = create(fs, c, &s, child, err, sizeof(err));
	if (rc < 0)
		engine_log(fs->eng, "mkdir /sync/%s: %s", name, err);
	return rc;
}

struct create_ctx {
	struct fs *fs;
	const struct caller *c;
};

static int create_line(void *ctx, const char *line, char *err, size_t errlen)
{
	struct create_ctx *x = ctx;
	struct sync_spec s;
	uint64_t id;
	int rc = sync_parse_create(line, &s, err, errlen);
	return rc < 0 ? rc : create(x->fs, x->c, &s, &id, err, errlen);
}

/* ctl: one object per line; the first bad line stops the write. */
static int store_syncs_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			   const struct caller *c, char *err, size_t errlen)
{
	struct create_ctx x = { fs, c };
	return cmd_each_line(buf, len, NULL, create_line, &x, err, errlen);
}

static const struct row syncs_rows[] = {
	CTL("ctl", 0666, store_syncs_ctl),   /* every user let in may make objects */
};

const struct dirdesc dir_syncs = {
	.rows = syncs_rows,
	.nrows = sizeof(syncs_rows) / sizeof(syncs_rows[0]),
	.mode = 01777,   /* writable by all, sticky: anyone let in removes their own */
	.child = N_SYNC,
	.list = syncs_list,
	.lookup = syncs_lookup,
	.rmdir = syncs_rmdir,
	.mkdir = syncs_mkdir,
};

/* ---- /sync/NAME ------------------------------------------------------------------ */

static bool sync_exists(struct fs *fs, uint64_t id)
{
	return engine_sync_kind(fs->eng, id) >= 0;
}

static unsigned sync_variant(struct fs *fs, uint64_t id)
{
	int k = engine_sync_kind(fs->eng, id);
	return k < 0 ? 0 : 1u << k;
}

/* The holders, blank-separated: their pids, or their task ids ("-": none). */
static void emit_holders(struct emit *e, const struct sync_info *si)
{
	struct strbuf pids = STRBUF_INIT, tasks = STRBUF_INIT;
	unsigned n = si->holders < SYNC_HOLDERS_MAX ? si->holders : SYNC_HOLDERS_MAX;
	for (unsigned i = 0; i < n; i++) {
		sb_printf(&pids, "%s%d", i ? " " : "", (int)si->holder[i].pid);
		if (si->holder[i].task)
			sb_printf(&tasks, "%s%llu", i ? " " : "",
				  (unsigned long long)si->holder[i].task);
		else
			sb_printf(&tasks, "%s-", i ? " " : "");
	}
	emit_uint(e, "holders", si->holders);
	emit_str(e, "holder_pids", sb_cstr(&pids));
	emit_str(e, "holder_tasks", sb_cstr(&tasks));
	if (n && si->holder[0].task)
		emit_uint(e, "holder", si->holder[0].task);
	else
		emit_null(e, "holder");
	if (n)
		emit_int(e, "holder_pid", si->holder[0].pid);
	else
		emit_null(e, "holder_pid");
	sb_free(&pids);
	sb_free(&tasks);
}

static void emit_kind(struct emit *e, const struct sync_info *si)
{
	switch (si->kind) {
	case SYNC_LOCK:
		emit_str(e, "state", si->holders ? "held" : "free");
		emit_holders(e, si);
		break;
	case SYNC_SEMAPHORE:
		emit_int(e, "value", si->value);
		emit_int(e, "initial", si->initial);
		emit_bool(e, "bounded", si->bounded);
		emit_holders(e, si);
		break;
	case SYNC_EVENT:
		emit_bool(e, "set", si->set);
		break;
	case SYNC_BARRIER:
		emit_uint(e, "parties", si->parties);
		emit_uint(e, "arrived", si->arrived);
		emit_bool(e, "broken", si->broken);
		emit_uint(e, "passed", si->passed);
		if (si->timeout_ms >= 0)
			emit_fixed(e, "timeout", si->timeout_ms / 1000.0, 3);
		else
			emit_null(e, "timeout");
		break;
	}
}

static int kv_status(struct fs *fs, uint64_t id, struct emit *e)
{
	struct sync_info si;
	int rc = engine_sync_info(fs->eng, id, &si);
	if (rc < 0)
		return rc;
	emit_str(e, "name", si.name);
	emit_str(e, "kind", sync_kind_name(si.kind));
	emit_kind(e, &si);
	emit_uint(e, "waiters", si.waiters);
	if (si.kind == SYNC_LOCK || si.kind == SYNC_SEMAPHORE) {
		emit_uint(e, "acquisitions", si.acquisitions);
		emit_uint(e, "contended", si.contended);
		emit_fixed(e, "longest_hold", si.longest_hold, 3);
	}
	emit_owner(fs, e, &si.owner);
	return 0;
}

/* A read of `wait`: the first joins the object (an event: waits for set; a
 * barrier: arrives); the answer is one line, then EOF. */
static int fill_wait(struct fs *fs, struct handle *h)
{
	if (h->rendered)
		return 1;
	if (!h->sync) {
		int rc = engine_sync_join(fs->eng, h->obj, false, 0, &h->sync);
		if (rc < 0)
			return rc;
	}
	unsigned index;
	int rc = engine_sync_try(h->sync, false, &index);
	if (rc <= 0)
		return rc;
	if (engine_sync_kind(fs->eng, h->obj) == SYNC_BARRIER)
		sb_printf(&h->buf, "%u\n", index);
	else
		sb_printf(&h->buf, "set\n");
	h->rendered = true;
	return sb_error(&h->buf) ? -ENOMEM : 1;
}

static int sync_cmd(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen)
{
	return engine_sync_ctl(fs->eng, obj, cmd, err, errlen);
}

static int store_sync_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			  const struct caller *c, char *err, size_t errlen)
{
	return run_commands(fs, h->obj, buf, len, NULL, sync_cmd, err, errlen);
}

static const struct row sync_rows[] = {
	HOLD("hold", 0600, LOCK | SEMAPHORE),
	{ .name = "wait", .mode = 0400, .kind = R_PULL, .fill = fill_wait,
	  .waits_on = OBJ_SYNC, .only = EVENT | BARRIER },
	{ .name = "ctl", .mode = 0600, .kind = R_CTL, .store = store_sync_ctl,
	  .only = SEMAPHORE | EVENT | BARRIER },
	KV("status", 0444, kv_status),
};

const struct dirdesc dir_sync = {
	.rows = sync_rows,
	.nrows = sizeof(sync_rows) / sizeof(sync_rows[0]),
	.mode = 0555,
	.exists = sync_exists,
	.variant = sync_variant,
	.owned_by = OBJ_SYNC,
};

/* ---- /shm: segments and values ----------------------------------------------------- */

#define SEGMENT (1u << SHM_SEGMENT)
#define VALUE (1u << SHM_VALUE)

static int shms_list(struct fs *fs, uint64_t obj, struct dirlist *out)
{
	struct sync_entry *v;
	size_t n;
	int rc = engine_shm_list(fs->eng, &v, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = dirlist_add(out, v[i].name, ino_make(N_SHM, v[i].id, 0), S_IFDIR);
	free(v);
	return rc;
}

static int shms_lookup(struct fs *fs, uint64_t obj, const char *name, uint64_t *child)
{
	return engine_shm_lookup(fs->eng, name, child);
}

static int shms_rmdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c)
{
	uint64_t id;
	int rc = engine_shm_lookup(fs->eng, name, &id);
	return rc < 0 ? rc : engine_shm_remove(fs->eng, id);
}

static int shm_create(struct fs *fs, const struct caller *c, const struct shm_spec *s,
		      uint64_t *id, char *err, size_t errlen)
{
	struct owner who = { .uid = c->uid, .gid = c->gid };
	return engine_shm_create(fs->eng, s, &who, id, err, errlen);
}

/* mkdir /shm/NAME: a segment of size 0 (its ctl's size= sizes it). */
static int shms_mkdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c,
		      uint64_t *child)
{
	struct shm_spec s = { .kind = SHM_SEGMENT };
	char err[256] = "";
	if (!sync_name_ok(name)) {
		engine_log(fs->eng, "mkdir /shm/%.64s: refused: a name is 1 to %d of "
			   "A-Z a-z 0-9 . _ - (not . or ..)", name, SYNC_NAME_MAX);
		return -EINVAL;
	}
	strcpy(s.name, name);
	int rc = shm_create(fs, c, &s, child, err, sizeof(err));
	if (rc < 0)
		engine_log(fs->eng, "mkdir /shm/%s: %s", name, err);
	return rc;
}

static int shm_create_line(void *ctx, const char *line, char *err, size_t errlen)
{
	struct create_ctx *x = ctx;
	struct shm_spec s;
	uint64_t id;
	int rc = shm_parse_create(line, &s, err, errlen);
	return rc < 0 ? rc : shm_create(x->fs, x->c, &s, &id, err, errlen);
}

static int store_shms_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			  const struct caller *c, char *err, size_t errlen)
{
	struct create_ctx x = { fs, c };
	return cmd_each_line(buf, len, NULL, shm_create_line, &x, err, errlen);
}

static const struct row shms_rows[] = {
	CTL("ctl", 0666, store_shms_ctl),
};

const struct dirdesc dir_shms = {
	.rows = shms_rows,
	.nrows = sizeof(shms_rows) / sizeof(shms_rows[0]),
	.mode = 01777,
	.child = N_SHM,
	.list = shms_list,
	.lookup = shms_lookup,
	.rmdir = shms_rmdir,
	.mkdir = shms_mkdir,
};

static bool shm_exists(struct fs *fs, uint64_t id)
{
	return engine_shm_kind(fs->eng, id) >= 0;
}

static unsigned shm_variant(struct fs *fs, uint64_t id)
{
	int k = engine_shm_kind(fs->eng, id);
	return k < 0 ? 0 : 1u << k;
}

static int show_value(struct fs *fs, uint64_t id, struct strbuf *out)
{
	struct shm_info si;
	int rc = engine_shm_info(fs->eng, id, &si);
	if (rc == 0)
		sb_printf(out, "%lld\n", (long long)si.value);
	return rc;
}

/* The mappers, blank-separated: "PID:TASK:RSS_KIB:PSS_KIB" ("-": no task). */
static void emit_mappers(struct emit *e, const struct shm_info *si)
{
	struct strbuf m = STRBUF_INIT, tasks = STRBUF_INIT;
	unsigned n = si->mappers < SHM_MAPPERS_MAX ? si->mappers : SHM_MAPPERS_MAX;
	for (unsigned i = 0; i < n; i++) {
		const struct shm_mapper *p = &si->mapper[i];
		char task[24] = "-";
		if (p->task)
			snprintf(task, sizeof(task), "%llu", (unsigned long long)p->task);
		sb_printf(&m, "%s%d:%s:%lld:%lld", i ? " " : "", (int)p->pid, task,
			  (long long)p->rss_kib, (long long)p->pss_kib);
		sb_printf(&tasks, "%s%s", i ? " " : "", task);
	}
	emit_uint(e, "mappers", si->mappers);
	emit_str(e, "mapper_tasks", sb_cstr(&tasks));
	emit_str(e, "mapped_by", sb_cstr(&m));
	sb_free(&m);
	sb_free(&tasks);
}

static int kv_shm_status(struct fs *fs, uint64_t id, struct emit *e)
{
	struct shm_info si;
	int rc = engine_shm_info(fs->eng, id, &si);
	if (rc < 0)
		return rc;
	emit_str(e, "name", si.name);
	emit_str(e, "kind", shm_kind_name(si.kind));
	if (si.kind == SHM_SEGMENT) {
		emit_uint(e, "size", si.size);
		emit_str(e, "path", si.path);
		emit_int(e, "resident_kib", si.resident_kib);
		emit_mappers(e, &si);
	} else {
		emit_int(e, "value", si.value);
		emit_uint(e, "ops", si.ops);
		emit_uint(e, "cas_failed", si.cas_failed);
	}
	emit_owner(fs, e, &si.owner);
	return 0;
}

static int shm_cmd(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen)
{
	return engine_shm_ctl(fs->eng, obj, cmd, err, errlen);
}

static int store_shm_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			 const struct caller *c, char *err, size_t errlen)
{
	return run_commands(fs, h->obj, buf, len, NULL, shm_cmd, err, errlen);
}

static const struct row shm_rows[] = {
	{ .name = "data", .mode = 0555, .kind = R_DIR, .subdir = N_SHMDATA, .only = SEGMENT },
	{ .name = "value", .mode = 0444, .kind = R_TEXT, .show = show_value, .only = VALUE },
	CTL("ctl", 0600, store_shm_ctl),
	KV("status", 0444, kv_shm_status),
};

const struct dirdesc dir_shm = {
	.rows = shm_rows,
	.nrows = sizeof(shm_rows) / sizeof(shm_rows[0]),
	.mode = 0555,
	.exists = shm_exists,
	.variant = shm_variant,
	.owned_by = OBJ_SHM,
};

static int shmdata_readlink(struct fs *fs, uint64_t id, struct strbuf *out)
{
	return engine_shm_path(fs->eng, id, out);
}

const struct dirdesc dir_shmdata = {
	.mode = 0777,
	.exists = shm_exists,
	.readlink = shmdata_readlink,
	.owned_by = OBJ_SHM,
};
