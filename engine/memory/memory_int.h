/* memory_int.h - the memory room's own (sample.c, cow.c). */
#ifndef PCFS_MEMORY_INT_H
#define PCFS_MEMORY_INT_H

#include "memory.h"
#include "memstat.h"

/* What is kept of a task's memory and scheduling figures. */
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
	struct ms_memfds fds;          /* mem's files of the live process, kept from the
					* first read to the task's end (sample.c) */
};

/* A child reaped before anyone claimed its pid (cow.c): kept briefly so a
 * cow child announced after its death still gets its exit status. */
struct stranger {
	pid_t pid;
	int status;
	struct rusage ru;
	struct timespec when;          /* CLOCK_MONOTONIC */
};
#define STRANGERS 32

struct memory {
	int samplefd;                  /* timerfd: cfg.mem_sample_ms (engine thread) */
	struct stranger strangers[STRANGERS];   /* under `lock` */
	size_t stranger_next;
	size_t memfds_kept, memfds_max;         /* tasks holding fds, and at most (lock) */
};

/* sample.c */
/* Keep the last cow figures measured (lock held). */
void task_store_cow(struct task *t, const struct ms_cow *c, bool exact);

/* cow.c */
void cow_scan_output(struct engine *e, struct task *t, int stream);
void stranger_reaped(struct engine *e, pid_t pid, int status, const struct rusage *ru);

#endif
