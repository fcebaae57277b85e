/* spec.h - the task line grammar: one line of `spawn` or `submit`, parsed.
 *
 *   WORKLOAD [COUNT] [KEY=VALUE ...] [ARGS ...]
 *
 * The parser is pure (no I/O, no globals) so the daemon, the worker program
 * and the fuzzers share it.  A line that parses is complete and valid: every
 * number is in range and every key applies to its workload, so the engine never
 * re-checks the grammar.  The daemon sends the original line text to worker
 * processes, which parse it again rather than deserialising a struct.
 */
#ifndef PCFS_SPEC_H
#define PCFS_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum workload {
	WL_CPU,   /* CPU-bound busy work; prints a result line on stdout */
	WL_IO,    /* I/O-bound work: write+fsync a temp file in a loop, mostly waiting */
	WL_SLEEP, /* sleep time= */
	WL_MEM,   /* mmap size=, touch touch=% of it (gradually with step=/rate=), hold time= */
	WL_COW,   /* fill size=, fork a child that writes write=% of the pages, hold */
	WL_STACK, /* recurse depth= frames (frame= bytes each), hold time= */
	WL_NOOP,  /* return at once: for measuring pool and spawn overhead */
	WL_EXEC,  /* run ARGV (posix_spawn by default) */
	WL_SH,    /* /bin/sh -c CMDLINE */
	WL__COUNT
};

enum task_kind { TASK_PROCESS, TASK_THREAD };

enum start_method {
	METHOD_DEFAULT, /* spawn for exec/sh, fork for built-in processes, pthread for threads */
	METHOD_FORK,
	METHOD_SPAWN,
	METHOD_VFORK,
	METHOD_CLONE,
	METHOD_PTHREAD,
	METHOD__COUNT
};

#define SPEC_UNSET (-1)
#define SPEC_NAME_MAX 64
#define SPEC_PRIORITY_MIN (-1000) /* priority= (pools): bigger starts first */
#define SPEC_PRIORITY_MAX 1000
#define SPEC_LINE_MAX 65536     /* longest accepted line, bytes (E2BIG beyond) */
#define SPEC_COUNT_MAX 100000   /* largest COUNT the grammar accepts */
#define SPEC_ENV_MAX 64         /* env= options per line */
#define SPEC_ARGV_MAX 4096      /* exec arguments per line */
#define SPEC_AFTER_MAX 64       /* ids in after=, after_any=, after_fail= */

/* after=, after_any=, after_fail=: what the ids must have ended as for the
 * line's work to run (Slurm's afterok, afterany, afternotok). */
enum after_kind {
	AFTER_NONE,
	AFTER_OK,      /* every one of them succeeded (exit 0) */
	AFTER_ANY,     /* whatever they ended as */
	AFTER_FAIL,    /* at least one of them did not succeed */
};
#define SPEC_ON_END_MAX 4096    /* on_end=: the longest hook command, bytes */

/* stdin=PATH, stdout=PATH, stderr=PATH: a value with a '/' in it, or one
 * that starts with `append:` or `truncate:`, is a file (else a channel). */
struct spec_file {
	char *path;                /* as written (relative: to the task's directory); NULL if none */
	bool append;               /* append:PATH (>>); else truncated (>) */
};

/* Resource control (the cgroup room enforces it): mem_max=, swap_max=,
 * pids_max=, cpu_max=, cpus=, io_weight=, cgroup=1.  A line with any of them
 * gets a cgroup of its own (per task). */
struct spec_limits {
	int64_t mem_max;           /* bytes, SPEC_UNSET if absent */
	int64_t swap_max;          /* bytes, SPEC_UNSET if absent */
	int64_t pids_max;          /* processes, SPEC_UNSET if absent */
	int cpu_max;               /* percent of one CPU (150: one and a half), SPEC_UNSET */
	int64_t io_weight;         /* 1..10000, SPEC_UNSET if absent */
	char *cpus;                /* cpus=LIST as written (valid), NULL if absent */
	int cgroup;                /* cgroup=1: a cgroup with no limit (kill, freeze, accounting) */
};
/* Does the line ask for a cgroup (any limit, or cgroup=1)? */
bool spec_limits_any(const struct spec_limits *l);
void spec_limits_init(struct spec_limits *l);   /* every limit unset */
void spec_limits_free(struct spec_limits *l);   /* its cpus=, then unset */
int spec_limits_copy(struct spec_limits *dst, const struct spec_limits *src);   /* -ENOMEM */
/* One limit of a pool's ctl line, KEY=VAL as a task line takes it (mem_max,
 * swap_max, pids_max, cpu_max, cpus, io_weight), into l.  0, or -EINVAL
 * with the reason. */
int spec_limit_set(struct spec_limits *l, const char *key, const char *val, char *err,
		   size_t errlen);

