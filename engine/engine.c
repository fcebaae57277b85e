/* engine.c - the task table, the engine thread's event loop, and the API.
 *
 * Everything asynchronous happens on the engine thread: reaping (SIGCHLD via
 * a signalfd), reading task output pipes, timeout escalation (timerfds),
 * thread-host messages, the shutdown sequence.  API calls from other threads
 * take `lock` briefly and never wait for a task.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_int.h"
#include "wire.h"

static const char *const state_names[] = {
	[TS_STARTING] = "starting", [TS_RUNNING] = "running", [TS_STOPPED] = "stopped",
	[TS_EXITED] = "exited",     [TS_KILLED] = "killed",   [TS_FAILED] = "failed",
	[TS_LOST] = "lost",
};

const char *task_state_name(enum task_state s)
{
	return state_names[s];
}

static bool state_ended(enum task_state s)
{
	return s == TS_EXITED || s == TS_KILLED || s == TS_FAILED || s == TS_LOST;
}

static double ts_diff(struct timespec a, struct timespec b)
{
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
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

static struct task *task_by_pid(struct engine *e, pid_t pid)
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

static void live_unlink(struct engine *e, struct task *t)
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

static void task_link(struct engine *e, struct task *t)
{
	if (!state_ended(t->state))
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

static void task_pid_unlink(struct engine *e, struct task *t)
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

void engine_close_watched(struct engine *e, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* On the engine thread, the close waits for the end of the turn; *fd is -1
 * at once, so nothing reads it again.  Elsewhere (a spawner failing a task)
 * the engine thread may sleep for long: close now. */
static _Thread_local const struct engine *engine_of_thread;

void engine_close_soon(struct engine *e, int *fd)
{
	if (*fd < 0)
		return;
	if (engine_of_thread != e ||
	    e->nclosing == sizeof(e->closing) / sizeof(e->closing[0])) {
		engine_close_watched(e, fd);
		return;
	}
	e->closing[e->nclosing++] = *fd;
	*fd = -1;
}

static void close_soon_done(struct engine *e)
{
	for (unsigned i = 0; i < e->nclosing; i++)
		engine_close_watched(e, &e->closing[i]);
	e->nclosing = 0;
}

static void close_timer(struct engine *e, struct task *t)
{
	engine_close_watched(e, &t->timer_fd);
}

/* A new task holds no descriptor yet. */
static void task_fds_none(struct task *t)
{
	t->timer_fd = -1;
	t->stat_fd = -1;
	t->out[1].fd = t->out[2].fd = -1;
	t->out_w[1] = t->out_w[2] = -1;
}

static void close_out_w(struct task *t)
{
	for (int s = 1; s <= 2; s++) {
		if (t->out_w[s] >= 0)
			close(t->out_w[s]);
		t->out_w[s] = -1;
	}
}

static void close_stat(struct task *t)
{
	if (t->stat_fd >= 0)
		close(t->stat_fd);
	t->stat_fd = -1;
}

static void task_destroy(struct engine *e, struct task *t)
{
	task_mem_free(t);
	out_free(e, &t->out[1]);
	out_free(e, &t->out[2]);
	close_timer(e, t);
	close_stat(t);
	close_out_w(t);
	free(t->cmd);
	free(t);
}

/* Remove an ended task from every table and free it. */
static void task_forget_locked(struct engine *e, struct task *t)
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
	state_task_forgotten(e, t);
	engine_notify_locked(e, OBJ_TASK_GONE, t->id);
	task_destroy(e, t);
}

/* ---- notifications ---------------------------------------------------------- */

void engine_notify_locked(struct engine *e, enum eng_obj kind, uint64_t id)
{
	if (e->npending == e->cap_pending) {
		size_t cap = e->cap_pending ? e->cap_pending * 2 : 64;
		void *p = realloc(e->pending, cap * sizeof(*e->pending));
		if (!p)
			return;   /* a lost wakeup would hang a waiter: log loudly */
		e->pending = p;
		e->cap_pending = cap;
	}
	e->pending[e->npending].kind = kind;
	e->pending[e->npending].id = id;
	e->npending++;
}

/* Deliver what was gathered.  Called without `lock`: hooks call back into the
 * engine.  The batch is swapped out under the lock so concurrent callers never
 * deliver the same event twice. */
void engine_flush_notify(struct engine *e)
{
	state_flush(e);      /* on disk before anyone is told */
	pthread_mutex_lock(&e->lock);
	size_t n = e->npending;
	__typeof__(e->pending) batch = e->pending;
	e->pending = NULL;
	e->npending = e->cap_pending = 0;
	pthread_mutex_unlock(&e->lock);

	for (size_t i = 0; i < n; i++)
		if (e->hooks.changed)
			e->hooks.changed(e->hooks.ctx, batch[i].kind, batch[i].id);
	free(batch);
}

/* Every descriptor watched here leaves the set through engine_close_watched:
 * epoll forgets a file only when its last descriptor closes, and a clone
 * child between its fork and its exec (a spawn on another thread) holds a
 * copy of ours; a pipe at EOF or a fired timer closed then would be reported
 * readable, on every turn of the loop, until that child had exec'd. */
int engine_watch(struct engine *e, int fd, enum watch_type type, uint64_t id)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WATCH_KEY(type, id) };
	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* ---- task end ------------------------------------------------------------- */

/* The history: ended tasks, oldest first. */
static void fin_append(struct engine *e, struct task *t)
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
static void trim_history(struct engine *e, struct task *keep)
{
	while (e->nfinished > e->cfg.history && e->fin_first && e->fin_first != keep)
		task_forget_locked(e, e->fin_first);
}

