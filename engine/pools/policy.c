/* policy.c - what a pool does about its futures as a batch: halt= (GNU
 * parallel's --halt), retry (parallel's --retry-failed, pueue's restart),
 * and a pending future's priority= (pueue's priority).
 *
 * halt=WHEN,WHAT=N|P% counts the futures that end done or failed from the
 * moment it is set (or from the last retry): WHAT=N when N of them failed
 * (fail=) or succeeded (success=); WHAT=P% when that many make P% of the
 * futures counted over (those the pool held unfinished then, and those
 * submitted since).  Met, the pool halts: what waits is cancelled (it would
 * never start), submits are refused, and with WHEN=now what runs is
 * stopped, TERM then KILL after [tasks] kill_grace, as a timeout does; with
 * WHEN=soon it runs to its end.  A halt= (halt=never too) or a retry runs
 * the pool again.
 *
 * All with `lock` held.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "pools_int.h"

#define HALT_N_MAX 1000000

/* ---- halt= ------------------------------------------------------------------------ */

static int halt_bad(const char *v, char *err, size_t errlen)
{
	snprintf(err, errlen, "halt= is never, or now|soon,fail|success=N|P%% (N 1..%d, "
		 "P 1..100), like halt=now,fail=3 or halt=soon,fail=10%%; not '%.40s'",
		 HALT_N_MAX, v);
	return -EINVAL;
}

int halt_parse(const char *v, struct halt_rule *out, char *err, size_t errlen)
{
	struct halt_rule r = { 0 };
	if (!strcmp(v, "never")) {
		*out = r;
		return 0;
	}
	const char *what;
	if (!strncmp(v, "now,", 4))
		r.when = HALT_NOW, what = v + 4;
	else if (!strncmp(v, "soon,", 5))
		r.when = HALT_SOON, what = v + 5;
	else
		return halt_bad(v, err, errlen);
	if (!strncmp(what, "fail=", 5))
		what += 5;
	else if (!strncmp(what, "success=", 8))
		r.on_success = true, what += 8;
	else
		return halt_bad(v, err, errlen);
	size_t n = strlen(what);
	r.percent = n > 0 && what[n - 1] == '%';
	char digits[16];
	uint64_t num;
	if (n - r.percent >= sizeof(digits))
		return halt_bad(v, err, errlen);
	memcpy(digits, what, n - r.percent);
	digits[n - r.percent] = '\0';
	if (parse_uint(digits, r.percent ? 100 : HALT_N_MAX, &num) < 0 || !num)
		return halt_bad(v, err, errlen);
	r.n = (unsigned)num;
	*out = r;
	return 0;
}

void halt_format(const struct halt_rule *r, char *buf, size_t len)
{
	if (r->when == HALT_NEVER)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s,%s=%u%s", r->when == HALT_NOW ? "now" : "soon",
			 r->on_success ? "success" : "fail", r->n, r->percent ? "%" : "");
}

/* Futures in a final state now. */
static uint64_t ended_now(const struct pool *p)
{
	return p->ndone_ok + p->nfailed + p->ncancelled + p->nskipped;
}

