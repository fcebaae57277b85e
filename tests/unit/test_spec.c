/* test_spec.c - the task line grammar and the value helpers (engine/spec.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spec.h"

#define CPUS 8          /* what COUNT 0 means in these tests */
#define ERRLEN 256

/* ---- helpers ----------------------------------------------------------- */

static int parse_len(const char *line, size_t len, struct task_spec *s, char *err)
{
	return spec_parse(line, len, CPUS, s, err, ERRLEN);
}

/* Parse a line that must be valid; the caller frees s. */
static void ok(const char *line, struct task_spec *s)
{
	char err[ERRLEN] = "";
	int rc = parse_len(line, strlen(line), s, err);

	if (rc != 0)
		fail_msg("'%s' failed with %d: %s", line, rc, err);
	assert_string_equal(err, "");
}

/* An error message is one printable line. */
static void assert_one_line(const char *err)
{
	const unsigned char *p;

	assert_true(err[0] != '\0');
	for (p = (const unsigned char *)err; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			fail_msg("non-printable byte 0x%02x in error '%s'", *p, err);
}

/* A failed parse leaves nothing to free. */
static void assert_clean(const struct task_spec *s)
{
	assert_null(s->line);
	assert_null(s->argv);
	assert_null(s->env);
	assert_null(s->cwd);
	assert_null(s->stdin_chan);
	assert_null(s->stdout_chan);
	assert_int_equal(s->argc, 0);
	assert_int_equal(s->nenv, 0);
}

static void bad_len(const char *line, size_t len, int want_rc, const char *want)
{
	char err[ERRLEN];
	struct task_spec s;
	int rc;

	memset(err, 'x', sizeof(err));
	rc = parse_len(line, len, &s, err);
	if (rc != want_rc)
		fail_msg("'%.*s': got %d (%s), want %d", (int)len, line, rc,
			 rc ? err : "", want_rc);
	assert_one_line(err);
	if (!strstr(err, want))
		fail_msg("'%.*s': error '%s' lacks '%s'", (int)len, line, err, want);
	assert_clean(&s);
}

/* Parse a line that must fail with EINVAL and a message containing want. */
static void bad(const char *line, const char *want)
{
	bad_len(line, strlen(line), -EINVAL, want);
}

/* pre, then c n times, then post: lines with long words. */
static const char *build(char *buf, size_t size, const char *pre, char c,
			 size_t n, const char *post)
{
	size_t a = strlen(pre), b = strlen(post);

	assert_true(a + n + b < size);
	memcpy(buf, pre, a);
	memset(buf + a, c, n);
	memcpy(buf + a + n, post, b + 1);
	return buf;
}

#define BUILD(buf, pre, c, n, post) build((buf), sizeof(buf), (pre), (c), (n), (post))

/* ---- workloads and defaults -------------------------------------------- */

static void test_workloads(void **state)
{
	static const struct { const char *line; enum workload w; bool builtin; } t[] = {
		{ "cpu", WL_CPU, true },       { "io", WL_IO, true },
		{ "sleep", WL_SLEEP, true },   { "mem", WL_MEM, true },
		{ "cow", WL_COW, true },       { "stack", WL_STACK, true },
		{ "noop", WL_NOOP, true },     { "exec true", WL_EXEC, false },
		{ "sh true", WL_SH, false },
	};
	struct task_spec s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ok(t[i].line, &s);
		assert_int_equal(s.workload, t[i].w);
		assert_int_equal(workload_is_builtin(s.workload), t[i].builtin);
		assert_string_equal(s.line, t[i].line);
		assert_int_equal(s.count, 1);
		assert_int_equal(s.kind, TASK_PROCESS);
		assert_false(s.kind_set);
		assert_int_equal(s.method, METHOD_DEFAULT);
		assert_int_equal(s.time_ms, SPEC_UNSET);
		assert_int_equal(s.ops, SPEC_UNSET);
		assert_int_equal(s.size, SPEC_UNSET);
		assert_int_equal(s.touch_pct, SPEC_UNSET);
		assert_int_equal(s.write_pct, SPEC_UNSET);
		assert_int_equal(s.step, SPEC_UNSET);
		assert_int_equal(s.rate_ms, SPEC_UNSET);
		assert_int_equal(s.depth, SPEC_UNSET);
		assert_int_equal(s.timeout_ms, SPEC_UNSET);
		assert_int_equal(s.retries, 0);
		assert_int_equal(s.nice, 0);
		assert_false(s.nice_set);
		assert_false(s.gil_set);
		assert_string_equal(s.name, "");
		assert_null(s.cwd);
		assert_null(s.stdin_chan);
		assert_null(s.stdout_chan);
		assert_null(s.env);
		assert_int_equal(s.nenv, 0);
		if (t[i].builtin) {
			assert_null(s.argv);
			assert_int_equal(s.argc, 0);
		}
		spec_free(&s);
	}
}

