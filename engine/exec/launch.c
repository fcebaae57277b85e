/* launch.c - what a line's tasks start with, made once per line from its
 * writer's context (lib/origin.h): the directory, the environment, the
 * program found on that environment's PATH, and the stdin=/stdout=/stderr=
 * files, opened as the line's owner.
 *
 * Everything that can refuse a line is done before any task starts, so a
 * write is still refused whole: launch_prepare has no effect outside the
 * daemon; launch_open_files creates files, which launch_undo removes again
 * when the write is refused after all; a file is truncated (`>`) only by
 * launch_commit, once the write is accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec_int.h"

static const char *const stream_key[3] = { "stdin", "stdout", "stderr" };

#define FILE_PATH_MAX (2 * ORIGIN_PATH_MAX + 2)

/* A line's file as opened: absolute, or relative to its directory (none:
 * the daemon's). */
static void file_path(const char *dir, const char *path, char out[FILE_PATH_MAX])
{
	if (path[0] == '/' || !dir)
		snprintf(out, FILE_PATH_MAX, "%s", path);
	else
		snprintf(out, FILE_PATH_MAX, "%s/%s", dir, path);
}

void launch_init(struct launch *l)
{
	*l = (struct launch){ .file = { -1, -1, -1 } };
}

int launch_prepare(const struct origin *o, const struct task_spec *s, struct launch *l,
		   char *err, size_t errlen)
{
	char buf[ORIGIN_PATH_MAX];
	int rc = origin_cwd(o, s->cwd, buf, sizeof(buf), err, errlen);
	if (rc < 0)
		return rc;
	if (buf[0] && !(l->cwd = strdup(buf)))
		goto nomem;
	rc = origin_env(o, s, &l->env, err, errlen);
	if (rc < 0)
		return rc;
	if (s->workload == WL_EXEC) {
		rc = origin_which(s->argv[0], env_lookup(l->env, "PATH"), l->cwd, buf, sizeof(buf));
		if (rc < 0)
			l->prog_err = -rc;   /* the task fails as an exec would: 127 or 126 */
		else if (!(l->prog = strdup(buf)))
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* ---- files, opened as their owner -------------------------------------------------- */

/* The calling thread's file-system identity, for opens made as another
 * user: Linux keeps fsuid, fsgid and the groups per thread, and the raw
 * setgroups system call changes only the caller's (glibc's wrapper would
 * change every thread's).  A fsuid other than 0 also takes the file
 * capabilities (CAP_DAC_OVERRIDE...) out of the thread's effective set;
 * going back to 0 gives them back. */
struct fs_ident {
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[CRED_GROUPS_MAX];
};

/* Back to the daemon's own.  A thread left as another user would go on
 * serving requests with their rights: that cannot be let happen. */
static void unbecome(const struct fs_ident *was)
{
	setfsuid(was->fsuid);
	setfsgid(was->fsgid);
	if (syscall(SYS_setgroups, (size_t)was->ngroups, was->groups) < 0 ||
	    (uid_t)setfsuid((uid_t)-1) != was->fsuid) {
		fprintf(stderr, "pcfs: cannot restore a thread's identity after opening a "
			"file as another user: stopping\n");
		abort();
	}
}

/* Become c for file-system purposes.  On failure nothing is left changed. */
static int become(const struct cred *c, struct fs_ident *was)
{
	was->fsuid = (uid_t)setfsuid((uid_t)-1);   /* -1 changes nothing, and tells */
	was->fsgid = (gid_t)setfsgid((gid_t)-1);
	was->ngroups = getgroups(CRED_GROUPS_MAX, was->groups);
	if (was->ngroups < 0)
		return -errno;
	if (syscall(SYS_setgroups, (size_t)c->ngroups, c->groups) < 0)
		return -errno;
	setfsgid(c->gid);
	setfsuid(c->uid);
	if ((uid_t)setfsuid((uid_t)-1) == c->uid && (gid_t)setfsgid((gid_t)-1) == c->gid)
		return 0;
	unbecome(was);
	return -EPERM;
}

/* Open one file: a reader's read-only, a writer's created if missing
 * (0666 less the daemon's umask) and appended to or, at launch_commit,
 * truncated.  Never blocks: a FIFO with no reader is ENXIO. */
static int open_one(const char *dir, const struct spec_file *f, int which, bool *created)
{
	char path[FILE_PATH_MAX];
	file_path(dir, f->path, path);
	int base = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	int fd;
	*created = false;
	if (which == 0) {
		fd = open(path, base | O_RDONLY);
	} else {
		base |= O_WRONLY | (f->append ? O_APPEND : 0);
		fd = open(path, base | O_CREAT | O_EXCL, 0666);
		if (fd >= 0)
			*created = true;
		else if (errno == EEXIST)
			fd = open(path, base);
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

static void remove_created(const struct launch *l, const struct task_spec *s, int which)
{
	char path[FILE_PATH_MAX];
	file_path(l->cwd, s->file[which].path, path);
	unlink(path);
}

/* stdout and stderr naming the same file share one open (2>&1): two opens
 * would each write from their own offset, over each other. */
static bool same_as_stdout(const struct task_spec *s, int which)
{
	return which == 2 && s->file[1].path && strcmp(s->file[1].path, s->file[2].path) == 0 &&
	       s->file[1].append == s->file[2].append;
}

/* A cwd= must be a directory, as a shell's cd refuses one that is not.
 * Called as the owner: what they could not see, they learn nothing of
 * (entering it is tried by the task itself, as them). */
static int dir_check(const char *cwd_opt, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int rc = stat(dir, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (rc < 0)
		snprintf(err, errlen, "cwd=%s: %s", cwd_opt, strerror(-rc));
	return rc;
}

int exec_dir_check(const char *cwd_opt, const char *dir, const struct cred *drop, char *err,
		   size_t errlen)
{
	struct fs_ident was;
	int rc = 0;
	if (!cwd_opt || !dir || !dir[0])
		return 0;   /* the writer's own directory: there, by definition */
	if (drop && (rc = become(drop, &was)) < 0) {
		snprintf(err, errlen, "cannot look at cwd= as uid %u: %s", (unsigned)drop->uid,
			 strerror(-rc));
		return rc;
	}
	rc = dir_check(cwd_opt, dir, err, errlen);
	if (drop)
		unbecome(&was);
	return rc;
}

/* A file of the daemon's own mount would be opened by the daemon from
 * inside one of its own requests: a channel's name does that job. */
static bool inside_mount(const char *dir, const char *path, const char *mnt)
{
	char full[FILE_PATH_MAX];
	size_t ml = strlen(mnt);
	file_path(dir, path, full);
	return strncmp(full, mnt, ml) == 0 && (full[ml] == '/' || full[ml] == '\0');
}

int launch_open_files(const struct task_spec *s, const struct cred *drop, const char *mnt,
		      struct launch *l, char *err, size_t errlen)
{
	struct fs_ident was;
	int rc = 0;
	bool files = s->file[0].path || s->file[1].path || s->file[2].path;
	if (!files && !(s->cwd && l->cwd))
		return 0;
	if (drop && (rc = become(drop, &was)) < 0) {
		snprintf(err, errlen, "cannot open files as uid %u: %s", (unsigned)drop->uid,
			 strerror(-rc));
		return rc;
	}
	if (s->cwd && l->cwd)
		rc = dir_check(s->cwd, l->cwd, err, errlen);
	for (int i = 0; i < 3 && rc == 0; i++) {
		if (s->file[i].path && inside_mount(l->cwd, s->file[i].path, mnt)) {
			snprintf(err, errlen, "%s=%s: a file inside pcfs's own mount (for a "
				 "channel, give its name: %s=NAME)", stream_key[i],
				 s->file[i].path, stream_key[i]);
			rc = -EINVAL;
			break;
		}
		if (!s->file[i].path)
			continue;
		if (same_as_stdout(s, i)) {
			l->file[i] = fcntl(l->file[1], F_DUPFD_CLOEXEC, 3);
			rc = l->file[i] < 0 ? -errno : 0;
		} else {
			rc = l->file[i] = open_one(l->cwd, &s->file[i], i, &l->created[i]);
		}
		if (rc < 0)
			snprintf(err, errlen, "%s=%s: %s", stream_key[i], s->file[i].path,
				 rc == -ENXIO ? "a FIFO with no reader" : strerror(-rc));
		else
			rc = 0;
	}
	if (drop)
		unbecome(&was);
	return rc;
}

void launch_commit(const struct task_spec *s, struct launch *l)
{
	for (int i = 1; i < 3; i++)
		if (l->file[i] >= 0 && !s->file[i].append && !l->created[i] &&
		    !same_as_stdout(s, i) && ftruncate(l->file[i], 0) < 0)
			continue;   /* not a regular file (a FIFO, a tty): nothing to cut */
}

void launch_undo(const struct task_spec *s, const struct cred *drop, struct launch *l)
{
	struct fs_ident was;
	bool as_owner = drop && become(drop, &was) == 0;
	for (int i = 1; i < 3; i++)
		if (l->created[i] && (!drop || as_owner))
			remove_created(l, s, i);
	if (as_owner)
		unbecome(&was);
}

void launch_free(struct launch *l)
{
	for (int i = 0; i < 3; i++)
		if (l->file[i] >= 0)
			close(l->file[i]);
	free(l->cwd);
	free(l->env);
	free(l->prog);
	launch_init(l);
}
