/* slurm_exec.c - the Slurm executor: a pool's futures as Slurm jobs.  The
 * poller (slurm.c, its own thread) submits, watches and cancels them; here is
 * its side of the engine lock, and what the pool sees.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "pools_int.h"

static struct future *slurm_future(struct engine *e, uint64_t pool, uint64_t fut,
				   struct pool **pp)
{
	struct pool *p = pool_by_id(e, pool);
	*pp = p;
	return p && p->ex == &slurm_executor ? fut_get(p, fut) : NULL;
}

/* A future's environment for its job: its writer's, less what env=-K
 * removes (none with env=-), and its env=, packed K=V\0...; PCFS_* the job
 * script sets.  NULL with *len 0 when empty or out of memory. */
static char *job_env(const struct future *f, size_t *len)
{
	char *edits[SPEC_ENV_MAX], **env, why[256];
	size_t nedits = 0;
	*len = 0;
	for (const char *kv = f->env; kv && kv < f->env + f->envlen && nedits < SPEC_ENV_MAX;
	     kv += strlen(kv) + 1)
		edits[nedits++] = (char *)kv;
	if (origin_env_edit(f->origin, f->env_clean, edits, nedits, &env, why, sizeof(why)) < 0)
		return NULL;
	struct strbuf b = STRBUF_INIT;
	for (char **kv = env; *kv; kv++)
		sb_add(&b, *kv, strlen(*kv) + 1);
	free(env);
	if (sb_error(&b) || !b.len) {
		sb_free(&b);
		return NULL;
	}
	*len = b.len;
	return sb_steal(&b);
}

size_t pool_slurm_take(struct engine *e, struct slurm_submit **out)
{
	struct slurm_submit *v = NULL;
	size_t n = 0, cap = 0;
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (p->ex != &slurm_executor || p->paused || p->held || p->halted ||
		    p->state == POOL_CLOSED)
			continue;
		while (p->queued && p->sl_inflight < p->target) {
			if (n == cap) {
				size_t c = cap ? cap * 2 : 16;
				struct slurm_submit *nv = realloc(v, c * sizeof(*nv));
				if (!nv)
					goto out;
				v = nv;
				cap = c;
			}
			struct future *f = fut_queue_first(p);
			char *line = strdup(f->line);
			if (!line)
				goto out;
			fut_dequeue(p);
			f->sl_submitting = true;
			f->attempts++;
			p->sl_inflight++;
			v[n] = (struct slurm_submit){ .pool = p->id, .fut = f->id, .line = line,
						      .opts = f->sopt };
			v[n].cwd = f->cwd ? strdup(f->cwd) : NULL;
			v[n].env = job_env(f, &v[n].envlen);
			/* sbatch runs as the pool's owner, as its local workers would
			 * (never as the daemon for someone else: a drop that cannot
			 * be done fails the submission) */
			if (p->cred && access_cred_plan(e->self.uid, p->cred) != CRED_KEEP) {
				v[n].drop = true;
				v[n].cred = *p->cred;
			}
			memcpy(v[n].pool_name, p->name, sizeof(p->name));
			n++;
		}
	}
out:   /* out of memory: what is not taken stays queued for the next round */
	*out = v;
	return n;
}

bool pool_slurm_submitted(struct engine *e, uint64_t pool, uint64_t fut, uint64_t job)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (!f)
		return false;
	f->sl_submitting = false;
	f->job = job;
	journal_job(e, p, f);
	if (fut_final(f)) {
		f->sl_signal = -1;        /* cancelled while sbatch ran */
		return false;
	}
	free(f->error);           /* "waiting for Slurm: ..." of an earlier try */
	f->error = NULL;
	notify_future(e, p, f);
	return true;
}

