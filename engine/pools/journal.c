/* journal.c - pools and futures in the [state] dir's journal (persist).
 *
 * Records: P (a pool made), C (a ctl line it took), X (removed), S (a future
 * submitted, with its line, and slot_marks: 1 when a template's {%} markers
 * in it wait for the slot it runs on), R (it started on a local worker), J (its Slurm
 * job id), Q (a run failed and it waits to be retried: the attempts so far;
 * the R or J before it is over), D (its final state, its output in
 * DIR/out/pNAME.ID.STREAM); and for policy.c: PH (the pool halted, and
 * why), FP (a pending future's new priority=), FA (a final future runs
 * again, by a ctl `retry`: its D is over).
 * Replay makes the pools again with the same settings and the futures with
 * the same ids: final ones as they ended (in the same completion order),
 * pending ones (retries too) queued again, Slurm ones with a job watched
 * again, and local ones that were running fail as lost, unless they have a
 * retry left: the lost run counts as a failed attempt and they are queued
 * again (the next compaction writes its Q).
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
#include "persist/persist.h"

void fut_prefix(const struct pool *p, char *buf, size_t len)
{
	snprintf(buf, len, "p%s.", p->name);
}

/* C: a ctl line the pool took; X: it was removed (no line) */
static void render_pool_line(struct strbuf *sb, const char *kind, const struct pool *p,
			     const char *line)
{
	jr_begin(sb, kind);
	jr_str(sb, "name", p->name);
	jr_str(sb, "line", line);
	jr_end(sb);
}

void journal_pool(struct engine *e, const char *kind, const struct pool *p,
			 const char *line)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_pool_line(sb, kind, p, line);
}

/* P: a pool, with the credentials its work runs with (none: the daemon's) */
static void render_created(struct strbuf *sb, const struct pool *p)
{
	jr_begin(sb, "P");
	jr_str(sb, "name", p->name);
	if (p->cred) {
		jr_u64(sb, "uid", p->cred->uid);
		jr_u64(sb, "gid", p->cred->gid);
		if (p->cred->ngroups >= 0) {
			struct strbuf g = STRBUF_INIT;
			for (int i = 0; i < p->cred->ngroups; i++)
				sb_printf(&g, "%s%u", i ? "," : "", (unsigned)p->cred->groups[i]);
			jr_u64(sb, "ngroups", (uint64_t)p->cred->ngroups);
			jr_str(sb, "groups", sb_cstr(&g));
			sb_free(&g);
		}
	}
	jr_end(sb);
}

void journal_created(struct engine *e, const struct pool *p)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_created(sb, p);
}

static void fut_record(struct strbuf *sb, const char *kind, const struct pool *p,
		       const struct future *f)
{
	jr_begin(sb, kind);
	jr_str(sb, "pool", p->name);
	jr_u64(sb, "id", f->id);
}

static void render_submitted(struct strbuf *sb, const struct pool *p, const struct future *f)
{
	fut_record(sb, "S", p, f);
	jr_str(sb, "line", f->line);
	if (p->prio_mixed)   /* a priority= by ctl may differ from its line's */
		jr_i64(sb, "priority", f->priority);
	if (f->cwd)   /* its environment is not written down: it may hold secrets */
		jr_str(sb, "cwd", f->cwd);
	if (f->slot_marks)
		jr_u64(sb, "slot_marks", 1);
	jr_end(sb);
}

static void render_final(struct strbuf *sb, const struct pool *p, const struct future *f)
{
	fut_record(sb, "D", p, f);
	jr_str(sb, "state", future_state_name(f->state));
	jr_i64(sb, "code", f->exitcode);
	jr_u64(sb, "attempts", f->attempts);
	int64_t run_ns = f->started.tv_sec ? (int64_t)(ts_since(f->started, f->ended) * 1e9) : 0;
	jr_i64(sb, "run_ns", run_ns);
	jr_i64(sb, "cpu_us", f->cpu_us);
	if (f->timed_out)
		jr_u64(sb, "timed_out", 1);
	if (f->oom_killed)
		jr_u64(sb, "oom", 1);
	if (f->job)
		jr_u64(sb, "job", f->job);
	for (int s = 1; s <= 2; s++)
		if (f->out[s].dropped)
			jr_u64(sb, s == 1 ? "dropped1" : "dropped2", f->out[s].dropped);
	jr_str(sb, "error", f->error);
	jr_end(sb);
}

