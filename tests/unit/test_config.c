/* test_config.c - the config loader, finder and renderer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ERRLEN 512

/* Every test gets a fresh scratch directory. */
struct fx {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16]; /* dir/t.ini, what load_text() writes */
};

static int make_scratch(struct fx *fx)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(fx->dir, sizeof(fx->dir), "%s/pcfs-test-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/t.ini", fx->dir);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int remove_scratch(struct fx *fx)
{
	return nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx || make_scratch(fx)) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	int r = remove_scratch(fx);

	free(fx);
	return r;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Load text over c (a file in the scratch directory). */
static int load_over(struct fx *fx, struct pcfs_config *c, const char *text, char *err)
{
	write_file(fx->path, text);
	err[0] = '\0';
	return config_load(c, fx->path, err, ERRLEN);
}

/* Load text over the defaults; fail the test if it does not load. */
static void load_ok(struct fx *fx, struct pcfs_config *c, const char *text)
{
	char err[ERRLEN];

	config_defaults(c);
	if (load_over(fx, c, text, err))
		fail_msg("unexpected error: %s\n--- text:\n%s", err, text);
}

/* Equal configurations: same text (a readable diff) and same bytes. */
static void assert_config_equal(const struct pcfs_config *a, const struct pcfs_config *b)
{
	char *ra = config_render(a), *rb = config_render(b);

	assert_non_null(ra);
	assert_non_null(rb);
	assert_string_equal(ra, rb);
	assert_memory_equal(a, b, sizeof(*a));
	free(ra);
	free(rb);
}

static void test_defaults(void **state)
{
	struct pcfs_config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	config_defaults(&c);
	assert_int_equal(c.max_tasks, 20000);
	assert_int_equal(c.max_processes, 1024);
	assert_int_equal(c.max_threads, 4096);
	assert_int_equal(c.max_pools, 256);
	assert_int_equal(c.max_channels, 1024);
	assert_int_equal(c.max_queued, 100000);
	assert_int_equal(c.max_write, 1 << 20);
	assert_int_equal(c.default_time_ms, 10000);
	assert_int_equal(c.kill_grace_ms, 2000);
	assert_int_equal(c.history, 1000);
	assert_int_equal(c.output_max, 1 << 20);
	assert_int_equal(c.unmount_policy, UNMOUNT_TERM);
	assert_int_equal(c.unmount_grace_ms, 2000);
	assert_int_equal(c.log_lines, 1000);
	assert_int_equal(c.log_level, LOG_LVL_INFO);
	assert_int_equal(c.fuse_threads, 16);
	assert_true(c.auto_unmount);
	assert_int_equal(c.mem_sample_ms, 200);
	assert_int_equal(c.memlog_max, 3000);
	assert_int_equal(c.pool_default_workers, 0);
	assert_int_equal(c.chan_capacity, 1024);
	assert_int_equal(c.chan_maxmsg, 64 << 10);
	assert_int_equal(c.chan_max_bytes, 64 << 20);
	assert_string_equal(c.state_dir, "");
	assert_false(c.allow_other);
	assert_int_equal(c.n_allow_users, 0);
	assert_int_equal(c.n_allow_groups, 0);
	assert_int_equal(c.slurm_poll_ms, 1000);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(unmount_policy_name(UNMOUNT_TERM), "term");
	assert_string_equal(unmount_policy_name(UNMOUNT_KILL), "kill");
	assert_string_equal(unmount_policy_name(UNMOUNT_LEAVE), "leave");
	assert_string_equal(unmount_policy_name((enum unmount_policy)3), "?");
	assert_string_equal(log_level_name(LOG_LVL_ERROR), "error");
	assert_string_equal(log_level_name(LOG_LVL_WARN), "warn");
	assert_string_equal(log_level_name(LOG_LVL_INFO), "info");
	assert_string_equal(log_level_name(LOG_LVL_DEBUG), "debug");
	assert_string_equal(log_level_name((enum log_level)4), "?");
}

