/* cmdtab.c - control lines through one command table (see cmdtab.h).
 *
 * Everything a table says is checked before any handler runs: the words
 * (quoting, limits, control characters), the rows they name, arity, and for a
 * line of settings that every key is known and given once.  So a handler
 * sees only a well-formed line, and a refusal leaves nothing half done.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmdtab.h"
#include "spec.h"
#include "reason.h"
#include "strbuf.h"

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define KEY_CHARS LOWER "0123456789_"      /* setting keys, as spec.c's option keys */
#define LIST_MAX 512                       /* the usages a refusal lists */

/* ---- the tokenizer ----------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Refuse what a line may not hold before looking at its words. */
static int check_line(const char *line, struct perr *e)
{
	size_t len = strnlen(line, CMD_LINE_MAX + 1);

	if (len > CMD_LINE_MAX)
		return perr_fail(e, -E2BIG, "command longer than %d bytes", CMD_LINE_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return perr_fail(e, -EINVAL, "control character 0x%02x at column %zu", c, i + 1);
	}
	return 0;
}

/* The length of the unquoted KEY= the raw word at p starts with, or 0. */
static size_t key_prefix(const char *p)
{
	size_t n = strspn(p, KEY_CHARS);

	return n > 0 && !(*p >= '0' && *p <= '9') && p[n] == '=' ? n : 0;
}

/* The word at *p, unquoted as task lines are (spec.c). */
static int lex_word(char **p, const char *raw, struct perr *e)
{
	return spec_unquote(p, raw, e->buf, e->len);
}

int cmd_tokenize(const char *line, struct cmd_words *out, char *err, size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	char *p = out->buf;
	int rc;

	out->n = 0;
	out->w[0] = NULL;
	if (e.len)
		err[0] = '\0';
	if (!line)
		line = "";
	if ((rc = check_line(line, &e)))
		return rc;
	strcpy(out->buf, line);        /* fits: check_line bounds it */
	for (;;) {
		while (is_blank(*p))
			p++;
		if (*p == '\0')
			break;
		if (out->n == CMD_WORDS_MAX)
			return perr_fail(&e, -E2BIG, "more than %d words", CMD_WORDS_MAX);
		/* Decided on the raw text: a quoted 'k=v' is a plain word. */
		out->keylen[out->n] = key_prefix(p);
		out->w[out->n] = p;
		if ((rc = lex_word(&p, line + (p - out->buf), &e)))
			return rc;
		out->w[++out->n] = NULL;
	}
	return 0;
}

/* ---- the table --------------------------------------------------------- */

static bool is_setting(const struct cmdtab *row)
{
	size_t n = strlen(row->name);

	return n > 0 && row->name[n - 1] == '=';
}

static bool has_settings(const struct cmdtab *tab, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_setting(&tab[i]))
			return true;
	return false;
}

static const struct cmdtab *find_command(const struct cmdtab *tab, size_t n, const char *word)
{
	for (size_t i = 0; i < n; i++)
		if (!is_setting(&tab[i]) && strcmp(tab[i].name, word) == 0)
			return &tab[i];
	return NULL;
}

/* key is KEY without its '='. */
static const struct cmdtab *find_setting(const struct cmdtab *tab, size_t n, const char *key)
{
	size_t k = strlen(key);

	for (size_t i = 0; i < n; i++)
		if (is_setting(&tab[i]) && strncmp(tab[i].name, key, k) == 0 &&
		    strcmp(tab[i].name + k, "=") == 0)
			return &tab[i];
	return NULL;
}

char *cmd_usages(const struct cmdtab *tab, size_t n, char *buf, size_t len)
{
	size_t at = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < n && at < len; i++) {
		int k = snprintf(buf + at, len - at, "%s%s", i ? ", " : "",
				 tab[i].usage ? tab[i].usage : tab[i].name);
		if (k < 0)
			break;
		at += (size_t)k;
	}
	return buf;
}

/* Run a row's handler; a refusal always comes with a reason. */
static int call(const struct cmdtab *row, void *ctx, size_t argc, char **argv, struct perr *e)
{
	int rc;

	if (e->len)
		e->buf[0] = '\0';
	rc = row->handler(ctx, argc, argv, e->buf, e->len);
	if (rc < 0 && e->len && !e->buf[0])
		perr_fail(e, rc, "%s: %s", row->usage ? row->usage : row->name, strerror(-rc));
	return rc;
}

static int bad_arity(const struct cmdtab *row, struct perr *e)
{
	const char *u = row->usage ? row->usage : row->name;

	if (row->max_args == 0)
		return perr_fail(e, -EINVAL, "'%s' takes no arguments (usage: %s)", row->name, u);
	if (row->min_args == row->max_args)
		return perr_fail(e, -EINVAL, "'%s' takes %u argument%s (usage: %s)", row->name,
			    row->min_args, row->min_args == 1 ? "" : "s", u);
	return perr_fail(e, -EINVAL, "'%s' takes %u to %u arguments (usage: %s)", row->name,
		    row->min_args, row->max_args, u);
}

static int exec_command(const struct cmdtab *tab, size_t n, struct cmd_words *cw, void *ctx,
			struct perr *e)
{
	const struct cmdtab *row = find_command(tab, n, cw->w[0]);
	char list[LIST_MAX];

