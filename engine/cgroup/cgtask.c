/* cgtask.c - a task's cgroups: made with its limits before it starts,
 * joined by its child before exec, read for the OOM verdict at its end,
 * signalled and frozen whole by ctl, removed when it is forgotten.
 *
 * A task's cgroup is `tID` in the subtree of each hierarchy giving one of
 * its controllers, and of the unified hierarchy whenever there is one (for
 * cgroup.kill, cgroup.freeze and cgroup.procs).  The task ends when its own
 * process ends (as Python's join does); what it started may still run in its
 * cgroup until it is forgotten, when it is killed and the cgroup removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "strbuf.h"

void cgroup_join_close(struct cg_join *j)
{
	for (unsigned i = 0; i < j->n; i++)
		if (j->fd[i] >= 0)
			close(j->fd[i]);
	j->n = 0;
}

void cg_read_acct(const struct cgroup *cg, const char *udir, const char *mdir, int64_t *cpu_us,
		  int64_t *mem_peak)
{
	char buf[1024];
	bool v2 = cg->ctl_v2[CGC_MEMORY];
	*cpu_us = *mem_peak = -1;
	if (udir[0] && cg_read(udir, "cpu.stat", buf, sizeof(buf)) > 0)
		*cpu_us = (int64_t)cg_kv_get(buf, "usage_usec", (uint64_t)-1);
	if (mdir[0] && cg_read(mdir, v2 ? "memory.peak" : "memory.max_usage_in_bytes", buf,
			       sizeof(buf)) > 0)
		*mem_peak = strtoll(buf, NULL, 10);
}

void cg_oom_message(int64_t mem_max, const char *whose, char *buf, size_t n)
{
	char size[32];
	if (mem_max == SPEC_UNSET) {
		snprintf(buf, n, "killed by the OOM killer");
		return;
	}
	cg_format_size((uint64_t)mem_max, size, sizeof(size));
	snprintf(buf, n, "killed by the OOM killer (%s%smem_max %s)", whose, whose[0] ? " " : "",
		 size);
}

int cg_make_dir(const char *dir, bool fits, char *why, size_t whylen)
{
	if (!fits) {
		snprintf(why, whylen, "cgroup path too long");
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(why, whylen, "making the cgroup %s", dir);
		return rc;
	}
	return 0;
}

int cg_open_procs(const char *dir)
{
	char procs[CG_PATH_MAX + 64];
	if ((size_t)snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir) >= sizeof(procs))
		return -ENAMETOOLONG;
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

uint32_t cg_hierarchies_for(const struct cgroup *cg, unsigned need)
{
	uint32_t in = 0;
	for (int c = 0; c < CGC__COUNT; c++)
		if ((need & (1u << c)) && cg->ctl[c] >= 0)
			in |= 1u << cg->ctl[c];
	if (cg->unified >= 0)
		in |= 1u << cg->unified;
	return in;
}

static void undo_made(const struct cgroup *cg, uint64_t id, uint32_t made, struct cg_join *j)
{
	cgroup_join_close(j);
	for (size_t i = 0; i < cg->nh; i++) {
		char dir[CG_PATH_MAX + 32];
		if ((made & (1u << i)) && cg_task_dir(cg, i, id, dir, sizeof(dir)))
			rmdir(dir);
	}
}

/* One hierarchy's cgroup of the task: made, its controllers' limits
 * written, its cgroup.procs opened for the child. */
static int make_one(const struct cgroup *cg, size_t i, uint64_t id, unsigned need,
		    const struct spec_limits *l, struct cg_join *j, char *why, size_t whylen)
{
	char dir[CG_PATH_MAX + 32];
	int rc = cg_make_dir(dir, cg_task_dir(cg, i, id, dir, sizeof(dir)), why, whylen);
	if (rc < 0)
		return rc;
	for (int c = 0; c < CGC__COUNT; c++) {
		if (!(need & (1u << c)) || cg->ctl[c] != (int)i)
			continue;
		rc = cg_apply(dir, cg->sub[i], cg->ctl_v2[c] && cg->h[i].v2, c, l, why, whylen);
		if (rc < 0)
			return rc;
	}
	int fd = cg_open_procs(dir);
	if (fd < 0) {
		snprintf(why, whylen, "opening %s/cgroup.procs", dir);
		return fd;
	}
	j->fd[j->n++] = fd;
	return 0;
}