static void test_unknown_workload(void **state)
{
	char err[ERRLEN];
	struct task_spec s;
	int w;

	(void)state;
	bad("x", "unknown workload 'x' (one of: cpu io sleep mem cow stack noop exec sh)");
	bad("CPU", "unknown workload 'CPU'");
	bad("cpux 2", "unknown workload 'cpux'");
	bad("time=1s cpu", "unknown workload 'time=1s'");
	/* The list in the message is the list the parser knows. */
	assert_int_equal(spec_parse("nope", 4, CPUS, &s, err, sizeof(err)), -EINVAL);
	for (w = 0; w < WL__COUNT; w++) {
		char word[16];

		snprintf(word, sizeof(word), " %s", workload_name(w));
		assert_non_null(strstr(err, word));
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(workload_name(WL_CPU), "cpu");
	assert_string_equal(workload_name(WL_IO), "io");
	assert_string_equal(workload_name(WL_SLEEP), "sleep");
	assert_string_equal(workload_name(WL_MEM), "mem");
	assert_string_equal(workload_name(WL_COW), "cow");
	assert_string_equal(workload_name(WL_STACK), "stack");
	assert_string_equal(workload_name(WL_NOOP), "noop");
	assert_string_equal(workload_name(WL_EXEC), "exec");
	assert_string_equal(workload_name(WL_SH), "sh");
	assert_null(workload_name(WL__COUNT));
	assert_null(workload_name((enum workload)-1));

	assert_string_equal(method_name(METHOD_DEFAULT), "default");
	assert_string_equal(method_name(METHOD_FORK), "fork");
	assert_string_equal(method_name(METHOD_SPAWN), "spawn");
	assert_string_equal(method_name(METHOD_VFORK), "vfork");
	assert_string_equal(method_name(METHOD_CLONE), "clone");
	assert_string_equal(method_name(METHOD_PTHREAD), "pthread");
	assert_null(method_name(METHOD__COUNT));

	assert_true(workload_is_builtin(WL_CPU));
	assert_true(workload_is_builtin(WL_NOOP));
	assert_false(workload_is_builtin(WL_EXEC));
	assert_false(workload_is_builtin(WL_SH));
	assert_false(workload_is_builtin(WL__COUNT));
}

/* ---- the line as a whole ------------------------------------------------- */

static void test_line_checks(void **state)
{
	char buf[SPEC_LINE_MAX + 2];
	struct task_spec s;
	char err[ERRLEN];
	size_t n;

	(void)state;
	bad("", "empty line");
	bad("   ", "empty line");
	bad(" \t \t", "empty line");
	bad_len(NULL, 0, -EINVAL, "empty line");

	bad("cpu\n", "control character 0x0a at column 4");
	bad("cpu\r", "control character 0x0d");
	bad("cpu \x01", "control character 0x01 at column 5");
	bad("sh echo \x1b[1m", "control character 0x1b");
	bad("sh echo \x7f", "control character 0x7f");
	bad_len("cpu\0 2", 6, -EINVAL, "control character 0x00 at column 4");
	/* Checked before anything else: even an unknown workload. */
	bad("bogus \x02", "control character 0x02");

	/* Longest line: accepted; one byte more: E2BIG, whatever it holds. */
	n = strlen("sh echo ");
	memcpy(buf, "sh echo ", n);
	memset(buf + n, 'a', SPEC_LINE_MAX - n);
	buf[SPEC_LINE_MAX] = '\0';
	assert_int_equal(parse_len(buf, SPEC_LINE_MAX, &s, err), 0);
	assert_int_equal(strlen(s.argv[0]), SPEC_LINE_MAX - strlen("sh "));
	assert_int_equal(strlen(s.line), SPEC_LINE_MAX);
	spec_free(&s);
	buf[SPEC_LINE_MAX] = 'a';
	buf[SPEC_LINE_MAX + 1] = '\0';
	bad_len(buf, SPEC_LINE_MAX + 1, -E2BIG, "at most 65536");
	bad_len(BUILD(buf, "", ' ', SPEC_LINE_MAX + 1, ""), SPEC_LINE_MAX + 1, -E2BIG, "65537");

	/* len is honoured: the rest of the buffer is not read. */
	assert_int_equal(parse_len("cpu 2 junk", 5, &s, err), 0);
	assert_int_equal(s.count, 2);
	assert_string_equal(s.line, "cpu 2");
	spec_free(&s);
}

static void test_trim_and_blanks(void **state)
{
	struct task_spec s;

	(void)state;
	ok(" \t cpu \t 3\ttime=2s \t ", &s);
	assert_string_equal(s.line, "cpu \t 3\ttime=2s");
	assert_int_equal(s.count, 3);
	assert_int_equal(s.time_ms, 2000);
	spec_free(&s);
}

/* ---- COUNT -------------------------------------------------------------- */

static void test_count(void **state)
{
	struct task_spec s;
	char err[ERRLEN];

	(void)state;
	ok("cpu 4", &s);
	assert_int_equal(s.count, 4);
	spec_free(&s);

	ok("cpu 0", &s);
	assert_int_equal(s.count, CPUS);
	spec_free(&s);

	assert_int_equal(spec_parse("cpu 0", 5, 3, &s, err, sizeof(err)), 0);
	assert_int_equal(s.count, 3);
	spec_free(&s);

	/* A caller that could not count CPUs still gets a usable count. */
	assert_int_equal(spec_parse("cpu 0", 5, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(s.count, 1);
	spec_free(&s);

	ok("cpu 007", &s);
	assert_int_equal(s.count, 7);
	spec_free(&s);

	ok("cpu 100000", &s);
	assert_int_equal(s.count, SPEC_COUNT_MAX);
	spec_free(&s);

	ok("exec 3 ls", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.argc, 1);
	assert_string_equal(s.argv[0], "ls");
	spec_free(&s);

	ok("sh 2 echo", &s);
	assert_int_equal(s.count, 2);
	assert_string_equal(s.argv[0], "echo");
	spec_free(&s);

	bad("cpu 100001", "count 100001 is too large (at most 100000)");
	bad("cpu 99999999999999999999999", "count 99999999999999999999999 is too large");
	/* Only right after the workload, and only bare digits. */
	bad("cpu time=1s 4", "cpu takes no arguments (got '4')");
	bad("cpu '4'", "cpu takes no arguments (got '4')");
	bad("cpu 4x", "cpu takes no arguments (got '4x')");
	bad("cpu -1", "cpu takes no arguments (got '-1')");
	bad("cpu 2 3", "cpu takes no arguments (got '3')");
	bad("exec 5", "exec needs a program to run");

	ok("exec '5'", &s);     /* a program named 5 */
	assert_int_equal(s.count, 1);
	assert_string_equal(s.argv[0], "5");
	spec_free(&s);
}

/* ---- the tokenizer -------------------------------------------------------- */

static void assert_argv(const struct task_spec *s, size_t n, const char *const *want)
{
	size_t i;

	assert_int_equal(s->argc, n);
	for (i = 0; i < n; i++)
		assert_string_equal(s->argv[i], want[i]);
	assert_null(s->argv[n]);
}

#define ARGV(s, ...) do { \
	static const char *const w_[] = { __VA_ARGS__ }; \
	assert_argv((s), sizeof(w_) / sizeof(w_[0]), w_); \
} while (0)

static void test_quoting(void **state)
{
	struct task_spec s;

	(void)state;
	ok("exec printf 'a b' \"c d\" e\\ f", &s);
	ARGV(&s, "printf", "a b", "c d", "e f");
	spec_free(&s);

	/* Single quotes are literal, backslash included. */
	ok("exec x 'a\\b' 'say \"hi\"'", &s);
	ARGV(&s, "x", "a\\b", "say \"hi\"");
	spec_free(&s);

	/* Double quotes know \" and \\ only. */
	ok("exec x \"a\\\"b\" \"c\\\\d\" \"e\\nf\" \"it's\"", &s);
	ARGV(&s, "x", "a\"b", "c\\d", "e\\nf", "it's");
	spec_free(&s);

	/* Outside quotes a backslash takes any next byte. */
	ok("exec x \\'q\\' \\\"d\\\" a\\\\b \\n", &s);
	ARGV(&s, "x", "'q'", "\"d\"", "a\\b", "n");
	spec_free(&s);

	/* Pieces glue together; empty quotes make an empty argument. */
	ok("exec x a'b c'\"d\"e '' \"\"", &s);
	ARGV(&s, "x", "ab cde", "", "");
	spec_free(&s);

	/* Tabs separate too, and survive inside quotes. */
	ok("exec\tx\t'a\tb'", &s);
	ARGV(&s, "x", "a\tb");
	spec_free(&s);

	/* Quoted workload names and option values. */
	ok("'cpu' name=\"a-b\" cwd='/tmp/my dir'", &s);
	assert_int_equal(s.workload, WL_CPU);
	assert_string_equal(s.name, "a-b");
	assert_string_equal(s.cwd, "/tmp/my dir");
	spec_free(&s);

	bad("exec echo 'abc", "unterminated single quote in ''abc'");
	bad("exec echo \"abc def", "unterminated double quote in '\"abc def'");
	bad("exec echo \"abc\\\"", "unterminated double quote");
	bad("cpu name='x", "unterminated single quote in 'name='x'");
	bad("'cpu", "unterminated single quote");
	bad("exec echo abc\\", "trailing backslash in 'abc\\'");
}

static void test_dashdash(void **state)
{
	struct task_spec s;

	(void)state;
	ok("exec -- x=y", &s);
	ARGV(&s, "x=y");
	spec_free(&s);

	ok("exec timeout=1s -- time=1s ls", &s);
	assert_int_equal(s.timeout_ms, 1000);
	ARGV(&s, "time=1s", "ls");
	spec_free(&s);

	ok("exec 2 -- -- a", &s);         /* only the first -- is consumed */
	assert_int_equal(s.count, 2);
	ARGV(&s, "--", "a");
	spec_free(&s);

	ok("exec ls -- a", &s);           /* after the options it is an argument */
	ARGV(&s, "ls", "--", "a");
	spec_free(&s);

	ok("exec '--' ls", &s);           /* quoted, it is an argument */
	ARGV(&s, "--", "ls");
	spec_free(&s);

	ok("exec --x", &s);
	ARGV(&s, "--x");
	spec_free(&s);

	ok("cpu time=1s --", &s);
	assert_int_equal(s.time_ms, 1000);
	spec_free(&s);

	ok("sh -- x=1 echo $x", &s);
	assert_string_equal(s.argv[0], "x=1 echo $x");
	spec_free(&s);

	bad("cpu -- time=1s", "cpu takes no arguments (got 'time=1s')");
	bad("exec --", "exec needs a program to run");
	bad("sh --", "sh needs a command line");
}

/* ---- exec, sh, built-in arguments --------------------------------------- */

static void test_exec(void **state)
{
	char line[SPEC_LINE_MAX];
	struct task_spec s;
	size_t i;

	(void)state;
	ok("exec ls -l x=y name=z", &s);
	ARGV(&s, "ls", "-l", "x=y", "name=z");
	spec_free(&s);

	ok("exec name=job cwd=/ stdin=in stdout=out env=A=1 /bin/echo hi", &s);
	assert_string_equal(s.name, "job");
	assert_string_equal(s.cwd, "/");
	assert_string_equal(s.stdin_chan, "in");
	assert_string_equal(s.stdout_chan, "out");
	ARGV(&s, "/bin/echo", "hi");
	spec_free(&s);

	/* Uppercase or quoted key= is not an option. */
	ok("exec FOO=bar ls", &s);
	ARGV(&s, "FOO=bar", "ls");
	spec_free(&s);
	ok("exec 'x=y'", &s);
	ARGV(&s, "x=y");
	spec_free(&s);

	bad("exec", "exec needs a program to run");
	bad("exec timeout=1s", "exec needs a program to run");
	bad("exec ''", "exec needs a program to run");

	/* SPEC_ARGV_MAX arguments, program included: accepted; one more: not. */
	strcpy(line, "exec");
	for (i = 0; i < SPEC_ARGV_MAX; i++)
		strcat(line, " a");
	ok(line, &s);
	assert_int_equal(s.argc, SPEC_ARGV_MAX);
	assert_string_equal(s.argv[SPEC_ARGV_MAX - 1], "a");
	assert_null(s.argv[SPEC_ARGV_MAX]);
	spec_free(&s);
	strcat(line, " a");
	bad(line, "exec takes at most 4096 arguments");
}

static void test_sh(void **state)
{
	struct task_spec s;

	(void)state;
	ok("sh 2 timeout=5s echo \"a b\" | tr a-z A-Z", &s);
	assert_int_equal(s.workload, WL_SH);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.timeout_ms, 5000);
	assert_int_equal(s.argc, 1);
	assert_string_equal(s.argv[0], "echo \"a b\" | tr a-z A-Z");
	assert_null(s.argv[1]);
	spec_free(&s);

	/* Taken as typed: blanks, quotes, escapes and x=y after the command. */
	ok("  sh   printf '%s\\n'  \"$HOME\"   x=y  ", &s);
	assert_string_equal(s.argv[0], "printf '%s\\n'  \"$HOME\"   x=y");
	spec_free(&s);

	/* Not tokenized, so sh syntax the tokenizer would refuse is fine. */
	ok("sh echo hi # it's fine", &s);
	assert_string_equal(s.argv[0], "echo hi # it's fine");
	spec_free(&s);
	ok("sh echo \"unbalanced", &s);
	assert_string_equal(s.argv[0], "echo \"unbalanced");
	spec_free(&s);

	/* The command starts at the first token that is not an option. */
	ok("sh name=n 'x=1' echo", &s);
	assert_string_equal(s.name, "n");
	assert_string_equal(s.argv[0], "'x=1' echo");
	spec_free(&s);

	ok("sh stdin=a stdout=b cat", &s);
	assert_string_equal(s.stdin_chan, "a");
	assert_string_equal(s.stdout_chan, "b");
	assert_string_equal(s.argv[0], "cat");
	spec_free(&s);

	bad("sh", "sh needs a command line");
	bad("sh 3", "sh needs a command line");
	bad("sh timeout=5s", "sh needs a command line");
	bad("sh x=1 echo", "unknown option 'x' for sh");
	bad("sh name='a b' echo", "option 'name': bad value 'a b'");
}

static void test_builtin_args(void **state)
{
	(void)state;
	bad("cpu x", "cpu takes no arguments (got 'x')");
	bad("io 2 time=1s extra", "io takes no arguments (got 'extra')");
	bad("sleep time=1s 'a b'", "sleep takes no arguments (got 'a b')");
	bad("noop X=1", "noop takes no arguments (got 'X=1')");
	bad("mem 'y", "unterminated single quote");
	bad("stack ls -l", "stack takes no arguments (got 'ls')");
	bad("cow /bin/true", "cow takes no arguments (got '/bin/true')");
}

/* ---- options -------------------------------------------------------------- */

static void test_opt_as_method_gil(void **state)
{
	static const struct { const char *line; enum start_method m; } methods[] = {
		{ "cpu method=fork", METHOD_FORK },
		{ "cpu method=spawn", METHOD_SPAWN },
		{ "cpu method=vfork", METHOD_VFORK },
		{ "cpu method=clone", METHOD_CLONE },
		{ "exec method=spawn ls", METHOD_SPAWN },
		{ "sh method=vfork ls", METHOD_VFORK },
		{ "cpu as=thread method=pthread", METHOD_PTHREAD },
		{ "cpu method=pthread as=thread", METHOD_PTHREAD },
	};
	struct task_spec s;
	size_t i;

	(void)state;
	ok("cpu as=process", &s);
	assert_int_equal(s.kind, TASK_PROCESS);
	assert_true(s.kind_set);
	spec_free(&s);

	ok("sleep as=thread time=1s", &s);
	assert_int_equal(s.kind, TASK_THREAD);
	assert_true(s.kind_set);
	assert_int_equal(s.method, METHOD_DEFAULT);
	spec_free(&s);

	ok("exec as=process ls", &s);
	assert_true(s.kind_set);
	spec_free(&s);

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		ok(methods[i].line, &s);
		assert_int_equal(s.method, methods[i].m);
		spec_free(&s);
	}

	ok("cpu as=thread gil=1", &s);
	assert_true(s.gil_set);
	assert_true(s.gil);
	spec_free(&s);
	ok("cpu gil=0 as=thread", &s);
	assert_true(s.gil_set);
	assert_false(s.gil);
	spec_free(&s);

	bad("cpu as=fiber", "option 'as': bad value 'fiber' (expected process or thread)");
	bad("cpu as=", "option 'as': bad value ''");
	bad("cpu as=Thread", "bad value 'Thread'");
	bad("exec as=thread ls", "as=thread cannot run exec");
	bad("exec as=thread ls", "use as=process");
	bad("sh as=thread ls", "as=thread cannot run sh");

	bad("cpu method=posix_spawn", "option 'method': bad value 'posix_spawn' (expected fork, spawn, vfork, clone or pthread)");
	bad("cpu method=default", "option 'method': bad value 'default'");
	bad("cpu method=pthread", "method=pthread starts threads");
	bad("cpu as=process method=pthread", "method=pthread starts threads");
	bad("exec method=pthread ls", "method=pthread starts threads");
	bad("cpu as=thread method=fork", "method=fork cannot start a thread");
	bad("cpu method=clone as=thread", "method=clone cannot start a thread");

	bad("cpu gil=1", "gil= applies to threads (add as=thread)");
	bad("cpu as=process gil=0", "gil= applies to threads (add as=thread)");
	bad("cpu as=thread gil=2", "option 'gil': bad value '2' (expected 0 or 1)");
	bad("cpu as=thread gil=", "option 'gil': bad value ''");
	bad("exec gil=1 ls", "option 'gil' does not apply to exec");
}