void journal_submitted(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_submitted(sb, p, f);
}

void journal_running(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	fut_record(sb, "R", p, f);
	jr_end(sb);
}

/* Q: attempts that ended; the run in progress (if any) is not one of them */
static void render_requeued(struct strbuf *sb, const struct pool *p, const struct future *f,
			    unsigned attempts)
{
	fut_record(sb, "Q", p, f);
	jr_u64(sb, "attempts", attempts);
	if (f->retry_base)
		jr_u64(sb, "base", f->retry_base);
	jr_end(sb);
}

void journal_requeued(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_requeued(sb, p, f, f->attempts);
}

/* PH: the pool halted (policy.c) */
static void render_halted(struct strbuf *sb, const struct pool *p)
{
	jr_begin(sb, "PH");
	jr_str(sb, "name", p->name);
	jr_str(sb, "why", p->halt_why);
	jr_end(sb);
}

void journal_halted(struct engine *e, struct pool *p)
{
	struct strbuf *sb = state_record(e);
	if (sb)
		render_halted(sb, p);
}

/* FA: a final future runs again (retry); attempts so far */
void journal_again(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	fut_record(sb, "FA", p, f);
	jr_u64(sb, "attempts", f->attempts);
	jr_end(sb);
}

/* FP: a pending future's priority= */
void journal_priority(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	fut_record(sb, "FP", p, f);
	jr_i64(sb, "priority", f->priority);
	jr_end(sb);
}

void journal_job(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	fut_record(sb, "J", p, f);
	jr_u64(sb, "job", f->job);
	jr_end(sb);
}

void journal_final(struct engine *e, struct pool *p, struct future *f)
{
	struct strbuf *sb = state_record(e);
	if (!sb)
		return;
	char prefix[POOL_NAME_MAX + 4];
	fut_prefix(p, prefix, sizeof(prefix));
	for (int s = 1; s <= 2; s++) {
		int rc = state_write_output(e, prefix, f->id, s, f->out[s].data, f->out[s].len);
		if (rc < 0)
			state_failed(e, "future output", rc);
	}
	render_final(sb, p, f);
}

/* The pool's settings as ctl lines replay understands. */
static size_t render_settings(struct strbuf *sb, const struct pool *p)
{
	char line[512];
	size_t n = 0;
	if (p->type == TASK_THREAD) {
		render_pool_line(sb, "C", p, "type=thread");
		n++;
	}
	if (p->gil) {
		render_pool_line(sb, "C", p, "gil=1");
		n++;
	}
	int len = p->ex == &local_executor
		  ? snprintf(line, sizeof(line), "workers=%u", p->target)
		  : snprintf(line, sizeof(line), "executor=%s workers=%u", p->ex->name, p->target);
	if (p->ex->job_options)
		slurm_opts_format(&p->sopt, line + len, sizeof(line) - (size_t)len);
	render_pool_line(sb, "C", p, line);
	n++;
	/* after executor=: a Slurm pool's template may hold job options */
	if (p->tmpl) {   /* set checks that this fits a ctl line */
		struct strbuf t = STRBUF_INIT;
		sb_adds(&t, "template=");
		tmpl_quote_word(p->tmpl, &t);
		render_pool_line(sb, "C", p, sb_cstr(&t));
		sb_free(&t);
		n++;
	}
	if (p->halt.when != HALT_NEVER) {
		char h[64] = "halt=";
		halt_format(&p->halt, h + 5, sizeof(h) - 5);
		render_pool_line(sb, "C", p, h);
		n++;
	}
	if (p->halted) {   /* after its halt=, which runs the pool again */
		render_halted(sb, p);
		n++;
	}
	if (p->paused) {
		render_pool_line(sb, "C", p, "pause");
		n++;
	}
	return n;
}

