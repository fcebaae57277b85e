/* lifecycle.c - a task's start and end as the rooms hear of them, its
 * signals, and its timeout (TERM, then KILL after the grace).
 *
 * Everything here runs with `lock` held, but engine_task_ctl, which takes it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdtab.h"
#include "core.h"
#include "memstat.h"

void task_started(struct engine *e, struct task *t)
{
	ROOMS_CALL(e, task_started, t);
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
	task_started(e, t);
	engine_notify_locked(e, OBJ_STATS, 0);
}

void task_ended(struct engine *e, struct task *t, enum task_state st, int code)
{
	if (task_state_ended(t->state))
		return;
	bool was_thread = t->kind == TASK_THREAD;
	if (t->state == TS_WAITING)   /* it ends without having run (skipped) */
		e->st.waiting--;
	t->state = st;
	live_unlink(e, t);
	t->exitcode = code;
	clock_gettime(CLOCK_REALTIME, &t->end_rt);
	clock_gettime(CLOCK_MONOTONIC, &t->end_mono);
	task_close_timer(e, t);
	task_close_stat(t);   /* readers hold dups of their own */

	/* The process is gone, so everything it wrote is in the pipe now: take
	 * it before anyone is told, so `wait` then `cat stdout` sees it all.
	 * Our own write end goes first, so the drain can see EOF; descendants
	 * that still hold the pipe keep being read until EOF. */
	task_close_out_w(t);
	for (int s = 1; s <= 2; s++)
		out_drain(e, &t->out[s], e->cfg.output_max);

	if (st == TS_EXITED)
		e->st.exited++;
	else if (st == TS_KILLED)
		e->st.killed++;
	else if (st == TS_SKIPPED)
		e->st.skipped++;
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
	/* every room, in order (core.h): channels take what it wrote to
	 * them, persist journals the end; then, and only then, the waiters */
	ROOMS_CALL(e, task_ended, t);
	engine_notify_locked(e, OBJ_TASK, t->id);
	engine_notify_locked(e, OBJ_STATS, 0);

	trim_history(e, t);
}

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

/* ---- signals and timeouts ------------------------------------------------ */

int task_send_signal(struct engine *e, struct task *t, int sig)
{
	if (t->pool && t->kind == TASK_THREAD)
		return -EPERM;    /* one slot thread of a pool host cannot be signalled alone */
	if (t->kind == TASK_THREAD) {
		if (!t->host || t->host->sock < 0)
			return -ESRCH;
		return t->host->ops->signal ? t->host->ops->signal(e, t->host, t, sig) : -EPERM;
	}
	if (t->pid <= 0)
		return -ESRCH;   /* none yet (waiting): kill(-0) would be our own group */
	/* a room that holds the task's whole tree (its cgroup) delivers it */
	for (size_t i = 0; i < e->nrooms; i++) {
		if (!e->rooms[i]->task_signal)
			continue;
		int rc = e->rooms[i]->task_signal(e, t, sig);
		if (rc != -ENOSYS)
			return rc;
	}
	/* The task leads its own process group: the signal reaches its
	 * descendants too (`sh sleep 100 & wait` dies whole). */
	if (kill(-t->pid, sig) < 0 && kill(t->pid, sig) < 0)
		return -errno;
	return 0;
}

struct timespec ts_add_ms(struct timespec t, int64_t ms)
{
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

struct timespec ts_in_ms(clockid_t c, int64_t ms)
{
	struct timespec t;
	clock_gettime(c, &t);
	return ts_add_ms(t, ms);
}

void arm_timer_ms(int fd, int64_t ms)
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
	arm_timer_ms(t->timer_fd, t->timeout_ms);
	engine_watch(e, t->timer_fd, WATCH_TIMER, t->id);
}

void task_timer_fired(struct engine *e, uint64_t id)
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
		task_send_signal(e, t, SIGTERM);
		t->timer_stage = 1;
		arm_timer_ms(t->timer_fd, e->cfg.kill_grace_ms);
	} else {
		log_add(e, LOG_LVL_INFO, "task %llu: still alive %lldms after TERM, sending KILL",
			(unsigned long long)id, (long long)e->cfg.kill_grace_ms);
		t->term_signal = SIGKILL;
		task_send_signal(e, t, SIGKILL);
		task_close_timer(e, t);
	}
}