static void test_opt_durations(void **state)
{
	struct task_spec s;

	(void)state;
	ok("cpu time=250ms timeout=1.5s", &s);
	assert_int_equal(s.time_ms, 250);
	assert_int_equal(s.timeout_ms, 1500);
	spec_free(&s);

	ok("sleep time=2", &s);
	assert_int_equal(s.time_ms, 2000);
	spec_free(&s);

	ok("mem rate=100us time=1h", &s);
	assert_int_equal(s.rate_ms, 1);
	assert_int_equal(s.time_ms, 3600000);
	spec_free(&s);

	ok("exec timeout=2m ls", &s);
	assert_int_equal(s.timeout_ms, 120000);
	spec_free(&s);

	bad("cpu time=0", "option 'time': bad value '0' (expected a duration above 0");
	bad("cpu time=0ms", "option 'time': bad value '0ms'");
	bad("cpu timeout=0s", "option 'timeout': bad value '0s'");
	bad("mem rate=0", "option 'rate': bad value '0'");
	bad("cpu time=-1s", "option 'time': bad value '-1s'");
	bad("cpu time=1x", "option 'time': bad value '1x'");
	bad("cpu time=", "option 'time': bad value ''");
	bad("cpu time=1000000d", "option 'time': bad value '1000000d'");
}

