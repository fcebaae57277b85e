/* engine.h - tasks and their lifecycle, with no knowledge of FUSE.
 *
 * One engine thread owns the asynchronous side: it waits (epoll) on a
 * signalfd for SIGCHLD, on the tasks' stdout/stderr pipes, on per-task
 * timeout timerfds, on thread-host sockets and on an eventfd for wakeups; it
 * reaps children, captures output, escalates timeouts.  Callers (the fs layer's
 * request threads) make short synchronous calls: start work, copy out a
 * snapshot, send a signal.  Nothing in this API blocks on a task: a caller who
 * wants to wait registers interest in an object and is told through
 * hooks->changed() when it changes, then asks again.
 *
 * The daemon is a child subreaper: tasks (and their orphaned descendants) are
 * its children, reaped only by the engine thread.  Built-in workloads never
 * run in the daemon: they run in `pcfs-worker` processes (a fork server, a
 * thread host, or an exec'd worker).
 */
#ifndef PCFS_ENGINE_H
#define PCFS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "access.h"
#include "msgqueue.h"
#include "config.h"
#include "memstat.h"
#include "slurm.h"
#include "spec.h"
#include "strbuf.h"
#include "syncspec.h"
#include "template.h"

struct engine;
struct origin;

/* What an engine event is about; fs uses (kind, id) as a wait key. */
enum eng_obj {
	OBJ_TASK = 1,     /* a task ended, or its stdout/stderr grew */
	OBJ_STATS,        /* counters changed (for pollers of /stats) */
	OBJ_POOL,         /* id = pool: a future of it reached a final state, or the pool's state changed */
	OBJ_FUTURE,       /* id = FUTURE_KEY(pool, future): it changed state */
	OBJ_CHANNEL,      /* a channel changed: a message came or went, closed, removed */
	OBJ_TASK_GONE,    /* a task was forgotten: its id names nothing any more */
	OBJ_EVENTS,       /* the events ring grew: id 0 for every event, id = pool for its own */
	OBJ_SYNC,         /* id = a /sync object: a unit came free, an event or barrier moved */
	OBJ_SHM,          /* id = a /shm segment or value (its owner; no waits) */
	OBJ__COUNT
};

/* A future is named by its pool and its number in the pool. */
#define FUTURE_KEY(pool, fut) (((uint64_t)(pool) << 32) | (uint64_t)(fut))
#define FUTURE_POOL(key) ((key) >> 32)
#define FUTURE_ID(key) ((key) & 0xffffffffu)
#define POOL_NAME_MAX 64

struct engine_hooks {
	void *ctx;
	/* Called with no engine lock held, from the engine thread or from the
	 * thread of an API call; must not block. */
	void (*changed)(void *ctx, enum eng_obj kind, uint64_t id);
};

enum task_state {
	TS_STARTING,  /* being created (never visible through the API) */
	TS_RUNNING,
	TS_STOPPED,   /* SIGSTOP'd (ctl stop) */
	TS_EXITED,    /* ended by exit(): exitcode >= 0 */
	TS_KILLED,    /* ended by a signal: exitcode = -signal */
	TS_FAILED,    /* could not start: error says why; exitcode 127 (not found) or 126 */
	TS_LOST,      /* it ran when a previous pcfs died ([state] dir): the exit status is
		       * unknown (no exitcode); error says what is known */
	TS_WAITING,   /* after=: waits for other tasks to end; no process yet */
	TS_SKIPPED,   /* never ran: what it waited for did not end as after= needed (or a
		       * ctl ended it first); no exitcode; error names why */
};

