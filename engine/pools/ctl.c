/* ctl.c - pools/NAME/ctl and pools/NAME/futures/N/ctl, each parsed by one
 * command table (cmdtab.h).
 *
 * A pool's ctl line is either one command (shutdown [cancel], pause, resume,
 * retry failed|cancelled) or any number of settings (workers=, type=, gil=,
 * template=, on_end=, executor=, halt= and the Slurm job options), as a task line takes several options: `type=thread
 * workers=3` is one line.  template='exec ./square {}' is quoted the way
 * task lines quote exec arguments, since a template has blanks in it.  The table's handlers only check a value and stage
 * it; what depends on the pool (is it busy?) is checked under the lock, and
 * then everything staged applies, or nothing does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pools_int.h"
#include "cmdtab.h"
#include "template.h"

/* ---- pools/NAME/ctl ---------------------------------------------------------------- */

enum pool_op { OP_NONE, OP_SHUTDOWN, OP_SHUTDOWN_CANCEL, OP_PAUSE, OP_RESUME, OP_RETRY };

/* What one line asks for; unset fields leave the pool as it is. */
struct pool_stage {
	unsigned workers;              /* 0: unchanged */
	int type;                      /* -1, or an enum task_kind */
	int gil;                       /* -1, 0, 1 */
	const struct executor *ex;     /* NULL: unchanged */
	bool tmpl_set;                 /* template= given: tmpl, "" to remove it */
	char tmpl[TMPL_MAX + 1];
	bool on_end_set;               /* on_end= given: on_end, "" to remove it */
	char on_end[SPEC_ON_END_MAX + 1];
	struct slurm_opts sopt;        /* the pool's options, the line's applied */
	struct spec_limits lim;        /* the line's mem_max=, ... (owned: its cpus=) */
	char cpus[64];                 /* cpus= as given: Slurm's count or a CPU list */
	bool halt_set;                 /* halt= given */
	struct halt_rule halt;
	bool retry_failed, retry_cancelled;   /* retry's states */
	enum pool_op op;
};

static int set_workers(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	uint64_t v;
	if (parse_uint(argv[1], 4096, &v) < 0 || v == 0) {
		snprintf(err, errlen, "workers= takes 1..4096");
		return -EINVAL;
	}
	((struct pool_stage *)ctx)->workers = (unsigned)v;
	return 0;
}

static int set_type(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct pool_stage *st = ctx;
	if (!strcmp(argv[1], "process"))
		st->type = TASK_PROCESS;
	else if (!strcmp(argv[1], "thread"))
		st->type = TASK_THREAD;
	else {
		snprintf(err, errlen, "type= is process or thread");
		return -EINVAL;
	}
	return 0;
}

static int set_gil(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	if (strcmp(argv[1], "0") && strcmp(argv[1], "1")) {
		snprintf(err, errlen, "gil= is 0 or 1");
		return -EINVAL;
	}
	((struct pool_stage *)ctx)->gil = argv[1][0] == '1';
	return 0;
}

static int set_executor(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	const struct executor *ex = executor_by_name(argv[1]);
	if (!ex) {
		snprintf(err, errlen, "executor= is local or slurm");
		return -EINVAL;
	}
	if (ex->job_options && !slurm_available(err, errlen))
		return -EINVAL;
	((struct pool_stage *)ctx)->ex = ex;
	return 0;
}

/* template=LINE: checked as far as it can be without the pool (the line a
 * sample input makes is checked against the pool in stage_check); one that
 * reading ctl could not show as a line to write back is refused. */
static int set_template(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct pool_stage *st = ctx;
	struct strbuf shown = STRBUF_INIT;
	struct tmpl t;
	int rc = 0;
	if (argv[1][0]) {
		rc = tmpl_compile(argv[1], &t, err, errlen);
		tmpl_quote_word(argv[1], &shown);
	}
	if (rc == 0 && strlen("template=") + shown.len > CMD_LINE_MAX) {
		snprintf(err, errlen, "template= quoted is over %d bytes (a ctl line's most)",
			 CMD_LINE_MAX);
		rc = -E2BIG;
	}
	sb_free(&shown);
	if (rc < 0)
		return rc;
	st->tmpl_set = true;
	snprintf(st->tmpl, sizeof(st->tmpl), "%s", argv[1]);
	return 0;
}

