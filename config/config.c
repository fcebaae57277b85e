/* config.c - the pcfs configuration: one table of keys, and the loader,
 * renderer and defaults that walk it.
 *
 * Parsing is inih's; everything it cannot tell us is learnt by the line reader
 * we hand it (read_line), which sees every line just before inih parses it:
 * the line number (Debian builds inih without INI_HANDLER_LINENO), section
 * headers (the handler is only called for name=value pairs, so an empty
 * "[limit]" would otherwise go unnoticed), indentation (inih folds an indented
 * line into the previous key's value), and lines too long for inih's fixed
 * buffer (which r55 would silently parse as two lines).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spec.h"
#include "strbuf.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Longest [state] dir.  inih cannot read a line longer than INI_MAX_LINE, and
 * the rendered "dir = PATH" line must load back. */
#define STATE_DIR_MAX 160
#define CGROUP_WHERE_MAX 160
_Static_assert(STATE_DIR_MAX + sizeof("dir = \r\n") < INI_MAX_LINE, "state dir line too long for inih");
_Static_assert(STATE_DIR_MAX < CONFIG_PATH_MAX, "state dir does not fit its field");

/* Lists are stored as uint32_t, enums as unsigned. */
_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t), "ids are 32 bits");
_Static_assert(sizeof(enum unmount_policy) == sizeof(unsigned) && sizeof(enum log_level) == sizeof(unsigned) &&
	       sizeof(enum state_keep) == sizeof(unsigned) && sizeof(enum state_sync) == sizeof(unsigned),
	       "enums are unsigned");

/* Rendered lists put this many ids on a line, so that it fits inih's buffer. */
#define IDS_PER_LINE 8

/* The types up to T_ENUM are scalars: they fit get_scalar()'s uint64_t. */
enum type {
	T_U32,      /* uint32_t, a whole number */
	T_SIZE,     /* uint64_t, bytes: parse_size() */
	T_DURATION, /* int64_t, milliseconds: parse_duration_ms() */
	T_BOOL,     /* bool */
	T_ENUM,     /* an enum, by name */
	T_PATH,     /* char[CONFIG_PATH_MAX], absolute or empty */
	T_USERS,    /* uid_t[], with a size_t count */
	T_GROUPS    /* gid_t[], with a size_t count */
};

struct key {
	const char *section;
	const char *name;
	enum type type;
	size_t off;                /* the field in struct pcfs_config */
	size_t n_off;              /* lists: their element count */
	uint64_t min, max;         /* numbers: the range; paths: longest; lists: most entries */
	uint64_t def;              /* numbers, bools, enums; paths and lists default to empty */
	const char *const *names;  /* enums: value names, NULL-terminated */
	const char *help;
};

static const char *const unmount_names[] = {
	[UNMOUNT_TERM] = "term", [UNMOUNT_KILL] = "kill", [UNMOUNT_LEAVE] = "leave", NULL
};

static const char *const cgroup_where_words[] = { "auto", "off", NULL };
/* [state] dir: auto (stored empty) is the default dir per mountpoint */
static const char *const state_dir_words[] = { "auto", "none", NULL };
static const char *const keep_names[] = {
	[KEEP_AUTO] = "auto", [KEEP_YES] = "yes", [KEEP_NO] = "no", NULL
};
static const char *const sync_names[] = {
	[SYNC_NONE] = "none", [SYNC_BATCH] = "batch", [SYNC_ALWAYS] = "always", NULL
};

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn", [LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug", NULL
};

#define KiB 1024ull
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define SECOND 1000ull        /* durations are in milliseconds */
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define FIELD(f) offsetof(struct pcfs_config, f)

#define NUM(sec, key, t, field, d, lo, hi, h) \
	{ .section = sec, .name = key, .type = t, .off = FIELD(field), \
	  .min = lo, .max = hi, .def = d, .help = h }
#define U32(sec, key, field, d, lo, hi, h)  NUM(sec, key, T_U32, field, d, lo, hi, h)
#define SIZE(sec, key, field, d, lo, hi, h) NUM(sec, key, T_SIZE, field, d, lo, hi, h)
#define DUR(sec, key, field, d, lo, hi, h)  NUM(sec, key, T_DURATION, field, d, lo, hi, h)
#define BOOL(sec, key, field, d, h) \
	{ .section = sec, .name = key, .type = T_BOOL, .off = FIELD(field), .def = d, .help = h }
