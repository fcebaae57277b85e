/* fuzz_template.c - command templates: any template text compiles or is
 * refused with a one-line reason; what a compiled one makes of any input
 * is expanded or refused, and its slot markers fill without crashing; and
 * through exec, an input (a line: no control characters) reaches the
 * program as exactly itself wherever the template puts it.
 *
 * The input is TEMPLATE \n INPUT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const char *err)
{
	if (strchr(err, '\n'))
		abort();
}

/* Any template over the input: no crash, reasons one line each. */
static void any_template(const char *text, const char *in, size_t len)
{
	struct tmpl t;
	struct strbuf line = STRBUF_INIT, filled = STRBUF_INIT;
	char err[256] = "";

	if (tmpl_compile(text, &t, err, sizeof(err)) < 0) {
		one_line(err);
		return;
	}
	if (tmpl_expand(&t, in, len, 42, &line, err, sizeof(err)) == 0)
		tmpl_fill_slot(sb_cstr(&line), 7, &filled);
	one_line(err);
	sb_free(&line);
	sb_free(&filled);
}

static bool is_line(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)in[i] < 0x20 && in[i] != '\t') || in[i] == 0x7f)
			return false;
	return true;
}

/* Bare, in the template's own quotes, at the place of the program: every
 * argument is the input, and {%} is the slot. */
static void exec_gets_the_input(const char *in, size_t len)
{
	struct tmpl t;
	struct strbuf line = STRBUF_INIT, filled = STRBUF_INIT;
	struct task_spec s;
	char err[256];

	if (len == 0 || len > 1024 || !is_line(in, len))
		return;
	if (tmpl_compile("exec {} x{}y 'q{}' \"d{}\" {%}", &t, err, sizeof(err)) < 0 ||
	    tmpl_expand(&t, in, len, 1, &line, err, sizeof(err)) < 0)
		abort();
	tmpl_fill_slot(sb_cstr(&line), 7, &filled);
	if (spec_parse(filled.buf, filled.len, 1, &s, err, sizeof(err)) < 0 || s.argc != 5 ||
	    s.count != 1 || strlen(s.argv[0]) != len || memcmp(s.argv[0], in, len) ||
	    strlen(s.argv[1]) != len + 2 || memcmp(s.argv[1] + 1, in, len) ||
	    strlen(s.argv[2]) != len + 1 || memcmp(s.argv[2] + 1, in, len) ||
	    strlen(s.argv[3]) != len + 1 || memcmp(s.argv[3] + 1, in, len) ||
	    strcmp(s.argv[4], "7"))
		abort();
	spec_free(&s);
	sb_free(&line);
	sb_free(&filled);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t tlen = nl ? (size_t)(nl - data) : size;
	char *text = malloc(tlen + 1);

	if (!text)
		return 0;
	memcpy(text, data, tlen);
	text[tlen] = '\0';
	const char *in = nl ? (const char *)nl + 1 : "";
	size_t len = nl ? size - tlen - 1 : 0;
	any_template(text, in, len);
	exec_gets_the_input(in, len);
	free(text);
	return 0;
}
