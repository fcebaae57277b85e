/* fuzz_cmdtab.c - ctl lines through a command table: any bytes are refused
 * with a one-line reason or reach only handlers whose row they fit; a refusal
 * of the line itself runs no handler; the words a line splits into, quoted
 * again, split into the same words; a control write's lines run only once
 * every one of them has been checked. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdtab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct calls {
	const struct cmdtab *tab;
	size_t ntab;
	size_t n;        /* handlers run */
	bool refused;    /* a handler said no */
};

/* Every call must fit its row; a value "bad" is refused, as a handler would. */
static int handler(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct calls *c = ctx;
	const struct cmdtab *row = NULL;

	for (size_t i = 0, k = strlen(argv[0]); i < c->ntab && !row; i++) {
		const char *name = c->tab[i].name;

		if (!strncmp(name, argv[0], k) && (!name[k] || !strcmp(name + k, "=")))
			row = &c->tab[i];
	}
	if (!row || argv[argc] != NULL)
		abort();
	if (row->name[strlen(row->name) - 1] == '=') {
		if (argc != 2 || (row->min_args && !argv[1][0]))
			abort();
	} else if (argc - 1 < row->min_args || argc - 1 > row->max_args) {
		abort();
	}
	c->n++;
	if (argc > 1 && !strcmp(argv[argc - 1], "bad")) {
		c->refused = true;
		snprintf(err, errlen, "bad value");
		return -EINVAL;
	}
	return 0;
}

static const struct cmdtab tab[] = {
	{ "term", 0, 0, handler, "term" },
	{ "signal", 1, 1, handler, "signal N|NAME" },
	{ "shutdown", 0, 1, handler, "shutdown [cancel]" },
	{ "workers=", 1, 1, handler, "workers=N" },
	{ "type=", 1, 1, handler, "type=process|thread" },
	{ "note=", 0, 1, handler, "note=[TEXT]" },
};

static void check_reason(const char *err, size_t len)
{
	if (!memchr(err, '\0', len) || strchr(err, '\n') || !err[0])
		abort();
}

/* Quote each word in '...' (a ' as '\'') and split again: the same words. */
static void requote(const struct cmd_words *cw)
{
	char line[CMD_LINE_MAX * 4 + 64], *p = line;
	struct cmd_words again;

	for (size_t i = 0; i < cw->n; i++) {
		*p++ = ' ';
		*p++ = '\'';
		for (const char *s = cw->w[i]; *s; s++) {
			if (*s == '\'') {
				memcpy(p, "'\\''", 4);
				p += 4;
			} else {
				*p++ = *s;
			}
		}
		*p++ = '\'';
	}
	*p = '\0';
	if (strlen(line) > CMD_LINE_MAX)
		return;
	if (cmd_tokenize(line, &again, NULL, 0) != 0 || again.n != cw->n)
		abort();
	for (size_t i = 0; i < cw->n; i++)
		if (strcmp(again.w[i], cw->w[i]) || again.keylen[i])
			abort();
}

/* A line of a control write: within bounds, one line; never refused. */
static int each(void *ctx, const char *line, char *err, size_t errlen)
{
	struct calls *c = ctx, inner = { tab, ARRAY_SIZE(tab), 0, false };

	if (strlen(line) > CMD_LINE_MAX || strchr(line, '\n'))
		abort();
	c->n++;
	cmd_exec(tab, ARRAY_SIZE(tab), line, &inner, NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct cmd_words cw;
	struct calls c = { tab, ARRAY_SIZE(tab), 0, false };
	char err[256];
	int rc;

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';

	memset(err, 'x', sizeof(err));
	if (cmd_tokenize(line, &cw, err, sizeof(err)) == 0) {
		if (cw.n > CMD_WORDS_MAX || cw.w[cw.n] != NULL)
			abort();
		requote(&cw);
	} else {
		check_reason(err, sizeof(err));
	}

	memset(err, 'x', sizeof(err));
	rc = cmd_exec(tab, ARRAY_SIZE(tab), line, &c, err, sizeof(err));
	if (rc > 0 || (rc == 0 && c.n == 0))
		abort();
	if (rc < 0) {
		check_reason(err, sizeof(err));
		if (!c.refused && c.n)   /* refused by the table: nothing ran */
			abort();
	}

	/* the same bytes as a control write */
	c = (struct calls){ tab, ARRAY_SIZE(tab), 0, false };
	memset(err, 'x', sizeof(err));
	rc = cmd_each_line((const char *)data, size, NULL, each, &c, err, sizeof(err));
	if (rc < 0) {   /* each never refuses: the refusal came before any line ran */
		check_reason(err, sizeof(err));
		if (c.n)
			abort();
	}
	free(line);
	return 0;
}