/* on_end='CMD': the hook of every future that has no on_end= of its own,
 * run once it has ended (notice/hooks.c); on_end= alone removes it. */
static int set_on_end(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct pool_stage *st = ctx;
	const char *v = argc > 1 ? argv[1] : "";
	if (strlen(v) > SPEC_ON_END_MAX) {
		snprintf(err, errlen, "on_end= takes a command of at most %d bytes", SPEC_ON_END_MAX);
		return -EINVAL;
	}
	st->on_end_set = true;
	snprintf(st->on_end, sizeof(st->on_end), "%s", v);
	return 0;
}

static int set_slurm_option(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	int rc = slurm_opt_apply(&((struct pool_stage *)ctx)->sopt, argv[0], argv[1], err, errlen);
	return rc < 0 ? rc : 0;
}

/* mem_max=, swap_max=, pids_max=, cpu_max=, io_weight=: as a task line takes them. */
static int set_limit(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	char key[32];
	snprintf(key, sizeof(key), "%.*s", (int)strcspn(argv[0], "="), argv[0]);
	return spec_limit_set(&((struct pool_stage *)ctx)->lim, key, argv[1], err, errlen);
}

/* cpus=: a Slurm pool's CPUs per job (a count), a local pool's CPU list;
 * which one is known once the line's executor= is (stage_cpus). */
static int set_cpus(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct pool_stage *st = ctx;
	if (strlen(argv[1]) >= sizeof(st->cpus)) {
		snprintf(err, errlen, "cpus= is too long");
		return -EINVAL;
	}
	snprintf(st->cpus, sizeof(st->cpus), "%s", argv[1]);
	return 0;
}

static int set_halt(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct pool_stage *st = ctx;
	int rc = halt_parse(argv[1], &st->halt, err, errlen);
	st->halt_set = rc == 0;
	return rc;
}

/* retry failed | retry cancelled | retry failed cancelled */
static int cmd_retry(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct pool_stage *st = ctx;
	for (size_t i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "failed"))
			st->retry_failed = true;
		else if (!strcmp(argv[i], "cancelled"))
			st->retry_cancelled = true;
		else {
			snprintf(err, errlen, "retry takes failed, cancelled or both (the futures "
				 "of those states run again), not '%.40s'", argv[i]);
			return -EINVAL;
		}
	}
	st->op = OP_RETRY;
	return 0;
}

static int cmd_shutdown(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	if (argc == 2 && strcmp(argv[1], "cancel")) {
		snprintf(err, errlen, "shutdown takes nothing, or cancel");
		return -EINVAL;
	}
	((struct pool_stage *)ctx)->op = argc == 2 ? OP_SHUTDOWN_CANCEL : OP_SHUTDOWN;
	return 0;
}

static int cmd_pause(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	((struct pool_stage *)ctx)->op = OP_PAUSE;
	return 0;
}

static int cmd_resume(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	((struct pool_stage *)ctx)->op = OP_RESUME;
	return 0;
}