/* state.c: a task of the journal, in the table (ended, not counted as live);
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

void task_restored_ended(struct engine *e, struct task *t)
{
	fin_append(e, t);
	trim_history(e, t);
}

void task_restored_forget(struct engine *e, struct task *t)
{
	task_forget_locked(e, t);
}

static void task_ended(struct engine *e, struct task *t, enum task_state st, int code)
{
	if (state_ended(t->state))
		return;
	bool was_thread = t->kind == TASK_THREAD;
	t->state = st;
	live_unlink(e, t);
	t->exitcode = code;
	clock_gettime(CLOCK_REALTIME, &t->end_rt);
	clock_gettime(CLOCK_MONOTONIC, &t->end_mono);
	close_timer(e, t);
	close_stat(t);   /* readers hold dups of their own */

	/* The process is gone, so everything it wrote is in the pipe now: take
	 * it before anyone is told, so `wait` then `cat stdout` sees it all.
	 * Our own write end goes first, so the drain can see EOF; descendants
	 * that still hold the pipe keep being read until EOF. */
	close_out_w(t);
	for (int s = 1; s <= 2; s++)
		out_drain(e, &t->out[s], e->cfg.output_max);
	chan_task_ended(e, t);

	if (st == TS_EXITED)
		e->st.exited++;
	else if (st == TS_KILLED)
		e->st.killed++;
	else
		e->st.failed++;
	if (t->pid > 0 && !was_thread)
		task_pid_unlink(e, t);
	if (t->counted) {       /* reserved as live at spawn: release it once */
		t->counted = false;
		e->st.running--;
		if (was_thread)
			e->st.live_threads--;
		else
			e->st.live_processes--;
	}

	fin_append(e, t);

	log_add(e, LOG_LVL_DEBUG, "task %llu %s (%d)", (unsigned long long)t->id,
		task_state_name(st), code);
	state_task_ended(e, t);
	engine_notify_locked(e, OBJ_TASK, t->id);
	engine_notify_locked(e, OBJ_STATS, 0);

	trim_history(e, t);
}

void task_ended_exported(struct engine *e, struct task *t, enum task_state st, int code)
{
	task_ended(e, t, st, code);
}

bool task_live(const struct task *t)
{
	return !state_ended(t->state);
}

/* A process task's end, from its wait status. */
void task_end_with_status(struct engine *e, struct task *t, int status, const struct rusage *ru)
{
	t->ru = *ru;
	if (WIFEXITED(status))
		task_ended(e, t, TS_EXITED, WEXITSTATUS(status));
	else
		task_ended(e, t, TS_KILLED, -WTERMSIG(status));
}

/* Mark a task that never started.  Called on the spawning thread. */
void task_failed_to_start(struct engine *e, struct task *t, int err, const char *what)
{
	snprintf(t->error, sizeof(t->error), "%s: %s", what, strerror(err));
	log_add(e, LOG_LVL_WARN, "task %llu failed to start: %s", (unsigned long long)t->id,
		t->error);
	task_ended(e, t, TS_FAILED, err == ENOENT ? 127 : 126);
}

/* ---- reaping -------------------------------------------------------------- */

/* Spawn windows.  A spawner holding reap_lock for the whole of a
 * posix_spawn (which returns once the child has exec'd) kept the reaper
 * waiting on every SIGCHLD, and every other spawner waiting behind the
 * reaper: one write's processes, started a CPU each, stalled at each end.
 * Now the reaper goes on, and a child it cannot attribute while a window is
 * open is kept for the spawner that will publish it. */
void spawn_window_open(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->spawning++;
	pthread_mutex_unlock(&e->lock);
}

bool spawn_window_close_locked(struct engine *e, pid_t pid, int *status, struct rusage *ru)
{
	bool found = false;
	for (size_t i = 0; pid > 0 && i < e->nearly; i++) {
		if (e->early[i].pid != pid)
			continue;
		*status = e->early[i].status;
		*ru = e->early[i].ru;
		e->early[i] = e->early[--e->nearly];
		found = true;
		break;
	}
	/* no window left: what nobody claimed was nobody's (an exec that failed
	 * in a vfork child, an orphan reparented to us) */
	if (--e->spawning == 0) {
		for (size_t i = 0; i < e->nearly; i++)
			stranger_reaped(e, e->early[i].pid, e->early[i].status, &e->early[i].ru);
		e->nearly = 0;
	}
	return found;
}

/* The reaper found a child it cannot attribute while a window is open. */
static bool early_keep(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	if (!e->spawning)
		return false;
	if (e->nearly == e->cap_early) {
		size_t cap = e->cap_early ? e->cap_early * 2 : 16;
		void *v = realloc(e->early, cap * sizeof(*e->early));
		if (!v) {
			log_add(e, LOG_LVL_ERROR, "out of memory keeping the exit of pid %d", pid);
			return false;
		}
		e->early = v;
		e->cap_early = cap;
	}
	e->early[e->nearly++] = (struct early_exit){ .pid = pid, .status = status, .ru = *ru };
	return true;
}

static void host_died(struct engine *e, struct host *h, int status);
static void host_readable(struct engine *e, uint64_t hid);

static void reap_children(struct engine *e)
{
	for (;;) {
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, WNOHANG | WUNTRACED | WCONTINUED, &ru);
		if (pid <= 0)
			break;
		if (pid == e->fs_pid) {
			if (WIFEXITED(status) || WIFSIGNALED(status)) {
				log_add(e, e->stopping ? LOG_LVL_DEBUG : LOG_LVL_ERROR,
					"fork server (pid %d) ended; restarting it on next use", pid);
				e->fs_pid = 0;
			}
			continue;
		}
		struct task *t = task_by_pid(e, pid);
		if (t && t->kind == TASK_PROCESS) {
			if (WIFSTOPPED(status)) {
				t->state = TS_STOPPED;
				engine_notify_locked(e, OBJ_TASK, t->id);
			} else if (WIFCONTINUED(status)) {
				if (t->state == TS_STOPPED)
					t->state = TS_RUNNING;
				engine_notify_locked(e, OBJ_TASK, t->id);
			} else {
				task_end_with_status(e, t, status, &ru);
			}
			continue;
		}
		if (WIFSTOPPED(status) || WIFCONTINUED(status))
			continue;
		struct host *h;
		for (h = e->hosts; h; h = h->next)
			if (h->pid == pid)
				break;
		if (h) {
			host_died(e, h, status);
			continue;
		}
		/* An orphaned descendant of some task, reparented to us as the
		 * subreaper: reaping it is all there is to do.  Or a cow child
		 * whose announcement is still in its parent's pipe: remember it.
		 * A command of the Slurm poller is the poller's to hear of. */
		if (slurm_reaped(e, pid, status))
			continue;
		if (early_keep(e, pid, status, &ru))
			continue;
		stranger_reaped(e, pid, status, &ru);
	}
}

/* ---- thread hosts --------------------------------------------------------- */

static void host_close(struct engine *e, struct host *h)
{
	engine_close_watched(e, &h->sock);
}

struct host *host_add(struct engine *e, pid_t pid, int sock, struct pool *pool)
{
	struct host *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->id = e->next_host_id++;
	h->pid = pid;
	h->sock = sock;
	h->pool = pool;
	h->next = e->hosts;
	e->hosts = h;
	engine_watch(e, sock, WATCH_HOST, h->id);
	return h;
}