/* A copy of one task's state, taken under the engine lock. */
struct task_info {
	uint64_t id;
	enum task_kind kind;
	enum start_method method;   /* resolved: never METHOD_DEFAULT */
	enum workload workload;
	enum task_state state;
	bool ended;                 /* EXITED, KILLED or FAILED */
	int exitcode;               /* valid when ended */
	pid_t pid;                  /* the process; for a thread, its host */
	pid_t tid;                  /* threads: the thread id (0 until known) */
	pid_t pgid;
	uint64_t parent_id;         /* a cow child: the task that forked it, else 0 */
	char name[SPEC_NAME_MAX + 1];
	char error[256];
	char *cmd;                  /* the line that started it (owned: task_info_free) */
	struct timespec start;      /* CLOCK_REALTIME */
	struct timespec end;        /* CLOCK_REALTIME, zero while running */
	double runtime;             /* seconds, so far or total */
	double utime, stime;        /* CPU seconds (processes: from rusage at exit, or from
				     * /proc while live with engine_task_status; 0 otherwise) */
	int64_t timeout_ms;         /* SPEC_UNSET if none */
	bool timed_out;
	uint64_t out_bytes[3];      /* [1] stdout, [2] stderr: captured */
	uint64_t out_dropped[3];    /* bytes beyond output_max, not kept */
	int term_signal;            /* the signal sent by ctl/timeout, 0 if none */
	char pool[POOL_NAME_MAX + 1]; /* a pool worker: its pool's name; "" otherwise */
	unsigned slot;              /* a pool worker: its slot number */
	struct owner owner;         /* who started it (a pool worker: the pool's owner) */
	/* accounting of its tree: processes' own figures and those of the
	 * descendants they waited for (wait4's rusage at the end; faults from
	 * /proc/PID/stat while live, engine_task_status only) */
	uint64_t minflt, majflt;    /* page faults: minor (no I/O), major (read in) */
	uint64_t rss_peak_kib;      /* the largest resident set; 0 while it runs (an
				     * extra /proc read per status: mem has its rss) */
	char cgroup[48];            /* its cgroup's name in pcfs's subtree ("t12"), "" if none */
	bool oom_killed;            /* the OOM killer ended it */
	int64_t mem_max;            /* its line's limits (SPEC_UNSET: none): mem_max=, */
	int cpu_max;                /* cpu_max= (percent of a CPU), */
	char cpus[64];              /* cpus= ("" if none) */
};

void task_info_free(struct task_info *ti);

struct engine_stats {
	uint64_t started, running, exited, killed, failed, refused, forgotten, waiting, skipped;
	uint64_t live_processes, live_threads, known;
};

/* Lifecycle.  engine_new() validates and spawns the fork server (it must be
 * called before any other thread exists, as it blocks SIGCHLD for the whole
 * process and makes the daemon a child subreaper).  engine_start() starts the
 * engine thread.  engine_shutdown() applies the unmount policy to live tasks,
 * reaps, and joins the thread. */
struct engine *engine_new(const struct pcfs_config *cfg, const char *mountpoint,
			  const char *worker_path, char *err, size_t errlen);
void engine_set_hooks(struct engine *e, const struct engine_hooks *hooks);
/* Before mounting: the state dir in use (cfg->state_path: [state] dir, or the
 * default dir of this mountpoint, or none), and is it usable, and not
 * another daemon's?  (The engine takes it for good in engine_new.)  0; 1
 * when the default dir cannot be had (the reason in err: the daemon runs
 * without one); -errno with a reason: refuse to mount. */
int state_check(struct pcfs_config *cfg, const char *mountpoint, char *err, size_t errlen);
/* Only the first step of it: cfg->state_path. */
int state_resolve(struct pcfs_config *cfg, const char *mountpoint, char *err, size_t errlen);
int engine_start(struct engine *e);
void engine_shutdown(struct engine *e);
void engine_free(struct engine *e);
const struct pcfs_config *engine_config(const struct engine *e);

/* Start every task line in buf[0..len) (complete lines; blank lines and lines
 * starting with '#' are skipped).  All lines are parsed and the limits checked
 * before anything starts: on any error nothing starts, -EINVAL/-E2BIG/-EAGAIN
 * is returned and the reason ("line N: ...") is in err.  On success the new
 * task ids are appended to ids_out, one per line.  Tasks that cannot exec are
 * created in state FAILED (the write still succeeds: the id tells the story). */
int engine_spawn(struct engine *e, const char *buf, size_t len,
		 struct strbuf *ids_out, char *err, size_t errlen);
/* The same, for a caller: the tasks are theirs, and run with their uid, gid
 * and groups when the daemon is root and they are not.  -EACCES (with the
 * reason) when that cannot be: a daemon that is not root would run them as
 * itself.  o is the writer's context (lib/origin.h): the tasks run in its
 * directory with its environment; NULL: the daemon's (cwd= must then be
 * absolute).  A line whose context cannot be read is refused with the
 * errno of the read (ESRCH, EACCES, E2BIG) and the reason.  engine_spawn()
 * is this for the daemon's own user and context. */
int engine_spawn_as(struct engine *e, const struct cred *who, const struct origin *o,
		    const char *buf, size_t len, struct strbuf *ids_out, char *err,
		    size_t errlen);
/* Who owns an object (OBJ_TASK, OBJ_POOL, OBJ_FUTURE: its pool's owner,
 * OBJ_CHANNEL): 0, or -ENOENT. */
