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
#include "cglib.h"

/* The live hosts of p's workers (a thread pool's one host included). */
static void move_workers(struct engine *e, struct pool *p)
{
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		char why[256];
		if (s && s->host && s->host->pid > 0 &&
		    cgroup_group_move(e, p->cg, s->host->pid, why, sizeof(why)) < 0)
			log_add(e, LOG_LVL_WARN, "pool %s: %s", p->name, why);
	}
}

/* The pool's cgroup, made if it has none, in every hierarchy l needs too;
 * its workers moved into what is new. */
static int pool_cg_widen(struct engine *e, struct pool *p, const struct spec_limits *l,
			 char *why, size_t whylen)
{
	bool widened = false;
	int rc = 0;
	if (!p->cg) {
		char name[32];
		snprintf(name, sizeof(name), "p%llu", (unsigned long long)p->id);
		rc = cgroup_group_make(e, NULL, name, &p->lim, &p->cg, why, whylen);
		widened = rc == 0;
	}
	bool more = false;
	if (rc == 0 && l)
		rc = cgroup_group_widen(e, p->cg, l, &more, why, whylen);
	if (widened || more)
		move_workers(e, p);
	return rc;
}

int pool_cg_ensure(struct engine *e, struct pool *p, char *why, size_t whylen)
{
	return pool_cg_widen(e, p, NULL, why, whylen);
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

int pool_limits_check(struct engine *e, const struct pool *p, const struct spec_limits *l,
		      char *err, size_t errlen)
{
	struct spec_limits merged;
	if (spec_limits_copy(&merged, &p->lim) < 0 || merge_limits(&merged, l) < 0) {
		spec_limits_free(&merged);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = cgroup_check_limits(e, &merged, err, errlen);
	spec_limits_free(&merged);
	return rc;
}

int pool_limits_apply(struct engine *e, struct pool *p, const struct spec_limits *l, char *err,
		      size_t errlen)
{
	if (!spec_limits_any(l))
		return 0;
	struct spec_limits merged;
	if (spec_limits_copy(&merged, &p->lim) < 0 || merge_limits(&merged, l) < 0) {
		spec_limits_free(&merged);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* a new controller: its hierarchy's directory first, the workers in it */
	int rc = p->cg ? pool_cg_widen(e, p, l, err, errlen) : 0;
	if (rc == 0 && p->cg)
		rc = cgroup_group_set(e, p->cg, l, err, errlen);
	if (rc == 0) {
		spec_limits_free(&p->lim);
		p->lim = merged;
		rc = pool_cg_ensure(e, p, err, errlen);
	} else {
		spec_limits_free(&merged);
	}
	return rc;
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
	int rc = pool_cg_widen(e, p, &f->lim, why, whylen);
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
	/* back with the pool's workers; a dead one has left already */
	if (s && s->host && s->host->pid > 0 && p->cg)
		cgroup_group_move(e, p->cg, s->host->pid, err, sizeof(err));
	cgroup_group_remove(e, f->cg);
	f->cg = NULL;
}

void pool_limits_show(const struct pool *p, char *buf, size_t n)
{
	cg_limits_format(&p->lim, buf, n);
}