static void host_free_if_done(struct engine *e, struct host *h)
{
	if (!h->reaped || h->sock >= 0 || h->live)
		return;
	for (struct host **pp = &e->hosts; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	free(h);
}

/* The threads of a host that died without reporting their end died with it. */
static void host_died(struct engine *e, struct host *h, int status)
{
	char why[96];
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "%s (pid %d) was killed by signal %d",
			 h->pool ? "pool worker" : "thread host", h->pid, WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "%s (pid %d) exited with status %d",
			 h->pool ? "pool worker" : "thread host", h->pid, WEXITSTATUS(status));
	/* Its last W_TH_EXIT messages may still sit in the socket: read them
	 * while the host still counts as alive, so only we free it below. */
	host_readable(e, h->id);
	h->reaped = true;
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	for (struct task *t = e->live_first, *n; t && h->live; t = n) {
		n = t->lnext;   /* its end takes it off the list */
		if (t->host != h)
			continue;
		h->live--;
		if (!clean)
			snprintf(t->error, sizeof(t->error), "%s", why);
		if (WIFEXITED(status))
			task_ended(e, t, TS_EXITED, WEXITSTATUS(status));
		else
			task_ended(e, t, TS_KILLED, -WTERMSIG(status));
	}
	if (h->pool)
		pool_host_died(e, h, clean ? NULL : why);
	if (h->live == 0)
		host_close(e, h);
	pthread_cond_broadcast(&e->cond);
	if (!clean)
		log_add(e, e->stopping ? LOG_LVL_DEBUG : LOG_LVL_WARN, "%s", why);
	host_free_if_done(e, h);
}

static void host_message(struct engine *e, struct host *h, const struct wire_hdr *m,
			 const char *payload, size_t len)
{
	if (h->pool) {
		pool_host_message(e, h, m, payload, len);
		return;
	}
	struct task *t = task_find(e, m->id);
	if (!t || t->host != h)
		return;
	switch (m->type) {
	case W_TH_STARTED:
		if (m->a > 0) {
			t->tid = (pid_t)m->a;
		} else {
			snprintf(t->error, sizeof(t->error), "pthread_create: %s",
				 strerror((int)-m->a));
			if (h->live)
				h->live--;
			task_ended(e, t, TS_FAILED, 126);
		}
		pthread_cond_broadcast(&e->cond);
		break;
	case W_TH_OUTPUT:
		if (m->a == 1 || m->a == 2)
			out_append(&t->out[m->a], payload, len, e->cfg.output_max);
		if (m->a == 1)
			cow_scan_output(e, t);
		engine_notify_locked(e, OBJ_TASK, t->id);
		break;
	case W_TH_EXIT:
		t->thread_cpu_us = m->b;
		if (h->live)
			h->live--;
		if (m->a >= 0)
			task_ended(e, t, TS_EXITED, (int)m->a);
		else
			task_ended(e, t, TS_KILLED, (int)m->a);
		pthread_cond_broadcast(&e->cond);
		break;
	default:
		break;
	}
}

static void host_readable(struct engine *e, uint64_t hid)
{
	struct host *h;
	for (h = e->hosts; h; h = h->next)
		if (h->id == hid)
			break;
	if (!h || h->sock < 0)
		return;
	char *buf = e->fs_buf;    /* only the engine thread reads hosts */
	struct pool *pool = h->pool;   /* outlives h: pools go only through the API */
	for (;;) {
		struct wire_hdr m;
		ssize_t n = wire_recv(h->sock, buf, &m, NULL, NULL);
		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n < 0 || m.type == 0) {
			host_close(e, h);
			host_free_if_done(e, h);
			break;
		}
		if (m.type != W_BATCH) {
			host_message(e, h, &m, buf + sizeof(struct wire_hdr), (size_t)n);
			continue;
		}
		/* several messages in one datagram (wire.h) */
		const char *batch = buf + sizeof(struct wire_hdr), *pl;
		struct wire_hdr r;
		size_t pos = 0;
		int k;
		while ((k = wire_batch_next(batch, (size_t)n, &pos, &r, &pl)) > 0)
			host_message(e, h, &r, pl, r.len);
		if (k < 0)
			log_add(e, LOG_LVL_WARN, "worker %d sent a malformed batch: the rest is lost",
				h->pid);
	}
	if (pool)
		pool_host_drained(e, pool);
}

/* ---- timeouts ------------------------------------------------------------- */

static int send_stop(struct engine *e, struct task *t, int sig)
{
	if (t->pool && t->kind == TASK_THREAD)
		return -EPERM;    /* one slot thread of a pool host cannot be signalled alone */
	if (t->kind == TASK_THREAD) {
		if (!t->host || t->host->sock < 0)
			return -ESRCH;
		return wire_send(t->host->sock, W_TH_STOP, t->id, sig, 0, NULL, 0, NULL, 0);
	}
	/* The task leads its own process group: the signal reaches its
	 * descendants too (`sh sleep 100 & wait` dies whole). */
	if (kill(-t->pid, sig) < 0 && kill(t->pid, sig) < 0)
		return -errno;
	return 0;
}

static void arm_timer(int fd, int64_t ms);

void arm_timer_ms(int fd, int64_t ms)
{
	arm_timer(fd, ms);
}

static void arm_timer(int fd, int64_t ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
	};
	if (ms <= 0)
		its.it_value.tv_nsec = 1;   /* 0 would disarm */
	timerfd_settime(fd, 0, &its, NULL);
}

void task_arm_timeout(struct engine *e, struct task *t)
{
	if (t->timeout_ms == SPEC_UNSET)
		return;
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->timer_fd < 0) {
		log_add(e, LOG_LVL_ERROR, "task %llu: timerfd: %s; timeout not enforced",
			(unsigned long long)t->id, strerror(errno));
		return;
	}
	arm_timer(t->timer_fd, t->timeout_ms);
	engine_watch(e, t->timer_fd, WATCH_TIMER, t->id);
}

