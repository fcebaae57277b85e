/* loop.c - the engine thread's event loop, and how the rest of the engine
 * uses it: watched descriptors (each type handled by the row that registered
 * it), notifications gathered under the lock and delivered after it, closes
 * put off to the end of a turn, and the shutdown sequence.
 *
 * Everything asynchronous happens on the engine thread: reaping (SIGCHLD via
 * a signalfd), reading task output pipes, timeout escalation (timerfds), host
 * messages, the rooms' own descriptors, the shutdown sequence.  API calls from
 * other threads take `lock` briefly and never wait for a task.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core.h"

/* ---- task end ------------------------------------------------------------- */


/* ---- the loop --------------------------------------------------------------- */

static void output_readable(struct engine *e, uint64_t id, int stream)
{
	struct task *t = task_find(e, id);
	if (!t)
		return;
	bool was_open = t->out[stream].fd >= 0;
	bool more = out_drain(e, &t->out[stream], e->cfg.output_max);
	ROOMS_CALL(e, task_output, t, stream);
	/* the pipe reached EOF just now, after the task ended (a descendant
	 * held it): what it wrote since goes to the [state] dir */
	if (was_open && !more && !task_live(t))
		ROOMS_CALL(e, task_output_done, t, stream);
	engine_notify_locked(e, OBJ_TASK, id);
}

/* Work still waiting (after=) never runs once pcfs goes: it ends skipped,
 * which may decide others (restart from the head: the list changed). */
static void skip_waiting(struct engine *e)
{
	for (struct task *t = e->live_first, *next; t; t = next) {
		next = t->lnext;
		if (t->state != TS_WAITING)
			continue;
		snprintf(t->error, sizeof(t->error), "pcfs was unmounted while it waited");
		task_ended(e, t, TS_SKIPPED, 0);
		next = e->live_first;
	}
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
			task_send_signal(e, t, sig);
	}
	/* some hosts go whole (a pool's: its futures end with it) */
	for (struct host *h = e->hosts; h; h = h->next)
		if (h->ops->killed_whole && !h->reaped)
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
	skip_waiting(e);
	if (e->cfg.unmount_policy != UNMOUNT_LEAVE)
		remember_groups(e);
	switch (e->cfg.unmount_policy) {
	case UNMOUNT_LEAVE:
		return;
	case UNMOUNT_KILL:
		shutdown_signal_all(e, SIGKILL);
		e->kill_sent = true;
		arm_timer_ms(e->shutfd, 3000);   /* bounded: then give up */
		return;
	case UNMOUNT_TERM:
		shutdown_signal_all(e, SIGTERM);
		arm_timer_ms(e->shutfd, e->cfg.unmount_grace_ms);
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

/* The unmount grace ran out: KILL what is left, then give up on it. */
static void shutdown_timer_fired(struct engine *e)
{
	uint64_t v;
	if (read(e->shutfd, &v, sizeof(v)) < 0)
		return;
	if (!e->kill_sent) {
		log_add(e, LOG_LVL_INFO, "unmount: %zu tasks outlived the grace; sending KILL",
			e->nlive);
		shutdown_signal_all(e, SIGKILL);
		e->kill_sent = true;
		arm_timer_ms(e->shutfd, 3000);
	} else {
		log_add(e, LOG_LVL_ERROR, "unmount: %zu tasks survived KILL; giving up on them",
			e->nlive);
		e->cfg.unmount_policy = UNMOUNT_LEAVE;
	}
}

/* Events of a turn whose handlers run after it, without the lock. */
struct deferred {
	struct epoll_event ev[64];
	int n;
};

/* Handle one event of the turn (lock held): the core's own types here, the
 * rooms' through their rows. */
static void dispatch(struct engine *e, const struct epoll_event *ev, struct deferred *later)
{
	uint64_t key = ev->data.u64, id = WATCH_ID(key), v;
	enum watch_type type = WATCH_TYPE(key);
	switch (type) {
	case WATCH_SIGNAL:   /* reaped before the turn */
		return;
	case WATCH_STDOUT: output_readable(e, id, 1); return;
	case WATCH_STDERR: output_readable(e, id, 2); return;
	case WATCH_TIMER:  task_timer_fired(e, id); return;
	case WATCH_HOST:   host_readable(e, id); return;
	case WATCH_SHUTDOWN: shutdown_timer_fired(e); return;
	case WATCH_WAKE:
		if (read(e->wakefd, &v, sizeof(v)) < 0)
			return;
		return;
	default:
		break;
	}
	const struct watch_row *w = type < WATCH__COUNT ? &e->watch[type] : NULL;
	if (!w || !w->fn)
		return;
	if (w->unlocked)
		later->ev[later->n++] = *ev;
	else
		w->fn(e, id, ev->events);
}

/* SIGCHLD came: reap, then answer the waiters of what ended before the rest
 * of the batch (other tasks' output, timers, hosts): the reply to a parked
 * `wait` is what someone is blocked on now.  Returns with `lock` held. */
static void reap_turn(struct engine *e)
{
	/* one read takes every pending SIGCHLD (they merge) */
	struct signalfd_siginfo si[8];
	while (read(e->sigfd, si, sizeof(si)) == sizeof(si))
		;
	pthread_rwlock_wrlock(&e->reap_lock);
	pthread_mutex_lock(&e->lock);
	reap_children(e);
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);
	engine_flush_notify(e);
	pthread_mutex_lock(&e->lock);
}

void *engine_thread(void *arg)
{
	struct engine *e = arg;
	struct epoll_event evs[64];
	bool shutting = false;
	engine_watch_thread(e);

	for (;;) {
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
		if (reap)
			reap_turn(e);
		else
			pthread_mutex_lock(&e->lock);
		struct deferred later = { .n = 0 };
		for (int i = 0; i < n; i++)
			dispatch(e, &evs[i], &later);
		ROOMS_CALL0(e, turn_end);
		if (e->stopping && !shutting) {
			shutting = true;
			begin_shutdown(e);
		}
		bool done = shutting && shutdown_done(e);
		pthread_mutex_unlock(&e->lock);
		/* (memory reads /proc here, without the lock and with no reaping
		 * going on: only this thread reaps, so a pid read is not reused) */
		for (int i = 0; i < later.n && !done; i++) {
			uint64_t key = later.ev[i].data.u64;
			e->watch[WATCH_TYPE(key)].fn(e, WATCH_ID(key), later.ev[i].events);
		}
		engine_flush_notify(e);
		engine_close_soon_done(e);
		if (!shutting)
			ROOMS_CALL0(e, after_turn);
		if (done)
			break;
	}
	return NULL;
}

