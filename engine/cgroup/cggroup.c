/* cggroup.c - cgroups of processes that are not one task: a pool's workers
 * (`pN`: every worker of the pool joins it, so the pool's limits bound them
 * together) and one future's run (`pN/fM`: its worker is moved in for the
 * run and back out after it, so the future's limits hold for its run only).
 *
 * A group has a directory in the hierarchies its limits need, and in the
 * unified one (cgroup.kill, cgroup.procs): one in the cpu hierarchy would
 * make its processes one entity to the CPU scheduler, sharing what they
 * would each have had.  A future's group is nested in its pool's, so the
 * pool's group is first widened to every hierarchy the future needs (the
 * pools room then moves its workers into the new directories), and a
 * worker moved back out of a future's group is back where it was.  A v1
 * cpuset directory takes no process before it has CPUs and memory nodes,
 * so a new one gets its parent's unless cpus= says otherwise.
 *
 * The pools room owns every group it makes (cgroup_group_remove frees it).
 * Nothing here takes a lock: a group is reached only through its owner,
 * which holds the engine's `lock`; the room's own state is read-only after
 * init but for `pending`, which is under that lock too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_int.h"

struct cg_group {
	char rel[64];                 /* below our subtree: "p3", "p3/f12" */
	uint32_t in;                  /* hierarchies it has a directory in */
	int64_t mem_max;              /* its mem_max=, for the OOM verdict; SPEC_UNSET */
	uint64_t oom_told;            /* OOM kills in it already told (one per death) */
};

static bool group_dir(const struct cgroup *cg, size_t i, const char *rel, char *dir, size_t n)
{
	int w = snprintf(dir, n, "%s/%s", cg->sub[i], rel);
	return cg->sub[i][0] && w > 0 && (size_t)w < n;
}

int cgroup_check_limits(struct engine *e, const struct spec_limits *l, char *err, size_t errlen)
{
	const struct cgroup *cg = e->cgroup;
	if (!cg->on) {
		snprintf(err, errlen, "no cgroup can be made here (%s)", cg->why_off);
		return -EINVAL;
	}
	if (l->cpus && cg->ctl[CGC_CPUSET] < 0) {
		/* a task sets its own affinity instead; a worker runs other work too */
		snprintf(err, errlen, "cpus=: no cpuset controller here, and a pool's worker "
			 "cannot be pinned for one run by its affinity");
		return -EINVAL;
	}
	return cg_check_limits(e, l, cg_ctl_needed(l), err, errlen);
}

