/* slurm.h - the Slurm executor: pure parts (options, state and exit-code
 * mapping, parsers of sbatch/squeue/scontrol/sacct output) and the engine
 * hooks of the poller (engine/slurm.c).
 *
 * The pure parts do no I/O and keep no state, so tests/unit/test_slurm.c
 * checks them on fixture text captured from a real Slurm 22.05.
 */
#ifndef PCFS_SLURM_H
#define PCFS_SLURM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SLURM_NAME_MAX 63           /* partition and account names */
#define SLURM_SPOOL_MAX 200

/* Options of a Slurm job, set on the pool's ctl and overridden per task line.
 * Zero / "" means "not given": sbatch's (the cluster's) default applies. */
struct slurm_opts {
	char partition[SLURM_NAME_MAX + 1];   /* --partition */
	char account[SLURM_NAME_MAX + 1];     /* --account */
	uint64_t mem_mib;                     /* --mem=<N>M */
	unsigned cpus;                        /* --cpus-per-task */
	unsigned time_min;                    /* --time (minutes; Slurm's granularity) */
};

/* Apply one KEY=VALUE Slurm option (partition, account, mem, cpus,
 * slurm_time).  Returns 1 if applied, 0 if `key` is not a Slurm option,
 * -EINVAL with a reason in err for a bad value. */
int slurm_opt_apply(struct slurm_opts *o, const char *key, const char *val, char *err,
		    size_t errlen);
/* Values: timeout= of a line (ms) becomes --time rounded up to a minute. */
unsigned slurm_minutes(int64_t ms);
/* Overlay: every field set in `over` replaces base's. */
void slurm_opts_merge(struct slurm_opts *base, const struct slurm_opts *over);
/* " partition=debug mem=1024M ..." as the pool's ctl shows it (appends to buf). */
void slurm_opts_format(const struct slurm_opts *o, char *buf, size_t len);

/* Take the Slurm options out of a task line: the KEY=VALUE tokens right after
 * WORKLOAD [COUNT] whose key is a Slurm option are applied to `o` and removed;
 * the rest of the line is copied to a new string (*out, malloc'd).  0, or
 * -EINVAL (reason in err) / -ENOMEM. */
int slurm_line_opts(const char *line, size_t len, struct slurm_opts *o, char **out,
		    char *err, size_t errlen);

/* What a job's state means for its future. */
enum slurm_fate {
	SF_UNKNOWN,     /* not a state we know: keep watching */
	SF_PENDING,     /* PENDING, CONFIGURING, REQUEUED, ... */
	SF_RUNNING,     /* RUNNING, COMPLETING, SUSPENDED, ... */
	SF_DONE,        /* COMPLETED */
	SF_FAILED,      /* FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, DEADLINE, PREEMPTED */
	SF_CANCELLED,   /* CANCELLED (also "CANCELLED+", "CANCELLED by 0") */
};
enum slurm_fate slurm_state_fate(const char *state);
static inline bool slurm_fate_final(enum slurm_fate f)
{
	return f == SF_DONE || f == SF_FAILED || f == SF_CANCELLED;
}
/* "3:0" -> 3, "0:9" -> -9 (a signal gives -N, as a local future's exitcode).
 * Returns 0 or -EINVAL. */
int slurm_exitcode(const char *exit_signal, int *code);
/* Why a final job failed, in words, for the future's error (static text). */
const char *slurm_state_reason(const char *state);

/* One job as read back from Slurm. */
struct slurm_job {
	uint64_t id;
	char state[32];     /* e.g. "COMPLETED" */
	char reason[64];    /* squeue's %r, scontrol's Reason ("None" when none) */
	bool have_exit;
	int exitcode;       /* slurm_exitcode() of ExitCode, when have_exit */
};

/* sbatch --parsable: "123" or "123;cluster" -> 123.  0 or -EINVAL. */
int slurm_parse_sbatch(const char *out, uint64_t *job);
/* squeue -h -o '%i|%T|%r': one job per line.  Fills up to max entries (lines
 * that do not parse are skipped: array or het job ids, noise).  Returns the
 * number filled. */
size_t slurm_parse_squeue(const char *text, struct slurm_job *jobs, size_t max);
/* scontrol -o show job ID: JobId=, JobState=, Reason=, ExitCode=.  0 or -EINVAL. */
int slurm_parse_scontrol(const char *text, struct slurm_job *job);
/* sacct -c -n -P -o JobID,State,ExitCode: the last line for `id` wins (a job
 * can be logged twice, e.g. COMPLETED then OUT_OF_MEMORY).  0 or -ENOENT. */
int slurm_parse_sacct(const char *text, uint64_t id, struct slurm_job *job);
/* Does sbatch's error text say the controller could not be reached (retry
 * later) rather than that the job was refused (fail the future)? */
bool slurm_error_transient(const char *text);

/* Shell quoting for the generated job script: 'it'\''s'. */
struct strbuf;
void slurm_sh_quote(struct strbuf *sb, const char *s);

#endif
