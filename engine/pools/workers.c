/* workers.c - the local executor's workers: a slot per worker (a process
 * each, or the threads of one host for a thread pool), started, attached,
 * retired and replaced; what their hosts say (host_ops); future timeouts.
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
#include "exec/exec.h"


unsigned live_slots(const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i] && !p->slots[i]->retiring)
			n++;
	return n;
}

static struct pslot *slot_new(struct pool *p, unsigned n)
{
	if (n > p->nslots) {
		struct pslot **v = realloc(p->slots, n * sizeof(*v));
		if (!v)
			return NULL;
		for (size_t i = p->nslots; i < n; i++)
			v[i] = NULL;
		p->slots = v;
		p->nslots = n;
	}
	struct pslot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->n = n;
	p->slots[n - 1] = s;
	return s;
}

static void slot_free(struct pool *p, struct pslot *s)
{
	p->slots[s->n - 1] = NULL;
	free(s);
}

/* The first free slot number: numbers are reused so workers/1..N stay dense. */
static unsigned free_slot_number(const struct pool *p)
{
	for (size_t i = 0; i < p->nslots; i++)
		if (!p->slots[i])
			return (unsigned)i + 1;
	return (unsigned)p->nslots + 1;
}

static struct host *host_new(struct engine *e, struct pool *p, unsigned nslots)
{
	char gil[2] = { p->gil ? '1' : '0', 0 }, deftime[32], count[16];
	snprintf(deftime, sizeof(deftime), "%lld", (long long)e->cfg.default_time_ms);
	snprintf(count, sizeof(count), "%u", nslots);
	char *argv[] = { "pcfs-worker", "pool", gil, deftime, count, NULL };
	int sock;
	const struct cred *drop;
	char why[256];
	if (pool_run_as(e, p, &drop, why, sizeof(why)) < 0) {
		log_add(e, LOG_LVL_ERROR, "pool %s: no worker started: %s", p->name, why);
		return NULL;
	}
	/* a pool with a cgroup: its workers join it before they run */
	struct cg_join join;
	if (p->cg && cgroup_group_join(e, p->cg, &join) < 0) {
		log_add(e, LOG_LVL_ERROR, "pool %s: no worker started: its cgroup cannot be "
			"joined", p->name);
		return NULL;
	}
	pid_t pid = spawn_host(e, argv, NULL, NULL, drop, WIRE_NO_NICE, p->cg ? &join : NULL,
			       &sock);
	if (p->cg)
		cgroup_join_close(&join);
	if (pid < 0) {
		log_add(e, LOG_LVL_ERROR, "pool %s: cannot start a worker: %s", p->name,
			strerror((int)-pid));
		return NULL;
	}
	struct host *h = host_add(e, pid, sock, &pool_host_ops, p);
	if (!h) {
		kill(pid, SIGKILL);   /* reaped as a stranger */
		close(sock);
	}
	return h;
}

void worker_shows(struct engine *e, struct pool *p, struct pslot *s, const struct future *f)
{
	struct task *t = task_find(e, s->task);
	if (!t)
		return;
	if (f && f->name)
		snprintf(t->name, sizeof(t->name), "%s", f->name);
	else
		snprintf(t->name, sizeof(t->name), "%.50s.%u", p->name, s->n);
}

/* Attach a worker task to slot s of host h. */
static bool slot_attach(struct engine *e, struct pool *p, struct pslot *s, struct host *h,
			enum task_kind kind)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "pool %s worker %u", p->name, s->n);
	struct task *t = task_new_worker(e, kind, cmd);
	if (!t)
		return false;
	t->pid = h->pid;
	t->host = h;
	t->pool = p;
	t->slot = s->n;
	t->owner = p->owner;
	h->live++;
	s->host = h;
	s->task = t->id;
	worker_shows(e, p, s, NULL);
	task_started(e, t);   /* the rooms hear of it as of any task (notice: an event) */
	return true;
}

