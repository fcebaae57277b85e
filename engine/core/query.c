/* query.c - what the API tells of tasks: their info and status, owners,
 * ids, captured output; forgetting one; the counters.
 *
 * Each call takes `lock` briefly and copies what it needs out; /proc is read
 * outside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static double ts_diff(struct timespec a, struct timespec b)
{
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void task_info_free(struct task_info *ti)
{
	free(ti->cmd);
	ti->cmd = NULL;
}

/* User and system CPU time of a live process, from its /proc/PID/stat. */
static void proc_cpu(int fd, double *ut, double *st, uint64_t *minflt, uint64_t *majflt)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');   /* comm may hold spaces and parens */
	if (!p)
		return;
	unsigned long long u, s, mn, cmn, mj, cmj;
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %llu %llu %llu %llu %llu", &mn, &cmn,
		   &mj, &cmj, &u, &s) == 6) {
		*minflt = mn + cmn;   /* its own and its waited-for children's, as wait4 counts */
		*majflt = mj + cmj;
		long hz = sysconf(_SC_CLK_TCK);
		*ut = (double)u / (double)hz;
		*st = (double)s / (double)hz;
	}
}

/* A descriptor of a live process's /proc/PID/stat for the caller to read
 * and close, or -1.  The task keeps one open from the first read on: a read
 * of an open /proc file is a third of the cost of open, read and close
 * (3.6 us against 9 us here), and status is the file people watch.  The
 * caller gets a dup taken under the lock, so the task's end, which closes
 * the task's own, never leaves it reading a number since reused. */
static int stat_fd_of(struct engine *e, uint64_t id, pid_t pid, int dup_fd)
{
	if (dup_fd >= 0)
		return dup_fd;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* Keep it if the task is still the live process we opened for: only
	 * reaping, under the lock, frees its pid for reuse. */
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (t && !task_state_ended(t->state) && t->pid == pid && t->stat_fd < 0)
		t->stat_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&e->lock);
	return fd;
}

/* What a query copies beyond the task's fixed fields. */
enum { TI_CMD = 1, TI_LIVE_CPU = 2 };

static int task_info_fill(struct engine *e, uint64_t id, struct task_info *ti, unsigned what)
{
	memset(ti, 0, sizeof(*ti));
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t || task_hidden(t)) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	ti->id = t->id;
	ti->kind = t->kind;
	ti->method = t->method;
	ti->workload = t->workload;
	ti->state = t->state;
	ti->ended = task_state_ended(t->state);
	ti->exitcode = t->exitcode;
	ti->pid = t->pid;
	ti->tid = t->tid;
	ti->pgid = t->kind == TASK_PROCESS ? (t->parent_id ? t->cow_ref : t->pid) : 0;
	ti->parent_id = t->parent_id;
	memcpy(ti->name, t->name, sizeof(ti->name));
	memcpy(ti->error, t->error, sizeof(ti->error));
	ti->cmd = (what & TI_CMD) ? strdup(t->cmd) : NULL;
	ti->start = t->start_rt;
	ti->end = t->end_rt;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ti->runtime = ts_diff(t->start_mono, ti->ended ? t->end_mono : now);
	if (t->kind == TASK_THREAD) {
		ti->utime = (double)t->thread_cpu_us / 1e6;
	} else if (ti->ended) {
		ti->utime = tv_sec(t->ru.ru_utime);
		ti->stime = tv_sec(t->ru.ru_stime);
		ti->minflt = (uint64_t)t->ru.ru_minflt;
		ti->majflt = (uint64_t)t->ru.ru_majflt;
		ti->rss_peak_kib = (uint64_t)t->ru.ru_maxrss;   /* KiB on Linux */
	}
	ti->timeout_ms = t->timeout_ms;
	ti->timed_out = t->timed_out;
	ti->term_signal = t->term_signal;
	ti->mem_max = SPEC_UNSET;   /* the cgroup room's, if it has limits */
	ti->cpu_max = SPEC_UNSET;
	ROOMS_CALL(e, task_info, t, ti);   /* pools: its pool and slot */
	ti->owner = t->owner;
	for (int s = 1; s <= 2; s++) {
		ti->out_bytes[s] = t->out[s].len;
		ti->out_dropped[s] = t->out[s].dropped;
	}
	bool live_proc = !ti->ended && t->kind == TASK_PROCESS && t->pid > 0;
	pid_t pid = t->pid;
	bool live_cpu = what & TI_LIVE_CPU;
	int dup_fd = live_proc && live_cpu && t->stat_fd >= 0 ?
		     fcntl(t->stat_fd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&e->lock);
	/* /proc is read outside the lock; the pid cannot be reused before the
	 * engine reaps it, and a just-reaped one only yields zeros. */
	if (live_proc && live_cpu) {
		int fd = stat_fd_of(e, id, pid, dup_fd);
		if (fd >= 0) {
			proc_cpu(fd, &ti->utime, &ti->stime, &ti->minflt, &ti->majflt);
			close(fd);
		}
	}
	return (what & TI_CMD) && !ti->cmd ? -ENOMEM : 0;
}

