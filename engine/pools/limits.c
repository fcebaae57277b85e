/* limits.c - resource control of a pool and of its futures (the local
 * executor; a Slurm pool's jobs take Slurm's own mem= and cpus=).
 *
 * A pool's limits (ctl mem_max=, pids_max=, cpu_max=, cpus=, swap_max=,
 * io_weight=) bound its workers together: they share the cgroup `pN`, which
 * every worker joins before it execs (workers.c's host_new) and which the
 * pool makes at its first limit, moving the workers it has then into it
 * (and into each hierarchy a later limit, or a future's, adds to it).
 *
 * A future's limits bound its run.  It is handed only to an idle process
 * worker, and alone (handing.c asks fut_alone); just before its RUN goes
 * out the worker moves into the future's cgroup `pN/fM`, so the limits hold
 * from the run's first instruction, and at the run's end it moves back into
 * `pN`, and what the run left in `pM/fM` (a daemonized grandchild) is
 * killed with the cgroup.  A future needs the pool's cgroup for that, so
 * its first limited future makes one (with no limit) if the pool has none.
 *
 * An OOM kill in the future's cgroup, or in the pool's, ends the run as the
 * task's would: `killed by the OOM killer (mem_max 128M)`, oom_killed: 1.
 * Everything here runs with `lock` held.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pools_int.h"

/* The live hosts of p's workers, each once (a thread pool's slots share
 * one), into the pool's cgroup. */
static void move_workers(struct engine *e, struct pool *p)
{
	const struct host *moved = NULL;
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		char why[256];
		if (!s || !s->host || s->host == moved || s->host->pid <= 0)
			continue;
		moved = s->host;
		if (cgroup_group_move(e, p->cg, s->host->pid, why, sizeof(why)) < 0)
			log_add(e, LOG_LVL_WARN, "pool %s: %s", p->name, why);
	}
}

/* The pool's cgroup, made with limits `with` if it has none; its workers
 * moved in. */
static int pool_cg_make(struct engine *e, struct pool *p, const struct spec_limits *with,
			char *why, size_t whylen)
{
	if (p->cg)
		return 0;
	char name[32];
	snprintf(name, sizeof(name), "p%llu", (unsigned long long)p->id);
	int rc = cgroup_group_make(e, NULL, name, with, &p->cg, why, whylen);
	if (rc == 0)
		move_workers(e, p);
	return rc;
}

/* The pool's cgroup in every hierarchy l needs too; its workers moved into
 * what is new. */
static int pool_cg_widen(struct engine *e, struct pool *p, const struct spec_limits *l,
			 char *why, size_t whylen)
{
	bool more = false;
	int rc = cgroup_group_widen(e, p->cg, l, &more, why, whylen);
	if (more)
		move_workers(e, p);
	return rc;
}

int pool_cg_ensure(struct engine *e, struct pool *p, char *why, size_t whylen)
{
	return pool_cg_make(e, p, &p->lim, why, whylen);
}

/* Each limit l sets replaces the pool's. */
static int merge_limits(struct spec_limits *into, const struct spec_limits *l)
{
	if (l->mem_max != SPEC_UNSET)
		into->mem_max = l->mem_max;
	if (l->swap_max != SPEC_UNSET)
		into->swap_max = l->swap_max;
	if (l->pids_max != SPEC_UNSET)
		into->pids_max = l->pids_max;
	if (l->cpu_max != SPEC_UNSET)
		into->cpu_max = l->cpu_max;
	if (l->io_weight != SPEC_UNSET)
		into->io_weight = l->io_weight;
	if (l->cpus) {
		char *c = strdup(l->cpus);
		if (!c)
			return -ENOMEM;
		free(into->cpus);
		into->cpus = c;
	}
	return 0;
}

