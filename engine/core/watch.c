/* watch.c - what the rest of the engine asks of the event loop (loop.c):
 * descriptors watched and unwatched, closes put off to the end of a turn,
 * notifications gathered under the lock and delivered after it, a wakeup.
 * Below every other file of the core: it calls none of them but the log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"

void engine_close_watched(struct engine *e, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* On the engine thread, the close waits for the end of the turn; *fd is -1
 * at once, so nothing reads it again.  Elsewhere (a spawner failing a task)
 * the engine thread may sleep for long: close now. */
static _Thread_local const struct engine *engine_of_thread;

void engine_watch_thread(const struct engine *e)
{
	engine_of_thread = e;
}

void engine_close_soon(struct engine *e, int *fd)
{
	if (*fd < 0)
		return;
	if (engine_of_thread != e ||
	    e->nclosing == sizeof(e->closing) / sizeof(e->closing[0])) {
		engine_close_watched(e, fd);
		return;
	}
	e->closing[e->nclosing++] = *fd;
	*fd = -1;
}

void engine_close_soon_done(struct engine *e)
{
	for (unsigned i = 0; i < e->nclosing; i++)
		engine_close_watched(e, &e->closing[i]);
	e->nclosing = 0;
}

/* ---- notifications ---------------------------------------------------------- */

void engine_notify_locked(struct engine *e, enum eng_obj kind, uint64_t id)
{
	if (e->npending == e->cap_pending) {
		size_t cap = e->cap_pending ? e->cap_pending * 2 : 64;
		void *p = realloc(e->pending, cap * sizeof(*e->pending));
		if (!p) {
			/* a lost wakeup may hang a waiter until the object's
			 * next change: say so (log_lock comes after lock) */
			log_add(e, LOG_LVL_ERROR, "out of memory: a change to object %d:%llu "
				"was not told to its waiters", (int)kind, (unsigned long long)id);
			return;
		}
		e->pending = p;
		e->cap_pending = cap;
	}
	e->pending[e->npending].kind = kind;
	e->pending[e->npending].id = id;
	e->npending++;
}

/* Deliver what was gathered.  Called without `lock`: hooks call back into the
 * engine.  The batch is swapped out under the lock so concurrent callers never
 * deliver the same event twice. */
void engine_flush_notify(struct engine *e)
{
	ROOMS_CALL0(e, before_tell);   /* persist: on disk before anyone is told */
	pthread_mutex_lock(&e->lock);
	size_t n = e->npending;
	__typeof__(e->pending) batch = e->pending;
	e->pending = NULL;
	e->npending = e->cap_pending = 0;
	pthread_mutex_unlock(&e->lock);

	for (size_t i = 0; i < n; i++)
		if (e->hooks.changed)
			e->hooks.changed(e->hooks.ctx, batch[i].kind, batch[i].id);
	free(batch);
}

/* Every descriptor watched here leaves the set through engine_close_watched:
 * epoll forgets a file only when its last descriptor closes, and a clone
 * child between its fork and its exec (a spawn on another thread) holds a
 * copy of ours; a pipe at EOF or a fired timer closed then would be reported
 * readable, on every turn of the loop, until that child had exec'd. */
int engine_watch(struct engine *e, int fd, enum watch_type type, uint64_t id)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WATCH_KEY(type, id) };
	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void engine_wake(struct engine *e)
{
	uint64_t one = 1;
	if (write(e->wakefd, &one, sizeof(one)) < 0)
		return;   /* the counter is saturated: a wakeup is pending anyway */
}