int engine_owner(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out);

/* Task queries.  All return -ENOENT for an unknown or forgotten id. */
int engine_task_info(struct engine *e, uint64_t id, struct task_info *out);
/* The same without the command line (out->cmd NULL): what the per-field
 * files of /procs/ID and the `wait` readiness check need, with no copy. */
int engine_task_brief(struct engine *e, uint64_t id, struct task_info *out);
/* The same, with a live process's CPU times read from /proc/PID/stat (an
 * open and a read of procfs: only `status` wants them, not every file). */
int engine_task_status(struct engine *e, uint64_t id, struct task_info *out);
bool engine_task_exists(struct engine *e, uint64_t id);
/* Ids of known tasks in ascending order (malloc'd; caller frees). */
int engine_task_ids(struct engine *e, uint64_t **ids, size_t *n);
/* Copy captured output of stream (1 or 2) from offset off; returns bytes
 * copied (0 at the end of what is captured so far); *total = bytes captured. */
ssize_t engine_task_output(struct engine *e, uint64_t id, int stream, uint64_t off,
			   char *buf, size_t size, uint64_t *total);

/* ctl: "term", "kill", "signal N|NAME", "stop", "cont".  -EINVAL with a reason
 * for a bad command, -ESRCH once the task has ended. */
int engine_task_ctl(struct engine *e, uint64_t id, const char *cmd, char *err, size_t errlen);
/* rmdir: forget an ended task (-EBUSY while it runs). */
int engine_task_forget(struct engine *e, uint64_t id);

void engine_stats(struct engine *e, struct engine_stats *out);

/* Resource control (the cgroup room).  procs/ID/cgroup: the task's cgroup
 * directories and the processes still in them (-ENOENT: no such task; an
 * empty text: it has no cgroup).  How many processes remain in its cgroup
 * (-1: it has none).  What resource control uses here, one line for /stats. */
int engine_task_cgroup(struct engine *e, uint64_t id, struct strbuf *out);
long engine_task_cgroup_procs(struct engine *e, uint64_t id);
/* Its cgroup's own accounting, everything it ever held included (also what
 * it left running): CPU microseconds (unified cpu.stat usage_usec) and the
 * memory peak in bytes (memory.peak, v1 memory.max_usage_in_bytes); -1
 * where there is no such figure.  -ENOENT: no cgroup. */
int engine_task_cgroup_acct(struct engine *e, uint64_t id, int64_t *cpu_us, int64_t *mem_peak);

/* procs/ID/io: its I/O.  While it runs, /proc/PID/io (rchar wchar syscr
 * syscw read_bytes write_bytes cancelled_write_bytes; -1 if unreadable);
 * once ended, wait4's block counts (read_bytes, write_bytes: 512-byte
 * blocks, its waited-for descendants included), the rest -1. */
struct task_io {
	int64_t rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes;
	uint64_t minflt, majflt;
	bool live;
};
int engine_task_io(struct engine *e, uint64_t id, struct task_io *out);
void engine_cgroup_mechanisms(struct engine *e, char *buf, size_t n);

/* Waiting for many tasks at once (/wait; waitset.c): a set of task ids, each
 * reported once as an `ID CODE` line when it ends, in the order they end.
 * CODE is what procs/ID/wait gives (the exitcode, or `lost`), or
 * `forgotten` for a task forgotten before it could be told. */
struct task_waitset;
struct task_waitset *waitset_new(void);
void waitset_free(struct task_waitset *w);
/* Add the ids and A-B ranges of buf[0..len) (blank-separated).  All of them
 * or none: -EINVAL (a malformed item, an id never given), -E2BIG (more than
 * [limits] max_tasks), with the reason in err.  Lines for those that have
 * ended already go to out at once; an id still pending counts once. */
int waitset_add(struct engine *e, struct task_waitset *w, const char *buf, size_t len,
		struct strbuf *out, char *err, size_t errlen);
/* Lines for the tasks of the set that ended since the last call go to out;
 * returns how many are still pending, or -ENOMEM. */
long waitset_poll(struct engine *e, struct task_waitset *w, struct strbuf *out);
size_t waitset_pending(const struct task_waitset *w);

/* ---- pools and futures (concurrent.futures as files) ----------------------- */

enum pool_state { POOL_RUNNING, POOL_SHUTDOWN, POOL_CLOSED };
/* WAITING: after=, its dependencies have not all ended (in no queue);
 * SKIPPED: final, it never runs (what it waited for did not end as needed) */