/* Bring the pool up to `target` live slots (lazily: on the first submit). */
void ensure_workers(struct engine *e, struct pool *p)
{
	unsigned have = live_slots(p);
	if (have >= p->target || p->state == POOL_CLOSED)
		return;
	unsigned need = p->target - have;
	if (p->type == TASK_PROCESS) {
		for (unsigned i = 0; i < need; i++) {
			struct host *h = host_new(e, p, 1);
			struct pslot *s = h ? slot_new(p, free_slot_number(p)) : NULL;
			if (!s || !slot_attach(e, p, s, h, TASK_PROCESS)) {
				if (s)
					slot_free(p, s);
				if (h)
					kill(h->pid, SIGKILL);   /* reaped; its host record goes */
				return;
			}
		}
		return;
	}
	/* A thread pool: one host, started with its slots, resized with
	 * W_PW_SLOTS N, which means "slots 1..N".  Slots still retiring are taken
	 * back first (the host ends them, says W_PW_GONE, starts them again and
	 * says W_PW_READY), so numbers stay dense and N is the highest in use. */
	struct host *h = p->thread_host;
	bool fresh = !h || h->sock < 0;
	for (size_t i = 0; !fresh && need && i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		if (s && s->retiring) {
			s->retiring = false;
			s->ready = false;
			need--;
		}
	}
	unsigned total = 0;
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i])
			total = (unsigned)i + 1;
	total += need;
	if (fresh) {
		h = host_new(e, p, total);
		if (!h)
			return;
		p->thread_host = h;
	}
	for (unsigned i = 0; i < need; i++) {
		struct pslot *s = slot_new(p, free_slot_number(p));
		if (!s || !slot_attach(e, p, s, h, TASK_THREAD)) {
			if (s)
				slot_free(p, s);
			break;
		}
	}
	if (!fresh)
		wire_send(h->sock, W_PW_SLOTS, 0, total, 0, NULL, 0, NULL, 0);
}

/* End a slot's worker task and forget the slot. */
static void slot_remove(struct engine *e, struct pool *p, struct pslot *s)
{
	struct task *t = task_find(e, s->task);
	if (t && task_live(t)) {
		if (s->host && s->host->live)
			s->host->live--;
		task_ended(e, t, TS_EXITED, 0);
	}
	slot_free(p, s);
}

/* Let a process slot's worker go: EOF makes the host exit; the reaper ends
 * its task (the host record outlives the slot until reaped). */
static void process_slot_release(struct pool *p, struct pslot *s)
{
	if (s->host && s->host->sock >= 0) {
		close(s->host->sock);
		s->host->sock = -1;
	}
	s->host = NULL;
	p->slots[s->n - 1] = NULL;
	free(s);
}

/* Retire a slot: at once if it holds nothing, else once its running future
 * is over and its queue is back in the pool's.  A thread slot's host is told
 * by W_PW_SLOTS (retire_over_target) and says W_PW_GONE; a process slot
 * holding futures is told W_PW_SLOTS 0 here, and goes at its W_PW_GONE. */
static void slot_retire(struct engine *e, struct pool *p, struct pslot *s)
{
	(void)e;
	s->retiring = true;
	if (p->type != TASK_PROCESS || s->emptying)
		return;   /* thread slots leave when the host says W_PW_GONE */
	if (!s->running && !s->nq) {
		process_slot_release(p, s);
		return;
	}
	if (s->host && s->host->sock >= 0 &&
	    wire_send(s->host->sock, W_PW_SLOTS, 0, 0, 0, NULL, 0, NULL, 0) == 0)
		s->emptying = true;
}

void retire_over_target(struct engine *e, struct pool *p)
{
	unsigned live = live_slots(p);
	for (size_t i = p->nslots; i-- > 0 && live > p->target;) {
		struct pslot *s = p->slots[i];
		if (!s || s->retiring)
			continue;
		slot_retire(e, p, s);
		live--;
	}
	if (p->type == TASK_THREAD && p->thread_host && p->thread_host->sock >= 0) {
		unsigned keep = 0;
		for (size_t i = 0; i < p->nslots; i++)
			if (p->slots[i] && !p->slots[i]->retiring)
				keep = (unsigned)i + 1;
		wire_send(p->thread_host->sock, W_PW_SLOTS, 0, keep, 0, NULL, 0, NULL, 0);
	}
}

/* ---- host messages (engine thread) ------------------------------------------ */

static struct pslot *slot_on_host(struct pool *p, struct host *h, unsigned hslot)
{
	if (p->type == TASK_THREAD)
		return hslot >= 1 && hslot <= p->nslots && p->slots[hslot - 1] &&
		       p->slots[hslot - 1]->host == h ? p->slots[hslot - 1] : NULL;
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i] && p->slots[i]->host == h)
			return p->slots[i];
	return NULL;
}

/* Future id of pool p if host h holds it (queued on one of its slots, or
 * running there), with that slot in *sp. */
static struct future *fut_on_host(struct pool *p, struct host *h, uint64_t id, struct pslot **sp)
{
	struct future *f = fut_get(p, id);
	unsigned n = !f ? 0 : f->at_host ? f->hslot : f->state == FUT_RUNNING ? f->slot : 0;
	struct pslot *s = n >= 1 && n <= p->nslots ? p->slots[n - 1] : NULL;
	if (!s || s->host != h || (!f->at_host && s->running != f))
		return NULL;
	*sp = s;
	return f;
}

