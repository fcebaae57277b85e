/* engine_int.h - the engine's private structures, shared by its .c files only.
 *
 * Locking: `lock` protects every field below that is not marked otherwise.
 * `reap_lock` (rwlock) closes the window between creating a child and
 * publishing its pid: spawners hold it for reading from before fork/spawn until
 * the pid is in the table; the engine thread holds it for writing while it
 * reaps, so it never reaps a pid it cannot yet attribute.  Order: reap_lock,
 * then lock, then log_lock.  Process tasks started directly (the hot path)
 * take no reap_lock: they open a spawn window instead (spawn_window_open), and
 * what the reaper collects inside one is kept for its spawner to claim.
 */
#ifndef PCFS_ENGINE_INT_H
#define PCFS_ENGINE_INT_H

#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/resource.h>

#include "engine.h"
#include "wire.h"
#include "memstat.h"
#include "slurm.h"

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
	WATCH_FTIMER,     /* id = FUTURE_KEY: a pool future's timeout */
	WATCH_SAMPLE,     /* timerfd: memory/scheduling sampling period (sample.c) */
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

/* A worker host: a pcfs-worker process running the threads of one spawn
 * line (`threads` mode), or the slots of a pool (`pool` mode, pool != NULL). */
struct host {
	uint64_t id;
	pid_t pid;
	int sock;          /* -1 once closed */
	unsigned live;     /* tasks attached to it that have not ended */
	bool reaped;
	struct pool *pool;
	struct host *next;
};

struct pool;

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
					* first status read (engine.c: live_cpu), -1 */

	int64_t timeout_ms;
	int timer_fd;
	int timer_stage;               /* 0 armed for TERM, 1 armed for KILL */
	bool timed_out;
	int term_signal;

	/* memory (sample.c, cowtask.c) */
	struct task_mem_store *mem;    /* NULL until the first sample */
	pid_t cow_ref;                 /* the process it was forked from, 0 if exec'd */
	uint64_t parent_id;            /* a cow child: the cow task that forked it */
	bool cow_scanned;              /* a cow task: its announcement line was seen */

	/* [state] dir (state.c) */
	bool persist;                  /* a result to keep (not a pool's worker) */
	bool journaled;                /* its start record is written */
	pid_t lost_pid;                /* lost, and its process still ran at restore: ctl may
					* signal it (0: no) */
};

/* What is kept of a task's memory and scheduling figures (sample.c). */
struct memlog_point {
	int64_t t_ms;                  /* since the task started */
	int64_t vsz, rss;              /* KiB */
};

struct task_mem_store {
	struct ms_sample last;         /* the last sample */
	struct timespec last_mono;
	bool have_last;
	struct timespec mem_mono;      /* when last.r and last.heap were read (from the
					* smaps snapshot: they are older than last_mono) */
	double cpu_pct;                /* between the last two samples; <0 unknown */
	char *smaps;                   /* the last smaps text (owned), for maps/smaps */
	size_t smaps_len;
	struct timespec smaps_mono;
	bool have_cow;                 /* the last cow figures read, kept for after exit */
	struct ms_cow cow;
	bool cow_exact;
	struct memlog_point *log;      /* a ring of at most cfg.memlog_max */
	size_t log_len, log_head, log_cap;
};

/* A child reaped before anyone claimed its pid (cowtask.c): kept briefly so
 * a cow child announced after its death still gets its exit status. */
struct stranger {
	pid_t pid;
	int status;
	struct rusage ru;
	struct timespec when;          /* CLOCK_MONOTONIC */
};
#define STRANGERS 32

/* A process task's stdout and stderr pipes (read ends [0], non-blocking),
 * and, when made ahead, posix_spawn's file actions putting /dev/null, out[1]
 * and err[1] on 0, 1 and 2: glibc checks each descriptor of a dup2 action
 * with a getrlimit call, six syscalls a spawn. */
struct out_pipes {
	int out[2], err[2];
	bool has_fa;
	posix_spawn_file_actions_t fa;
};

/* Pipe pairs the engine keeps made ahead for spawns (spawn.c). */
#define PIPE_STASH 4