/* Every key, none at its default; both separators; comments everywhere. */
static const char full_text[] =
	"; every key\n"
	"[limits]\n"
	"max_tasks = 5\n"
	"max_processes: 6\n"
	"max_threads=7\n"
	"max_pools = 8 ; inline comment\n"
	"max_channels = 9\n"
	"max_queued = 10\n"
	"max_write = 4K\n"
	"\n"
	"[tasks]\n"
	"  default_time = 1.5s\n" /* indented, but no key before it in [tasks] */
	"kill_grace = 0\n"
	"history = 0\n"
	"output_max = 2M\n"
	"[unmount]\n"
	"policy = kill\n"
	"grace = 5m\n"
	"[log]\n"
	"# hash comment\n"
	"lines = 10\n"
	"level = debug\n"
	"[fuse]\n"
	"threads = 2\n"
	"auto_unmount = no\n"
	"[memory]\n"
	"sample_period = 50ms\n"
	"memlog_max = 11\n"
	"[pools]\n"
	"default_workers = 3\n"
	"[channels]\n"
	"capacity = 12\n"
	"maxmsg = 100\n"
	"max_bytes = 1G\n"
	"[state]\n"
	"dir = /var/lib/pcfs\n"
	"[access]\n"
	"allow_other = yes\n"
	"allow_users = root, 1000\n"
	"allow_groups = 0\n"
	"[slurm]\n"
	"poll_interval = 2m\n";

static void test_full_file(void **state)
{
	struct pcfs_config c;

	load_ok(*state, &c, full_text);
	assert_int_equal(c.max_tasks, 5);
	assert_int_equal(c.max_processes, 6);
	assert_int_equal(c.max_threads, 7);
	assert_int_equal(c.max_pools, 8);
	assert_int_equal(c.max_channels, 9);
	assert_int_equal(c.max_queued, 10);
	assert_int_equal(c.max_write, 4096);
	assert_int_equal(c.default_time_ms, 1500);
	assert_int_equal(c.kill_grace_ms, 0);
	assert_int_equal(c.history, 0);
	assert_int_equal(c.output_max, 2 << 20);
	assert_int_equal(c.unmount_policy, UNMOUNT_KILL);
	assert_int_equal(c.unmount_grace_ms, 300000);
	assert_int_equal(c.log_lines, 10);
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	assert_int_equal(c.fuse_threads, 2);
	assert_false(c.auto_unmount);
	assert_int_equal(c.mem_sample_ms, 50);
	assert_int_equal(c.memlog_max, 11);
	assert_int_equal(c.pool_default_workers, 3);
	assert_int_equal(c.chan_capacity, 12);
	assert_int_equal(c.chan_maxmsg, 100);
	assert_int_equal(c.chan_max_bytes, 1 << 30);
	assert_string_equal(c.state_dir, "/var/lib/pcfs");
	assert_true(c.allow_other);
	assert_int_equal(c.n_allow_users, 2);
	assert_int_equal(c.allow_users[0], 0);
	assert_int_equal(c.allow_users[1], 1000);
	assert_int_equal(c.n_allow_groups, 1);
	assert_int_equal(c.allow_groups[0], 0);
	assert_int_equal(c.slurm_poll_ms, 120000);
}

/* A file sets only what it names; the rest of c is left as it was. */
static void test_load_over(void **state)
{
	struct pcfs_config c, want;
	char err[ERRLEN];

	config_defaults(&c);
	c.history = 7;
	c.allow_users[0] = 42;
	c.n_allow_users = 1;
	memcpy(&want, &c, sizeof(c));
	want.max_tasks = 99;
	assert_int_equal(load_over(*state, &c, "[limits]\nmax_tasks = 99\n[access]\n", err), 0);
	assert_config_equal(&c, &want);
}

/* Odd but valid files. */
static void test_syntax_variants(void **state)
{
	struct pcfs_config c;
	char line[INI_MAX_LINE];

	load_ok(*state, &c, "");
	load_ok(*state, &c, "[limits]\r\nmax_tasks = 5\r\n");
	assert_int_equal(c.max_tasks, 5);
	load_ok(*state, &c, "\xEF\xBB\xBF[limits]\nmax_tasks = 6");
	assert_int_equal(c.max_tasks, 6);
	load_ok(*state, &c, "[limits]\nmax_tasks = 7 ; inline comment\n[limits]\nmax_pools = 3\n");
	assert_int_equal(c.max_tasks, 7);
	assert_int_equal(c.max_pools, 3);
	load_ok(*state, &c, "[tasks]\nkill_grace = 100us\n"); /* rounded up to a millisecond */
	assert_int_equal(c.kill_grace_ms, 1);

	/* The longest line inih can take; without a newline it can be one byte
	 * longer, at the end of the file. */
	memset(line, 'x', sizeof(line));
	line[0] = ';';
	line[INI_MAX_LINE - 2] = '\n';
	line[INI_MAX_LINE - 1] = '\0';
	load_ok(*state, &c, line);
	line[INI_MAX_LINE - 2] = 'x';
	load_ok(*state, &c, line);
}

struct error_case {
	const char *text;
	unsigned line;
	const char *reason;
};

#define LONG40 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define LONG160 LONG40 LONG40 LONG40 LONG40

