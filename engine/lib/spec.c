/* spec.c - the task line grammar (see spec.h).
 *
 * The line is read left to right by a small lexer that unescapes one token at
 * a time, in place, in a private copy of the line.  What a token *is* is
 * decided from its raw text before it is lexed: an option by an unquoted
 * "key=" prefix, COUNT by bare digits, the end of the options by a bare "--".
 * Quoting a word ('x=y', '--', '12') therefore always makes it an argument.
 *
 * The command line of sh is never lexed: it is the rest of the line as typed,
 * and /bin/sh is the judge of its syntax (a comment such as "# don't" is fine).
 *
 * Everything here is const tables and locals, so the parser is reentrant.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cglib.h"
#include "reason.h"
#include "spec.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define DIGITS "0123456789"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define NAME_CHARS UPPER LOWER DIGITS "._-"      /* name=, channels */
#define KEY_CHARS LOWER DIGITS "_"               /* option keys */
#define ENV_CHARS UPPER LOWER DIGITS "_"         /* env= variable names */

#define MIB ((int64_t)1 << 20)
#define TIB ((int64_t)1 << 40)
#define DURATION_MAX_MS ((int64_t)100 * 365 * 86400 * 1000)   /* ~100 years */
#define CWD_MAX 4095
#define WORKLOAD_LIST "cpu io sleep mem cow stack noop exec sh"

static const char *const workload_names[WL__COUNT] = {
	[WL_CPU] = "cpu", [WL_IO] = "io", [WL_SLEEP] = "sleep",
	[WL_MEM] = "mem", [WL_COW] = "cow", [WL_STACK] = "stack",
	[WL_NOOP] = "noop", [WL_EXEC] = "exec", [WL_SH] = "sh",
};

static const char *const method_names[METHOD__COUNT] = {
	[METHOD_DEFAULT] = "default", [METHOD_FORK] = "fork",
	[METHOD_SPAWN] = "spawn", [METHOD_VFORK] = "vfork",
	[METHOD_CLONE] = "clone", [METHOD_PTHREAD] = "pthread",
};

/* Indexed by number; SIG* macros keep it right on every architecture. */
static const char *const signal_names[32] = {
	[SIGHUP] = "HUP", [SIGINT] = "INT", [SIGQUIT] = "QUIT",
	[SIGILL] = "ILL", [SIGTRAP] = "TRAP", [SIGABRT] = "ABRT",
	[SIGBUS] = "BUS", [SIGFPE] = "FPE", [SIGKILL] = "KILL",
	[SIGUSR1] = "USR1", [SIGSEGV] = "SEGV", [SIGUSR2] = "USR2",
	[SIGPIPE] = "PIPE", [SIGALRM] = "ALRM", [SIGTERM] = "TERM",
#ifdef SIGSTKFLT
	[SIGSTKFLT] = "STKFLT",
#endif
	[SIGCHLD] = "CHLD", [SIGCONT] = "CONT", [SIGSTOP] = "STOP",
	[SIGTSTP] = "TSTP", [SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU",
	[SIGURG] = "URG", [SIGXCPU] = "XCPU", [SIGXFSZ] = "XFSZ",
	[SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF", [SIGWINCH] = "WINCH",
	[SIGIO] = "IO", [SIGPWR] = "PWR", [SIGSYS] = "SYS",
};

#define SIGNAL_NUM_MAX 64

/* ---- error messages (reason.h) ---------------------------------------- */

static int nomem(struct perr *e)
{
	return perr_fail(e, -ENOMEM, "out of memory");
}


/* ---- value syntax ------------------------------------------------------ */

static int parse_uint_n(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (d > max || v > (max - d) / 10)     /* v * 10 + d > max */
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	return s ? parse_uint_n(s, strlen(s), max, out) : -EINVAL;
}

/* "12" or "1.25": the digits before and after the point. */
struct decimal {
	const char *ip, *fp;
	size_t ni, nf;
};

/* Scan a decimal at s; returns what follows it, or NULL if there is none. */
static const char *scan_decimal(const char *s, struct decimal *d)
{
	d->ip = s;
	d->ni = strspn(s, DIGITS);
	d->fp = s + d->ni;
	d->nf = 0;
	if (d->ni == 0)
		return NULL;
	if (*d->fp != '.')
		return d->fp;
	d->fp++;
	d->nf = strspn(d->fp, DIGITS);
	return d->nf ? d->fp + d->nf : NULL;
}

/* ceil(d * mult), refused above max.  Exact integer arithmetic for any number
 * of fraction digits: Horner's rule from the last digit keeps the integer part
 * q of mult * 0.ddd (never above mult) and whether anything is left over. */
static int decimal_scale(const struct decimal *d, uint64_t mult, uint64_t max,
			 uint64_t *out)
{
	uint64_t ip, q = 0;
	bool inexact = false;
	size_t i;

	if (parse_uint_n(d->ip, d->ni, max / mult, &ip))
		return -EINVAL;
	for (i = d->nf; i > 0; i--) {
		uint64_t t = (uint64_t)(d->fp[i - 1] - '0') * mult + q;

		inexact |= t % 10 != 0;
		q = t / 10;
	}
	q += inexact;
	if (q > max - ip * mult)
		return -EINVAL;
	*out = ip * mult + q;
	return 0;
}

int parse_duration_ms(const char *s, int64_t *ms)
{
	/* In microseconds, so "100us" is exact before it is rounded up to ms. */
	static const struct { const char *sfx; uint64_t us; } units[] = {
		{ "", 1000000 }, { "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
		{ "m", 60000000 }, { "h", 3600000000 }, { "d", 86400000000 },
	};
	struct decimal d;
	const char *sfx;
	uint64_t us;
	size_t i;

	if (!s || !(sfx = scan_decimal(s, &d)))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(sfx, units[i].sfx) != 0)
			continue;
		if (decimal_scale(&d, units[i].us, (uint64_t)DURATION_MAX_MS * 1000, &us))
			return -EINVAL;
		*ms = (int64_t)((us + 999) / 1000);
		return 0;
	}
	return -EINVAL;
}

int parse_size(const char *s, uint64_t *bytes)
{
	static const char prefixes[] = "KkMmGgTtPpEe";   /* pairs: 1024^1.. */
	struct decimal d;
	const char *p, *u;
	unsigned shift = 0;

	if (!s || !(p = scan_decimal(s, &d)))
		return -EINVAL;
	if (*p && (u = strchr(prefixes, *p))) {
		shift = 10 * (unsigned)((u - prefixes) / 2 + 1);
		p++;
		if (strcmp(p, "iB") == 0)
			p += 2;
	}
	if (strcmp(p, "B") == 0)
		p++;
	if (*p)
		return -EINVAL;
	return decimal_scale(&d, (uint64_t)1 << shift, UINT64_MAX, bytes);
}

/* Like strncasecmp(), which follows the locale: signal names are ASCII, and
 * in a Turkish locale "int" and "INT" differ. */
static bool ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	for (; n; a++, b++, n--) {
		char x = *a >= 'a' && *a <= 'z' ? *a - 'a' + 'A' : *a;
		char y = *b >= 'a' && *b <= 'z' ? *b - 'a' + 'A' : *b;

		if (x != y)
			return false;
		if (!x)
			break;
	}
	return true;
}