struct engine {
	struct pcfs_config cfg;
	struct owner self;             /* the daemon's own uid and gid */
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
	struct task *live_first, *live_last;     /* tasks not ended: what the sampler,
						  * /top and shutdown walk (the
						  * history can be 100x longer) */
	size_t nfinished;
	size_t nlive;                            /* on the live list */
	uint64_t end_seq;                        /* the last end_seq given */
	uint64_t forgot_seq;                     /* the largest end_seq forgotten (waitset.c) */
	struct host *hosts;
	uint64_t next_host_id;

	struct pool *pools;
	uint64_t next_pool_id;
	size_t npools;
	struct run_sender *runs;       /* pool.c: W_PW_RUN batches being built (lock) */

	struct engine_stats st;

	/* notifications gathered under the lock, delivered after it is dropped */
	struct { enum eng_obj kind; uint64_t id; } *pending;
	size_t npending, cap_pending;

	int samplefd;                  /* timerfd: cfg.mem_sample_ms (sample.c) */
	/* Spawn windows (engine.c): direct spawns between their fork and the
	 * publishing of their pid; children reaped meanwhile that nobody knows
	 * wait here for their spawner, and are strangers once no window is open. */
	unsigned spawning;
	struct early_exit { pid_t pid; int status; struct rusage ru; } *early;
	size_t nearly, cap_early;
	struct stranger strangers[STRANGERS];
	size_t stranger_next;

	posix_spawnattr_t spawn_attr;  /* spawn.c: spawn_attr_init */
	/* Output pipes made ahead by the engine thread (spawn.c: pipes_take). */
	pthread_mutex_t pipe_lock;
	struct out_pipes pipe_stash[PIPE_STASH];
	unsigned npipe_stash;

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

