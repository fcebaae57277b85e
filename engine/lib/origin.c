/* origin.c - the writer's directory and environment, read from /proc, and a
 * task's directory, environment and program made of them (origin.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "origin.h"

extern char **environ;

/* ---- capture ------------------------------------------------------------------ */

/* May as_uid read pid's /proc files as the process's own user would?  /proc
 * gives a process's files to its effective uid only while it is dumpable
 * (not set-user-ID, not made undumpable): what the kernel checks for that
 * user's own read of environ and cwd. */
static int readable_as(pid_t pid, uid_t as_uid)
{
	char path[32];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (as_uid != (uid_t)-1 && st.st_uid != as_uid)
		return -EACCES;
	return 0;
}

static void capture_cwd(struct origin *o)
{
	char path[32], buf[ORIGIN_PATH_MAX + 16];
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)o->pid);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0) {
		o->cwd_err = errno == ENOENT ? ESRCH : errno;
		return;
	}
	buf[n] = '\0';
	static const char deleted[] = " (deleted)";
	size_t dl = sizeof(deleted) - 1;
	if (buf[0] != '/' || n > ORIGIN_PATH_MAX ||
	    ((size_t)n > dl && strcmp(buf + n - dl, deleted) == 0 && access(buf, F_OK) < 0)) {
		/* removed, or outside the daemon's view of the file system */
		o->cwd_err = ENOENT;
		return;
	}
	if (!(o->cwd = strdup(buf)))
		o->cwd_err = ENOMEM;
}

/* The whole environ file, which the kernel reads out of the writer's memory
 * in pieces of a page; over ORIGIN_ENV_MAX is E2BIG. */