int parse_signal(const char *s, int *sig)
{
	uint64_t n;
	int i;

	if (!s)
		return -EINVAL;
	if (*s >= '0' && *s <= '9') {
		if (parse_uint(s, SIGNAL_NUM_MAX, &n) || n == 0)
			return -EINVAL;
		*sig = (int)n;
		return 0;
	}
	if (ascii_ncaseeq(s, "SIG", 3))
		s += 3;
	for (i = 1; i < (int)ARRAY_SIZE(signal_names); i++) {
		if (signal_names[i] && ascii_ncaseeq(s, signal_names[i], SIZE_MAX)) {
			*sig = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *signal_name(int sig)
{
	return sig > 0 && sig < (int)ARRAY_SIZE(signal_names) ? signal_names[sig] : NULL;
}

const char *workload_name(enum workload w)
{
	return (unsigned)w < WL__COUNT ? workload_names[w] : NULL;
}

const char *method_name(enum start_method m)
{
	return (unsigned)m < METHOD__COUNT ? method_names[m] : NULL;
}

bool workload_is_builtin(enum workload w)
{
	return (unsigned)w < WL__COUNT && w != WL_EXEC && w != WL_SH;
}

/* ---- NULL-terminated string vectors ------------------------------------ */

/* Append a copy of str.  The array is grown to the next power of two whenever
 * it is full, so a vector built only by vec_push() costs O(n) to fill. */
static int vec_push(char ***vec, size_t *n, const char *str)
{
	char **v = *vec;

	if (((*n + 1) & *n) == 0) {
		v = realloc(v, 2 * (*n + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		*vec = v;
	}
	v[*n + 1] = NULL;
	if (!(v[*n] = strdup(str)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void vec_free(char **v)
{
	char **p;

	for (p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* ---- options ----------------------------------------------------------- */

#define WL(w) (1u << (w))
#define WL_ALL (WL(WL__COUNT) - 1)
#define WL_CMD (WL(WL_EXEC) | WL(WL_SH))
#define WL_BUILTIN (WL_ALL & ~WL_CMD)
#define WL_TIMED (WL_BUILTIN & ~WL(WL_NOOP))

struct option;
typedef int opt_set_fn(const struct option *o, struct task_spec *s,
		       const char *v, struct perr *e);

/* One key.  A key whose range depends on the workload has one row per range
 * (size=); the first row that applies to the line's workload is used. */
struct option {
	const char *key;
	unsigned workloads;     /* WL() mask of the workloads it applies to */
	opt_set_fn *set;
	size_t off;             /* the field set by the generic setters: int64_t
				 * for opt_ms/uint/bytes, int for opt_int/pct,
				 * char * for opt_stdio's channels */
	int64_t min, max;       /* the range, for the numeric setters */
	bool repeat;            /* may be given more than once */
	const char *help;       /* what a good value looks like */
};

#define FIELD(s, o, type) ((type *)((char *)(s) + (o)->off))
#define F(field) offsetof(struct task_spec, field)

static int bad(const struct option *o, const char *v, struct perr *e)
{
	return perr_fail(e, -EINVAL, "option '%s': bad value '%s' (expected %s)",
		    o->key, SHOW(v), o->help);
}

static bool valid_name(const char *v)
{
	size_t n = strlen(v);

	return n >= 1 && n <= SPEC_NAME_MAX && strspn(v, NAME_CHARS) == n;
}

static int opt_ms(const struct option *o, struct task_spec *s, const char *v,
		  struct perr *e)
{
	int64_t ms;

	if (parse_duration_ms(v, &ms) || ms < o->min || ms > o->max)
		return bad(o, v, e);
	*FIELD(s, o, int64_t) = ms;
	return 0;
}

static int opt_uint(const struct option *o, struct task_spec *s, const char *v,
		    struct perr *e)
{
	uint64_t n;

	if (parse_uint(v, (uint64_t)o->max, &n) || n < (uint64_t)o->min)
		return bad(o, v, e);
	*FIELD(s, o, int64_t) = (int64_t)n;
	return 0;
}

static int opt_bytes(const struct option *o, struct task_spec *s, const char *v,
		     struct perr *e)
{
	uint64_t n;

	if (parse_size(v, &n) || n < (uint64_t)o->min || n > (uint64_t)o->max)
		return bad(o, v, e);
	*FIELD(s, o, int64_t) = (int64_t)n;
	return 0;
}

static int opt_int(const struct option *o, struct task_spec *s, const char *v,
		   struct perr *e)
{
	bool neg = *v == '-';
	uint64_t mag;
	int64_t n;

	if (parse_uint(v + neg, INT64_MAX, &mag))
		return bad(o, v, e);
	n = neg ? -(int64_t)mag : (int64_t)mag;
	if (n < o->min || n > o->max)
		return bad(o, v, e);
	*FIELD(s, o, int) = (int)n;
	return 0;
}

static int opt_pct(const struct option *o, struct task_spec *s, const char *v,
		   struct perr *e)
{
	size_t n = strlen(v);
	uint64_t pct;

	if (n && v[n - 1] == '%')
		n--;
	if (parse_uint_n(v, n, (uint64_t)o->max, &pct) || pct < (uint64_t)o->min)
		return bad(o, v, e);
	*FIELD(s, o, int) = (int)pct;
	return 0;
}

static int opt_nice(const struct option *o, struct task_spec *s, const char *v,
		    struct perr *e)
{
	int rc = opt_int(o, s, v, e);

	s->nice_set = rc == 0;
	return rc;
}

static int opt_as(const struct option *o, struct task_spec *s, const char *v,
		  struct perr *e)
{
	if (strcmp(v, "process") == 0) {
		s->kind = TASK_PROCESS;
	} else if (strcmp(v, "thread") == 0) {
		if (!workload_is_builtin(s->workload))
			return perr_fail(e, -EINVAL, "as=thread cannot run %s: a thread cannot exec without replacing its whole host process (use as=process)",
				    workload_names[s->workload]);
		s->kind = TASK_THREAD;
	} else {
		return bad(o, v, e);
	}
	s->kind_set = true;
	return 0;
}

static int opt_method(const struct option *o, struct task_spec *s, const char *v,
		      struct perr *e)
{
	int m;

	/* "default" is what leaving method= out means, not a value to write. */
	for (m = METHOD_DEFAULT + 1; m < METHOD__COUNT; m++) {
		if (strcmp(v, method_names[m]) == 0) {
			s->method = m;
			return 0;
		}
	}
	return bad(o, v, e);
}

static int opt_gil(const struct option *o, struct task_spec *s, const char *v,
		   struct perr *e)
{
	if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
		return bad(o, v, e);
	s->gil = *v == '1';
	s->gil_set = true;
	return 0;
}

static int opt_name(const struct option *o, struct task_spec *s, const char *v,
		    struct perr *e)
{
	if (!valid_name(v))
		return bad(o, v, e);
	strcpy(s->name, v);
	return 0;
}

/* A file for stdin=/stdout=/stderr=: PATH with a '/', or append:PATH /
 * truncate:PATH for any path (stdin takes neither prefix: it only reads). */
static int file_value(const char *v, bool is_stdin, struct spec_file *f)
{
	const char *path = v;
	bool append = false;
	if (!is_stdin && strncmp(v, "append:", 7) == 0)
		path = v + 7, append = true;
	else if (!is_stdin && strncmp(v, "truncate:", 9) == 0)
		path = v + 9;
	else if (!strchr(v, '/'))
		return 0;   /* not a file */
	if (!path[0] || strlen(path) > CWD_MAX)
		return -EINVAL;
	if (!(f->path = strdup(path)))
		return -ENOMEM;
	f->append = append;
	return 1;
}

/* stdin=, stdout=, stderr=: a file (see file_value), else a channel's name
 * (stdin and stdout of exec and sh only: a channel is pumped to a program). */
static int opt_stdio(const struct option *o, struct task_spec *s, const char *v,
		     struct perr *e)
{
	int which = o->off == F(stdin_chan) ? 0 : o->off == F(stdout_chan) ? 1 : 2;
	int rc = file_value(v, which == 0, &s->file[which]);
	if (rc < 0)
		return rc == -ENOMEM ? nomem(e) : bad(o, v, e);
	if (rc > 0)
		return 0;
	if (which == 2)
		return perr_fail(e, -EINVAL, "option 'stderr': '%s' is not a file (a path with "
				 "a '/' in it, or append:PATH or truncate:PATH)", SHOW(v));
	if (!(s->workload == WL_EXEC || s->workload == WL_SH))
		return perr_fail(e, -EINVAL, "option '%s': channels are for exec and sh (for a "
				 "file, write a path with a '/' in it, like ./%s)", o->key, SHOW(v));
	if (!valid_name(v) || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return bad(o, v, e);
	char *dup = strdup(v);
	if (!dup)
		return nomem(e);
	*FIELD(s, o, char *) = dup;
	return 0;
}

static int opt_cwd(const struct option *o, struct task_spec *s, const char *v,
		   struct perr *e)
{
	if (!v[0] || strlen(v) > CWD_MAX)
		return bad(o, v, e);
	if (!(s->cwd = strdup(v)))
		return nomem(e);
	return 0;
}

/* on_end=CMD: run by /bin/sh -c once the task has ended; quoted like exec
 * arguments ('...') since a command has blanks in it. */
static int opt_on_end(const struct option *o, struct task_spec *s, const char *v,
		      struct perr *e)
{
	if (!v[0] || strlen(v) > SPEC_ON_END_MAX)
		return bad(o, v, e);
	if (!(s->on_end = strdup(v)))
		return nomem(e);
	return 0;
}

/* cpus=LIST: CPU numbers and ranges (0, 0-1, 0,2-3). */
static int opt_cpus(const struct option *o, struct task_spec *s, const char *v,
		    struct perr *e)
{
	uint8_t mask[CG_CPUS_MAX / 8];
	if (cg_parse_cpus(v, mask) < 0)
		return bad(o, v, e);
	if (!(s->lim.cpus = strdup(v)))
		return nomem(e);
	return 0;
}

bool spec_limits_any(const struct spec_limits *l)
{
	return l->mem_max != SPEC_UNSET || l->swap_max != SPEC_UNSET || l->pids_max != SPEC_UNSET ||
	       l->cpu_max != SPEC_UNSET || l->io_weight != SPEC_UNSET || l->cpus || l->cgroup;
}

void spec_limits_init(struct spec_limits *l)
{
	*l = (struct spec_limits){ .mem_max = SPEC_UNSET, .swap_max = SPEC_UNSET,
				   .pids_max = SPEC_UNSET, .cpu_max = SPEC_UNSET,
				   .io_weight = SPEC_UNSET };
}

void spec_limits_free(struct spec_limits *l)
{
	free(l->cpus);
	spec_limits_init(l);
}

int spec_limits_copy(struct spec_limits *dst, const struct spec_limits *src)
{
	*dst = *src;
	dst->cpus = NULL;
	if (src->cpus && !(dst->cpus = strdup(src->cpus)))
		return -ENOMEM;
	return 0;
}

static bool env_key_ok(const char *k, size_t klen)
{
	return klen > 0 && strspn(k, ENV_CHARS) >= klen && !(k[0] >= '0' && k[0] <= '9');
}

/* env=K=V sets, env=-K removes one inherited, env=- starts from nothing. */
static int opt_env(const struct option *o, struct task_spec *s, const char *v,
		   struct perr *e)
{
	bool unset = v[0] == '-';
	const char *k = unset ? v + 1 : v;
	size_t klen = strcspn(k, "=");
	size_t i;

	if (unset && !*k) {
		if (s->env_clean)
			return perr_fail(e, -EINVAL, "option 'env': '-' given twice");
		s->env_clean = true;
		return 0;
	}
	if (!env_key_ok(k, klen) || (unset ? k[klen] != '\0' : k[klen] != '='))
		return bad(o, v, e);
	if (strncmp(k, "PCFS_", 5) == 0)
		return perr_fail(e, -EINVAL, "option 'env': '%s' sets a PCFS_ variable, which pcfs sets itself",
			    SHOW(v));
	/* Which of two copies a program sees is up to its libc: refuse both. */
	for (i = 0; i < s->nenv; i++) {
		const char *had = s->env[i][0] == '-' ? s->env[i] + 1 : s->env[i];
		if (strncmp(had, k, klen) == 0 && (had[klen] == '=' || had[klen] == '\0'))
			return perr_fail(e, -EINVAL, "option 'env': '%s' %s a variable that is "
					 "already set", SHOW(v), unset ? "removes" : "sets");
	}
	if (s->nenv == SPEC_ENV_MAX)
		return perr_fail(e, -EINVAL, "option 'env' given more than %d times", SPEC_ENV_MAX);
	return vec_push(&s->env, &s->nenv, v) ? nomem(e) : 0;
}

/* after=ID[,ID...] and its two kin: one of them per line. */
static int opt_after(const struct option *o, struct task_spec *s, const char *v,
		     struct perr *e)
{
	enum after_kind k = !strcmp(o->key, "after") ? AFTER_OK
			  : !strcmp(o->key, "after_any") ? AFTER_ANY : AFTER_FAIL;
	if (s->after_kind != AFTER_NONE)
		return perr_fail(e, -EINVAL, "one of after=, after_any=, after_fail= per line");
	s->after_kind = k;
	for (const char *p = v;;) {
		char id[24];
		size_t n = strcspn(p, ",");
		uint64_t x;
		if (n == 0 || n >= sizeof(id))
			return bad(o, v, e);
		memcpy(id, p, n);
		id[n] = '\0';
		if (parse_uint(id, UINT64_MAX, &x) < 0 || x == 0)
			return bad(o, v, e);
		if (s->nafter == SPEC_AFTER_MAX)
			return perr_fail(e, -EINVAL, "option '%s': more than %d ids", o->key,
					 SPEC_AFTER_MAX);
		s->after[s->nafter++] = x;
		p += n;
		if (!*p++)
			return 0;
	}
}

const char *after_kind_name(enum after_kind k)
{
	static const char *const names[] = { [AFTER_NONE] = "", [AFTER_OK] = "after",
					     [AFTER_ANY] = "after_any", [AFTER_FAIL] = "after_fail" };
	return names[k];
}

enum after_verdict after_decide(enum after_kind k, unsigned left, bool failed)
{
	if (k == AFTER_OK && failed)
		return AFTER_SKIP;   /* at once: it can never run */
	if (left > 0)
		return AFTER_WAIT;
	if (k == AFTER_FAIL && !failed)
		return AFTER_SKIP;
	return AFTER_READY;
}

#define AFTER_HELP "ids of earlier work, like 12 or 12,13"
#define MS_ABOVE_0 "a duration above 0, like 250ms, 2s or 1.5m"
#define FILE_OR_CHANNEL "a file (a path with a '/', append:PATH or truncate:PATH) or a " \
	"channel name: 1 to 64 of A-Z a-z 0-9 . _ - (not . or ..)"

static const struct option options[] = {
	{ .key = "as", .workloads = WL_ALL, .set = opt_as,
	  .help = "process or thread" },
	{ .key = "method", .workloads = WL_ALL, .set = opt_method,
	  .help = "fork, spawn, vfork, clone or pthread" },
	{ .key = "time", .workloads = WL_TIMED, .set = opt_ms, .off = F(time_ms),
	  .min = 1, .max = DURATION_MAX_MS, .help = MS_ABOVE_0 },
	{ .key = "ops", .workloads = WL(WL_CPU) | WL(WL_IO), .set = opt_uint,
	  .off = F(ops), .min = 1, .max = 1000000000000,
	  .help = "a whole number from 1 to 1000000000000" },
	{ .key = "size", .workloads = WL(WL_MEM) | WL(WL_COW), .set = opt_bytes,
	  .off = F(size), .min = 1, .max = TIB,
	  .help = "a size from 1 byte to 1 TiB, like 4k, 64M or 1.5G" },
	{ .key = "size", .workloads = WL(WL_IO), .set = opt_bytes,
	  .off = F(size), .min = 1, .max = 64 * MIB,
	  .help = "a size per write from 1 byte to 64 MiB, like 512, 4k or 1M" },
	{ .key = "touch", .workloads = WL(WL_MEM), .set = opt_pct,
	  .off = F(touch_pct), .min = 0, .max = 100,
	  .help = "a percentage from 0 to 100, like 50 or 50%" },
	{ .key = "write", .workloads = WL(WL_COW), .set = opt_pct,
	  .off = F(write_pct), .min = 0, .max = 100,
	  .help = "a percentage from 0 to 100, like 50 or 50%" },
	{ .key = "step", .workloads = WL(WL_MEM), .set = opt_bytes,
	  .off = F(step), .min = 1, .max = TIB,
	  .help = "a size from 1 byte to 1 TiB, like 4k or 64M" },
	{ .key = "rate", .workloads = WL(WL_MEM), .set = opt_ms,
	  .off = F(rate_ms), .min = 1, .max = DURATION_MAX_MS, .help = MS_ABOVE_0 },
	{ .key = "depth", .workloads = WL(WL_STACK), .set = opt_uint,
	  .off = F(depth), .min = 1, .max = 1000000,
	  .help = "a whole number from 1 to 1000000" },
	{ .key = "timeout", .workloads = WL_ALL, .set = opt_ms,
	  .off = F(timeout_ms), .min = 1, .max = DURATION_MAX_MS,
	  .help = MS_ABOVE_0 },
	{ .key = "retries", .workloads = WL_ALL, .set = opt_int,
	  .off = F(retries), .min = 0, .max = 100,
	  .help = "a whole number from 0 to 100" },
	{ .key = "priority", .workloads = WL_ALL, .set = opt_int,
	  .off = F(priority), .min = SPEC_PRIORITY_MIN, .max = SPEC_PRIORITY_MAX,
	  .help = "a whole number from -1000 to 1000 (bigger starts first)" },
	{ .key = "name", .workloads = WL_ALL, .set = opt_name,
	  .help = "1 to 64 of A-Z a-z 0-9 . _ -" },
	{ .key = "nice", .workloads = WL_ALL, .set = opt_nice,
	  .off = F(nice), .min = -20, .max = 19,
	  .help = "a whole number from -20 to 19" },
	{ .key = "cwd", .workloads = WL_ALL, .set = opt_cwd,
	  .help = "a path of at most 4095 bytes (relative: to the writer's directory)" },
	{ .key = "env", .workloads = WL_ALL, .set = opt_env, .repeat = true,
	  .help = "NAME=VALUE, -NAME or -; NAME made of A-Z a-z 0-9 _ and not starting "
		  "with a digit" },
	/* Only built-ins run as threads, so only they can take the GIL. */
	{ .key = "gil", .workloads = WL_BUILTIN, .set = opt_gil,
	  .help = "0 or 1" },
	{ .key = "after", .workloads = WL_ALL, .set = opt_after, .help = AFTER_HELP },
	{ .key = "after_any", .workloads = WL_ALL, .set = opt_after, .help = AFTER_HELP },
	{ .key = "after_fail", .workloads = WL_ALL, .set = opt_after, .help = AFTER_HELP },
	{ .key = "stdin", .workloads = WL_ALL, .set = opt_stdio,
	  .off = F(stdin_chan), .help = FILE_OR_CHANNEL },
	{ .key = "stdout", .workloads = WL_ALL, .set = opt_stdio,
	  .off = F(stdout_chan), .help = FILE_OR_CHANNEL },
	{ .key = "on_end", .workloads = WL_ALL, .set = opt_on_end,
	  .help = "a shell command of 1 to 4096 bytes, quoted: on_end='notify-send done'" },
	{ .key = "stderr", .workloads = WL_ALL, .set = opt_stdio,
	  .off = F(file[2]), .help = "a file: a path with a '/', append:PATH or truncate:PATH" },
	/* resource control: the cgroup room enforces them, or the line is refused */
	{ .key = "mem_max", .workloads = WL_ALL, .set = opt_bytes, .off = F(lim.mem_max),
	  .min = 1 * MIB, .max = TIB, .help = "a size from 1M to 1 TiB, like 128M or 2G" },
	{ .key = "swap_max", .workloads = WL_ALL, .set = opt_bytes, .off = F(lim.swap_max),
	  .min = 0, .max = TIB, .help = "a size from 0 to 1 TiB, like 0 or 512M" },
	{ .key = "pids_max", .workloads = WL_ALL, .set = opt_uint, .off = F(lim.pids_max),
	  .min = 1, .max = 4194304, .help = "a whole number from 1 to 4194304" },
	{ .key = "cpu_max", .workloads = WL_ALL, .set = opt_pct, .off = F(lim.cpu_max),
	  .min = 1, .max = 100 * CG_CPUS_MAX,
	  .help = "a percentage of one CPU, like 50% or 150% (one and a half CPUs)" },
	{ .key = "cpus", .workloads = WL_ALL, .set = opt_cpus,
	  .help = "CPU numbers and ranges below 1024, like 0, 0-1 or 0,2-3" },
	{ .key = "io_weight", .workloads = WL_ALL, .set = opt_uint, .off = F(lim.io_weight),
	  .min = 1, .max = 10000, .help = "a whole number from 1 to 10000" },
	{ .key = "cgroup", .workloads = WL_ALL, .set = opt_int, .off = F(lim.cgroup),
	  .min = 0, .max = 1, .help = "0 or 1" },
};

/* The row for key with workload w, or NULL with the reason in e. */
static const struct option *find_option(const char *key, enum workload w,
					struct perr *e)
{
	bool known = false;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(options); i++) {
		if (strcmp(options[i].key, key) != 0)
			continue;
		if (options[i].workloads & WL(w))
			return &options[i];
		known = true;
	}
	if (known)
		perr_fail(e, -EINVAL, "option '%s' does not apply to %s", key, workload_names[w]);
	else
		perr_fail(e, -EINVAL, "unknown option '%s' for %s", SHOW(key), workload_names[w]);
	return NULL;
}

static bool is_limit_key(const struct option *o)
{
	return o->set == opt_cpus || (o->off >= F(lim) &&
				      o->off < F(lim) + sizeof(struct spec_limits));
}

int spec_limit_set(struct spec_limits *l, const char *key, const char *val, char *err,
		   size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	const struct option *o = find_option(key, WL_EXEC, &e);
	if (!o || !is_limit_key(o) || !strcmp(key, "cgroup"))
		return o ? perr_fail(&e, -EINVAL, "'%s' is no limit", SHOW(key)) : -EINVAL;
	struct task_spec s;
	memset(&s, 0, sizeof(s));
	s.lim = *l;
	s.lim.cpus = NULL;
	int rc = o->set(o, &s, val, &e);
	if (rc < 0)
		return rc;
	if (o->set == opt_cpus) {
		free(l->cpus);
		l->cpus = s.lim.cpus;
	} else {
		char *keep = l->cpus;
		*l = s.lim;
		l->cpus = keep;
	}
	return 0;
}

/* ---- the lexer --------------------------------------------------------- */

/* The working copy is rewritten only behind p.  line is kept for what must be
 * quoted as typed after lexing began: a token with an unterminated quote. */
struct lexer {
	char *p;            /* next unread byte of the working copy */
	const char *base;   /* the working copy: same offsets as line */
	const char *line;   /* the line as typed (s->line) */
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_end(char c)
{
	return c == '\0' || is_blank(c);
}

/* Skip blanks; false at the end of the line. */
static bool lex_more(struct lexer *lx)
{
	while (is_blank(*lx->p))
		lx->p++;
	return *lx->p != '\0';
}

/* The line as typed from the next token on. */
static const char *lex_raw(const struct lexer *lx)
{
	return lx->line + (lx->p - lx->base);
}

/* The next token is `word`, unquoted. */
static bool lex_at_word(const struct lexer *lx, const char *word)
{
	size_t n = strlen(word);

	return strncmp(lx->p, word, n) == 0 && is_end(lx->p[n]);
}

/* The next token is bare digits. */
static bool lex_at_digits(const struct lexer *lx)
{
	size_t n = strspn(lx->p, DIGITS);

	return n > 0 && is_end(lx->p[n]);
}

/* The next token starts with an unquoted key= (^[a-z_][a-z0-9_]*=). */
static bool lex_at_option(const struct lexer *lx)
{
	size_t n = strspn(lx->p, KEY_CHARS);

	return n > 0 && !(*lx->p >= '0' && *lx->p <= '9') && lx->p[n] == '=';
}

int spec_unquote(char **p, const char *raw, char *err, size_t errlen)
{
	struct perr pe = { err, err ? errlen : 0 }, *e = &pe;
	char *r = *p, *w = *p;
	char quote = 0;

	for (;;) {
		char c = *r;

		if (!quote && is_end(c))
			break;
		if (c == '\0')
			return perr_fail(e, -EINVAL, "unterminated %s quote in '%s'",
				    quote == '\'' ? "single" : "double", SHOW(raw));
		r++;
		if (quote == '\'') {
			if (c == '\'')
				quote = 0;
			else
				*w++ = c;
		} else if (quote == '"') {
			if (c == '"')
				quote = 0;
			else if (c == '\\' && (*r == '"' || *r == '\\'))
				*w++ = *r++;
			else
				*w++ = c;
		} else if (c == '\'' || c == '"') {
			quote = c;
		} else if (c == '\\') {
			if (*r == '\0')
				return perr_fail(e, -EINVAL, "trailing backslash in '%s'", SHOW(raw));
			*w++ = *r++;
		} else {
			*w++ = c;
		}
	}
	*p = *r ? r + 1 : r;     /* before *w = 0: w may be r */
	*w = '\0';
	return 0;
}

/* Unquote the next token where it lies and return it NUL-terminated. */
static int lex_token(struct lexer *lx, char **tok, struct perr *e)
{
	char *start = lx->p;
	int rc = spec_unquote(&lx->p, lex_raw(lx), e->buf, e->len);
	if (rc == 0)
		*tok = start;
	return rc;
}

/* ---- the grammar ------------------------------------------------------- */

static int parse_workload(struct lexer *lx, struct task_spec *s, struct perr *e)
{
	char *tok;
	int rc, w;

	if ((rc = lex_token(lx, &tok, e)))
		return rc;
	for (w = 0; w < WL__COUNT; w++) {
		if (strcmp(tok, workload_names[w]) == 0) {
			s->workload = w;
			return 0;
		}
	}
	return perr_fail(e, -EINVAL, "unknown workload '%s' (one of: " WORKLOAD_LIST ")",
		    SHOW(tok));
}

static int parse_count(struct lexer *lx, struct task_spec *s,
		       unsigned online_cpus, struct perr *e)
{
	uint64_t n;
	char *tok;
	int rc;

	if (!lex_more(lx) || !lex_at_digits(lx))
		return 0;
	if ((rc = lex_token(lx, &tok, e)))
		return rc;
	if (parse_uint(tok, SPEC_COUNT_MAX, &n))
		return perr_fail(e, -EINVAL, "count %s is too large (at most %d)",
			    SHOW(tok), SPEC_COUNT_MAX);
	if (n == 0) {
		/* Keep count in 1..SPEC_COUNT_MAX whatever the caller passes. */
		n = online_cpus ? online_cpus : 1;
		if (n > SPEC_COUNT_MAX)
			n = SPEC_COUNT_MAX;
	}
	s->count = (unsigned)n;
	return 0;
}

static int parse_option(char *tok, struct task_spec *s, bool *seen,
			struct perr *e)
{
	const struct option *o;
	char *v = strchr(tok, '=');

	*v++ = '\0';
	if (!(o = find_option(tok, s->workload, e)))
		return -EINVAL;
	if (seen[o - options] && !o->repeat)
		return perr_fail(e, -EINVAL, "option '%s' given twice", o->key);
	seen[o - options] = true;
	return o->set(o, s, v, e);
}

/* KEY=VALUE tokens up to the first other token, or up to and including "--". */
static int parse_options(struct lexer *lx, struct task_spec *s, struct perr *e)
{
	bool seen[ARRAY_SIZE(options)] = { false };
	char *tok;
	int rc;

	while (lex_more(lx)) {
		if (lex_at_word(lx, "--")) {
			lx->p += 2;
			break;
		}
		if (!lex_at_option(lx))
			break;
		if ((rc = lex_token(lx, &tok, e)) || (rc = parse_option(tok, s, seen, e)))
			return rc;
	}
	return 0;
}

static int parse_argv(struct lexer *lx, struct task_spec *s, struct perr *e)
{
	char *tok;
	int rc;

	while (lex_more(lx)) {
		if (s->argc == SPEC_ARGV_MAX)
			return perr_fail(e, -EINVAL, "exec takes at most %d arguments", SPEC_ARGV_MAX);
		if ((rc = lex_token(lx, &tok, e)))
			return rc;
		if (s->argc == 0 && *tok == '\0')
			return perr_fail(e, -EINVAL, "exec needs a program to run (got '')");
		if (vec_push(&s->argv, &s->argc, tok))
			return nomem(e);
	}
	if (s->argc == 0)
		return perr_fail(e, -EINVAL, "exec needs a program to run");
	return 0;
}

static int parse_cmdline(struct lexer *lx, struct task_spec *s, struct perr *e)
{
	if (!lex_more(lx))
		return perr_fail(e, -EINVAL, "sh needs a command line");
	return vec_push(&s->argv, &s->argc, lex_raw(lx)) ? nomem(e) : 0;
}

static int parse_no_args(struct lexer *lx, struct task_spec *s, struct perr *e)
{
	char *tok;
	int rc;

	if (!lex_more(lx))
		return 0;
	if ((rc = lex_token(lx, &tok, e)))
		return rc;
	return perr_fail(e, -EINVAL, "%s takes no arguments (got '%s')",
		    workload_names[s->workload], SHOW(tok));
}

/* Rules between options, which may come in any order. */
static int check_kind(const struct task_spec *s, struct perr *e)
{
	bool thread = s->kind == TASK_THREAD;   /* only ever set by as=thread */

	if (thread && s->method != METHOD_DEFAULT && s->method != METHOD_PTHREAD)
		return perr_fail(e, -EINVAL, "method=%s cannot start a thread (threads use method=pthread)",
			    method_names[s->method]);
	if (!thread && s->method == METHOD_PTHREAD)
		return perr_fail(e, -EINVAL, "method=pthread starts threads; processes use fork, spawn, vfork or clone");
	if (s->gil_set && !thread)
		return perr_fail(e, -EINVAL, "gil= applies to threads (add as=thread)");
	if (thread && (s->file[0].path || s->file[1].path || s->file[2].path))
		return perr_fail(e, -EINVAL, "a thread has its host process's stdin, stdout and "
				 "stderr: stdin=/stdout=/stderr= files are for processes");
	return 0;
}

static int parse(struct lexer *lx, struct task_spec *s, unsigned online_cpus,
		 struct perr *e)
{
	int rc;

	if ((rc = parse_workload(lx, s, e)) ||
	    (rc = parse_count(lx, s, online_cpus, e)) ||
	    (rc = parse_options(lx, s, e)))
		return rc;
	switch (s->workload) {
	case WL_EXEC:
		rc = parse_argv(lx, s, e);
		break;
	case WL_SH:
		rc = parse_cmdline(lx, s, e);
		break;
	default:
		rc = parse_no_args(lx, s, e);
		break;
	}
	return rc ? rc : check_kind(s, e);
}

/* Reject what a line may not hold before looking at its words. */
static int check_line(const char *line, size_t len, struct perr *e)
{
	size_t i;

	if (len > SPEC_LINE_MAX)
		return perr_fail(e, -E2BIG, "line is %zu bytes long (at most %d)", len, SPEC_LINE_MAX);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return perr_fail(e, -EINVAL, "control character 0x%02x at column %zu",
				    c, i + 1);
	}
	return 0;
}

static void spec_init(struct task_spec *s)
{
	*s = (struct task_spec){
		.count = 1,
		.kind = TASK_PROCESS,
		.method = METHOD_DEFAULT,
		.time_ms = SPEC_UNSET, .ops = SPEC_UNSET, .size = SPEC_UNSET,
		.touch_pct = SPEC_UNSET, .write_pct = SPEC_UNSET,
		.step = SPEC_UNSET, .rate_ms = SPEC_UNSET, .depth = SPEC_UNSET,
		.timeout_ms = SPEC_UNSET,
		.lim = { .mem_max = SPEC_UNSET, .swap_max = SPEC_UNSET, .pids_max = SPEC_UNSET,
			 .cpu_max = SPEC_UNSET, .io_weight = SPEC_UNSET },
	};
}

int spec_parse(const char *line, size_t len, unsigned online_cpus,
	       struct task_spec *out, char *err, size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	struct lexer lx;
	char *work;
	int rc;

	spec_init(out);
	if (e.len)
		err[0] = '\0';
	if (!line)
		len = 0;
	if ((rc = check_line(line, len, &e)))
		return rc;
	while (len && is_blank(*line))
		line++, len--;
	while (len && is_blank(line[len - 1]))
		len--;
	if (len == 0)
		return perr_fail(&e, -EINVAL, "empty line");

	out->line = strndup(line, len);
	work = strndup(line, len);
	if (!out->line || !work) {
		rc = nomem(&e);
	} else {
		lx = (struct lexer){ .p = work, .base = work, .line = out->line };
		rc = parse(&lx, out, online_cpus, &e);
	}
	free(work);
	if (rc)
		spec_free(out);
	return rc;
}

void spec_free(struct task_spec *s)
{
	if (!s)
		return;
	vec_free(s->env);
	vec_free(s->argv);
	free(s->cwd);
	free(s->stdin_chan);
	free(s->stdout_chan);
	free(s->on_end);
	free(s->lim.cpus);
	for (int i = 0; i < 3; i++)
		free(s->file[i].path);
	free(s->line);
	memset(s, 0, sizeof(*s));
}
