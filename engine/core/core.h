/* core.h - the engine's ground floor: the task table and lifecycle, the
 * event loop, the reaper, worker hosts, output capture and the log; and the
 * tables the rooms above it fill.
 *
 * The core calls no room by name.  Each room (exec, pools, channels, memory,
 * persist) describes itself in one `struct room` row: what it does when the
 * engine starts and stops, when a task starts, writes, ends and is forgotten,
 * which watched descriptors and which reaped children are its, and how it
 * answers the questions the core cannot (who owns its objects).  engine.c,
 * above every room, lists the rows; the core walks them in that order.
 *
 * Locking: `lock` protects every field below that is not marked otherwise.
 * `reap_lock` (rwlock) closes the window between creating a child and
 * publishing its pid: spawners hold it for reading from before fork/spawn
 * until the pid is in the table; the engine thread holds it for writing while
 * it reaps, so it never reaps a pid it cannot yet attribute.  Order:
 * reap_lock, then lock, then a room's own locks, then log_lock.  Process tasks
 * started directly (the hot path) take no reap_lock: they open a spawn window
 * instead (spawn_window_open), and what the reaper collects inside one is kept
 * for its spawner to claim.
 */
#ifndef PCFS_CORE_H
#define PCFS_CORE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>

#include "engine.h"
#include "wire.h"

/* What an epoll registration refers to.  The event carries (type, id) rather
 * than a pointer, so an object forgotten by another thread between
 * epoll_wait() and dispatch is simply not found.  The core's own types come
 * first; each room's handler for its types is a row of its `watches`. */
enum watch_type {
	WATCH_SIGNAL = 1, /* signalfd: SIGCHLD */
	WATCH_WAKE,       /* eventfd: a request from another thread */
	WATCH_STDOUT,     /* id = task */
	WATCH_STDERR,     /* id = task */
	WATCH_TIMER,      /* id = task: timeout escalation */
	WATCH_HOST,       /* id = host: its socket */
	WATCH_SHUTDOWN,   /* shutdown grace timer */
	WATCH_FTIMER,     /* pools: id = FUTURE_KEY, a future's timeout */
	WATCH_SAMPLE,     /* memory: the sampling period's timerfd */
	WATCH_CHAN,       /* channels: id = an endpoint (listener, client, task stdio) */
	WATCH_SYNC,       /* sync: the timerfd of barriers' timeouts */
	WATCH__COUNT
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

struct engine;
struct task;
struct host;
struct pool;

/* What a kind of worker host does with what it hears (host.c reads the
 * socket, unpacks batches and notices the death; the room that made the host
 * gives its meaning).  All with `lock` held, on the engine thread. */
struct host_ops {
	const char *what;              /* "thread host", "pool worker": for messages */
	bool killed_whole;             /* shutdown kills the process, not its tasks one by one */
	void (*message)(struct engine *e, struct host *h, const struct wire_hdr *m,
			const char *payload, size_t len);
	/* Its process ended; the tasks attached to it have ended already.
	 * why: NULL for a clean exit. */
	void (*died)(struct engine *e, struct host *h, const char *why);
	/* Its socket has been read dry (the host may be gone by now; its pool,
	 * if any, is not): hand out what the messages freed. */
	void (*drained)(struct engine *e, struct pool *pool);
	/* ctl's signal to one of its tasks: 0 or -errno. */
	int (*signal)(struct engine *e, struct host *h, struct task *t, int sig);
};

/* A worker host: a pcfs-worker process the engine talks to by socket (the
 * threads of one spawn line, or the slots of a pool). */
struct host {
	uint64_t id;
	pid_t pid;
	int sock;          /* -1 once closed */
	unsigned live;     /* tasks attached to it that have not ended */
	bool reaped;
	const struct host_ops *ops;
	struct pool *pool; /* a pool's worker: the pool (opaque here) */
	struct host *next;
};

struct task_mem_store;
struct task_cg;
struct journal_client;

/* on_end=: what to run once a task has ended (the notice room runs it; the
 * exec room fills it from the line).  Owned by its task. */
struct end_hook {
	char *cmd;                     /* the shell command (/bin/sh -c) */
	char *cwd;                     /* the task's directory (absolute); NULL: the daemon's */
	bool drop;                     /* run as `cred` (the daemon is root, the owner is not) */
	struct cred cred;
};

struct task {
	uint64_t id;
	struct task *hnext;            /* id hash chain */
	struct task *pnext;            /* pid hash chain (processes only) */
	struct task *prev, *next;      /* every known task, ascending id */
	struct task *fprev, *fnext;    /* ended tasks, oldest first (history) */
	struct task *lprev, *lnext;    /* live tasks (not ended), oldest first */
	uint64_t end_seq;              /* ended: its place in the order of ends (from 1) */