static void test_opt_numbers(void **state)
{
	struct task_spec s;

	(void)state;
	ok("cpu ops=1", &s);
	assert_int_equal(s.ops, 1);
	spec_free(&s);
	ok("io ops=1000000000000", &s);
	assert_int_equal(s.ops, 1000000000000LL);
	spec_free(&s);
	bad("cpu ops=0", "option 'ops': bad value '0' (expected a whole number from 1 to 1000000000000)");
	bad("cpu ops=1000000000001", "option 'ops': bad value '1000000000001'");
	bad("cpu ops=1k", "option 'ops': bad value '1k'");
	bad("cpu ops=+5", "option 'ops': bad value '+5'");

	ok("stack depth=1000000", &s);
	assert_int_equal(s.depth, 1000000);
	spec_free(&s);
	ok("stack depth=1", &s);
	assert_int_equal(s.depth, 1);
	spec_free(&s);
	bad("stack depth=0", "option 'depth': bad value '0'");
	bad("stack depth=1000001", "option 'depth': bad value '1000001'");

	ok("noop retries=100", &s);
	assert_int_equal(s.retries, 100);
	spec_free(&s);
	ok("exec retries=0 ls", &s);
	assert_int_equal(s.retries, 0);
	spec_free(&s);
	bad("noop retries=101", "option 'retries': bad value '101' (expected a whole number from 0 to 100)");
	bad("noop retries=-1", "option 'retries': bad value '-1'");

	ok("cpu nice=-20", &s);
	assert_int_equal(s.nice, -20);
	assert_true(s.nice_set);
	spec_free(&s);
	ok("sh nice=19 true", &s);
	assert_int_equal(s.nice, 19);
	assert_true(s.nice_set);
	spec_free(&s);
	ok("cpu nice=0", &s);
	assert_int_equal(s.nice, 0);
	assert_true(s.nice_set);
	spec_free(&s);
	bad("cpu nice=20", "option 'nice': bad value '20' (expected a whole number from -20 to 19)");
	bad("cpu nice=-21", "option 'nice': bad value '-21'");
	bad("cpu nice=+1", "option 'nice': bad value '+1'");
	bad("cpu nice=-", "option 'nice': bad value '-'");
	bad("cpu nice=--1", "option 'nice': bad value '--1'");
	bad("cpu nice=99999999999999999999", "option 'nice': bad value");

	ok("mem touch=0", &s);
	assert_int_equal(s.touch_pct, 0);
	spec_free(&s);
	ok("mem touch=50%", &s);
	assert_int_equal(s.touch_pct, 50);
	spec_free(&s);
	ok("cow write=100", &s);
	assert_int_equal(s.write_pct, 100);
	spec_free(&s);
	ok("cow write=7%", &s);
	assert_int_equal(s.write_pct, 7);
	spec_free(&s);
	bad("mem touch=101", "option 'touch': bad value '101' (expected a percentage from 0 to 100");
	bad("mem touch=%", "option 'touch': bad value '%'");
	bad("mem touch=5%%", "option 'touch': bad value '5%%'");
	bad("mem touch=0.5", "option 'touch': bad value '0.5'");
	bad("cow write=-1", "option 'write': bad value '-1'");
}

