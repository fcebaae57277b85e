/* durable.c - nothing lost by default: the default state dir per mountpoint,
 * fsync of the journal ([state] sync), and an empty dir left behind by a
 * clean stop ([state] keep).
 *
 * The default dir: with no [state] dir (or `dir = auto`), results go to
 * BASE/KEY, BASE being /var/lib/pcfs for root, else $XDG_STATE_HOME/pcfs or
 * ~/.local/state/pcfs, and KEY the mountpoint escaped (statekey.h).  The
 * lock of state.c keeps one daemon per dir, so one per mountpoint.
 *
 * sync = batch: a flusher thread fsyncs at most every sync_ms, woken by
 * the first write after a sync; no FUSE reply waits for a disk.  sync =
 * always: the flush that comes before anyone is told fsyncs first.  Output
 * files are written before the end record that names them: `always`
 * fdatasyncs each before its rename and the out dir before the record;
 * `batch` syncs the file system (syncfs) when outputs were written since its
 * last round, else only the journal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "persist_int.h"
#include "statekey.h"

int state_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- the default dir --------------------------------------------------------- */

/* BASE for this daemon, or -ENOENT with no home to put it in. */
static int default_base(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;
	if (geteuid() == 0) {
		n = snprintf(buf, len, "/var/lib/pcfs");
	} else if (xdg && xdg[0] == '/') {      /* a relative one is invalid (XDG) */
		n = snprintf(buf, len, "%s/pcfs", xdg);
	} else {
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(geteuid());
			home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
		}
		if (!home)
			return -ENOENT;
		n = snprintf(buf, len, "%s/.local/state/pcfs", home);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* cfg->state_path from [state] dir and the mountpoint. */
int state_resolve(struct pcfs_config *cfg, const char *mountpoint, char *err, size_t errlen)
{
	memset(cfg->state_path, 0, sizeof(cfg->state_path));
	cfg->state_default = false;
	if (!strcmp(cfg->state_dir, "none"))
		return 0;
	if (cfg->state_dir[0]) {
		snprintf(cfg->state_path, sizeof(cfg->state_path), "%s", cfg->state_dir);
		return 0;
	}
	char base[CONFIG_PATH_MAX - STATEKEY_MAX - 2], key[STATEKEY_MAX + 1];
	int rc = default_base(base, sizeof(base));
	if (rc == 0)
		rc = statekey(mountpoint, key, sizeof(key));
	if (rc < 0) {
		snprintf(err, errlen, "no default [state] dir (%s): results will not survive "
			 "the daemon", rc == -ENOENT ? "no home directory" : strerror(-rc));
		return rc;
	}
	snprintf(cfg->state_path, sizeof(cfg->state_path), "%s/%s", base, key);
	cfg->state_default = true;
	return 0;
}

/* ---- fsync ------------------------------------------------------------------- */

static void sync_failed(struct engine *e, int err)
{
	pthread_mutex_lock(&e->lock);
	state_failed(e, "journal fsync", err);
	pthread_mutex_unlock(&e->lock);
}

/* The journal (and with outputs written, their file system) on disk. */
static void sync_now(struct engine *e)
{
	struct state *s = e->state;
	pthread_mutex_lock(&s->wlock);   /* compaction swaps jfd */
	int fd = dup(s->jfd);
	pthread_mutex_unlock(&s->wlock);
	if (fd < 0)
		return sync_failed(e, -errno);
	bool outs = atomic_exchange(&s->outputs_dirty, false);
	if ((outs ? syncfs(fd) : fdatasync(fd)) < 0)
		sync_failed(e, -errno);
	close(fd);
}

void durable_written(struct engine *e)
{
	struct state *s = e->state;
	if (s->sync == SYNC_ALWAYS) {
		/* the outputs' names before the records that point at them */
		if (atomic_exchange(&s->outputs_dirty, false) && fsync(s->outfd) < 0)
			sync_failed(e, -errno);
		if (fdatasync(s->jfd) < 0)
			sync_failed(e, -errno);
	} else if (s->sync == SYNC_BATCH && s->fstarted) {
		pthread_mutex_lock(&s->fmu);
		if (!s->fdirty) {
			s->fdirty = true;
			pthread_cond_signal(&s->fcv);
		}
		pthread_mutex_unlock(&s->fmu);
	}
}

void durable_output(struct state *s, int fd)
{
	if (s->sync == SYNC_ALWAYS)
		fdatasync(fd);
	atomic_store(&s->outputs_dirty, true);
}

void durable_replaced(struct state *s, int fd)
{
	if (s->sync == SYNC_NONE)
		return;
	if (fd >= 0)
		fdatasync(fd);
	else
		fsync(s->dirfd);
}

static bool before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* sync = batch: at most one fsync per sync_ms, only after a write. */
static void *flusher(void *arg)
{
	struct engine *e = arg;
	struct state *s = e->state;
	pthread_mutex_lock(&s->fmu);
	while (!s->fstop) {
		if (!s->fdirty) {
			pthread_cond_wait(&s->fcv, &s->fmu);
			continue;
		}
		struct timespec now, due = ts_add_ms(s->last_sync, e->cfg.state_sync_ms);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (before(now, due)) {
			pthread_cond_timedwait(&s->fcv, &s->fmu, &due);
			continue;
		}
		s->fdirty = false;
		pthread_mutex_unlock(&s->fmu);
		sync_now(e);
		pthread_mutex_lock(&s->fmu);
		clock_gettime(CLOCK_MONOTONIC, &s->last_sync);
	}
	pthread_mutex_unlock(&s->fmu);
	return NULL;
}

void durable_start(struct engine *e)
{
	struct state *s = e->state;
	if (!s || s->sync != SYNC_BATCH)
		return;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->fcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->fmu, NULL);
	int rc = pthread_create(&s->fthread, NULL, flusher, e);
	if (rc) {
		pthread_cond_destroy(&s->fcv);
		pthread_mutex_destroy(&s->fmu);
		log_add(e, LOG_LVL_WARN, "[state] sync = batch: no flusher thread (%s): the journal "
			"is fsync'd at unmount only", strerror(rc));
		return;
	}
	s->fstarted = true;
}