#define ENUM(sec, key, field, nm, d, h) \
	{ .section = sec, .name = key, .type = T_ENUM, .off = FIELD(field), .def = d, \
	  .names = nm, .help = h }
#define PATH(sec, key, field, longest, h) \
	{ .section = sec, .name = key, .type = T_PATH, .off = FIELD(field), .max = longest, .help = h }
#define PATHW(sec, key, field, longest, nm, h) \
	{ .section = sec, .name = key, .type = T_PATH, .off = FIELD(field), .max = longest, \
	  .names = nm, .help = h }
#define IDS(sec, key, t, field, n, h) \
	{ .section = sec, .name = key, .type = t, .off = FIELD(field), .n_off = FIELD(n), \
	  .max = CONFIG_LIST_MAX, .help = h }

/* Every key pcfs knows, grouped by section, in the order they are rendered
 * and documented (examples/pcfs.ini follows this order). */
static const struct key keys[] = {
	U32("limits", "max_tasks", max_tasks, 20000, 1, 1000000,
	    "tasks known at once, live plus kept history (the oldest ended are forgotten to make room; EAGAIN once live tasks fill it)"),
	U32("limits", "max_processes", max_processes, 1024, 1, 100000,
	    "live process tasks (EAGAIN beyond)"),
	U32("limits", "max_threads", max_threads, 4096, 1, 100000,
	    "live thread tasks (EAGAIN beyond)"),
	U32("limits", "max_pools", max_pools, 256, 1, 10000, "pools (ENOSPC beyond)"),
	U32("limits", "max_channels", max_channels, 1024, 1, 100000, "channels (ENOSPC beyond)"),
	U32("limits", "max_queued", max_queued, 100000, 1, 10000000,
	    "queued futures per pool (EAGAIN beyond)"),
	SIZE("limits", "max_write", max_write, MiB, 64, 64 * MiB,
	     "bytes in one write to a control file (E2BIG beyond)"),

	DUR("tasks", "default_time", default_time_ms, 10 * SECOND, 1, 720 * HOUR,
	    "how long built-in workloads run without time= or ops="),
	DUR("tasks", "kill_grace", kill_grace_ms, 2 * SECOND, 0, HOUR,
	    "timeout=: SIGTERM, then SIGKILL this much later"),
	U32("tasks", "history", history, 1000, 0, 1000000,
	    "finished tasks kept; the oldest are forgotten first"),
	SIZE("tasks", "output_max", output_max, MiB, 0, GiB,
	     "bytes captured per stream per task; the rest is dropped and counted"),
	DUR("tasks", "on_end_timeout", on_end_timeout_ms, MINUTE, 1, 24 * HOUR,
	    "an on_end= hook still running this long is killed (SIGKILL to its process group)"),
	U32("tasks", "on_end_max", on_end_max, 4, 1, 256,
	    "on_end= hooks running at once; the others wait their turn"),

	ENUM("unmount", "policy", unmount_policy, unmount_names, UNMOUNT_TERM,
	     "live tasks at unmount: SIGTERM then SIGKILL after grace, SIGKILL, or left running"),
	DUR("unmount", "grace", unmount_grace_ms, 2 * SECOND, 0, HOUR,
	    "policy=term: SIGKILL this long after SIGTERM"),

	U32("log", "lines", log_lines, 1000, 10, 1000000, "lines kept in the /log ring"),
	ENUM("log", "level", log_level, level_names, LOG_LVL_INFO,
	     "least severe messages written to stderr/syslog"),
	U32("log", "events", events, 4096, 16, 1000000,
	    "task and future starts and ends kept in the /events ring"),
	U32("log", "joblog", joblog, 10000, 16, 1000000,
	    "task and future ends kept for /joblog and pools/NAME/joblog"),

	U32("fuse", "threads", fuse_threads, 16, 2, 256, "FUSE worker threads"),
	BOOL("fuse", "auto_unmount", auto_unmount, true, "the mount goes away if the daemon dies"),

	DUR("memory", "sample_period", mem_sample_ms, 200, 10, HOUR, "memlog sampling period"),
	U32("memory", "memlog_max", memlog_max, 3000, 10, 1000000, "memlog samples kept per task"),

	PATHW("cgroup", "where", cgroup_where, CGROUP_WHERE_MAX, cgroup_where_words,
	      "resource control's subtree: auto (under the daemon's own cgroup), off, or a cgroup path (/pcfs)"),
	SIZE("cgroup", "mem_max", cgroup_mem_max, 0, 0, 1024 * GiB,
	     "mem_max= of every spawned process task whose line gives none; 0 = none"),
	U32("cgroup", "pids_max", cgroup_pids_max, 0, 0, 4194304,
	    "pids_max= of every spawned process task whose line gives none; 0 = none"),
	U32("cgroup", "cpu_max", cgroup_cpu_max, 0, 0, 102400,
	    "cpu_max= (percent of one CPU) of every spawned process task whose line gives none; 0 = none"),

	U32("pools", "default_workers", pool_default_workers, 0, 0, 4096,
	    "workers of a pool created without workers=; 0 = online CPUs"),
	U32("pools", "depth", pool_depth, 32, 1, 1024,
	    "futures a worker holds at most, running and handed ahead; 1 = one at a time"),
	DUR("pools", "ahead", pool_ahead_ms, 2, 0, HOUR,
	    "work a worker is handed ahead, at the pool's recent pace; 0 = one at a time"),

	U32("channels", "capacity", chan_capacity, 1024, 1, 1000000,
	    "default channel capacity, messages"),
	SIZE("channels", "maxmsg", chan_maxmsg, 64 * KiB, 1, 16 * MiB,
	     "default largest message, bytes"),
	SIZE("channels", "max_bytes", chan_max_bytes, 64 * MiB, KiB, 4 * GiB,
	     "bytes buffered per channel (ENOSPC beyond)"),

	PATHW("state", "dir", state_dir, STATE_DIR_MAX, state_dir_words,
	      "where results persist across the daemon's death: auto = a dir per mountpoint (pcfs(1)), none, or a dir"),
	ENUM("state", "keep", state_keep, keep_names, KEEP_AUTO,
	     "a clean unmount removes the dir's results (no), keeps them (yes), or auto: removes the default dir's only"),
	ENUM("state", "sync", state_sync, sync_names, SYNC_BATCH,
	     "fsync of the journal: never, at most sync_ms after a write (a flusher thread), or before anyone is told"),
	DUR("state", "sync_ms", state_sync_ms, 50, 1, MINUTE,
	    "sync = batch: the longest a journal write waits for its fsync"),

	BOOL("access", "allow_other", allow_other, false,
	     "let the users and groups below in (and root); each controls only its own"),
	IDS("access", "allow_users", T_USERS, allow_users, n_allow_users,
	    "users let in with allow_other"),
	IDS("access", "allow_groups", T_GROUPS, allow_groups, n_allow_groups,
	    "groups whose members are let in with allow_other"),

	DUR("slurm", "poll_interval", slurm_poll_ms, SECOND, 100, 10 * MINUTE,
	    "squeue polling interval (backs off when idle)"),
};