int engine_task_info(struct engine *e, uint64_t id, struct task_info *ti)
{
	return task_info_fill(e, id, ti, TI_CMD);
}

int engine_task_brief(struct engine *e, uint64_t id, struct task_info *ti)
{
	return task_info_fill(e, id, ti, 0);
}

int engine_task_status(struct engine *e, uint64_t id, struct task_info *ti)
{
	return task_info_fill(e, id, ti, TI_CMD | TI_LIVE_CPU);
}

int engine_owner(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&e->lock);
	if (kind == OBJ_TASK) {
		struct task *t = task_find(e, id);
		if (t && !task_hidden(t)) {
			*out = t->owner;
			rc = 0;
		}
	} else {
		/* the room whose objects these are answers; the others say -ESRCH */
		for (size_t i = 0; i < e->nrooms; i++) {
			if (!e->rooms[i]->owner)
				continue;
			rc = e->rooms[i]->owner(e, kind, id, out);
			if (rc != -ESRCH)
				break;
		}
		if (rc == -ESRCH)
			rc = -ENOENT;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

bool engine_task_exists(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	bool ok = t && !task_hidden(t);
	pthread_mutex_unlock(&e->lock);
	return ok;
}

int engine_task_ids(struct engine *e, uint64_t **ids, size_t *n)
{
	pthread_mutex_lock(&e->lock);
	uint64_t *v = malloc((e->ntasks ? e->ntasks : 1) * sizeof(*v));
	size_t k = 0;
	if (v)
		for (struct task *t = e->first; t; t = t->next)
			if (!task_hidden(t))
				v[k++] = t->id;
	pthread_mutex_unlock(&e->lock);
	if (!v)
		return -ENOMEM;
	*ids = v;
	*n = k;
	return 0;
}

ssize_t engine_task_output(struct engine *e, uint64_t id, int stream, uint64_t off,
			   char *buf, size_t size, uint64_t *total)
{
	if (stream != 1 && stream != 2)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	size_t n = out_copy(&t->out[stream], off, buf, size, total);
	pthread_mutex_unlock(&e->lock);
	return (ssize_t)n;
}


int engine_task_forget(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	int rc = 0;
	if (!t || task_hidden(t))
		rc = -ENOENT;
	else if (!task_state_ended(t->state))
		rc = -EBUSY;
	else
		task_forget_locked(e, t);
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
	return rc;
}

void engine_stats(struct engine *e, struct engine_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->st;
	out->known = e->ntasks;
	pthread_mutex_unlock(&e->lock);
}

/* /proc/PID/io's "key: value" lines. */
static void proc_io(pid_t pid, struct task_io *io)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	static const struct { const char *key; size_t off; } keys[] = {
		{ "rchar", offsetof(struct task_io, rchar) },
		{ "wchar", offsetof(struct task_io, wchar) },
		{ "syscr", offsetof(struct task_io, syscr) },
		{ "syscw", offsetof(struct task_io, syscw) },
		{ "read_bytes", offsetof(struct task_io, read_bytes) },
		{ "write_bytes", offsetof(struct task_io, write_bytes) },
		{ "cancelled_write_bytes", offsetof(struct task_io, cancelled_write_bytes) },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t kl = strlen(keys[i].key);
		for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
			if (strncmp(l, keys[i].key, kl) == 0 && l[kl] == ':')
				*(int64_t *)((char *)io + keys[i].off) = strtoll(l + kl + 1, NULL, 10);
	}
}

int engine_task_io(struct engine *e, uint64_t id, struct task_io *io)
{
	*io = (struct task_io){ -1, -1, -1, -1, -1, -1, -1, 0, 0, false };
	struct task_info ti;
	int rc = engine_task_status(e, id, &ti);
	if (rc < 0)
		return rc;
	io->minflt = ti.minflt;
	io->majflt = ti.majflt;
	if (ti.kind == TASK_PROCESS && !ti.ended && ti.pid > 0) {
		io->live = true;
		proc_io(ti.pid, io);
	} else if (ti.kind == TASK_PROCESS && ti.ended) {
		pthread_mutex_lock(&e->lock);
		struct task *t = task_find(e, id);
		if (t && t->pid > 0) {
			io->read_bytes = (int64_t)t->ru.ru_inblock * 512;
			io->write_bytes = (int64_t)t->ru.ru_oublock * 512;
		}
		pthread_mutex_unlock(&e->lock);
	}
	task_info_free(&ti);
	return 0;
}