static const struct error_case error_cases[] = {
	/* where */
	{ "[limits]\nmax_tasks = 5\n[limit]\n", 3, "unknown section [limit]" },
	{ "[limit]\nmax_tasks = 5\n", 1, "unknown section [limit]" },
	{ "\xEF\xBB\xBF[limit]\n", 1, "unknown section [limit]" },
	{ "[ limits ]\n", 1, "unknown section [ limits ]" },
	{ "[limits]\n\n; comment\nmaxtasks = 5\n", 4, "unknown key 'maxtasks' in [limits]" },
	{ "[tasks]\nmax_tasks = 5\n", 2, "unknown key 'max_tasks' in [tasks]" },
	{ "[limits]\nMax_Tasks = 5\n", 2, "unknown key 'Max_Tasks' in [limits]" },
	{ "max_tasks = 5\n", 1, "key 'max_tasks' before any [section]" },
	/* inih's syntax errors */
	{ "[limits]\nmax_tasks\n", 2, "syntax error" },
	{ "[limits\nmax_tasks = 5\n", 1, "syntax error" },
	{ "[limits ;]\n", 1, "syntax error" },
	/* only the first error counts, whoever finds it */
	{ "[limits]\nbogus\nmax_tasks = 0\n", 2, "syntax error" },
	{ "[limits]\nmax_tasks = 0\nbogus\n", 2, "[limits] max_tasks: 0 is out of range (1..1000000)" },
	{ "[limits]\nbogus\n[limit]\n", 2, "syntax error" },
	{ "[limit]\nbogus\n", 1, "unknown section [limit]" },
	{ "[limits]\nmax_tasks = x\nmax_pools = y\n", 2, "[limits] max_tasks: 'x' is not a whole number" },
	/* once per file, and only lists continue */
	{ "[limits]\nmax_tasks = 5\n[tasks]\n[limits]\nmax_tasks = 6\n", 5,
	  "[limits] max_tasks: already set on line 2" },
	{ "[limits]\nmax_tasks = 5\n  6\n", 3,
	  "[limits] max_tasks: indented line continues the value; only lists may span lines" },
	{ "[limits]\nmax_tasks = 5\n\n\tmax_pools = 6\n", 4,
	  "[limits] max_tasks: indented line continues the value; only lists may span lines" },
	{ "[limits]\nmax_tasks = 5\n  [tasks]\n", 3,
	  "[limits] max_tasks: indented line continues the value; only lists may span lines" },
	/* values */
	{ "[tasks]\nhistory = 12x\n", 2, "[tasks] history: '12x' is not a whole number" },
	{ "[tasks]\nhistory = -1\n", 2, "[tasks] history: '-1' is not a whole number" },
	{ "[tasks]\nhistory = +1\n", 2, "[tasks] history: '+1' is not a whole number" },
	{ "[tasks]\nhistory =\n", 2, "[tasks] history: '' is not a whole number" },
	{ "[tasks]\nhistory = 1000001\n", 2, "[tasks] history: 1000001 is out of range (0..1000000)" },
	{ "[tasks]\nhistory = 99999999999999999999999\n", 2,
	  "[tasks] history: 99999999999999999999999 is out of range (0..1000000)" },
	{ "[limits]\nmax_write = 1Q\n", 2,
	  "[limits] max_write: '1Q' is not a size (e.g. 4096, 64K, 1M, 1G)" },
	{ "[limits]\nmax_write = -1K\n", 2,
	  "[limits] max_write: '-1K' is not a size (e.g. 4096, 64K, 1M, 1G)" },
	{ "[tasks]\nkill_grace = 5 parsecs\n", 2,
	  "[tasks] kill_grace: '5 parsecs' is not a duration (e.g. 250ms, 2s, 5m, 1h)" },
	{ "[tasks]\nkill_grace = -1s\n", 2,
	  "[tasks] kill_grace: '-1s' is not a duration (e.g. 250ms, 2s, 5m, 1h)" },
	{ "[fuse]\nauto_unmount = maybe\n", 2,
	  "[fuse] auto_unmount: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)" },
	{ "[fuse]\nauto_unmount = True\n", 2,
	  "[fuse] auto_unmount: 'True' is not a boolean (true/false, yes/no, on/off, 1/0)" },
	{ "[unmount]\npolicy = stop\n", 2, "[unmount] policy: 'stop' is not term, kill or leave" },
	{ "[log]\nlevel = verbose\n", 2, "[log] level: 'verbose' is not error, warn, info or debug" },
	{ "[log]\nlevel =\n", 2, "[log] level: '' is not error, warn, info or debug" },
	{ "[state]\ndir = var/lib/pcfs\n", 2, "[state] dir: 'var/lib/pcfs' is not an absolute path" },
	{ "[state]\ndir = /" LONG160 "\n", 2, "[state] dir: longer than 160 bytes" },
	{ "[access]\nallow_users = root, pcfs-no-such-user\n", 2,
	  "[access] allow_users: unknown user 'pcfs-no-such-user'" },
	{ "[access]\nallow_groups = pcfs-no-such-group\n", 2,
	  "[access] allow_groups: unknown group 'pcfs-no-such-group'" },
	{ "[access]\nallow_users = 0,\n  pcfs-no-such-user\n", 3,
	  "[access] allow_users: unknown user 'pcfs-no-such-user'" },
	{ "[access]\nallow_users = 4294967295\n", 2,
	  "[access] allow_users: 4294967295 is not a valid user id" },
	{ "[access]\nallow_groups = 99999999999\n", 2,
	  "[access] allow_groups: 99999999999 is not a valid group id" },
	{ "[access]\nallow_users = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
	  "  17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32\n"
	  "allow_users = 32, 33\n", 4,
	  "[access] allow_users: more than 32 entries" },
};

