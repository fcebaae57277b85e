/* cgroup_int.h - shared by the cgroup room's files only: cgroup.c (the row,
 * the subtree, what a line may ask) and cgtask.c (a task's cgroups). */
#ifndef PCFS_CGROUP_INT_H
#define PCFS_CGROUP_INT_H

#include "cgroup.h"
#include "cglib.h"

/* The room's state.  Everything is set once by init (before any thread) and
 * read-only afterwards, but `pending`, which is under the engine's `lock`. */
struct cgroup {
	bool on;                         /* a subtree was made in some hierarchy */
	char why_off[CG_PATH_MAX + 128];             /* why not (for refusals), when !on */
	struct cg_hier h[CG_HIER_MAX];   /* the hierarchies we are in */
	size_t nh;
	char sub[CG_HIER_MAX][CG_PATH_MAX]; /* our subtree pcfs.PID in h[i], "" if not made */
	int ctl[CGC__COUNT];             /* the hierarchy (index) giving controller c, -1 */
	bool ctl_v2[CGC__COUNT];         /* ... in the unified tree */
	int unified;                     /* the unified hierarchy with our subtree, -1 */
	bool has_kill, has_freeze;       /* cgroup.kill, cgroup.freeze there */
	bool swap_ok;                    /* swap_max= can be enforced */
	/* cgroups of forgotten tasks whose processes had not all died yet:
	 * rmdir'd again at the end of each turn (malloc'd paths) */
	char **pending;
	size_t npending, cap_pending;
};

/* A task's cgroups: the hierarchies it has a directory `tID` in. */
struct task_cg {
	uint32_t in;                     /* bit i: a directory under sub[i] */
	int64_t mem_max;                 /* for the OOM verdict's message, and mem */
	int cpu_max;                     /* cpu_max=, for sched (SPEC_UNSET: none) */
	char cpus[64];                   /* cpus=, for sched ("" if none) */
	bool frozen;
};

/* dir = sub[i]/tID; false if it does not fit */
bool cg_task_dir(const struct cgroup *cg, size_t i, uint64_t id, char *dir, size_t n);
/* SIGKILL every process in dir (cgroup.kill where there is one). */
void cg_kill_all(const struct cgroup *cg, const char *dir, bool v2);
/* rmdir dir, or keep it pending (lock held or before the loop runs). */
void cg_remove(struct cgroup *cg, const char *dir);
void cg_retry_pending(struct cgroup *cg);
/* A new v1 cpuset dir gets its parent's CPUs and memory nodes. */
void cg_cpuset_inherit(const char *dir, const char *parent);
/* cpus= within the host's CPUs, the controllers `need` there (1 << CGC_*). */
int cg_check_limits(struct engine *e, const struct spec_limits *l, unsigned need, char *err,
		    size_t errlen);
/* The hierarchies controllers `need` (1 << CGC_*) are in, and the unified. */
uint32_t cg_hierarchies_for(const struct cgroup *cg, unsigned need);
/* A cgroup's CPU time (udir: its unified directory, "" if none) and peak
 * memory (mdir: its memory controller's, "" if none); -1 where not counted. */
void cg_read_acct(const struct cgroup *cg, const char *udir, const char *mdir, int64_t *cpu_us,
		  int64_t *mem_peak);
/* The OOM verdict: "killed by the OOM killer (WHOSE mem_max SIZE)". */
void cg_oom_message(int64_t mem_max, const char *whose, char *buf, size_t n);
/* mkdir dir (one that exists will do); fits: its path was not cut short.
 * 0, or -errno with the reason in why. */
int cg_make_dir(const char *dir, bool fits, char *why, size_t whylen);
/* dir/cgroup.procs, O_WRONLY|O_CLOEXEC: the fd, or -errno. */
int cg_open_procs(const char *dir);

/* cgtask.c: the row's task hooks */
void cg_task_ended(struct engine *e, struct task *t);
void cg_task_forgotten(struct engine *e, struct task *t);
void cg_task_destroyed(struct engine *e, struct task *t);
int cg_task_signal(struct engine *e, struct task *t, int sig);
void cg_task_info(struct engine *e, const struct task *t, struct task_info *ti);

#endif
