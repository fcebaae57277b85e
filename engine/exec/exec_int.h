/* exec_int.h - the exec room's own: start methods and the fork server
 * (spawn.c), the lines of a spawn write (batch.c), thread hosts
 * (threadhost.c), the room's row (exec.c).  Included by those files only.
 */
#ifndef PCFS_EXEC_INT_H
#define PCFS_EXEC_INT_H

#include <spawn.h>

#include "exec.h"
#include "origin.h"

/* What a line's tasks start with (launch.c): made once per line, freed with
 * the write, after its tasks have started. */
struct launch {
	char *cwd;            /* where they run (absolute); NULL: the daemon's directory */
	char **env;           /* their environment before PCFS_*: borrowed strings */
	char *prog;           /* exec: the program found on that environment's PATH */
	int prog_err;         /* exec: why none was (ENOENT, EACCES): the task fails */
	int file[3];          /* stdin=/stdout=/stderr= files, opened as the owner; -1 */
	bool created[3];      /* made by launch_open_files: removed if the write is refused */
};

/* One line of a write, parsed and prepared. */
struct line_start {
	struct task_spec spec;
	struct launch launch;
};

void launch_init(struct launch *l);
/* Directory, environment, program: no effect outside the daemon.  0, or
 * -errno with the reason (the writer's context could not be read...). */
int launch_prepare(const struct origin *o, const struct task_spec *s, struct launch *l,
		   char *err, size_t errlen);
/* As `drop` (NULL: as the daemon, who is the owner): check that a cwd= is a
 * directory, and open the line's files (none inside mnt, pcfs's own
 * mount).  0, or -errno with the reason ("stdout=./x: Permission denied"). */
int launch_open_files(const struct task_spec *s, const struct cred *drop, const char *mnt,
		      struct launch *l, char *err, size_t errlen);
/* The write is accepted: truncate what `>` truncates. */
void launch_commit(const struct task_spec *s, struct launch *l);
/* The write is refused: remove the files launch_open_files created. */
void launch_undo(const struct task_spec *s, const struct cred *drop, struct launch *l);
void launch_free(struct launch *l);

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

	struct waiting *waiting;       /* after=: held lines and their waiters (waiting.c) */

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
/* Start process tasks, tasks[i] from the line lines[i]; they are already in
 * the table (state STARTING, ids assigned).  Several at a time on a machine
 * with several CPUs.  Never fails as a whole: a task that cannot start ends
 * FAILED with its reason. */
void spawn_processes(struct engine *e, const struct line_start *const *lines,
		     struct task **tasks, unsigned count, const struct cred *drop);
/* Start the `count` thread tasks of one line (one host process), likewise. */
void spawn_thread_tasks(struct engine *e, const struct line_start *line, struct task **tasks,
			unsigned count, const struct cred *drop);

/* batch.c: what a task takes of its line and owner (lock held); -ENOMEM */
int line_task_fill(struct task *t, const struct line_start *ls, const struct owner *owner,
		   const struct cred *drop);

/* waiting.c: after=.  How each dependency of a line stood at its write. */
struct dep_seen {
	bool ended, ok;               /* ended; ended with exit code 0 */
	bool unknown;                 /* forgotten before a restart: how is not known */
	char how[96];                 /* "task 7 failed (exit code 1)" */
};
int waiting_init(struct engine *e);
void waiting_fini(struct engine *e);
/* With `lock` held, before the write's tasks are made: every id of s's after=
 * is an earlier task's (the write's own will be first_new..+nnew: one of
 * those is a cycle); how each stands into seen[0..nafter).  -EINVAL with the
 * reason. */
int waiting_check_locked(struct engine *e, const struct task_spec *s, uint64_t first_new,
			 uint64_t nnew, struct dep_seen *seen, char *err, size_t errlen);
/* With `lock` held: the line's tasks (linked, STARTING) wait.  The line is
 * taken over (ls is left empty); o and drop are kept for their start. */
int waiting_add_locked(struct engine *e, struct line_start *ls, const struct origin *o,
		       const struct cred *drop, const struct dep_seen *seen, struct task **tasks,
		       unsigned count);
/* The room's task_ended and turn_end rows (lock held) and after_turn work
 * (no lock). */
void waiting_task_ended(struct engine *e, struct task *t);
void waiting_turn_end(struct engine *e);
void waiting_start_ready(struct engine *e);

/* The journal (waiting.c writes and renders W records, waitjournal.c
 * replays them).  A W record as restore makes it into a task again. */
struct restored_wait {
	uint64_t id;
	struct timespec start_rt;
	struct owner owner;
	bool has_drop;
	struct cred drop;
	struct origin *origin;        /* the caller's reference; NULL: the daemon's own */
	char why[600];                /* not empty: it cannot wait again (the reason) */
};
/* Every waiting task's W record, for a compacted journal (lock held). */
size_t waiting_render(struct engine *e, struct strbuf *sb);
/* Restore is under way (on): what becomes ready does not start until off. */
void waiting_hold_back(struct engine *e, bool on);
/* Lock held: r's task back in the table, waiting again for what ls (parsed,
 * prepared and its files opened; taken over) says, or failed with r->why. */
int waiting_restore_locked(struct engine *e, const struct restored_wait *r,
			   struct line_start *ls);
struct journal_client;
extern const struct journal_client exec_journal;

/* threadhost.c: what a spawn line's thread host says */
extern const struct host_ops thread_host_ops;

#endif