/* The slot has nothing left: finish retiring it if it is. */
static void slot_settled(struct engine *e, struct pool *p, struct pslot *s)
{
	if (s->retiring && !s->running && !s->nq)
		slot_retire(e, p, s);
}

/* W_PW_REVOKED: f was taken off its slot's queue (taken), or had started. */
static void future_revoked(struct engine *e, struct pool *p, struct pslot *s, struct future *f,
			   bool taken)
{
	if (taken)
		fut_cg_leave(e, p, s, f);   /* its worker runs others again */
	if (!taken) {
		f->revoking = false;   /* too late: its W_PW_START came first */
		f->cancel_wanted = false;
	} else if (f->cancel_wanted) {
		slot_unlink(p, s, f);
		f->cancel_wanted = false;
		cancel_pending(e, p, f, "cancelled");
	} else {
		slot_unhand(p, s, f);
	}
	pthread_cond_broadcast(&e->cond);   /* a cancel may wait for this answer */
	notify_future(e, p, f);
	p->dispatch_pending = true;
}

/* Everything slot s was handed and has not started goes back in the queue. */
static void slot_give_back(struct pool *p, struct pslot *s)
{
	while (s->qhead)
		slot_unhand(p, s, s->qhead);
}

static void pool_host_message(struct engine *e, struct host *h, const struct wire_hdr *m,
		       const char *payload, size_t len)
{
	struct pool *p = h->pool;
	struct pslot *s;
	struct future *f;
	switch (m->type) {
	case W_PW_READY:
		s = slot_on_host(p, h, (unsigned)m->a);
		if (!s)
			break;
		s->ready = true;
		p->failed_starts = 0;
		struct task *t = task_find(e, s->task);
		if (t && t->kind == TASK_THREAD)
			t->tid = (pid_t)m->b;
		p->dispatch_pending = true;
		break;
	case W_PW_START:
		f = fut_on_host(p, h, m->id, &s);
		if (f && f->at_host)
			future_started(e, p, s, f);
		break;
	case W_PW_OUTPUT:
		/* a refused RUN's reason comes before its W_PW_DONE, unstarted */
		f = fut_on_host(p, h, m->id, &s);
		if (f && (m->a == 1 || m->a == 2)) {
			out_append(&f->out[m->a], payload, len, e->cfg.output_max);
			notify_future(e, p, f);
		}
		break;
	case W_PW_CHILD:
		f = fut_on_host(p, h, m->id, &s);
		if (f && !f->at_host)
			f->child = (pid_t)m->a;
		break;
	case W_PW_DONE:
		f = fut_on_host(p, h, m->id, &s);
		if (!f)
			break;
		if (f->at_host)
			future_started(e, p, s, f);   /* refused by the host: it ends at once */
		f->cpu_us = m->b;
		run_ended(e, p, s, f, (int)m->a, NULL);
		slot_settled(e, p, s);
		p->dispatch_pending = true;
		break;
	case W_PW_REVOKED:
		f = fut_on_host(p, h, m->id, &s);
		/* b = 0: a retired slot's queue, given back unasked */
		if (f && f->at_host && (m->b == 0 || (uint64_t)m->b == f->ticket)) {
			future_revoked(e, p, s, f, m->a == 1);
			slot_settled(e, p, s);
		}
		break;
	case W_PW_GONE:
		s = slot_on_host(p, h, (unsigned)m->a);
		if (!s)
			break;
		if (s->retiring) {
			slot_give_back(p, s);   /* the host gave it all back; never strand any */
			p->dispatch_pending = true;
		}
		if (s->retiring && !s->running && p->type == TASK_PROCESS)
			process_slot_release(p, s);
		else if (s->retiring && !s->running)
			slot_remove(e, p, s);
		else
			s->ready = false;   /* taken back: it says READY when it is up again */
		break;
	default:
		break;
	}
}

static void pool_host_drained(struct engine *e, struct pool *p)
{
	if (p->dispatch_pending)
		pool_dispatch(e, p);
	maybe_close(e, p);
}

/* A host died (or exited after retiring).  Its running futures fail (or are
 * retried); those queued on its slots go back to the pool's queue; slots
 * the pool still wants get a new worker. */
