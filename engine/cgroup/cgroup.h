/* cgroup.h - the cgroup room: resource control of tasks (mem_max=,
 * pids_max=, cpu_max=, cpus=, swap_max=, io_weight=, cgroup=1).
 *
 * At init it finds the cgroups the daemon runs in (one per mounted
 * hierarchy: v2's unified tree and v1's memory, pids, cpu, cpuset, blkio)
 * and makes its subtree `pcfs.PID` under each; a task that asks for a limit
 * gets a cgroup `tID` in the subtree of every hierarchy it needs (and of the
 * unified one, for cgroup.kill and cgroup.freeze), joins them between fork
 * and exec (the exec room's clone child writes "0" to each cgroup.procs), so
 * the limits hold from its first instruction.  It tells an OOM kill at the
 * task's end, signals and freezes the whole cgroup for ctl, and removes the
 * cgroup when the task is forgotten.  exec calls it; it calls no room.
 */
#ifndef PCFS_CGROUP_H
#define PCFS_CGROUP_H

#include "core/core.h"

extern const struct room cgroup_room;

#define CG_JOIN_MAX 8   /* hierarchies a task joins at most */

/* What a task's child does before it execs: write "0" to each fd (the
 * cgroup.procs of its cgroups, O_WRONLY|O_CLOEXEC, owned by this struct
 * until cgroup_join_close), then set its affinity when no cpuset enforces
 * cpus= (sched_setaffinity, so a mask the task may widen itself). */
struct cg_join {
	int fd[CG_JOIN_MAX];
	unsigned n;
	bool affinity;
	unsigned char cpus[128];   /* cglib's mask: CG_CPUS_MAX bits */
};

/* [cgroup]'s default limits, into a line that gives none of its own and
 * can be bounded (called before cgroup_check). */
void cgroup_defaults(struct engine *e, struct task_spec *s);
/* May the line's limits be enforced here?  0, or -EINVAL with the reason
 * (no cgroup can be made, a controller is missing, the start method cannot
 * move its child).  No lock needed. */
int cgroup_check(struct engine *e, const struct task_spec *s, char *err, size_t errlen);

/* Make task t's cgroups with the line's limits and open what its child
 * joins.  No lock held (it makes directories; t is not published yet).  0,
 * or -errno with the step that failed in why; nothing is left made then. */
int cgroup_task_make(struct engine *e, struct task *t, const struct spec_limits *l,
		     struct cg_join *j, char *why, size_t whylen);
void cgroup_join_close(struct cg_join *j);

/* ---- groups: cgroups of processes other than one task's (cggroup.c) ----
 * A pool's workers' (`pN`) and one future's run (`pN/fM`), in the
 * hierarchies their limits need and the unified one.  Owned by their maker (the pools room),
 * freed by cgroup_group_remove; every call with the engine's `lock` held. */
struct cg_group;

/* May limits l be enforced here (for a group)?  0, or -EINVAL with why. */
int cgroup_check_limits(struct engine *e, const struct spec_limits *l, char *err, size_t errlen);
/* Make group `name` (below parent, or at the top of the subtree) with l's
 * limits.  0, or -errno with the step in why; nothing is left made then. */
int cgroup_group_make(struct engine *e, const struct cg_group *parent, const char *name,
		      const struct spec_limits *l, struct cg_group **out, char *why, size_t whylen);
/* Give g a directory (with no limit) in each hierarchy l needs that it
 * lacks; *widened if it got one (its processes are not moved: the caller
 * moves them, cgroup_group_move). */
int cgroup_group_widen(struct engine *e, struct cg_group *g, const struct spec_limits *l,
		       bool *widened, char *why, size_t whylen);
/* Write l's limits (those it sets) to the live group (widened first). */
int cgroup_group_set(struct engine *e, struct cg_group *g, const struct spec_limits *l,
		     char *why, size_t whylen);
/* Open the group's cgroup.procs files for a child to join (spawn_host). */
int cgroup_group_join(struct engine *e, const struct cg_group *g, struct cg_join *j);
/* Move process pid (all its threads) into the group. */
int cgroup_group_move(struct engine *e, const struct cg_group *g, pid_t pid, char *why,
		      size_t whylen);
/* Has the OOM killer killed in the group since last asked?  True with the
 * verdict in msg ("killed by the OOM killer (pool mem_max 256M)": whose is
 * "pool" or ""). */
bool cgroup_group_oom(struct engine *e, struct cg_group *g, const char *whose, char *msg,
		      size_t n);
/* Kill what is still in the group, remove it (later if it is busy), free g. */
void cgroup_group_remove(struct engine *e, struct cg_group *g);
/* What a status file shows of a group (-1: the host does not count it). */
void cgroup_group_figures(struct engine *e, const struct cg_group *g, struct cg_figures *out);

#endif
