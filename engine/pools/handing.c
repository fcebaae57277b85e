/* handing.c - the local executor's pipelining: futures handed to slots
 * ahead (W_PW_RUN batches), taken back (W_PW_REVOKE), and rebalanced between
 * slots as the pool's pace is learnt.  See pool.c's opening comment.
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
#include "channels/channels.h"

static int ask_back(struct pool *p, struct future *f);

/* stdin=/stdout= on a pool line: the daemon makes the channel's ends (as
 * for a spawned task) and hands the child's ends to the worker with the
 * W_PW_RUN (b: 1 stdin, 2 stdout, in that order). */
static int wire_future(struct engine *e, struct pool *p, struct future *f, int fds[2], int *nfds,
		       int *flags, char *err, size_t errlen)
{
	struct chan_wiring w;
	int rc = chan_wire_prepare_locked(e, f->stdin_chan, f->stdout_chan, &p->owner, &w, err,
					  errlen);
	int out[2] = { -1, -1 };
	*nfds = *flags = 0;
	if (rc == 0 && f->stdout_chan && w.child_stdout < 0 && pipe2(out, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc < 0) {
		chan_wire_release(&w);
		return rc;
	}
	if (w.child_stdin >= 0) {
		fds[(*nfds)++] = w.child_stdin;
		w.child_stdin = -1;
		*flags |= 1;
	}
	if (w.child_stdout >= 0) {   /* a fifo: the child writes to it itself */
		fds[(*nfds)++] = w.child_stdout;
		w.child_stdout = -1;
		*flags |= 2;
		chan_wire_attach(e, 0, &w, -1);
	} else if (out[0] >= 0) {
		fcntl(out[0], F_SETFL, O_NONBLOCK);
		if (!chan_wire_attach(e, 0, &w, out[0]))
			close(out[0]);   /* the channel went away: the child writes to nothing */
		fds[(*nfds)++] = out[1];
		*flags |= 2;
	} else {
		chan_wire_attach(e, 0, &w, -1);
	}
	chan_wire_release(&w);
	return 0;
}

/* ---- handing futures to slots ----------------------------------------------- */

/* [pools] ahead: the work (at the pool's recent pace) a slot is handed ahead */
static int64_t ahead_ns(const struct engine *e)
{
	return e->cfg.pool_ahead_ms * 1000000;
}
#define RUN_BATCH_BYTES 65536

/* W_PW_RUNs being built, for one host at a time (engine lock held). */
struct run_sender {
	struct wire_batch b;
	struct host *host;             /* the batch's */
	struct future **fut;           /* the futures in it: handed back if it cannot go */
	size_t nfut, capfut;
	struct strbuf pl;              /* one RUN's payload */
};

static struct run_sender *run_sender(struct engine *e)
{
	if (!e->pools->runs) {
		struct run_sender *r = calloc(1, sizeof(*r));
		if (r && !(r->b.buf = malloc(RUN_BATCH_BYTES))) {
			free(r);
			r = NULL;
		}
		if (r)
			r->b.cap = RUN_BATCH_BYTES;
		e->pools->runs = r;
	}
	return e->pools->runs;
}

void run_sender_free(struct engine *e)
{
	if (!e->pools->runs)
		return;
	free(e->pools->runs->b.buf);
	free(e->pools->runs->fut);
	sb_free(&e->pools->runs->pl);
	free(e->pools->runs);
	e->pools->runs = NULL;
}

/* The slot number the host knows a slot by. */
static unsigned host_slot(const struct pool *p, const struct pslot *s)
{
	return p->type == TASK_THREAD ? s->n : 1;
}

/* Off slot s's queue (f is at_host there). */
void slot_unlink(struct pool *p, struct pslot *s, struct future *f)
{
	for (struct future **pp = &s->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->qnext) {
		if (*pp != f)
			continue;
		*pp = f->qnext;
		if (s->qtail == f)
			s->qtail = prev;
		break;
	}
	f->qnext = NULL;
	f->at_host = false;
	f->revoking = false;
	s->nq--;
	p->prefetched--;
}

/* Take f back from its slot into the pool's queue (it never started). */
void slot_unhand(struct pool *p, struct pslot *s, struct future *f)
{
	slot_unlink(p, s, f);
	f->cancel_wanted = false;
	/* in id order among what waits there: it was submitted after those
	 * it passed on the way */
	fut_enqueue_by_id(p, f);
}

/* Send the batch; if it cannot go, its futures go back to the queue (a
 * dying host's death handling, or its next message, tries again). */
static void runs_flush(struct engine *e, struct pool *p)
{
	struct run_sender *r = e->pools->runs;
	if (!r || !r->host)
		return;
	int rc = r->host->sock >= 0 ? wire_batch_send(r->host->sock, &r->b) : -EPIPE;
	r->b.len = 0;
	r->b.n = 0;
	if (rc < 0) {
		for (size_t i = r->nfut; i-- > 0;) {
			struct future *f = r->fut[i];
			struct pslot *s = f->at_host && f->hslot ? p->slots[f->hslot - 1] : NULL;
			if (s)
				slot_unhand(p, s, f);
		}
		p->dispatch_pending = true;
	}
	r->nfut = 0;
	r->host = NULL;
}

/* The RUN payload: line \0 cwd \0 {K=V \0}*, the K=V being the whole
 * environment of an exec/sh child: its writer's (less what env=-K removes;
 * none with env=-), its env=, and PCFS_*. */
static int run_payload(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
		       struct strbuf *pl)
{
	char *edits[SPEC_ENV_MAX];
	size_t nedits = 0;
	for (const char *kv = f->env; kv && kv < f->env + f->envlen && nedits < SPEC_ENV_MAX;
	     kv += strlen(kv) + 1)
		edits[nedits++] = (char *)kv;
	char **env, why[256];
	if (origin_env_edit(f->origin, f->env_clean, edits, nedits, &env, why, sizeof(why)) < 0)
		return -ENOMEM;   /* readable at submit: only memory can fail now */
	sb_reset(pl);
	fut_line(f, s->n, pl);   /* a template's {%}: this slot */
	sb_addc(pl, '\0');
	sb_add(pl, f->cwd ? f->cwd : "", strlen(f->cwd ? f->cwd : "") + 1);
	for (char **kv = env; *kv; kv++)
		sb_add(pl, *kv, strlen(*kv) + 1);
	free(env);
	sb_printf(pl, "PCFS_ID=%llu", (unsigned long long)f->id);
	sb_addc(pl, '\0');
	sb_printf(pl, "PCFS_SLOT=%u", s->n);
	sb_addc(pl, '\0');
	sb_printf(pl, "PCFS_POOL=%s", p->name);
	sb_addc(pl, '\0');
	sb_printf(pl, "PCFS_MOUNT=%s", e->mountpoint);
	sb_addc(pl, '\0');
	return sb_error(pl);
}

/* A future with stdin=/stdout= channels: its RUN carries descriptors, so it
 * goes alone (after the batch before it, to keep the order). */
/* f fails without having run (sbatch refused it, its channel is gone): exit
 * status 1, as a lost run's, with the reason in its error. */
void fut_fail_unrun(struct engine *e, struct pool *p, struct future *f, const char *why)
{
	f->state = FUT_FAILED;
	f->exitcode = 1;
	fut_set_error(f, "%s", why);
	record_final(e, p, f);
}

static int send_wired_run(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
			  const struct strbuf *pl)
{
	int fds[2], nfds = 0, flags = 0;
	char why[256];
	int rc = wire_future(e, p, f, fds, &nfds, &flags, why, sizeof(why));
	if (rc == -ENOENT || rc == -EACCES) {
		/* its channel is gone, or is now another's: it fails, never
		 * to run on a channel its owner may not use */
		slot_unlink(p, s, f);
		f->cancel_wanted = false;
		fut_fail_unrun(e, p, f, why);
		p->dispatch_pending = true;   /* the slot has room again */
		return 0;
	}
	if (rc == 0)
		rc = wire_send(s->host->sock, W_PW_RUN, f->id, host_slot(p, s), flags, pl->buf,
			       pl->len, nfds ? fds : NULL, nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);   /* the worker has its copies */
	return rc;
}

/* Put f (just dequeued) on slot s's queue; its RUN goes by send_handed. */
void slot_hand(struct pool *p, struct pslot *s, struct future *f)
{
	f->at_host = true;
	f->revoking = f->cancel_wanted = false;
	f->hslot = s->n;
	f->ticket = ++p->tickets;
	f->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = f;
	else
		s->qhead = f;
	s->qtail = f;
	s->nq++;
	p->prefetched++;
}

/* Add f's RUN to the batch (its host's), or send it alone if it carries
 * descriptors.  Returns 0 or -errno (f is not on its way). */
static int send_run(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	struct run_sender *r = e->pools->runs;
	int rc = run_payload(e, p, s, f, &r->pl);
	if (rc < 0)
		return rc;
	if (f->stdin_chan || f->stdout_chan) {
		runs_flush(e, p);
		return send_wired_run(e, p, s, f, &r->pl);
	}
	if (r->host != s->host)
		runs_flush(e, p);
	if (r->nfut == r->capfut) {
		size_t c = r->capfut ? r->capfut * 2 : 64;
		struct future **v = realloc(r->fut, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->fut = v;
		r->capfut = c;
	}
	if (!wire_batch_add(&r->b, W_PW_RUN, f->id, host_slot(p, s), 0, r->pl.buf, r->pl.len)) {
		runs_flush(e, p);
		/* too big for any batch (a line near SPEC_LINE_MAX, a large env=):
		 * it goes alone, as a message may be up to WIRE_MAX */
		if (!wire_batch_add(&r->b, W_PW_RUN, f->id, host_slot(p, s), 0, r->pl.buf, r->pl.len))
			return wire_send(s->host->sock, W_PW_RUN, f->id, host_slot(p, s), 0, r->pl.buf,
					 r->pl.len, NULL, 0);
	}
	r->host = s->host;
	r->fut[r->nfut++] = f;
	return 0;
}

/* Send the RUNs of the futures on s's queue from f on (those just handed). */
static void send_handed(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	while (f) {
		struct future *next = f->qnext;
		char why[256];
		if (fut_limited(f) && fut_cg_enter(e, p, s, f, why, sizeof(why)) < 0) {
			/* its limits cannot be had: it fails, never to run unbounded */
			slot_unlink(p, s, f);
			fut_fail_unrun(e, p, f, why);
			p->dispatch_pending = true;
		} else if (send_run(e, p, s, f) < 0) {
			/* not handed after all: it waits in the queue for the next try */
			slot_unhand(p, s, f);
			p->dispatch_pending = true;
		}
		f = next;
	}
}

static int64_t ns_between(struct timespec a, struct timespec b)
{
	return (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
}

/* How many futures slot s may hold (running + queued) now: see the top. */
static unsigned slot_depth(struct engine *e, const struct pool *p, const struct pslot *s,
			   struct timespec now)
{
	unsigned max = e->cfg.pool_depth;
	int64_t ahead = ahead_ns(e);
	if (max <= 1 || ahead <= 0 || p->avg_run_ns <= 0)
		return 1;
	if (s->running && ns_between(s->running->started, now) > ahead)
		return 1;
	int64_t d = 1 + ahead / p->avg_run_ns;
	return d < (int64_t)max ? (unsigned)d : max;
}

static void arm_future_timer(struct engine *e, struct pool *p, struct future *f)
{
	if (f->timeout_ms == SPEC_UNSET)
		return;
	f->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (f->timer_fd < 0)
		return;
	f->timer_stage = 0;
	arm_timer_ms(f->timer_fd, f->timeout_ms);
	engine_watch(e, f->timer_fd, WATCH_FTIMER, FUTURE_KEY(p->id, f->id));
}

static int64_t running_for(const struct pslot *s, struct timespec now)
{
	return s->running ? ns_between(s->running->started, now) : 0;
}

/* Futures on a slot's queue behind a future that has run longer than the
 * budget are taken back while another slot has nothing to do: they run
 * there instead of waiting.  If the running one is younger, look again
 * when it reaches the budget (a pool timer). */
void pool_rebalance(struct engine *e, struct pool *p, struct timespec now)
{
	bool idle = false;
	int64_t soonest = -1, ahead = ahead_ns(e);
	for (size_t i = 0; i < p->nslots && !idle; i++) {
		struct pslot *s = p->slots[i];
		idle = s && s->ready && !s->retiring && !s->running && !s->nq;
	}
	if (!idle)
		return;
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		if (!s || !s->nq || !s->running)
			continue;
		int64_t ran = running_for(s, now);
		if (ran > ahead) {
			for (struct future *f = s->qhead; f; f = f->qnext)
				ask_back(p, f);
		} else if (soonest < 0 || ahead - ran < soonest) {
			soonest = ahead - ran;
		}
	}
	if (soonest < 0)
		return;
	if (p->balance_fd < 0) {
		p->balance_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (p->balance_fd < 0)
			return;
		engine_watch(e, p->balance_fd, WATCH_FTIMER, FUTURE_KEY(p->id, 0));
	}
	struct itimerspec its = { .it_value = { .tv_sec = soonest / 1000000000,
						.tv_nsec = soonest % 1000000000 + 100000 } };
	if (its.it_value.tv_nsec >= 1000000000) {
		its.it_value.tv_sec++;
		its.it_value.tv_nsec -= 1000000000;
	}
	timerfd_settime(p->balance_fd, 0, &its, NULL);
}

/* Hand queued futures to slots with room, one per slot in turn (so that
 * futures next to each other in the queue run side by side), then send each
 * slot's RUNs, a host's together.  A slot is topped up only once it has run
 * down to half its depth, so RUNs go out in batches. */
void local_dispatch(struct engine *e, struct pool *p)
{
	if (!run_sender(e))
		return;
	struct timespec now = mono_now();
	struct fill {
		struct pslot *s;
		unsigned want;
		struct future *first;
		bool idle;             /* it holds nothing: a limited future may go there */
	} stack_fill[16], *fill;
	size_t nfill = 0;
	fill = p->nslots <= 16 ? stack_fill : malloc(p->nslots * sizeof(*fill));
	if (!fill)
		return;
	for (size_t i = 0; i < p->nslots && p->queued; i++) {
		struct pslot *s = p->slots[i];
		if (!s || !s->ready || s->retiring || !s->host || s->host->sock < 0 || slot_alone(s))
			continue;
		unsigned depth = slot_depth(e, p, s, now);
		unsigned held = s->nq + (s->running != NULL);
		if (held >= depth || (held > 0 && held > depth / 2))
			continue;
		fill[nfill++] = (struct fill){ s, depth - held, NULL, held == 0 };
	}
	for (bool more = true; more && p->queued;) {
		more = false;
		for (size_t i = 0; i < nfill && p->queued; i++) {
			if (!fill[i].want)
				continue;
			/* a future with limits goes to an idle worker alone; until
			 * one is free, what is queued behind it waits too */
			bool alone = fut_limited(fut_queue_first(p));
			if (alone && (!fill[i].idle || fill[i].first))
				continue;
			struct future *f = fut_dequeue(p);
			slot_hand(p, fill[i].s, f);
			if (!fill[i].first)
				fill[i].first = f;
			if (alone)
				fill[i].want = 1;
			more |= --fill[i].want > 0;
		}
	}
	for (size_t i = 0; i < nfill; i++)
		send_handed(e, p, fill[i].s, fill[i].first);
	runs_flush(e, p);
	if (fill != stack_fill)
		free(fill);
	if (!p->queued)
		pool_rebalance(e, p, now);
}

/* Slot s says f starts now. */
void future_started(struct engine *e, struct pool *p, struct pslot *s, struct future *f)
{
	slot_unlink(p, s, f);
	f->cancel_wanted = false;
	f->state = FUT_RUNNING;
	f->attempts++;
	f->slot = s->n;
	f->task = s->task;
	f->child = 0;
	f->started = mono_now();
	s->running = f;
	p->running++;
	worker_shows(e, p, s, f);
	journal_running(e, p, f);
	arm_future_timer(e, p, f);
	notice_of(e, p, f, false);
	notify_future(e, p, f);
	/* A slot that went idle before this start was told found nothing
	 * running here to time, and armed no look again: look now. */
	if (s->nq)
		pool_rebalance(e, p, f->started);
}

/* A future's run ended (code >= 0 exit status, < 0 signal); decide its fate. */

void run_ended(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
		      int code, const char *why)
{
	char verdict[160];
	fut_run_over(e, p, s, f, code, &why, verdict, sizeof(verdict));
	s->running = NULL;
	p->running--;
	worker_shows(e, p, s, NULL);
	/* the pace that decides how far ahead slots are handed futures */
	int64_t ns = ns_between(f->started, mono_now());
	if (ns < 1)
		ns = 1;
	p->avg_run_ns = p->avg_run_ns ? p->avg_run_ns + (ns - p->avg_run_ns) / 8 : ns;
	future_ended(e, p, f, code, why);
}


/* Ask for every future handed to a slot back (to cancel it, or into the
 * queue).  Answers come as W_PW_REVOKED; what had started runs on. */
void revoke_handed(struct pool *p, bool cancel)
{
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		for (struct future *f = s ? s->qhead : NULL; f; f = f->qnext) {
			if (ask_back(p, f) == 0 && cancel)
				f->cancel_wanted = true;
		}
	}
}

/* A future that waits outranks futures handed to slots ahead of it: they
 * come back (W_PW_REVOKE) and go out again in priority order, so a
 * priority does not wait behind a pipeline of lower ones.  Only pools that
 * use priorities pay for the walk, at most workers x depth futures. */
void revoke_outranked(struct pool *p)
{
	int top;
	if (!p->prio_mixed || !p->prefetched || queue_highest(p, &top) < 0)
		return;
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		for (struct future *f = s ? s->qhead : NULL; f; f = f->qnext)
			if (f->priority < top && !f->cancel_wanted)
				ask_back(p, f);
	}
}