static void test_opt_sizes(void **state)
{
	struct task_spec s;

	(void)state;
	ok("mem size=64M step=4k touch=50", &s);
	assert_int_equal(s.size, 64 << 20);
	assert_int_equal(s.step, 4096);
	spec_free(&s);

	ok("cow size=1T", &s);
	assert_int_equal(s.size, 1LL << 40);
	spec_free(&s);

	ok("mem size=1", &s);
	assert_int_equal(s.size, 1);
	spec_free(&s);

	ok("io size=64MiB", &s);
	assert_int_equal(s.size, 64 << 20);
	spec_free(&s);

	ok("io size=512", &s);
	assert_int_equal(s.size, 512);
	spec_free(&s);

	/* io has its own, smaller range. */
	bad("io size=65M", "option 'size': bad value '65M' (expected a size per write from 1 byte to 64 MiB");
	bad("io size=1G", "option 'size': bad value '1G'");
	bad("mem size=1025G", "option 'size': bad value '1025G' (expected a size from 1 byte to 1 TiB");
	bad("cow size=0", "option 'size': bad value '0'");
	bad("mem size=-1", "option 'size': bad value '-1'");
	bad("mem size=lots", "option 'size': bad value 'lots'");
	bad("mem step=0", "option 'step': bad value '0'");
	bad("mem step=2T", "option 'step': bad value '2T'");
}

static void test_opt_strings(void **state)
{
	struct task_spec s;
	char line[8192];

	(void)state;
	ok("cpu name=A-z_0.9", &s);
	assert_string_equal(s.name, "A-z_0.9");
	spec_free(&s);

	BUILD(line, "cpu name=", 'n', SPEC_NAME_MAX, "");
	ok(line, &s);
	assert_int_equal(strlen(s.name), SPEC_NAME_MAX);
	spec_free(&s);
	BUILD(line, "cpu name=", 'n', SPEC_NAME_MAX + 1, "");
	bad(line, "option 'name': bad value 'nnnnn");
	bad("cpu name=", "option 'name': bad value '' (expected 1 to 64 of A-Z a-z 0-9 . _ -)");
	bad("cpu name=a/b", "option 'name': bad value 'a/b'");
	bad("cpu name=a:b", "option 'name': bad value 'a:b'");

	ok("cpu cwd=/", &s);
	assert_string_equal(s.cwd, "/");
	spec_free(&s);
	BUILD(line, "noop cwd=/", 'd', 4094, "");
	ok(line, &s);
	assert_int_equal(strlen(s.cwd), 4095);
	spec_free(&s);
	BUILD(line, "noop cwd=/", 'd', 4095, "");
	bad(line, "option 'cwd': bad value '/ddd");
	/* relative: to the writer's directory (lib/origin.c joins them) */
	ok("cpu cwd=tmp", &s);
	assert_string_equal(s.cwd, "tmp");
	spec_free(&s);
	ok("cpu cwd=./x", &s);
	assert_string_equal(s.cwd, "./x");
	spec_free(&s);
	bad("cpu cwd=", "option 'cwd': bad value '' (expected a path of at most 4095 bytes");

	ok("exec stdin=a.b_c-1 stdout=...x cat", &s);
	assert_string_equal(s.stdin_chan, "a.b_c-1");
	assert_string_equal(s.stdout_chan, "...x");
	spec_free(&s);
	bad("exec stdin=. cat", "option 'stdin': bad value '.' (expected a file (a path with a '/', append:PATH or truncate:PATH) or a channel name");
	bad("exec stdout=.. cat", "option 'stdout': bad value '..'");
	bad("exec stdout= cat", "option 'stdout': bad value ''");
	BUILD(line, "sh stdin=", 'c', SPEC_NAME_MAX + 1, " cat");
	bad(line, "option 'stdin': bad value");

	/* files: a '/' in the value, or append:/truncate: */
	ok("exec stdin=a/b stdout=./o stderr=/tmp/e cat", &s);
	assert_null(s.stdin_chan);
	assert_null(s.stdout_chan);
	assert_string_equal(s.file[0].path, "a/b");
	assert_string_equal(s.file[1].path, "./o");
	assert_false(s.file[1].append);
	assert_string_equal(s.file[2].path, "/tmp/e");
	spec_free(&s);
	ok("cpu stdout=append:log stderr=truncate:err", &s);
	assert_string_equal(s.file[1].path, "log");
	assert_true(s.file[1].append);
	assert_string_equal(s.file[2].path, "err");
	assert_false(s.file[2].append);
	spec_free(&s);
	bad("sh stdout=append: x", "option 'stdout': bad value 'append:'");
	bad("sh stdin=append:x cat", "option 'stdin': bad value 'append:x'");
	bad("sh stderr=chan x", "option 'stderr': 'chan' is not a file");
	bad("cpu stdin=a", "option 'stdin': channels are for exec and sh");
	bad("sleep as=thread stdout=./x", "a thread has its host process's stdin, stdout and stderr");
	bad("exec stdout=./a stdout=./b x", "option 'stdout' given twice");
}