/* Field access.  Every row's offset names a field of the row's type. */

static void *field(struct pcfs_config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static const void *cfield(const struct pcfs_config *c, const struct key *k)
{
	return (const char *)c + k->off;
}

static size_t *count(struct pcfs_config *c, const struct key *k)
{
	return (size_t *)((char *)c + k->n_off);
}

static size_t ccount(const struct pcfs_config *c, const struct key *k)
{
	return *(const size_t *)((const char *)c + k->n_off);
}

/* Numbers, bools and enums, as one uint64_t. */
static uint64_t get_scalar(const struct pcfs_config *c, const struct key *k)
{
	const void *p = cfield(c, k);

	switch (k->type) {
	case T_U32:      return *(const uint32_t *)p;
	case T_SIZE:     return *(const uint64_t *)p;
	case T_DURATION: return (uint64_t)*(const int64_t *)p;
	case T_BOOL:     return *(const bool *)p;
	case T_ENUM:     return *(const unsigned *)p;
	default:         return 0;
	}
}

static void set_scalar(struct pcfs_config *c, const struct key *k, uint64_t v)
{
	void *p = field(c, k);

	switch (k->type) {
	case T_U32:      *(uint32_t *)p = (uint32_t)v; break;
	case T_SIZE:     *(uint64_t *)p = v; break;
	case T_DURATION: *(int64_t *)p = (int64_t)v; break;
	case T_BOOL:     *(bool *)p = v != 0; break;
	case T_ENUM:     *(unsigned *)p = (unsigned)v; break;
	default:         break;
	}
}

static bool is_scalar(const struct key *k)
{
	return k->type <= T_ENUM;
}

static bool is_list(const struct key *k)
{
	return k->type == T_USERS || k->type == T_GROUPS;
}

/* Canonical number text: the largest unit that divides the value exactly, so
 * that 1500 ms is "1500ms" and 1000 bytes is "1000", never rounded. */

struct unit {
	const char *suffix;
	uint64_t scale;
};

static const struct unit size_units[] = {
	{ "G", GiB }, { "M", MiB }, { "K", KiB }, { "", 1 }
};

static const struct unit duration_units[] = {
	{ "h", HOUR }, { "m", MINUTE }, { "s", SECOND }, { "ms", 1 }
};

static void format_units(char *buf, size_t len, uint64_t v, const struct unit *u, size_t n)
{
	size_t i = 0;

	if (v == 0) {
		snprintf(buf, len, "0");
		return;
	}
	while (i < n - 1 && v % u[i].scale)
		i++;
	snprintf(buf, len, "%" PRIu64 "%s", v / u[i].scale, u[i].suffix);
}

static void format_number(char *buf, size_t len, const struct key *k, uint64_t v)
{
	switch (k->type) {
	case T_SIZE:
		format_units(buf, len, v, size_units, ARRAY_SIZE(size_units));
		break;
	case T_DURATION:
		format_units(buf, len, v, duration_units, ARRAY_SIZE(duration_units));
		break;
	default:
		snprintf(buf, len, "%" PRIu64, v);
		break;
	}
}

void config_defaults(struct pcfs_config *c)
{
	/* Zeroed padding too, so that equal configurations compare equal with
	 * memcmp.  Paths and lists default to empty. */
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (is_scalar(&keys[i]))
			set_scalar(c, &keys[i], keys[i].def);
}

const char *unmount_policy_name(enum unmount_policy p)
{
	return (unsigned)p < ARRAY_SIZE(unmount_names) - 1 ? unmount_names[p] : "?";
}

const char *log_level_name(enum log_level l)
{
	return (unsigned)l < ARRAY_SIZE(level_names) - 1 ? level_names[l] : "?";
}

/* ---- Loading ---- */

struct loader {
	struct pcfs_config cfg;          /* filled here; copied out only on success */
	FILE *f;
	const char *path;
	unsigned line;                   /* the line inih is parsing */
	bool indented;                   /* it starts with white space */
	const struct key *last;          /* the key an indented line would continue */
	unsigned set_on[ARRAY_SIZE(keys)]; /* line each key was first given on, or 0 */
	unsigned err_line;               /* the first error's line, or 0 */
	int read_errno;
	char *err;
	size_t errlen;
};

/* Keep the first error only, as "FILE:LINE: reason".  Returns 0, inih's
 * handler failure value, so callers can "return fail(...)". */
__attribute__((format(printf, 2, 3)))
static int fail(struct loader *ld, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->err_line)
		return 0;
	ld->err_line = ld->line ? ld->line : 1;
	n = ld->line ? snprintf(ld->err, ld->errlen, "%s:%u: ", ld->path, ld->line)
		     : snprintf(ld->err, ld->errlen, "%s: ", ld->path);
	if (n >= 0 && (size_t)n < ld->errlen) {
		va_start(ap, fmt);
		vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return 0;
}

static bool section_known(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strlen(keys[i].section) == len && !memcmp(keys[i].section, name, len))
			return true;
	return false;
}

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* inih's end of a section name: the ']', or an inline ';' comment (one that
 * follows white space), or the end of the line. */
