/* sample.c - memory and scheduling figures of tasks: sampled on the engine
 * thread every [memory] sample_period, read fresh on demand, kept after the
 * task ends.
 *
 * A sample reads what memlog and /top need and nothing more: the status
 * (VSZ, RSS, and a sched's switches) and the stat (CPU times) of the task's
 * thread, with no page walk.  The full smaps text, which `maps` and `smaps`
 * need once the process is gone, is snapshotted at most once a
 * SMAPS_PERIOD_MS per task, and the rest of an ended task's `mem` (the
 * rollup's figures and [heap]) is summed from that snapshot: reading
 * smaps_rollup and maps as well would walk the same pages again, five times
 * as often.  /proc is read without the engine lock: the lock is taken to
 * list the tasks to read and again to store results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "memory_int.h"

#define SMAPS_PERIOD_MS 1000

static double mono_diff(struct timespec a, struct timespec b)
{
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* The process whose memory a task shows, and the thread whose scheduling:
 * a thread task reads its host.  False if there is none (yet). */
static bool task_target(const struct task *t, pid_t *pid, pid_t *tid)
{
	*pid = t->pid;
	*tid = t->kind == TASK_THREAD ? t->tid : 0;
	return *pid > 0 && (t->kind == TASK_PROCESS || *tid > 0);
}

static int sample_init(struct engine *e)
{
	e->memory->samplefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (e->memory->samplefd < 0)
		return -errno;
	int64_t ms = e->cfg.mem_sample_ms;
	struct itimerspec its = {
		.it_interval = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
	};
	its.it_value = its.it_interval;
	if (timerfd_settime(e->memory->samplefd, 0, &its, NULL) < 0)
		return -errno;
	return engine_watch(e, e->memory->samplefd, WATCH_SAMPLE, 0);
}

/* mem's three /proc files of a live task, kept open from its first `mem`
 * read to its end: each later read is a pread of each (ms_memfds), about
 * 25 us less per open than opening them again, which is most of what `mem`
 * costs over its FUSE floor.  A reader reads dups taken under the lock, so
 * the task's end, which closes the kept ones, never pulls them from under
 * it.  At most memfds_max tasks keep them (3/16 of the daemon's descriptor
 * limit, at most 4096 tasks); the others read by path, as before. */
static void memfds_drop(struct engine *e, struct task *t)
{
	if (!t->mem || t->mem->fds.rollup < 0)
		return;
	ms_memfds_close(&t->mem->fds);
	e->memory->memfds_kept--;
}

static void task_mem_free(struct engine *e, struct task *t)
{
	if (!t->mem)
		return;
	memfds_drop(e, t);
	free(t->mem->smaps);
	free(t->mem->log);
	free(t->mem);
	t->mem = NULL;
}

static struct task_mem_store *mem_of(struct task *t)
{
	if (!t->mem && (t->mem = calloc(1, sizeof(*t->mem))))
		t->mem->fds = (struct ms_memfds)MS_MEMFDS_NONE;
	return t->mem;
}

/* Keep f (moved: f is left none) as the task's own if it is still the live
 * process f was opened for and none is kept yet (lock held).  Only reaping,
 * under the lock, ends a live task and frees its pid for reuse. */
static void memfds_keep(struct engine *e, struct task *t, pid_t pid, struct ms_memfds *f)
{
	struct task_mem_store *m;
	if (!t || !task_live(t) || t->pid != pid ||
	    e->memory->memfds_kept >= e->memory->memfds_max || !(m = mem_of(t)) ||
	    m->fds.rollup >= 0)
		return;
	m->fds = *f;
	*f = (struct ms_memfds)MS_MEMFDS_NONE;
	e->memory->memfds_kept++;
}

/* A live task's mem figures read now: through dups of its kept files, or
 * by opening them (and keeping them, if it may).  0 or -errno. */
static int read_mem_now(struct engine *e, uint64_t id, pid_t pid, struct ms_sample *out)
{
	struct ms_memfds f = MS_MEMFDS_NONE;
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	bool lent = t && t->mem && t->mem->fds.rollup >= 0 &&
		    ms_memfds_dup(&t->mem->fds, &f) == 0;
	pthread_mutex_unlock(&e->lock);
	memset(out, 0, sizeof(*out));
	int rc = lent ? 0 : ms_memfds_open(pid, &f);
	if (rc == 0)
		rc = ms_read_mem_fds(&f, out);
	if (rc == 0 && !lent) {
		pthread_mutex_lock(&e->lock);
		memfds_keep(e, task_find(e, id), pid, &f);
		pthread_mutex_unlock(&e->lock);
	}
	ms_memfds_close(&f);
	return rc == -EINVAL ? -ESRCH : rc;   /* as ms_read_sample: a garbled read is a gone process */
}