static void timer_fired(struct engine *e, uint64_t id)
{
	struct task *t = task_find(e, id);
	if (!t || t->timer_fd < 0)
		return;
	uint64_t ticks;
	if (read(t->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (t->timer_stage == 0) {
		t->timed_out = true;
		t->term_signal = SIGTERM;
		log_add(e, LOG_LVL_INFO, "task %llu: timeout after %lldms, sending TERM",
			(unsigned long long)id, (long long)t->timeout_ms);
		if (t->state == TS_STOPPED && t->kind == TASK_PROCESS)
			kill(-t->pid, SIGCONT);   /* a stopped group cannot act on TERM */
		send_stop(e, t, SIGTERM);
		t->timer_stage = 1;
		arm_timer(t->timer_fd, e->cfg.kill_grace_ms);
	} else {
		log_add(e, LOG_LVL_INFO, "task %llu: still alive %lldms after TERM, sending KILL",
			(unsigned long long)id, (long long)e->cfg.kill_grace_ms);
		t->term_signal = SIGKILL;
		send_stop(e, t, SIGKILL);
		close_timer(e, t);
	}
}

/* ---- the loop --------------------------------------------------------------- */

static void output_readable(struct engine *e, uint64_t id, int stream)
{
	struct task *t = task_find(e, id);
	if (!t)
		return;
	bool was_open = t->out[stream].fd >= 0;
	bool more = out_drain(e, &t->out[stream], e->cfg.output_max);
	if (stream == 1)
		cow_scan_output(e, t);
	/* the pipe reached EOF just now, after the task ended (a descendant
	 * held it): what it wrote since goes to the [state] dir */
	if (was_open && !more && !task_live(t))
		state_task_output_done(e, t, stream);
	engine_notify_locked(e, OBJ_TASK, id);
}

/* Shutdown: apply the unmount policy, once, then escalate after the grace. */
static void shutdown_signal_all(struct engine *e, int sig)
{
	for (struct task *t = e->live_first; t; t = t->lnext) {
		if (t->state == TS_STARTING)
			continue;
		if (t->kind == TASK_PROCESS && t->state == TS_STOPPED)
			kill(-t->pid, SIGCONT);
		if (!t->pool)
			send_stop(e, t, sig);
	}
	/* pool hosts go whole: their futures end with them */
	for (struct host *h = e->hosts; h; h = h->next)
		if (h->pool && !h->reaped)
			kill(h->pid, sig);
	if (sig == SIGKILL) {
		for (struct host *h = e->hosts; h; h = h->next)
			if (!h->reaped)
				kill(h->pid, SIGKILL);
		/* descendants whose task already ended still hold the group */
		for (size_t i = 0; i < e->nshut_groups; i++)
			kill(-e->shut_groups[i], SIGKILL);
	}
}

/* The process groups of every live task: shutdown is over when they are all
 * empty, not merely when each task's own process is reaped (its descendants
 * are killed with it, and are reparented to us as they die). */
static void remember_groups(struct engine *e)
{
	size_t n = e->nlive;
	for (struct host *h = e->hosts; h; h = h->next)
		n++;
	e->shut_groups = calloc(n ? n : 1, sizeof(pid_t));
	if (!e->shut_groups)
		return;
	for (struct task *t = e->live_first; t; t = t->lnext)
		if (t->kind == TASK_PROCESS && t->pid > 0)
			e->shut_groups[e->nshut_groups++] = t->pid;
	for (struct host *h = e->hosts; h; h = h->next)
		if (!h->reaped)
			e->shut_groups[e->nshut_groups++] = h->pid;
}

static bool groups_empty(struct engine *e)
{
	for (size_t i = 0; i < e->nshut_groups; i++)
		if (kill(-e->shut_groups[i], 0) == 0 || errno == EPERM)
			return false;
	return true;
}

static void begin_shutdown(struct engine *e)
{
	if (e->cfg.unmount_policy != UNMOUNT_LEAVE)
		remember_groups(e);
	switch (e->cfg.unmount_policy) {
	case UNMOUNT_LEAVE:
		return;
	case UNMOUNT_KILL:
		shutdown_signal_all(e, SIGKILL);
		e->kill_sent = true;
		arm_timer(e->shutfd, 3000);   /* bounded: then give up */
		return;
	case UNMOUNT_TERM:
		shutdown_signal_all(e, SIGTERM);
		arm_timer(e->shutfd, e->cfg.unmount_grace_ms);
		return;
	}
}

static bool shutdown_done(struct engine *e)
{
	if (e->cfg.unmount_policy == UNMOUNT_LEAVE)
		return true;
	if (e->nlive)
		return false;
	for (struct host *h = e->hosts; h; h = h->next)
		if (!h->reaped)
			return false;
	return groups_empty(e);
}

static void *engine_thread(void *arg)
{
	struct engine *e = arg;
	struct epoll_event evs[64];
	bool shutting = false;
	engine_of_thread = e;

	for (;;) {
		bool sample = false;
		/* while shutting down, group members that are not our children
		 * (yet) die without telling us: look again every 20 ms */
		int n = epoll_wait(e->epfd, evs, 64, shutting ? 20 : -1);
		if (n < 0 && errno != EINTR) {
			log_add(e, LOG_LVL_ERROR, "epoll_wait: %s", strerror(errno));
			break;
		}
		bool reap = false;
		for (int i = 0; i < n; i++)
			if (WATCH_TYPE(evs[i].data.u64) == WATCH_SIGNAL)
				reap = true;
		if (reap) {
			/* one read takes every pending SIGCHLD (they merge) */
			struct signalfd_siginfo si[8];
			while (read(e->sigfd, si, sizeof(si)) == sizeof(si))
				;
			pthread_rwlock_wrlock(&e->reap_lock);
		}
		pthread_mutex_lock(&e->lock);
		if (reap) {
			reap_children(e);
			/* Answer the waiters of what ended before the rest of
			 * the batch (other tasks' output, timers, hosts): the
			 * reply to a parked `wait` is what someone is blocked
			 * on now. */
			pthread_mutex_unlock(&e->lock);
			pthread_rwlock_unlock(&e->reap_lock);
			engine_flush_notify(e);
			pthread_mutex_lock(&e->lock);
		}
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			uint64_t id = WATCH_ID(key);
			switch (WATCH_TYPE(key)) {
			case WATCH_STDOUT: output_readable(e, id, 1); break;
			case WATCH_STDERR: output_readable(e, id, 2); break;
			case WATCH_TIMER:  timer_fired(e, id); break;
			case WATCH_HOST:   host_readable(e, id); break;
			case WATCH_FTIMER: pool_timer_fired(e, id); break;
			case WATCH_CHAN:   chan_event(e, id, evs[i].events); break;
			case WATCH_WAKE: {
				uint64_t v;
				if (read(e->wakefd, &v, sizeof(v)) < 0)
					break;
				break;
			}
			case WATCH_SHUTDOWN: {
				uint64_t v;
				if (read(e->shutfd, &v, sizeof(v)) < 0)
					break;
				if (!e->kill_sent) {
					log_add(e, LOG_LVL_INFO,
						"unmount: %zu tasks outlived the grace; sending KILL",
						e->nlive);
					shutdown_signal_all(e, SIGKILL);
					e->kill_sent = true;
					arm_timer(e->shutfd, 3000);
				} else {
					log_add(e, LOG_LVL_ERROR,
						"unmount: %zu tasks survived KILL; giving up on them",
						e->nlive);
					e->cfg.unmount_policy = UNMOUNT_LEAVE;
				}
				break;
			}
			case WATCH_SAMPLE:
				sample = true;
				break;
			case WATCH_SIGNAL:
				break;
			}
		}
		chan_pump(e);
		if (e->stopping && !shutting) {
			shutting = true;
			begin_shutdown(e);
		}
		bool done = shutting && shutdown_done(e);
		pthread_mutex_unlock(&e->lock);
		/* /proc is read without the lock, and with no reaping going on
		 * (only this thread reaps): a pid read here is not reused. */
		if (sample && !done)
			sample_tick(e);
		engine_flush_notify(e);
		close_soon_done(e);
		if (!shutting)
			pipes_refill(e);
		if (done)
			break;
	}
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

static void wake(struct engine *e)
{
	uint64_t one = 1;
	if (write(e->wakefd, &one, sizeof(one)) < 0)
		return;   /* the counter is saturated: a wakeup is pending anyway */
}

struct engine *engine_new(const struct pcfs_config *cfg, const char *mountpoint,
			  const char *worker_path, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->cfg = *cfg;
	e->self = (struct owner){ .uid = geteuid(), .gid = getegid() };
	e->mountpoint = strdup(mountpoint);
	e->worker_path = strdup(worker_path);
	e->fs_buf = malloc(WIRE_MAX);
	e->fs_reply = malloc(WIRE_MAX);
	e->hash_size = 1024;
	e->hash = calloc(e->hash_size, sizeof(*e->hash));
	e->phash_size = 4096;
	e->phash = calloc(e->phash_size, sizeof(*e->phash));
	e->next_id = 1;
	e->next_host_id = 1;
	e->next_pool_id = 1;
	e->fs_sock = -1;
	e->epfd = e->sigfd = e->wakefd = e->shutfd = e->devnull = e->samplefd = -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	e->online_cpus = ncpu > 0 ? (unsigned)ncpu : 1;
	if (!e->mountpoint || !e->worker_path || !e->fs_buf || !e->fs_reply || !e->hash || !e->phash) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->fs_lock, NULL);
	pthread_mutex_init(&e->pipe_lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* the reaper must not starve behind a flood of spawns */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->reap_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	log_init(e);
	spawn_attr_init(e);

	if (access(worker_path, X_OK) < 0) {
		snprintf(err, errlen, "worker program %s: %s", worker_path, strerror(errno));
		goto fail;
	}

	/* Every task and every orphan of a task becomes our child. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		snprintf(err, errlen, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		goto fail;
	}
	/* SIGCHLD is read from a signalfd, so it must be blocked in every thread:
	 * this runs before any thread exists, and threads inherit the mask. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);

	/* Many live tasks hold three descriptors each. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	e->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->shutfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	e->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (e->epfd < 0 || e->sigfd < 0 || e->wakefd < 0 || e->shutfd < 0 || e->devnull < 0) {
		snprintf(err, errlen, "engine setup: %s", strerror(errno));
		goto fail;
	}
	if (engine_watch(e, e->sigfd, WATCH_SIGNAL, 0) < 0 ||
	    engine_watch(e, e->wakefd, WATCH_WAKE, 0) < 0 ||
	    engine_watch(e, e->shutfd, WATCH_SHUTDOWN, 0) < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto fail;
	}
	if (state_open(e, err, errlen) < 0)
		goto fail;
	if (sample_init(e) < 0) {
		snprintf(err, errlen, "sampling timer: %s", strerror(errno));
		goto fail;
	}
	if (spawn_forkserver(e, err, errlen) < 0)
		goto fail;
	return e;
fail:
	engine_free(e);
	return NULL;
}

void engine_set_hooks(struct engine *e, const struct engine_hooks *hooks)
{
	e->hooks = *hooks;
}

const struct pcfs_config *engine_config(const struct engine *e)
{
	return &e->cfg;
}

int engine_start(struct engine *e)
{
	int rc = pthread_create(&e->thread, NULL, engine_thread, e);
	if (rc)
		return -rc;
	e->thread_started = true;
	state_restore(e);
	return 0;
}

void engine_shutdown(struct engine *e)
{
	if (!e->thread_started)
		return;
	slurm_stop(e);   /* its commands need this thread to reap them */
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
	wake(e);
	pthread_join(e->thread, NULL);
	e->thread_started = false;
	/* The fork server ends when its socket closes; reap it. */
	pthread_mutex_lock(&e->fs_lock);
	if (e->fs_sock >= 0) {
		close(e->fs_sock);
		e->fs_sock = -1;
	}
	if (e->fs_pid > 0) {
		waitpid(e->fs_pid, NULL, 0);
		e->fs_pid = 0;
	}
	pthread_mutex_unlock(&e->fs_lock);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	if (e->thread_started)
		engine_shutdown(e);
	if (e->fs_sock >= 0)
		close(e->fs_sock);
	slurm_free(e);
	state_flush(e);
	state_close(e);
	pools_free(e);
	for (struct task *t = e->first, *n; t; t = n) {
		n = t->next;
		task_destroy(e, t);
	}
	for (struct host *h = e->hosts, *n; h; h = n) {
		n = h->next;
		if (h->sock >= 0)
			close(h->sock);
		free(h);
	}
	chan_free_all(e);
	pipes_free(e);
	posix_spawnattr_destroy(&e->spawn_attr);
	int fds[] = { e->epfd, e->sigfd, e->wakefd, e->shutfd, e->devnull, e->samplefd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (e->log)
		log_free(e);
	free(e->pending);
	free(e->shut_groups);
	free(e->early);
	free(e->hash);
	free(e->phash);
	free(e->fs_buf);
	free(e->fs_reply);
	free(e->mountpoint);
	free(e->worker_path);
	free(e);
}

/* ---- spawn ------------------------------------------------------------------ */

/* One parsed line of a write. */
struct parsed {
	struct task_spec spec;
	unsigned nproc, nthread;
};

/* A new task with the next id, not yet in any table (lock held). */
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

/* Publish a process task that is already running (a cow child): into the
 * tables and the live counters (lock held). */
void task_insert_running(struct engine *e, struct task *t)
{
	task_link(e, t);
	t->state = TS_RUNNING;
	task_pid_link(e, t);
	t->counted = true;
	e->st.started++;
	e->st.running++;
	e->st.live_processes++;
	state_task_started(e, t);
	engine_notify_locked(e, OBJ_STATS, 0);
}

static struct task *task_new(struct engine *e, const struct task_spec *s,
			     const struct owner *owner)
{
	struct task *t = task_alloc(e, s->line);
	if (!t)
		return NULL;
	t->owner = *owner;
	t->kind = s->kind;
	t->workload = s->workload;
	t->method = s->method;
	if (t->method == METHOD_DEFAULT)
		t->method = s->kind == TASK_THREAD ? METHOD_PTHREAD
			  : workload_is_builtin(s->workload) ? METHOD_FORK : METHOD_SPAWN;
	t->timeout_ms = s->timeout_ms;
	snprintf(t->name, sizeof(t->name), "%s", s->name);
	return t;
}

static bool make_room(struct engine *e, size_t need);

/* A pool's worker, as a task in /procs: counted as live, running. */
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
static bool make_room(struct engine *e, size_t need)
{
	while (e->ntasks + need > e->cfg.max_tasks && e->fin_first)
		task_forget_locked(e, e->fin_first);
	return e->ntasks + need <= e->cfg.max_tasks;
}

static int check_limits_locked(struct engine *e, unsigned nproc, unsigned nthread,
			       char *err, size_t errlen)
{
	if (e->stopping) {
		snprintf(err, errlen, "pcfs is shutting down");
		return -ESHUTDOWN;
	}
	if (e->st.live_processes + nproc > e->cfg.max_processes) {
		snprintf(err, errlen, "limit: %llu live processes + %u would exceed "
			 "max_processes=%u", (unsigned long long)e->st.live_processes, nproc,
			 e->cfg.max_processes);
		return -EAGAIN;
	}
	if (e->st.live_threads + nthread > e->cfg.max_threads) {
		snprintf(err, errlen, "limit: %llu live threads + %u would exceed max_threads=%u",
			 (unsigned long long)e->st.live_threads, nthread, e->cfg.max_threads);
		return -EAGAIN;
	}
	if (!make_room(e, nproc + nthread)) {
		snprintf(err, errlen, "limit: %zu tasks are running or kept; %u more would exceed "
			 "max_tasks=%u", e->ntasks, nproc + nthread, e->cfg.max_tasks);
		return -EAGAIN;
	}
	return 0;
}

/* Split buf into lines and parse them all; nothing starts unless all parse. */
static int parse_all(struct engine *e, const struct owner *owner, const char *buf, size_t len,
		     struct parsed **out, size_t *nout, char *err, size_t errlen)
{
	struct parsed *v = NULL;
	size_t n = 0, cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		const char *line = buf + pos;
		size_t ll = end - pos;
		pos = end + 1;
		lineno++;
		size_t i = 0;
		while (i < ll && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		if (i == ll || line[i] == '#')
			continue;
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			struct parsed *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			v = nv;
		}
		char why[256];
		memset(&v[n], 0, sizeof(v[n]));
		rc = spec_parse(line, ll, e->online_cpus, &v[n].spec, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			goto fail;
		}
		rc = chan_check_wiring(e, &v[n].spec, owner, why, sizeof(why));
		if (rc < 0) {
			spec_free(&v[n].spec);
			snprintf(err, errlen, "line %u: %s", lineno, why);
			goto fail;
		}
		if (v[n].spec.kind == TASK_THREAD)
			v[n].nthread = v[n].spec.count;
		else
			v[n].nproc = v[n].spec.count;
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "no task line in the write");
		rc = -EINVAL;
		goto fail;
	}
	*out = v;
	*nout = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		spec_free(&v[i].spec);
	free(v);
	return rc;
}

int engine_run_as(struct engine *e, const struct cred *who, const struct cred **drop,
		  struct owner *owner, char *err, size_t errlen)
{
	*drop = NULL;
	*owner = e->self;
	if (!who)
		return 0;
	*owner = (struct owner){ .uid = who->uid, .gid = who->gid };
	switch (access_cred_plan(e->self.uid, who)) {
	case CRED_KEEP:
		return 0;
	case CRED_REFUSE:
		snprintf(err, errlen, "uid %u may not start work here: pcfs runs as uid %u, not "
			 "root, so it would run as uid %u", (unsigned)who->uid,
			 (unsigned)e->self.uid, (unsigned)e->self.uid);
		return -EACCES;
	case CRED_DROP:
		break;
	}
	if (who->ngroups < 0) {
		snprintf(err, errlen, "uid %u: its supplementary groups cannot be read (or are "
			 "more than %d): its work would not run with exactly its groups",
			 (unsigned)who->uid, CRED_GROUPS_MAX);
		return -EACCES;
	}
	*drop = who;
	return 0;
}

/* Start the reserved tasks of a write, in its order: each run of process
 * lines together (spawn_processes starts them several at a time), each
 * thread line in its own host. */
static void start_all(struct engine *e, const struct parsed *lines, size_t nlines,
		      struct task **tasks, size_t total, const struct cred *drop)
{
	const struct task_spec **specs = malloc(total * sizeof(*specs));
	size_t k = 0, run = 0;   /* tasks[run..k) are processes not started yet */
	for (size_t i = 0; i < nlines; i++) {
		const struct task_spec *s = &lines[i].spec;
		if (s->kind == TASK_THREAD) {
			if (k > run)
				spawn_processes(e, specs + run, tasks + run, (unsigned)(k - run), drop);
			spawn_thread_tasks(e, s, tasks + k, s->count, drop);
			k += s->count;
			run = k;
		} else if (specs) {
			for (unsigned c = 0; c < s->count; c++)
				specs[k++] = s;
		} else {       /* no room for the list: one line at a time */
			const struct task_spec *one[1] = { s };
			for (unsigned c = 0; c < s->count; c++, k++)
				spawn_processes(e, one, tasks + k, 1, drop);
			run = k;
		}
	}
	if (k > run)
		spawn_processes(e, specs + run, tasks + run, (unsigned)(k - run), drop);
	free(specs);
}

int engine_spawn(struct engine *e, const char *buf, size_t len, struct strbuf *ids_out,
		 char *err, size_t errlen)
{
	return engine_spawn_as(e, NULL, buf, len, ids_out, err, errlen);
}

int engine_spawn_as(struct engine *e, const struct cred *who, const char *buf, size_t len,
		    struct strbuf *ids_out, char *err, size_t errlen)
{
	struct parsed *lines = NULL;
	size_t nlines = 0;
	const struct cred *drop;
	struct owner owner;
	int rc = engine_run_as(e, who, &drop, &owner, err, errlen);
	if (rc == 0)
		rc = parse_all(e, &owner, buf, len, &lines, &nlines, err, errlen);
	if (rc < 0) {
		pthread_mutex_lock(&e->lock);
		e->st.refused++;
		pthread_mutex_unlock(&e->lock);
		return rc;   /* the caller logs the refusal with its reason */
	}

	unsigned nproc = 0, nthread = 0;
	for (size_t i = 0; i < nlines; i++) {
		nproc += lines[i].nproc;
		nthread += lines[i].nthread;
	}

	/* Reserve: allocate every task and check limits before starting any. */
	size_t total = (size_t)nproc + nthread;
	struct task **tasks = calloc(total, sizeof(*tasks));
	if (!tasks) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&e->lock);
	rc = check_limits_locked(e, nproc, nthread, err, errlen);
	if (rc == 0) {
		size_t k = 0;
		for (size_t i = 0; i < nlines && rc == 0; i++) {
			for (unsigned c = 0; c < lines[i].spec.count; c++) {
				struct task *t = task_new(e, &lines[i].spec, &owner);
				if (!t) {
					rc = -ENOMEM;
					snprintf(err, errlen, "out of memory");
					break;
				}
				tasks[k++] = t;
			}
		}
		if (rc == 0) {
			for (size_t k2 = 0; k2 < total; k2++) {
				task_link(e, tasks[k2]);
				tasks[k2]->counted = true;   /* live from now on */
			}
			e->st.started += total;
			e->st.running += total;
			e->st.live_processes += nproc;
			e->st.live_threads += nthread;
		} else {
			for (size_t k2 = 0; k2 < total && tasks[k2]; k2++)
				task_destroy(e, tasks[k2]);   /* their ids are never reused */
		}
	}
	if (rc < 0)
		e->st.refused++;
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		goto out;

	/* Ids first: a task that fails at once may be forgotten at once. */
	uint64_t first = tasks[0]->id, last = tasks[total - 1]->id;
	for (size_t j = 0; j < total; j++)
		sb_printf(ids_out, "%llu\n", (unsigned long long)tasks[j]->id);
	start_all(e, lines, nlines, tasks, total, drop);
	log_add(e, LOG_LVL_INFO, "spawned %zu task%s (ids %llu-%llu, uid %u%s): %s%s", total,
		total == 1 ? "" : "s", (unsigned long long)first, (unsigned long long)last,
		(unsigned)owner.uid, drop ? ", dropped from root" : "",
		lines[0].spec.line, nlines > 1 ? " ..." : "");
	pthread_mutex_lock(&e->lock);
	/* journaled now that they have pids (one that ended already was
	 * journaled as it ended, and may be forgotten: look each up) */
	for (uint64_t id = first; e->state && id <= last; id++) {
		struct task *t = task_find(e, id);
		if (t)
			state_task_started(e, t);
	}
	engine_notify_locked(e, OBJ_STATS, 0);
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
out:
	free(tasks);
	for (size_t i = 0; i < nlines; i++)
		spec_free(&lines[i].spec);
	free(lines);
	return rc;
}