static void test_opt_env(void **state)
{
	char line[8192];
	struct task_spec s;
	int i;

	(void)state;
	ok("exec env=A=1 env=_b2=x=y env=EMPTY= env=SP=\"a b\" env ls", &s);
	assert_int_equal(s.nenv, 4);
	assert_string_equal(s.env[0], "A=1");
	assert_string_equal(s.env[1], "_b2=x=y");
	assert_string_equal(s.env[2], "EMPTY=");
	assert_string_equal(s.env[3], "SP=a b");
	assert_null(s.env[4]);
	ARGV(&s, "env", "ls");
	spec_free(&s);

	ok("cpu env=PCFSX=1 env=pcfs_x=1", &s);   /* only the PCFS_ prefix is pcfs's */
	assert_int_equal(s.nenv, 2);
	spec_free(&s);

	strcpy(line, "sh");
	for (i = 0; i < SPEC_ENV_MAX; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " env=V%d=%d", i, i);
	strcat(line, " env");
	ok(line, &s);
	assert_int_equal(s.nenv, SPEC_ENV_MAX);
	assert_string_equal(s.env[SPEC_ENV_MAX - 1], "V63=63");
	assert_null(s.env[SPEC_ENV_MAX]);
	spec_free(&s);
	strcpy(line + strlen(line) - strlen(" env"), " env=X=1 env");
	bad(line, "option 'env' given more than 64 times");

	bad("cpu env=PCFS_TASK=1", "option 'env': 'PCFS_TASK=1' sets a PCFS_ variable");
	bad("cpu env=A=1 env=A=2", "option 'env': 'A=2' sets a variable that is already set");
	bad("cpu env=A", "option 'env': bad value 'A' (expected NAME=VALUE");
	bad("cpu env==1", "option 'env': bad value '=1'");
	bad("cpu env=1A=1", "option 'env': bad value '1A=1'");
	bad("cpu env=A-B=1", "option 'env': bad value 'A-B=1'");
	bad("cpu env=", "option 'env': bad value ''");

	/* -K removes an inherited variable; a lone - starts from nothing */
	ok("sh env=-HOME env=- env=A=1 true", &s);
	assert_int_equal(s.nenv, 2);
	assert_string_equal(s.env[0], "-HOME");
	assert_true(s.env_clean);
	spec_free(&s);
	bad("cpu env=- env=-", "option 'env': '-' given twice");
	bad("cpu env=A=1 env=-A", "option 'env': '-A' removes a variable that is already set");
	bad("cpu env=-A env=A=1", "option 'env': 'A=1' sets a variable that is already set");
	bad("cpu env=-1A", "option 'env': bad value '-1A'");
	bad("cpu env=-A=1", "option 'env': bad value '-A=1'");
	bad("cpu env=-PCFS_ID", "sets a PCFS_ variable");
}

static void test_applicability(void **state)
{
	static const struct { const char *line, *want; } t[] = {
		{ "cpu size=1M", "option 'size' does not apply to cpu" },
		{ "sleep size=1M", "option 'size' does not apply to sleep" },
		{ "noop time=1s", "option 'time' does not apply to noop" },
		{ "exec time=1s ls", "option 'time' does not apply to exec" },
		{ "sh time=1s ls", "option 'time' does not apply to sh" },
		{ "sleep ops=1", "option 'ops' does not apply to sleep" },
		{ "mem ops=1", "option 'ops' does not apply to mem" },
		{ "io touch=5", "option 'touch' does not apply to io" },
		{ "cow touch=5", "option 'touch' does not apply to cow" },
		{ "mem write=5", "option 'write' does not apply to mem" },
		{ "cow step=4k", "option 'step' does not apply to cow" },
		{ "cow rate=1s", "option 'rate' does not apply to cow" },
		{ "cpu depth=5", "option 'depth' does not apply to cpu" },
		{ "cpu stdin=a", "option 'stdin': channels are for exec and sh" },
		{ "noop stdout=a", "option 'stdout': channels are for exec and sh" },
		{ "sh gil=1 x", "option 'gil' does not apply to sh" },
	};
	static const char *const fine[] = {
		"cpu time=1s", "io time=1s", "sleep time=1s", "mem time=1s",
		"cow time=1s", "stack time=1s", "cpu ops=5", "io ops=5",
		"mem size=1k", "cow size=1k", "io size=1k", "mem touch=1",
		"cow write=1", "mem step=1k", "mem rate=1s", "stack depth=9",
	};
	struct task_spec s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		bad(t[i].line, t[i].want);
	for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		ok(fine[i], &s);
		spec_free(&s);
	}
}

static void test_unknown_and_twice(void **state)
{
	char line[256], want[256];

	(void)state;
	bad("cpu foo=1", "unknown option 'foo' for cpu");
	bad("exec foo=1 ls", "unknown option 'foo' for exec");
	bad("cpu _=1", "unknown option '_' for cpu");
	bad("cpu time2=1", "unknown option 'time2' for cpu");
	BUILD(want, "unknown option '", 'k', 40, "...' for cpu");
	BUILD(line, "cpu ", 'k', 100, "=1");
	bad(line, want);

	bad("cpu time=1s time=2s", "option 'time' given twice");
	bad("cpu time=1s time=1s", "option 'time' given twice");
	bad("mem size=1k size=1k", "option 'size' given twice");
	bad("cpu name=a name=b", "option 'name' given twice");
	bad("cpu as=thread as=thread", "option 'as' given twice");
	bad("exec stdin=a stdin=b ls", "option 'stdin' given twice");
	bad("cpu nice=1 nice=1", "option 'nice' given twice");
}