enum future_state { FUT_PENDING, FUT_RUNNING, FUT_DONE, FUT_FAILED, FUT_CANCELLED, FUT_WAITING,
		    FUT_SKIPPED };

/* A cgroup's figures for a status file (-1: not counted here). */
struct cg_figures {
	char name[64];              /* below pcfs's subtree: "p3", "" if none */
	long procs;                 /* processes in it */
	int64_t cpu_us;             /* CPU time of everything that ran in it */
	int64_t mem_peak;           /* its memory's high-water mark, bytes */
};

struct pool_info {
	uint64_t id;
	char name[POOL_NAME_MAX + 1];
	enum task_kind type;
	bool gil, paused;
	enum pool_state state;
	unsigned workers, ready, busy;
	uint64_t submitted, queued, running, done, failed, cancelled;
	uint64_t waiting, skipped;  /* after=: waiting for futures; never ran because of one */
	uint64_t prefetched;           /* of queued: handed to a worker ahead, not started */
	double rate;                /* futures finished per second, recent */
	double elapsed;             /* seconds since the first submit */
	bool slurm;                 /* executor=slurm: futures are Slurm jobs */
	struct slurm_opts slurm_opts;
	struct owner owner;         /* who created it: its workers run as them */
	char tmpl[TMPL_MAX + 1];    /* template=, "" if none */
	char halt[48];              /* halt= as ctl takes it ("now,fail=3"), "" if never */
	bool halted;                /* halt= was met: nothing starts, submits refused */
	char halt_why[256];         /* why, "" unless halted */
	char on_end[SPEC_ON_END_MAX + 1]; /* on_end=, "" if none */
	char limits[160];           /* mem_max=... as ctl takes them, "" if none */
	struct cg_figures cg;       /* its workers' cgroup (name "" if none) */
};

struct future_info {
	uint64_t pool, id;
	enum future_state state;
	bool final;
	int exitcode;               /* valid when final and not cancelled */
	char error[256];
	unsigned attempts, retries;
	unsigned slot;
	uint64_t task;              /* the /procs id of the worker that ran it last, 0 if none */
	pid_t child;                /* exec/sh: the child process, 0 otherwise */
	double queued_for, runtime, cpu;
	int64_t timeout_ms;
	uint64_t out_bytes[3], out_dropped[3];
	uint64_t slurm_job;         /* a Slurm pool's job id, 0 if none (yet) */
	struct owner owner;         /* its pool's owner */
	int priority;               /* priority=: pending futures start highest first */
	char name[SPEC_NAME_MAX + 1]; /* name=, "" if none */
	char limits[160];           /* its line's mem_max=, ..., "" if none */
	bool oom_killed;            /* its last run was killed by the OOM killer */
};

const char *pool_state_name(enum pool_state s);
const char *future_state_name(enum future_state s);
/* Has it an exit code (done, failed)?  Not cancelled or skipped: never ran. */
bool future_state_has_code(enum future_state s);

/* Names: [A-Za-z0-9._-]{1,64}, not "." or "..".  -EINVAL, -EEXIST, -ENOSPC. */
int engine_pool_create(struct engine *e, const char *name, char *err, size_t errlen);
/* The same, for a caller: the pool is theirs and its work runs as them
 * (engine_spawn_as explains when that is refused, at the first submit). */
int engine_pool_create_as(struct engine *e, const char *name, const struct cred *who,
			  char *err, size_t errlen);
/* rmdir: only a pool that is shut down and drained (-EBUSY otherwise). */
int engine_pool_remove(struct engine *e, const char *name);
int engine_pool_find(struct engine *e, const char *name, uint64_t *id);
/* (id, name) of every pool, malloc'd arrays. */
int engine_pool_list(struct engine *e, uint64_t **ids, char (**names)[POOL_NAME_MAX + 1],
		     size_t *n);
int engine_pool_info(struct engine *e, uint64_t pool, struct pool_info *out);
/* ctl: workers=N type=process|thread gil=0|1 template='LINE' shutdown [cancel]
 * pause resume; executor=local|slurm with Slurm options (partition= account=
 * mem= cpus= slurm_time=) and workers=, several on one line. */
int engine_pool_ctl(struct engine *e, uint64_t pool, const char *line, char *err, size_t errlen);
/* Submit every task line in buf (through the pool's template: every input
 * line): all queued, or none (-EINVAL/-EAGAIN/-ESHUTDOWN with the reason).
 * New future ids are appended to ids (malloc'd, grown).  o: the writer's
 * context, which each future runs with (its directory and environment;
 * NULL: the daemon's), as engine_spawn_as says. */
