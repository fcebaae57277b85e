/* notice.h - the notice room as the others see it: how the rest of the
 * engine is told of what tasks and futures do.
 *
 *   /events, pools/NAME/events   one line per start and end (a ring)
 *   /joblog, pools/NAME/joblog   GNU parallel's --joblog of the ends
 *   on_end=                      a shell command run once one has ended
 *
 * Tasks are observed through the room's task_started/task_ended rows; the
 * core never calls notice.  Futures are not tasks: the pools room tells of
 * theirs with the two calls below (notice includes no pools header).
 */
#ifndef PCFS_NOTICE_H
#define PCFS_NOTICE_H

#include "core/core.h"

extern const struct room notice_room;

/* A future's start or end, as the pools room tells it (strings borrowed for
 * the call).  All with `lock` held. */
struct notice_future {
	uint64_t pool;                 /* the pool's id */
	const char *pool_name;
	uint64_t id;                   /* the future's number in the pool */
	const char *state;             /* future_state_name() */
	bool has_code;                 /* ended with an exit status (not cancelled) */
	int code;                      /* >= 0 exit status, < 0 the signal that killed it */
	bool ran;                      /* it ran (a cancelled pending one did not): joblog */
	double runtime;                /* seconds, its last run */
	const char *line;              /* ended: its task line as it ran (the joblog's Command) */
	const char *on_end;            /* ended: the line's on_end=, else the pool's; NULL: none */
	const char *cwd;               /* where it ran; NULL: the daemon's directory */
	const struct cred *drop;       /* run on_end as this (the pool's owner); NULL: the daemon */
};
void notice_future_started(struct engine *e, const struct notice_future *f);
void notice_future_ended(struct engine *e, const struct notice_future *f);

#endif
