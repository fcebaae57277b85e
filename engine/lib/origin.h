/* origin.h - where a line was written from: the writer's directory and
 * environment, and what a task's own directory, environment and program are
 * made of them.
 *
 * A task runs where the process that wrote its line stood, with that
 * process's environment as the kernel has it (/proc/PID/environ: what it was
 * given at its exec; a shell's later `export` is not in it, which is why
 * env= exists).  The capture is made while the writer is blocked in its
 * write(), so its pid names it; a line that runs later (at close, or a
 * queued future) runs with what was captured then, not with what the pid
 * names by that time.
 *
 * What cannot be read is kept as an errno, not as a silent fallback: a line
 * that needs it is refused with the reason (origin_cwd, origin_env).
 */
#ifndef PCFS_ORIGIN_H
#define PCFS_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "spec.h"

#define ORIGIN_ENV_MAX (128 * 1024)  /* the largest environment taken from a writer */
#define ORIGIN_PATH_MAX 4096

struct origin {
	int refs;              /* atomic; origin_put frees at 0 */
	pid_t pid;             /* the writer, as the daemon's pid namespace sees it */
	char *cwd;             /* its directory (absolute), or NULL with cwd_err */
	int cwd_err;           /* errno: why it could not be read */
	char *env;             /* K=V\0K=V\0... (env_len bytes; may be 0), or NULL with env_err */
	size_t env_len;
	int env_err;
};

/* Read pid's directory and environment.  `as_uid`: when the daemon reads for
 * another user (it is root, they are not), the process must be one that user
 * could read themselves (/proc shows a process that is theirs and not
 * set-user-ID as theirs); (uid_t)-1 skips that check.  NULL only when out of
 * memory; whatever could not be read is in cwd_err/env_err. */
struct origin *origin_capture(pid_t pid, uid_t as_uid);
/* An origin as it was captured once (a journal's copy): cwd and env (env_len
 * bytes of K=V\0...), or NULL with why they could not be read.  NULL only
 * when out of memory. */
struct origin *origin_restore(const char *cwd, int cwd_err, const char *env, size_t env_len,
			      int env_err);
struct origin *origin_get(struct origin *o);
void origin_put(struct origin *o);

/* The directory a line runs in, into out: an absolute cwd= as it is, a
 * relative one (or none) against the writer's directory.  No origin: the
 * daemon's own start (cwd= must then be absolute; none means the daemon's
 * directory, *out = "").  Path arithmetic only: whether it is a directory
 * its owner may enter is for the caller to see, as them.  0, or -errno with
 * the reason in err. */
int origin_cwd(const struct origin *o, const char *cwd_opt, char *out, size_t outlen,
	       char *err, size_t errlen);

/* The base environment of a line's tasks: the writer's (nothing with env=-;
 * the daemon's own with no origin), without the keys env=-KEY removes and
 * the PCFS_ ones pcfs sets itself, then env=KEY=VALUE.  A NULL-terminated
 * vector of strings borrowed from o, s and environ, malloc'd (*out, the
 * caller frees the vector only).  0, or -errno with the reason in err. */
int origin_env(const struct origin *o, const struct task_spec *s, char ***out, char *err,
	       size_t errlen);

/* Can a line take its environment from o (clean: it has env=-, and takes
 * none)?  0, or -errno with the reason: what origin_env would refuse,
 * without making the vector. */
int origin_env_check(const struct origin *o, bool clean, char *err, size_t errlen);

/* The same with the edits given apart: env=K=V and env=-K strings, and
 * clean for env=-. */
int origin_env_edit(const struct origin *o, bool clean, char *const *edits, size_t nedits,
		    char ***out, char *err, size_t errlen);

/* The value of key in a NULL-terminated environment vector, or NULL. */
const char *env_lookup(char *const *env, const char *key);

/* What execvp would run for prog: a name with a '/' as it is; else the first
 * executable regular file prog on path (NULL or unset: the system's default
 * path), whose relative entries (and empty ones) are taken against cwd (NULL:
 * the caller's own directory).  0 with the path in out, or -ENOENT / -EACCES
 * (found, but none executable) / -ENAMETOOLONG. */
int origin_which(const char *prog, const char *path, const char *cwd, char *out, size_t outlen);

#endif