/* Every error: its exact text, and c left untouched. */
static void test_errors(void **state)
{
	struct fx *fx = *state;
	struct pcfs_config c, before;
	char err[ERRLEN], want[ERRLEN + PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		const struct error_case *e = &error_cases[i];

		config_defaults(&c);
		c.max_tasks = 77;
		memcpy(&before, &c, sizeof(c));
		snprintf(want, sizeof(want), "%s:%u: %s", fx->path, e->line, e->reason);
		if (load_over(fx, &c, e->text, err) != -1)
			fail_msg("case %zu loaded:\n%s", i, e->text);
		if (strcmp(err, want))
			fail_msg("case %zu:\n  got  %s\n  want %s", i, err, want);
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static void test_line_too_long(void **state)
{
	struct fx *fx = *state;
	struct pcfs_config c;
	char line[INI_MAX_LINE + 1], text[INI_MAX_LINE + 32], err[ERRLEN], want[ERRLEN + PATH_MAX];

	/* One byte more than test_syntax_variants' longest. */
	memset(line, 'x', sizeof(line));
	line[0] = ';';
	line[INI_MAX_LINE - 1] = '\n';
	line[INI_MAX_LINE] = '\0';
	snprintf(text, sizeof(text), "[limits]\n%s[bogus]\n", line);
	config_defaults(&c);
	assert_int_equal(load_over(fx, &c, text, err), -1);
	snprintf(want, sizeof(want), "%s:2: line too long (at most %d bytes)", fx->path, INI_MAX_LINE - 2);
	assert_string_equal(err, want);
}

static void test_file_errors(void **state)
{
	struct fx *fx = *state;
	struct pcfs_config c;
	char err[ERRLEN], want[ERRLEN + PATH_MAX], small[12];

	config_defaults(&c);
	snprintf(fx->path, sizeof(fx->path), "%s/missing.ini", fx->dir);
	assert_int_equal(config_load(&c, fx->path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot open: %s", fx->path, strerror(ENOENT));
	assert_string_equal(err, want);

	assert_int_equal(config_load(&c, fx->dir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot read: %s", fx->dir, strerror(EISDIR));
	assert_string_equal(err, want);

	/* A short buffer gets a truncated, terminated message. */
	assert_int_equal(config_load(&c, "/nonexistent.ini", small, sizeof(small)), -1);
	assert_string_equal(small, "/nonexisten");
}

/* Boundaries of each numeric type: below, at, at, above. */
struct range_case {
	const char *section, *key;
	const char *below, *min, *max, *above;
	const char *range;
};

static const struct range_case range_cases[] = {
	{ "limits", "max_pools", "0", "1", "10000", "10001", "1..10000" },
	{ "tasks", "history", NULL, "0", "1000000", "1000001", "0..1000000" },
	{ "limits", "max_write", "63", "64", "64M", "67108865", "64..64M" },
	{ "tasks", "output_max", NULL, "0", "1G", "1.5G", "0..1G" },
	{ "channels", "max_bytes", "1023", "1K", "4G", "4.5G", "1K..4G" },
	{ "tasks", "default_time", "0", "1ms", "720h", "721h", "1ms..720h" },
	{ "memory", "sample_period", "9ms", "0.01", "1h", "3600001ms", "10ms..1h" },
	{ "slurm", "poll_interval", "99ms", "100ms", "10m", "601s", "100ms..10m" },
	{ "unmount", "grace", NULL, "0", "60m", "1.5h", "0..1h" },
};

static void expect_range_error(struct fx *fx, const struct range_case *r, const char *v)
{
	struct pcfs_config c;
	char text[256], err[ERRLEN], want[ERRLEN + PATH_MAX];

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", r->section, r->key, v);
	snprintf(want, sizeof(want), "%s:2: [%s] %s: %s is out of range (%s)", fx->path, r->section,
		 r->key, v, r->range);
	config_defaults(&c);
	assert_int_equal(load_over(fx, &c, text, err), -1);
	assert_string_equal(err, want);
}

static void expect_loads(struct fx *fx, const struct range_case *r, const char *v)
{
	struct pcfs_config c;
	char text[256];

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", r->section, r->key, v);
	load_ok(fx, &c, text);
}

static void test_ranges(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(range_cases); i++) {
		const struct range_case *r = &range_cases[i];

		if (r->below)
			expect_range_error(*state, r, r->below);
		expect_loads(*state, r, r->min);
		expect_loads(*state, r, r->max);
		expect_range_error(*state, r, r->above);
	}
}

static void test_bools(void **state)
{
	static const struct { const char *text; bool v; } cases[] = {
		{ "true", true }, { "yes", true }, { "on", true }, { "1", true },
		{ "false", false }, { "no", false }, { "off", false }, { "0", false },
	};
	struct pcfs_config c;
	char text[128];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "[fuse]\nauto_unmount = %s\n[access]\nallow_other = %s\n",
			 cases[i].text, cases[i].text);
		load_ok(*state, &c, text);
		assert_int_equal(c.auto_unmount, cases[i].v);
		assert_int_equal(c.allow_other, cases[i].v);
	}
}

static void test_enums(void **state)
{
	static const char *const policies[] = { "term", "kill", "leave" };
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	struct pcfs_config c;
	char text[128];

	for (unsigned i = 0; i < ARRAY_SIZE(policies); i++) {
		snprintf(text, sizeof(text), "[unmount]\npolicy = %s\n", policies[i]);
		load_ok(*state, &c, text);
		assert_int_equal(c.unmount_policy, i);
		assert_string_equal(unmount_policy_name(c.unmount_policy), policies[i]);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(levels); i++) {
		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", levels[i]);
		load_ok(*state, &c, text);
		assert_int_equal(c.log_level, i);
		assert_string_equal(log_level_name(c.log_level), levels[i]);
	}
}

static void assert_ids(const uint32_t *ids, size_t n, const uint32_t *want, size_t nwant)
{
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], want[i]);
}

static void test_id_lists(void **state)
{
	struct fx *fx = *state;
	struct pcfs_config c;
	char err[ERRLEN];

	load_ok(fx, &c, "[access]\nallow_users = root\nallow_groups = root\n");
	assert_ids(c.allow_users, c.n_allow_users, (uint32_t[]){ 0 }, 1);
	assert_ids(c.allow_groups, c.n_allow_groups, (uint32_t[]){ 0 }, 1);

	/* Numbers need no passwd entry; duplicates count once. */
	load_ok(fx, &c, "[access]\nallow_users = 0\nallow_groups = 4000000000 0,root\n");
	assert_ids(c.allow_users, c.n_allow_users, (uint32_t[]){ 0 }, 1);
	assert_ids(c.allow_groups, c.n_allow_groups, (uint32_t[]){ 4000000000u, 0 }, 2);

	/* Commas and/or blanks; continuation lines and repeats add. */
	load_ok(fx, &c, "[access]\nallow_users = 1 2,3 ,, 4,\n\t5\n ; a comment\n\n   6,7\n"
			"allow_groups = 8\n[access]\nallow_users = 9\n");
	assert_ids(c.allow_users, c.n_allow_users, (uint32_t[]){ 1, 2, 3, 4, 5, 6, 7, 9 }, 8);
	assert_ids(c.allow_groups, c.n_allow_groups, (uint32_t[]){ 8 }, 1);

	/* Exactly CONFIG_LIST_MAX fit. */
	load_ok(fx, &c, "[access]\nallow_users = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
			"  17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32\n");
	assert_int_equal(c.n_allow_users, CONFIG_LIST_MAX);
	assert_int_equal(c.allow_users[CONFIG_LIST_MAX - 1], 32);

	/* The first mention in a file replaces what c had; empty clears. */
	config_defaults(&c);
	c.allow_users[0] = 5;
	c.allow_users[1] = 6;
	c.n_allow_users = 2;
	c.allow_groups[0] = 7;
	c.n_allow_groups = 1;
	assert_int_equal(load_over(fx, &c, "[access]\nallow_users = 6\nallow_groups =\n", err), 0);
	assert_ids(c.allow_users, c.n_allow_users, (uint32_t[]){ 6 }, 1);
	assert_int_equal(c.allow_users[1], 0); /* no stale entry behind the count */
	assert_int_equal(c.n_allow_groups, 0);
	assert_int_equal(c.allow_groups[0], 0);
}

/* Environment variables config_find reads, saved around each find test. */
static const char *const find_vars[] = { "PCFS_CONFIG", "XDG_CONFIG_HOME", "HOME" };

struct find_fx {
	struct fx fx;   /* first: the tests take a find_fx as a fx */
	char *saved[ARRAY_SIZE(find_vars)];
};

static int find_setup(void **state)
{
	struct find_fx *ff = calloc(1, sizeof(*ff));

	if (!ff || make_scratch(&ff->fx)) {
		free(ff);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(find_vars); i++) {
		const char *v = getenv(find_vars[i]);

		ff->saved[i] = v ? strdup(v) : NULL;
		unsetenv(find_vars[i]);
	}
	*state = ff;
	return 0;
}

static int find_teardown(void **state)
{
	struct find_fx *ff = *state;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(find_vars); i++) {
		if (ff->saved[i])
			setenv(find_vars[i], ff->saved[i], 1);
		else
			unsetenv(find_vars[i]);
		free(ff->saved[i]);
	}
	r = remove_scratch(&ff->fx);
	free(ff);
	return r;
}