void pool_slurm_unsubmitted(struct engine *e, uint64_t pool, uint64_t fut, bool transient,
			    const char *why)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (!f)
		return;
	f->sl_submitting = false;
	p->sl_inflight--;
	if (fut_final(f)) {
		maybe_close(e, p);
		return;
	}
	if (transient) {
		/* the controller is away: first in line again, tried next round */
		f->attempts--;
		fut_set_error(f, "waiting for Slurm: %s", why);
		fut_enqueue(p, f, true);
	} else {
		log_add(e, LOG_LVL_ERROR, "pool %s: future %llu: sbatch refused the job: %s",
			p->name, (unsigned long long)f->id, why);
		char reason[512];
		snprintf(reason, sizeof(reason), "sbatch refused the job: %s", why);
		fut_fail_unrun(e, p, f, reason);
		maybe_close(e, p);
	}
	notify_future(e, p, f);
}

size_t pool_slurm_watch(struct engine *e, struct slurm_watch **out)
{
	size_t n = 0, cap = 0;
	struct slurm_watch *v = NULL;
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (p->ex != &slurm_executor || !p->sl_inflight || p->held)
			continue;
		for (size_t i = 0; i < p->nfut; i++) {
			struct future *f = p->fut[i];
			if (!f->job || f->sl_gone)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				struct slurm_watch *nv = realloc(v, c * sizeof(*nv));
				if (!nv)
					goto out;   /* the rest are watched next round */
				v = nv;
				cap = c;
			}
			v[n] = (struct slurm_watch){ .pool = p->id, .fut = f->id, .job = f->job,
						     .signal = f->sl_signal,
						     .running = f->state == FUT_RUNNING };
			memcpy(v[n++].pool_name, p->name, sizeof(p->name));
		}
	}
out:
	*out = v;
	return n;
}

void pool_slurm_signalled(struct engine *e, uint64_t pool, uint64_t fut, int sig)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (f && f->sl_signal == sig)
		f->sl_signal = 0;
}

/* The error of a job that ended badly: Slurm's state, its reason, the code. */
static void slurm_failure(struct future *f, const struct slurm_job *j, int code, char *buf,
			  size_t len)
{
	int n = snprintf(buf, len, "slurm job %llu %s", (unsigned long long)j->id, j->state);
	if (n < 0 || (size_t)n >= len)
		return;
	if (j->reason[0] && strcmp(j->reason, "None"))
		n += snprintf(buf + n, len - (size_t)n, " (%s)", j->reason);
	const char *why = slurm_state_reason(j->state);
	if (*why && strcmp(j->state, "FAILED") && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ": %s", why);
	if ((size_t)n >= len)
		return;
	if (!j->have_exit)
		snprintf(buf + n, len - (size_t)n, ", exit code unknown");
	else if (code > 0)
		snprintf(buf + n, len - (size_t)n, ", exit status %d", code);
	else if (code < 0)
		snprintf(buf + n, len - (size_t)n, ", killed by signal %d%s", -code,
			 f->halted ? " (halt)" : f->stopped ? " (ctl)" : "");
}

static void slurm_oom(struct future *f, const struct slurm_job *j, char *buf, size_t len)
{
	f->oom_killed = true;
	if (f->sopt.mem_mib)
		snprintf(buf, len, "killed by the OOM killer (slurm job %llu, mem=%lluM)",
			 (unsigned long long)j->id, (unsigned long long)f->sopt.mem_mib);
	else
		snprintf(buf, len, "killed by the OOM killer (slurm job %llu)",
			 (unsigned long long)j->id);
}