int engine_pool_submit(struct engine *e, uint64_t pool, const struct origin *o, const char *buf,
		       size_t len, uint64_t **ids, size_t *nids, char *err, size_t errlen);
/* Completion order: copy ids [from, from+max) of the pool's completed list;
 * *more = false once the pool is closed and the list will not grow. */
int engine_pool_completed(struct engine *e, uint64_t pool, size_t from, uint64_t *out,
			  size_t max, size_t *n, bool *more);
/* The running futures, `ID` or `ID:NAME` (name=) blank-separated, in id
 * order, appended to out (pool status). */
int engine_pool_running(struct engine *e, uint64_t pool, struct strbuf *out);
/* The /procs task id of worker slot `slot` (1-based), for workers/N. */
int engine_pool_worker(struct engine *e, uint64_t pool, unsigned slot, uint64_t *task);

int engine_future_info(struct engine *e, uint64_t pool, uint64_t fut, struct future_info *out);
/* Its line (status shows it): appended to out.  future_info has no copy of it,
 * so reading a future's state allocates nothing. */
int engine_future_cmd(struct engine *e, uint64_t pool, uint64_t fut, struct strbuf *out);
bool engine_future_exists(struct engine *e, uint64_t pool, uint64_t fut);
uint64_t engine_future_count(struct engine *e, uint64_t pool);
ssize_t engine_future_output(struct engine *e, uint64_t pool, uint64_t fut, int stream,
			     uint64_t off, char *buf, size_t size, uint64_t *total);
/* cancel a pending future: 0; -EBUSY if it runs or has ended */
int engine_future_cancel(struct engine *e, uint64_t pool, uint64_t fut);
/* term | kill | signal N: stop a running future (it fails with -N);
 * priority=N: a pending future's place in the queue */
int engine_future_ctl(struct engine *e, uint64_t pool, uint64_t fut, const char *cmd,
		      char *err, size_t errlen);
/* Memory and scheduling figures (engine/memory/sample.c).  A live task's are read
 * from /proc at the call (cheap files only: smaps_rollup, status, stat,
 * maps); an ended task's are the last ones sampled, every
 * [memory] sample_period while it ran.  A thread task reports its host
 * process's memory and its own thread's scheduling.  -ESRCH (with a log
 * line) when /proc cannot be read and nothing was sampled. */
struct task_mem {
	bool live;                  /* read just now; false: the last sample */
	double age;                 /* seconds since the figures were read */
	pid_t pid, tid;             /* the process (a thread's host) and thread read */
	struct ms_sample s;
	double utime, stime;        /* CPU seconds (ended processes: exact, from wait4) */
	int64_t vol_cs, nonvol_cs;  /* context switches (ended processes: from wait4) */
};
/* what: MS_READ_MEM and/or MS_READ_SCHED (a live task's other figures are
 * left zero; an ended task's are all from its last sample). */
int engine_task_mem(struct engine *e, uint64_t id, unsigned what, struct task_mem *out);
/* The kernel's smaps text of the task's process: now, or the last snapshot
 * (taken at most once a second while sampling, and at each read). */
int engine_task_smaps(struct engine *e, uint64_t id, struct strbuf *out, bool *live);
/* memlog: "t_ms vsz_kib rss_kib" lines, oldest first. */
int engine_task_memlog(struct engine *e, uint64_t id, struct strbuf *out);

/* Copy-on-write sharing with the process it was forked from (engine/memory/cow.c). */
enum cow_method { COW_NA, COW_PAGEMAP, COW_SMAPS };
struct task_cow {
	enum cow_method method;
	char reason[160];           /* n/a: why; smaps: why not exact */
	uint64_t parent_id;         /* the parent task, 0 if the fork server */
	pid_t parent_pid;
	struct ms_cow c;            /* pages */
	bool live;                  /* measured now; false: the last measurement */
};
int engine_task_cow(struct engine *e, uint64_t id, struct task_cow *out);

/* /top: one row per live task, from the last samples (no /proc reads). */
struct top_row {
	uint64_t id;
	enum task_kind kind;
	enum task_state state;
	pid_t pid, tid;
	char name[SPEC_NAME_MAX + 1];
	bool sampled;               /* false until the first sample */
	double cpu_pct;             /* <0: not known yet (one sample only) */
	int64_t rss, vsz;           /* KiB */
};
int engine_top(struct engine *e, struct top_row **rows, size_t *n);