/* ---- queries and control ---------------------------------------------------- */

void task_info_free(struct task_info *ti)
{
	free(ti->cmd);
	ti->cmd = NULL;
}

/* User and system CPU time of a live process, from its /proc/PID/stat. */
static void proc_cpu(int fd, double *ut, double *st)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');   /* comm may hold spaces and parens */
	if (!p)
		return;
	unsigned long long u, s;
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &u, &s) == 2) {
		long hz = sysconf(_SC_CLK_TCK);
		*ut = (double)u / (double)hz;
		*st = (double)s / (double)hz;
	}
}

/* A descriptor of a live process's /proc/PID/stat for the caller to read
 * and close, or -1.  The task keeps one open from the first read on: a read
 * of an open /proc file is a third of the cost of open, read and close
 * (3.6 us against 9 us here), and status is the file people watch.  The
 * caller gets a dup taken under the lock, so the task's end, which closes
 * the task's own, never leaves it reading a number since reused. */
static int stat_fd_of(struct engine *e, uint64_t id, pid_t pid, int dup_fd)
{
	if (dup_fd >= 0)
		return dup_fd;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* Keep it if the task is still the live process we opened for: only
	 * reaping, under the lock, frees its pid for reuse. */
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (t && !state_ended(t->state) && t->pid == pid && t->stat_fd < 0)
		t->stat_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&e->lock);
	return fd;
}