	enum task_kind kind;
	enum start_method method;
	enum workload workload;
	enum task_state state;
	bool waited;                   /* it was WAITING (after=): shown since, even while STARTING */
	bool counted;                  /* included in the live counters */
	int exitcode;
	pid_t pid, tid;
	struct host *host;             /* threads */
	char name[SPEC_NAME_MAX + 1];
	char error[256];
	char *cmd;
	struct pool *pool;             /* a pool's worker (process or slot thread) */
	unsigned slot;
	struct owner owner;            /* who started it: control and output are theirs */

	struct timespec start_rt, end_rt;
	struct timespec start_mono, end_mono;
	struct rusage ru;              /* processes: at reap */
	int64_t thread_cpu_us;         /* threads: reported by the host */

	struct outbuf out[3];          /* [1] stdout, [2] stderr */
	/* Our copies of a live process's output pipes' write ends, -1: the
	 * process closing its stdout (coreutils programs do, at exit) or
	 * exiting then wakes nobody, and the engine thread hears of its end
	 * once, from SIGCHLD, not up to three times.  Closed at its end. */
	int out_w[3];

	int stat_fd;                   /* /proc/PID/stat of a live process, opened at the
					* first status read (query.c: stat_fd_of), -1 */

	int64_t timeout_ms;
	int timer_fd;
	int timer_stage;               /* 0 armed for TERM, 1 armed for KILL */
	bool timed_out;
	int term_signal;

	/* memory's (sample.c, cow.c) */
	struct task_mem_store *mem;    /* NULL until the first sample */
	pid_t cow_ref;                 /* the process it was forked from, 0 if exec'd */
	uint64_t parent_id;            /* a cow child: the cow task that forked it */
	bool cow_scanned;              /* a cow task: its announcement line was seen */

	/* notice's */
	struct end_hook *on_end;       /* on_end=, NULL if none (notice runs it) */
	bool announced;                /* its start is in the events ring */

	/* cgroup's (resource control) */
	struct task_cg *cg;            /* its cgroups, NULL if it has none (owned by the room) */
	bool oom_killed;               /* the OOM killer ended it (error says so) */

	/* persist's ([state] dir) */
	bool persist;                  /* a result to keep (not a pool's worker) */
	bool journaled;                /* its start record is written */
	pid_t lost_pid;                /* lost, and its process still ran at restore: ctl may
					* signal it (0: no) */
};

/* ---- the rooms' table ---------------------------------------------------------
 *
 * One row per room, walked in the order engine.c lists them (exec, channels,
 * memory, pools, persist).  Every hook is optional.  The order matters where
 * it is written below, and nowhere else.
 *
 * Task lifecycle, all with `lock` held:
 *   task_started   the task runs (it has its pid), or was adopted running;
 *                  one that ended before it was announced (a failed start,
 *                  a process that exited at once) is told of its end only
 *   task_output    new bytes were captured from its stdout (stream 1) or
 *                  stderr (2), on the engine thread
 *   task_ended     it ended: its output is drained first (so `wait` then
 *                  `cat stdout` sees it all), then every row's task_ended
 *                  in order (channels before persist: what a task wrote to
 *                  a channel is there before its end is journaled), and only
 *                  then is anyone told
 *   task_output_done  a stream of an ended task reached EOF (a descendant
 *                  held the pipe): what came since is final
 *   task_forgotten it leaves the table (rmdir, history trim)
 *   task_destroyed free its parts (any lock, or none at engine_free)
 *
 * The reaper (engine thread, `lock` and reap_lock held), for a child that is
 * no task's and no host's: each row's claim_child in order, until one says
 * it was its own; then a spawn window keeps it for its spawner; otherwise
 * each row's orphan (a descendant reparented to the daemon, the subreaper).
 *
 * The loop: a row's watches handle the watch types it registers (with `lock`
 * held, or after the turn without it if `unlocked`); turn_end runs at the end
 * of each turn with `lock` held, after_turn after it without (exec makes
 * pipes ahead there, unless the engine is shutting down); before_tell runs, without `lock`, before the
 * notifications gathered are delivered (persist: on disk before anyone is
 * told).
 */
struct watch_row {
	enum watch_type type;
	void (*fn)(struct engine *e, uint64_t id, uint32_t events);
	bool unlocked;                 /* after the turn, with no lock held */
};

#define ROOMS_MAX 16   /* engine.c asserts it lists no more */

struct room {
	const char *name;
	/* engine_new, in order: 0, or -errno with the reason in err */
	int (*init)(struct engine *e, char *err, size_t errlen);
	void (*start)(struct engine *e);          /* engine_start: the loop runs; no lock */
	void (*stop)(struct engine *e);           /* engine_shutdown, before the loop ends */
	void (*stopped)(struct engine *e);        /* engine_shutdown, the loop has ended */
	void (*fini)(struct engine *e);           /* engine_free, in reverse order */