static const char *section_end(const char *s)
{
	bool was_space = false;

	for (; *s && *s != ']' && !(was_space && *s == ';'); s++)
		was_space = isspace((unsigned char)*s);
	return s;
}

/* A "[section]" line, as inih will read it: check the name, and note that an
 * indented line after it starts a key rather than continuing one. */
static void check_section(struct loader *ld, const char *line)
{
	const char *s = line, *end;

	if (ld->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '[')
		return;
	end = section_end(s + 1);
	if (*end != ']')
		return; /* inih reports the syntax error */
	ld->last = NULL;
	if (!section_known(s + 1, (size_t)(end - s - 1)))
		fail(ld, "unknown section [%.*s]", (int)(end - s - 1), s + 1);
}

static bool at_eof(FILE *f)
{
	int ch = getc(f);

	if (ch == EOF)
		return true;
	ungetc(ch, f);
	return false;
}

/* inih's line reader: fgets, watching each line on its way (see the top). */
static char *read_line(char *buf, int size, void *stream)
{
	struct loader *ld = stream;
	size_t len;

	/* Stop at the first error we find.  inih's own (syntax) errors do not
	 * stop it, but it returns the first one's line. */
	if (ld->err_line)
		return NULL;
	errno = 0;
	if (!fgets(buf, size, ld->f)) {
		ld->read_errno = errno;
		return NULL;
	}
	ld->line++;
	len = strlen(buf);
	if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !at_eof(ld->f)) {
		fail(ld, "line too long (at most %d bytes)", size - 2);
		return NULL;
	}
	/* inih's rule: a non-blank, non-comment indented line continues the
	 * previous key, if there is one since the last section header. */
	ld->indented = isspace((unsigned char)buf[0]);
	if (!(ld->indented && ld->last))
		check_section(ld, buf);
	return buf;
}