/* Create dir/rel (and its directories) holding an empty file. */
static void make_ini(const char *dir, const char *rel, char *path, size_t len)
{
	char *slash;

	snprintf(path, len, "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*slash = '/';
	}
	write_file(path, "");
}

/* What config_find gives when no user-level file applies. */
static const char *system_config(void)
{
	return access("/etc/pcfs/pcfs.ini", F_OK) == 0 ? "/etc/pcfs/pcfs.ini" : NULL;
}

static void assert_found(const char *got, const char *want)
{
	if (!want)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

static void test_find(void **state)
{
	struct find_fx *ff = *state;
	const char *dir = ff->fx.dir;
	char buf[CONFIG_PATH_MAX], xdg[PATH_MAX + 8], home[PATH_MAX + 8], other[PATH_MAX + 8];
	char xdg_ini[PATH_MAX + 32], home_ini[PATH_MAX + 32];
	char tiny[8];

	snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	make_ini(dir, "xdg/pcfs/pcfs.ini", xdg_ini, sizeof(xdg_ini));
	make_ini(dir, "home/.config/pcfs/pcfs.ini", home_ini, sizeof(home_ini));

	/* Nothing set at all. */
	assert_found(config_find(NULL, buf, sizeof(buf)), system_config());

	/* $HOME, then $XDG_CONFIG_HOME instead of it (no fallback). */
	setenv("HOME", home, 1);
	assert_found(config_find(NULL, buf, sizeof(buf)), home_ini);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	assert_found(config_find(NULL, buf, sizeof(buf)), xdg_ini);
	setenv("XDG_CONFIG_HOME", other, 1);
	assert_found(config_find(NULL, buf, sizeof(buf)), system_config());
	setenv("XDG_CONFIG_HOME", "relative/xdg", 1); /* invalid per the XDG spec */
	assert_found(config_find(NULL, buf, sizeof(buf)), home_ini);
	setenv("XDG_CONFIG_HOME", xdg, 1);

	/* $PCFS_CONFIG wins over those, existing or not; empty means unset. */
	setenv("PCFS_CONFIG", "/nonexistent/pcfs.ini", 1);
	assert_found(config_find(NULL, buf, sizeof(buf)), "/nonexistent/pcfs.ini");
	setenv("PCFS_CONFIG", "", 1);
	assert_found(config_find(NULL, buf, sizeof(buf)), xdg_ini);
	setenv("PCFS_CONFIG", "/nonexistent/pcfs.ini", 1);

	/* The explicit path wins over everything, existing or not. */
	assert_found(config_find("/nonexistent/explicit.ini", buf, sizeof(buf)),
		     "/nonexistent/explicit.ini");
	assert_ptr_equal(config_find("x.ini", buf, sizeof(buf)), buf);

	/* Never truncated: one too long for buf comes back as it is. */
	assert_string_equal(config_find("/a/long/path.ini", tiny, sizeof(tiny)), "/a/long/path.ini");
	unsetenv("PCFS_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	assert_found(config_find(NULL, tiny, sizeof(tiny)), NULL);
}

static void round_trip(struct fx *fx, const struct pcfs_config *c)
{
	struct pcfs_config back;
	char err[ERRLEN], *text = config_render(c), *again;

	assert_non_null(text);
	config_defaults(&back);
	back.max_tasks = 3; /* loading must set every key */
	back.allow_users[0] = 3;
	back.n_allow_users = 1;
	if (load_over(fx, &back, text, err))
		fail_msg("rendered text does not load: %s\n%s", err, text);
	assert_config_equal(&back, c);
	again = config_render(&back);
	assert_string_equal(again, text);
	free(again);
	free(text);
}

static void test_round_trip(void **state)
{
	struct fx *fx = *state;
	struct pcfs_config c;
	char text[1024];
	size_t n;

	config_defaults(&c);
	round_trip(fx, &c);

	load_ok(fx, &c, full_text);
	round_trip(fx, &c);

	/* Values without a whole unit, zeros, extremes, a full list, the
	 * longest path. */
	load_ok(fx, &c, "[limits]\nmax_write = 1000\nmax_queued = 10000000\n"
			"[tasks]\ndefault_time = 1.5s\nkill_grace = 0\noutput_max = 0\n"
			"[unmount]\npolicy = leave\ngrace = 1h\n"
			"[memory]\nsample_period = 1.5m\n"
			"[channels]\nmaxmsg = 1\nmax_bytes = 1.5K\n"
			"[state]\ndir = /" LONG40 LONG40 LONG40 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
			"[log]\nlevel = error\n[fuse]\nauto_unmount = off\n"
			"[slurm]\npoll_interval = 10m\n");
	assert_int_equal(strlen(c.state_dir), 160);
	round_trip(fx, &c);

	n = (size_t)snprintf(text, sizeof(text), "[access]\nallow_users =");
	for (unsigned i = 0; i < CONFIG_LIST_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%u", i && i % 8 == 0 ? "\n " : " ",
				      4294967294u - i);
	snprintf(text + n, sizeof(text) - n, "\nallow_groups = 0 1 2 3 4 5 6 7 8 9\n");
	load_ok(fx, &c, text);
	round_trip(fx, &c);
}

/* [state]: dir's words (auto is the default, stored empty; none), keep and
 * sync, and the same checks for a key set from the command line. */
static void test_state_keys(void **state)
{
	struct fx *fx = *state;
	struct pcfs_config c, d;
	char err[ERRLEN];

	load_ok(fx, &c, "[state]\ndir = auto\n");
	assert_string_equal(c.state_dir, "");
	load_ok(fx, &c, "[state]\ndir = none\nkeep = yes\nsync = always\nsync_ms = 2s\n");
	assert_string_equal(c.state_dir, "none");
	assert_int_equal(c.state_keep, KEEP_YES);
	assert_int_equal(c.state_sync, SYNC_ALWAYS);
	assert_int_equal(c.state_sync_ms, 2000);
	config_defaults(&d);
	assert_int_equal(d.state_keep, KEEP_AUTO);
	assert_int_equal(d.state_sync, SYNC_BATCH);
	assert_int_equal(d.state_sync_ms, 50);
	config_defaults(&c);
	assert_int_equal(load_over(fx, &c, "[state]\nsync = often\n", err), -1);
	assert_non_null(strstr(err, "[state] sync: 'often' is not none, batch or always"));
	/* -o state_dir=: one key, checked as a file's line, "WHERE: reason" */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "-o state_dir", "state", "dir", "/srv/st", err, ERRLEN), 0);
	assert_string_equal(c.state_dir, "/srv/st");
	assert_int_equal(config_set(&c, "-o state_dir", "state", "dir", "none", err, ERRLEN), 0);
	assert_string_equal(c.state_dir, "none");
	assert_int_equal(config_set(&c, "-o state_dir", "state", "dir", "rel", err, ERRLEN), -1);
	assert_string_equal(err, "-o state_dir: [state] dir: 'rel' is not an absolute path");
	assert_string_equal(c.state_dir, "none");   /* unchanged by a refusal */
}