	void (*task_started)(struct engine *e, struct task *t);
	void (*task_output)(struct engine *e, struct task *t, int stream);
	void (*task_ended)(struct engine *e, struct task *t);
	void (*task_output_done)(struct engine *e, struct task *t, int stream);
	void (*task_forgotten)(struct engine *e, struct task *t);
	void (*task_destroyed)(struct engine *e, struct task *t);
	/* ctl's (or a timeout's) signal to a live process task, lock held: 0 or
	 * -errno once this room delivered it (the cgroup room: its whole cgroup,
	 * stop/cont as freeze/thaw); -ENOSYS: not this room's, the core signals
	 * the task's process group. */
	int (*task_signal)(struct engine *e, struct task *t, int sig);
	/* What this room knows of a task, for its status (lock held). */
	void (*task_info)(struct engine *e, const struct task *t, struct task_info *ti);

	bool (*claim_child)(struct engine *e, pid_t pid, int status, const struct rusage *ru);
	void (*orphan)(struct engine *e, pid_t pid, int status, const struct rusage *ru);

	const struct watch_row *watches;
	size_t nwatches;
	void (*turn_end)(struct engine *e);
	void (*after_turn)(struct engine *e);     /* no lock; not while shutting down */
	void (*before_tell)(struct engine *e);

	/* Who owns object `id` of `kind` (lock held): 0, -ENOENT if it is not
	 * there, -ESRCH if the kind is not this room's. */
	int (*owner)(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out);
	/* The persist room's interface of a room whose objects the journal keeps
	 * (persist.h); NULL for the others. */
	const struct journal_client *journal;
};

/* Walk the rooms in order, calling hook(e, args...) where a row has it. */
#define ROOMS_CALL0(e, hook)                                                        \
	do {                                                                        \
		for (size_t room_i_ = 0; room_i_ < (e)->nrooms; room_i_++)          \
			if ((e)->rooms[room_i_]->hook)                              \
				(e)->rooms[room_i_]->hook(e);                       \
	} while (0)
#define ROOMS_CALL(e, hook, ...)                                                    \
	do {                                                                        \
		for (size_t room_i_ = 0; room_i_ < (e)->nrooms; room_i_++)          \
			if ((e)->rooms[room_i_]->hook)                              \
				(e)->rooms[room_i_]->hook((e), __VA_ARGS__);        \
	} while (0)

struct exec;
struct pools;
struct chantab;
struct memory;
struct state;
struct notice;
struct cgroup;
struct sync;

struct engine {
	struct pcfs_config cfg;
	struct owner self;             /* the daemon's own uid and gid */
	char *mountpoint;
	char *worker_path;
	unsigned online_cpus;
	struct engine_hooks hooks;

	const struct room *const *rooms;   /* engine.c's table (set once, read-only) */
	size_t nrooms;
	struct watch_row watch[WATCH__COUNT];   /* by type, from the rooms' rows */