/* Numbers: parse, check the range, store. */

static int read_u32(const char *s, uint64_t *v)
{
	if (!parse_uint(s, UINT64_MAX, v))
		return 0;
	/* Too many digits is out of range, not "not a number". */
	if (*s && s[strspn(s, "0123456789")] == '\0') {
		*v = UINT64_MAX;
		return 0;
	}
	return -EINVAL;
}

static int read_duration(const char *s, uint64_t *v)
{
	int64_t ms;

	if (parse_duration_ms(s, &ms) || ms < 0)
		return -EINVAL;
	*v = (uint64_t)ms;
	return 0;
}

static int set_number(struct loader *ld, const struct key *k, const char *v)
{
	static const char *const what[] = {
		[T_U32] = "a whole number",
		[T_SIZE] = "a size (e.g. 4096, 64K, 1M, 1G)",
		[T_DURATION] = "a duration (e.g. 250ms, 2s, 5m, 1h)",
	};
	char lo[32], hi[32];
	uint64_t n;
	int r;

	switch (k->type) {
	case T_SIZE:     r = parse_size(v, &n); break;
	case T_DURATION: r = read_duration(v, &n); break;
	default:         r = read_u32(v, &n); break;
	}
	if (r)
		return fail(ld, "[%s] %s: '%s' is not %s", k->section, k->name, v, what[k->type]);
	if (n < k->min || n > k->max) {
		format_number(lo, sizeof(lo), k, k->min);
		format_number(hi, sizeof(hi), k, k->max);
		return fail(ld, "[%s] %s: %s is out of range (%s..%s)", k->section, k->name, v, lo, hi);
	}
	set_scalar(&ld->cfg, k, n);
	return 1;
}

static int set_bool(struct loader *ld, const struct key *k, const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcmp(v, yes[i]) || !strcmp(v, no[i])) {
			set_scalar(&ld->cfg, k, !strcmp(v, yes[i]));
			return 1;
		}
	}
	return fail(ld, "[%s] %s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
		    k->section, k->name, v);
}

/* "a, b or c" for error messages and "a|b|c" for documentation. */
static void join_names(struct strbuf *sb, const char *const *names, const char *sep, const char *last)
{
	for (size_t i = 0; names[i]; i++)
		sb_printf(sb, "%s%s", i == 0 ? "" : names[i + 1] ? sep : last, names[i]);
}

static int set_enum(struct loader *ld, const struct key *k, const char *v)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; k->names[i]; i++) {
		if (!strcmp(v, k->names[i])) {
			set_scalar(&ld->cfg, k, i);
			return 1;
		}
	}
	join_names(&sb, k->names, ", ", " or ");
	fail(ld, "[%s] %s: '%s' is not %s", k->section, k->name, v, sb_cstr(&sb));
	sb_free(&sb);
	return 0;
}

static int set_path(struct loader *ld, const struct key *k, const char *v)
{
	size_t len = strlen(v);
	char *p = field(&ld->cfg, k);

	/* a path that also takes words ([cgroup] where: auto, stored as empty,
	 * and off) lists them in names */
	bool word = false;
	for (const char *const *w = k->names; w && *w; w++)
		word = word || strcmp(v, *w) == 0;
	if (word && strcmp(v, "auto") == 0)
		len = 0;
	if (len && v[0] != '/' && !word)
		return fail(ld, "[%s] %s: '%s' is not an absolute path", k->section, k->name, v);
	if (len > k->max)
		return fail(ld, "[%s] %s: longer than %" PRIu64 " bytes", k->section, k->name, k->max);
	/* The whole field, so that equal paths compare equal with memcmp. */
	memset(p, 0, CONFIG_PATH_MAX);
	memcpy(p, v, len);
	return 1;
}

