/* cgroup.c - the cgroup room's row: its subtree in every hierarchy the
 * daemon is in, what a line may ask for here, and the cleanup of what a
 * daemon that died left (cgtask.c does a task's cgroups).
 *
 * The subtree is `pcfs.PID` (PID: the daemon's) under the cgroup the daemon
 * runs in, or under [cgroup] where, in each mounted hierarchy: several
 * daemons may share a cgroup (tests do), and a subtree whose daemon is gone
 * (no /proc/PID) was left by a daemon that was killed: the next daemon to
 * start there kills what is still in it and removes it.  A daemon that
 * leaves its tasks running at unmount ([unmount] policy = leave) renames its
 * subtree `pcfs.PID.left`: the next daemon removes only the cgroups of it
 * that have emptied.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_int.h"

/* ---- removing cgroups ----------------------------------------------------------- */

bool cg_task_dir(const struct cgroup *cg, size_t i, uint64_t id, char *dir, size_t n)
{
	int w = snprintf(dir, n, "%s/t%llu", cg->sub[i], (unsigned long long)id);
	return w > 0 && (size_t)w < n;
}

void cg_kill_all(const struct cgroup *cg, const char *dir, bool v2)
{
	(void)cg;
	if (v2 && cg_write(dir, "cgroup.kill", "1") == 0)
		return;
	/* v1: one by one; a fork meanwhile is caught by the next round */
	for (int round = 0; round < 4; round++) {
		pid_t pids[512];
		long n = cg_procs(dir, pids, 512);
		if (n <= 0)
			return;
		for (long k = 0; k < n && k < 512; k++)
			kill(pids[k], SIGKILL);
	}
}

void cg_remove(struct cgroup *cg, const char *dir)
{
	if (rmdir(dir) == 0 || errno == ENOENT || errno != EBUSY)
		return;
	/* its last processes are still dying: again at the end of a turn */
	if (cg->npending == cg->cap_pending) {
		size_t cap = cg->cap_pending ? cg->cap_pending * 2 : 16;
		char **v = realloc(cg->pending, cap * sizeof(*v));
		if (!v)
			return;
		cg->pending = v;
		cg->cap_pending = cap;
	}
	char *p = strdup(dir);
	if (p)
		cg->pending[cg->npending++] = p;
}

void cg_retry_pending(struct cgroup *cg)
{
	size_t k = 0;
	for (size_t i = 0; i < cg->npending; i++) {
		if (rmdir(cg->pending[i]) == 0 || errno != EBUSY)
			free(cg->pending[i]);
		else
			cg->pending[k++] = cg->pending[i];
	}
	cg->npending = k;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Every cgroup below dir (tasks', pools' and their futures'), deepest
 * first, killed first unless only empty ones go (a `.left` subtree), then
 * dir itself.  True if something stayed (busy). */
static bool remove_children(const char *dir, bool v2, bool kill_them, int depth)
{
	DIR *d = depth < 4 ? opendir(dir) : NULL;
	if (!d)
		return false;
	bool busy = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		char child[CG_PATH_MAX + 300];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(child, sizeof(child), "%s/%s", dir, de->d_name);
		busy |= remove_children(child, v2, kill_them, depth + 1);
		if (kill_them)
			cg_kill_all(NULL, child, v2);
		if (rmdir(child) < 0 && errno == EBUSY)
			busy = true;
	}
	closedir(d);
	return busy;
}

/* Waits at most about a second for killed processes to leave. */
static void remove_subtree(const char *dir, bool v2, bool kill_them)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		bool busy = remove_children(dir, v2, kill_them, 0);
		if (rmdir(dir) == 0 || errno != EBUSY || (busy && !kill_them))
			return;
		sleep_ms(20);
	}
}

/* Subtrees pcfs.PID under dir whose daemon is gone. */
static void clean_stale(const char *dir, bool v2)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long pid;
		int end = 0;
		if (sscanf(de->d_name, "pcfs.%lu%n", &pid, &end) != 1)
			continue;
		bool left = strcmp(de->d_name + end, ".left") == 0;
		if (!left && de->d_name[end] != '\0')
			continue;
		char proc[64], sub[CG_PATH_MAX + 300];
		snprintf(proc, sizeof(proc), "/proc/%lu", pid);
		if (!left && (pid_t)pid != getpid() && access(proc, F_OK) == 0)
			continue;   /* another daemon's, alive */
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		remove_subtree(sub, v2, !left);
	}
	closedir(d);
}