/* ---- error text and cleanup ------------------------------------------------ */

static void test_error_text(void **state)
{
	struct task_spec s;
	char err[ERRLEN], small[12], line[256];
	int rc;

	(void)state;
	/* Long tokens are cut to 40 bytes and marked. */
	BUILD(line, "cpu ", 'z', 200, "");
	rc = parse_len(line, strlen(line), &s, err);
	assert_int_equal(rc, -EINVAL);
	BUILD(line, "cpu takes no arguments (got '", 'z', 40, "...')");
	assert_string_equal(err, line);

	/* Exactly 40 bytes are shown whole. */
	BUILD(line, "cpu ", 'y', 40, "");
	parse_len(line, strlen(line), &s, err);
	BUILD(line, "cpu takes no arguments (got '", 'y', 40, "')");
	assert_string_equal(err, line);

	/* Bytes that are not printable ASCII become '?'. */
	bad("cpu h\xc3\xa9llo", "got 'h??llo'");
	bad("h\xc3\xa9", "unknown workload 'h?" "?'");  /* split: no trigraph */
	bad("cpu name=\xff", "bad value '?'");

	/* A short buffer gets a truncated, terminated message. */
	memset(small, 'x', sizeof(small));
	assert_int_equal(spec_parse("cpu bogus", 9, CPUS, &s, small, sizeof(small)), -EINVAL);
	assert_string_equal(small, "cpu takes n");
	memset(small, 'x', sizeof(small));
	assert_int_equal(spec_parse("cpu bogus", 9, CPUS, &s, small, 1), -EINVAL);
	assert_int_equal(small[0], '\0');
	assert_int_equal(small[1], 'x');

	/* No buffer at all. */
	assert_int_equal(spec_parse("cpu bogus", 9, CPUS, &s, NULL, 0), -EINVAL);
	assert_int_equal(spec_parse("cpu bogus", 9, CPUS, &s, small, 0), -EINVAL);
	assert_int_equal(small[0], '\0');   /* untouched since the last call */
	assert_int_equal(spec_parse("cpu 2", 5, CPUS, &s, NULL, 0), 0);
	spec_free(&s);

	/* Success clears err. */
	strcpy(err, "stale");
	assert_int_equal(parse_len("cpu", 3, &s, err), 0);
	assert_string_equal(err, "");
	spec_free(&s);
}

/* Errors found after things were allocated leave nothing behind (run under
 * ASan or valgrind to see a leak). */
static void test_error_cleanup(void **state)
{
	(void)state;
	bad("exec cwd=/t env=A=1 stdin=i stdout=o name=n method=pthread ls -l",
	    "method=pthread starts threads");
	bad("exec cwd=/t env=A=1 env=B=2 stdin=i ls 'x", "unterminated single quote");
	bad("sh cwd=/t env=A=1 env=A=2 echo", "already set");
	bad("cpu cwd=/t env=A=1 gil=1", "gil= applies to threads");
	bad("cpu cwd=/t cwd=/u", "option 'cwd' given twice");
	bad("cow env=A=1 size=1k stray", "cow takes no arguments");
}

static void test_spec_free(void **state)
{
	struct task_spec s;

	(void)state;
	memset(&s, 0, sizeof(s));
	spec_free(&s);
	spec_free(&s);
	spec_free(NULL);

	ok("exec cwd=/ env=A=1 stdin=a stdout=b ls -l", &s);
	spec_free(&s);
	assert_clean(&s);
	spec_free(&s);
	assert_clean(&s);
}

/* ---- value helpers ----------------------------------------------------- */

static void test_parse_uint(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_uint("0", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("10", 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("0010", 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_uint("18446744073709551616", UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_uint("99999999999999999999999", UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_uint("11", 10, &v), -EINVAL);
	assert_int_equal(parse_uint("5", 0, &v), -EINVAL);
	assert_int_equal(parse_uint("0", 0, &v), 0);
	assert_int_equal(v, 0);

	v = 42;
	assert_int_equal(parse_uint("", 10, &v), -EINVAL);
	assert_int_equal(parse_uint("-1", 10, &v), -EINVAL);
	assert_int_equal(parse_uint("+1", 10, &v), -EINVAL);
	assert_int_equal(parse_uint(" 1", 10, &v), -EINVAL);
	assert_int_equal(parse_uint("1 ", 10, &v), -EINVAL);
	assert_int_equal(parse_uint("1x", 10, &v), -EINVAL);
	assert_int_equal(parse_uint("0x1", 10, &v), -EINVAL);
	assert_int_equal(parse_uint(NULL, 10, &v), -EINVAL);
	assert_int_equal(v, 42);   /* untouched on error */
}

static void test_parse_duration(void **state)
{
	static const struct { const char *s; int64_t ms; } good[] = {
		{ "0", 0 }, { "0ms", 0 }, { "0.0s", 0 }, { "2", 2000 },
		{ "250ms", 250 }, { "2s", 2000 }, { "1.5s", 1500 },
		{ "2m", 120000 }, { "1h", 3600000 }, { "1d", 86400000 },
		{ "1.5m", 90000 }, { "0.5h", 1800000 }, { "100us", 1 },
		{ "1us", 1 }, { "1000us", 1 }, { "1001us", 2 }, { "2500us", 3 },
		{ "0.1ms", 1 }, { "1.0005s", 1001 }, { "0.0000000001s", 1 },
		{ "1.000000000000000000000000000001", 1001 },
		{ "0.25", 250 }, { "007s", 7000 },
		{ "36500d", 3153600000000LL }, /* the largest whole-day value */
	};
	static const char *const junk[] = {
		"", "s", "ms", "-1", "-1s", "+1s", " 1s", "1s ", "1 s", "1x",
		"1S", "1sec", "1ss", "1.s", ".5s", "1..5s", "1.5.s", "1e3",
		"1,5s", "0x10", "1h30m", "inf", "nan",
		"36501d", "3153600000001ms", "99999999999999999999999s",
		"18446744073709551616us",
	};
	int64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -42;
		if (parse_duration_ms(good[i].s, &ms) != 0)
			fail_msg("'%s' refused", good[i].s);
		if (ms != good[i].ms)
			fail_msg("'%s' = %lld, want %lld", good[i].s,
				 (long long)ms, (long long)good[i].ms);
	}
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		ms = -42;
		if (parse_duration_ms(junk[i], &ms) != -EINVAL)
			fail_msg("'%s' accepted as %lld", junk[i], (long long)ms);
		assert_int_equal(ms, -42);
	}
	assert_int_equal(parse_duration_ms(NULL, &ms), -EINVAL);
}

static void test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t n; } good[] = {
		{ "0", 0 }, { "512", 512 }, { "512B", 512 },
		{ "4k", 4096 }, { "4K", 4096 }, { "4KB", 4096 }, { "4KiB", 4096 },
		{ "4kiB", 4096 }, { "64M", 64ULL << 20 }, { "64MB", 64ULL << 20 },
		{ "64MiB", 64ULL << 20 }, { "1G", 1ULL << 30 }, { "1g", 1ULL << 30 },
		{ "1.5G", 3ULL << 29 }, { "2T", 2ULL << 40 }, { "1P", 1ULL << 50 },
		{ "1E", 1ULL << 60 }, { "0.5k", 512 }, { "1.5", 2 }, { "0.001k", 2 },
		{ "15E", 15ULL << 60 },
		{ "18446744073709551615", UINT64_MAX },
		{ "0.00000000000000000001E", 1 },
	};
	static const char *const junk[] = {
		"", "k", "B", "iB", "-1", "-1k", "+1k", " 1k", "1k ", "1 k", "1x",
		"1iB", "1Kib", "1kb", "1KBB", "1KiBB", "1kk", "1.k", ".5k",
		"1..5k", "1e3", "0x10", "1,5M",
		"16E", "16384P", "18446744073709551616", "99999999999999999999999k",
		"15.9999999999999999999999E" /* rounds up past 2^64 - 1 */,
	};
	uint64_t n;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = 42;
		if (parse_size(good[i].s, &n) != 0)
			fail_msg("'%s' refused", good[i].s);
		if (n != good[i].n)
			fail_msg("'%s' = %llu, want %llu", good[i].s,
				 (unsigned long long)n, (unsigned long long)good[i].n);
	}
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		n = 42;
		if (parse_size(junk[i], &n) != -EINVAL)
			fail_msg("'%s' accepted as %llu", junk[i], (unsigned long long)n);
		assert_int_equal(n, 42);
	}
	assert_int_equal(parse_size(NULL, &n), -EINVAL);
}