/* User and group lists: names resolved now, or numeric ids taken as they are
 * (an id need not have a passwd/group entry, e.g. with NSS down). */

struct id_kind {
	const char *noun;           /* "user": "unknown user 'x'" */
	/* 0 with *id set, ENOENT if there is no such name, or an errno */
	int (*lookup)(const char *name, char *buf, size_t len, uint32_t *id);
};

static int user_id(const char *name, char *buf, size_t len, uint32_t *id)
{
	struct passwd pw, *res;
	int e = getpwnam_r(name, &pw, buf, len, &res);

	if (!e && res)
		*id = res->pw_uid;
	return e ? e : res ? 0 : ENOENT;
}

static int group_id(const char *name, char *buf, size_t len, uint32_t *id)
{
	struct group gr, *res;
	int e = getgrnam_r(name, &gr, buf, len, &res);

	if (!e && res)
		*id = res->gr_gid;
	return e ? e : res ? 0 : ENOENT;
}

static const struct id_kind users = { "user", user_id };
static const struct id_kind groups = { "group", group_id };

/* A group with thousands of members needs a big buffer: grow on ERANGE. */
static int lookup_id(const struct id_kind *kind, const char *name, uint32_t *id)
{
	size_t len = 4096;
	char *buf = NULL, *nbuf;
	int e;

	for (;;) {
		nbuf = realloc(buf, len);
		if (!nbuf) {
			e = ENOMEM;
			break;
		}
		buf = nbuf;
		e = kind->lookup(name, buf, len, id);
		if (e != ERANGE || len >= (16u << 20))
			break;
		len *= 2;
	}
	free(buf);
	return e;
}

static int resolve_id(struct loader *ld, const struct key *k, const char *tok, uint32_t *id)
{
	const struct id_kind *kind = k->type == T_USERS ? &users : &groups;
	uint64_t n;
	int e;

	if (tok[strspn(tok, "0123456789")] == '\0') {
		/* (uid_t)-1 means "no change" to chown(2): not an id. */
		if (parse_uint(tok, UINT32_MAX - 1, &n))
			return fail(ld, "[%s] %s: %s is not a valid %s id", k->section, k->name, tok, kind->noun);
		*id = (uint32_t)n;
		return 1;
	}
	e = lookup_id(kind, tok, id);
	if (e == ENOENT)
		return fail(ld, "[%s] %s: unknown %s '%s'", k->section, k->name, kind->noun, tok);
	if (e)
		return fail(ld, "[%s] %s: cannot look up %s '%s': %s", k->section, k->name, kind->noun, tok,
			    strerror(e));
	return 1;
}

static int add_id(struct loader *ld, const struct key *k, uint32_t id)
{
	uint32_t *ids = field(&ld->cfg, k);
	size_t *n = count(&ld->cfg, k);

	for (size_t i = 0; i < *n; i++)
		if (ids[i] == id)
			return 1;
	if (*n == k->max)
		return fail(ld, "[%s] %s: more than %" PRIu64 " entries", k->section, k->name, k->max);
	ids[(*n)++] = id;
	return 1;
}

/* Names or ids separated by commas and/or blanks.  The first time the key is
 * given in a file it replaces the list; again, or on indented continuation
 * lines, it adds to it. */
static int add_ids(struct loader *ld, const struct key *k, const char *v, bool first)
{
	char *buf, *tok, *save;
	uint32_t id;
	int ok = 1;

	if (first) {
		memset(field(&ld->cfg, k), 0, k->max * sizeof(uint32_t));
		*count(&ld->cfg, k) = 0;
	}
	buf = strdup(v);
	if (!buf)
		return fail(ld, "[%s] %s: %s", k->section, k->name, strerror(ENOMEM));
	for (tok = strtok_r(buf, ", \t", &save); tok && ok; tok = strtok_r(NULL, ", \t", &save))
		ok = resolve_id(ld, k, tok, &id) && add_id(ld, k, id);
	free(buf);
	return ok;
}