/* /mem: one row per live task with its memory figures, read now (the
 * memory room's table.c): the smaps_rollup and statm of its process (a
 * thread task's host, read once for all its threads).  A task whose
 * process cannot be read now (a zombie not yet reaped) shows its last
 * sample's figures, and age says how old they are; one never sampled
 * shows none. */
struct mem_row {
	uint64_t id;
	enum task_kind kind;
	pid_t pid;
	char name[SPEC_NAME_MAX + 1];
	bool known;                 /* false: no figures (age too) */
	double age;                 /* seconds since they were read: 0 now */
	int64_t vsz, rss, pss, uss, swap;   /* KiB, MS_NONE: the kernel gave none */
};
/* *rows: in id order, malloc'd, the caller's to free.  0 or -ENOMEM. */
int engine_mem_table(struct engine *e, struct mem_row **rows, size_t *n);

/* ---- notice (engine/notice/): events, job logs ---------------------------------
 * /events and pools/NAME/events: one line per start and end, from a bounded
 * ring ([log] events).  A reader is a place in the ring: each read gives what
 * came since its last, told first how many it missed if the ring moved past
 * it.  pool 0: every event; else that pool's futures only. */
struct event_reader;
struct event_reader *engine_events_open(struct engine *e, uint64_t pool, bool json);
void engine_events_close(struct event_reader *r);
/* Append the lines that came since the last read (at most about max bytes)
 * to out: how many lines were added (0: none yet, wait for OBJ_EVENTS), or
 * -ENOMEM. */
long engine_events_read(struct engine *e, struct event_reader *r, struct strbuf *out,
			size_t max);
/* GNU parallel's --joblog of the last [log] joblog ends: pool 0, the tasks
 * spawned (pool workers are not jobs); else that pool's futures. */
int engine_joblog(struct engine *e, uint64_t pool, struct strbuf *out);

