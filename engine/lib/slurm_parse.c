/* slurm_parse.c - the Slurm executor's pure parts: job options, the mapping
 * of job states and exit codes to futures, and parsers of the text that
 * sbatch, squeue, scontrol and sacct print.  No I/O, no globals.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm.h"
#include "spec.h"
#include "strbuf.h"

/* ---- options ---------------------------------------------------------------- */

static bool valid_slurm_name(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= SLURM_NAME_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

unsigned slurm_minutes(int64_t ms)
{
	if (ms <= 0)
		return 1;
	int64_t m = (ms + 59999) / 60000;   /* Slurm's limits are whole minutes: round up */
	return m > 5256000 ? 5256000 : (unsigned)m;   /* at most ten years */
}

int slurm_opt_apply(struct slurm_opts *o, const char *key, const char *val, char *err,
		    size_t errlen)
{
	if (!strcmp(key, "partition") || !strcmp(key, "account")) {
		if (!valid_slurm_name(val)) {
			snprintf(err, errlen, "%s= takes a Slurm name (1-%d of A-Z a-z 0-9 . _ -)",
				 key, SLURM_NAME_MAX);
			return -EINVAL;
		}
		snprintf(key[0] == 'p' ? o->partition : o->account, SLURM_NAME_MAX + 1, "%s", val);
		return 1;
	}
	if (!strcmp(key, "mem")) {
		uint64_t b;
		if (parse_size(val, &b) < 0 || b < 1024 * 1024) {
			snprintf(err, errlen, "mem= takes a size of at least 1M (e.g. 512M, 4G)");
			return -EINVAL;
		}
		o->mem_mib = (b + 1024 * 1024 - 1) / (1024 * 1024);
		return 1;
	}
	if (!strcmp(key, "cpus")) {
		uint64_t v;
		if (parse_uint(val, 4096, &v) < 0 || v == 0) {
			snprintf(err, errlen, "cpus= takes 1..4096 (sbatch --cpus-per-task)");
			return -EINVAL;
		}
		o->cpus = (unsigned)v;
		return 1;
	}
	if (!strcmp(key, "slurm_time")) {
		int64_t ms;
		if (parse_duration_ms(val, &ms) < 0 || ms <= 0) {
			snprintf(err, errlen, "slurm_time= takes a duration (e.g. 90s, 30m, 2h); "
				 "Slurm rounds it up to whole minutes");
			return -EINVAL;
		}
		o->time_min = slurm_minutes(ms);
		return 1;
	}
	return 0;
}

void slurm_opts_merge(struct slurm_opts *base, const struct slurm_opts *over)
{
	if (over->partition[0])
		memcpy(base->partition, over->partition, sizeof(base->partition));
	if (over->account[0])
		memcpy(base->account, over->account, sizeof(base->account));
	if (over->mem_mib)
		base->mem_mib = over->mem_mib;
	if (over->cpus)
		base->cpus = over->cpus;
	if (over->time_min)
		base->time_min = over->time_min;
}

void slurm_opts_format(const struct slurm_opts *o, char *buf, size_t len)
{
	size_t n = strlen(buf);
#define ADD(...)                                                   \
	do {                                                       \
		if (n < len)                                       \
			n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__); \
	} while (0)
	if (o->partition[0])
		ADD(" partition=%s", o->partition);
	if (o->account[0])
		ADD(" account=%s", o->account);
	if (o->mem_mib)
		ADD(" mem=%lluM", (unsigned long long)o->mem_mib);
	if (o->cpus)
		ADD(" cpus=%u", o->cpus);
	if (o->time_min)
		ADD(" slurm_time=%um", o->time_min);
#undef ADD
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

int slurm_line_opts(const char *line, size_t len, struct slurm_opts *o, char **out,
		    char *err, size_t errlen)
{
	char *res = malloc(len + 1);
	if (!res)
		return -ENOMEM;
	size_t rn = 0, pos = 0, tok = 0;
	bool in_opts = true;
	while (pos < len) {
		size_t ws = pos;
		while (pos < len && (line[pos] == ' ' || line[pos] == '\t'))
			pos++;
		size_t start = pos;
		while (pos < len && line[pos] != ' ' && line[pos] != '\t')
			pos++;
		size_t tl = pos - start;
		if (!tl) {
			memcpy(res + rn, line + ws, pos - ws);
			rn += pos - ws;
			break;
		}
		const char *t = line + start;
		const char *eq = memchr(t, '=', tl);
		/* token 0 is the workload, token 1 may be COUNT; options follow
		 * until the first token that is not KEY=VALUE (the arguments) */
		if (tok >= 1 && !(tok == 1 && all_digits(t, tl)) &&
		    (!eq || t[0] == '\'' || t[0] == '"'))
			in_opts = false;
		tok++;
		if (in_opts && tok > 1 && eq && (size_t)(eq - t) < 16) {
			char key[16], val[256];
			size_t kl = (size_t)(eq - t), vl = tl - kl - 1;
			memcpy(key, t, kl);
			key[kl] = '\0';
			if (vl >= sizeof(val))
				vl = sizeof(val) - 1;
			memcpy(val, eq + 1, vl);
			val[vl] = '\0';
			int rc = slurm_opt_apply(o, key, val, err, errlen);
			if (rc < 0) {
				free(res);
				return rc;
			}
			if (rc == 1)
				continue;   /* taken out of the line */
		}
		/* an argument: the rest of the line, verbatim (sh keeps its spacing) */
		if (!in_opts) {
			memcpy(res + rn, line + ws, len - ws);
			rn += len - ws;
			break;
		}
		memcpy(res + rn, line + ws, pos - ws);
		rn += pos - ws;
	}
	res[rn] = '\0';
	*out = res;
	return 0;
}

/* ---- states and exit codes --------------------------------------------------- */

static const struct {
	const char *name;
	enum slurm_fate fate;
	const char *why;
} states[] = {
	{ "PENDING", SF_PENDING, NULL },
	{ "CONFIGURING", SF_PENDING, NULL },
	{ "REQUEUED", SF_PENDING, NULL },
	{ "REQUEUE_HOLD", SF_PENDING, NULL },
	{ "REQUEUE_FED", SF_PENDING, NULL },
	{ "RESV_DEL_HOLD", SF_PENDING, NULL },
	{ "RUNNING", SF_RUNNING, NULL },
	{ "COMPLETING", SF_RUNNING, NULL },
	{ "SUSPENDED", SF_RUNNING, NULL },
	{ "STOPPED", SF_RUNNING, NULL },
	{ "SIGNALING", SF_RUNNING, NULL },
	{ "STAGE_OUT", SF_RUNNING, NULL },
	{ "RESIZING", SF_RUNNING, NULL },
	{ "COMPLETED", SF_DONE, NULL },
	{ "FAILED", SF_FAILED, "the job failed" },
	{ "TIMEOUT", SF_FAILED, "the job reached its time limit" },
	{ "OUT_OF_MEMORY", SF_FAILED, "the job ran out of memory" },
	{ "NODE_FAIL", SF_FAILED, "a node of the job failed" },
	{ "BOOT_FAIL", SF_FAILED, "a node of the job failed to boot" },
	{ "DEADLINE", SF_FAILED, "the job reached its deadline" },
	{ "PREEMPTED", SF_FAILED, "the job was preempted" },
	{ "SPECIAL_EXIT", SF_FAILED, "the job ended in a special state" },
	{ "REVOKED", SF_FAILED, "the job was revoked (federation)" },
	{ "CANCELLED", SF_CANCELLED, "cancelled in Slurm" },
};

/* "CANCELLED+" and "CANCELLED by 0" (sacct) name CANCELLED. */
static int state_index(const char *s)
{
	size_t n = strcspn(s, "+ ");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strlen(states[i].name) == n && !strncmp(states[i].name, s, n))
			return (int)i;
	return -1;
}