void pool_slurm_update(struct engine *e, uint64_t pool, uint64_t fut, const struct slurm_job *j,
		       const char *out, size_t outlen, const char *err, size_t errlen)
{
	struct pool *p;
	struct future *f = slurm_future(e, pool, fut, &p);
	if (!f || f->job != j->id || f->sl_gone)
		return;
	enum slurm_fate fate = slurm_state_fate(j->state);
	if (fate == SF_RUNNING && f->state == FUT_PENDING) {
		f->state = FUT_RUNNING;
		f->started = mono_now();
		p->running++;
		notice_of(e, p, f, false);
		notify_future(e, p, f);
		engine_notify_locked(e, OBJ_POOL, p->id);
		return;
	}
	if (!slurm_fate_final(fate))
		return;
	f->sl_gone = true;
	p->sl_inflight--;
	if (f->state == FUT_RUNNING)
		p->running--;
	if (fut_final(f)) {        /* cancelled by us earlier: Slurm agrees now */
		maybe_close(e, p);
		slurm_kick(e);
		return;
	}
	if (!f->started.tv_sec)
		f->started = mono_now();   /* it ran between two polls */
	out_free(e, &f->out[1]);
	out_free(e, &f->out[2]);
	out_append(&f->out[1], out, outlen, e->cfg.output_max);
	out_append(&f->out[2], err, errlen, e->cfg.output_max);
	int code = j->have_exit ? j->exitcode : fate == SF_DONE ? 0 : 1;
	char why[256];
	f->oom_killed = false;   /* this run's verdict (slurm_oom) */
	if (fate == SF_CANCELLED && !f->stopped) {
		/* not by this pool: an admin's (or the user's own) scancel */
		f->state = FUT_CANCELLED;
		fut_set_error(f, "slurm job %llu was cancelled in Slurm (scancel)",
			  (unsigned long long)j->id);
		record_final(e, p, f);
	} else if (f->stopped) {
		/* ctl term/kill: it fails with -N and is never retried (a job
		 * Slurm turned into a cancel reports 0:15 whatever the signal) */
		if (code >= 0 || fate == SF_CANCELLED)
			code = -f->stop_sig;
		slurm_failure(f, j, code, why, sizeof(why));
		future_ended(e, p, f, code, why);
	} else if (fate == SF_DONE && code == 0) {
		future_ended(e, p, f, 0, NULL);
	} else if (!strcmp(j->state, "OUT_OF_MEMORY")) {
		/* Slurm's cgroup took it over its mem=: told as the kernel's
		 * OOM kill of a task is (Slurm says 0:125 for it) */
		slurm_oom(f, j, why, sizeof(why));
		future_ended(e, p, f, -SIGKILL, why);
	} else {
		slurm_failure(f, j, code, why, sizeof(why));
		future_ended(e, p, f, code, why);
	}
	if (f->state == FUT_PENDING) {   /* retried: a new job next round */
		f->job = 0;
		f->sl_gone = false;
		f->started = (struct timespec){ 0 };
	}
	maybe_close(e, p);
	pool_dispatch(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
}


/* ---- the Slurm executor ----------------------------------------------------------- */

static void slurm_dispatch(struct engine *e, struct pool *p)
{
	if (p->queued)
		slurm_kick(e);   /* the poller submits, outside the lock */
}

/* No workers of its own: workers= jobs may be in flight. */
static void slurm_load(const struct pool *p, unsigned *ready, unsigned *busy)
{
	*ready = p->target;
	*busy = (unsigned)p->sl_inflight;
}

static int slurm_signal(struct engine *e, struct pool *p, struct future *f, int sig)
{
	f->sl_signal = sig;       /* scancel --signal, by the poller */
	return slurm_kick(e);
}

/* A job waiting in Slurm is scancelled; one still being submitted is
 * scancelled once sbatch answers (pool_slurm_submitted). */
static void slurm_cancelled(struct engine *e, struct pool *p, struct future *f)
{
	if (f->job && !f->sl_gone) {
		f->sl_signal = -1;
		slurm_kick(e);
	}
}

/* The job outlived the daemon: watch it again. */
static bool slurm_readopt(struct engine *e, struct pool *p, struct future *f, uint64_t job)
{
	f->job = job;
	p->sl_inflight++;
	return true;
}

/* Jobs in flight when the daemon stopped are watched again. */
static void slurm_resume(struct engine *e, struct pool *p)
{
	if (p->sl_inflight)
		slurm_kick(e);
}

const struct executor slurm_executor = {
	.name = "slurm",
	.job_options = true,
	.dispatch = slurm_dispatch,
	.load = slurm_load,
	.signal = slurm_signal,
	.cancelled = slurm_cancelled,
	.readopt = slurm_readopt,
	.resume = slurm_resume,
};