/* What a query copies beyond the task's fixed fields. */
enum { TI_CMD = 1, TI_LIVE_CPU = 2 };

static int task_info_fill(struct engine *e, uint64_t id, struct task_info *ti, unsigned what)
{
	memset(ti, 0, sizeof(*ti));
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t || t->state == TS_STARTING) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	ti->id = t->id;
	ti->kind = t->kind;
	ti->method = t->method;
	ti->workload = t->workload;
	ti->state = t->state;
	ti->ended = state_ended(t->state);
	ti->exitcode = t->exitcode;
	ti->pid = t->pid;
	ti->tid = t->tid;
	ti->pgid = t->kind == TASK_PROCESS ? (t->parent_id ? t->cow_ref : t->pid) : 0;
	ti->parent_id = t->parent_id;
	memcpy(ti->name, t->name, sizeof(ti->name));
	memcpy(ti->error, t->error, sizeof(ti->error));
	ti->cmd = (what & TI_CMD) ? strdup(t->cmd) : NULL;
	ti->start = t->start_rt;
	ti->end = t->end_rt;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ti->runtime = ts_diff(t->start_mono, ti->ended ? t->end_mono : now);
	if (t->kind == TASK_THREAD) {
		ti->utime = (double)t->thread_cpu_us / 1e6;
	} else if (ti->ended) {
		ti->utime = tv_sec(t->ru.ru_utime);
		ti->stime = tv_sec(t->ru.ru_stime);
	}
	ti->timeout_ms = t->timeout_ms;
	ti->timed_out = t->timed_out;
	ti->term_signal = t->term_signal;
	if (t->pool) {
		snprintf(ti->pool, sizeof(ti->pool), "%s", pool_name_of(t->pool));
		ti->slot = t->slot;
	}
	ti->owner = t->owner;
	for (int s = 1; s <= 2; s++) {
		ti->out_bytes[s] = t->out[s].len;
		ti->out_dropped[s] = t->out[s].dropped;
	}
	bool live_proc = !ti->ended && t->kind == TASK_PROCESS && t->pid > 0;
	pid_t pid = t->pid;
	bool live_cpu = what & TI_LIVE_CPU;
	int dup_fd = live_proc && live_cpu && t->stat_fd >= 0 ?
		     fcntl(t->stat_fd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&e->lock);
	/* /proc is read outside the lock; the pid cannot be reused before the
	 * engine reaps it, and a just-reaped one only yields zeros. */
	if (live_proc && live_cpu) {
		int fd = stat_fd_of(e, id, pid, dup_fd);
		if (fd >= 0) {
			proc_cpu(fd, &ti->utime, &ti->stime);
			close(fd);
		}
	}
	return (what & TI_CMD) && !ti->cmd ? -ENOMEM : 0;
}