/* What controller c of l writes, in group directory dir of hierarchy i. */
static int apply_limits(const struct cgroup *cg, size_t i, const char *dir, const char *parent,
			const struct spec_limits *l, char *why, size_t whylen)
{
	unsigned need = cg_ctl_needed(l);
	for (int c = 0; c < CGC__COUNT; c++) {
		if (!(need & (1u << c)) || cg->ctl[c] != (int)i)
			continue;
		int rc = cg_apply(dir, parent, cg->ctl_v2[c] && cg->h[i].v2, c, l, why, whylen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void parent_dir(const char *dir, char *parent, size_t n)
{
	snprintf(parent, n, "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
}

static void undo_group(const struct cgroup *cg, const char *rel, uint32_t made)
{
	for (size_t i = 0; i < cg->nh; i++) {
		char dir[CG_PATH_MAX + 80];
		if ((made & (1u << i)) && group_dir(cg, i, rel, dir, sizeof(dir)))
			rmdir(dir);
	}
}

/* One hierarchy's directory of the group, with its limits. */
static int make_in(const struct cgroup *cg, size_t i, const char *rel,
		   const struct spec_limits *l, char *why, size_t whylen)
{
	char dir[CG_PATH_MAX + 80], parent[CG_PATH_MAX + 80];
	int rc = cg_make_dir(dir, group_dir(cg, i, rel, dir, sizeof(dir)), why, whylen);
	if (rc < 0)
		return rc;
	parent_dir(dir, parent, sizeof(parent));
	if (!cg->h[i].v2 && cg_list_has(cg->h[i].ctrl, "cpuset"))
		cg_cpuset_inherit(dir, parent);
	return apply_limits(cg, i, dir, parent, l, why, whylen);
}

int cgroup_group_make(struct engine *e, const struct cg_group *parent, const char *name,
		      const struct spec_limits *l, struct cg_group **out, char *why, size_t whylen)
{
	const struct cgroup *cg = e->cgroup;
	*out = NULL;
	if (!cg->on) {
		snprintf(why, whylen, "no cgroup can be made here (%s)", cg->why_off);
		return -EINVAL;
	}
	struct cg_group *g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(why, whylen, "its cgroup");
		return -ENOMEM;
	}
	int w = parent ? snprintf(g->rel, sizeof(g->rel), "%s/%s", parent->rel, name)
		       : snprintf(g->rel, sizeof(g->rel), "%s", name);
	if (w < 0 || (size_t)w >= sizeof(g->rel)) {
		free(g);
		snprintf(why, whylen, "cgroup name too long");
		return -ENAMETOOLONG;
	}
	g->mem_max = l->mem_max;
	uint32_t want = cg_hierarchies_for(cg, cg_ctl_needed(l));
	if (parent && (want & ~parent->in)) {
		free(g);
		snprintf(why, whylen, "its pool's cgroup lacks a hierarchy it needs");
		return -EINVAL;   /* cgroup_group_widen the parent first */
	}
	for (size_t i = 0; i < cg->nh; i++) {
		if (!(want & (1u << i)))
			continue;
		int rc = make_in(cg, i, g->rel, l, why, whylen);
		g->in |= 1u << i;
		if (rc < 0) {
			undo_group(cg, g->rel, g->in);
			free(g);
			return rc;
		}
	}
	*out = g;
	return 0;
}

int cgroup_group_widen(struct engine *e, struct cg_group *g, const struct spec_limits *l,
		       bool *widened, char *why, size_t whylen)
{
	const struct cgroup *cg = e->cgroup;
	uint32_t more = cg_hierarchies_for(cg, cg_ctl_needed(l)) & ~g->in;
	struct spec_limits none;
	spec_limits_init(&none);
	*widened = more != 0;
	for (size_t i = 0; i < cg->nh; i++) {
		if (!(more & (1u << i)))
			continue;
		int rc = make_in(cg, i, g->rel, &none, why, whylen);
		if (rc < 0)
			return rc;
		g->in |= 1u << i;
	}
	return 0;
}

int cgroup_group_set(struct engine *e, struct cg_group *g, const struct spec_limits *l,
		     char *why, size_t whylen)
{
	const struct cgroup *cg = e->cgroup;
	for (size_t i = 0; i < cg->nh; i++) {
		char dir[CG_PATH_MAX + 80], parent[CG_PATH_MAX + 80];
		if (!(g->in & (1u << i)) || !group_dir(cg, i, g->rel, dir, sizeof(dir)))
			continue;
		parent_dir(dir, parent, sizeof(parent));
		int rc = apply_limits(cg, i, dir, parent, l, why, whylen);
		if (rc < 0)
			return rc;
	}
	if (l->mem_max != SPEC_UNSET)   /* l: the limits a line changes, not all */
		g->mem_max = l->mem_max;
	return 0;
}

int cgroup_group_join(struct engine *e, const struct cg_group *g, struct cg_join *j)
{
	const struct cgroup *cg = e->cgroup;
	memset(j, 0, sizeof(*j));
	for (size_t i = 0; i < cg->nh && j->n < CG_JOIN_MAX; i++) {
		char dir[CG_PATH_MAX + 80];
		if (!(g->in & (1u << i)) || !group_dir(cg, i, g->rel, dir, sizeof(dir)))
			continue;
		int fd = cg_open_procs(dir);
		if (fd < 0) {
			cgroup_join_close(j);
			return fd;
		}
		j->fd[j->n++] = fd;
	}
	return 0;
}

int cgroup_group_move(struct engine *e, const struct cg_group *g, pid_t pid, char *why,
		      size_t whylen)
{
	const struct cgroup *cg = e->cgroup;
	char v[24];
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (size_t i = 0; i < cg->nh; i++) {
		char dir[CG_PATH_MAX + 80];
		if (!(g->in & (1u << i)) || !group_dir(cg, i, g->rel, dir, sizeof(dir)))
			continue;
		int rc = cg_write(dir, "cgroup.procs", v);
		if (rc < 0) {
			snprintf(why, whylen, "moving its worker into %s: %s", dir, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

bool cgroup_group_oom(struct engine *e, struct cg_group *g, const char *whose, char *msg,
		      size_t n)
{
	const struct cgroup *cg = e->cgroup;
	int m = cg->ctl[CGC_MEMORY];
	char dir[CG_PATH_MAX + 80];
	if (m < 0 || !(g->in & (1u << m)) || !group_dir(cg, (size_t)m, g->rel, dir, sizeof(dir)))
		return false;
	/* one kill told per death asked about: the OOM killer may take two
	 * workers of a pool at once, and each is told */
	uint64_t kills = cg_oom_kills(dir, cg->ctl_v2[CGC_MEMORY]);
	if (kills <= g->oom_told)
		return false;
	g->oom_told++;
	cg_oom_message(g->mem_max, whose, msg, n);
	return true;
}

void cgroup_group_remove(struct engine *e, struct cg_group *g)
{
	struct cgroup *cg = e->cgroup;
	if (!g)
		return;
	for (size_t i = cg->nh; i-- > 0;) {
		char dir[CG_PATH_MAX + 80];
		if (!(g->in & (1u << i)) || !group_dir(cg, i, g->rel, dir, sizeof(dir)))
			continue;
		cg_kill_all(cg, dir, cg->h[i].v2 && cg->has_kill);
		cg_remove(cg, dir);
	}
	free(g);
}

void cgroup_group_figures(struct engine *e, const struct cg_group *g, struct cg_figures *out)
{
	const struct cgroup *cg = e->cgroup;
	char u[CG_PATH_MAX + 80] = "", m[CG_PATH_MAX + 80] = "";
	snprintf(out->name, sizeof(out->name), "%s", g->rel);
	out->procs = -1;
	int ui = cg->unified >= 0 ? cg->unified : __builtin_ffs((int)g->in) - 1;
	if (ui >= 0 && group_dir(cg, (size_t)ui, g->rel, u, sizeof(u))) {
		long n = cg_procs(u, NULL, 0);
		out->procs = n < 0 ? 0 : n;
	}
	int mi = cg->ctl[CGC_MEMORY];
	if (mi < 0 || !(g->in & (1u << mi)) || !group_dir(cg, (size_t)mi, g->rel, m, sizeof(m)))
		m[0] = '\0';
	if (cg->unified < 0)
		u[0] = '\0';   /* cpu.stat is the unified tree's */
	cg_read_acct(cg, u, m, &out->cpu_us, &out->mem_peak);
}
