/* state.c - results that survive the daemon: the [state] dir.
 *
 * With `[state] dir` set, every task (and every pool and future: pools/journal.c)
 * leaves records in DIR/journal (journal.h: one line each): a start record
 * when it starts, an end record when it ends, a forget record when it is
 * forgotten.  Captured output is written to DIR/out/ before the end record,
 * so an end record always has its output beside it.  A new pcfs on the same
 * dir replays the journal: ended tasks come back as they were (same ids,
 * exit codes, errors, output); tasks that had a start record and no end
 * record were running when the old daemon died, and become `lost`.  Then the
 * journal is compacted: rewritten from what is known, through a temporary
 * file and rename(2), so a crash during compaction leaves the old journal.
 *
 * Records are gathered in memory under the engine lock and written by
 * state_flush(), which the engine calls before it tells anyone of a change
 * (engine_flush_notify): whoever sees a task end, sees it on disk first.
 * Whether it is fsync'd, and when, is [state] sync's (durable.c).
 *
 * A lock file (flock) keeps two daemons off one dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist_int.h"

static int state_open(struct engine *e, char *err, size_t errlen);
static void state_close(struct engine *e);
static void state_compact(struct engine *e);

/* Compact at runtime once the journal holds this many more records than
 * the last compaction left (forgotten tasks' records are garbage). */
#define COMPACT_SLACK 20000

/* ---- files ----------------------------------------------------------------- */

static void out_name(char *buf, size_t len, const char *prefix, uint64_t id, int stream)
{
	snprintf(buf, len, "%s%" PRIu64 ".%d", prefix, id, stream);
}

/* Write (or remove, when empty) one output file, through a temporary name
 * so a reader never sees half of it. */