	if (!row)
		return perr_fail(e, -EINVAL, "unknown command '%s' (%s)", SHOW(cw->w[0]),
			    cmd_usages(tab, n, list, sizeof(list)));
	if (cw->n - 1 < row->min_args || cw->n - 1 > row->max_args)
		return bad_arity(row, e);
	return call(row, ctx, cw->n, cw->w, e);
}

/* Word i of a line of settings: its row, its key cut off at the '='. */
static int find_one_setting(const struct cmdtab *tab, size_t n, struct cmd_words *cw, size_t i,
			    const struct cmdtab **row, struct perr *e)
{
	char list[LIST_MAX];
	char *w = cw->w[i];

	if (!cw->keylen[i]) {
		if (find_command(tab, n, w))
			return perr_fail(e, -EINVAL, "'%s' goes on a line of its own, not among settings",
				    SHOW(w));
		return perr_fail(e, -EINVAL, "'%s' is not KEY=VALUE: a line of settings holds only "
			    "settings (%s)", SHOW(w), cmd_usages(tab, n, list, sizeof(list)));
	}
	w[cw->keylen[i]] = '\0';
	if (!(*row = find_setting(tab, n, w)))
		return perr_fail(e, -EINVAL, "unknown setting '%s=' (%s)", SHOW(w),
			    cmd_usages(tab, n, list, sizeof(list)));
	if ((*row)->min_args && !w[cw->keylen[i] + 1])
		return perr_fail(e, -EINVAL, "'%s=' needs a value (usage: %s)", w,
			    (*row)->usage ? (*row)->usage : (*row)->name);
	for (size_t j = 0; j < i; j++)
		if (strcmp(cw->w[j], w) == 0)
			return perr_fail(e, -EINVAL, "'%s=' given twice", w);
	return 0;
}

/* Every key is looked up and checked before the first handler stages its
 * value, so an unknown or repeated key anywhere refuses the whole line. */
static int exec_settings(const struct cmdtab *tab, size_t n, struct cmd_words *cw, void *ctx,
			 struct perr *e)
{
	const struct cmdtab *rows[CMD_WORDS_MAX];
	int rc;

	for (size_t i = 0; i < cw->n; i++)
		if ((rc = find_one_setting(tab, n, cw, i, &rows[i], e)))
			return rc;
	for (size_t i = 0; i < cw->n; i++) {
		char *argv[3] = { cw->w[i], cw->w[i] + cw->keylen[i] + 1, NULL };

		if ((rc = call(rows[i], ctx, 2, argv, e)))
			return rc;
	}
	return 0;
}

int cmd_exec(const struct cmdtab *tab, size_t n, const char *line, void *ctx, char *err,
	     size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	struct cmd_words cw;
	char list[LIST_MAX];
	int rc;

	if ((rc = cmd_tokenize(line, &cw, err, errlen)))
		return rc;
	if (cw.n == 0)
		return perr_fail(&e, -EINVAL, "empty command (%s)", cmd_usages(tab, n, list, sizeof(list)));
	/* A table without settings reads "x=y" as an unknown command. */
	if (cw.keylen[0] && has_settings(tab, n))
		return exec_settings(tab, n, &cw, ctx, &e);
	return exec_command(tab, n, &cw, ctx, &e);
}

/* ---- control writes ---------------------------------------------------- */

/* The command of one line: its CR before the newline dropped; NULL for a
 * blank line or a # comment. */
static const char *command_of(const char *line, size_t *n)
{
	if (line_is_blank(line, *n))
		return NULL;
	if (line[*n - 1] == '\r')   /* not blank: *n > 0 */
		(*n)--;
	return line;
}

/* Check every line of a write and count its commands, before any runs. */
static int check_write(const char *buf, size_t len, const struct cmd_write *how, struct perr *e)
{
	size_t pos = 0, n, ncmds = 0;

	for (const char *line; (line = next_line(buf, len, &pos, &n));) {
		if (!command_of(line, &n))
			continue;
		ncmds++;
		if (line_has_ctrl(line, n))
			return perr_fail(e, -EINVAL, "a control character in the command");
		if (n > CMD_LINE_MAX)
			return perr_fail(e, -EINVAL, "command too long");
	}
	if (!ncmds)
		return perr_fail(e, -EINVAL, "no command in the write");
	if (how && how->max_cmds == 1 && ncmds > 1)
		return how->usage ? perr_fail(e, -EINVAL, "one command per write (%s)", how->usage)
				  : perr_fail(e, -EINVAL, "one command per write");
	if (how && how->max_cmds && ncmds > how->max_cmds)
		return perr_fail(e, -EINVAL, "at most %zu commands per write", how->max_cmds);
	return 0;
}

int cmd_each_line(const char *buf, size_t len, const struct cmd_write *how, cmd_line_fn fn,
		  void *ctx, char *err, size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	char cmd[CMD_LINE_MAX + 1];
	size_t pos = 0, n;
	int rc;

	if (e.len)
		err[0] = '\0';
	if ((rc = check_write(buf, len, how, &e)))
		return rc;
	for (const char *line; (line = next_line(buf, len, &pos, &n));) {
		if (!command_of(line, &n))
			continue;
		memcpy(cmd, line, n);
		cmd[n] = '\0';
		if ((rc = fn(ctx, cmd, err, errlen)) < 0)
			return rc;
	}
	return 0;
}
