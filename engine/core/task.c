/* task.c - the task table: every known task by id and by pid, in id order,
 * the live list and the history of ended tasks, and their memory.
 *
 * Everything here runs with `lock` held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static const char *const state_names[] = {
	[TS_STARTING] = "starting", [TS_RUNNING] = "running", [TS_STOPPED] = "stopped",
	[TS_EXITED] = "exited",     [TS_KILLED] = "killed",   [TS_FAILED] = "failed",
	[TS_LOST] = "lost",         [TS_WAITING] = "waiting", [TS_SKIPPED] = "skipped",
};

const char *task_state_name(enum task_state s)
{
	return state_names[s];
}

bool task_state_ended(enum task_state s)
{
	return s == TS_EXITED || s == TS_KILLED || s == TS_FAILED || s == TS_LOST ||
	       s == TS_SKIPPED;
}

bool task_state_has_code(enum task_state s)
{
	return s == TS_EXITED || s == TS_KILLED || s == TS_FAILED;
}

/* ---- tables ---------------------------------------------------------------- */

static size_t id_slot(const struct engine *e, uint64_t id)
{
	return (size_t)(id * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (e->hash_size - 1);
}

static size_t pid_slot(const struct engine *e, pid_t pid)
{
	return (size_t)((uint64_t)pid * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (e->phash_size - 1);
}

struct task *task_find(struct engine *e, uint64_t id)
{
	for (struct task *t = e->hash[id_slot(e, id)]; t; t = t->hnext)
		if (t->id == id)
			return t;
	return NULL;
}

struct task *task_by_pid(struct engine *e, pid_t pid)
{
	for (struct task *t = e->phash[pid_slot(e, pid)]; t; t = t->pnext)
		if (t->pid == pid)
			return t;
	return NULL;
}

static void rehash(struct engine *e)
{
	size_t nsize = e->hash_size * 2;
	struct task **nh = calloc(nsize, sizeof(*nh));
	if (!nh)
		return;             /* chains just get longer */
	struct task **old = e->hash;
	size_t osize = e->hash_size;
	e->hash = nh;
	e->hash_size = nsize;
	for (size_t i = 0; i < osize; i++) {
		for (struct task *t = old[i], *n; t; t = n) {
			n = t->hnext;
			size_t s = id_slot(e, t->id);
			t->hnext = e->hash[s];
			e->hash[s] = t;
		}
	}
	free(old);
}

static void live_link(struct engine *e, struct task *t)
{
	t->lprev = e->live_last;
	t->lnext = NULL;
	if (e->live_last)
		e->live_last->lnext = t;
	else
		e->live_first = t;
	e->live_last = t;
	e->nlive++;
}

void live_unlink(struct engine *e, struct task *t)
{
	if (t->lprev)
		t->lprev->lnext = t->lnext;
	else if (e->live_first == t)
		e->live_first = t->lnext;
	else
		return;             /* not on the list */
	if (t->lnext)
		t->lnext->lprev = t->lprev;
	else
		e->live_last = t->lprev;
	t->lprev = t->lnext = NULL;
	e->nlive--;
}

void task_link(struct engine *e, struct task *t)
{
	if (!task_state_ended(t->state))
		live_link(e, t);
	if (e->ntasks + 1 > e->hash_size)
		rehash(e);
	size_t s = id_slot(e, t->id);
	t->hnext = e->hash[s];
	e->hash[s] = t;
	t->prev = e->last;
	t->next = NULL;
	if (e->last)
		e->last->next = t;
	else
		e->first = t;
	e->last = t;
	e->ntasks++;
}

void task_pid_link(struct engine *e, struct task *t)
{
	size_t s = pid_slot(e, t->pid);
	t->pnext = e->phash[s];
	e->phash[s] = t;
}

void task_pid_unlink(struct engine *e, struct task *t)
{
	for (struct task **pp = &e->phash[pid_slot(e, t->pid)]; *pp; pp = &(*pp)->pnext) {
		if (*pp == t) {
			*pp = t->pnext;
			return;
		}
	}
}

static void fin_unlink(struct engine *e, struct task *t)
{
	if (t->fprev)
		t->fprev->fnext = t->fnext;
	else if (e->fin_first == t)
		e->fin_first = t->fnext;
	else
		return;             /* not on the list */
	if (t->fnext)
		t->fnext->fprev = t->fprev;
	else
		e->fin_last = t->fprev;
	t->fprev = t->fnext = NULL;
	e->nfinished--;
}

void task_close_timer(struct engine *e, struct task *t)
{
	engine_close_watched(e, &t->timer_fd);
}

/* A new task holds no descriptor yet. */
void task_fds_none(struct task *t)
{
	t->timer_fd = -1;
	t->stat_fd = -1;
	t->out[1].fd = t->out[2].fd = -1;
	t->out_w[1] = t->out_w[2] = -1;
}

void task_close_out_w(struct task *t)
{
	for (int s = 1; s <= 2; s++) {
		if (t->out_w[s] >= 0)
			close(t->out_w[s]);
		t->out_w[s] = -1;
	}
}

void task_close_stat(struct task *t)
{
	if (t->stat_fd >= 0)
		close(t->stat_fd);
	t->stat_fd = -1;
}

void task_destroy(struct engine *e, struct task *t)
{
	ROOMS_CALL(e, task_destroyed, t);
	out_free(e, &t->out[1]);
	out_free(e, &t->out[2]);
	task_close_timer(e, t);
	task_close_stat(t);
	task_close_out_w(t);
	end_hook_free(t->on_end);
	free(t->cmd);
	free(t);
}

struct end_hook *end_hook_new(const char *cmd, const char *cwd, const struct cred *drop)
{
	if (!cmd)
		return NULL;
	struct end_hook *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->cmd = strdup(cmd);
	h->cwd = cwd ? strdup(cwd) : NULL;
	if (!h->cmd || (cwd && !h->cwd)) {
		end_hook_free(h);
		return NULL;
	}
	if (drop) {
		h->drop = true;
		h->cred = *drop;
	}
	return h;
}

void end_hook_free(struct end_hook *h)
{
	if (!h)
		return;
	free(h->cmd);
	free(h->cwd);
	free(h);
}

/* Remove an ended task from every table and free it. */
void task_forget_locked(struct engine *e, struct task *t)
{
	for (struct task **pp = &e->hash[id_slot(e, t->id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	}
	if (t->prev)
		t->prev->next = t->next;
	else
		e->first = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		e->last = t->prev;
	fin_unlink(e, t);
	live_unlink(e, t);
	if (t->end_seq > e->forgot_seq)
		e->forgot_seq = t->end_seq;
	e->ntasks--;
	e->st.forgotten++;
	ROOMS_CALL(e, task_forgotten, t);
	engine_notify_locked(e, OBJ_TASK_GONE, t->id);
	task_destroy(e, t);
}

/* ---- notifications ---------------------------------------------------------- */
void fin_append(struct engine *e, struct task *t)
{
	t->end_seq = ++e->end_seq;
	t->fprev = e->fin_last;
	t->fnext = NULL;
	if (e->fin_last)
		e->fin_last->fnext = t;
	else
		e->fin_first = t;
	e->fin_last = t;
	e->nfinished++;
}

/* The oldest ended tasks beyond cfg.history are forgotten; never `keep`:
 * callers may still hold it.  With history = 0 the newest ended task stays
 * until the next one ends. */
void trim_history(struct engine *e, struct task *keep)
{
	while (e->nfinished > e->cfg.history && e->fin_first && e->fin_first != keep)
		task_forget_locked(e, e->fin_first);
}

/* persist: a task of the journal, in the table (ended, not counted as live);
 * the caller fills it in, then hands it to task_restored_ended(). */
struct task *task_restored(struct engine *e, uint64_t id, const char *cmd)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t || !(t->cmd = strdup(cmd))) {
		free(t);
		return NULL;
	}
	t->id = id;
	t->state = TS_LOST;
	t->timeout_ms = SPEC_UNSET;
	task_fds_none(t);
	task_link(e, t);
	/* the list is in id order; the journal mostly is too (concurrent
	 * spawns may write their starts out of order): move it back to place */
	while (t->prev && t->prev->id > id) {
		struct task *p = t->prev;
		p->next = t->next;
		if (t->next)
			t->next->prev = p;
		else
			e->last = p;
		t->prev = p->prev;
		t->next = p;
		if (p->prev)
			p->prev->next = t;
		else
			e->first = t;
		p->prev = t;
	}
	return t;
}

/* exec, at restore: a journaled task that had not run yet (it waited) is live
 * again, in state st: on the live list and counted as a reserved task is, so
 * its end releases it as any other's (lock held). */
void task_restored_live(struct engine *e, struct task *t, enum task_state st)
{
	t->state = st;
	live_link(e, t);
	t->counted = true;
	e->st.started++;
	e->st.running++;
	if (t->kind == TASK_THREAD)
		e->st.live_threads++;
	else
		e->st.live_processes++;
}

void task_restored_ended(struct engine *e, struct task *t)
{
	fin_append(e, t);
	trim_history(e, t);
}

bool task_hidden(const struct task *t)
{
	return t->state == TS_STARTING && !t->waited;
}

bool task_live(const struct task *t)
{
	return !task_state_ended(t->state);
}


struct task *task_alloc(struct engine *e, const char *cmd)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cmd = strdup(cmd);
	if (!t->cmd) {
		free(t);
		return NULL;
	}
	t->id = e->next_id++;
	t->persist = true;
	t->state = TS_STARTING;
	t->owner = e->self;
	t->timeout_ms = SPEC_UNSET;
	task_fds_none(t);
	clock_gettime(CLOCK_REALTIME, &t->start_rt);
	clock_gettime(CLOCK_MONOTONIC, &t->start_mono);
	return t;
}

struct task *task_new_worker(struct engine *e, enum task_kind kind, const char *cmd)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t || !(t->cmd = strdup(cmd))) {
		free(t);
		return NULL;
	}
	t->id = e->next_id++;
	t->owner = e->self;
	t->kind = kind;
	t->workload = WL_NOOP;
	t->method = kind == TASK_THREAD ? METHOD_PTHREAD : METHOD_SPAWN;
	t->state = TS_RUNNING;
	t->timeout_ms = SPEC_UNSET;
	task_fds_none(t);
	clock_gettime(CLOCK_REALTIME, &t->start_rt);
	clock_gettime(CLOCK_MONOTONIC, &t->start_mono);
	make_room(e, 1);
	task_link(e, t);
	t->counted = true;
	e->st.started++;
	e->st.running++;
	if (kind == TASK_THREAD)
		e->st.live_threads++;
	else
		e->st.live_processes++;
	return t;
}

/* Make room under max_tasks by forgetting the oldest ended tasks. */
bool make_room(struct engine *e, size_t need)
{
	while (e->ntasks + need > e->cfg.max_tasks && e->fin_first)
		task_forget_locked(e, e->fin_first);
	return e->ntasks + need <= e->cfg.max_tasks;
}