int cgroup_task_make(struct engine *e, struct task *t, const struct spec_limits *l,
		     struct cg_join *j, char *why, size_t whylen)
{
	const struct cgroup *cg = e->cgroup;
	unsigned need = cg_ctl_needed(l);
	memset(j, 0, sizeof(*j));
	if ((need & (1u << CGC_CPUSET)) && cg->ctl[CGC_CPUSET] < 0) {
		/* no cpuset: the child sets its own affinity before exec */
		j->affinity = true;
		cg_parse_cpus(l->cpus, j->cpus);
		need &= ~(1u << CGC_CPUSET);
	}
	if (!cg->on)
		return 0;   /* cgroup_check let only cpus= through */
	uint32_t in = cg_hierarchies_for(cg, need), made = 0;
	struct task_cg *tc = calloc(1, sizeof(*tc));
	if (!tc) {
		snprintf(why, whylen, "its cgroup");
		return -ENOMEM;
	}
	for (size_t i = 0; i < cg->nh; i++) {
		if (!(in & (1u << i)))
			continue;
		int rc = make_one(cg, i, t->id, need, l, j, why, whylen);
		made |= 1u << i;
		if (rc < 0) {
			undo_made(cg, t->id, made, j);
			free(tc);
			return rc;
		}
	}
	tc->in = in;
	tc->mem_max = l->mem_max;
	tc->cpu_max = l->cpu_max;
	snprintf(tc->cpus, sizeof(tc->cpus), "%s", l->cpus ? l->cpus : "");
	t->cg = tc;   /* not yet published: no lock needed */
	return 0;
}

/* ---- the task's life ---------------------------------------------------------------- */

static bool dir_of(const struct cgroup *cg, const struct task *t, int i, char *dir, size_t n)
{
	return i >= 0 && (t->cg->in & (1u << i)) && cg_task_dir(cg, (size_t)i, t->id, dir, n);
}

/* Ended by SIGKILL with an OOM kill counted in its memory cgroup: the OOM
 * killer did it (the count rises before the victim dies). */
void cg_task_ended(struct engine *e, struct task *t)
{
	const struct cgroup *cg = e->cgroup;
	char dir[CG_PATH_MAX + 32];
	if (!t->cg || !cg || !dir_of(cg, t, cg->ctl[CGC_MEMORY], dir, sizeof(dir)))
		return;
	if (t->state != TS_KILLED || t->exitcode != -SIGKILL)
		return;
	if (cg_oom_kills(dir, cg->ctl_v2[CGC_MEMORY]) == 0)
		return;
	t->oom_killed = true;
	cg_oom_message(t->cg->mem_max, "", t->error, sizeof(t->error));
}

void cg_task_forgotten(struct engine *e, struct task *t)
{
	struct cgroup *cg = e->cgroup;
	if (!t->cg || !cg)
		return;
	char dir[CG_PATH_MAX + 32];
	/* what it started and left running goes with it */
	if (dir_of(cg, t, cg->unified, dir, sizeof(dir)) && cg->has_kill)
		cg_kill_all(cg, dir, true);
	for (size_t i = 0; i < cg->nh; i++) {
		if (!dir_of(cg, t, (int)i, dir, sizeof(dir)))
			continue;
		cg_kill_all(cg, dir, false);
		cg_remove(cg, dir);
	}
	t->cg->in = 0;
}

void cg_task_destroyed(struct engine *e, struct task *t)
{
	free(t->cg);
	t->cg = NULL;
}

void cg_task_info(struct engine *e, const struct task *t, struct task_info *ti)
{
	ti->oom_killed = t->oom_killed;
	if (!t->cg)
		return;
	snprintf(ti->cgroup, sizeof(ti->cgroup), "t%llu", (unsigned long long)t->id);
	ti->mem_max = t->cg->mem_max;
	ti->cpu_max = t->cg->cpu_max;
	snprintf(ti->cpus, sizeof(ti->cpus), "%s", t->cg->cpus);
}

/* ---- signals ------------------------------------------------------------------------ */

/* sig to every process of the cgroup; 0 if one got it, else -ESRCH. */
static int signal_each(const char *dir, int sig)
{
	pid_t pids[1024];
	long n = cg_procs(dir, pids, 1024);
	int rc = -ESRCH;
	for (long k = 0; k < n && k < 1024; k++)
		if (kill(pids[k], sig) == 0)
			rc = 0;
	return rc;
}

