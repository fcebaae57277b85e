/* test_template.c - command templates: placeholders, values that arrive
 * as exactly themselves (read back by the task grammar, and by /bin/sh),
 * the slot marker, and the templates that are refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "template.h"

/* The line the template makes of input (seq 5); asserts it expands. */
static char *expand(const char *tmpl, const char *input)
{
	struct tmpl t;
	struct strbuf out = STRBUF_INIT;
	char err[256];

	assert_int_equal(tmpl_compile(tmpl, &t, err, sizeof(err)), 0);
	assert_int_equal(tmpl_expand(&t, input, strlen(input), 5, &out, err, sizeof(err)), 0);
	return sb_steal(&out);
}

/* The refusal's reason for a template that must not compile. */
static const char *refused(const char *tmpl)
{
	static char err[256];
	struct tmpl t;

	assert_int_equal(tmpl_compile(tmpl, &t, err, sizeof(err)), -EINVAL);
	return err;
}

/* An exec template's line parsed: its argv. */
static void parse(const char *line, struct task_spec *s)
{
	char err[256];

	assert_int_equal(spec_parse(line, strlen(line), 1, s, err, sizeof(err)), 0);
}

/* What /bin/sh makes of an sh line's command: its words, one a line. */
static char *sh_words(const char *line)
{
	struct task_spec s;
	struct strbuf cmd = STRBUF_INIT, got = STRBUF_INIT;
	char buf[512];
	size_t n;

	parse(line, &s);
	assert_int_equal(s.workload, WL_SH);
	char path[] = "/tmp/pcfs_test_template.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	sb_printf(&cmd, "set -- %s; printf '%%s\\n' \"$@\"", s.argv[0]);
	assert_int_equal(write(fd, cmd.buf, cmd.len), (ssize_t)cmd.len);
	close(fd);
	sb_reset(&cmd);
	sb_printf(&cmd, "/bin/sh %s", path);
	FILE *p = popen(sb_cstr(&cmd), "r");
	assert_non_null(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		sb_add(&got, buf, n);
	assert_int_equal(pclose(p), 0);
	unlink(path);
	spec_free(&s);
	sb_free(&cmd);
	return sb_steal(&got);
}

#define HOSTILE "a b 'c\" $(touch /tmp/pcfs_pwned) `id` \\ ; | & {} {%} * ~"

static void test_exec_values_are_one_argument(void **state)
{
	struct task_spec s;
	char *line = expand("exec /bin/sq {}", "7");

	assert_string_equal(line, "exec /bin/sq 7");
	free(line);
	line = expand("exec /bin/echo {} x", HOSTILE);
	parse(line, &s);
	assert_int_equal(s.argc, 3);
	assert_string_equal(s.argv[1], HOSTILE);
	assert_string_equal(s.argv[2], "x");
	spec_free(&s);
	free(line);
	line = expand("exec /bin/echo {}", "");       /* an empty input: one empty argument */
	assert_string_equal(line, "exec /bin/echo ''");
	free(line);
}

static void test_sh_values_are_one_word(void **state)
{
	char *line = expand("sh echo {} {1}", HOSTILE);
	char *words = sh_words(line);

	assert_string_equal(words, "echo\n" HOSTILE "\na\n");
	free(words);
	free(line);
	line = expand("sh echo $(({} * {}))", "12");    /* a plain value stays bare */
	assert_string_equal(line, "sh echo $((12 * 12))");
	free(line);
}

/* Inside the template's own quotes a value closes them around itself. */
static void test_values_inside_template_quotes(void **state)
{
	struct task_spec s;
	char *line = expand("exec /bin/echo 'x{}y' \"p{}q\"", "it's \"$HOME\" \\");
	char *words;

	parse(line, &s);
	assert_string_equal(s.argv[1], "xit's \"$HOME\" \\y");
	assert_string_equal(s.argv[2], "pit's \"$HOME\" \\q");
	spec_free(&s);
	free(line);
	line = expand("sh echo 'x{}y' \"p{}q\" \"{}\"", "$(id) it's");
	words = sh_words(line);
	assert_string_equal(words, "echo\nx$(id) it'sy\np$(id) it'sq\n$(id) it's\n");
	free(words);
	free(line);
	line = expand("sh echo \"a {} b\"", "plain");      /* nothing to close for */
	assert_string_equal(line, "sh echo \"a plain b\"");
	free(line);
}

