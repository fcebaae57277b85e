/* inval.c - tell the kernel a task's directory is gone.
 *
 * /procs/ID entries are kept by the kernel for PROC_ENTRY_TIMEOUT (fs.h), so
 * a `watch` reading every task's procs/ID/mem walks no LOOKUP per task each
 * tick.  A task id never names anything else, so the only change such an
 * entry can see is its task being forgotten (rmdir, [tasks] history, max_tasks): then the engine reports
 * OBJ_TASK_GONE and the entry is invalidated here, so `ls`, `stat` and `cat`
 * see ENOENT at once.
 *
 * The invalidation is sent from a thread of its own: the kernel takes the
 * lock of /procs to drop the entry, and the report can come from inside a
 * request that holds it (an rmdir in /procs), where sending it would wait for
 * itself.  From here it only waits for such a request to be answered.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

struct inval {
	struct fs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t *ids;        /* forgotten tasks whose entries are still to drop */
	size_t n, cap;
	bool stop;
	bool started;
};

static void drop_task_entry(struct fs *fs, uint64_t id)
{
	char name[24];
	int len = snprintf(name, sizeof(name), "%" PRIu64, id);
	int rc = fuse_lowlevel_notify_inval_entry(fs->se, ino_make(N_PROCS, 0, 0), name,
						  (size_t)len);
	/* ENOENT: the kernel had no such entry (never looked up, or rmdir
	 * dropped it).  Anything else after unmount is expected too. */
	if (rc < 0 && rc != -ENOENT && !fuse_session_exited(fs->se))
		engine_log(fs->eng, "procs/%s: cannot drop the kernel's entry: %s", name,
			   strerror(-rc));
}

static void *inval_main(void *arg)
{
	struct inval *v = arg;
	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (!v->n && !v->stop)
			pthread_cond_wait(&v->cond, &v->lock);
		if (v->stop)
			break;
		uint64_t *ids = v->ids;
		size_t n = v->n;
		v->ids = NULL;
		v->n = v->cap = 0;
		pthread_mutex_unlock(&v->lock);
		/* once the loop has ended nothing answers the requests a
		 * notification may wait for: drop no more */
		for (size_t i = 0; i < n && !fuse_session_exited(v->fs->se); i++)
			drop_task_entry(v->fs, ids[i]);
		free(ids);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

struct inval *inval_new(struct fs *fs)
{
	struct inval *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->fs = fs;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	if (pthread_create(&v->thread, NULL, inval_main, v) != 0) {
		inval_free(v);
		return NULL;
	}
	v->started = true;
	return v;
}

void inval_stop(struct inval *v)
{
	if (!v || !v->started)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = true;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
	pthread_join(v->thread, NULL);
	v->started = false;
}

void inval_free(struct inval *v)
{
	if (!v)
		return;
	inval_stop(v);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	free(v->ids);
	free(v);
}

void inval_task_gone(struct inval *v, uint64_t id)
{
	pthread_mutex_lock(&v->lock);
	if (v->stop) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		uint64_t *ids = realloc(v->ids, cap * sizeof(*ids));
		if (!ids) {
			pthread_mutex_unlock(&v->lock);
			/* the entry lingers until its timeout: say so */
			engine_log(v->fs->eng, "procs/%" PRIu64 ": out of memory: its directory "
				   "may stay visible for up to %.0f s", id, PROC_ENTRY_TIMEOUT);
			return;
		}
		v->ids = ids;
		v->cap = cap;
	}
	v->ids[v->n++] = id;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

void fs_engine_changed(void *ctx, enum eng_obj kind, uint64_t id)
{
	struct fs *fs = ctx;
	if (kind != OBJ_TASK_GONE)
		park_changed(ctx, kind, id);
	else if (fs->inval)
		inval_task_gone(fs->inval, id);
}
