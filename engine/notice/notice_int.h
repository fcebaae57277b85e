/* notice_int.h - the notice room's own, shared by its files only:
 *   notice.c   the row: observers of tasks, the calls pools make for futures
 *   events.c   the events ring, its readers, the line formats (/events)
 *   joblog.c   the ends kept for /joblog, in GNU parallel's format
 *   hooks.c    on_end= hooks: a queue, a bounded number running, their thread
 *
 * Locks: the rings are under the engine's `lock` (they are written by the
 * rows' hooks, which run with it held).  The hooks have their own `mu`, a
 * leaf taken after `lock` (claim_child) or alone (the hooks' thread, which
 * takes reap_lock for reading around a spawn, then `mu`, never `lock`).
 */
#ifndef PCFS_NOTICE_INT_H
#define PCFS_NOTICE_INT_H

#include <pthread.h>
#include <time.h>

#include "notice.h"

/* ---- events.c --------------------------------------------------------------------- */

/* What is told in the kind column. */
enum ev_source { EV_TASK, EV_WORKER, EV_FUTURE };

/* What happened to it: one row each in ev_whats[] (events.c), so a new kind
 * of event (a dependency's `waiting`, `skipped`) is a new row. */
enum ev_what { EV_STARTED, EV_ENDED, EV__COUNT };
struct ev_what_row {
	const char *name;              /* the word in the line */
	bool final;                    /* an end: it carries a code */
};
extern const struct ev_what_row ev_whats[EV__COUNT];

struct event {
	uint64_t seq;                  /* daemon-wide, from 1 */
	uint64_t pseq;                 /* its pool's own number, from 1 (futures); 0 */
	uint64_t pool;                 /* a future's pool id; 0 */
	uint64_t id;                   /* task id, or the future's number */
	struct timespec at;            /* CLOCK_REALTIME */
	enum ev_source source;
	enum ev_what what;
	const char *state;             /* a static name: task_state_name(), future_state_name() */
	bool has_code;
	int code;                      /* exit status, or -signal */
	char name[SPEC_NAME_MAX + 1];  /* "" if none */
	char pool_name[POOL_NAME_MAX + 1];   /* workers and futures; "" */
};

/* A bounded ring of events: seq s lives in v[(s - 1) % cap]. */
struct ev_ring {
	struct event *v;
	size_t cap;
	uint64_t last;                 /* the newest seq, 0 before any */
	uint64_t *pool_last;           /* by pool id: its newest pseq */
	size_t npool;
};

/* One descriptor's place: `next` is the number (seq, or a pool reader's
 * pseq) it expects; a larger one seen means it missed the difference. */
struct event_reader {
	uint64_t pool;                 /* 0: every event */
	bool json;
	bool begun;                    /* false until its first read */
	uint64_t gpos;                 /* the next seq to look at */
	uint64_t next;
};

int ev_ring_init(struct ev_ring *r, size_t cap);
void ev_ring_free(struct ev_ring *r);
/* Add ev (its seq and pseq are given here): 0, or -ENOMEM (a pool's
 * counter could not grow: the event is still kept, without pseq). */
int ev_ring_push(struct ev_ring *r, struct event *ev);
/* What rd has not read yet, as lines into out (up to about max bytes, and
 * a `# missed N events` line where the ring moved past it): lines added. */
long ev_ring_read(const struct ev_ring *r, struct event_reader *rd, struct strbuf *out,
		  size_t max);
/* One event's line (json: its JSON line), and the missed line. */
void ev_format(const struct event *ev, bool json, struct strbuf *out);
void ev_format_missed(uint64_t n, bool json, struct strbuf *out);
/* "2026-12-07T14:00:00.123Z" (UTC) into buf[32]. */
void ev_stamp(struct timespec at, char *buf, size_t len);

/* ---- joblog.c ------------------------------------------------------------------------ */

/* One end, as a line of parallel's joblog will tell it. */
struct jl_entry {
	uint64_t pool;                 /* 0: a task */
	uint64_t seq;                  /* task id, or the future's number */
	double start;                  /* epoch seconds */
	double runtime;                /* seconds */
	int exitval, signal;
	char *line;                    /* the task line (owned in the ring; borrowed by jl_push) */
};

struct jl_ring {
	struct jl_entry *v;
	size_t cap, n, head;           /* head: where the next goes */
};

int jl_init(struct jl_ring *j, size_t cap);
void jl_free(struct jl_ring *j);
/* Keep one end (line is copied); the oldest goes when full.  -ENOMEM. */
int jl_push(struct jl_ring *j, const struct jl_entry *x);
/* Copies of pool's ends (0: tasks), oldest first, with `lock` held: the
 * Commands are made from them without it (a parse each). */
int jl_snapshot(const struct jl_ring *j, uint64_t pool, struct jl_entry **out, size_t *nout);
void jl_snapshot_free(struct jl_entry *v, size_t n);
/* The header and a line for each of v[0..n). */
void jl_render(const struct jl_entry *v, size_t n, struct strbuf *out);
/* The Command column for a task line: exec's argv quoted for a shell, sh's
 * command line as written, a built-in's line as written. */
void jl_command(const char *line, struct strbuf *out);
/* Exitval and Signal as parallel writes them: a signal's death is 0 and N. */
void jl_codes(bool has_code, int code, bool failed, int *exitval, int *signal);

/* ---- hooks.c ------------------------------------------------------------------------- */

/* One hook to run: everything copied, nothing borrowed from its task. */
struct hook_job {
	struct hook_job *next;
	struct end_hook *hook;         /* its command, directory and credentials (owned) */
	char what[96];                 /* "task 42", "pool p future 7": for /log */
	char env[4][POOL_NAME_MAX + 16];   /* PCFS_ID= PCFS_STATE= PCFS_EXITCODE= [PCFS_POOL=] */
	unsigned nenv;
};

struct hook_run;

struct hooks {
	pthread_mutex_t mu;            /* everything below */
	pthread_t thread;
	bool started, quit;
	int wakefd;                    /* eventfd: the thread looks again */
	struct hook_job *qhead, *qtail;
	size_t queued;
	struct hook_run *runs;         /* started, not finished */
	unsigned running;
};

/* The hook for what ended; takes job (freed here if it cannot wait). */
void hooks_queue(struct engine *e, struct hook_job *job);
struct hook_job *hook_job_new(const char *cmd, const char *cwd, const struct cred *drop);
void hook_job_setenv(struct hook_job *j, const char *key, const char *val);
void hook_job_free(struct hook_job *j);
int hooks_init(struct engine *e, struct hooks *h);
void hooks_start(struct engine *e, struct hooks *h);
/* Shutdown: those waiting are not run, those running are killed. */
void hooks_stop(struct engine *e, struct hooks *h);
void hooks_free(struct hooks *h);
bool hooks_claim_child(struct engine *e, pid_t pid, int status, const struct rusage *ru);

/* ---- notice.c ------------------------------------------------------------------------ */

struct notice {
	struct ev_ring ring;           /* `lock` */
	struct jl_ring jl;             /* `lock` */
	struct hooks hooks;            /* its own `mu` */
};

#endif
