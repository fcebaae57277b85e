/* cow.c - copy-on-write: the `cow` workload's child as a task of its
 * own, and the `cow` figures of any forked task.
 *
 * The cow workload creates its child with clone(CLONE_PARENT), so the child
 * is the daemon's child like every task process, reaped only by the engine
 * thread.  The parent's first stdout line, `cow size=B child=PID`, names it;
 * the engine (reading that pipe on its own thread) makes it a task with
 * `parent_id` set.  The child does nothing before that line is written, but a
 * signal to the group may still kill it first: the reaper then keeps its wait
 * status among the `strangers` for a while, and the announcement picks it up.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory_int.h"

#define STRANGER_KEEP_S 10   /* long enough for any announcement in flight */
#define ANNOUNCE_MAX 256     /* the announcement is the first line, and short */

void stranger_reaped(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	struct stranger *s = &e->memory->strangers[e->memory->stranger_next];
	e->memory->stranger_next = (e->memory->stranger_next + 1) % STRANGERS;
	s->pid = pid;
	s->status = status;
	s->ru = *ru;
	clock_gettime(CLOCK_MONOTONIC, &s->when);
}

/* Take pid's entry, if it was reaped recently. */
static struct stranger *stranger_take(struct engine *e, pid_t pid)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < STRANGERS; i++) {
		struct stranger *s = &e->memory->strangers[i];
		if (s->pid != pid)
			continue;
		s->pid = 0;
		if (now.tv_sec - s->when.tv_sec <= STRANGER_KEEP_S)
			return s;
	}
	return NULL;
}

/* Make the announced child a task (lock held, engine thread). */
static void adopt_child(struct engine *e, struct task *parent, pid_t pid)
{
	/* Alive or a zombie: ours to reap later (only this thread reaps).
	 * Otherwise it has been reaped already, and its status is kept. */
	bool present = kill(pid, 0) == 0;
	/* The announcement is the task's own output: a task that lies (one its
	 * owner could ptrace, say) must not make the daemon adopt, and later
	 * signal, a process that is not its child.  The real child stays in its
	 * parent's process group, which no process of another session can join. */
	if (present && getpgid(pid) != parent->pid) {
		log_add(e, LOG_LVL_WARN, "task %llu: announced cow child pid %d is not in its "
			"process group; not tracked", (unsigned long long)parent->id, pid);
		return;
	}
	struct stranger *dead = stranger_take(e, pid);
	if (present)
		dead = NULL;   /* an older stranger with a reused pid */
	else if (!dead) {
		log_add(e, LOG_LVL_WARN, "task %llu: its cow child (pid %d) is gone and was "
			"never reaped here; not tracked", (unsigned long long)parent->id, pid);
		return;
	}
	struct task *c = task_alloc(e, parent->cmd);
	if (!c) {
		log_add(e, LOG_LVL_ERROR, "task %llu: out of memory for its cow child (pid %d)",
			(unsigned long long)parent->id, pid);
		return;
	}
	c->kind = TASK_PROCESS;
	c->method = METHOD_FORK;   /* clone(CLONE_PARENT|SIGCHLD): a fork */
	c->workload = WL_COW;
	c->pid = pid;
	c->parent_id = parent->id;
	c->cow_ref = parent->pid;
	c->cow_scanned = true;     /* the child announces nothing */
	c->owner = parent->owner;
	memcpy(c->name, parent->name, sizeof(c->name));
	task_insert_running(e, c);
	log_add(e, LOG_LVL_INFO, "task %llu: cow child pid %d is task %llu",
		(unsigned long long)parent->id, pid, (unsigned long long)c->id);
	if (dead)
		task_end_with_status(e, c, dead->status, &dead->ru);
}

void cow_scan_output(struct engine *e, struct task *t, int stream)
{
	if (stream != 1 || t->workload != WL_COW || t->cow_scanned)
		return;
	const struct outbuf *o = &t->out[1];
	const char *nl = o->len ? memchr(o->data, '\n', o->len) : NULL;
	if (!nl) {
		if (o->len >= ANNOUNCE_MAX)
			t->cow_scanned = true;   /* not an announcement: stop looking */
		return;
	}
	t->cow_scanned = true;
	char line[ANNOUNCE_MAX];
	size_t n = (size_t)(nl - o->data);
	if (n >= sizeof(line))
		return;
	memcpy(line, o->data, n);
	line[n] = '\0';
	long long size;
	int pid, used = 0;
	if (sscanf(line, "cow size=%lld child=%d%n", &size, &pid, &used) == 2 &&
	    (size_t)used == n && pid > 0)
		adopt_child(e, t, pid);
}

/* ---- the cow file ------------------------------------------------------------------- */

/* Why a task has no fork parent to compare with (NULL if it has one). */
static const char *cow_na_reason(const struct task *t)
{
	if (t->kind == TASK_THREAD)
		return "a thread shares its host's address space: nothing is copied";
	if (t->state == TS_FAILED)
		return "it never started";
	if (t->cow_ref > 0)
		return NULL;
	if (!workload_is_builtin(t->workload))
		return "exec'd: the new program image shares no pages with its parent";
	return "started by exec of pcfs-worker (method=spawn/vfork): a fresh image, "
	       "nothing shared by fork";
}

int engine_task_cow(struct engine *e, uint64_t id, struct task_cow *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	struct task *t = task_find(e, id);
	if (!t || t->state == TS_STARTING) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	const char *na = cow_na_reason(t);
	bool live = t->state == TS_RUNNING || t->state == TS_STOPPED;
	pid_t pid = t->pid, ref = t->cow_ref;
	out->parent_id = t->parent_id;
	out->parent_pid = ref;
	pthread_mutex_unlock(&e->lock);
	if (na) {
		out->method = COW_NA;
		snprintf(out->reason, sizeof(out->reason), "%s", na);
		return 0;
	}

	bool exact = false;
	int rc = live ? ms_read_cow(pid, ref, &out->c, &exact) : -ESRCH;
	int err = -rc;
	pthread_mutex_lock(&e->lock);
	t = task_find(e, id);
	if (!t) {
		rc = -ENOENT;
	} else if (rc == 0) {
		out->live = true;
		if (exact)   /* what stays after the end: measured while both ran */
			task_store_cow(t, &out->c, exact);
	} else if (t->mem && t->mem->have_cow) {
		out->c = t->mem->cow;
		exact = t->mem->cow_exact;
		rc = 0;
	} else {
		rc = -ESRCH;
	}
	pthread_mutex_unlock(&e->lock);
	if (rc == -ESRCH)
		log_add(e, LOG_LVL_WARN, "task %llu: no cow figures: its /proc entry is gone (%s) "
			"and they were never read while it ran", (unsigned long long)id,
			strerror(err));
	if (rc < 0)
		return rc;
	out->method = exact ? COW_PAGEMAP : COW_SMAPS;
	if (exact && out->c.estimated)
		snprintf(out->reason, sizeof(out->reason), "%llu pages of mappings over 4 GiB "
			 "counted from smaps", (unsigned long long)out->c.estimated);
	if (!exact)
		snprintf(out->reason, sizeof(out->reason), "pagemap gave no frame numbers (needs "
			 "CAP_SYS_ADMIN) or the parent (pid %d) is gone: Shared_* counted as "
			 "shared, Private_Dirty as copied", (int)ref);
	return 0;
}