static void test_render(void **state)
{
	/* In table order, canonical form. */
	static const char *const lines[] = {
		"[limits]\n", "\nmax_tasks = 20000\n", "\nmax_write = 1M\n",
		"\n\n[tasks]\n", "\ndefault_time = 10s\n", "\nkill_grace = 2s\n", "\noutput_max = 1M\n",
		"\n\n[unmount]\n", "\npolicy = term\n", "\ngrace = 2s\n",
		"\n\n[log]\n", "\nlines = 1000\n", "\nlevel = info\n",
		"\n\n[fuse]\n", "\nthreads = 16\n", "\nauto_unmount = true\n",
		"\n\n[memory]\n", "\nsample_period = 200ms\n", "\nmemlog_max = 3000\n",
		"\n\n[pools]\n", "\ndefault_workers = 0\n",
		"\n\n[channels]\n", "\ncapacity = 1024\n", "\nmaxmsg = 64K\n", "\nmax_bytes = 64M\n",
		"\n\n[state]\n", "\ndir = auto\n", "\nkeep = auto\n", "\nsync = batch\n", "\nsync_ms = 50ms\n",
		"\n\n[access]\n", "\nallow_other = false\n", "\nallow_users =\n", "\nallow_groups =\n",
		"\n\n[slurm]\n", "\npoll_interval = 1s\n",
	};
	struct pcfs_config c;
	char *text, *at;

	(void)state;
	config_defaults(&c);
	text = config_render(&c);
	assert_non_null(text);
	assert_true(strncmp(text, "[limits]\n", 9) == 0);
	at = text;
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		at = strstr(at, lines[i]);
		if (!at)
			fail_msg("missing or out of order: %s\n--- render:\n%s", lines[i], text);
	}
	assert_non_null(strstr(text, "\n; tasks known at once, live plus kept history (the oldest ended are forgotten to make room; EAGAIN once live tasks fill it)\n"
				     "; 1..1000000; default 20000\nmax_tasks = 20000\n"));
	assert_non_null(strstr(text, "\n; 1ms..720h; default 10s\ndefault_time = 10s\n"));
	assert_non_null(strstr(text, "\n; term|kill|leave; default term\npolicy = term\n"));
	assert_non_null(strstr(text, "\n; true|false; default true\nauto_unmount = true\n"));
	assert_non_null(strstr(text, "\n; user names or uids, at most 32; default empty\nallow_users =\n"));
	free(text);

	/* Long lists wrap onto continuation lines. */
	for (unsigned i = 0; i < 10; i++)
		c.allow_users[i] = i;
	c.n_allow_users = 10;
	c.allow_groups[0] = 100;
	c.n_allow_groups = 1;
	c.default_time_ms = 1500;
	c.max_write = 1000;
	c.chan_max_bytes = 3ull << 30;
	strcpy(c.state_dir, "/var/lib/pcfs");
	text = config_render(&c);
	assert_non_null(strstr(text, "\nallow_users = 0, 1, 2, 3, 4, 5, 6, 7,\n\t8, 9\n"));
	assert_non_null(strstr(text, "\nallow_groups = 100\n"));
	assert_non_null(strstr(text, "\ndefault_time = 1500ms\n"));
	assert_non_null(strstr(text, "\nmax_write = 1000\n"));
	assert_non_null(strstr(text, "\nmax_bytes = 3G\n"));
	assert_non_null(strstr(text, "\ndir = /var/lib/pcfs\n"));
	free(text);
}

