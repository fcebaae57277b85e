/* cmdtab.h - control lines through one command table (Plan 9's Cmdtab).
 *
 * Every ctl file takes lines of one of two shapes:
 *
 *   COMMAND [ARG ...]          term, signal USR1, shutdown cancel, close
 *   KEY=VALUE [KEY=VALUE ...]  workers=3, type=thread workers=3, capacity=8
 *
 * A table lists both: a row named "term" is a command, a row named
 * "workers=" (the name ends with '=') is a setting.  cmd_exec() tokenizes a
 * line, finds its rows and checks everything the table says (known names,
 * arity, a key given once) before it calls any handler, so a handler never
 * sees a malformed line.  A line of settings is all or nothing: each
 * setting's handler only checks its value and stages it in the caller's
 * context; once cmd_exec() returns 0 the caller applies what was staged, and
 * when one setting is bad nothing was applied.
 *
 * cmd_each_line() splits a control write into its lines, the one way every
 * ctl file does it.
 *
 * Pure: libc and strbuf.h's line helpers only, no globals, reentrant.
 */
#ifndef PCFS_CMDTAB_H
#define PCFS_CMDTAB_H

#include <stdbool.h>
#include <stddef.h>

#define CMD_LINE_MAX 255    /* longest command line, bytes (the ctl files' limit) */
#define CMD_WORDS_MAX 16    /* most words in one line */

/* A handler gets argv[0] = the command word and argv[1..argc-1] its
 * arguments, unquoted; a setting's handler gets argv[0] = the key (without
 * '=') and argv[1] = the value, argc = 2.  ctx is cmd_exec()'s.  Returns 0, or
 * -errno with a one-line reason in err (errlen may be 0).  argv points into
 * cmd_exec()'s own buffer: copy what must outlive the call. */
typedef int (*cmd_handler)(void *ctx, size_t argc, char **argv, char *err, size_t errlen);

struct cmdtab {
	const char *name;      /* "signal": a command; "workers=": a setting */
	unsigned min_args;     /* words after a command; a setting: 0 lets its value be empty */
	unsigned max_args;     /* a setting: 1 */
	cmd_handler handler;
	const char *usage;     /* "signal N|NAME", "workers=N": in refusals and listings */
};

/* One line in words.  A word that began with an unquoted KEY= (KEY is
 * [a-z_][a-z0-9_]*) is a setting; keylen[i] is then KEY's length, else 0.
 * Quoting the word ('a=b') makes it a plain word. */
struct cmd_words {
	size_t n;
	char *w[CMD_WORDS_MAX + 1];     /* NUL-terminated words in buf; w[n] = NULL */
	size_t keylen[CMD_WORDS_MAX];
	char buf[CMD_LINE_MAX + 1];
};

/* Split line into words: blanks (space, TAB) separate them; '...' is
 * literal; "..." knows \" and \\; a backslash outside quotes takes the next
 * byte literally (spec.c's quoting).  Returns 0; -E2BIG for a line over
 * CMD_LINE_MAX bytes or over CMD_WORDS_MAX words; -EINVAL for a control
 * character, an unterminated quote or a trailing backslash.  The reason goes
 * to err (NUL-terminated, one line, never over errlen-1). */
int cmd_tokenize(const char *line, struct cmd_words *out, char *err, size_t errlen);

/* Run one line through tab[0..n): a command's row, or every setting's row in
 * turn.  Returns 0, -EINVAL (empty line, unknown name, wrong arity, a key
 * given twice, a command among settings), the tokenizer's errors, or the
 * first failing handler's.  An unknown name's reason lists every usage. */
int cmd_exec(const struct cmdtab *tab, size_t n, const char *line, void *ctx, char *err,
	     size_t errlen);

/* "term, kill, signal N|NAME" into buf (truncated to fit, NUL-terminated):
 * what a refusal lists.  Returns buf. */
char *cmd_usages(const struct cmdtab *tab, size_t n, char *buf, size_t len);

/* How a control write is split into commands. */
struct cmd_write {
	size_t max_cmds;       /* most commands one write may hold; 0: any number */
	const char *usage;     /* named when a write holds too many; NULL: none */
};

typedef int (*cmd_line_fn)(void *ctx, const char *line, char *err, size_t errlen);

/* Run each command line of buf[0..len) through fn, in order: blank lines
 * and # comments are skipped, a line's CR before its newline is dropped.
 * Every line is checked before the first runs: -EINVAL with "a control
 * character in the command", "command too long" (over CMD_LINE_MAX bytes),
 * "no command in the write", or "one command per write (USAGE)" /
 * "at most N commands per write".  Then the first failing fn stops the
 * rest (the lines before it have run).  how may be NULL: any number. */
int cmd_each_line(const char *buf, size_t len, const struct cmd_write *how, cmd_line_fn fn,
		  void *ctx, char *err, size_t errlen);

#endif
