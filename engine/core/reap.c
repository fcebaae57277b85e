/* reap.c - the reaper: every task, every worker host and every orphan of a
 * task is the daemon's child (it is a subreaper), reaped only here, on the
 * engine thread, with reap_lock held for writing and `lock` held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "core.h"

/* A child that is no task's and no host's, no spawner's either: each room's
 * orphan hook (memory keeps it a while, for a cow child announced late). */
static void orphan(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	ROOMS_CALL(e, orphan, pid, status, ru);
}

static bool claimed(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	for (size_t i = 0; i < e->nrooms; i++)
		if (e->rooms[i]->claim_child && e->rooms[i]->claim_child(e, pid, status, ru))
			return true;
	return false;
}

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
			orphan(e, e->early[i].pid, e->early[i].status, &e->early[i].ru);
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

void reap_children(struct engine *e)
{
	for (;;) {
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, WNOHANG | WUNTRACED | WCONTINUED, &ru);
		if (pid <= 0)
			break;
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
		/* A room's own child (the fork server, a command of the Slurm
		 * poller), a spawner's not yet published, or else an orphaned
		 * descendant of some task, reparented to us as the subreaper. */
		if (claimed(e, pid, status, &ru))
			continue;
		if (early_keep(e, pid, status, &ru))
			continue;
		orphan(e, pid, status, &ru);
	}
}