static const struct cmdtab pool_ctl_tab[] = {
	{ "workers=", 1, 1, set_workers, "workers=N" },
	{ "type=", 1, 1, set_type, "type=process|thread" },
	{ "gil=", 1, 1, set_gil, "gil=0|1" },
	{ "template=", 0, 1, set_template, "template='LINE'" },
	{ "on_end=", 0, 1, set_on_end, "on_end='CMD'" },
	{ "executor=", 1, 1, set_executor, "executor=local|slurm" },
	{ "partition=", 1, 1, set_slurm_option, "partition=NAME" },
	{ "account=", 1, 1, set_slurm_option, "account=NAME" },
	{ "mem=", 1, 1, set_slurm_option, "mem=SIZE" },
	{ "cpus=", 1, 1, set_cpus, "cpus=N (slurm) | cpus=LIST (local)" },
	{ "mem_max=", 1, 1, set_limit, "mem_max=SIZE" },
	{ "swap_max=", 1, 1, set_limit, "swap_max=SIZE" },
	{ "pids_max=", 1, 1, set_limit, "pids_max=N" },
	{ "cpu_max=", 1, 1, set_limit, "cpu_max=P%" },
	{ "io_weight=", 1, 1, set_limit, "io_weight=N" },
	{ "slurm_time=", 1, 1, set_slurm_option, "slurm_time=DUR" },
	{ "halt=", 1, 1, set_halt, "halt=never|now,fail=N|soon,success=P%..." },
	{ "shutdown", 0, 1, cmd_shutdown, "shutdown [cancel]" },
	{ "pause", 0, 0, cmd_pause, "pause" },
	{ "resume", 0, 0, cmd_resume, "resume" },
	{ "retry", 1, 2, cmd_retry, "retry failed|cancelled" },
};

static bool pool_busy(const struct pool *p)
{
	return p->running || p->queued || p->prefetched || p->sl_inflight;
}

/* The kind of worker the line leaves: gil= holds only for threads, so a
 * pool made a process pool without a gil= of its own drops it. */
static void staged_kind(const struct pool *p, const struct pool_stage *st, enum task_kind *type,
			bool *gil)
{
	*type = st->type >= 0 ? (enum task_kind)st->type : p->type;
	*gil = st->gil >= 0 ? st->gil : (*type == TASK_THREAD && p->gil);
}

/* What the staged line may not do to this pool now (lock held). */
static int stage_check(struct engine *e, const struct pool *p, const struct pool_stage *st,
		       char *err, size_t errlen)
{
	enum task_kind type;
	bool gil;
	staged_kind(p, st, &type, &gil);
	if ((type != p->type || gil != p->gil) && pool_busy(p)) {
		snprintf(err, errlen, "type= and gil= change only while nothing is queued or running");
		return -EBUSY;
	}
	if (gil && type != TASK_THREAD) {
		snprintf(err, errlen, "gil=1 applies to thread pools (set type=thread first)");
		return -EINVAL;
	}
	if (st->ex && st->ex != p->ex && pool_busy(p)) {
		snprintf(err, errlen, "executor= changes only while nothing is queued or running");
		return -EBUSY;
	}
	const struct executor *ex = st->ex ? st->ex : p->ex;
	bool limited = spec_limits_any(&st->lim) || spec_limits_any(&p->lim);
	if (limited && ex->job_options) {
		snprintf(err, errlen, "mem_max=, pids_max=, cpu_max=, cpus=LIST, swap_max= and "
			 "io_weight= bound a local pool's workers: a Slurm pool's jobs take "
			 "Slurm's mem= and cpus=");
		return -EINVAL;
	}
	if (spec_limits_any(&st->lim)) {
		int rc = pool_limits_check(e, p, &st->lim, err, errlen);
		if (rc < 0)
			return rc;
	}
	/* the template the line leaves, for the pool the line leaves */
	const char *tmpl = st->tmpl_set ? st->tmpl : p->tmpl;
	if (tmpl && tmpl[0] && (st->tmpl_set || st->ex || type != p->type))
		return template_check(e, tmpl, type, st->ex ? st->ex : p->ex, err, errlen);
	return 0;
}

/* A text setting the line sets, template= or on_end= ("" clears it): the
 * futures already made keep what they had. */
static int stage_apply_text(struct engine *e, struct pool *p, char **field, bool set,
			    const char *val, const char *key)
{
	char *v = NULL;
	if (!set)
		return 0;
	if (val[0] && !(v = strdup(val)))
		return -ENOMEM;
	free(*field);
	*field = v;
	if (v)
		log_add(e, LOG_LVL_INFO, "pool %s: %s=%s", p->name, key, v);
	else
		log_add(e, LOG_LVL_INFO, "pool %s: no %s", p->name, key);
	return 0;
}