/* ---- the subtree ---------------------------------------------------------------- */

/* A v1 cpuset takes no child and no process until it has CPUs and memory
 * nodes: the subtree gets its parent's. */
void cg_cpuset_inherit(const char *sub, const char *parent)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	for (int i = 0; i < 2; i++) {
		char v[256];
		if (cg_read(parent, files[i], v, sizeof(v)) > 0) {
			v[strcspn(v, "\n")] = '\0';
			cg_write(sub, files[i], v);
		}
	}
}

/* v2: the controllers of ours that the parent can give, enabled for our
 * subtree and for its children (the tasks' cgroups). */
static void enable_v2(struct cgroup *cg, size_t i)
{
	char have[512];
	if (cg_read(cg->h[i].dir, "cgroup.controllers", have, sizeof(have)) < 0)
		return;
	for (int c = 0; c < CGC__COUNT; c++) {
		const char *name = cg_ctl_name(c, true);
		char plus[32];
		if (!cg_list_has(have, name))
			continue;
		snprintf(plus, sizeof(plus), "+%s", name);
		/* EBUSY where the parent holds processes (no internal processes
		 * with domain controllers): then v1 or nothing gives it */
		cg_write(cg->h[i].dir, "cgroup.subtree_control", plus);
		char sub_have[512];
		if (cg_read(cg->sub[i], "cgroup.controllers", sub_have, sizeof(sub_have)) >= 0 &&
		    cg_list_has(sub_have, name) &&
		    cg_write(cg->sub[i], "cgroup.subtree_control", plus) == 0) {
			cg->ctl[c] = (int)i;
			cg->ctl_v2[c] = true;
		}
	}
}

static void subtree_make(struct cgroup *cg, size_t i, char *why, size_t whylen)
{
	const struct cg_hier *h = &cg->h[i];
	char sub[CG_PATH_MAX];
	clean_stale(h->dir, h->v2);
	if ((size_t)snprintf(sub, sizeof(sub), "%s/pcfs.%d", h->dir, (int)getpid()) >= sizeof(sub))
		return;
	if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "mkdir %s: %s", sub, strerror(errno));
		return;
	}
	snprintf(cg->sub[i], sizeof(cg->sub[i]), "%s", sub);
	if (h->v2)
		enable_v2(cg, i);
	else if (cg_list_has(h->ctrl, "cpuset"))
		cg_cpuset_inherit(sub, h->dir);
}

/* The v1 hierarchy with controller c for what v2 does not give. */
static void choose_v1(struct cgroup *cg)
{
	for (int c = 0; c < CGC__COUNT; c++)
		for (size_t i = 0; i < cg->nh && cg->ctl[c] < 0; i++)
			if (!cg->h[i].v2 && cg->sub[i][0] && cg_list_has(cg->h[i].ctrl, cg_ctl_name(c, false)))
				cg->ctl[c] = (int)i;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += r;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static void discover(struct engine *e, struct cgroup *cg)
{
	char *self = slurp("/proc/self/cgroup"), *mi = slurp("/proc/self/mountinfo");
	char why[CG_PATH_MAX + 128] = "no cgroup hierarchy is mounted where pcfs runs";
	if (self && mi)
		cg->nh = cg_discover(self, mi, e->cfg.cgroup_where, cg->h, CG_HIER_MAX);
	free(self);
	free(mi);
	for (size_t i = 0; i < cg->nh; i++) {
		subtree_make(cg, i, why, sizeof(why));
		cg->on = cg->on || cg->sub[i][0];
		if (cg->h[i].v2 && cg->sub[i][0]) {
			cg->unified = (int)i;
			cg->has_kill = cg_file_exists(cg->sub[i], "cgroup.kill");
			cg->has_freeze = cg_file_exists(cg->sub[i], "cgroup.freeze");
		}
	}
	choose_v1(cg);
	if (!cg->on)
		snprintf(cg->why_off, sizeof(cg->why_off), "%s", why);
	int m = cg->ctl[CGC_MEMORY];
	if (m >= 0)
		cg->swap_ok = cg_file_exists(cg->sub[m], cg->ctl_v2[CGC_MEMORY] ? "memory.swap.max"
									  : "memory.memsw.limit_in_bytes");
}

static int check_defaults(struct engine *e, char *err, size_t errlen);

static int cg_init(struct engine *e, char *err, size_t errlen)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->cgroup = cg;
	cg->unified = -1;
	for (int c = 0; c < CGC__COUNT; c++)
		cg->ctl[c] = -1;
	if (strcmp(e->cfg.cgroup_where, "off") == 0)
		snprintf(cg->why_off, sizeof(cg->why_off), "[cgroup] where = off");
	else
		discover(e, cg);   /* never fails the daemon: limits are refused instead */
	return check_defaults(e, err, errlen);
}