enum slurm_fate slurm_state_fate(const char *state)
{
	int i = state_index(state);
	return i < 0 ? SF_UNKNOWN : states[i].fate;
}

const char *slurm_state_reason(const char *state)
{
	int i = state_index(state);
	return i < 0 || !states[i].why ? "" : states[i].why;
}

int slurm_exitcode(const char *s, int *code)
{
	char *end;
	errno = 0;
	long ex = strtol(s, &end, 10);
	if (end == s || *end != ':' || errno || ex < 0 || ex > 255)
		return -EINVAL;
	const char *p = end + 1;
	long sig = strtol(p, &end, 10);
	if (end == p || errno || sig < 0 || sig > 255 || (*end && !isspace((unsigned char)*end)))
		return -EINVAL;
	*code = sig ? -(int)sig : (int)ex;
	return 0;
}

/* ---- output parsers ------------------------------------------------------------ */

int slurm_parse_sbatch(const char *out, uint64_t *job)
{
	while (*out == ' ' || *out == '\n')
		out++;
	if (!isdigit((unsigned char)*out))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(out, &end, 10);
	if (errno || !v || (*end && *end != ';' && *end != '\n' && *end != ' '))
		return -EINVAL;
	*job = v;
	return 0;
}

/* Copy field [p, p+n) into dst[cap]. */
static void copy_field(char *dst, size_t cap, const char *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

static int parse_jobid(const char *p, size_t n, uint64_t *id)
{
	if (!all_digits(p, n) || n > 19)
		return -EINVAL;
	*id = strtoull(p, NULL, 10);
	return *id ? 0 : -EINVAL;
}

size_t slurm_parse_squeue(const char *text, struct slurm_job *jobs, size_t max)
{
	size_t k = 0;
	for (const char *line = text; *line && k < max;) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		const char *b1 = memchr(line, '|', ll);
		const char *b2 = b1 ? memchr(b1 + 1, '|', ll - (size_t)(b1 + 1 - line)) : NULL;
		struct slurm_job j = { 0 };
		if (b2 && parse_jobid(line, (size_t)(b1 - line), &j.id) == 0) {
			copy_field(j.state, sizeof(j.state), b1 + 1, (size_t)(b2 - b1 - 1));
			size_t rl = ll - (size_t)(b2 + 1 - line);
			while (rl && (b2[rl] == '\r' || b2[rl] == ' '))
				rl--;
			copy_field(j.reason, sizeof(j.reason), b2 + 1, rl);
			if (j.state[0])
				jobs[k++] = j;
		}
		line += ll + (nl ? 1 : 0);
	}
	return k;
}