static void test_fields_and_paths(void **state)
{
	char *line = expand("exec /x {2} {1} {3} {12}", " one\ttwo  three ");

	assert_string_equal(line, "exec /x two one three ''");
	free(line);
	line = expand("exec /x {.} {/} {//} {/.} {#}", "dir/sub.d/a.tar.gz");
	assert_string_equal(line, "exec /x dir/sub.d/a.tar a.tar.gz dir/sub.d a.tar 5");
	free(line);
	line = expand("exec /x {.} {/} {//} {/.}", "file");
	assert_string_equal(line, "exec /x file file . file");
	free(line);
	line = expand("exec /x {.} {//}", "a.d/b/");
	assert_string_equal(line, "exec /x a.d/b/ a.d");
	free(line);
	line = expand("exec /x {//}", "/top");
	assert_string_equal(line, "exec /x /");
	free(line);
}

/* What is not a placeholder stays as it is. */
static void test_text_that_is_not_a_placeholder(void **state)
{
	char *line = expand("sh echo ${1} ${#} \\{} {x} {0} {100} { } {1", "v");

	assert_string_equal(line, "sh echo ${1} ${#} \\{} {x} {0} {100} { } {1 v");
	free(line);
}

/* A placeholder where the grammar reads COUNT, options or "--" is quoted:
 * an input is never more than an argument. */
static void test_leading_values_are_arguments(void **state)
{
	struct task_spec s;
	char *line = expand("exec {} x", "timeout=1");

	assert_string_equal(line, "exec 'timeout=1' x");
	free(line);
	line = expand("exec {}", "3");
	parse(line, &s);
	assert_int_equal(s.count, 1);
	assert_string_equal(s.argv[0], "3");
	spec_free(&s);
	free(line);
	line = expand("sh timeout=5s {}", "--");
	assert_string_equal(line, "sh timeout=5s '--'");
	free(line);
	line = expand("exec env=N={} /bin/x", "a b");       /* an option's value */
	parse(line, &s);
	assert_string_equal(s.env[0], "N=a b");
	spec_free(&s);
	free(line);
}

static void test_input_appended_without_placeholder(void **state)
{
	char *line = expand("exec /bin/echo", "a b");

	assert_string_equal(line, "exec /bin/echo 'a b'");
	free(line);
	line = expand("noop", "anything");                  /* a built-in runs as it is */
	assert_string_equal(line, "noop");
	free(line);
}

