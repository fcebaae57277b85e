/* exec.h - the exec room as the others see it: how a task comes to life.
 * What engine.c lists (exec_room), and what pools use to start their own
 * worker processes and commands.
 */
#ifndef PCFS_EXEC_H
#define PCFS_EXEC_H

#include "core/core.h"

extern const struct room exec_room;

/* How work for `who` (NULL: the daemon's user) runs: *drop is who to become
 * in the child (NULL: stay the daemon), *owner who owns it.  -EACCES with
 * the reason when it cannot run as them. */
int engine_run_as(struct engine *e, const struct cred *who, const struct cred **drop,
		  struct owner *owner, char *err, size_t errlen);

/* Is dir (a line's cwd=, as written: cwd_opt) a directory, looked at as
 * `drop` (NULL: the daemon)?  0, or -errno with "cwd=X: reason" in err; 0
 * at once when the line has no cwd=. */
int exec_dir_check(const char *cwd_opt, const char *dir, const struct cred *drop, char *err,
		   size_t errlen);

/* Start a pcfs-worker host process with fd 3 = one end of a new SOCK_SEQPACKET
 * pair; *sock gets the other (non-blocking).  Returns the pid or -errno.
 * Caller holds reap_lock for reading (or is the reaper).  drop: become it in
 * the child before exec (NULL: stay the daemon); nice: applied in the child
 * after the drop (WIRE_NO_NICE: none); join: the cgroups it joins before
 * exec (a pool's, cgroup.h; NULL: the daemon's). */
struct cg_join;
pid_t spawn_host(struct engine *e, char *const argv[], char *const envp[], const char *cwd,
		 const struct cred *drop, int64_t nice, const struct cg_join *join, int *sock);

/* A command (found on the daemon's PATH) with fds as 0, 1, 2, as `drop` (not
 * NULL): the clone + exec posix_spawn would make, with the credential drop
 * between; its environment envp (NULL: the daemon's).  Returns the pid or
 * -errno.  Caller holds reap_lock for reading. */
pid_t spawn_cmd_as(struct engine *e, char *const argv[], char *const envp[], const int fds[3],
		   const struct cred *drop);
/* The same in directory cwd (NULL: the daemon's), drop NULL: as the daemon.
 * It leads a process group of its own.  -errno also when the drop or the
 * chdir fails (the child is then reaped as a stranger). */
pid_t spawn_cmd_in(struct engine *e, char *const argv[], char *const envp[], const int fds[3],
		   const struct cred *drop, const char *cwd);

#endif