	pthread_mutex_t lock;
	pthread_cond_t cond;           /* thread starts reported by hosts */
	pthread_rwlock_t reap_lock;
	pthread_t thread;
	bool thread_started;

	int epfd, sigfd, wakefd, shutfd;
	int devnull;

	/* tasks */
	uint64_t next_id;
	struct task **hash;  size_t hash_size;   /* by id */
	struct task **phash; size_t phash_size;  /* by pid */
	size_t ntasks;
	struct task *first, *last;
	struct task *fin_first, *fin_last;       /* ended tasks, oldest first */
	struct task *live_first, *live_last;     /* tasks not ended: what the sampler,
						  * /top and shutdown walk (the
						  * history can be 100x longer) */
	size_t nfinished;
	size_t nlive;                            /* on the live list */
	uint64_t end_seq;                        /* the last end_seq given */
	uint64_t forgot_seq;                     /* the largest end_seq forgotten (waitset.c) */

	/* worker hosts (host.c) */
	struct host *hosts;
	uint64_t next_host_id;
	void *host_buf;                /* receive buffer for host messages (engine thread) */

	struct engine_stats st;

	/* notifications gathered under the lock, delivered after it is dropped */
	struct { enum eng_obj kind; uint64_t id; } *pending;
	size_t npending, cap_pending;

	/* Spawn windows (reap.c): direct spawns between their fork and the
	 * publishing of their pid; children reaped meanwhile that nobody knows
	 * wait here for their spawner, and are orphans once no window is open. */
	unsigned spawning;
	struct early_exit { pid_t pid; int status; struct rusage ru; } *early;
	size_t nearly, cap_early;

	/* Descriptors at EOF that the engine thread closes at the end of its
	 * turn, once the waiters of what ended are answered (engine_close_soon):
	 * taking two pipes out of epoll and closing them is most of a task's
	 * end, and none of it is news to anyone. */
	int closing[64];
	unsigned nclosing;

	bool stopping;
	bool kill_sent;
	pid_t *shut_groups;            /* process groups to see emptied at shutdown */
	size_t nshut_groups;

	/* Each room's own state, opaque here: allocated by its init, freed by
	 * its fini.  Fields inside are under `lock` unless the room says not. */
	struct exec *exec;
	struct pools *pools;
	struct chantab *chans;
	struct memory *memory;
	struct state *state;           /* NULL without a [state] dir */
	struct notice *notice;         /* events ring, job log, on_end hooks */
	struct cgroup *cgroup;         /* resource control: the subtree, controllers */
	struct sync *sync;             /* /sync objects (the sync room) */

