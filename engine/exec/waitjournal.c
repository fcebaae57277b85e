/* waitjournal.c - waiting work across a restart: the exec room's journal
 * client (persist/persist.h).
 *
 * waiting.c writes a W record for each task that waits, and renders them at
 * a compaction.  Here a new daemon replays them: a W whose id later has a
 * start record (T: it started, or was skipped, which journals its start and
 * end) is superseded; every other waits again.  They are restored in id
 * order, since a task waits only for lower ids, so what it waits for is in
 * the table by then (restored ended, lost, or waiting again itself).  Each
 * line is parsed and prepared again from its writer's directory and
 * environment as they were captured, and its files opened as its owner,
 * without the engine lock (an open may block: a FIFO); its `>` was done at
 * the write and is not done twice.  Nothing restored starts before the
 * journal is compacted (waiting_hold_back): a start is journaled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "cgroup/cgroup.h"
#include "persist/persist.h"

struct wait_rec {
	uint64_t id;
	char *line;            /* the record's line, owned */
	bool superseded;       /* its task has a start record: not waiting */
};

struct wait_replay {
	struct wait_rec *v;
	size_t n, cap;
};

static void *wr_new(void)
{
	return calloc(1, sizeof(struct wait_replay));
}

static int wr_record(void *ctx, const struct jrec *rec, char *line)
{
	struct wait_replay *r = ctx;
	uint64_t id;
	if (strcmp(rec->kind, "W"))
		return -ENOENT;
	if (!jr_get_u64(rec, "id", &id) || !jr_get(rec, "line", NULL))
		return -EINVAL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct wait_rec *v = realloc(r->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = (struct wait_rec){ .id = id, .line = line };
	return 0;
}

static void wr_task(void *ctx, uint64_t id)
{
	struct wait_replay *r = ctx;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].id == id)
			r->v[i].superseded = true;
}

static int by_id(const void *a, const void *b)
{
	const struct wait_rec *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Who the record's task is, as whom it runs, and where it was written from. */
static void read_identity(struct engine *e, const struct jrec *rec, struct restored_wait *r)
{
	uint64_t u;
	int64_t cwd_err = 0, env_err = 0;
	size_t env_len = 0;
	const char *drop = jr_get(rec, "drop", NULL);
	const char *cwd = jr_get(rec, "cwd", NULL), *env = jr_get(rec, "env", &env_len);

	jr_get_u64(rec, "id", &r->id);
	jr_get_ts(rec, "start", &r->start_rt);
	r->owner = e->self;
	if (jr_get_u64(rec, "uid", &u))
		r->owner.uid = (uid_t)u;
	if (jr_get_u64(rec, "gid", &u))
		r->owner.gid = (gid_t)u;
	if (drop && cred_parse(drop, &r->drop) == 0)
		r->has_drop = true;
	else if (drop)
		snprintf(r->why, sizeof(r->why), "its owner's credentials are unreadable");
	bool has_cwd_err = jr_get_i64(rec, "cwd_err", &cwd_err);
	bool has_env_err = jr_get_i64(rec, "env_err", &env_err);
	if (cwd || env || has_cwd_err || has_env_err) {
		r->origin = origin_restore(cwd, (int)cwd_err, env, env_len, (int)env_err);
		if (!r->origin)
			snprintf(r->why, sizeof(r->why), "out of memory");
	}
}

/* Parse and prepare the line, and open its files as its owner (no lock).
 * A failure is kept in r->why: the task is restored failed, saying so. */
static void prepare_line(struct engine *e, const char *text, struct restored_wait *r,
			 struct line_start *ls)
{
	char why[512];
	const struct cred *drop = r->has_drop ? &r->drop : NULL;
	int rc = spec_parse(text, strlen(text), e->online_cpus, &ls->spec, why, sizeof(why));
	if (rc < 0) {
		snprintf(r->why, sizeof(r->why), "its line no longer reads: %s", why);
		return;
	}
	if (r->why[0])
		return;
	/* the limits it was written with, or this daemon's defaults, as a
	 * line written now would have them */
	cgroup_defaults(e, &ls->spec);
	rc = cgroup_check(e, &ls->spec, why, sizeof(why));
	if (rc == 0)
		rc = launch_prepare(r->origin, &ls->spec, &ls->launch, why, sizeof(why));
	if (rc == 0)
		rc = launch_open_files(&ls->spec, drop, e->mountpoint, &ls->launch, why, sizeof(why));
	if (rc < 0)
		snprintf(r->why, sizeof(r->why), "%s", why);
}

/* One W record's task, back in the table; false if it could not be. */
static bool restore_one(struct engine *e, const char *line)
{
	char *work = strdup(line);
	struct jrec rec;
	struct restored_wait r = { 0 };
	struct line_start ls;
	memset(&ls, 0, sizeof(ls));
	launch_init(&ls.launch);
	if (!work || jr_parse(work, &rec) < 0) {
		free(work);
		return false;
	}
	read_identity(e, &rec, &r);
	const char *text = jr_get(&rec, "line", NULL);
	prepare_line(e, text, &r, &ls);
	if (!ls.spec.line)   /* unreadable: the task shows its line as it was */
		ls.spec.line = strdup(text);
	int rc = -ENOMEM;
	pthread_mutex_lock(&e->lock);
	if (r.id >= e->next_id)
		e->next_id = r.id + 1;
	if (ls.spec.line && !task_find(e, r.id))
		rc = waiting_restore_locked(e, &r, &ls);
	pthread_mutex_unlock(&e->lock);
	spec_free(&ls.spec);
	launch_free(&ls.launch);   /* (empty if the waiting line took it) */
	origin_put(r.origin);
	free(work);
	return rc == 0;
}

static size_t wr_apply(struct engine *e, void *ctx)
{
	struct wait_replay *r = ctx;
	size_t restored = 0, failed = 0;
	if (r->n)   /* (qsort must not be given NULL, even for nothing) */
		qsort(r->v, r->n, sizeof(r->v[0]), by_id);
	waiting_hold_back(e, true);
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].superseded)
			continue;
		if (restore_one(e, r->v[i].line))
			restored++;
		else
			failed++;
	}
	if (restored || failed) {
		pthread_mutex_lock(&e->lock);
		log_add(e, failed ? LOG_LVL_WARN : LOG_LVL_INFO, "[state] dir: %zu waiting "
			"task%s restored%s", restored, restored == 1 ? "" : "s",
			failed ? "; some W records could not be (out of memory)" : "");
		pthread_mutex_unlock(&e->lock);
	}
	return 0;   /* (the count persist logs is of pools) */
}

static void wr_free(void *ctx)
{
	struct wait_replay *r = ctx;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].line);
	free(r->v);
	free(r);
}

/* The journal is compacted: what was restored may start (and be journaled). */
static void wr_done(struct engine *e)
{
	waiting_hold_back(e, false);
}

static bool wr_output_known(struct engine *e, const char *file)
{
	(void)e;
	(void)file;
	return false;   /* a waiting task has no output yet */
}

const struct journal_client exec_journal = {
	.render = waiting_render,
	.output_known = wr_output_known,
	.replay_new = wr_new,
	.replay_record = wr_record,
	.replay_task = wr_task,
	.replay_apply = wr_apply,
	.replay_free = wr_free,
	.replay_done = wr_done,
};