/* The event log: a bounded ring of lines, newest last. */
void engine_log(struct engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void engine_log_render(struct engine *e, struct strbuf *out);
/* Send the log lines at or above [log] level to syslog(3) instead of stderr
 * (a daemon that has detached; call before engine_new). */
void engine_log_to_syslog(bool on);

const char *task_state_name(enum task_state s);
/* Ended with an exit code (exited, killed, failed): lost and skipped have none. */
bool task_state_has_code(enum task_state s);

/* ---- channels (engine/channels/channels.c) -------------------------------------------
 * Named message channels: queues, duplex pipes, and sockets bridged to a real
 * listening AF_UNIX socket; exec/sh tasks' stdin/stdout may be wired to them.
 * Nothing here waits either: a put on a full channel or a get on an empty one
 * returns -EAGAIN and the caller waits for OBJ_CHANNEL changes of that id.
 * Those are delivered from the engine thread, never from inside these calls,
 * so a hook may call straight back in while holding its own locks.
 */

/* Which file of a channel directory a call is made through. */
enum chan_end {
	CHAN_END_PUT,   /* queue, socket: write messages */
	CHAN_END_GET,   /* queue, socket: read messages */
	CHAN_END_A,     /* pipe: write to b, read what b wrote */
	CHAN_END_B,     /* pipe: write to a, read what a wrote */
};

struct chan_info {
	uint64_t id;
	char name[CHAN_NAME_MAX + 1];
	enum chan_type type;
	enum chan_mode mode;
	uint32_t capacity;
	uint64_t maxmsg, max_bytes;
	bool closed;
	struct chan_q q[2];         /* counters only (head and tail are NULL) */
	unsigned blocked_readers, blocked_writers;
	unsigned clients;           /* sockets: connected clients */
	unsigned wired;             /* task stdin/stdout ends attached */
	char address[108];          /* sockets: the listening socket's path */
	struct owner owner;         /* who created it */
};

struct chan_entry {
	uint64_t id;
	char name[CHAN_NAME_MAX + 1];
};

/* -EEXIST, -ENOSPC (max_channels), -EINVAL, or errors making the socket;
 * a reason in err. */
int engine_chan_create(struct engine *e, const struct chan_spec *s, uint64_t *id, char *err,
		       size_t errlen);
/* The same, owned by `who` (engine_chan_create: by the daemon's user). */
int engine_chan_create_as(struct engine *e, const struct chan_spec *s, const struct owner *who,
			  uint64_t *id, char *err, size_t errlen);
/* rmdir: -EBUSY while requests are blocked on it, -ENOTEMPTY while messages
 * wait in a channel that is not closed.  Wired tasks' stdin sees EOF. */
int engine_chan_remove(struct engine *e, uint64_t id);
int engine_chan_lookup(struct engine *e, const char *name, uint64_t *id);
int engine_chan_type(struct engine *e, uint64_t id);      /* enum chan_type, or -ENOENT */
int engine_chan_list(struct engine *e, struct chan_entry **v, size_t *n);   /* caller frees */
/* One message.  As chan_put(), plus -EBADF for an end that does not write;
 * a channel removed meanwhile gives -EPIPE. */
int engine_chan_put(struct engine *e, uint64_t id, enum chan_end end, const void *buf,
		    size_t len);
/* 1 (*out is the caller's: chan_msg_free), 0 at the end (closed and drained,
 * or removed), -EAGAIN while empty, -EBADF for an end that does not read. */
int engine_chan_get(struct engine *e, uint64_t id, enum chan_end end, struct chan_msg **out);
/* A write through a file end, framed by the channel's mode: lines mode,
 * the complete lines of head + buf (head: the writer's unfinished line) as
 * messages, as chan_put_lines() (all or none, or in parts if they could
 * never fit at once); message mode, head + buf as one message (head is
 * empty unless the mode changed while a descriptor held an unfinished line).
 * Returns how many bytes of buf went into messages: the rest of buf, if it
 * holds no newline, is the writer's unfinished line, kept on its
 * descriptor; if it does, the write went in part.  Errors as
 * chan_put_lines() and chan_put() (-EAGAIN: wait for room), plus -EBADF and
 * -EPIPE as engine_chan_put(); a write that could never fit is logged. */
ssize_t engine_chan_write(struct engine *e, uint64_t id, enum chan_end end, const char *head,
			  size_t hlen, const char *buf, size_t len);
/* Would engine_chan_write() of these bytes wait for room now? */
bool engine_chan_write_waits(struct engine *e, uint64_t id, enum chan_end end, size_t hlen,
			     const char *buf, size_t len);
/* A read through a file end: lines mode, the oldest whole messages that fit
 * in room bytes together (chan_get_upto); message mode, the oldest message.
 * Either way a message longer than room comes alone (the reader keeps its
 * rest).  Returns as engine_chan_get(); *out is a chain (chan_msg_free_all). */
int engine_chan_take(struct engine *e, uint64_t id, enum chan_end end, size_t room,
		     struct chan_msg **out);
/* What would not wait now through this end, as poll(2) bits: POLLIN (a
 * message, or the end: then POLLHUP too), POLLOUT (room for a message of len
 * bytes; with POLLERR once closed). */
unsigned engine_chan_events(struct engine *e, uint64_t id, enum chan_end end, size_t len);
int engine_chan_info(struct engine *e, uint64_t id, struct chan_info *out);
/* ctl: "close", or settings "capacity=N", "mode=lines|message".  -EINVAL
 * with a reason; -EBUSY for mode= while messages wait (nothing applied). */
int engine_chan_ctl(struct engine *e, uint64_t id, const char *cmd, char *err, size_t errlen);
/* The fs tells how many of its requests are blocked on a channel (+1/-1). */
void engine_chan_blocked(struct engine *e, uint64_t id, bool writer, int delta);

/* ---- synchronization objects (engine/sync/) ------------------------------------------
 * Locks, semaphores, events and barriers of /sync.  Nothing here waits: a
 * descriptor joins an object with a ticket (engine_sync_join), asks whether
 * it may go on (engine_sync_try), and waits for OBJ_SYNC changes of the
 * object's id in between.  The descriptor owns its ticket and gives it back
 * with engine_sync_close (a held unit is released, a waiter leaves). */
#define SYNC_HOLDERS_MAX 32          /* holders a status lists */

struct sync_holder {
	pid_t pid;
	uint64_t task;                /* the pcfs task it is or descends from, 0 if none */
	double held_for;              /* seconds */
};

struct sync_info {
	uint64_t id;
	char name[SYNC_NAME_MAX + 1];
	enum sync_kind kind;
	int64_t value, initial;       /* lock, semaphore: free units; value= */
	bool bounded;
	bool set;                     /* event */
	unsigned parties, arrived;    /* barrier; arrived: waiting in this round */
	int64_t timeout_ms;           /* barrier: -1 none */
	bool broken;
	uint64_t generation, passed;  /* barrier: rounds */
	unsigned waiters, holders;
	struct sync_holder holder[SYNC_HOLDERS_MAX];
	uint64_t acquisitions, contended;
	double longest_hold;          /* seconds */
	struct owner owner;
};

struct sync_entry {
	uint64_t id;
	char name[SYNC_NAME_MAX + 1];
};

struct sync_ticket;

/* A new object (a line of /sync/ctl parsed by sync_parse_create; mkdir: a
 * lock), who's.  -EINVAL with the reason, -EEXIST, -ENOSPC. */
int engine_sync_create(struct engine *e, const struct sync_spec *s, const struct owner *who,
		       uint64_t *id, char *err, size_t errlen);
/* rmdir: -EBUSY while anyone holds or waits on it. */
int engine_sync_remove(struct engine *e, uint64_t id);
int engine_sync_lookup(struct engine *e, const char *name, uint64_t *id);
int engine_sync_kind(struct engine *e, uint64_t id);      /* enum sync_kind, or -ENOENT */
int engine_sync_list(struct engine *e, struct sync_entry **v, size_t *n);   /* caller frees */
int engine_sync_info(struct engine *e, uint64_t id, struct sync_info *out);
/* NAME/ctl: set, clear (events); abort, reset (barriers); release [N]
 * (semaphores).  -EINVAL with the reason, -EOVERFLOW (a bounded semaphore). */
int engine_sync_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen);
/* A descriptor of `hold` (lock, semaphore) or `wait` (event, barrier) of
 * object id, opened by pid, joins it: *out is its ticket (the caller's).
 * -ENOENT, -EINVAL (the wrong file for the kind), -ENOMEM. */