/* Append to the memlog ring: it grows to memlog_max, then drops the oldest. */
static void memlog_add(struct task_mem_store *m, uint32_t max, struct memlog_point p)
{
	if (m->log_len < max) {
		if (m->log_len == m->log_cap) {
			size_t cap = m->log_cap ? m->log_cap * 2 : 64;
			if (cap > max)
				cap = max;
			void *v = realloc(m->log, cap * sizeof(*m->log));
			if (!v)
				return;    /* a missing point, not a broken log */
			m->log = v;
			m->log_cap = cap;
		}
		m->log[m->log_len++] = p;   /* not yet wrapped: head stays 0 */
		return;
	}
	m->log[m->log_head] = p;
	m->log_head = (m->log_head + 1) % m->log_len;
}

/* Keep s as the task's last sample, a point of its memlog and a new CPU%
 * reading (lock held).  mem_fresh: its rollup and heap were just summed from
 * a smaps snapshot (else they are the last ones again, as old as they are). */
static void store_sample(struct engine *e, struct task *t, const struct ms_sample *s,
			 struct timespec now, bool mem_fresh)
{
	struct task_mem_store *m = mem_of(t);
	if (!m)
		return;
	double dt = m->have_last ? mono_diff(m->last_mono, now) : 0;
	long hz = sysconf(_SC_CLK_TCK);
	m->cpu_pct = -1;
	if (dt > 0 && hz > 0) {
		double ticks = (double)(s->stat.utime + s->stat.stime) -
			       (double)(m->last.stat.utime + m->last.stat.stime);
		m->cpu_pct = ticks / (double)hz / dt * 100.0;
	}
	struct memlog_point p = {
		.t_ms = (int64_t)(mono_diff(t->start_mono, now) * 1000.0),
		.vsz = s->st.vm_size,
		.rss = s->st.vm_rss,
	};
	memlog_add(m, e->cfg.memlog_max, p);
	m->last = *s;
	m->last_mono = now;
	if (mem_fresh)
		m->mem_mono = now;
	m->have_last = true;
}

void task_store_cow(struct task *t, const struct ms_cow *c, bool exact)
{
	struct task_mem_store *m = mem_of(t);
	if (!m)
		return;
	m->have_cow = true;
	m->cow = *c;
	m->cow_exact = exact;
}

/* Keep smaps text (taken over: *txt is set to NULL). */
static void store_smaps(struct task *t, char **txt, size_t len, struct timespec now)
{
	struct task_mem_store *m = mem_of(t);
	if (!m)
		return;
	free(m->smaps);
	m->smaps = *txt;
	m->smaps_len = len;
	m->smaps_mono = now;
	*txt = NULL;
}

/* ---- the sampling tick (engine thread) ------------------------------------------ */

struct probe {
	uint64_t id;
	pid_t pid, tid;
	pid_t cow_ref;              /* a cow child: measure its COW too */
	bool want_smaps;
	bool have_mem;              /* s.r and s.heap were read (from smaps) */
	int rc;
	int cow_rc;
	struct ms_cow cow;
	bool cow_exact;
	struct ms_sample s;
	char *smaps;
	size_t smaps_len;
};

/* The live tasks to read (lock held). */
static struct probe *probes_gather(struct engine *e, struct timespec now, size_t *n)
{
	size_t cap = e->nlive, k = 0;
	if (cap == 0)
		return NULL;
	struct probe *v = calloc(cap, sizeof(*v));
	if (!v)
		return NULL;
	for (struct task *t = e->live_first; t && k < cap; t = t->lnext) {
		if (!task_target(t, &v[k].pid, &v[k].tid))
			continue;
		v[k].id = t->id;
		/* a live read of smaps (engine_task_smaps) keeps its text, not the
		 * rollup: the pace is the sampler's own */
		v[k].want_smaps = !t->mem || !t->mem->have_last ||
				  mono_diff(t->mem->mem_mono, now) * 1000.0 >= SMAPS_PERIOD_MS;
		/* a cow child's figures are what it is for: keep them for after
		 * its end, at the smaps pace (pagemap reads are not cheap) */
		if (v[k].want_smaps && t->parent_id)
			v[k].cow_ref = t->cow_ref;
		k++;
	}
	*n = k;
	return v;
}