/* ---- ctl ------------------------------------------------------------------- */

/* A lost task's process still ran when this daemon started: it is not our
 * child, but it is still the user's task.  Signal its process group if the
 * pid still names the same process (a pidfd pins it while its start time is
 * checked, so a pid reused meanwhile is not signalled). */
static int signal_lost(struct task *t, int sig, char *err, size_t errlen)
{
	int pfd = (int)syscall(SYS_pidfd_open, t->lost_pid, 0);
	if (pfd < 0 || !ms_same_process(t->lost_pid, t->start_rt)) {
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

/* A ctl line's signal, staged by task_ctl_tab's handlers and sent once the
 * whole line is known good. */
struct task_cmd {
	int sig;
};

static int stage_signal(void *ctx, int sig)
{
	((struct task_cmd *)ctx)->sig = sig;
	return 0;
}

static int want_term(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	return stage_signal(ctx, SIGTERM);
}

static int want_kill(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	return stage_signal(ctx, SIGKILL);
}

static int want_stop(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	return stage_signal(ctx, SIGSTOP);
}

static int want_cont(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	return stage_signal(ctx, SIGCONT);
}

/* signal N|NAME: 15, TERM, SIGTERM, term; 1..64 (the real-time ones too). */
static int want_signal(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	int sig;
	if (parse_signal(argv[1], &sig) < 0 || sig < 1 || sig > 64) {
		snprintf(err, errlen, "signal needs one signal number or name (e.g. "
			 "'signal 10', 'signal USR1')");
		return -EINVAL;
	}
	return stage_signal(ctx, sig);
}

/* procs/ID/ctl: one command a line. */
static const struct cmdtab task_ctl_tab[] = {
	{ "term", 0, 0, want_term, "term" },
	{ "kill", 0, 0, want_kill, "kill" },
	{ "signal", 1, 1, want_signal, "signal N|NAME" },
	{ "stop", 0, 0, want_stop, "stop" },
	{ "cont", 0, 0, want_cont, "cont" },
};

/* A waiting task has no process: a signal that would end it ends it before it
 * runs (skipped, saying so: what waits for it hears of that); stop and cont
 * have nothing to act on. */
static int end_waiting(struct engine *e, struct task *t, int sig, const char *cmd, char *err,
		       size_t errlen)
{
	if (sig == SIGSTOP || sig == SIGCONT) {
		snprintf(err, errlen, "task %llu is waiting (after=): it has no process to %s yet",
			 (unsigned long long)t->id, sig == SIGSTOP ? "stop" : "continue");
		return -EINVAL;
	}
	snprintf(t->error, sizeof(t->error), "ended by ctl %s while it waited: it never ran", cmd);
	task_ended(e, t, TS_SKIPPED, 0);
	return 0;
}

int engine_task_ctl(struct engine *e, uint64_t id, const char *cmd, char *err, size_t errlen)
{
	struct task_cmd c = { 0 };
	int rc = cmd_exec(task_ctl_tab, sizeof(task_ctl_tab) / sizeof(task_ctl_tab[0]), cmd, &c,
			  err, errlen);
	if (rc < 0)
		return rc;
	int sig = c.sig;

	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t) {
		rc = -ENOENT;
	} else if (t->state == TS_LOST && t->lost_pid) {
		rc = signal_lost(t, sig, err, errlen);
	} else if (task_state_ended(t->state)) {
		snprintf(err, errlen, "task %llu has already ended", (unsigned long long)id);
		rc = -ESRCH;
	} else if (t->state == TS_WAITING) {
		rc = end_waiting(e, t, sig, cmd, err, errlen);
	} else if (t->kind == TASK_THREAD && (sig == SIGSTOP || sig == SIGCONT)) {
		snprintf(err, errlen, "a thread cannot be stopped on its own: SIGSTOP stops its "
			 "whole host process");
		rc = -EINVAL;
	} else {
		rc = task_send_signal(e, t, sig);
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