int engine_sync_join(struct engine *e, uint64_t id, bool hold, pid_t pid,
		     struct sync_ticket **out);
/* May the ticket go on?  take: grant a hold now if it may (else only look).
 * 1: yes (a hold: it holds a unit; a wait: *index is its barrier arrival
 * index, or 0); 0: not yet; -EPIPE: the barrier was aborted or broken;
 * -EIDRM: the object is gone. */
int engine_sync_try(struct sync_ticket *t, bool take, unsigned *index);
/* Give a ticket back (NULL: nothing). */
void engine_sync_close(struct sync_ticket *t);

/* ---- shared memory (engine/sync/shm.c) ----------------------------------------------
 * /shm: segments backed by a file of /dev/shm (a task maps the file itself:
 * NAME/data links to it), and 64-bit values changed atomically by ctl. */
#define SHM_MAPPERS_MAX 32
struct shm_mapper {
	pid_t pid;
	uint64_t task;                /* the pcfs task it is or descends from, 0 if none */
	int64_t rss_kib, pss_kib;     /* of the segment's mappings, from its smaps */
};
struct shm_info {
	uint64_t id;
	char name[SYNC_NAME_MAX + 1];
	enum shm_kind kind;
	uint64_t size;                /* segment: bytes */
	char path[128];               /* segment: the backing file */
	int64_t resident_kib;         /* segment: its pages in memory (or swap) */
	unsigned mappers;             /* segment: live processes mapping it */
	struct shm_mapper mapper[SHM_MAPPERS_MAX];
	int64_t value;                /* value */
	uint64_t ops, cas_failed;     /* value: changes made, cas refused */
	struct owner owner;
};
/* -EINVAL with the reason, -EEXIST, -ENOSPC, or the backing file's errno. */
int engine_shm_create(struct engine *e, const struct shm_spec *s, const struct owner *who,
		      uint64_t *id, char *err, size_t errlen);
/* rmdir: the backing file is unlinked (live mappings keep their pages). */
int engine_shm_remove(struct engine *e, uint64_t id);
int engine_shm_lookup(struct engine *e, const char *name, uint64_t *id);
int engine_shm_kind(struct engine *e, uint64_t id);       /* enum shm_kind, or -ENOENT */
int engine_shm_list(struct engine *e, struct sync_entry **v, size_t *n);    /* caller frees */
/* Reads /proc for the mappers (no lock held meanwhile). */
int engine_shm_info(struct engine *e, uint64_t id, struct shm_info *out);
/* A segment's backing file, appended to out (NAME/data's target). */
int engine_shm_path(struct engine *e, uint64_t id, struct strbuf *out);
/* size=SIZE; add N, set N, cas OLD NEW: -EAGAIN when cas finds another value. */
int engine_shm_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen);

#endif