static void probe_read(struct probe *p)
{
	p->cow_rc = -ENOENT;
	p->rc = ms_read_sample(p->pid, p->tid, MS_READ_SCHED, &p->s);
	if (p->rc < 0)
		return;
	/* The Vm* and Rss* lines of a status are its mm's: a thread's are its
	 * host process's, so one status read serves memory and sched.  A zombie
	 * has none: no sample, as before its rollup would have said. */
	p->s.st = p->s.tst;
	if (p->s.st.vm_size == MS_NONE || p->s.st.vm_rss == MS_NONE) {
		p->rc = -ESRCH;
		return;
	}
	if (!p->want_smaps)
		return;
	if (p->cow_ref > 0)
		p->cow_rc = ms_read_cow(p->pid, p->cow_ref, &p->cow, &p->cow_exact);
	char path[64];
	struct strbuf sb = STRBUF_INIT;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)p->pid);
	if (ms_read_file(path, &sb) == 0 && sb.len > 0) {
		p->have_mem = ms_smaps_rollup_heap(sb.buf, sb.len, &p->s.r, &p->s.heap) == 0;
		p->smaps_len = sb.len;
		p->smaps = sb_steal(&sb);
	}
	sb_free(&sb);
}

/* The sampling timer fired: read every live task's figures, without `lock`
 * (a watch row of the memory room's, run after the loop's turn). */
static void sample_tick(struct engine *e, uint64_t id, uint32_t events)
{
	uint64_t ticks;
	if (read(e->memory->samplefd, &ticks, sizeof(ticks)) < 0)
		return;   /* EAGAIN: a spurious wakeup */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);

	size_t n = 0;
	pthread_mutex_lock(&e->lock);
	struct probe *v = probes_gather(e, now, &n);
	pthread_mutex_unlock(&e->lock);
	if (!v)
		return;

	for (size_t i = 0; i < n; i++)
		probe_read(&v[i]);

	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < n; i++) {
		struct task *t = task_find(e, v[i].id);
		pid_t pid, tid;
		if (v[i].rc < 0 || !t || !task_live(t) || !task_target(t, &pid, &tid) ||
		    pid != v[i].pid)
			continue;
		if (!v[i].have_mem) {
			if (!t->mem || !t->mem->have_last)
				continue;   /* no figures of its memory yet: no sample */
			/* between snapshots: the last rollup and heap stay */
			v[i].s.r = t->mem->last.r;
			v[i].s.heap = t->mem->last.heap;
		}
		store_sample(e, t, &v[i].s, now, v[i].have_mem);
		if (v[i].smaps)
			store_smaps(t, &v[i].smaps, v[i].smaps_len, now);
		if (v[i].cow_rc == 0 && v[i].cow_exact)   /* while both ran */
			task_store_cow(t, &v[i].cow, v[i].cow_exact);
	}
	pthread_mutex_unlock(&e->lock);
	for (size_t i = 0; i < n; i++)
		free(v[i].smaps);
	free(v);
}

/* ---- queries ------------------------------------------------------------------------- */

/* What a query needs to know of a task, copied under the lock. */
struct target {
	pid_t pid, tid;
	bool readable;              /* live, with a process to read */
	bool ended_process;
	struct rusage ru;
};

static int target_of(struct engine *e, uint64_t id, struct target *tg)
{
	struct task *t = task_find(e, id);
	if (!t || t->state == TS_STARTING)
		return -ENOENT;
	memset(tg, 0, sizeof(*tg));
	bool has = task_target(t, &tg->pid, &tg->tid);
	tg->readable = has && task_live(t);
	tg->ended_process = t->kind == TASK_PROCESS && t->state != TS_FAILED &&
			    !task_live(t);
	tg->ru = t->ru;
	return 0;
}

static void no_figures(struct engine *e, uint64_t id, const char *what, int err)
{
	log_add(e, LOG_LVL_WARN, "task %llu: no %s: its /proc entry is gone (%s) and none "
		"was sampled while it ran", (unsigned long long)id, what, strerror(err));
}

static double tv_secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int engine_task_mem(struct engine *e, uint64_t id, unsigned what, struct task_mem *out)
{
	struct target tg;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	int rc = target_of(e, id, &tg);
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		return rc;

	int err = ESRCH;
	if (tg.readable) {
		rc = what == MS_READ_MEM ? read_mem_now(e, id, tg.pid, &out->s) :
		     ms_read_sample(tg.pid, tg.tid, what, &out->s);
		err = -rc;
	}
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	if (tg.readable && rc == 0 && task_live(t)) {
		out->live = true;
	} else if (t->mem && t->mem->have_last) {
		struct timespec now;
		out->s = t->mem->last;
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* mem's rollup and heap come from the last smaps snapshot: its
		 * age is that of its oldest figures */
		out->age = mono_diff((what & MS_READ_MEM) ? t->mem->mem_mono :
				     t->mem->last_mono, now);
	} else {
		pthread_mutex_unlock(&e->lock);
		no_figures(e, id, "memory figures", err);
		return -ESRCH;
	}
	pthread_mutex_unlock(&e->lock);

	out->pid = tg.pid;
	out->tid = tg.tid > 0 ? tg.tid : tg.pid;
	long hz = sysconf(_SC_CLK_TCK);
	out->utime = (double)out->s.stat.utime / (double)hz;
	out->stime = (double)out->s.stat.stime / (double)hz;
	out->vol_cs = out->s.tst.vol_cs;
	out->nonvol_cs = out->s.tst.nonvol_cs;
	if (tg.ended_process) {
		/* wait4 told the final, exact figures */
		out->utime = tv_secs(tg.ru.ru_utime);
		out->stime = tv_secs(tg.ru.ru_stime);
		out->vol_cs = tg.ru.ru_nvcsw;
		out->nonvol_cs = tg.ru.ru_nivcsw;
	}
	return 0;
}