/* Tasks' cgroups left (descendants of ended tasks, or everything under
 * policy=leave) go with the subtree, or it is kept as `.left`. */
static void cg_fini(struct engine *e)
{
	struct cgroup *cg = e->cgroup;
	if (!cg)
		return;
	bool leave = e->cfg.unmount_policy == UNMOUNT_LEAVE;
	for (size_t i = 0; i < cg->nh; i++) {
		if (!cg->sub[i][0])
			continue;
		if (leave) {
			char left[CG_PATH_MAX + 8];
			snprintf(left, sizeof(left), "%s.left", cg->sub[i]);
			if (rename(cg->sub[i], left) == 0)
				remove_subtree(left, cg->h[i].v2, false);
			continue;
		}
		remove_subtree(cg->sub[i], cg->h[i].v2 && cg->has_kill, true);
	}
	for (size_t i = 0; i < cg->npending; i++)
		free(cg->pending[i]);
	free(cg->pending);
	free(cg);
	e->cgroup = NULL;
}

static void cg_turn_end(struct engine *e)
{
	if (e->cgroup->npending)
		cg_retry_pending(e->cgroup);
}

/* ---- what a line may ask --------------------------------------------------------- */

/* The first limit the line gives, for messages. */
static const char *first_key(const struct spec_limits *l)
{
	return l->mem_max != SPEC_UNSET ? "mem_max=" : l->swap_max != SPEC_UNSET ? "swap_max="
	     : l->pids_max != SPEC_UNSET ? "pids_max=" : l->cpu_max != SPEC_UNSET ? "cpu_max="
	     : l->io_weight != SPEC_UNSET ? "io_weight=" : l->cpus ? "cpus=" : "cgroup=1";
}

static const char *const opt_of[CGC__COUNT] = {
	"mem_max=/swap_max=", "pids_max=", "cpu_max=", "cpus=", "io_weight=",
};

static int check_controllers(const struct cgroup *cg, const struct spec_limits *l,
			     unsigned need, char *err, size_t errlen)
{
	for (int c = 0; c < CGC__COUNT; c++) {
		if (!(need & (1u << c)) || cg->ctl[c] >= 0 || c == CGC_CPUSET)
			continue;
		snprintf(err, errlen, "%s: the %s controller is not available to pcfs here "
			 "(neither in the unified hierarchy nor as cgroup v1)", opt_of[c],
			 cg_ctl_name(c, true));
		return -EINVAL;
	}
	if (l->swap_max != SPEC_UNSET && !cg->swap_ok) {
		snprintf(err, errlen, "swap_max=: this host has no swap accounting");
		return -EINVAL;
	}
	if (l->swap_max != SPEC_UNSET && l->mem_max == SPEC_UNSET && !cg->ctl_v2[CGC_MEMORY]) {
		snprintf(err, errlen, "swap_max= needs mem_max= here (cgroup v1 bounds memory and "
			 "swap together)");
		return -EINVAL;
	}
	return 0;
}