int state_write_output(struct engine *e, const char *prefix, uint64_t id, int stream,
		       const char *data, size_t len)
{
	struct state *s = e->state;
	char name[96], tmp[112];
	out_name(name, sizeof(name), prefix, id, stream);
	if (!len) {
		unlinkat(s->outfd, name, 0);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int fd = openat(s->outfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = state_write_all(fd, data, len);
	if (rc == 0)
		durable_output(s, fd);
	close(fd);
	if (rc == 0 && renameat(s->outfd, tmp, s->outfd, name) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(s->outfd, tmp, 0);
	return rc;
}

/* Read an output file back, at most max bytes (the rest counts as dropped). */
void state_read_output(struct engine *e, const char *prefix, uint64_t id, int stream,
		       struct outbuf *o)
{
	char name[96];
	out_name(name, sizeof(name), prefix, id, stream);
	int fd = openat(e->state->outfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		out_append(o, buf, (size_t)n, e->cfg.output_max);
	close(fd);
}

void state_remove_output(struct engine *e, const char *prefix, uint64_t id)
{
	char name[96];
	for (int s = 1; s <= 2; s++) {
		out_name(name, sizeof(name), prefix, id, s);
		unlinkat(e->state->outfd, name, 0);
	}
}

/* ---- records ----------------------------------------------------------------- */

struct strbuf *state_record(struct engine *e)
{
	struct state *s = e->state;
	if (!s || s->restoring)
		return NULL;
	s->records++;
	return &s->pending;
}

static const char *kind_word(enum task_kind k)
{
	return k == TASK_THREAD ? "thread" : "process";
}

static void task_start_fields(struct strbuf *sb, const struct task *t)
{
	jr_u64(sb, "id", t->id);
	jr_str(sb, "kind", kind_word(t->kind));
	jr_str(sb, "method", method_name(t->method));
	jr_str(sb, "workload", workload_name(t->workload));
	if (t->name[0])
		jr_str(sb, "name", t->name);
	jr_ts(sb, "start", t->start_rt);
	if (t->pid > 0)
		jr_i64(sb, "pid", t->pid);
	if (t->parent_id)
		jr_u64(sb, "parent", t->parent_id);
	if (t->cow_ref)
		jr_i64(sb, "cowref", t->cow_ref);
	if (t->timeout_ms != SPEC_UNSET)
		jr_i64(sb, "timeout", t->timeout_ms);
	jr_u64(sb, "uid", t->owner.uid);
	jr_u64(sb, "gid", t->owner.gid);
	jr_str(sb, "cmd", t->cmd);
}

static int64_t tv_us(struct timeval tv)
{
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void task_end_fields(struct strbuf *sb, const struct task *t)
{
	jr_u64(sb, "id", t->id);
	jr_str(sb, "state", task_state_name(t->state));
	jr_i64(sb, "code", t->exitcode);
	jr_ts(sb, "end", t->end_rt);
	int64_t run_ns = (int64_t)(t->end_mono.tv_sec - t->start_mono.tv_sec) * 1000000000 +
			 (t->end_mono.tv_nsec - t->start_mono.tv_nsec);
	jr_i64(sb, "run_ns", run_ns);
	if (t->kind == TASK_THREAD) {
		jr_i64(sb, "utime_us", t->thread_cpu_us);
	} else {
		jr_i64(sb, "utime_us", tv_us(t->ru.ru_utime));
		jr_i64(sb, "stime_us", tv_us(t->ru.ru_stime));
		/* the tree's accounting (wait4's): peak RSS and faults */
		jr_i64(sb, "maxrss_kib", t->ru.ru_maxrss);
		jr_i64(sb, "minflt", t->ru.ru_minflt);
		jr_i64(sb, "majflt", t->ru.ru_majflt);
	}
	if (t->timed_out)
		jr_u64(sb, "timed_out", 1);
	if (t->oom_killed)
		jr_u64(sb, "oom", 1);
	if (t->term_signal)
		jr_i64(sb, "term_signal", t->term_signal);
	for (int s = 1; s <= 2; s++)
		if (t->out[s].dropped)
			jr_u64(sb, s == 1 ? "dropped1" : "dropped2", t->out[s].dropped);
	if (t->error[0])
		jr_str(sb, "error", t->error);
}

/* Pool workers are the pool's machinery, not results: never journaled. */
static bool journaled_task(const struct task *t)
{
	return t->persist && !t->pool;
}

static void state_task_started(struct engine *e, struct task *t)
{
	struct strbuf *sb;
	if (!journaled_task(t) || t->journaled || !(sb = state_record(e)))
		return;
	jr_begin(sb, "T");
	task_start_fields(sb, t);
	jr_end(sb);
	t->journaled = true;
}

static void state_task_ended(struct engine *e, struct task *t)
{
	struct strbuf *sb;
	if (!journaled_task(t) || !(sb = state_record(e)))
		return;
	state_task_started(e, t);     /* one that ended before its start was written */
	for (int s = 1; s <= 2; s++) {
		int rc = t->out[s].len ? state_write_output(e, "", t->id, s, t->out[s].data,
							    t->out[s].len) : 0;
		if (rc < 0)
			state_failed(e, "task output", rc);
	}
	jr_begin(sb, "E");
	task_end_fields(sb, t);
	jr_end(sb);
}

/* Output that came after the end (a descendant held the pipe): the file is
 * rewritten once the pipe is at EOF. */
static void state_task_output_done(struct engine *e, struct task *t, int stream)
{
	if (!e->state || e->state->restoring || !journaled_task(t) || task_live(t))
		return;
	state_write_output(e, "", t->id, stream, t->out[stream].data, t->out[stream].len);
}

static void state_task_forgotten(struct engine *e, struct task *t)
{
	struct strbuf *sb;
	if (!journaled_task(t) || !(sb = state_record(e)))
		return;
	jr_begin(sb, "F");
	jr_u64(sb, "id", t->id);
	jr_end(sb);
	state_remove_output(e, "", t->id);
}

void state_failed(struct engine *e, const char *what, int err)
{
	struct state *s = e->state;
	if (s->broken)
		return;
	s->broken = true;
	log_add(e, LOG_LVL_ERROR, "[state] dir: %s: %s (results from now on may not survive "
		"a restart)", what, strerror(-err));
}

static void state_flush(struct engine *e)
{
	struct state *s = e->state;
	if (!s)
		return;
	pthread_mutex_lock(&s->wlock);
	pthread_mutex_lock(&e->lock);
	struct strbuf batch = s->pending;
	s->pending = (struct strbuf)STRBUF_INIT;
	bool compact = s->records > s->base + COMPACT_SLACK;
	pthread_mutex_unlock(&e->lock);
	if (batch.len) {
		int rc = state_write_all(s->jfd, batch.buf, batch.len);
		if (rc < 0) {
			pthread_mutex_lock(&e->lock);
			state_failed(e, "journal write", rc);
			pthread_mutex_unlock(&e->lock);
		} else {
			durable_written(e);
		}
	}
	sb_free(&batch);
	if (compact)
		state_compact(e);
	pthread_mutex_unlock(&s->wlock);
}

/* ---- compaction ---------------------------------------------------------------- */

/* Every record that describes what is known now, in an order replay accepts. */
static void render_all(struct engine *e, struct strbuf *sb, size_t *n)
{
	/* the next id: forgotten tasks leave no record, but their ids stay used */
	jr_begin(sb, "N");
	jr_u64(sb, "next", e->next_id);
	jr_end(sb);
	(*n)++;
	for (struct task *t = e->first; t; t = t->next) {
		/* (one that waits has no start yet: exec renders its W record) */
		if (!journaled_task(t) || t->state == TS_STARTING || t->state == TS_WAITING)
			continue;
		jr_begin(sb, "T");
		task_start_fields(sb, t);
		jr_end(sb);
		(*n)++;
		if (task_live(t))
			continue;
		jr_begin(sb, "E");
		task_end_fields(sb, t);
		jr_end(sb);
		(*n)++;
	}
	for (size_t i = 0; i < e->nrooms; i++)
		if (e->rooms[i]->journal)
			*n += e->rooms[i]->journal->render(e, sb);
}

/* Rewrite the journal from the engine's tables (wlock held, not lock). */
static void state_compact(struct engine *e)
{
	struct state *s = e->state;
	struct strbuf sb = STRBUF_INIT;
	size_t n = 0;
	pthread_mutex_lock(&e->lock);
	/* records still pending belong to the old journal; rendering the
	 * tables covers them */
	sb_reset(&s->pending);
	render_all(e, &sb, &n);
	s->records = s->base = n;
	pthread_mutex_unlock(&e->lock);
	if (sb_error(&sb)) {
		sb_free(&sb);
		return;
	}
	int fd = openat(s->dirfd, JOURNAL_NEW, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -errno : state_write_all(fd, sb.buf, sb.len);
	if (rc == 0)
		durable_replaced(s, fd);
	if (rc == 0 && renameat(s->dirfd, JOURNAL_NEW, s->dirfd, JOURNAL) < 0)
		rc = -errno;
	if (rc == 0)
		durable_replaced(s, -1);
	if (rc == 0) {
		close(s->jfd);
		s->jfd = fd;
		lseek(fd, 0, SEEK_END);
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	sb_free(&sb);
	if (rc < 0) {
		pthread_mutex_lock(&e->lock);
		state_failed(e, "journal compaction", rc);
		pthread_mutex_unlock(&e->lock);
	}
}

/* ---- open, replay ------------------------------------------------------------------ */

/* PATH and its missing parents, made with MODE (the last two: LAST_MODE). */
static int mkdir_p(const char *path, mode_t mode, mode_t last_mode, bool *made)
{
	char buf[CONFIG_PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	char *last = strrchr(buf, '/'), *parent = last;
	while (parent > buf && parent[-1] != '/')
		parent--;
	if (parent > buf)
		parent--;              /* the slash before the last two components */
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, p >= parent ? last_mode : mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	*made = mkdir(buf, last_mode) == 0;
	if (!*made && errno != EEXIST)
		return -errno;
	return 0;
}

int state_check(struct pcfs_config *cfg, const char *mountpoint, char *err, size_t errlen)
{
	if (state_resolve(cfg, mountpoint, err, errlen) < 0)
		return 1;            /* no default dir: said, and none */
	if (!cfg->state_path[0])
		return 0;
	/* ~8 KiB of paths and more: not a daemon thread's stack */
	struct engine *probe = calloc(1, sizeof(*probe));
	if (!probe) {
		snprintf(err, errlen, "[state] dir: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	probe->cfg = *cfg;
	int rc = state_open(probe, err, errlen);
	/* a dir made only to be checked is not left behind by a daemon that
	 * goes no further (refused, or failed to mount): the engine makes it
	 * again */
	bool made = probe->state && probe->state->made;
	if (made)
		durable_unmake(probe->state);
	state_close(probe);     /* the lock goes with it */
	if (made)
		rmdir(cfg->state_path);
	free(probe);
	/* the default dir that cannot be made is not a reason to refuse the
	 * mount (a read-only home); one another daemon holds is */
	if (rc < 0 && cfg->state_default && rc != -EWOULDBLOCK) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, ": results will not survive the daemon");
		memset(cfg->state_path, 0, sizeof(cfg->state_path));
		cfg->state_default = false;
		return 1;
	}
	return rc;
}

static int state_open(struct engine *e, char *err, size_t errlen)
{
	const char *dir = e->cfg.state_path;
	if (!dir[0])
		return 0;
	struct state *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->dirfd = s->outfd = s->lockfd = s->jfd = -1;
	s->sync = e->cfg.state_sync;
	pthread_mutex_init(&s->wlock, NULL);
	e->state = s;
	/* the default dir (and its base) let others through, not look in: a
	 * Slurm job of another user's pool writes to its spool below */
	mode_t last = e->cfg.state_default ? 0711 : 0700;
	int rc = mkdir_p(dir, 0700, last, &s->made);
	if (rc == 0 && (s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "[state] dir %s: %s", dir, strerror(-rc));
		return rc;
	}
	s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		char who[32] = "";
		if (s->lockfd >= 0 && pread(s->lockfd, who, sizeof(who) - 1, 0) > 0)
			who[strcspn(who, "\n")] = '\0';
		snprintf(err, errlen, "[state] dir %s: %s%s%s", dir,
			 rc == -EWOULDBLOCK ? "in use by another pcfs" : strerror(-rc),
			 who[0] ? ", pid " : "", who);
		return rc;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n, 0) < 0)
		rc = -errno;   /* only informative */
	if (mkdirat(s->dirfd, "out", 0700) < 0 && errno != EEXIST)
		rc = -errno;
	else if ((s->outfd = openat(s->dirfd, "out", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		 (s->jfd = openat(s->dirfd, JOURNAL, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				  0600)) < 0)
		rc = -errno;
	else
		rc = 0;
	if (rc < 0) {
		snprintf(err, errlen, "[state] dir %s: %s", dir, strerror(-rc));
		return rc;
	}
	return 0;
}

static void state_close(struct engine *e)
{
	struct state *s = e->state;
	if (!s)
		return;
	int fds[] = { s->jfd, s->outfd, s->dirfd, s->lockfd };  /* the lock goes last */
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	sb_free(&s->pending);
	pthread_mutex_destroy(&s->wlock);
	free(s);
	e->state = NULL;
}

static enum workload workload_of(const char *name)
{
	for (int w = 0; w < WL__COUNT; w++)
		if (name && !strcmp(name, workload_name((enum workload)w)))
			return (enum workload)w;
	return WL_EXEC;
}

static enum start_method method_of(const char *name)
{
	for (int m = 0; m < METHOD__COUNT; m++)
		if (name && !strcmp(name, method_name((enum start_method)m)))
			return (enum start_method)m;
	return METHOD_SPAWN;
}

/* The ended state a record names; false for anything else (a torn word). */
static bool ended_state_of(const char *name, enum task_state *out)
{
	const enum task_state ended[] = { TS_EXITED, TS_KILLED, TS_FAILED, TS_LOST, TS_SKIPPED };
	for (size_t i = 0; i < sizeof(ended) / sizeof(ended[0]); i++)
		if (name && !strcmp(name, task_state_name(ended[i]))) {
			*out = ended[i];
			return true;
		}
	return false;
}

static struct timeval us_tv(int64_t us)
{
	return (struct timeval){ .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
}

/* The run time a restored task shows: monotonic times that give it. */
static void set_run_time(struct task *t, int64_t run_ns)
{
	clock_gettime(CLOCK_MONOTONIC, &t->end_mono);
	int64_t s_ns = (int64_t)t->end_mono.tv_sec * 1000000000 + t->end_mono.tv_nsec - run_ns;
	t->start_mono.tv_sec = s_ns / 1000000000;
	t->start_mono.tv_nsec = s_ns % 1000000000;
}

/* A T record: the task, into the table, not ended yet (lock held). */
static int replay_start(struct engine *e, uint64_t id, const struct jrec *st)
{
	if (task_find(e, id))
		return -EINVAL;              /* a second start of one id */
	const char *cmd = jr_get(st, "cmd", NULL);
	struct task *t = task_restored(e, id, cmd ? cmd : "");
	if (!t)
		return -ENOMEM;
	const char *v;
	t->kind = (v = jr_get(st, "kind", NULL)) && !strcmp(v, "thread") ? TASK_THREAD : TASK_PROCESS;
	t->method = method_of(jr_get(st, "method", NULL));
	t->workload = workload_of(jr_get(st, "workload", NULL));
	if ((v = jr_get(st, "name", NULL)))
		snprintf(t->name, sizeof(t->name), "%s", v);
	jr_get_ts(st, "start", &t->start_rt);
	int64_t x;
	uint64_t u;
	if (jr_get_i64(st, "pid", &x))
		t->pid = (pid_t)x;
	if (jr_get_u64(st, "parent", &u))
		t->parent_id = u;
	if (jr_get_i64(st, "cowref", &x))
		t->cow_ref = (pid_t)x;
	if (jr_get_i64(st, "timeout", &x))
		t->timeout_ms = x;
	/* control and output stay their owner's (a record without one is the
	 * daemon's: older journals) */
	t->owner = e->self;
	if (jr_get_u64(st, "uid", &u))
		t->owner.uid = (uid_t)u;
	if (jr_get_u64(st, "gid", &u))
		t->owner.gid = (gid_t)u;
	t->persist = t->journaled = true;
	return 0;
}

/* An E record: the task ends as it did, and joins the history in the order
 * tasks ended (lock held). */
static int replay_end(struct engine *e, struct task *t, const struct jrec *en)
{
	enum task_state st;
	if (t->end_rt.tv_sec || !ended_state_of(jr_get(en, "state", NULL), &st))
		return -EINVAL;              /* a second end, or not an end we know */
	int64_t x, run_ns = 0;
	uint64_t u;
	const char *v;
	t->state = st;
	if (jr_get_i64(en, "code", &x))
		t->exitcode = (int)x;
	if (!jr_get_ts(en, "end", &t->end_rt) || !t->end_rt.tv_sec)
		t->end_rt.tv_sec = 1;        /* ended, whenever that was */
	jr_get_i64(en, "run_ns", &run_ns);
	int64_t ut = 0, stt = 0;
	jr_get_i64(en, "utime_us", &ut);
	jr_get_i64(en, "stime_us", &stt);
	if (t->kind == TASK_THREAD)
		t->thread_cpu_us = ut;
	t->ru.ru_utime = us_tv(ut);
	t->ru.ru_stime = us_tv(stt);
	t->timed_out = jr_get_u64(en, "timed_out", &u) && u;
	t->oom_killed = jr_get_u64(en, "oom", &u) && u;
	if (jr_get_i64(en, "maxrss_kib", &x))
		t->ru.ru_maxrss = x;
	if (jr_get_i64(en, "minflt", &x))
		t->ru.ru_minflt = x;
	if (jr_get_i64(en, "majflt", &x))
		t->ru.ru_majflt = x;
	if (jr_get_i64(en, "term_signal", &x))
		t->term_signal = (int)x;
	if ((v = jr_get(en, "error", NULL)))
		snprintf(t->error, sizeof(t->error), "%s", v);
	for (int s = 1; s <= 2; s++) {
		state_read_output(e, "", t->id, s, &t->out[s]);
		if (jr_get_u64(en, s == 1 ? "dropped1" : "dropped2", &u))
			t->out[s].dropped += u;
	}
	set_run_time(t, run_ns);
	task_restored_ended(e, t);
	return 0;
}

/* A task with a start and no end ran when the daemon died.  Its exit status
 * went to whoever reaped it; its output pipe died with the daemon. */
static void replay_lost(struct engine *e, struct task *t, const struct timespec *now_rt)
{
	t->state = TS_LOST;
	t->end_rt = *now_rt;
	bool alive = t->kind == TASK_PROCESS && t->pid > 0 &&
		     ms_same_process(t->pid, t->start_rt);
	if (alive) {
		t->lost_pid = t->pid;   /* ctl may still signal it */
		snprintf(t->error, sizeof(t->error), "lost: pcfs stopped while it ran; its exit "
			 "status cannot be known (its process still runs, outside pcfs as pid %d)",
			 (int)t->pid);
	} else {
		snprintf(t->error, sizeof(t->error),
			 "lost: pcfs stopped while it ran; its exit status cannot be known");
	}
	set_run_time(t, (int64_t)(now_rt->tv_sec - t->start_rt.tv_sec) * 1000000000 +
			(now_rt->tv_nsec - t->start_rt.tv_nsec));
	task_restored_ended(e, t);
}

/* One task record (T, E, F) onto the table (lock held).  -EINVAL: not one
 * that fits what came before it. */
static int replay_task_record(struct engine *e, const struct jrec *rec)
{
	uint64_t id;
	if (!jr_get_u64(rec, "id", &id))
		return -EINVAL;
	if (rec->kind[0] == 'T')
		return replay_start(e, id, rec);
	struct task *t = task_find(e, id);
	if (!t || !t->journaled)
		return rec->kind[0] == 'F' ? 0 : -EINVAL;   /* F: history forgot it already */
	if (rec->kind[0] == 'E')
		return replay_end(e, t, rec);
	task_forget_locked(e, t);
	return 0;
}

static char *read_journal(int dirfd, size_t *len)
{
	int fd = openat(dirfd, JOURNAL, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct strbuf sb = STRBUF_INIT;
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sb_add(&sb, buf, (size_t)n);
	close(fd);
	*len = sb.len;
	return sb_steal(&sb);
}

/* ---- the other rooms' objects (their journal_client) -------------------------------- */

static bool client_output_known(struct engine *e, const char *file)
{
	for (size_t i = 0; i < e->nrooms; i++)
		if (e->rooms[i]->journal && e->rooms[i]->journal->output_known(e, file))
			return true;
	return false;
}

static void clients_replay_new(struct engine *e, void **ctx)
{
	for (size_t i = 0; i < e->nrooms; i++)
		ctx[i] = e->rooms[i]->journal ? e->rooms[i]->journal->replay_new() : NULL;
}

/* The first client that knows the record's kind takes it (and its line). */
static int clients_replay_record(struct engine *e, void **ctx, const struct jrec *rec,
				 char *line)
{
	for (size_t i = 0; i < e->nrooms; i++) {
		if (!ctx[i])
			continue;
		int rc = e->rooms[i]->journal->replay_record(ctx[i], rec, line);
		if (rc != -ENOENT)
			return rc;
	}
	return -EINVAL;   /* nobody's: unreadable */
}

static void clients_replay_task(struct engine *e, void **ctx, uint64_t id)
{
	for (size_t i = 0; i < e->nrooms; i++)
		if (ctx[i] && e->rooms[i]->journal->replay_task)
			e->rooms[i]->journal->replay_task(ctx[i], id);
}

static size_t clients_replay_apply(struct engine *e, void **ctx)
{
	size_t n = 0;
	for (size_t i = 0; i < e->nrooms; i++)
		if (ctx[i])
			n += e->rooms[i]->journal->replay_apply(e, ctx[i]);
	return n;
}

static void clients_replay_free(struct engine *e, void **ctx)
{
	for (size_t i = 0; i < e->nrooms; i++)
		if (ctx[i])
			e->rooms[i]->journal->replay_free(ctx[i]);
}

/* Remove output files no record names (a crash between writing an output
 * and its record, or a forget record whose unlink did not happen). */
static void sweep_outputs(struct engine *e)
{
	int fd = dup(e->state->outfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *end;
		uint64_t id = strtoull(de->d_name, &end, 10);
		bool keep = false;
		if (end != de->d_name && (!strcmp(end, ".1") || !strcmp(end, ".2"))) {
			struct task *t = task_find(e, id);
			keep = t && journaled_task(t) && !task_live(t);
		} else {
			keep = client_output_known(e, de->d_name);
		}
		if (!keep)
			unlinkat(e->state->outfd, de->d_name, 0);
	}
	closedir(d);
}

/* One journal line onto the tables (lock held): N and task records here,
 * the rest to the rooms' clients.  -errno: unreadable. */
static int replay_line(struct engine *e, void **ctx, const char *line, size_t ll)
{
	/* the other rooms' records keep their line (a client takes it) */
	char *copy = strndup(line, ll), *work = copy ? strdup(copy) : NULL;
	struct jrec rec;
	int rc = work ? jr_parse(work, &rec) : -ENOMEM;
	uint64_t id;
	if (rc == 0 && !strcmp(rec.kind, "T") && jr_get_u64(&rec, "id", &id)) {
		if (id >= e->next_id)
			e->next_id = id + 1;   /* ids are never given twice, forgotten or not */
		clients_replay_task(e, ctx, id);
	}
	if (rc == 0 && !strcmp(rec.kind, "N"))
		rc = jr_get_u64(&rec, "next", &id) ? 0 : -EINVAL;
	if (rc == 0 && !strcmp(rec.kind, "N")) {
		if (id > e->next_id)
			e->next_id = id;
	} else if (rc == 0 && strlen(rec.kind) == 1 && strchr("TEF", rec.kind[0]))
		rc = replay_task_record(e, &rec);
	else if (rc == 0 && (rc = clients_replay_record(e, ctx, &rec, copy)) == 0)
		copy = NULL;
	free(copy);
	free(work);
	return rc;
}

static void state_restore(struct engine *e)
{
	struct state *s = e->state;
	if (!s)
		return;
	size_t len = 0;
	char *text = read_journal(s->dirfd, &len);
	void *ctx[ROOMS_MAX];
	clients_replay_new(e, ctx);
	size_t bad = 0, nrec = 0, lost = 0, kept = 0;
	size_t pos = 0, ll;
	s->restoring = true;
	pthread_mutex_lock(&e->lock);
	for (const char *line; text && (line = next_line(text, len, &pos, &ll));) {
		if (!ll)
			continue;
		nrec++;
		if (line + ll == text + len && text[len - 1] != '\n') {
			bad++;   /* the last line, torn by a daemon killed mid-write */
			continue;
		}
		if (replay_line(e, ctx, line, ll) < 0)
			bad++;
	}
	free(text);
	/* started, never ended: lost, after those that ended (in id order) */
	struct timespec now_rt;
	clock_gettime(CLOCK_REALTIME, &now_rt);
	for (struct task *t = e->first; t; t = t->next) {
		if (!t->journaled)
			continue;
		kept++;
		if (!t->end_rt.tv_sec) {
			replay_lost(e, t, &now_rt);
			lost++;
		}
	}
	pthread_mutex_unlock(&e->lock);
	size_t pools = clients_replay_apply(e, ctx);   /* they take the lock themselves */
	pthread_mutex_lock(&e->lock);
	s->restoring = false;
	sweep_outputs(e);
	if (nrec)
		log_add(e, LOG_LVL_INFO, "[state] dir %s: %zu tasks restored (%zu lost: they ran "
			"when the previous pcfs stopped), %zu pools%s", e->cfg.state_path, kept, lost,
			pools, bad ? "; unreadable records skipped" : "");
	if (bad)
		log_add(e, LOG_LVL_WARN, "[state] dir %s: %zu unreadable journal records skipped",
			e->cfg.state_path, bad);
	pthread_mutex_unlock(&e->lock);
	clients_replay_free(e, ctx);

	pthread_mutex_lock(&s->wlock);
	state_compact(e);
	pthread_mutex_unlock(&s->wlock);
	s->restored = true;
	durable_start(e);
	/* only now: what ends is journaled, with its output */
	for (size_t i = 0; i < e->nrooms; i++)
		if (e->rooms[i]->journal)
			e->rooms[i]->journal->replay_done(e);
	engine_flush_notify(e);
}

/* ---- the room ----------------------------------------------------------------- */

static void state_fini(struct engine *e)
{
	if (!e->state)
		return;
	state_flush(e);
	bool remove = durable_stop(e);
	state_close(e);
	if (remove)
		rmdir(e->cfg.state_path);   /* anything else in it (not ours) keeps it */
}

const struct room persist_room = {
	.name = "persist",
	.init = state_open,
	.start = state_restore,
	.fini = state_fini,
	.task_started = state_task_started,
	.task_ended = state_task_ended,
	.task_output_done = state_task_output_done,
	.task_forgotten = state_task_forgotten,
	.before_tell = state_flush,
};
