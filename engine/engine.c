/* engine.c - the top floor: an engine made of the core and its rooms.
 *
 * The core (core/) knows no room by name: it walks `rooms` below, in this
 * order, at every hook of core.h's `struct room`.  The order is the contract
 * where one room's hook must see another's work:
 *   - exec first: the fork server exists before any room may start work;
 *   - cgroup next: its task_ended gives an OOM kill its verdict (error,
 *     oom_killed) before persist journals the end and notice tells of it;
 *     its fini, late, removes the subtree once the others have stopped;
 *   - channels before persist: what an ended task wrote to a channel is
 *     there before its end is journaled (task_ended), and a pool's replayed
 *     futures find their channels;
 *   - memory before pools, so a pool worker's figures are kept like a task's;
 *   - persist after the rooms that do the work: it journals what they have
 *     settled, it is flushed before anyone is told (before_tell), and
 *     restores (start) once they are ready;
 *   - sync (locks, semaphores, events, barriers of /sync) needs no other
 *     room and hooks no task: it is anywhere before notice;
 *   - notice last: it only observes (events, joblog, on_end hooks), so it
 *     hears of an end once every other room has settled it; its stop kills
 *     the hooks still running while the loop still reaps them.
 * engine_free undoes them in the reverse order.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/core.h"
#include "exec/exec.h"
#include "cgroup/cgroup.h"
#include "channels/channels.h"
#include "memory/memory.h"
#include "pools/pools.h"
#include "persist/persist.h"
#include "notice/notice.h"
#include "sync/sync.h"

static const struct room *const rooms[] = {
	&exec_room, &cgroup_room, &channels_room, &memory_room, &pools_room, &persist_room,
	&sync_room,
	&notice_room,
};
#define NROOMS (sizeof(rooms) / sizeof(rooms[0]))
/* the walks that keep something per room (persist's replay) size for ROOMS_MAX */
_Static_assert(NROOMS <= ROOMS_MAX, "raise ROOMS_MAX in core/core.h");

/* The watch handlers by type, from the rooms' rows: a type is one room's. */
static int register_watches(struct engine *e, char *err, size_t errlen)
{
	for (size_t i = 0; i < e->nrooms; i++) {
		for (size_t k = 0; k < e->rooms[i]->nwatches; k++) {
			const struct watch_row *w = &e->rooms[i]->watches[k];
			if (w->type <= WATCH_SHUTDOWN || w->type >= WATCH__COUNT ||
			    e->watch[w->type].fn) {
				snprintf(err, errlen, "room %s: watch type %d is taken",
					 e->rooms[i]->name, (int)w->type);
				return -EINVAL;
			}
			e->watch[w->type] = *w;
		}
	}
	return 0;
}

/* The parts of the core that need no system call. */
static int core_alloc(struct engine *e, const struct pcfs_config *cfg, const char *mountpoint,
		      const char *worker_path)
{
	e->cfg = *cfg;
	e->self = (struct owner){ .uid = geteuid(), .gid = getegid() };
	e->mountpoint = strdup(mountpoint);
	e->worker_path = strdup(worker_path);
	e->host_buf = malloc(WIRE_MAX);
	e->hash_size = 1024;
	e->hash = calloc(e->hash_size, sizeof(*e->hash));
	e->phash_size = 4096;
	e->phash = calloc(e->phash_size, sizeof(*e->phash));
	e->next_id = 1;
	e->next_host_id = 1;
	e->epfd = e->sigfd = e->wakefd = e->shutfd = e->devnull = -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	e->online_cpus = ncpu > 0 ? (unsigned)ncpu : 1;
	e->rooms = rooms;
	if (!e->mountpoint || !e->worker_path || !e->host_buf || !e->hash || !e->phash)
		return -ENOMEM;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* the reaper must not starve behind a flood of spawns */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->reap_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	log_init(e);
	return 0;
}

/* The process-wide setup and the loop's own descriptors. */
static int core_setup(struct engine *e, char *err, size_t errlen)
{
	if (access(e->worker_path, X_OK) < 0) {
		snprintf(err, errlen, "worker program %s: %s", e->worker_path, strerror(errno));
		return -errno;
	}
	/* Every task and every orphan of a task becomes our child. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		snprintf(err, errlen, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		return -errno;
	}
	/* SIGCHLD is read from a signalfd, so it must be blocked in every thread:
	 * this runs before any thread exists, and threads inherit the mask. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);

	/* Many live tasks hold three descriptors each. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	e->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->shutfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	e->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (e->epfd < 0 || e->sigfd < 0 || e->wakefd < 0 || e->shutfd < 0 || e->devnull < 0) {
		snprintf(err, errlen, "engine setup: %s", strerror(errno));
		return -errno;
	}
	if (engine_watch(e, e->sigfd, WATCH_SIGNAL, 0) < 0 ||
	    engine_watch(e, e->wakefd, WATCH_WAKE, 0) < 0 ||
	    engine_watch(e, e->shutfd, WATCH_SHUTDOWN, 0) < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

struct engine *engine_new(const struct pcfs_config *cfg, const char *mountpoint,
			  const char *worker_path, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (core_alloc(e, cfg, mountpoint, worker_path) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (core_setup(e, err, errlen) < 0)
		goto fail;
	/* rooms count as made as they are: engine_free undoes those only */
	for (size_t i = 0; i < NROOMS; i++) {
		e->nrooms = i + 1;
		if (rooms[i]->init && rooms[i]->init(e, err, errlen) < 0)
			goto fail;
	}
	if (register_watches(e, err, errlen) < 0)
		goto fail;
	return e;
fail:
	engine_free(e);
	return NULL;
}

void engine_set_hooks(struct engine *e, const struct engine_hooks *hooks)
{
	e->hooks = *hooks;
}

const struct pcfs_config *engine_config(const struct engine *e)
{
	return &e->cfg;
}

int engine_start(struct engine *e)
{
	int rc = pthread_create(&e->thread, NULL, engine_thread, e);
	if (rc)
		return -rc;
	e->thread_started = true;
	ROOMS_CALL0(e, start);
	return 0;
}

void engine_shutdown(struct engine *e)
{
	if (!e->thread_started)
		return;
	ROOMS_CALL0(e, stop);   /* the Slurm poller: its commands need the loop to reap them */
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
	engine_wake(e);
	pthread_join(e->thread, NULL);
	e->thread_started = false;
	ROOMS_CALL0(e, stopped);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	if (e->thread_started)
		engine_shutdown(e);
	for (size_t i = e->nrooms; i-- > 0;)
		if (e->rooms[i]->fini)
			e->rooms[i]->fini(e);
	for (struct task *t = e->first, *n; t; t = n) {
		n = t->next;
		task_destroy(e, t);
	}
	hosts_free(e);
	int fds[] = { e->epfd, e->sigfd, e->wakefd, e->shutfd, e->devnull };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (e->log)
		log_free(e);
	free(e->pending);
	free(e->shut_groups);
	free(e->early);
	free(e->hash);
	free(e->phash);
	free(e->host_buf);
	free(e->mountpoint);
	free(e->worker_path);
	free(e);
}