static int by_pool_id(const void *a, const void *b)
{
	const struct pool *x = *(struct pool *const *)a, *y = *(struct pool *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static size_t pool_render_state(struct engine *e, struct strbuf *sb)
{
	size_t n = 0, np = 0;
	struct pool **v = calloc(e->pools->n ? e->pools->n : 1, sizeof(*v));
	if (!v)
		return 0;
	for (struct pool *p = e->pools->first; p && np < e->pools->n; p = p->next)
		v[np++] = p;
	qsort(v, np, sizeof(*v), by_pool_id);   /* the order they were made in */
	for (size_t i = 0; i < np; i++) {
		struct pool *p = v[i];
		render_created(sb, p);
		n++;
		n += render_settings(sb, p);
		for (size_t k = 0; k < p->nfut; k++) {
			struct future *f = p->fut[k];
			render_submitted(sb, p, f);
			n++;
			/* a run in progress (a local one, a Slurm job or its sbatch)
			 * counted its attempt when it began */
			bool in_progress = f->state == FUT_RUNNING || f->sl_submitting || f->job;
			unsigned ended = f->attempts - (in_progress && f->attempts ? 1 : 0);
			if (!fut_final(f) && ended) {
				render_requeued(sb, p, f, ended);
				n++;
			}
			if (f->job && !fut_final(f)) {
				fut_record(sb, "J", p, f);
				jr_u64(sb, "job", f->job);
				jr_end(sb);
				n++;
			} else if (f->state == FUT_RUNNING) {
				fut_record(sb, "R", p, f);
				jr_end(sb);
				n++;
			}
		}
		for (size_t k = 0; k < p->ndone; k++) {   /* completion order */
			if (!p->done_order[k])
				continue;   /* it ran again since */
			struct future *f = fut_get(p, p->done_order[k]);
			if (f) {
				render_final(sb, p, f);
				n++;
			}
		}
		if (p->state != POOL_RUNNING) {
			render_pool_line(sb, "C", p, "shutdown");
			n++;
		}
	}
	free(v);
	return n;
}

/* Is DIR/out/<file> (pNAME.ID.STREAM) the output of a final future? */
static bool pool_output_known(struct engine *e, const char *file)
{
	const char *dot2 = strrchr(file, '.');
	if (!dot2 || dot2 == file || (strcmp(dot2, ".1") && strcmp(dot2, ".2")))
		return false;
	const char *dot1 = dot2 - 1;
	while (dot1 > file && *dot1 != '.')
		dot1--;
	if (dot1 <= file + 1 || (size_t)(dot1 - file - 1) > POOL_NAME_MAX)
		return false;
	char name[POOL_NAME_MAX + 1];
	memcpy(name, file + 1, (size_t)(dot1 - file - 1));
	name[dot1 - file - 1] = '\0';
	char *end;
	uint64_t id = strtoull(dot1 + 1, &end, 10);
	struct pool *p = end == dot2 ? pool_by_name(e, name) : NULL;
	struct future *f = p ? fut_get(p, id) : NULL;
	return f && fut_final(f);
}

/* ---- replay ---- */

struct rfut {
	char *line;                    /* S: the line (owned) */
	char *cwd;                     /* S: where it runs, if not the worker's (owned) */
	bool slot_marks;               /* S: it holds a template's {%} markers */
	char *final;                   /* D: the raw record (owned) */
	bool running;                  /* R */
	uint64_t job;                  /* J */
	unsigned attempts;             /* Q: attempts that ended before a retry */
	unsigned base;                 /* Q, FA: attempts before a ctl retry */
	bool prio_set;                 /* S, FP: its priority, over its line's */
	int prio;
	size_t done_idx;               /* D: its place in rpool.done + 1 */
};

struct rpool {
	char name[POOL_NAME_MAX + 1];
	bool has_cred;                 /* the owner's credentials, from P */
	struct cred cred;
	char **ctl;                    /* C lines, in order (owned) */
	size_t nctl;
	struct rfut *f;                /* by id - 1 */
	size_t nf;
	uint64_t *done;                /* ids, in the order D records came (0: ran again) */
	size_t ndone;
	bool removed;
	char *halted_why;              /* PH, unless a halt= or retry came after it (owned) */
};

struct pool_replay {
	struct rpool *p;
	size_t n;
};

static struct pool_replay *pool_replay_new(void)
{
	return calloc(1, sizeof(struct pool_replay));
}

static void rpool_clear(struct rpool *rp)
{
	for (size_t i = 0; i < rp->nctl; i++)
		free(rp->ctl[i]);
	for (size_t i = 0; i < rp->nf; i++) {
		free(rp->f[i].line);
		free(rp->f[i].cwd);
		free(rp->f[i].final);
	}
	free(rp->ctl);
	free(rp->f);
	free(rp->done);
	free(rp->halted_why);
	memset(rp, 0, sizeof(*rp));
}

static void pool_replay_free(struct pool_replay *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		rpool_clear(&r->p[i]);
	free(r->p);
	free(r);
}

static struct rpool *rpool_find(struct pool_replay *r, const char *name)
{
	for (size_t i = r->n; i-- > 0;)      /* the newest of that name */
		if (!r->p[i].removed && !strcmp(r->p[i].name, name))
			return &r->p[i];
	return NULL;
}

static bool push(void **v, size_t *n, size_t size)
{
	void *nv = realloc(*v, (*n + 1) * size);
	if (!nv)
		return false;
	*v = nv;
	memset((char *)nv + *n * size, 0, size);
	(*n)++;
	return true;
}

static struct rfut *rfut_at(struct rpool *rp, uint64_t id, bool grow)
{
	if (!id || id > UINT32_MAX)
		return NULL;
	while (grow && rp->nf < id)
		if (!push((void **)&rp->f, &rp->nf, sizeof(*rp->f)))
			return NULL;
	return id <= rp->nf ? &rp->f[id - 1] : NULL;
}

/* 0 and takes `line` (the raw record) when the record is a pool's; -ENOENT
 * when it is not a pool's kind; -EINVAL when it is, unreadable. */
/* A P record's credentials: the owner its pool's work runs as. */
static void replay_cred(struct rpool *rp, const struct jrec *rec)
{
	uint64_t uid, gid, ng;
	if (!jr_get_u64(rec, "uid", &uid) || !jr_get_u64(rec, "gid", &gid))
		return;
	rp->has_cred = true;
	rp->cred.uid = (uid_t)uid;
	rp->cred.gid = (gid_t)gid;
	rp->cred.ngroups = -1;
	const char *g = jr_get(rec, "groups", NULL);
	if (jr_get_u64(rec, "ngroups", &ng) && ng <= CRED_GROUPS_MAX && g) {
		int gi = 0;
		for (char *end; *g && gi < (int)ng; g = *end ? end + 1 : end, gi++)
			rp->cred.groups[gi] = (gid_t)strtoul(g, &end, 10);
		rp->cred.ngroups = gi;
	}
}

/* P, X, C: a pool made (a stale one of the same name is dropped), removed,
 * or a ctl line it took.  0 (line is ours: freed) or -EINVAL. */
static int replay_pool_record(struct pool_replay *r, struct rpool *rp, const char *name,
			      const struct jrec *rec, char *line)
{
	switch (rec->kind[0]) {
	case 'P':
		if (rp)
			rp->removed = true;
		if (!push((void **)&r->p, &r->n, sizeof(*r->p)))
			return -EINVAL;
		rp = &r->p[r->n - 1];
		snprintf(rp->name, sizeof(rp->name), "%s", name);
		replay_cred(rp, rec);
		break;
	case 'X':
		if (!rp)
			return -EINVAL;
		rp->removed = true;
		break;
	default: {   /* C */
		const char *v = jr_get(rec, "line", NULL);
		char *c = rp && v ? strdup(v) : NULL;
		if (!c || !push((void **)&rp->ctl, &rp->nctl, sizeof(*rp->ctl))) {
			free(c);
			return -EINVAL;
		}
		rp->ctl[rp->nctl - 1] = c;
		if (strstr(c, "halt=") || !strncmp(c, "retry", 5)) {
			free(rp->halted_why);   /* the pool ran again */
			rp->halted_why = NULL;
		}
		break;
	}
	}
	free(line);
	return 0;
}

/* PH: the pool halted, and why. */
static int replay_halted(struct rpool *rp, const struct jrec *rec, char *line)
{
	const char *why = jr_get(rec, "why", NULL);
	char *w = rp && why ? strdup(why) : NULL;
	if (!w)
		return -EINVAL;
	free(rp->halted_why);
	rp->halted_why = w;
	free(line);
	return 0;
}

/* FA: a final future runs again: its D is over (its place in the
 * completion order too); FP: a new priority. */
static int replay_policy_record(struct rpool *rp, struct rfut *f, const struct jrec *rec)
{
	uint64_t a;
	int64_t v;
	if (!strcmp(rec->kind, "FP")) {
		if (!jr_get_i64(rec, "priority", &v) || v < SPEC_PRIORITY_MIN || v > SPEC_PRIORITY_MAX)
			return -EINVAL;
		f->prio = (int)v;
		f->prio_set = true;
		return 0;
	}
	if (!f->final || !jr_get_u64(rec, "attempts", &a) || a > UINT32_MAX)
		return -EINVAL;
	rp->done[f->done_idx - 1] = 0;
	free(f->final);
	f->final = NULL;
	f->done_idx = 0;
	f->attempts = f->base = (unsigned)a;
	f->running = false;
	f->job = 0;
	return 0;
}

/* S, R, J, Q, D (and FA, FP): a future submitted, started, a job, waiting
 * for a retry (the run or job before it is over), or its end.  0 or
 * -EINVAL; a D keeps its line (parsed again when applied), the others
 * free it. */
static int replay_future_record(struct rpool *rp, const struct jrec *rec, char *line)
{
	char k = rec->kind[1] ? 'F' : rec->kind[0];
	uint64_t id, a;
	if (!rp || !jr_get_u64(rec, "id", &id))
		return -EINVAL;
	struct rfut *f = rfut_at(rp, id, k == 'S');
	if (!f || (k != 'S' && !f->line))
		return -EINVAL;
	const char *v;
	int64_t pr;
	switch (k) {
	case 'F':
		if (replay_policy_record(rp, f, rec) < 0)
			return -EINVAL;
		break;
	case 'S':
		v = jr_get(rec, "line", NULL);
		if (!v || f->line || !(f->line = strdup(v)))
			return -EINVAL;
		if (jr_get_i64(rec, "priority", &pr) && pr >= SPEC_PRIORITY_MIN &&
		    pr <= SPEC_PRIORITY_MAX) {
			f->prio = (int)pr;
			f->prio_set = true;
		}
		v = jr_get(rec, "cwd", NULL);
		if (v && (v[0] != '/' || !(f->cwd = strdup(v))))
			return -EINVAL;
		f->slot_marks = jr_get_u64(rec, "slot_marks", &a) && a;
		break;
	case 'R':
		f->running = true;
		break;
	case 'J':
		if (!jr_get_u64(rec, "job", &f->job))
			return -EINVAL;
		break;
	case 'Q':
		if (!jr_get_u64(rec, "attempts", &a) || a > UINT32_MAX)
			return -EINVAL;
		f->attempts = (unsigned)a;
		if (jr_get_u64(rec, "base", &a) && a <= f->attempts)
			f->base = (unsigned)a;
		f->running = false;
		f->job = 0;
		break;
	default:   /* D */
		if (f->final || !push((void **)&rp->done, &rp->ndone, sizeof(*rp->done)))
			return -EINVAL;
		rp->done[rp->ndone - 1] = id;
		f->done_idx = rp->ndone;
		f->final = line;
		return 0;
	}
	free(line);
	return 0;
}

static int pool_replay_record(struct pool_replay *r, const struct jrec *rec, char *line)
{
	const char *k = rec->kind;
	bool policy = !strcmp(k, "PH") || !strcmp(k, "FP") || !strcmp(k, "FA");
	if (!policy && (strlen(k) != 1 || !strchr("PCXSRJQD", k[0])))
		return -ENOENT;
	bool pool_rec = k[0] == 'P' || (!k[1] && strchr("CX", k[0]));
	const char *name = jr_get(rec, pool_rec ? "name" : "pool", NULL);
	if (!name || strlen(name) > POOL_NAME_MAX || !pool_name_valid(name))
		return -EINVAL;
	struct rpool *rp = rpool_find(r, name);
	if (!strcmp(k, "PH"))
		return replay_halted(rp, rec, line);
	return pool_rec ? replay_pool_record(r, rp, name, rec, line)
			: replay_future_record(rp, rec, line);
}

/* A future back from its S line (lock held): as submit makes it, but one
 * future whatever COUNT the line says, and without the limits: it was
 * admitted once.  A line that no longer parses fails the future. */
static struct future *fut_restore(struct engine *e, struct pool *p, uint64_t id,
				  const struct rfut *rf)
{
	const char *line = rf->line;
	struct future *f = fut_new(line ? line : "");
	if (!f)
		return NULL;
	if (rf->cwd && !(f->cwd = strdup(rf->cwd))) {   /* nothing of it is watched yet */
		free(f->line);
		free(f);
		return NULL;
	}
	f->id = id;
	f->slot_marks = rf->slot_marks;
	f->retry_base = rf->base;
	f->sopt = p->sopt;
	f->submitted = mono_now();
	struct task_spec spec;
	struct slurm_opts lo;
	char why[256] = "";
	int rc = line ? parse_pool_line(e, p->ex->job_options, line, strlen(line), &spec, &lo, why,
					 sizeof(why))
		      : -EINVAL;
	if (rc == 0) {
		rc = fut_apply_spec(f, &spec, &p->sopt, &lo, p->ex->job_options);
		spec_free(&spec);
	}
	if (rf->prio_set)
		f->priority = rf->prio;
	p->prio_mixed |= f->priority != 0;
	queue_bucket(p, f->priority);   /* failing, it waits in the nearest (queue.c) */
	if (rc < 0) {
		f->state = FUT_FAILED;
		f->exitcode = 1;
		fut_set_error(f, "not restored from the [state] dir: %s", why[0] ? why : "no line");
	}
	return f;
}

static enum future_state fstate_of(const char *name)
{
	const enum future_state final[] = { FUT_DONE, FUT_FAILED, FUT_CANCELLED, FUT_SKIPPED };
	for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
		if (name && !strcmp(name, future_state_name(final[i])))
			return final[i];
	return FUT_FAILED;
}

/* A D record onto its future (lock held). */
static void apply_final(struct engine *e, struct pool *p, struct future *f, char *raw)
{
	struct jrec rec;
	if (jr_parse(raw, &rec) < 0)
		return;
	f->state = fstate_of(jr_get(&rec, "state", NULL));
	int64_t x = 0;
	uint64_t u = 0;
	if (jr_get_i64(&rec, "code", &x))
		f->exitcode = (int)x;
	if (jr_get_u64(&rec, "attempts", &u))
		f->attempts = (unsigned)u;
	if (jr_get_i64(&rec, "cpu_us", &x))
		f->cpu_us = x;
	if (jr_get_u64(&rec, "job", &u))
		f->job = u;
	f->timed_out = jr_get_u64(&rec, "timed_out", &u) && u;
	f->oom_killed = jr_get_u64(&rec, "oom", &u) && u;
	const char *err = jr_get(&rec, "error", NULL);
	if (err)
		fut_set_error(f, "%s", err);
	char prefix[POOL_NAME_MAX + 4];
	fut_prefix(p, prefix, sizeof(prefix));
	for (int s = 1; s <= 2; s++) {
		state_read_output(e, prefix, f->id, s, &f->out[s]);
		if (jr_get_u64(&rec, s == 1 ? "dropped1" : "dropped2", &u))
			f->out[s].dropped += u;
	}
	int64_t run_ns = 0;
	jr_get_i64(&rec, "run_ns", &run_ns);
	record_final(e, p, f);
	/* record_final stamped `ended` now: keep the recorded run time */
	if (run_ns) {
		int64_t s_ns = (int64_t)f->ended.tv_sec * 1000000000 + f->ended.tv_nsec - run_ns;
		f->started = (struct timespec){ s_ns / 1000000000, s_ns % 1000000000 };
	}
}

/* Replay one pool's ctl lines: pause/resume and shutdown are held back
 * (futures come first; the pool stays paused until they are all back). */
static void replay_ctl(struct engine *e, uint64_t id, const struct rpool *rp, bool *paused,
		       bool *shut)
{
	for (size_t i = 0; i < rp->nctl; i++) {
		const char *l = rp->ctl[i];
		char err[256] = "";
		if (!strncmp(l, "shutdown", 8))
			*shut = true;
		else if (!strncmp(l, "retry", 5))
			;   /* its futures' FA records say what ran again */
		else if (!strcmp(l, "pause"))
			*paused = true;
		else if (!strcmp(l, "resume"))
			*paused = false;
		else if (engine_pool_ctl(e, id, l, err, sizeof(err)) < 0)
			log_add(e, LOG_LVL_WARN, "[state] pool %s: '%s' not replayed: %s", rp->name,
				l, err);
	}
}

/* The pool of rp made again, held until the restore is done, its ctl lines
 * applied: 0 with its id, or -errno (logged). */
static int replay_pool_make(struct engine *e, const struct rpool *rp, uint64_t *id,
			    bool *paused, bool *shut)
{
	char err[256] = "";
	if (engine_pool_create_as(e, rp->name, rp->has_cred ? &rp->cred : NULL, err,
				  sizeof(err)) < 0 ||
	    engine_pool_find(e, rp->name, id) < 0) {
		log_add(e, LOG_LVL_ERROR, "[state] pool %s not restored: %s", rp->name, err);
		return -EINVAL;
	}
	pthread_mutex_lock(&e->lock);
	struct pool *p = pool_by_id(e, *id);
	p->paused = true;
	p->held = true;   /* until the restore is done: pool_replay_done */
	pthread_mutex_unlock(&e->lock);
	replay_ctl(e, *id, rp, paused, shut);
	return 0;
}

/* What becomes of a future that had not ended (lock held). */
static void replay_unfinished(struct engine *e, struct pool *p, struct future *f,
			      const struct rfut *rf)
{
	if (rf->job && p->ex->readopt && p->ex->readopt(e, p, f, rf->job)) {
		f->attempts = rf->attempts + 1;   /* it runs elsewhere still */
	} else if (rf->running && rf->attempts + 1 - f->retry_base <= f->retries) {
		/* the crash ended that run, as a failure would have: with a
		 * retry left it runs again (future_ended's rule) */
		f->attempts = rf->attempts + 1;
		fut_set_error(f, "lost: pcfs stopped while it ran; it runs again");
		log_add(e, LOG_LVL_WARN, "[state] pool %s: future %llu was running when pcfs "
			"stopped: it runs again (attempt %u of %u)", p->name,
			(unsigned long long)f->id, f->attempts + 1, f->retries + 1);
		fut_enqueue(p, f, false);
	} else if (rf->running) {
		f->state = FUT_FAILED;
		f->exitcode = 1;
		f->attempts = rf->attempts + 1;
		fut_set_error(f, "lost: pcfs stopped while it ran; its result cannot be known");
		record_final(e, p, f);
	} else {
		/* never started, or waited for a retry: it runs now, or
		 * waits again for what it waited for (restored before it) */
		f->attempts = rf->attempts;
		if (f->wait)
			after_hold(e, p, f);
		else
			fut_enqueue(p, f, false);
	}
}

/* The futures of rp into p with their ids; the final ones in the order they
 * ended (lock held).  -ENOMEM leaves p without futures. */
static int replay_futures(struct engine *e, struct pool *p, const struct rpool *rp)
{
	struct future **v = rp->nf ? calloc(rp->nf, sizeof(*v)) : NULL;
	if (rp->nf && !v)
		return -ENOMEM;
	p->fut = v;
	p->capfut = rp->nf;
	for (size_t k = 0; k < rp->nf; k++) {
		struct future *f = fut_restore(e, p, k + 1, &rp->f[k]);
		if (!f)
			break;
		p->fut[p->nfut++] = f;
	}
	if (p->nfut)
		p->first_submit = mono_now();
	for (size_t k = 0; k < rp->ndone; k++) {
		struct future *f = rp->done[k] ? fut_get(p, rp->done[k]) : NULL;
		if (f && !fut_final(f))
			apply_final(e, p, f, rp->f[rp->done[k] - 1].final);
	}
	for (size_t k = 0; k < p->nfut; k++) {
		struct future *f = p->fut[k];
		if (!fut_final(f))
			replay_unfinished(e, p, f, &rp->f[k]);
		else if (!rp->f[k].final)   /* its line no longer parses */
			record_final(e, p, f);
	}
	return 0;
}

static size_t pool_replay_apply(struct engine *e, struct pool_replay *r)
{
	size_t made = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct rpool *rp = &r->p[i];
		uint64_t id;
		bool paused = false, shut = false;
		if (rp->removed || replay_pool_make(e, rp, &id, &paused, &shut) < 0)
			continue;
		made++;
		pthread_rwlock_rdlock(&e->reap_lock);
		pthread_mutex_lock(&e->lock);
		struct pool *p = pool_by_id(e, id);
		if (replay_futures(e, p, rp) == 0) {
			if (shut && p->state == POOL_RUNNING)
				p->state = POOL_SHUTDOWN;
			if (rp->halted_why) {   /* it stays halted: nothing is queued again */
				p->halted = true;
				p->halt_why = strdup(rp->halted_why);
			}
			p->paused = paused;
			if (p->queued && p->ex->workers)
				p->ex->workers(e, p);   /* they start; nothing runs until done */
			maybe_close(e, p);
			engine_notify_locked(e, OBJ_POOL, p->id);
		}
		pthread_mutex_unlock(&e->lock);
		pthread_rwlock_unlock(&e->reap_lock);
	}
	return made;
}

/* The restore is done (journaling again): restored pools run.  A future
 * that ended while journaling was off would have left no output file. */
static void pool_replay_done(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	for (struct pool *p = e->pools->first; p; p = p->next) {
		if (!p->held)
			continue;
		p->held = false;
		if (p->ex->resume)
			p->ex->resume(e, p);
		pool_dispatch(e, p);
	}
	pthread_mutex_unlock(&e->lock);
}

static void *replay_new(void) { return pool_replay_new(); }
static int replay_record(void *r, const struct jrec *rec, char *line)
{
	return pool_replay_record(r, rec, line);
}
static size_t replay_apply(struct engine *e, void *r) { return pool_replay_apply(e, r); }
static void replay_free(void *r) { pool_replay_free(r); }

const struct journal_client pools_journal = {
	.render = pool_render_state,
	.output_known = pool_output_known,
	.replay_new = replay_new,
	.replay_record = replay_record,
	.replay_apply = replay_apply,
	.replay_free = replay_free,
	.replay_done = pool_replay_done,
};