/* The lines of text that are not blank or comments, joined. */
static char *settings_of(const char *text)
{
	char *out = calloc(1, strlen(text) + 1), *o = out;

	assert_non_null(out);
	while (*text) {
		size_t len = strcspn(text, "\n");
		size_t sp = strspn(text, " \t");

		if (sp < len && !strchr(";#", text[sp])) {
			memcpy(o, text, len);
			o += len;
			*o++ = '\n';
		}
		text += len + (text[len] == '\n');
	}
	return out;
}

/* examples/pcfs.ini loads, sets every key to its default, in table order. */
static void test_example(void **state)
{
	const char *src = getenv("PCFS_SOURCE_DIR");
	struct pcfs_config c, def;
	char path[PATH_MAX], err[ERRLEN], *text, *example, *want, *got;
	FILE *f;
	long len;

	(void)state;
	snprintf(path, sizeof(path), "%s/examples/pcfs.ini", src && *src ? src : ".");
	config_defaults(&def);
	config_defaults(&c);
	c.history = 1;
	if (config_load(&c, path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_config_equal(&c, &def);

	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	example = calloc(1, (size_t)len + 1);
	assert_non_null(example);
	assert_int_equal(fread(example, 1, (size_t)len, f), (size_t)len);
	fclose(f);

	text = config_render(&def);
	want = settings_of(text);
	got = settings_of(example);
	assert_string_equal(got, want);
	free(got);
	free(want);
	free(text);
	free(example);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_variants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find, find_setup, find_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test(test_render),
		cmocka_unit_test_setup_teardown(test_state_keys, setup, teardown),
		cmocka_unit_test(test_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