static int set_value(struct loader *ld, const struct key *k, const char *v)
{
	switch (k->type) {
	case T_BOOL: return set_bool(ld, k, v);
	case T_ENUM: return set_enum(ld, k, v);
	case T_PATH: return set_path(ld, k, v);
	case T_USERS:
	case T_GROUPS: return add_ids(ld, k, v, true);
	default:     return set_number(ld, k, v);
	}
}

/* inih's handler: one name=value pair, or one continuation line. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	const struct key *k;
	unsigned *set_on;

	if (ld->indented && ld->last) {
		k = ld->last;
		if (!is_list(k))
			return fail(ld, "[%s] %s: indented line continues the value; only lists may span lines",
				    k->section, k->name);
		return add_ids(ld, k, value, false);
	}
	if (!*section)
		return fail(ld, "key '%s' before any [section]", name);
	k = find_key(section, name);
	if (!k)
		return fail(ld, "unknown key '%s' in [%s]", name, section);
	ld->last = k;
	set_on = &ld->set_on[k - keys];
	if (*set_on) {
		if (!is_list(k))
			return fail(ld, "[%s] %s: already set on line %u", k->section, k->name, *set_on);
		return add_ids(ld, k, value, false);
	}
	*set_on = ld->line;
	return set_value(ld, k, value);
}

int config_load(struct pcfs_config *c, const char *path, char *err, size_t errlen)
{
	struct loader *ld;
	int r, ret = -1;

	/* ~4.5K of config plus bookkeeping: the heap, not a daemon thread's stack. */
	ld = calloc(1, sizeof(*ld));
	if (!ld) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -1;
	}
	memcpy(&ld->cfg, c, sizeof(*c));
	ld->path = path;
	ld->err = err;
	ld->errlen = errlen;
	ld->f = fopen(path, "re");
	if (!ld->f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	r = ini_parse_stream(read_line, ld, on_pair, ld);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM)); /* -2, inih's malloc */
	else if (ferror(ld->f))
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ld->read_errno));
	else if (r > 0 && (!ld->err_line || (unsigned)r < ld->err_line))
		snprintf(err, errlen, "%s:%d: syntax error", path, r);
	else if (!ld->err_line) {
		memcpy(c, &ld->cfg, sizeof(*c));
		ret = 0;
	}
	fclose(ld->f);
out:
	free(ld);
	return ret;
}

int config_set(struct pcfs_config *c, const char *where, const char *section,
	       const char *key, const char *value, char *err, size_t errlen)
{
	struct loader *ld = calloc(1, sizeof(*ld));   /* as config_load: the heap */
	if (!ld) {
		snprintf(err, errlen, "%s: %s", where, strerror(ENOMEM));
		return -1;
	}
	memcpy(&ld->cfg, c, sizeof(*c));
	ld->path = where;         /* line 0: errors say "WHERE: reason" */
	ld->err = err;
	ld->errlen = errlen;
	const struct key *k = find_key(section, key);
	int ok = k ? set_value(ld, k, value) : fail(ld, "unknown key '%s' in [%s]", key, section);
	int rc = ok && !ld->err_line ? 0 : -1;
	if (rc == 0)
		memcpy(c, &ld->cfg, sizeof(*c));
	free(ld);
	return rc;
}

/* ---- Finding the file ---- */

/* An explicit path (or $PCFS_CONFIG) is used whether or not it exists, so that
 * a missing one is an error from config_load rather than a silent fallback to
 * the defaults.  One too long for buf is returned as it is, for the same
 * reason. */
static const char *use_path(const char *path, char *buf, size_t buflen)
{
	if ((size_t)snprintf(buf, buflen, "%s", path) >= buflen)
		return path;
	return buf;
}

/* An optional location, used if present.  A file whose existence cannot be
 * told (EACCES on the way, say) counts as present: config_load says why it
 * cannot be read, rather than the settings in it being silently ignored. */
__attribute__((format(printf, 3, 4)))
static const char *try_path(char *buf, size_t buflen, const char *fmt, ...)
{
	struct stat st;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, buflen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= buflen)
		return NULL;
	if (stat(buf, &st) && (errno == ENOENT || errno == ENOTDIR))
		return NULL;
	return buf;
}