static void capture_env(struct origin *o)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)o->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		o->env_err = errno == ENOENT ? ESRCH : errno;
		return;
	}
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	ssize_t n = 0;
	/* procfs fills a read as far as the environment goes: a short one is
	 * its end, and saves asking again for the 0 */
	while (buf && (n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len < cap) {
			n = 0;
			break;
		}
		if (len == cap) {
			char *nb = cap < ORIGIN_ENV_MAX ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				n = cap < ORIGIN_ENV_MAX ? -ENOMEM : -E2BIG;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int err = !buf ? ENOMEM : n == -E2BIG ? E2BIG : n == -ENOMEM ? ENOMEM : n < 0 ? errno : 0;
	close(fd);
	if (err) {
		free(buf);
		o->env_err = err;
		return;
	}
	/* the loop grew the buffer whenever it was full: there is room for a
	 * NUL to end a last string that had none */
	if (len && buf[len - 1] != '\0')
		buf[len++] = '\0';
	o->env = buf;
	o->env_len = len;
}

struct origin *origin_capture(pid_t pid, uid_t as_uid)
{
	struct origin *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->refs = 1;
	o->pid = pid;
	/* (a read for the daemon's own user needs no look first: a pid that
	 * is gone shows as ENOENT from the reads themselves) */
	int rc = pid <= 0 ? -ESRCH : as_uid == (uid_t)-1 ? 0 : readable_as(pid, as_uid);
	if (rc < 0) {
		o->cwd_err = o->env_err = -rc;
		return o;
	}
	capture_cwd(o);
	capture_env(o);
	return o;
}

struct origin *origin_restore(const char *cwd, int cwd_err, const char *env, size_t env_len,
			      int env_err)
{
	struct origin *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->refs = 1;
	o->cwd_err = cwd ? 0 : cwd_err ? cwd_err : ESRCH;
	o->env_err = env ? 0 : env_err ? env_err : ESRCH;
	o->env_len = env ? env_len : 0;
	if ((cwd && !(o->cwd = strdup(cwd))) ||
	    (env && !(o->env = malloc(env_len + 1)))) {
		origin_put(o);
		return NULL;
	}
	if (env) {
		memcpy(o->env, env, env_len);
		o->env[env_len] = '\0';
	}
	return o;
}

struct origin *origin_get(struct origin *o)
{
	if (o)
		__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
	return o;
}

void origin_put(struct origin *o)
{
	if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(o->cwd);
	free(o->env);
	free(o);
}

/* ---- what a line makes of it ---------------------------------------------------- */

static const char *read_failure(int err)
{
	return err == ESRCH ? "the writing process is gone or not visible to pcfs"
	     : err == EACCES ? "permission denied (a process running set-user-ID, or not yours)"
	     : err == E2BIG ? "it is larger than 128 KiB"
	     : strerror(err);
}

int origin_cwd(const struct origin *o, const char *cwd_opt, char *out, size_t outlen,
	       char *err, size_t errlen)
{
	if (cwd_opt && cwd_opt[0] == '/') {
		if (strlen(cwd_opt) >= outlen)
			goto too_long;
		strcpy(out, cwd_opt);
		return 0;
	}
	if (!o) {
		if (cwd_opt) {
			snprintf(err, errlen, "cwd=%s is relative, and this line has no writer to "
				 "be relative to", cwd_opt);
			return -EINVAL;
		}
		out[0] = '\0';
		return 0;
	}
	if (!o->cwd) {
		snprintf(err, errlen, "the writer's directory (/proc/%d/cwd) cannot be read: %s",
			 (int)o->pid, read_failure(o->cwd_err));
		return -o->cwd_err;
	}
	int n = cwd_opt ? snprintf(out, outlen, "%s%s%s", o->cwd,
				   o->cwd[1] ? "/" : "", cwd_opt)
			: snprintf(out, outlen, "%s", o->cwd);
	if (n >= 0 && (size_t)n < outlen)
		return 0;
too_long:
	snprintf(err, errlen, "cwd: the directory's path is longer than %zu bytes", outlen - 1);
	return -ENAMETOOLONG;
}

/* Is the inherited kv dropped: set by pcfs, removed by env=-K, or set again by env=K=V? */
static bool env_dropped(char *const *edits, size_t nedits, const char *kv)
{
	size_t klen = strcspn(kv, "=");
	if (strncmp(kv, "PCFS_", 5) == 0)
		return true;
	for (size_t i = 0; i < nedits; i++) {
		const char *e = edits[i][0] == '-' ? edits[i] + 1 : edits[i];
		if (strncmp(e, kv, klen) == 0 && (e[klen] == '=' || e[klen] == '\0'))
			return true;
	}
	return false;
}

static int env_push(char ***v, size_t *n, size_t *cap, char *s)
{
	if (*n + 1 >= *cap) {
		size_t nc = *cap * 2;
		char **nv = realloc(*v, nc * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
	return 0;
}

int origin_env_check(const struct origin *o, bool clean, char *err, size_t errlen)
{
	if (clean || !o || o->env)
		return 0;
	snprintf(err, errlen, "the writer's environment (/proc/%d/environ) cannot be read: %s",
		 (int)o->pid, read_failure(o->env_err));
	return -o->env_err;
}

int origin_env_edit(const struct origin *o, bool clean, char *const *edits, size_t nedits,
		    char ***out, char *err, size_t errlen)
{
	int rc = origin_env_check(o, clean, err, errlen);
	if (rc < 0)
		return rc;
	size_t n = 0, cap = 16;
	char **v = calloc(cap, sizeof(*v));   /* an empty environment is still a vector */
	rc = v ? 0 : -ENOMEM;
	if (rc == 0 && !clean && o) {
		for (const char *kv = o->env; rc == 0 && kv < o->env + o->env_len;
		     kv += strlen(kv) + 1)
			if (strchr(kv, '=') && !env_dropped(edits, nedits, kv))
				rc = env_push(&v, &n, &cap, (char *)kv);
	} else if (rc == 0 && !clean) {
		for (char **p = environ; rc == 0 && *p; p++)
			if (!env_dropped(edits, nedits, *p))
				rc = env_push(&v, &n, &cap, *p);
	}
	for (size_t i = 0; rc == 0 && i < nedits; i++)
		if (edits[i][0] != '-')
			rc = env_push(&v, &n, &cap, edits[i]);
	if (rc < 0) {
		free(v);
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	*out = v;
	return 0;
}

int origin_env(const struct origin *o, const struct task_spec *s, char ***out, char *err,
	       size_t errlen)
{
	return origin_env_edit(o, s->env_clean, s->env, s->nenv, out, err, errlen);
}

const char *env_lookup(char *const *env, const char *key)
{
	size_t klen = strlen(key);
	for (; env && *env; env++)
		if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
			return *env + klen + 1;
	return NULL;
}

/* ---- the program ---------------------------------------------------------------- */

/* Is dir/prog (dir taken against cwd when relative) an executable regular
 * file?  1 yes, 0 no such file, -EACCES there but not executable. */
static int try_dir(const char *dir, size_t dlen, const char *prog, const char *cwd, char *out,
		   size_t outlen)
{
	int n;
	if (dlen == 0)
		dir = ".", dlen = 1;
	if (dir[0] != '/' && cwd)
		n = snprintf(out, outlen, "%s/%.*s/%s", cwd, (int)dlen, dir, prog);
	else
		n = snprintf(out, outlen, "%.*s/%s", (int)dlen, dir, prog);
	if (n < 0 || (size_t)n >= outlen)
		return 0;
	struct stat st;
	if (stat(out, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return access(out, X_OK) == 0 ? 1 : -EACCES;
}

int origin_which(const char *prog, const char *path, const char *cwd, char *out, size_t outlen)
{
	if (strchr(prog, '/')) {
		if (strlen(prog) >= outlen)
			return -ENAMETOOLONG;
		strcpy(out, prog);
		return 0;
	}
	if (!prog[0])
		return -ENOENT;
	char deflt[256];
	if (!path) {
		size_t n = confstr(_CS_PATH, deflt, sizeof(deflt));
		path = n > 0 && n <= sizeof(deflt) ? deflt : "/bin:/usr/bin";
	}
	int denied = 0;
	for (const char *p = path;; p++) {
		size_t dlen = strcspn(p, ":");
		int rc = try_dir(p, dlen, prog, cwd, out, outlen);
		if (rc == 1)
			return 0;
		if (rc < 0)
			denied = rc;
		p += dlen;
		if (!*p)
			break;
	}
	return denied ? denied : -ENOENT;
}