	struct chantab *chans;         /* channels.c */
	struct state *state;           /* [state] dir (state.c), NULL without one */
	struct slurm *slurm;           /* the Slurm poller (slurm.c), NULL until a pool uses it;
					* set under `lock` */

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

/* engine.c, for spawn.c and pool.c */
/* How work for `who` (NULL: the daemon's user) runs: *drop is who to become
 * in the child (NULL: stay the daemon), *owner who owns it.  -EACCES with
 * the reason when it cannot run as them. */
int engine_run_as(struct engine *e, const struct cred *who, const struct cred **drop,
		  struct owner *owner, char *err, size_t errlen);
/* Register a worker host (lock held): its socket joins the epoll set. */
struct host *host_add(struct engine *e, pid_t pid, int sock, struct pool *pool);
struct task *task_new_worker(struct engine *e, enum task_kind kind, const char *cmd);
void task_ended_exported(struct engine *e, struct task *t, enum task_state st, int code);
/* EPOLL_CTL_DEL, then close, then -1 (see engine_watch). */
void engine_close_watched(struct engine *e, int *fd);
void engine_close_soon(struct engine *e, int *fd);

/* spawn.c: the stash of ready output pipes */
void spawn_attr_init(struct engine *e);
void pipes_refill(struct engine *e);
void pipes_free(struct engine *e);
void arm_timer_ms(int fd, int64_t ms);
bool task_live(const struct task *t);

/* pool.c */
int pool_owner_locked(struct engine *e, uint64_t pool, struct owner *out);
void pool_host_message(struct engine *e, struct host *h, const struct wire_hdr *m,
		       const char *payload, size_t len);
void pool_host_died(struct engine *e, struct host *h, const char *why);
/* After a host's messages have been read: hand out what they freed. */
void pool_host_drained(struct engine *e, struct pool *p);
void pool_timer_fired(struct engine *e, uint64_t key);
void pools_free(struct engine *e);
const char *pool_name_of(const struct pool *p);
/* pool.c, for slurm.c: futures of Slurm pools.  All with `lock` held. */
struct slurm_submit {                /* a future to submit: copied out of the pool */
	uint64_t pool, fut;
	char pool_name[POOL_NAME_MAX + 1];
	char *line;                      /* owned (free) */
	struct slurm_opts opts;
	bool drop;                       /* sbatch runs as cred, the pool's owner */
	struct cred cred;
};
struct slurm_watch {                 /* a job in flight */
	uint64_t pool, fut, job;
	char pool_name[POOL_NAME_MAX + 1];
	int signal;                      /* > 0: scancel --signal it; < 0: a plain scancel (cancel) */
	bool running;                    /* the future is running (as of the last poll) */
};
/* Dequeue what may be submitted now (workers= bounds the jobs in flight). */
size_t pool_slurm_take(struct engine *e, struct slurm_submit **out);
/* sbatch gave `job`; false if the future was cancelled meanwhile (scancel it). */
bool pool_slurm_submitted(struct engine *e, uint64_t pool, uint64_t fut, uint64_t job);
/* sbatch failed: transient (controller down) requeues it first in line;
 * otherwise the future fails with `why`. */
void pool_slurm_unsubmitted(struct engine *e, uint64_t pool, uint64_t fut, bool transient,
			    const char *why);
size_t pool_slurm_watch(struct engine *e, struct slurm_watch **out);
void pool_slurm_signalled(struct engine *e, uint64_t pool, uint64_t fut, int sig);
/* What Slurm says of the job; for a final one, its stdout/stderr text. */
void pool_slurm_update(struct engine *e, uint64_t pool, uint64_t fut, const struct slurm_job *j,
		       const char *out, size_t outlen, const char *err, size_t errlen);

/* sample.c: sampling on the engine thread; keeping the last figures */
int sample_init(struct engine *e);
/* The sampling timer fired: read every live task's figures, without `lock`. */
void sample_tick(struct engine *e);
void task_mem_free(struct task *t);
/* Keep the last cow figures measured (lock held). */
void task_store_cow(struct task *t, const struct ms_cow *c, bool exact);

/* cowtask.c: a cow task's child becomes a task of its own */
void cow_scan_output(struct engine *e, struct task *t);
void stranger_reaped(struct engine *e, pid_t pid, int status, const struct rusage *ru);
struct task *task_alloc(struct engine *e, const char *cmd);
void task_insert_running(struct engine *e, struct task *t);
void task_end_with_status(struct engine *e, struct task *t, int status, const struct rusage *ru);
/* A direct spawn's window, instead of reap_lock: open it before the fork
 * (takes lock), close it once the pid is published or the spawn failed (lock
 * held): true if the child was reaped meanwhile, with its status. */
void spawn_window_open(struct engine *e);
bool spawn_window_close_locked(struct engine *e, pid_t pid, int *status, struct rusage *ru);

/* spawn.c */
/* Start a pcfs-worker host process with fd 3 = one end of a new SOCK_SEQPACKET
 * pair; *sock gets the other (non-blocking).  Returns the pid or -errno.
 * Caller holds reap_lock for reading (or is the reaper). */
/* drop: become it in the child before exec (NULL: stay the daemon); nice:
 * applied in the child after the drop (WIRE_NO_NICE: none). */
pid_t spawn_host(struct engine *e, char *const argv[], char *const envp[], const char *cwd,
		 const struct cred *drop, int64_t nice, int *sock);
int spawn_forkserver(struct engine *e, char *err, size_t errlen);
/* A command (PATH search) with fds as 0, 1, 2, as `drop` (not NULL): the
 * clone + exec posix_spawn would make, with the credential drop between.
 * Returns the pid or -errno.  Caller holds reap_lock for reading. */
pid_t spawn_cmd_as(struct engine *e, char *const argv[], const int fds[3],
		   const struct cred *drop);
/* Start process tasks, tasks[i] from the line specs[i]; they are already in
 * the table (state STARTING, ids assigned).  Several at a time on a machine
 * with several CPUs.  Never fails as a whole: a task that cannot start ends
 * FAILED with its reason. */
void spawn_processes(struct engine *e, const struct task_spec *const *specs,
		     struct task **tasks, unsigned count, const struct cred *drop);
/* Start the `count` thread tasks of one line (one host process), likewise. */
void spawn_thread_tasks(struct engine *e, const struct task_spec *spec, struct task **tasks,
			unsigned count, const struct cred *drop);

/* channels.c: everything below runs with `lock` held, except as noted */
void chan_event(struct engine *e, uint64_t id, uint32_t events);   /* engine thread */
void chan_pump(struct engine *e);                                  /* engine thread */
void chan_task_ended(struct engine *e, struct task *t);
void chan_free_all(struct engine *e);                              /* no lock: at the end */
/* The channels named by stdin=/stdout= exist (no lock held). */
/* ... and belong to `who` (or who is root): -EACCES otherwise. */
int chan_check_wiring(struct engine *e, const struct task_spec *s, const struct owner *who,
		      char *err, size_t errlen);
int chan_owner_locked(struct engine *e, uint64_t id, struct owner *out);
/* A task's stdio wired to channels: prepared before it starts (no lock held),
 * attached once it runs, released in any case. */
struct chan_wiring {
	int child_stdin;               /* the task's stdin, -1 if not wired */
	int our_stdin;                 /* the engine's end of it */
	uint64_t in_chan, out_chan;    /* 0 if not wired */
};
/* Refused (-ENOENT, -EACCES, with the reason in err) unless the channels
 * exist and who may use them: checked when the task starts, whatever the
 * parse of its line found. */
int chan_wire_prepare(struct engine *e, const struct task_spec *s, const struct owner *who,
		      struct chan_wiring *w, char *err, size_t errlen);
/* Takes our_stdin, and stdout_fd if stdout is wired (then returns true). */
/* task: whose end drains its stdout (0 for a pool's future: none). */
bool chan_wire_attach(struct engine *e, uint64_t task, struct chan_wiring *w, int stdout_fd);
/* The same as chan_wire_prepare, by name, with `lock` held. */
int chan_wire_prepare_locked(struct engine *e, const char *stdin_chan, const char *stdout_chan,
			     const struct owner *who, struct chan_wiring *w, char *err,
			     size_t errlen);
void chan_wire_release(struct chan_wiring *w);                     /* no lock */

/* state.c: results kept in [state] dir across the daemon's death.  Without
 * a dir every call is a no-op.  Record functions run with `lock` held. */
struct state;
int state_open(struct engine *e, char *err, size_t errlen);   /* engine_new */
void state_restore(struct engine *e);                         /* engine_start, no lock */
void state_flush(struct engine *e);                           /* no lock */
void state_compact(struct engine *e);
void state_close(struct engine *e);
void state_task_started(struct engine *e, struct task *t);
void state_task_ended(struct engine *e, struct task *t);
void state_task_output_done(struct engine *e, struct task *t, int stream);
void state_task_forgotten(struct engine *e, struct task *t);
void state_failed(struct engine *e, const char *what, int err);
/* Is pid still the process that started at `start` (not a reused pid)? */
bool state_same_process(pid_t pid, struct timespec start);
/* The buffer to append one record to, or NULL when nothing is journaled. */
struct strbuf *state_record(struct engine *e);
/* Output files in DIR/out, named PREFIX ID.STREAM. */
int state_write_output(struct engine *e, const char *prefix, uint64_t id, int stream,
		       const char *data, size_t len);
void state_read_output(struct engine *e, const char *prefix, uint64_t id, int stream,
		       struct outbuf *o);
void state_remove_output(struct engine *e, const char *prefix, uint64_t id);
/* engine.c, for state.c: a journaled task back in the table */
struct task *task_restored(struct engine *e, uint64_t id, const char *cmd);
void task_restored_ended(struct engine *e, struct task *t);
void task_restored_forget(struct engine *e, struct task *t);
/* pool.c, for state.c: pools and futures in the journal */
struct jrec;
struct pool_replay;
size_t pool_render_state(struct engine *e, struct strbuf *sb);   /* lock held; records */
bool pool_output_known(struct engine *e, const char *file);      /* lock held */
struct pool_replay *pool_replay_new(void);
int pool_replay_record(struct pool_replay *r, const struct jrec *rec, char *line);
size_t pool_replay_apply(struct engine *e, struct pool_replay *r);  /* no lock; pools made */
void pool_replay_done(struct engine *e);   /* no lock: restored pools run from now */
void pool_replay_free(struct pool_replay *r);

/* output.c */
void out_append(struct outbuf *o, const char *p, size_t n, uint64_t max);
/* Read what the pipe has now; returns false at EOF or error (fd closed). */
bool out_drain(struct engine *e, struct outbuf *o, uint64_t max);
/* Copy what was captured from offset off; returns the bytes copied. */
size_t out_copy(const struct outbuf *o, uint64_t off, char *buf, size_t size, uint64_t *total);
void out_free(struct engine *e, struct outbuf *o);

/* log.c */
void log_init(struct engine *e);
void log_free(struct engine *e);
void log_add(struct engine *e, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Does an event of level lvl leave the ring (stderr or syslog) at threshold? */
bool log_level_passes(enum log_level lvl, enum log_level threshold);

#endif