int engine_task_smaps(struct engine *e, uint64_t id, struct strbuf *out, bool *live)
{
	struct target tg;
	pthread_mutex_lock(&e->lock);
	int rc = target_of(e, id, &tg);
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		return rc;

	int err = ESRCH;
	struct strbuf sb = STRBUF_INIT;
	if (tg.readable) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/smaps", (int)tg.pid);
		rc = ms_read_file(path, &sb);
		if (rc == 0 && sb.len == 0)
			rc = -ESRCH;   /* a zombie: its address space is gone */
		err = -rc;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t) {
		rc = -ENOENT;
	} else if (tg.readable && rc == 0 && task_live(t)) {
		*live = true;
		sb_add(out, sb.buf, sb.len);
		char *txt = sb_steal(&sb);
		if (txt)
			store_smaps(t, &txt, out->len, now);
		free(txt);
		rc = 0;
	} else if (t->mem && t->mem->smaps) {
		*live = false;
		sb_add(out, t->mem->smaps, t->mem->smaps_len);
		rc = sb_error(out);
	} else {
		rc = -ESRCH;
	}
	pthread_mutex_unlock(&e->lock);
	sb_free(&sb);
	if (rc == -ESRCH)
		no_figures(e, id, "memory map", err);
	return rc;
}

int engine_task_memlog(struct engine *e, uint64_t id, struct strbuf *out)
{
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t || t->state == TS_STARTING) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	const struct task_mem_store *m = t->mem;
	for (size_t i = 0; m && i < m->log_len; i++) {
		const struct memlog_point *p = &m->log[(m->log_head + i) % m->log_len];
		sb_printf(out, "%lld %lld %lld\n", (long long)p->t_ms, (long long)p->vsz,
			  (long long)p->rss);
	}
	pthread_mutex_unlock(&e->lock);
	return sb_error(out);
}

int engine_top(struct engine *e, struct top_row **rows, size_t *n)
{
	pthread_mutex_lock(&e->lock);
	size_t cap = e->nlive, k = 0;
	struct top_row *v = calloc(cap ? cap : 1, sizeof(*v));
	for (struct task *t = e->live_first; v && t && k < cap; t = t->lnext) {
		struct top_row *r = &v[k++];
		r->id = t->id;
		r->kind = t->kind;
		r->state = t->state;
		r->pid = t->pid;
		r->tid = t->kind == TASK_THREAD ? t->tid : t->pid;
		memcpy(r->name, t->name, sizeof(r->name));
		r->cpu_pct = -1;
		if (t->mem && t->mem->have_last) {
			r->sampled = true;
			r->cpu_pct = t->mem->cpu_pct;
			r->rss = t->mem->last.st.vm_rss;
			r->vsz = t->mem->last.st.vm_size;
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (!v)
		return -ENOMEM;
	*rows = v;
	*n = k;
	return 0;
}

/* ---- the room ----------------------------------------------------------------- */

static int memory_init(struct engine *e, char *err, size_t errlen)
{
	e->memory = calloc(1, sizeof(*e->memory));
	if (!e->memory) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->memory->samplefd = -1;
	struct rlimit rl;
	rlim_t fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	e->memory->memfds_max = fds / 16 < 4096 ? (size_t)(fds / 16) : 4096;
	int rc = sample_init(e);
	if (rc < 0)
		snprintf(err, errlen, "sampling timer: %s", strerror(-rc));
	return rc;
}

static void memory_fini(struct engine *e)
{
	if (!e->memory)
		return;
	if (e->memory->samplefd >= 0)
		close(e->memory->samplefd);
	free(e->memory);
	e->memory = NULL;
}

static const struct watch_row memory_watches[] = {
	/* /proc is read without the lock, after the turn (loop.c) */
	{ .type = WATCH_SAMPLE, .fn = sample_tick, .unlocked = true },
};

const struct room memory_room = {
	.name = "memory",
	.init = memory_init,
	.fini = memory_fini,
	.task_output = cow_scan_output,
	.task_ended = memfds_drop,
	.task_destroyed = task_mem_free,
	.orphan = stranger_reaped,
	.watches = memory_watches,
	.nwatches = sizeof(memory_watches) / sizeof(memory_watches[0]),
};
