/* engine_int.h - the engine's private structures, shared by its .c files only.
 *
 * Locking: `lock` protects every field below that is not marked otherwise.
 * `reap_lock` (rwlock) closes the window between creating a child and
 * publishing its pid: spawners hold it for reading from before fork/spawn until
 * the pid is in the table; the engine thread holds it for writing while it
 * reaps, so it never reaps a pid it cannot yet attribute.  Order: reap_lock,
 * then lock, then log_lock.
 */
#ifndef PCFS_ENGINE_INT_H
#define PCFS_ENGINE_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>

#include "engine.h"

/* What an epoll registration refers to.  The event carries (type, id) rather
 * than a pointer, so an object forgotten by another thread between
 * epoll_wait() and dispatch is simply not found. */
enum watch_type {
	WATCH_SIGNAL = 1, /* signalfd: SIGCHLD */
	WATCH_WAKE,       /* eventfd: a request from another thread */
	WATCH_STDOUT,     /* id = task */
	WATCH_STDERR,     /* id = task */
	WATCH_TIMER,      /* id = task: timeout escalation */
	WATCH_HOST,       /* id = host: its socket */
	WATCH_SHUTDOWN,   /* shutdown grace timer */
	WATCH_CHAN,       /* id = a channel endpoint: listener, client, task stdin/stdout */
};
#define WATCH_KEY(type, id) (((uint64_t)(type) << 56) | (id))
#define WATCH_TYPE(key) ((enum watch_type)((key) >> 56))
#define WATCH_ID(key) ((key) & ((UINT64_C(1) << 56) - 1))

/* Captured output of one stream: the first output_max bytes are kept (so a
 * result is never missing its beginning and offsets never shift), the rest is
 * counted in `dropped`. */
struct outbuf {
	char *data;
	size_t len, cap;
	uint64_t dropped;
	int fd;            /* read end of the pipe, -1 once at EOF (or for threads) */
};

/* A thread host: one pcfs-worker process running the threads of one line. */
struct host {
	uint64_t id;
	pid_t pid;
	int sock;          /* -1 once closed */
	unsigned live;     /* its threads that have not ended */
	bool reaped;
	struct host *next;
};

struct task {
	uint64_t id;
	struct task *hnext;            /* id hash chain */
	struct task *pnext;            /* pid hash chain (processes only) */
	struct task *prev, *next;      /* every known task, ascending id */
	struct task *fprev, *fnext;    /* ended tasks, oldest first (history) */

	enum task_kind kind;
	enum start_method method;
	enum workload workload;
	enum task_state state;
	bool counted;                  /* included in the live counters */
	int exitcode;
	pid_t pid, tid;
	struct host *host;             /* threads */
	char name[SPEC_NAME_MAX + 1];
	char error[256];
	char *cmd;

	struct timespec start_rt, end_rt;
	struct timespec start_mono, end_mono;
	struct rusage ru;              /* processes: at reap */
	int64_t thread_cpu_us;         /* threads: reported by the host */

	struct outbuf out[3];          /* [1] stdout, [2] stderr */

	int64_t timeout_ms;
	int timer_fd;
	int timer_stage;               /* 0 armed for TERM, 1 armed for KILL */
	bool timed_out;
	int term_signal;
};

struct engine {
	struct pcfs_config cfg;
	char *mountpoint;
	char *worker_path;
	unsigned online_cpus;
	struct engine_hooks hooks;

	pthread_mutex_t lock;
	pthread_cond_t cond;           /* thread starts reported by hosts */
	pthread_rwlock_t reap_lock;
	pthread_t thread;
	bool thread_started;

	int epfd, sigfd, wakefd, shutfd;
	int devnull;

	/* the fork server: requests are round trips under fs_lock */
	pthread_mutex_t fs_lock;
	pid_t fs_pid;
	int fs_sock;
	void *fs_reply;                /* receive buffer for fork server replies (fs_lock) */
	void *fs_buf;                  /* receive buffer for host messages (engine thread) */

	/* tasks */
	uint64_t next_id;
	struct task **hash;  size_t hash_size;   /* by id */
	struct task **phash; size_t phash_size;  /* by pid */
	size_t ntasks;
	struct task *first, *last;
	struct task *fin_first, *fin_last;       /* ended tasks, oldest first */
	size_t nfinished;
	struct host *hosts;
	uint64_t next_host_id;

	struct engine_stats st;

	/* notifications gathered under the lock, delivered after it is dropped */
	struct { enum eng_obj kind; uint64_t id; } *pending;
	size_t npending, cap_pending;

	bool stopping;
	bool kill_sent;
	pid_t *shut_groups;            /* process groups to see emptied at shutdown */
	size_t nshut_groups;

	struct chantab *chans;         /* channels.c */

	/* the log ring */
	pthread_mutex_t log_lock;
	char **log;
	size_t log_head, log_count;
};

/* engine.c */
struct task *task_find(struct engine *e, uint64_t id);
void task_pid_link(struct engine *e, struct task *t);
void task_arm_timeout(struct engine *e, struct task *t);
void task_failed_to_start(struct engine *e, struct task *t, int err, const char *what);
void engine_notify_locked(struct engine *e, enum eng_obj kind, uint64_t id);
void engine_flush_notify(struct engine *e);
int engine_watch(struct engine *e, int fd, enum watch_type t, uint64_t id);

/* spawn.c */
int spawn_forkserver(struct engine *e, char *err, size_t errlen);
/* Start `count` tasks of one parsed line; the tasks are already in the table
 * (state STARTING, ids assigned).  Never fails as a whole: a task that cannot
 * start ends FAILED with its reason. */
void spawn_tasks(struct engine *e, const struct task_spec *spec, struct task **tasks,
		 unsigned count);

/* channels.c: everything below runs with `lock` held, except as noted */
void chan_event(struct engine *e, uint64_t id, uint32_t events);   /* engine thread */
void chan_pump(struct engine *e);                                  /* engine thread */
void chan_task_ended(struct engine *e, struct task *t);
void chan_free_all(struct engine *e);                              /* no lock: at the end */
/* The channels named by stdin=/stdout= exist (no lock held). */
int chan_check_wiring(struct engine *e, const struct task_spec *s, char *err, size_t errlen);
/* A task's stdio wired to channels: prepared before it starts (no lock held),
 * attached once it runs, released in any case. */
struct chan_wiring {
	int child_stdin;               /* the task's stdin, -1 if not wired */
	int our_stdin;                 /* the engine's end of it */
	uint64_t in_chan, out_chan;    /* 0 if not wired */
};
int chan_wire_prepare(struct engine *e, const struct task_spec *s, struct chan_wiring *w);
/* Takes our_stdin, and stdout_fd if stdout is wired (then returns true). */
bool chan_wire_attach(struct engine *e, struct task *t, struct chan_wiring *w, int stdout_fd);
void chan_wire_release(struct chan_wiring *w);                     /* no lock */

/* output.c */
void out_append(struct outbuf *o, const char *p, size_t n, uint64_t max);
/* Read what the pipe has now; returns false at EOF or error (fd closed). */
bool out_drain(struct outbuf *o, uint64_t max);
void out_free(struct outbuf *o);

/* log.c */
void log_init(struct engine *e);
void log_free(struct engine *e);
void log_add(struct engine *e, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