static void test_builtin_values_go_in_raw(void **state)
{
	struct tmpl t;
	struct strbuf out = STRBUF_INIT;
	char err[256];
	char *line = expand("sleep time={}ms name=n{#}", "20");

	assert_string_equal(line, "sleep time=20ms name=n5");
	free(line);
	assert_int_equal(tmpl_compile("sleep time={}", &t, err, sizeof(err)), 0);
	assert_int_equal(tmpl_expand(&t, "1 timeout=2", 11, 1, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a sleep template takes values without blanks, quotes or "
				 "backslashes (got '1 timeout=2')");
	sb_free(&out);
}

static void test_inputs_refused(void **state)
{
	struct tmpl t;
	struct strbuf out = STRBUF_INIT;
	char err[256];

	assert_int_equal(tmpl_compile("exec /x {}", &t, err, sizeof(err)), 0);
	assert_int_equal(tmpl_expand(&t, "a\0b", 3, 1, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the input holds control character 0x00 at column 2");
	assert_int_equal(tmpl_expand(&t, "a\rb", 3, 1, &out, err, sizeof(err)), -EINVAL);
	assert_int_equal(tmpl_expand(&t, "a\tb", 3, 1, &out, err, sizeof(err)), 0);
	sb_free(&out);
}

/* {%} stays a marker outside every quote; filling it touches nothing else,
 * not even an input that says {%}. */
static void test_slot_marker(void **state)
{
	struct tmpl t;
	struct strbuf out = STRBUF_INIT;
	char err[256];
	char *line = expand("sh echo {%} '{%}' \"{%}\" {} ${%}", "{%}");

	assert_string_equal(line, "sh echo {%} ''{%}'' \"\"{%}\"\" '{%}' ${%}");
	tmpl_fill_slot(line, 12, &out);
	assert_string_equal(sb_cstr(&out), "sh echo 12 ''12'' \"\"12\"\" '{%}' ${%}");
	free(line);
	sb_reset(&out);
	line = expand("exec {%} {}", "x");
	tmpl_fill_slot(line, 3, &out);
	assert_string_equal(sb_cstr(&out), "exec ''3 x");
	free(line);
	assert_int_equal(tmpl_compile("sh echo {%}", &t, err, sizeof(err)), 0);
	assert_true(t.uses_slot);
	assert_false(t.uses_seq);
	sb_reset(&out);
	tmpl_sample(&t, &out);
	assert_string_equal(sb_cstr(&out), "sh echo 1");
	sb_free(&out);
}

static void test_templates_refused(void **state)
{
	struct tmpl t;
	char err[256], big[TMPL_MAX + 2];

	assert_string_equal(refused("   "), "empty template (template= alone removes it)");
	assert_string_equal(refused("square {}"), "a template begins with its workload (exec, sh, "
						  "sleep, ...), not 'square'");
	assert_string_equal(refused("exec 4 /x {}"), "a template makes one future per input: "
						      "no COUNT");
	assert_string_equal(refused("exec{} /x"), "a template begins with its workload (exec, sh, "
						    "sleep, ...), not 'exec{}'");
	assert_string_equal(refused("sleep time={%}"), "{%} (the worker slot, known when a worker "
			    "takes the future) goes in an exec or sh command, not a built-in");
	assert_string_equal(refused("exec env=S={%} /x"), "{%} (the worker slot, known when a "
			    "worker takes the future) goes in an exec or sh command, not an option");
	assert_string_equal(refused("exec /x 'a{}"), "an unterminated single quote in the template");
	assert_string_equal(refused("exec /x {} \\"), "a trailing backslash in the template");
	assert_string_equal(refused("exec /x \x01{}"), "control character 0x01 in the template");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(tmpl_compile(big, &t, err, sizeof(err)), -E2BIG);
}

/* Where sh quotes otherwise than this level sees, a placeholder is refused. */
static void test_sh_hazards(void **state)
{
	struct tmpl t;
	char err[256];

	assert_non_null(strstr(refused("sh echo `echo {}`"), "after a backquote"));
	assert_non_null(strstr(refused("sh echo \"$(printf %s \"{}\")\""),
			       "after $( or ${ inside double quotes"));
	assert_non_null(strstr(refused("sh echo $'x' {}"), "after $' or $\""));
	/* fine: $( outside double quotes, and backquotes in exec (no sh there) */
	assert_int_equal(tmpl_compile("sh echo $(printf %s \"{}\") \"$HOME\"", &t, err,
				      sizeof(err)), 0);
	assert_int_equal(tmpl_compile("exec /x `y` {}", &t, err, sizeof(err)), 0);
	assert_int_equal(tmpl_compile("sh env=A=`x` echo {}", &t, err, sizeof(err)), 0);
}

static void test_quote_word(void **state)
{
	struct strbuf out = STRBUF_INIT;

	tmpl_quote_word("sh echo 'a' {}", &out);
	assert_string_equal(sb_cstr(&out), "'sh echo '\\''a'\\'' {}'");
	sb_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_values_are_one_argument),
		cmocka_unit_test(test_sh_values_are_one_word),
		cmocka_unit_test(test_values_inside_template_quotes),
		cmocka_unit_test(test_fields_and_paths),
		cmocka_unit_test(test_text_that_is_not_a_placeholder),
		cmocka_unit_test(test_leading_values_are_arguments),
		cmocka_unit_test(test_input_appended_without_placeholder),
		cmocka_unit_test(test_builtin_values_go_in_raw),
		cmocka_unit_test(test_inputs_refused),
		cmocka_unit_test(test_slot_marker),
		cmocka_unit_test(test_templates_refused),
		cmocka_unit_test(test_sh_hazards),
		cmocka_unit_test(test_quote_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