static int check_cpus(const struct engine *e, const struct spec_limits *l, char *err,
		      size_t errlen)
{
	uint8_t mask[CG_CPUS_MAX / 8];
	if (!l->cpus || cg_parse_cpus(l->cpus, mask) < 0)
		return 0;
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	for (long c = conf > 0 ? conf : e->online_cpus; c < CG_CPUS_MAX; c++) {
		if (mask[c / 8] & (1u << (c % 8))) {
			snprintf(err, errlen, "cpus=%s: this host has CPUs 0-%ld", l->cpus,
				 (conf > 0 ? conf : (long)e->online_cpus) - 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* [cgroup] mem_max, pids_max, cpu_max: for a line that gives none of its
 * own, and can be bounded (a process started directly: not as=thread, not
 * the fork server's method=fork or a built-in's method=clone). */
void cgroup_defaults(struct engine *e, struct task_spec *s)
{
	const struct pcfs_config *c = &e->cfg;
	if (s->kind == TASK_THREAD || s->method == METHOD_FORK ||
	    (s->method == METHOD_CLONE && workload_is_builtin(s->workload)))
		return;
	if (c->cgroup_mem_max && s->lim.mem_max == SPEC_UNSET)
		s->lim.mem_max = (int64_t)c->cgroup_mem_max;
	if (c->cgroup_pids_max && s->lim.pids_max == SPEC_UNSET)
		s->lim.pids_max = c->cgroup_pids_max;
	if (c->cgroup_cpu_max && s->lim.cpu_max == SPEC_UNSET)
		s->lim.cpu_max = (int)c->cgroup_cpu_max;
}

/* Defaults that could never be enforced here stop the daemon at start,
 * never every line later. */
static int check_defaults(struct engine *e, char *err, size_t errlen)
{
	struct spec_limits l;
	spec_limits_init(&l);
	if (e->cfg.cgroup_mem_max)
		l.mem_max = (int64_t)e->cfg.cgroup_mem_max;
	if (e->cfg.cgroup_pids_max)
		l.pids_max = e->cfg.cgroup_pids_max;
	if (e->cfg.cgroup_cpu_max)
		l.cpu_max = (int)e->cfg.cgroup_cpu_max;
	if (!spec_limits_any(&l))
		return 0;
	char why[CG_PATH_MAX + 256];
	int rc = e->cgroup->on ? cg_check_limits(e, &l, cg_ctl_needed(&l), why, sizeof(why))
			       : (snprintf(why, sizeof(why), "no cgroup can be made here (%s)",
					   e->cgroup->why_off), -EINVAL);
	if (rc < 0)
		snprintf(err, errlen, "[cgroup] default limits: %s", why);
	return rc;
}

int cgroup_check(struct engine *e, const struct task_spec *s, char *err, size_t errlen)
{
	const struct spec_limits *l = &s->lim;
	const struct cgroup *cg = e->cgroup;
	if (!spec_limits_any(l))
		return 0;
	if (s->kind == TASK_THREAD) {
		snprintf(err, errlen, "%s: a thread runs in its host process's cgroups; limits are "
			 "for processes (leave out as=thread)", first_key(l));
		return -EINVAL;
	}
	if (s->method == METHOD_FORK ||
	    (s->method == METHOD_CLONE && workload_is_builtin(s->workload))) {
		snprintf(err, errlen, "%s with method=%s: the fork server starts it and cannot put "
			 "it in its cgroup first; leave method= out (a limited built-in starts "
			 "with spawn) or use spawn, vfork or clone", first_key(l),
			 method_name(s->method));
		return -EINVAL;
	}
	unsigned need = cg_ctl_needed(l);
	if (!cg->on && (need & ~(1u << CGC_CPUSET) || l->cgroup)) {
		snprintf(err, errlen, "%s: no cgroup can be made here (%s)", first_key(l),
			 cg->why_off);
		return -EINVAL;
	}
	return cg_check_limits(e, l, need, err, errlen);
}

int cg_check_limits(struct engine *e, const struct spec_limits *l, unsigned need, char *err,
		    size_t errlen)
{
	int rc = check_cpus(e, l, err, errlen);
	return rc ? rc : check_controllers(e->cgroup, l, need, err, errlen);
}

void engine_cgroup_mechanisms(struct engine *e, char *buf, size_t n)
{
	const struct cgroup *cg = e->cgroup;
	size_t len = 0;
	if (!cg->on) {
		snprintf(buf, n, "off (%s); cpus=: sched_setaffinity", cg->why_off);
		return;
	}
	for (int c = 0; c < CGC__COUNT && len < n; c++) {
		int w = snprintf(buf + len, n - len, "%s%s=%s", len ? " " : "", cg_ctl_name(c, true),
				 cg->ctl[c] < 0 ? (c == CGC_CPUSET ? "affinity" : "none")
				 : cg->ctl_v2[c] ? "v2" : "v1");
		len += w > 0 ? (size_t)w : 0;
	}
	if (len < n)
		snprintf(buf + len, n - len, " swap=%s kill=%s freeze=%s", cg->swap_ok ? "yes" : "no",
			 cg->has_kill ? "cgroup.kill" : "signals", cg->has_freeze ? "cgroup.freeze"
			 : "SIGSTOP");
}

const struct room cgroup_room = {
	.name = "cgroup",
	.init = cg_init,
	.fini = cg_fini,
	.task_ended = cg_task_ended,
	.task_forgotten = cg_task_forgotten,
	.task_destroyed = cg_task_destroyed,
	.task_signal = cg_task_signal,
	.task_info = cg_task_info,
	.turn_end = cg_turn_end,
};