/* The rule every dependency is decided by, for spawn lines and futures. */
static void test_after_decide(void **state)
{
	(void)state;
	assert_int_equal(after_decide(AFTER_OK, 2, false), AFTER_WAIT);
	assert_int_equal(after_decide(AFTER_OK, 2, true), AFTER_SKIP);   /* at once */
	assert_int_equal(after_decide(AFTER_OK, 0, false), AFTER_READY);
	assert_int_equal(after_decide(AFTER_ANY, 1, true), AFTER_WAIT);
	assert_int_equal(after_decide(AFTER_ANY, 0, true), AFTER_READY);
	assert_int_equal(after_decide(AFTER_ANY, 0, false), AFTER_READY);
	assert_int_equal(after_decide(AFTER_FAIL, 1, true), AFTER_WAIT);   /* all must end */
	assert_int_equal(after_decide(AFTER_FAIL, 0, true), AFTER_READY);
	assert_int_equal(after_decide(AFTER_FAIL, 0, false), AFTER_SKIP);
}

static void test_parse_signal(void **state)
{
	static const char *const names[32] = {
		NULL, "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE",
		"KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT",
		"CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
		"XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
	};
	static const char *const junk[] = {
		"", "0", "65", "-1", "+15", "15x", " 15", "TERM ", "SIG", "sig",
		"SIGSIGTERM", "SIG15", "TERMX", "TER", "SIGRTMIN", "IOT", "x",
		"99999999999999999999999",
	};
	char buf[32];
	int sig, i;
	size_t j;

	(void)state;
	for (i = 1; i < 32; i++) {
		/* x86/arm numbering: the machines pcfs runs on. */
		assert_string_equal(signal_name(i), names[i]);
		sig = 0;
		assert_int_equal(parse_signal(names[i], &sig), 0);
		assert_int_equal(sig, i);
		snprintf(buf, sizeof(buf), "SIG%s", names[i]);
		sig = 0;
		assert_int_equal(parse_signal(buf, &sig), 0);
		assert_int_equal(sig, i);
		for (j = 0; buf[j]; j++)
			buf[j] = (char)(buf[j] >= 'A' && buf[j] <= 'Z' ? buf[j] + 32 : buf[j]);
		sig = 0;
		assert_int_equal(parse_signal(buf, &sig), 0);          /* sigterm */
		assert_int_equal(sig, i);
		sig = 0;
		assert_int_equal(parse_signal(buf + 3, &sig), 0);      /* term */
		assert_int_equal(sig, i);
	}
	sig = 0;
	assert_int_equal(parse_signal("SigTerm", &sig), 0);
	assert_int_equal(sig, 15);
	for (i = 1; i <= 64; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		sig = 0;
		assert_int_equal(parse_signal(buf, &sig), 0);
		assert_int_equal(sig, i);
	}
	for (j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
		sig = 42;
		if (parse_signal(junk[j], &sig) != -EINVAL)
			fail_msg("'%s' accepted as %d", junk[j], sig);
		assert_int_equal(sig, 42);
	}
	assert_int_equal(parse_signal(NULL, &sig), -EINVAL);

	assert_string_equal(signal_name(15), "TERM");
	assert_string_equal(signal_name(9), "KILL");
	assert_null(signal_name(0));
	assert_null(signal_name(-1));
	assert_null(signal_name(32));
	assert_null(signal_name(40));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workloads),
		cmocka_unit_test(test_unknown_workload),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_line_checks),
		cmocka_unit_test(test_trim_and_blanks),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_dashdash),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_sh),
		cmocka_unit_test(test_builtin_args),
		cmocka_unit_test(test_opt_as_method_gil),
		cmocka_unit_test(test_opt_durations),
		cmocka_unit_test(test_opt_numbers),
		cmocka_unit_test(test_opt_sizes),
		cmocka_unit_test(test_opt_strings),
		cmocka_unit_test(test_opt_env),
		cmocka_unit_test(test_applicability),
		cmocka_unit_test(test_unknown_and_twice),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_error_cleanup),
		cmocka_unit_test(test_spec_free),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_signal),
		cmocka_unit_test(test_after_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