int engine_task_info(struct engine *e, uint64_t id, struct task_info *ti)
{
	return task_info_fill(e, id, ti, TI_CMD);
}

int engine_task_brief(struct engine *e, uint64_t id, struct task_info *ti)
{
	return task_info_fill(e, id, ti, 0);
}

int engine_task_status(struct engine *e, uint64_t id, struct task_info *ti)
{
	return task_info_fill(e, id, ti, TI_CMD | TI_LIVE_CPU);
}

int engine_owner(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&e->lock);
	if (kind == OBJ_TASK) {
		struct task *t = task_find(e, id);
		if (t && t->state != TS_STARTING) {
			*out = t->owner;
			rc = 0;
		}
	} else if (kind == OBJ_POOL) {
		rc = pool_owner_locked(e, id, out);
	} else if (kind == OBJ_FUTURE) {
		rc = pool_owner_locked(e, FUTURE_POOL(id), out);
	} else if (kind == OBJ_CHANNEL) {
		rc = chan_owner_locked(e, id, out);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

bool engine_task_exists(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	bool ok = t && t->state != TS_STARTING;
	pthread_mutex_unlock(&e->lock);
	return ok;
}

int engine_task_ids(struct engine *e, uint64_t **ids, size_t *n)
{
	pthread_mutex_lock(&e->lock);
	uint64_t *v = malloc((e->ntasks ? e->ntasks : 1) * sizeof(*v));
	size_t k = 0;
	if (v)
		for (struct task *t = e->first; t; t = t->next)
			if (t->state != TS_STARTING)
				v[k++] = t->id;
	pthread_mutex_unlock(&e->lock);
	if (!v)
		return -ENOMEM;
	*ids = v;
	*n = k;
	return 0;
}

ssize_t engine_task_output(struct engine *e, uint64_t id, int stream, uint64_t off,
			   char *buf, size_t size, uint64_t *total)
{
	if (stream != 1 && stream != 2)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	size_t n = out_copy(&t->out[stream], off, buf, size, total);
	pthread_mutex_unlock(&e->lock);
	return (ssize_t)n;
}

/* A lost task's process still ran when this daemon started: it is not our
 * child, but it is still the user's task.  Signal its process group if the
 * pid still names the same process (a pidfd pins it while its start time is
 * checked, so a pid reused meanwhile is not signalled). */
static int signal_lost(struct task *t, int sig, char *err, size_t errlen)
{
	int pfd = (int)syscall(SYS_pidfd_open, t->lost_pid, 0);
	if (pfd < 0 || !state_same_process(t->lost_pid, t->start_rt)) {
		if (pfd >= 0)
			close(pfd);
		t->lost_pid = 0;
		snprintf(err, errlen, "task %llu was lost, and its process has ended since",
			 (unsigned long long)t->id);
		return -ESRCH;
	}
	int rc = 0;
	/* its group, as for a live task (it was made a group leader) */
	if (getpgid(t->lost_pid) == t->lost_pid ? kill(-t->lost_pid, sig) < 0
						 : syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0)
		rc = -errno;
	close(pfd);
	if (rc < 0)
		snprintf(err, errlen, "task %llu (lost, pid %d): %s", (unsigned long long)t->id,
			 (int)t->lost_pid, strerror(-rc));
	return rc;
}

int engine_task_ctl(struct engine *e, uint64_t id, const char *cmd, char *err, size_t errlen)
{
	char word[32] = "", arg[64] = "", extra[8] = "";
	int nw = sscanf(cmd, "%31s %63s %7s", word, arg, extra);
	int sig = 0;
	bool needs_arg = false;

	if (nw <= 0) {
		snprintf(err, errlen, "empty command (term, kill, signal N|NAME, stop, cont)");
		return -EINVAL;
	}
	if (!strcmp(word, "term"))
		sig = SIGTERM;
	else if (!strcmp(word, "kill"))
		sig = SIGKILL;
	else if (!strcmp(word, "stop"))
		sig = SIGSTOP;
	else if (!strcmp(word, "cont"))
		sig = SIGCONT;
	else if (!strcmp(word, "signal"))
		needs_arg = true;
	else {
		snprintf(err, errlen, "unknown command '%.31s' (term, kill, signal N|NAME, stop, cont)",
			 word);
		return -EINVAL;
	}
	if (needs_arg) {
		if (nw != 2 || parse_signal(arg, &sig) < 0 || sig < 1 || sig > 64) {
			snprintf(err, errlen, "signal needs one signal number or name (e.g. "
				 "'signal 10', 'signal USR1')");
			return -EINVAL;
		}
	} else if (nw != 1) {
		snprintf(err, errlen, "'%s' takes no argument", word);
		return -EINVAL;
	}

	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	int rc = 0;
	if (!t) {
		rc = -ENOENT;
	} else if (t->state == TS_LOST && t->lost_pid) {
		rc = signal_lost(t, sig, err, errlen);
	} else if (state_ended(t->state)) {
		snprintf(err, errlen, "task %llu has already ended", (unsigned long long)id);
		rc = -ESRCH;
	} else if (t->kind == TASK_THREAD && (sig == SIGSTOP || sig == SIGCONT)) {
		snprintf(err, errlen, "a thread cannot be stopped on its own: SIGSTOP stops its "
			 "whole host process");
		rc = -EINVAL;
	} else {
		rc = send_stop(e, t, sig);
		if (rc == 0 && sig != SIGSTOP && sig != SIGCONT)
			t->term_signal = sig;
		if (rc < 0)
			snprintf(err, errlen, "signal %d: %s", sig, strerror(-rc));
	}
	pthread_mutex_unlock(&e->lock);
	if (rc == 0)
		log_add(e, LOG_LVL_INFO, "task %llu: %s", (unsigned long long)id, cmd);
	return rc;
}

int engine_task_forget(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	int rc = 0;
	if (!t || t->state == TS_STARTING)
		rc = -ENOENT;
	else if (!state_ended(t->state))
		rc = -EBUSY;
	else
		task_forget_locked(e, t);
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
	return rc;
}

void engine_stats(struct engine *e, struct engine_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->st;
	out->known = e->ntasks;
	pthread_mutex_unlock(&e->lock);
}