const char *config_find(const char *explicit_path, char *buf, size_t buflen)
{
	const char *env = getenv("PCFS_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	const char *p = NULL;

	if (explicit_path)
		return use_path(explicit_path, buf, buflen);
	if (env && *env)
		return use_path(env, buf, buflen);
	/* The XDG spec: a relative $XDG_CONFIG_HOME is invalid, so ignored. */
	if (xdg && xdg[0] == '/')
		p = try_path(buf, buflen, "%s/pcfs/pcfs.ini", xdg);
	else if (home && *home)
		p = try_path(buf, buflen, "%s/.config/pcfs/pcfs.ini", home);
	if (!p)
		p = try_path(buf, buflen, "%s", "/etc/pcfs/pcfs.ini");
	return p;
}

/* ---- Rendering ---- */

static bool is_empty(const struct pcfs_config *c, const struct key *k)
{
	if (k->type == T_PATH)
		return *(const char *)cfield(c, k) == '\0';
	return is_list(k) && ccount(c, k) == 0;
}

/* " VALUE" in canonical form; nothing for an empty path or list.  Long lists
 * wrap onto indented continuation lines. */
static void put_value(struct strbuf *sb, const struct pcfs_config *c, const struct key *k)
{
	const uint32_t *ids;
	char num[32];

	switch (k->type) {
	case T_BOOL:
		sb_adds(sb, get_scalar(c, k) ? " true" : " false");
		break;
	case T_ENUM:
		sb_printf(sb, " %s", k->names[get_scalar(c, k)]);
		break;
	case T_PATH:
		if (!is_empty(c, k))
			sb_printf(sb, " %s", (const char *)cfield(c, k));
		else if (k->names)
			sb_printf(sb, " %s", k->names[0]);   /* a path with words: empty is the first */
		break;
	case T_USERS:
	case T_GROUPS:
		ids = cfield(c, k);
		for (size_t i = 0; i < ccount(c, k); i++)
			sb_printf(sb, "%s%" PRIu32, i == 0 ? " " : i % IDS_PER_LINE ? ", " : ",\n\t", ids[i]);
		break;
	default:
		format_number(num, sizeof(num), k, get_scalar(c, k));
		sb_printf(sb, " %s", num);
		break;
	}
}

/* What a key accepts, for its comment. */
static void put_range(struct strbuf *sb, const struct key *k)
{
	char lo[32], hi[32];

	switch (k->type) {
	case T_BOOL:
		sb_adds(sb, "true|false");
		break;
	case T_ENUM:
		join_names(sb, k->names, "|", "|");
		break;
	case T_PATH:
		if (k->names) {
			join_names(sb, k->names, ", ", ", ");
			sb_adds(sb, ", or an ");
		}
		sb_printf(sb, "absolute path (at most %" PRIu64 " bytes) or empty", k->max);
		break;
	case T_USERS:
		sb_printf(sb, "user names or uids, at most %" PRIu64, k->max);
		break;
	case T_GROUPS:
		sb_printf(sb, "group names or gids, at most %" PRIu64, k->max);
		break;
	default:
		format_number(lo, sizeof(lo), k, k->min);
		format_number(hi, sizeof(hi), k, k->max);
		sb_printf(sb, "%s..%s", lo, hi);
		break;
	}
}

/* "; help", "; range; default X", "name = value". */
static void put_key(struct strbuf *sb, const struct pcfs_config *c, const struct pcfs_config *def,
		    const struct key *k)
{
	sb_printf(sb, "; %s\n; ", k->help);
	put_range(sb, k);
	sb_adds(sb, "; default");
	if (is_empty(def, k))
		sb_adds(sb, " empty");
	else
		put_value(sb, def, k);
	sb_printf(sb, "\n%s =", k->name);
	put_value(sb, c, k);
	sb_addc(sb, '\n');
}

char *config_render(const struct pcfs_config *c)
{
	struct strbuf sb = STRBUF_INIT;
	struct pcfs_config *def;

	def = malloc(sizeof(*def));
	if (!def)
		return NULL;
	config_defaults(def);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (i == 0 || strcmp(keys[i].section, keys[i - 1].section))
			sb_printf(&sb, "%s[%s]\n", i == 0 ? "" : "\n", keys[i].section);
		put_key(&sb, c, def, &keys[i]);
	}
	free(def);
	if (sb_error(&sb)) {
		sb_free(&sb);
		return NULL;
	}
	return sb_steal(&sb);
}
