/* test_cmdtab.c - control lines through one command table: words and
 * quoting, the limits, unknown names, arity, settings all or nothing, and
 * the split of a control write into lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmdtab.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What the handlers saw: each call appends "argv0|argv1|...;" to log. */
struct seen {
	char log[512];
	int calls;
	int refuse_at;      /* the call (1-based) that refuses with -ERANGE; 0: none */
	/* a pool's staging struct, as the engine's will be */
	unsigned workers;
	char type[16];
	char tmpl[128];
};

static int record(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct seen *s = ctx;
	size_t at = strlen(s->log);

	for (size_t i = 0; i < argc; i++)
		at += (size_t)snprintf(s->log + at, sizeof(s->log) - at, "%s%s", i ? "|" : "",
				       argv[i]);
	snprintf(s->log + at, sizeof(s->log) - at, ";");
	assert_null(argv[argc]);
	if (++s->calls == s->refuse_at) {
		snprintf(err, errlen, "refused by the handler");
		return -ERANGE;
	}
	return 0;
}

static int set_workers(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct seen *s = ctx;
	unsigned long v;
	char *end;

	assert_int_equal(argc, 2);
	record(ctx, argc, argv, err, errlen);
	v = strtoul(argv[1], &end, 10);
	if (*end || v == 0 || v > 4096) {
		snprintf(err, errlen, "workers= takes 1..4096");
		return -EINVAL;
	}
	s->workers = (unsigned)v;
	return 0;
}

static int set_type(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct seen *s = ctx;

	record(ctx, argc, argv, err, errlen);
	if (strcmp(argv[1], "process") && strcmp(argv[1], "thread")) {
		snprintf(err, errlen, "type= is process or thread");
		return -EINVAL;
	}
	snprintf(s->type, sizeof(s->type), "%s", argv[1]);
	return 0;
}

static int set_template(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct seen *s = ctx;

	snprintf(s->tmpl, sizeof(s->tmpl), "%s", argv[1]);
	return record(ctx, argc, argv, err, errlen);
}

/* A handler that refuses with no reason: cmd_exec gives one. */
static int silent_refusal(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	return -EPERM;
}

static const struct cmdtab task_tab[] = {
	{ "term", 0, 0, record, "term" },
	{ "kill", 0, 0, record, "kill" },
	{ "signal", 1, 1, record, "signal N|NAME" },
	{ "stop", 0, 0, record, "stop" },
	{ "cont", 0, 0, record, "cont" },
};

static const struct cmdtab pool_tab[] = {
	{ "workers=", 1, 1, set_workers, "workers=N" },
	{ "type=", 1, 1, set_type, "type=process|thread" },
	{ "template=", 1, 1, set_template, "template=LINE" },
	{ "note=", 0, 1, record, "note=[TEXT]" },
	{ "shutdown", 0, 1, record, "shutdown [cancel]" },
	{ "pause", 0, 0, record, "pause" },
	{ "deny", 0, 0, silent_refusal, "deny" },
};

static int task(const char *line, struct seen *s, char *err, size_t errlen)
{
	return cmd_exec(task_tab, ARRAY_SIZE(task_tab), line, s, err, errlen);
}

static int pool(const char *line, struct seen *s, char *err, size_t errlen)
{
	return cmd_exec(pool_tab, ARRAY_SIZE(pool_tab), line, s, err, errlen);
}

/* ---- the tokenizer ---- */

static void test_words_and_quoting(void **state)
{
	struct cmd_words cw;
	char err[256];

	assert_int_equal(cmd_tokenize("  a\tb   c  ", &cw, err, sizeof(err)), 0);
	assert_int_equal(cw.n, 3);
	assert_string_equal(cw.w[0], "a");
	assert_string_equal(cw.w[1], "b");
	assert_string_equal(cw.w[2], "c");
	assert_null(cw.w[3]);

	assert_int_equal(cmd_tokenize("x 'a b' \"c d\" e\\ f 'it''s' \"q\\\"q\\\\\" '\\n'",
				      &cw, err, sizeof(err)), 0);
	assert_int_equal(cw.n, 7);
	assert_string_equal(cw.w[1], "a b");
	assert_string_equal(cw.w[2], "c d");
	assert_string_equal(cw.w[3], "e f");
	assert_string_equal(cw.w[4], "its");
	assert_string_equal(cw.w[5], "q\"q\\");
	assert_string_equal(cw.w[6], "\\n");   /* '...' is literal */

	assert_int_equal(cmd_tokenize("''", &cw, err, sizeof(err)), 0);
	assert_int_equal(cw.n, 1);
	assert_string_equal(cw.w[0], "");

	assert_int_equal(cmd_tokenize("", &cw, err, sizeof(err)), 0);
	assert_int_equal(cw.n, 0);
	assert_int_equal(cmd_tokenize(" \t ", &cw, err, sizeof(err)), 0);
	assert_int_equal(cw.n, 0);
}