/* A new executor, or a new kind of worker: the idle workers go; new ones
 * start on the next submit. */
static void stage_apply_kind(struct engine *e, struct pool *p, const struct pool_stage *st)
{
	enum task_kind type;
	bool gil;
	staged_kind(p, st, &type, &gil);
	const struct executor *ex = st->ex ? st->ex : p->ex;
	if (ex == p->ex && type == p->type && gil == p->gil)
		return;
	if (p->ex->retire_all)
		p->ex->retire_all(e, p);
	if (ex != p->ex)
		log_add(e, LOG_LVL_INFO, "pool %s: executor=%s", p->name, ex->name);
	p->ex = ex;
	p->type = type;
	p->gil = gil;
}

static void stage_apply_op(struct engine *e, struct pool *p, const struct pool_stage *st)
{
	struct future *f;
	switch (st->op) {
	case OP_NONE:
	case OP_RETRY:   /* stage_apply: it may be refused */
		return;
	case OP_SHUTDOWN:
	case OP_SHUTDOWN_CANCEL:
		if (p->state == POOL_RUNNING)
			p->state = POOL_SHUTDOWN;
		if (st->op == OP_SHUTDOWN_CANCEL) {
			after_cancel_all(e, p, "cancelled by shutdown");
			while ((f = fut_dequeue(p)))
				cancel_pending(e, p, f, "cancelled by shutdown");
			/* those handed to slots are cancelled as their workers
			 * give them back (the ones that started first run) */
			revoke_handed(p, true);
		}
		maybe_close(e, p);
		return;
	case OP_PAUSE:
		p->paused = true;
		revoke_handed(p, false);   /* nothing more starts: back to the queue */
		return;
	case OP_RESUME:
		p->paused = false;
		return;
	}
}

/* Everything the line staged, or nothing (reap_lock and lock held). */
static int stage_apply(struct engine *e, struct pool *p, const struct pool_stage *st,
		       char *err, size_t errlen)
{
	int rc = stage_check(e, p, st, err, errlen);
	if (rc == 0 && st->op == OP_RETRY) {   /* a command alone on its line: nothing staged */
		long n = pool_retry(e, p, st->retry_failed, st->retry_cancelled, err, errlen);
		rc = n < 0 ? (int)n : 0;
	}
	if (rc == 0)
		rc = pool_limits_apply(e, p, &st->lim, err, errlen);
	if (rc == 0)
		rc = stage_apply_text(e, p, &p->tmpl, st->tmpl_set, st->tmpl, "template");
	if (rc == 0)
		rc = stage_apply_text(e, p, &p->on_end, st->on_end_set, st->on_end, "on_end");
	if (rc < 0)
		return rc;
	stage_apply_kind(e, p, st);
	p->sopt = st->sopt;
	if (st->workers) {
		p->target = st->workers;
		p->failed_starts = 0;
		if (p->ex->workers)
			p->ex->workers(e, p);
	}
	if (st->halt_set)
		halt_set(e, p, &st->halt);
	stage_apply_op(e, p, st);
	pool_dispatch(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
	return 0;
}

/* cpus= given: Slurm's count if the line leaves the pool with Slurm's
 * executor, else a CPU list (a limit). */
static int stage_cpus(struct engine *e, uint64_t id, struct pool_stage *st, char *err,
		      size_t errlen)
{
	if (!st->cpus[0])
		return 0;
	const struct executor *ex = st->ex;
	if (!ex) {
		pthread_mutex_lock(&e->lock);
		struct pool *p = pool_by_id(e, id);
		ex = p ? p->ex : &local_executor;
		pthread_mutex_unlock(&e->lock);
	}
	if (ex->job_options) {
		int rc = slurm_opt_apply(&st->sopt, "cpus", st->cpus, err, errlen);
		return rc < 0 ? rc : 0;
	}
	return spec_limit_set(&st->lim, "cpus", st->cpus, err, errlen);
}

int engine_pool_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen)
{
	struct pool_stage st = { .type = -1, .gil = -1 };
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, id);
	if (p)
		st.sopt = p->sopt;   /* the line's Slurm options apply on top */
	pthread_mutex_unlock(&e->lock);
	if (!p)
		return -ENOENT;
	spec_limits_init(&st.lim);
	int rc = cmd_exec(pool_ctl_tab, sizeof(pool_ctl_tab) / sizeof(pool_ctl_tab[0]), line, &st,
			  err, errlen);
	if (rc == 0)
		rc = stage_cpus(e, id, &st, err, errlen);
	if (rc < 0) {
		spec_limits_free(&st.lim);
		return rc;
	}
	pthread_rwlock_rdlock(&e->reap_lock);
	pthread_mutex_lock(&e->lock);
	p = pool_by_id(e, id);
	rc = p ? stage_apply(e, p, &st, err, errlen) : -ENOENT;
	if (rc == 0)
		journal_pool(e, "C", p, line);
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);
	spec_limits_free(&st.lim);
	engine_flush_notify(e);
	return rc;
}

