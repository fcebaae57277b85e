/* poolhost.h - private to `pcfs-worker pool`: what its files share.
 *
 * The pool host's files; each calls only into those below it:
 *
 *   poolhost.c    the host: setup, and the main thread's loop over the
 *                 daemon's messages (the design is described there)
 *   poolslot.c    slots: a slot thread's loop, and the queue of jobs it runs
 *   poolfuture.c  one future in its slot thread: its request, a built-in
 *   poolchild.c   an exec/sh future: its child process, output and end
 *   pooloutbox.c  what a slot thread sends: its outbox, a future's output
 */
#ifndef PCFS_WORKER_POOLHOST_H
#define PCFS_WORKER_POOLHOST_H

#include <pthread.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "wire.h"
#include "workload.h"

#define REASON_MAX 512         /* one diagnostic line sent as output */
#define SLOT_QUEUE_MAX 1024    /* futures one slot holds queued */

/* Exit codes for futures that did not run, as a shell would say them. */
#define CODE_BAD_LINE 2        /* the line does not parse (as `pcfs-worker run`) */
#define CODE_CANNOT_RUN 126    /* refused, or could not be started */
#define CODE_NOT_FOUND 127     /* exec/sh: no such program */

struct pool {
	int sock;
	int efd;                     /* eventfd: some slot thread has exited */
	struct gil *gil;             /* shared by every slot; NULL without GIL */
	int64_t default_time_ms;
	unsigned ncpus;              /* for spec_parse; sysconf reads sysfs each time */
	pthread_attr_t slot_attr;    /* the slot threads' */
	size_t slot_stack;           /* and so their stack size */
	posix_spawnattr_t child_attr; /* own process group, signals reset; read-only */
	unsigned want;               /* slots the daemon asked for */
	unsigned leaving;            /* retired slots not yet joined */
	unsigned top;                /* highest slot number in slots[] */
	struct slot **slots;         /* [1..POOL_SLOTS_MAX], retiring ones too */
};

struct job;  /* a future queued on a slot (poolslot.c) */

struct slot {
	struct pool *pool;
	unsigned num;                /* 1.. */
	pthread_t thread;
	pthread_mutex_t lock;
	sem_t wake;                  /* posted after a job is queued, or retire or quit is set */

	/* Under lock. */
	struct job *qhead, *qtail;   /* queued, not started, in order */
	unsigned queued;
	uint64_t cur;                /* the running future's id, 0 if none */
	bool retire;                 /* W_PW_SLOTS shrank the pool: finish, give the queue back, GONE */
	bool quit;                   /* the daemon closed the socket: finish, drop the queue */
	pid_t child;                 /* the running exec/sh child, 0 if none or being reaped */
	struct job *spare;           /* finished jobs, kept for their buffers */
	unsigned nspare;

	atomic_int stop;             /* signal asked for by W_PW_STOP, 0 = run on */

	/* The slot thread's own. */
	struct wire_batch out;       /* its outbox */

	atomic_bool exited;          /* set last by the slot thread: it may be joined */
};

/* One future, as its slot thread runs it. */
struct future {
	struct slot *slot;
	uint64_t id;
	struct wl_ctx ctx;           /* out: W_PW_OUTPUT messages for this future */
	struct task_spec spec;
	const char *cwd;             /* the payload's directory for it ("": the host's) */
	const char *env, *env_end;   /* the payload's K=V list: the child's whole environment */
	int io_fd[2];                /* taken from its job: the child's stdin, stdout, or -1 */
	int code;                    /* a built-in's result... */
	int64_t cpu_us;              /* ...and the CPU time it took, or the child's */
};

/* --- poolslot.c, in the main thread ------------------------------------ */

/* W_PW_SLOTS: have n slots. */
void set_slots(struct pool *p, int64_t n);

/* Ask slot s to exit once its running future is over: retired (its queue
 * goes back to the daemon) or, at EOF, quitting (its queue is dropped). */
void slot_dismiss(struct pool *p, struct slot *s, bool retire);

/* Join every slot thread that has exited (all of them if `all`). */
void join_slots(struct pool *p, bool all);

/* Queue the future of W_PW_RUN h on slot s, with the child's stdin and
 * stdout io[] (or -1), which the slot then owns.  Returns 0, or EBUSY,
 * ENXIO or ENOMEM (io[] stays the caller's). */
int slot_assign(struct slot *s, const struct wire_hdr *h, const char *payload,
		const int io[2]);

/* Signal future id if slot s runs it.  Returns whether it does. */
bool slot_stop(struct slot *s, uint64_t id, int sig);

/* Take future id off slot s's queue if it is there (s->lock held). */
bool slot_unqueue(struct slot *s, uint64_t id);

/* --- poolfuture.c, poolchild.c: in a slot thread ----------------------- */

/* Run a future from its W_PW_RUN payload req, len bytes.  Returns its exit
 * code. */
int future_run(struct future *f, const char *req, size_t len);

/* Run f's exec/sh line as a child process.  Returns its exit code (-signal
 * if killed), with its CPU time in f->cpu_us. */
int run_child(struct future *f);

/* --- pooloutbox.c ------------------------------------------------------ */

/* "pcfs-worker: <message>\n" into buf, cut to fit.  Returns its length. */
size_t format_reason(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Slot s's outbox (its thread only): add a message, send what it holds. */
void outbox_add(struct slot *s, uint32_t type, uint64_t id, int64_t a, int64_t b,
		const void *payload, size_t len);
void outbox_flush(struct slot *s);

/* A future's ctx->out: W_PW_OUTPUT messages, sent at once. */
void future_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len);

/* Why the future failed, on its stderr. */
void future_say(struct future *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