/* The value of " KEY=" in scontrol's one-line output (up to the next blank). */
static bool scontrol_value(const char *text, const char *key, char *dst, size_t cap)
{
	size_t kl = strlen(key);
	for (const char *p = text; (p = strstr(p, key)); p += kl) {
		if (p != text && p[-1] != ' ' && p[-1] != '\n')
			continue;
		if (p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		copy_field(dst, cap, v, strcspn(v, " \n"));
		return true;
	}
	return false;
}

int slurm_parse_scontrol(const char *text, struct slurm_job *job)
{
	char id[32], code[32];
	memset(job, 0, sizeof(*job));
	if (!scontrol_value(text, "JobId", id, sizeof(id)) ||
	    parse_jobid(id, strlen(id), &job->id) < 0 ||
	    !scontrol_value(text, "JobState", job->state, sizeof(job->state)))
		return -EINVAL;
	scontrol_value(text, "Reason", job->reason, sizeof(job->reason));
	if (scontrol_value(text, "ExitCode", code, sizeof(code)) &&
	    slurm_exitcode(code, &job->exitcode) == 0)
		job->have_exit = true;
	return 0;
}

int slurm_parse_sacct(const char *text, uint64_t id, struct slurm_job *job)
{
	int rc = -ENOENT;
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		const char *b1 = memchr(line, '|', ll);
		const char *b2 = b1 ? memchr(b1 + 1, '|', ll - (size_t)(b1 + 1 - line)) : NULL;
		uint64_t jid;
		if (b2 && parse_jobid(line, (size_t)(b1 - line), &jid) == 0 && jid == id) {
			struct slurm_job j = { .id = jid };
			char code[32];
			copy_field(j.state, sizeof(j.state), b1 + 1, (size_t)(b2 - b1 - 1));
			copy_field(code, sizeof(code), b2 + 1, ll - (size_t)(b2 + 1 - line));
			j.have_exit = slurm_exitcode(code, &j.exitcode) == 0;
			if (j.state[0]) {
				*job = j;
				rc = 0;
			}
		}
		line += ll + (nl ? 1 : 0);
	}
	return rc;
}

bool slurm_error_transient(const char *text)
{
	static const char *const marks[] = {
		"Unable to contact slurm controller",
		"Socket timed out",
		"Slurm temporarily unable",
		"Connection refused",
		"Zero Bytes were transmitted",
		"Resource temporarily unavailable",
		"Slurm backup controller in standby",
	};
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(text, marks[i]))
			return true;
	return false;
}

void slurm_sh_quote(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_adds(sb, "'\\''");
		else
			sb_addc(sb, *s);
	}
	sb_addc(sb, '\'');
}