static int ask_back(struct pool *p, struct future *f)
{
	struct pslot *s = p->slots[f->hslot - 1];
	if (f->revoking)
		return 0;
	if (!s || !s->host || s->host->sock < 0)
		return -ESRCH;   /* its host is going: its death gives f back */
	int rc = wire_send(s->host->sock, W_PW_REVOKE, f->id, host_slot(p, s), (int64_t)f->ticket,
			   NULL, 0, NULL, 0);
	if (rc == 0)
		f->revoking = true;
	return rc;
}

#define CANCEL_WAIT_MS 2000   /* for a worker to answer a revoke */

/* Cancel a future handed to a slot: only its worker knows whether it has
 * started, so ask (W_PW_REVOKE) and wait for the answer, lock released.
 * 0: cancelled; -EBUSY: it started first; -EAGAIN: no answer in time. */
int cancel_at_host(struct engine *e, struct pool *p, struct future *f)
{
	uint64_t pid = p->id, fid = f->id;
	int rc = ask_back(p, f);
	if (rc < 0 && rc != -ESRCH)
		return rc;
	f->cancel_wanted = true;
	struct timespec until = ts_in_ms(CLOCK_REALTIME, CANCEL_WAIT_MS);
	for (;;) {
		int w = pthread_cond_timedwait(&e->cond, &e->lock, &until);
		p = pool_by_id(e, pid);
		f = p ? fut_get(p, fid) : NULL;
		if (!f)
			return -ENOENT;
		if (f->state == FUT_CANCELLED)
			return 0;
		if (f->state != FUT_PENDING)
			return -EBUSY;        /* it started (or ended) first */
		if (!f->at_host) {            /* back in the queue (its worker died) */
			fut_unqueue(p, f);
			cancel_pending(e, p, f, "cancelled");
			maybe_close(e, p);
			return 0;
		}
		if (!f->revoking && !f->cancel_wanted)
			return -EBUSY;        /* the worker said it had started */
		if (w == ETIMEDOUT) {
			f->cancel_wanted = false;   /* if it comes back now, it waits again */
			log_add(e, LOG_LVL_WARN, "pool %s: future %llu: its worker did not answer "
				"the cancel within %d ms", p->name, (unsigned long long)fid,
				CANCEL_WAIT_MS);
			return -EAGAIN;
		}
	}
}