/* The pool's limits with l's over them, into *out (owned by the caller). */
static int merged_limits(const struct pool *p, const struct spec_limits *l,
			 struct spec_limits *out, char *err, size_t errlen)
{
	if (spec_limits_copy(out, &p->lim) == 0 && merge_limits(out, l) == 0)
		return 0;
	spec_limits_free(out);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int pool_limits_check(struct engine *e, const struct pool *p, const struct spec_limits *l,
		      char *err, size_t errlen)
{
	struct spec_limits merged;
	int rc = merged_limits(p, l, &merged, err, errlen);
	if (rc == 0)
		rc = cgroup_check_limits(e, &merged, err, errlen);
	spec_limits_free(&merged);
	return rc;
}

int pool_limits_apply(struct engine *e, struct pool *p, const struct spec_limits *l, char *err,
		      size_t errlen)
{
	if (!spec_limits_any(l))
		return 0;
	struct spec_limits merged;
	int rc = merged_limits(p, l, &merged, err, errlen);
	if (rc < 0)
		return rc;
	/* enforced first, then recorded: a pool never says a limit it lacks
	 * (a new controller's directory is made, the workers moved into it) */
	if (!p->cg) {
		rc = pool_cg_make(e, p, &merged, err, errlen);
	} else {
		rc = pool_cg_widen(e, p, l, err, errlen);
		if (rc == 0)
			rc = cgroup_group_set(e, p->cg, l, err, errlen);
	}
	if (rc < 0) {
		spec_limits_free(&merged);
		return rc;
	}
	spec_limits_free(&p->lim);
	p->lim = merged;
	return 0;
}

bool fut_limited(const struct future *f)
{
	return f && spec_limits_any(&f->lim);
}

bool slot_alone(const struct pslot *s)
{
	return fut_limited(s->running) || fut_limited(s->qhead);
}

int fut_cg_enter(struct engine *e, struct pool *p, struct pslot *s, struct future *f, char *why,
		 size_t whylen)
{
	int rc = pool_cg_ensure(e, p, why, whylen);
	if (rc == 0)
		rc = pool_cg_widen(e, p, &f->lim, why, whylen);
	if (rc == 0 && !f->cg) {
		char name[32];
		snprintf(name, sizeof(name), "f%llu", (unsigned long long)f->id);
		rc = cgroup_group_make(e, p->cg, name, &f->lim, &f->cg, why, whylen);
	}
	if (rc == 0)
		rc = cgroup_group_move(e, f->cg, s->host->pid, why, whylen);
	return rc;
}

/* The OOM verdict of a run that ended by SIGKILL: its own cgroup's kills,
 * else the pool's.  why is replaced by the verdict (in buf). */
static void oom_verdict(struct engine *e, struct pool *p, struct future *f, int code,
			const char **why, char *buf, size_t n)
{
	f->oom_killed = false;
	if (code != -SIGKILL || f->stopped || f->timed_out || f->halted)
		return;   /* not a death the OOM killer may have dealt */
	char scratch[128];
	if (f->cg && cgroup_group_oom(e, f->cg, "", buf, n)) {
		/* v2 counts it in the pool's cgroup too: not the pool's doing */
		if (p->cg)
			cgroup_group_oom(e, p->cg, "pool", scratch, sizeof(scratch));
	} else if (!p->cg || !cgroup_group_oom(e, p->cg, "pool", buf, n)) {
		return;
	}
	f->oom_killed = true;
	*why = buf;
}

void fut_run_over(struct engine *e, struct pool *p, struct pslot *s, struct future *f, int code,
		  const char **why, char *buf, size_t n)
{
	oom_verdict(e, p, f, code, why, buf, n);
	fut_cg_leave(e, p, s, f);
}

void fut_cg_leave(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	if (!f->cg)
		return;
	char err[256];
	/* back with the pool's workers (a dead one has left already); one that
	 * could not be moved back goes with what the run left, and the pool
	 * starts another, rather than run on under this future's limits */
	if (s && s->host && s->host->pid > 0 && p->cg)
		cgroup_group_move(e, p->cg, s->host->pid, err, sizeof(err));
	cgroup_group_remove(e, f->cg);
	f->cg = NULL;
}
