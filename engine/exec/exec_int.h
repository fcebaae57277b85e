/* exec_int.h - the exec room's own: start methods and the fork server
 * (spawn.c), the lines of a spawn write (batch.c), thread hosts
 * (threadhost.c), the room's row (exec.c).  Included by those files only.
 */
#ifndef PCFS_EXEC_INT_H
#define PCFS_EXEC_INT_H

#include <spawn.h>

#include "exec.h"

/* A process task's stdout and stderr pipes (read ends [0], non-blocking),
 * and, when made ahead, posix_spawn's file actions putting /dev/null, out[1]
 * and err[1] on 0, 1 and 2: glibc checks each descriptor of a dup2 action
 * with a getrlimit call, six syscalls a spawn. */
struct out_pipes {
	int out[2], err[2];
	bool has_fa;
	posix_spawn_file_actions_t fa;
};

/* Pipe pairs the engine keeps made ahead for spawns. */
#define PIPE_STASH 4

struct exec {
	/* the fork server: requests are round trips under server_lock */
	pthread_mutex_t server_lock;
	pid_t server_pid;              /* 0 once it ended: restarted on next use */
	int server_sock;
	void *server_reply;            /* receive buffer for its replies (server_lock) */

	posix_spawnattr_t spawn_attr;  /* made once (spawn_attr_init), only read after */

	/* Output pipes made ahead by the engine thread (pipes_take). */
	pthread_mutex_t pipe_lock;
	struct out_pipes pipe_stash[PIPE_STASH];
	unsigned npipe_stash;
};

/* spawn.c */
void spawn_attr_init(struct exec *x);
int spawn_forkserver(struct engine *e, char *err, size_t errlen);
void pipes_refill(struct engine *e);
void pipes_free(struct engine *e);
/* Start process tasks, tasks[i] from the line specs[i]; they are already in
 * the table (state STARTING, ids assigned).  Several at a time on a machine
 * with several CPUs.  Never fails as a whole: a task that cannot start ends
 * FAILED with its reason. */
void spawn_processes(struct engine *e, const struct task_spec *const *specs,
		     struct task **tasks, unsigned count, const struct cred *drop);
/* Start the `count` thread tasks of one line (one host process), likewise. */
void spawn_thread_tasks(struct engine *e, const struct task_spec *spec, struct task **tasks,
			unsigned count, const struct cred *drop);

/* threadhost.c: what a spawn line's thread host says */
extern const struct host_ops thread_host_ops;

#endif