static int freeze(struct engine *e, struct task *t, const char *dir, bool on)
{
	int rc = cg_write(dir, "cgroup.freeze", on ? "1" : "0");
	if (rc < 0)
		return rc;
	t->cg->frozen = on;
	t->state = on ? TS_STOPPED : TS_RUNNING;
	engine_notify_locked(e, OBJ_TASK, t->id);
	return 0;
}

int cg_task_signal(struct engine *e, struct task *t, int sig)
{
	const struct cgroup *cg = e->cgroup;
	char u[CG_PATH_MAX + 32], any[CG_PATH_MAX + 32];
	if (!t->cg || !cg || !t->cg->in)
		return -ENOSYS;
	bool has_u = dir_of(cg, t, cg->unified, u, sizeof(u));
	int first = __builtin_ffs((int)t->cg->in) - 1;
	if (!dir_of(cg, t, first, any, sizeof(any)))
		return -ENOSYS;
	if (sig == SIGSTOP)
		return has_u && cg->has_freeze ? freeze(e, t, u, true) : -ENOSYS;
	/* a frozen tree acts on no signal: thaw it first (as CONT before TERM) */
	if (t->cg->frozen && has_u) {
		int rc = freeze(e, t, u, false);
		if (rc < 0)
			return rc;
	}
	if (sig == SIGKILL && has_u && cg->has_kill && cg_write(u, "cgroup.kill", "1") == 0)
		return 0;
	return signal_each(has_u ? u : any, sig);
}

/* ---- procs/ID/cgroup ---------------------------------------------------------------- */

/* The task's directories (label and path) and where its processes are read. */
static int task_dirs(struct engine *e, uint64_t id, struct strbuf *out, char *procs_dir,
		     size_t n)
{
	const struct cgroup *cg = e->cgroup;
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	int rc = t ? 0 : -ENOENT;
	procs_dir[0] = '\0';
	if (t && t->cg && t->cg->in) {
		rc = 1;
		sb_printf(out, "name: t%llu\n", (unsigned long long)id);
		for (size_t i = 0; i < cg->nh; i++) {
			char dir[CG_PATH_MAX + 32];
			if (!dir_of(cg, t, (int)i, dir, sizeof(dir)))
				continue;
			sb_printf(out, "%s: %s\n", cg->h[i].v2 ? "unified" : cg->h[i].ctrl, dir);
			if (!procs_dir[0] || (int)i == cg->unified)
				snprintf(procs_dir, n, "%s", dir);
		}
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_task_cgroup(struct engine *e, uint64_t id, struct strbuf *out)
{
	char dir[CG_PATH_MAX + 32];
	int rc = task_dirs(e, id, out, dir, sizeof(dir));
	if (rc <= 0)
		return rc;
	pid_t pids[4096];
	long n = cg_procs(dir, pids, 4096);
	sb_adds(out, "procs:");
	for (long k = 0; k < n && k < 4096; k++)
		sb_printf(out, " %d", (int)pids[k]);
	sb_adds(out, "\n");
	return 0;
}

long engine_task_cgroup_procs(struct engine *e, uint64_t id)
{
	char dir[CG_PATH_MAX + 32];
	struct strbuf sink = STRBUF_INIT;
	int rc = task_dirs(e, id, &sink, dir, sizeof(dir));
	sb_free(&sink);
	if (rc <= 0)
		return -1;
	long n = cg_procs(dir, NULL, 0);
	return n < 0 ? 0 : n;
}

int engine_task_cgroup_acct(struct engine *e, uint64_t id, int64_t *cpu_us, int64_t *mem_peak)
{
	const struct cgroup *cg = e->cgroup;
	char u[CG_PATH_MAX + 32] = "", m[CG_PATH_MAX + 32] = "";
	*cpu_us = *mem_peak = -1;
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	bool has = t && t->cg && t->cg->in;
	if (has) {
		if (!dir_of(cg, t, cg->unified, u, sizeof(u)))
			u[0] = '\0';
		if (!dir_of(cg, t, cg->ctl[CGC_MEMORY], m, sizeof(m)))
			m[0] = '\0';
	}
	pthread_mutex_unlock(&e->lock);
	if (!has)
		return -ENOENT;
	cg_read_acct(cg, u, m, cpu_us, mem_peak);
	return 0;
}