/* The count starts again; a halted pool takes submits and runs again. */
static void halt_rearm(struct engine *e, struct pool *p)
{
	p->halt_ok = p->halt_failed = 0;
	p->halt_base = ended_now(p);
	if (!p->halted)
		return;
	p->halted = false;
	free(p->halt_why);
	p->halt_why = NULL;
	log_add(e, LOG_LVL_INFO, "pool %s: runs again after its halt", p->name);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

void halt_set(struct engine *e, struct pool *p, const struct halt_rule *r)
{
	p->halt = *r;
	halt_rearm(e, p);
}

/* How many futures the rule needs: N, or P% of those counted over. */
static uint64_t halt_needed(const struct pool *p)
{
	if (!p->halt.percent)
		return p->halt.n;
	uint64_t over = p->nfut - p->halt_base;
	uint64_t need = (over * p->halt.n + 99) / 100;
	return need ? need : 1;
}

void halt_count(struct engine *e, struct pool *p, struct future *f)
{
	if (p->halt.when == HALT_NEVER || p->halted || p->held)
		return;   /* (a restore replays ends that were counted before) */
	if (f->state == FUT_DONE)
		p->halt_ok++;
	else if (f->state == FUT_FAILED)
		p->halt_failed++;
	else
		return;
	uint64_t got = p->halt.on_success ? p->halt_ok : p->halt_failed;
	uint64_t need = halt_needed(p);
	if (got < need || (f->state == FUT_DONE) != p->halt.on_success)
		return;
	char rule[48], why[160];
	halt_format(&p->halt, rule, sizeof(rule));
	if (p->halt.percent)
		snprintf(why, sizeof(why), "%s reached: %llu of %llu futures %s (future %llu %s)",
			 rule, (unsigned long long)got,
			 (unsigned long long)(p->nfut - p->halt_base),
			 p->halt.on_success ? "succeeded" : "failed", (unsigned long long)f->id,
			 future_state_name(f->state));
	else
		snprintf(why, sizeof(why), "%s reached (future %llu %s)", rule,
			 (unsigned long long)f->id, future_state_name(f->state));
	pool_halt(e, p, why);
}

/* Pending futures of a Slurm pool that wait in Slurm (submitted, not
 * running) are cancelled there too. */
static void cancel_submitted(struct engine *e, struct pool *p, const char *why)
{
	for (size_t i = 0; i < p->nfut; i++) {
		struct future *f = p->fut[i];
		if (f->state != FUT_PENDING || f->in_queue || f->at_host)
			continue;
		cancel_pending(e, p, f, why);
		if (p->ex->cancelled)
			p->ex->cancelled(e, p, f);
	}
}

/* TERM now, KILL after kill_grace unless it has ended: a timeout's timer
 * (pool_timer_fired), at its second stage. */
static void stop_running(struct engine *e, struct pool *p, struct future *f)
{
	f->stopped = f->halted = true;
	f->stop_sig = SIGTERM;
	if (p->ex->signal(e, p, f, SIGTERM) < 0)
		return;
	if (f->timer_fd < 0) {
		f->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (f->timer_fd < 0)
			return;
		engine_watch(e, f->timer_fd, WATCH_FTIMER, FUTURE_KEY(p->id, f->id));
	}
	f->timer_stage = 1;
	arm_timer_ms(f->timer_fd, e->cfg.kill_grace_ms);
}

void pool_halt(struct engine *e, struct pool *p, const char *why)
{
	char reason[256];
	struct future *f;
	p->halted = true;
	free(p->halt_why);
	p->halt_why = strdup(why);
	log_add(e, LOG_LVL_WARN, "pool %s: halted: %s", p->name, why);
	journal_halted(e, p);
	snprintf(reason, sizeof(reason), "halted: %s", why);
	after_cancel_all(e, p, reason);   /* first: what that readies is queued, and goes next */
	while ((f = fut_dequeue(p)))
		cancel_pending(e, p, f, reason);
	revoke_handed(p, true);   /* cancelled as their workers give them back */
	if (p->ex != &local_executor)
		cancel_submitted(e, p, reason);
	for (size_t i = 0; p->halt.when == HALT_NOW && i < p->nfut; i++)
		if (p->fut[i]->state == FUT_RUNNING)
			stop_running(e, p, p->fut[i]);
	maybe_close(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

/* ---- retry -------------------------------------------------------------------------- */

void fut_again(struct engine *e, struct pool *p, struct future *f)
{
	if (f->done_pos && f->done_pos <= p->ndone)
		p->done_order[f->done_pos - 1] = 0;   /* completed: it is not, now */
	f->done_pos = 0;
	if (f->state == FUT_DONE)
		p->ndone_ok--;
	else if (f->state == FUT_FAILED)
		p->nfailed--;
	else if (f->state == FUT_CANCELLED)
		p->ncancelled--;
	else if (f->state == FUT_SKIPPED)
		p->nskipped--;
	out_free(e, &f->out[1]);
	out_free(e, &f->out[2]);
	free(f->error);
	f->error = NULL;
	f->exitcode = 0;
	f->timed_out = f->stopped = f->halted = false;
	f->stop_sig = 0;
	f->retry_base = f->attempts;   /* its retries= count from here */
	f->child = 0;
	f->cpu_us = 0;
	f->job = 0;
	f->sl_gone = false;
	f->sl_signal = 0;
	f->submitted = mono_now();
	f->started = f->ended = (struct timespec){ 0 };
	if (f->wait)   /* it waits again, for what it waited for as they stand now */
		after_hold(e, p, f);
	else
		fut_enqueue_by_id(p, f);
}

long pool_retry(struct engine *e, struct pool *p, bool failed, bool cancelled, char *err,
		size_t errlen)
{
	if (p->state == POOL_CLOSED) {
		snprintf(err, errlen, "pool %s is closed (shut down and drained): nothing runs "
			 "there again", p->name);
		return -ESHUTDOWN;
	}
	long n = 0;
	for (size_t i = 0; i < p->nfut; i++) {
		struct future *f = p->fut[i];
		/* a skipped future goes with the failed: it waits again for
		 * them (in id order, what it waits for is retried first) */
		if ((failed && (f->state == FUT_FAILED || f->state == FUT_SKIPPED)) ||
		    (cancelled && f->state == FUT_CANCELLED)) {
			fut_again(e, p, f);
			journal_again(e, p, f);
			notify_future(e, p, f);
			n++;
		}
	}
	halt_rearm(e, p);
	log_add(e, LOG_LVL_INFO, "pool %s: retry %s%s%s: %ld future%s run again", p->name,
		failed ? "failed" : "", failed && cancelled ? " " : "", cancelled ? "cancelled" : "",
		n, n == 1 ? "" : "s");
	if (n && p->ex->workers)
		p->ex->workers(e, p);
	return n;
}

/* ---- priority= ---------------------------------------------------------------------- */

int fut_set_priority(struct engine *e, struct pool *p, struct future *f, int prio, char *err,
		     size_t errlen)
{
	if (f->state == FUT_WAITING) {   /* it takes its place when it is queued */
		if (queue_bucket(p, prio) < 0)
			return -ENOMEM;
		f->priority = prio;
		p->prio_mixed |= prio != 0;
		journal_priority(e, p, f);
		notify_future(e, p, f);
		return 0;
	}
	if (f->state != FUT_PENDING) {
		snprintf(err, errlen, "future %llu is %s: priority= applies to pending futures",
			 (unsigned long long)f->id, future_state_name(f->state));
		return -EBUSY;
	}
	if (!f->in_queue && !f->at_host) {
		snprintf(err, errlen, "future %llu is submitted to Slurm already: its place in line "
			 "is Slurm's", (unsigned long long)f->id);
		return -EBUSY;
	}
	if (queue_bucket(p, prio) < 0)
		return -ENOMEM;
	bool queued = f->in_queue;
	fut_unqueue(p, f);
	f->priority = prio;
	p->prio_mixed |= prio != 0;
	if (queued)
		fut_enqueue_by_id(p, f);
	journal_priority(e, p, f);
	revoke_outranked(p);   /* handed ahead and now outranked, either way round */
	pool_dispatch(e, p);
	notify_future(e, p, f);
	engine_notify_locked(e, OBJ_POOL, p->id);
	return 0;
}

/* ---- status ------------------------------------------------------------------------- */

void running_futures(struct pool *p, struct strbuf *out)
{
	uint64_t seen = 0;
	for (size_t i = 0; i < p->nfut && seen < p->running + p->sl_inflight; i++) {
		const struct future *f = p->fut[i];
		if (f->state != FUT_RUNNING)
			continue;
		sb_printf(out, "%s%llu%s%s", seen ? " " : "", (unsigned long long)f->id,
			  f->name ? ":" : "", f->name ? f->name : "");
		seen++;
	}
}

int engine_pool_running(struct engine *e, uint64_t id, struct strbuf *out)
{
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	if (p)
		running_futures(p, out);
	pthread_mutex_unlock(&e->lock);
	return p ? sb_error(out) : -ENOENT;
}