static void pool_host_died(struct engine *e, struct host *h, const char *why)
{
	struct pool *p = h->pool;
	if (!p)
		return;
	h->pool = NULL;
	if (p->thread_host == h)
		p->thread_host = NULL;
	bool was_ready = false;
	for (size_t i = 0; i < p->nslots; i++) {
		struct pslot *s = p->slots[i];
		if (!s || s->host != h)
			continue;
		was_ready |= s->ready;
		slot_give_back(p, s);
		if (s->running) {
			char msg[320];
			snprintf(msg, sizeof(msg), "worker %u died: %s", s->n,
				 why ? why : "it exited");
			run_ended(e, p, s, s->running, -SIGKILL, msg);
		}
		slot_free(p, s);
	}
	pthread_cond_broadcast(&e->cond);   /* a cancel waiting on one of them */
	/* Replace lost workers, but not a worker that cannot even start: that
	 * would be a fork loop.  After three such deaths in a row, stop and say
	 * so; the next submit or resize tries again. */
	if (e->stopping) {
		/* unmounting: workers die on purpose, nothing replaces them */
	} else if (why && !was_ready && ++p->failed_starts >= 3) {
		log_add(e, LOG_LVL_ERROR, "pool %s: workers die before they start (%s); "
			"not replacing them until the next submit or resize", p->name, why);
	} else if (p->state != POOL_CLOSED && p->ex == &local_executor) {
		/* (not once the pool went to Slurm: its retired workers ending
		 * would bring up `workers=` local ones that nothing uses) */
		ensure_workers(e, p);
	}
	pool_dispatch(e, p);
	maybe_close(e, p);
	engine_notify_locked(e, OBJ_POOL, p->id);
}

void pool_timer_fired(struct engine *e, uint64_t key)
{
	struct pool *p = pool_by_id(e, FUTURE_POOL(key));
	if (p && FUTURE_ID(key) == 0) {   /* the pool's own: rebalance */
		uint64_t ticks;
		if (read(p->balance_fd, &ticks, sizeof(ticks)) == sizeof(ticks))
			pool_dispatch(e, p);
		return;
	}
	struct future *f = p ? fut_get(p, FUTURE_ID(key)) : NULL;
	if (!f || f->timer_fd < 0 || f->state != FUT_RUNNING)
		return;
	uint64_t ticks;
	if (read(f->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	/* a timeout's TERM then KILL; a halt=now sent its TERM itself */
	int sig = f->timer_stage == 0 ? SIGTERM : SIGKILL;
	if (!f->halted)
		f->timed_out = true;
	if (p->ex->signal(e, p, f, sig) < 0)
		return;
	if (f->timer_stage++ == 0)
		arm_timer_ms(f->timer_fd, e->cfg.kill_grace_ms);
	else
		engine_close_watched(e, &f->timer_fd);
}

/* Shut down and drained: let the workers go. */

/* Let every idle worker go (busy ones go when their future ends). */
void retire_all(struct engine *e, struct pool *p)
{
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i])
			slot_retire(e, p, p->slots[i]);
	if (p->thread_host && p->thread_host->sock >= 0) {
		close(p->thread_host->sock);   /* the host exits; its slot tasks end */
		p->thread_host->sock = -1;
	}
	p->thread_host = NULL;
}

const struct host_ops pool_host_ops = {
	.what = "pool worker",
	.killed_whole = true,    /* its futures end with it */
	.message = pool_host_message,
	.died = pool_host_died,
	.drained = pool_host_drained,
};

/* ---- the local executor ----------------------------------------------------------- */

static void local_workers(struct engine *e, struct pool *p)
{
	if (p->nfut && p->state != POOL_CLOSED)
		ensure_workers(e, p);
	retire_over_target(e, p);
}

static void local_load(const struct pool *p, unsigned *ready, unsigned *busy)
{
	for (size_t i = 0; i < p->nslots; i++) {
		if (!p->slots[i] || p->slots[i]->retiring)
			continue;
		*ready += p->slots[i]->ready;
		*busy += p->slots[i]->running != NULL;
	}
}

/* The worker running f signals f's run (its child, or its thread). */
static int local_signal(struct engine *e, struct pool *p, struct future *f, int sig)
{
	struct pslot *s = p->slots[f->slot - 1];
	return s && s->host && s->host->sock >= 0
		       ? wire_send(s->host->sock, W_PW_STOP, f->id, sig, 0, NULL, 0, NULL, 0)
		       : -ESRCH;
}

const struct executor local_executor = {
	.name = "local",
	.dispatch = local_dispatch,
	.workers = local_workers,
	.retire_all = retire_all,
	.load = local_load,
	.signal = local_signal,
};