	/* the log ring */
	pthread_mutex_t log_lock;
	char **log;
	size_t log_head, log_count;
};

/* ---- task.c: the table -------------------------------------------------------- */
const char *task_state_name(enum task_state s);
bool task_state_ended(enum task_state s);
struct task *task_find(struct engine *e, uint64_t id);
struct task *task_by_pid(struct engine *e, pid_t pid);
void task_link(struct engine *e, struct task *t);
void task_pid_link(struct engine *e, struct task *t);
void task_pid_unlink(struct engine *e, struct task *t);
void live_unlink(struct engine *e, struct task *t);
void task_fds_none(struct task *t);
void task_close_stat(struct task *t);
void task_close_out_w(struct task *t);
void task_close_timer(struct engine *e, struct task *t);
void task_destroy(struct engine *e, struct task *t);
void task_forget_locked(struct engine *e, struct task *t);
void fin_append(struct engine *e, struct task *t);
void trim_history(struct engine *e, struct task *keep);
/* A new task with the next id, not yet in any table (lock held). */
struct task *task_alloc(struct engine *e, const char *cmd);
/* on_end=cmd for a task that runs in cwd (NULL: the daemon's) as drop
 * (NULL: the daemon): NULL if cmd is NULL or memory is short. */
struct end_hook *end_hook_new(const char *cmd, const char *cwd, const struct cred *drop);
void end_hook_free(struct end_hook *h);
/* A pool's worker, as a task in /procs: counted as live, running. */
struct task *task_new_worker(struct engine *e, enum task_kind kind, const char *cmd);
/* Make room under max_tasks by forgetting the oldest ended tasks. */
bool make_room(struct engine *e, size_t need);
/* persist, at restore: a journaled task back in the table (ended, not live) */
struct task *task_restored(struct engine *e, uint64_t id, const char *cmd);
void task_restored_ended(struct engine *e, struct task *t);
/* exec, at restore: one that had not run yet is live again, in state st */
void task_restored_live(struct engine *e, struct task *t, enum task_state st);
bool task_live(const struct task *t);
/* Reserved by a write and not started yet: not in /procs.  A task that
 * waited was shown already, and stays shown while it starts. */
bool task_hidden(const struct task *t);

/* ---- lifecycle.c: start, end, signals, timeouts ---------------------------------- */
/* Tell every room that t runs (lock held). */
void task_started(struct engine *e, struct task *t);
/* A running process (a cow child): into the tables and live counters. */
void task_insert_running(struct engine *e, struct task *t);
void task_ended(struct engine *e, struct task *t, enum task_state st, int code);
void task_end_with_status(struct engine *e, struct task *t, int status, const struct rusage *ru);
void task_failed_to_start(struct engine *e, struct task *t, int err, const char *what);
void task_arm_timeout(struct engine *e, struct task *t);
void task_timer_fired(struct engine *e, uint64_t id);
void arm_timer_ms(int fd, int64_t ms);
/* t plus ms milliseconds, normalized (deadlines for timed waits). */
struct timespec ts_add_ms(struct timespec t, int64_t ms);
/* Now on clock c, plus ms milliseconds. */
struct timespec ts_in_ms(clockid_t c, int64_t ms);
int task_send_signal(struct engine *e, struct task *t, int sig);

/* ---- watch.c: what the engine asks of the loop ----------------------------------- */
void engine_notify_locked(struct engine *e, enum eng_obj kind, uint64_t id);
void engine_flush_notify(struct engine *e);
int engine_watch(struct engine *e, int fd, enum watch_type t, uint64_t id);
/* EPOLL_CTL_DEL, then close, then -1 (see engine_watch). */
void engine_close_watched(struct engine *e, int *fd);
void engine_close_soon(struct engine *e, int *fd);
void engine_wake(struct engine *e);
/* The calling thread is e's engine thread (closes then wait for the turn's end). */
void engine_watch_thread(const struct engine *e);
void engine_close_soon_done(struct engine *e);

/* ---- loop.c: the event loop ------------------------------------------------------ */
void *engine_thread(void *arg);

/* ---- reap.c: the reaper and spawn windows ----------------------------------------- */
void reap_children(struct engine *e);
/* A direct spawn's window, instead of reap_lock: open it before the fork
 * (takes lock), close it once the pid is published or the spawn failed (lock
 * held): true if the child was reaped meanwhile, with its status. */
void spawn_window_open(struct engine *e);
bool spawn_window_close_locked(struct engine *e, pid_t pid, int *status, struct rusage *ru);

/* ---- host.c: worker hosts ------------------------------------------------------- */
/* Register a worker host (lock held): its socket joins the epoll set. */
struct host *host_add(struct engine *e, pid_t pid, int sock, const struct host_ops *ops,
		      struct pool *pool);
void host_readable(struct engine *e, uint64_t hid);
void host_died(struct engine *e, struct host *h, int status);
void hosts_free(struct engine *e);

/* ---- output.c ---------------------------------------------------------------------- */
void out_append(struct outbuf *o, const char *p, size_t n, uint64_t max);
/* Read what the pipe has now; returns false at EOF or error (fd closed). */
bool out_drain(struct engine *e, struct outbuf *o, uint64_t max);
/* Copy what was captured from offset off; returns the bytes copied. */
size_t out_copy(const struct outbuf *o, uint64_t off, char *buf, size_t size, uint64_t *total);
void out_free(struct engine *e, struct outbuf *o);

/* ---- log.c ------------------------------------------------------------------------- */
void log_init(struct engine *e);
void log_free(struct engine *e);
void log_add(struct engine *e, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Does an event of level lvl leave the ring (stderr or syslog) at threshold? */
bool log_level_passes(enum log_level lvl, enum log_level threshold);

#endif