struct task_spec {
	enum workload workload;
	unsigned count;            /* >= 1; "0" in the line means the number of online CPUs */
	enum task_kind kind;       /* as=process|thread */
	bool kind_set;             /* as= given explicitly (pools refuse a conflicting one) */
	enum start_method method;  /* method= */
	int64_t time_ms;           /* time=  (SPEC_UNSET if absent) */
	int64_t ops;               /* ops=   (SPEC_UNSET if absent) */
	int64_t size;              /* size=  bytes (mem, cow, io); SPEC_UNSET if absent */
	int touch_pct;             /* touch= percent (mem), SPEC_UNSET if absent */
	int write_pct;             /* write= percent (cow), SPEC_UNSET if absent */
	int64_t step;              /* step= bytes (mem gradual growth), SPEC_UNSET if absent */
	int64_t rate_ms;           /* rate= interval between steps, SPEC_UNSET if absent */
	int64_t depth;             /* depth= recursion depth (stack), SPEC_UNSET if absent */
	int64_t timeout_ms;        /* timeout= (SPEC_UNSET if absent) */
	int retries;               /* retries= (pools), 0 if absent */
	int priority;              /* priority= (pools): SPEC_PRIORITY_MIN..MAX, 0 if absent */
	int nice;                  /* nice= -20..19 */
	bool nice_set;
	bool gil;                  /* gil=0|1 (threads only) */
	bool gil_set;
	char name[SPEC_NAME_MAX + 1]; /* name=, "" if absent */
	char *cwd;                 /* cwd=, NULL if absent (relative: to the writer's) */
	char *stdin_chan;          /* stdin=CHANNEL, NULL if absent (exec/sh only) */
	char *stdout_chan;         /* stdout=CHANNEL, NULL if absent (exec/sh only) */
	char *on_end;              /* on_end=CMD: a shell command run once it has ended
				      (the notice room), NULL if absent */
	struct spec_file file[3];  /* stdin=, stdout=, stderr= files ([0] never appends) */
	char **env;                /* env=K=V and env=-K, repeated; NULL-terminated; NULL if none */
	size_t nenv;
	bool env_clean;            /* env=-: none of the writer's environment */
	enum after_kind after_kind;
	uint64_t after[SPEC_AFTER_MAX]; /* the ids it waits for (nafter of them) */
	unsigned nafter;
	struct spec_limits lim;    /* mem_max=, cpus=, ... (resource control) */
	char **argv;               /* exec: ARGV (NULL-terminated); sh: argv[0] = the raw CMDLINE */
	size_t argc;
	char *line;                /* the original line, trimmed, NUL-terminated */
};

/* Parse one line (no newline) of at most SPEC_LINE_MAX bytes.  `online_cpus`
 * is what COUNT 0 means.  Returns 0, or -EINVAL / -E2BIG with a one-line reason
 * in err (never longer than errlen-1, always NUL-terminated).  On error `out`
 * holds nothing that needs freeing.  On success free it with spec_free(). */
int spec_parse(const char *line, size_t len, unsigned online_cpus,
	       struct task_spec *out, char *err, size_t errlen);
void spec_free(struct task_spec *s);

const char *workload_name(enum workload w);      /* "cpu", "exec", ... */
const char *after_kind_name(enum after_kind k);
/* What work of kind k does once a dependency ended: `left` not ended yet,
 * `failed` if one of those that ended did not succeed.  The one rule of
 * spawn lines (exec/waiting.c) and pool futures (pools/after.c). */
enum after_verdict { AFTER_WAIT, AFTER_READY, AFTER_SKIP };
enum after_verdict after_decide(enum after_kind k, unsigned left, bool failed);  /* "after", "after_any", "after_fail" */
const char *method_name(enum start_method m);     /* "fork", "spawn", ... "default" */
bool workload_is_builtin(enum workload w);        /* everything but exec and sh */

/* Value syntax shared with the config loader and the ctl files.
 * Durations: "250ms", "2s", "1.5s", "2m", "1h", "100us" ("2" alone is seconds).
 * Sizes: "512", "4k", "64M", "1G", "1.5G", with optional "B"/"iB"; powers of 1024.
 * Both return 0 or -EINVAL (junk, negative, overflow). */
int parse_duration_ms(const char *s, int64_t *ms);
int parse_size(const char *s, uint64_t *bytes);
/* Signals: "15", "TERM", "SIGTERM", "term" -> 15.  Returns 0 or -EINVAL. */
int parse_signal(const char *s, int *sig);
const char *signal_name(int sig);                 /* 15 -> "TERM"; NULL if unknown */
/* A strict unsigned integer (no sign, no junk, no overflow, <= max). */
int parse_uint(const char *s, uint64_t max, uint64_t *out);
/* Unquote the word at *p where it lies (it can only shrink), NUL-terminate it
 * and move *p past it and the blank after it.  '...' is literal; "..." knows
 * \" and \\; a backslash outside quotes takes the next byte literally.  raw
 * is the word as typed, for messages.  0, or -EINVAL with the reason in err
 * (an unterminated quote, a trailing backslash). */
int spec_unquote(char **p, const char *raw, char *err, size_t errlen);

#endif
