/* exec.c - the exec room's row: the fork server and the spawn attribute made
 * when the engine is, pipes made ahead after each turn of the loop, the fork
 * server's end heard by the reaper, and all of it undone at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_int.h"
#include "persist/persist.h"

static int exec_init(struct engine *e, char *err, size_t errlen)
{
	struct exec *x = calloc(1, sizeof(*x));
	if (!x || !(x->server_reply = malloc(WIRE_MAX))) {
		free(x);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->server_sock = -1;
	pthread_mutex_init(&x->server_lock, NULL);
	pthread_mutex_init(&x->pipe_lock, NULL);
	spawn_attr_init(x);
	e->exec = x;
	if (waiting_init(e) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return spawn_forkserver(e, err, errlen);
}

/* After each turn: pipes made ahead, and the work whose wait is over started. */
static void exec_after_turn(struct engine *e)
{
	pipes_refill(e);
	waiting_start_ready(e);
}

/* The fork server is the daemon's child too. */
static bool forkserver_reaped(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	if (pid != e->exec->server_pid)
		return false;
	log_add(e, e->stopping ? LOG_LVL_DEBUG : LOG_LVL_ERROR,
		"fork server (pid %d) ended; restarting it on next use", pid);
	e->exec->server_pid = 0;
	return true;
}

/* The loop has ended: the fork server ends when its socket closes; reap it. */
static void exec_stopped(struct engine *e)
{
	struct exec *x = e->exec;
	pthread_mutex_lock(&x->server_lock);
	if (x->server_sock >= 0) {
		close(x->server_sock);
		x->server_sock = -1;
	}
	if (x->server_pid > 0) {
		waitpid(x->server_pid, NULL, 0);
		x->server_pid = 0;
	}
	pthread_mutex_unlock(&x->server_lock);
}

static void exec_fini(struct engine *e)
{
	struct exec *x = e->exec;
	if (!x)
		return;
	if (x->server_sock >= 0)
		close(x->server_sock);
	waiting_fini(e);
	pipes_free(e);
	posix_spawnattr_destroy(&x->spawn_attr);
	pthread_mutex_destroy(&x->server_lock);
	pthread_mutex_destroy(&x->pipe_lock);
	free(x->server_reply);
	free(x);
	e->exec = NULL;
}

const struct room exec_room = {
	.name = "exec",
	.init = exec_init,
	.stopped = exec_stopped,
	.fini = exec_fini,
	.claim_child = forkserver_reaped,
	.task_ended = waiting_task_ended,
	.turn_end = waiting_turn_end,
	.after_turn = exec_after_turn,
	.journal = &exec_journal,   /* waiting work: waiting.c, waitjournal.c */
};