/* ---- a clean stop ------------------------------------------------------------- */

/* keep = auto removes the default dir, unless the unmount leaves work
 * running ([unmount] policy = leave): then, as after a daemon's death, the
 * next daemon finds it (a task `lost` whose process runs on, a Slurm job in
 * flight watched again). */
static bool removing(const struct engine *e)
{
	const struct pcfs_config *c = &e->cfg;
	return c->state_keep == KEEP_NO ||
	       (c->state_keep == KEEP_AUTO && c->state_default && c->unmount_policy != UNMOUNT_LEAVE);
}

/* Everything under NAME in dirfd, then NAME (a few levels: out/, slurm/POOL/). */
static void remove_tree(int dirfd, const char *name, int depth)
{
	if (unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM) || depth > 4)
		return;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			remove_tree(fd, de->d_name, depth + 1);
	closedir(d);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

void durable_unmake(struct state *s)
{
	/* the lock file too, while it is still held: a daemon that comes
	 * next makes its own */
	const char *names[] = { JOURNAL, JOURNAL_NEW, "out", "slurm", "lock" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		remove_tree(s->dirfd, names[i], 0);
}

bool durable_stop(struct engine *e)
{
	struct state *s = e->state;
	if (s->fstarted) {
		pthread_mutex_lock(&s->fmu);
		s->fstop = true;
		pthread_cond_signal(&s->fcv);
		pthread_mutex_unlock(&s->fmu);
		pthread_join(s->fthread, NULL);
		pthread_cond_destroy(&s->fcv);
		pthread_mutex_destroy(&s->fmu);
		s->fstarted = false;
	}
	/* a replay that never ran (a failed start) leaves a killed daemon's
	 * journal for the next one */
	if (s->restored && removing(e)) {
		durable_unmake(s);
		return true;
	}
	if (s->sync != SYNC_NONE && s->jfd >= 0 &&
	    (atomic_load(&s->outputs_dirty) ? syncfs(s->jfd) : fdatasync(s->jfd)) < 0)
		state_failed(e, "journal fsync", -errno);
	return false;
}