/* ---- pools/NAME/futures/N/ctl ------------------------------------------------------ */

/* What a future's ctl line asks: a signal, or a new priority. */
struct fut_stage {
	int sig;                       /* 0: none */
	bool prio_set;
	int prio;
};

static int fut_term(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	((struct fut_stage *)ctx)->sig = SIGTERM;
	return 0;
}

static int fut_kill(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	((struct fut_stage *)ctx)->sig = SIGKILL;
	return 0;
}

static int fut_signal(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	int sig;
	if (parse_signal(argv[1], &sig) < 0 || sig < 1 || sig > 64) {
		snprintf(err, errlen, "signal needs one signal number or name (e.g. 'signal 10', "
			 "'signal USR1')");
		return -EINVAL;
	}
	((struct fut_stage *)ctx)->sig = sig;
	return 0;
}

static int fut_priority(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct fut_stage *st = ctx;
	const char *v = argv[1];
	uint64_t mag;
	bool neg = v[0] == '-';
	if (parse_uint(v + neg, 1000, &mag) < 0) {
		snprintf(err, errlen, "priority= takes a whole number from %d to %d (bigger "
			 "starts first)", SPEC_PRIORITY_MIN, SPEC_PRIORITY_MAX);
		return -EINVAL;
	}
	st->prio = neg ? -(int)mag : (int)mag;
	st->prio_set = true;
	return 0;
}

static const struct cmdtab future_ctl_tab[] = {
	{ "term", 0, 0, fut_term, "term" },
	{ "kill", 0, 0, fut_kill, "kill" },
	{ "signal", 1, 1, fut_signal, "signal N|NAME" },
	{ "priority=", 1, 1, fut_priority, "priority=N" },
};

/* A signal to a running future (lock held). */
static int fut_stop(struct engine *e, struct pool *p, struct future *f, int sig, char *err,
		    size_t errlen)
{
	if (f->state != FUT_RUNNING) {
		snprintf(err, errlen, "future %llu is %s, not running (cancel a pending one)",
			 (unsigned long long)f->id, future_state_name(f->state));
		return -ESRCH;
	}
	f->stopped = true;
	f->stop_sig = sig;
	return p->ex->signal(e, p, f, sig);
}

int engine_future_ctl(struct engine *e, uint64_t pid, uint64_t fid, const char *cmd,
		      char *err, size_t errlen)
{
	struct fut_stage st = { 0 };
	int rc = cmd_exec(future_ctl_tab, sizeof(future_ctl_tab) / sizeof(future_ctl_tab[0]), cmd,
			  &st, err, errlen);
	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&e->reap_lock);   /* as for the pool's ctl: it may dispatch */
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, pid);
	struct future *f = p ? fut_get(p, fid) : NULL;
	if (!f)
		rc = -ENOENT;
	else if (st.prio_set)
		rc = fut_set_priority(e, p, f, st.prio, err, errlen);
	else
		rc = fut_stop(e, p, f, st.sig, err, errlen);
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);
	engine_flush_notify(e);
	return rc;
}