static void test_settings_are_decided_on_the_raw_text(void **state)
{
	struct cmd_words cw;
	char err[256];

	assert_int_equal(cmd_tokenize("workers=3 template='exec ./square {}' 'a=b' 9x=1 a", &cw,
				      err, sizeof(err)), 0);
	assert_int_equal(cw.n, 5);
	assert_int_equal(cw.keylen[0], 7);
	assert_string_equal(cw.w[1], "template=exec ./square {}");
	assert_int_equal(cw.keylen[1], 8);
	assert_int_equal(cw.keylen[2], 0);    /* quoted: a plain word */
	assert_string_equal(cw.w[2], "a=b");
	assert_int_equal(cw.keylen[3], 0);    /* a key starts with a letter or _ */
	assert_int_equal(cw.keylen[4], 0);
}

static void test_bad_quoting(void **state)
{
	struct cmd_words cw;
	char err[256];

	assert_int_equal(cmd_tokenize("signal 'USR1", &cw, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unterminated single quote in ''USR1'");
	assert_int_equal(cmd_tokenize("a \"b", &cw, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unterminated double quote in '\"b'");
	assert_int_equal(cmd_tokenize("a b\\", &cw, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "trailing backslash in 'b\\'");
}

static void test_control_characters(void **state)
{
	struct cmd_words cw;
	char err[256];

	assert_int_equal(cmd_tokenize("term\x01", &cw, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "control character 0x01 at column 5");
	assert_int_equal(cmd_tokenize("a\rb", &cw, err, sizeof(err)), -EINVAL);
	assert_int_equal(cmd_tokenize("'\x1b'", &cw, err, sizeof(err)), -EINVAL);  /* quoted too */
	assert_int_equal(cmd_tokenize("a\x7f", &cw, err, sizeof(err)), -EINVAL);
	assert_int_equal(cmd_tokenize("\ta\tb", &cw, err, sizeof(err)), 0);       /* TAB is a blank */
	assert_int_equal(cmd_tokenize("caf\xc3\xa9", &cw, err, sizeof(err)), 0);   /* UTF-8 is text */
}

static void test_limits(void **state)
{
	struct cmd_words cw;
	char line[CMD_LINE_MAX + 2], err[256];
	struct seen s = { 0 };

	memset(line, 'x', CMD_LINE_MAX);
	line[CMD_LINE_MAX] = '\0';
	assert_int_equal(cmd_tokenize(line, &cw, err, sizeof(err)), 0);
	assert_int_equal(strlen(cw.w[0]), CMD_LINE_MAX);
	line[CMD_LINE_MAX] = 'x';
	line[CMD_LINE_MAX + 1] = '\0';
	assert_int_equal(cmd_tokenize(line, &cw, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "command longer than 255 bytes");
	assert_int_equal(task(line, &s, err, sizeof(err)), -E2BIG);

	/* CMD_WORDS_MAX words, then one more */
	char words[CMD_WORDS_MAX * 2 + 3] = "";
	for (int i = 0; i < CMD_WORDS_MAX; i++)
		strcat(words, "a ");
	assert_int_equal(cmd_tokenize(words, &cw, err, sizeof(err)), 0);
	assert_int_equal(cw.n, CMD_WORDS_MAX);
	strcat(words, "b");
	assert_int_equal(cmd_tokenize(words, &cw, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "more than 16 words");
	assert_int_equal(s.calls, 0);
}

static void test_messages_fit_and_are_one_line(void **state)
{
	struct seen s = { 0 };
	char err[16], huge[64];

	memset(err, 'x', sizeof(err));
	assert_int_equal(task("frobnicate", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(task("frobnicate", &s, NULL, 0), -EINVAL);   /* no message wanted */
	/* what the line says is quoted printable and cut */
	assert_int_equal(task("\xff\xfe", &s, huge, sizeof(huge)), -EINVAL);
	assert_string_equal(huge, "unknown command '?" "?' (term, kill, signal N|NAME, stop, cont)");
}

/* ---- commands ---- */

static void test_commands_run_their_row(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(task("term", &s, err, sizeof(err)), 0);
	assert_int_equal(task("  signal   USR1 ", &s, err, sizeof(err)), 0);
	assert_int_equal(task("signal 'USR2'", &s, err, sizeof(err)), 0);
	assert_string_equal(s.log, "term;signal|USR1;signal|USR2;");
	assert_int_equal(pool("shutdown", &s, err, sizeof(err)), 0);
	assert_int_equal(pool("shutdown cancel", &s, err, sizeof(err)), 0);
	assert_string_equal(s.log, "term;signal|USR1;signal|USR2;shutdown;shutdown|cancel;");
	/* a command's argument may hold '=': it is not a setting */
	assert_int_equal(pool("shutdown x=y", &s, err, sizeof(err)), 0);
	assert_string_equal(s.log + strlen(s.log) - strlen("shutdown|x=y;"), "shutdown|x=y;");
}

static void test_unknown_command_lists_the_table(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(task("frob", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown command 'frob' (term, kill, signal N|NAME, stop, cont)");
	assert_int_equal(task("", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty command (term, kill, signal N|NAME, stop, cont)");
	/* a table without settings reads KEY=VALUE as a command it does not know */
	assert_int_equal(task("capacity=3", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown command 'capacity=3' (term, kill, signal N|NAME, stop, "
			    "cont)");
	assert_int_equal(task("TERM", &s, err, sizeof(err)), -EINVAL);   /* names are exact */
	assert_int_equal(s.calls, 0);
}

static void test_arity(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(task("term now", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'term' takes no arguments (usage: term)");
	assert_int_equal(task("signal", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'signal' takes 1 argument (usage: signal N|NAME)");
	assert_int_equal(task("signal 1 2", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(pool("shutdown cancel now", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'shutdown' takes 0 to 1 arguments (usage: shutdown [cancel])");
	assert_int_equal(s.calls, 0);
}

static void test_handler_refusals_have_a_reason(void **state)
{
	struct seen s = { .refuse_at = 1 };
	char err[256];

	assert_int_equal(task("kill", &s, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "refused by the handler");
	assert_int_equal(pool("deny", &s, err, sizeof(err)), -EPERM);
	assert_string_equal(err, "deny: Operation not permitted");
}

/* ---- settings ---- */

static void test_settings_line(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(pool("type=thread workers=3", &s, err, sizeof(err)), 0);
	assert_string_equal(s.log, "type|thread;workers|3;");
	assert_int_equal(s.workers, 3);
	assert_string_equal(s.type, "thread");
	assert_int_equal(pool("template='exec ./square {}'", &s, err, sizeof(err)), 0);
	assert_string_equal(s.tmpl, "exec ./square {}");
	/* an empty value only where the row allows it */
	assert_int_equal(pool("note=", &s, err, sizeof(err)), 0);
	assert_int_equal(pool("workers=", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'workers=' needs a value (usage: workers=N)");
}

static void test_settings_all_or_nothing(void **state)
{
	struct seen s = { 0 };
	char err[256];

	/* an unknown key anywhere: no handler runs */
	assert_int_equal(pool("workers=3 type=thread colour=red", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown setting 'colour=' (workers=N, type=process|thread, "
			    "template=LINE, note=[TEXT], shutdown [cancel], pause, deny)");
	assert_int_equal(s.calls, 0);
	/* a command among settings, or a plain word */
	assert_int_equal(pool("workers=3 pause", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'pause' goes on a line of its own, not among settings");
	assert_int_equal(pool("workers=3 'type=thread'", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(s.calls, 0);
	/* a bad value stops the line; what was staged is the caller's to drop */
	assert_int_equal(pool("type=thread workers=0", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "workers= takes 1..4096");
	assert_int_equal(s.workers, 0);
}

static void test_settings_given_twice(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(pool("workers=3 type=thread workers=4", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'workers=' given twice");
	assert_int_equal(s.calls, 0);
	assert_int_equal(pool("workers=3 workers=3", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(s.calls, 0);
}

static void test_usages(void **state)
{
	char buf[256], small[12];

	assert_string_equal(cmd_usages(task_tab, ARRAY_SIZE(task_tab), buf, sizeof(buf)),
			    "term, kill, signal N|NAME, stop, cont");
	assert_string_equal(cmd_usages(task_tab, ARRAY_SIZE(task_tab), small, sizeof(small)),
			    "term, kill,");
	assert_string_equal(cmd_usages(task_tab, 0, buf, sizeof(buf)), "");
}

/* ---- control writes ---- */

static int each(void *ctx, const char *line, char *err, size_t errlen)
{
	struct seen *s = ctx;
	size_t at = strlen(s->log);

	snprintf(s->log + at, sizeof(s->log) - at, "[%s]", line);
	if (++s->calls == s->refuse_at) {
		snprintf(err, errlen, "line refused");
		return -ESRCH;
	}
	return 0;
}

static int lines(const char *buf, size_t max, struct seen *s, char *err, size_t errlen)
{
	struct cmd_write how = { .max_cmds = max, .usage = "term, kill" };

	return cmd_each_line(buf, strlen(buf), max ? &how : NULL, each, s, err, errlen);
}

static void test_lines_of_a_write(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(lines("term\n\n  \n# a comment\r\nsignal 1\r\n\tkill", 0, &s, err,
			       sizeof(err)), 0);
	assert_string_equal(s.log, "[term][signal 1][\tkill]");
	s = (struct seen){ .refuse_at = 2 };
	assert_int_equal(lines("a\nb\nc\n", 0, &s, err, sizeof(err)), -ESRCH);
	assert_string_equal(s.log, "[a][b]");          /* the first refusal stops the rest */
	assert_string_equal(err, "line refused");
}

static void test_a_write_is_checked_before_it_runs(void **state)
{
	struct seen s = { 0 };
	char err[256], big[CMD_LINE_MAX + 8];

	assert_int_equal(lines("\n \n#x\n", 0, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "no command in the write");
	assert_int_equal(cmd_each_line(NULL, 0, NULL, each, &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(lines("term\nki\x01ll\n", 0, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a control character in the command");
	assert_int_equal(cmd_each_line("term\n\0\n", 7, NULL, each, &s, err, sizeof(err)), -EINVAL);
	memset(big, 'x', CMD_LINE_MAX);
	strcpy(big + CMD_LINE_MAX, "\r\n");            /* 255 bytes and a CRLF: fits */
	assert_int_equal(lines(big, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(s.calls, 1);
	strcpy(big + CMD_LINE_MAX, "x\n");
	assert_int_equal(lines(big, 0, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "command too long");
	assert_int_equal(s.calls, 1);                  /* nothing more ran */
}

static void test_commands_per_write(void **state)
{
	struct seen s = { 0 };
	char err[256];

	assert_int_equal(lines("term\n\nkill\n", 1, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "one command per write (term, kill)");
	assert_int_equal(lines("a\nb\nc\n", 2, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "at most 2 commands per write");
	assert_int_equal(s.calls, 0);
	assert_int_equal(lines("\nterm\n# why\n", 1, &s, err, sizeof(err)), 0);
	assert_string_equal(s.log, "[term]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words_and_quoting),
		cmocka_unit_test(test_settings_are_decided_on_the_raw_text),
		cmocka_unit_test(test_bad_quoting),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_messages_fit_and_are_one_line),
		cmocka_unit_test(test_commands_run_their_row),
		cmocka_unit_test(test_unknown_command_lists_the_table),
		cmocka_unit_test(test_arity),
		cmocka_unit_test(test_handler_refusals_have_a_reason),
		cmocka_unit_test(test_settings_line),
		cmocka_unit_test(test_settings_all_or_nothing),
		cmocka_unit_test(test_settings_given_twice),
		cmocka_unit_test(test_usages),
		cmocka_unit_test(test_lines_of_a_write),
		cmocka_unit_test(test_a_write_is_checked_before_it_runs),
		cmocka_unit_test(test_commands_per_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
