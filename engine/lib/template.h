/* template.h - command templates: one task line per input, in the spirit of
 * GNU parallel's replacement strings.
 *
 *   exec /opt/bin/square {}          sh convert {} {.}.png
 *
 * A template is a task line with placeholders:
 *
 *   {}        the whole input line, as written
 *   {N}       its Nth field (1..99), fields separated by blanks (space, TAB);
 *             empty past the last field
 *   {.}       the input without its extension ("dir/a.tar.gz" -> "dir/a.tar")
 *   {/}       its base name; {//} its directory (dirname(1)); {/.} both
 *   {#}       the input's sequence number (the future's id)
 *   {%}       the worker slot that runs it: not known here, so expansion
 *             leaves a marker that tmpl_fill_slot() fills when a worker
 *             takes the future
 *
 * Anything else in braces is text; so is a `{` right after a `$` (${1} and
 * ${#} are sh's) or after a backslash outside single quotes (\{} is a
 * literal {}).  A template without a placeholder gets " {}" appended (exec
 * and sh; a built-in without one runs as it is, once per input).
 *
 * Quoting.  exec and sh templates get each value so that it arrives as one
 * literal word: bare when it is made only of A-Z a-z 0-9 _ + , . / : @ -,
 * else in single quotes ('\'' for a quote), the way both sh and the task
 * grammar read it.  A placeholder inside the template's own '...' or "..."
 * closes that quote around the value and opens it again.  A placeholder that
 * begins a word where the task grammar could take it for COUNT, an option
 * or "--" is always quoted, so an input is never more than an argument.  In
 * an sh command line a placeholder may not follow a backquote, a $' or $",
 * or a $( or ${ inside double quotes: there sh quotes differently from what
 * can be seen at this level, so the template is refused.  Built-in
 * workloads (sleep time={}) take values as they are, and refuse values with
 * blanks, quotes or backslashes.
 *
 * Pure: libc, spec.h and strbuf.h only; no globals, reentrant.
 */
#ifndef PCFS_TEMPLATE_H
#define PCFS_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmdtab.h"
#include "spec.h"
#include "strbuf.h"

#define TMPL_MAX CMD_LINE_MAX    /* longest template: it is written on a ctl line */
#define TMPL_PH_MAX 128          /* most placeholders in one template */

enum tmpl_what { PH_WHOLE, PH_FIELD, PH_NOEXT, PH_BASE, PH_DIR, PH_BASE_NOEXT, PH_SEQ, PH_SLOT };

/* A placeholder of a compiled template. */
struct tmpl_ph {
	uint16_t at, len;              /* where it is in text */
	uint8_t what;                  /* enum tmpl_what */
	uint8_t field;                 /* PH_FIELD: 1..99 */
	uint8_t quote;                 /* the template's quote around it: 0, '\'' or '"' */
	bool lead;                     /* begins a word the grammar might not take as an argument */
};

struct tmpl {
	enum workload workload;
	bool raw;                      /* a built-in: values go in as they are */
	bool uses_seq, uses_slot;      /* has {#}, {%} */
	size_t n;
	struct tmpl_ph ph[TMPL_PH_MAX];
	char text[TMPL_MAX + 4];       /* the template, " {}" appended if it had none */
};

/* Check a template and find its placeholders.  0, or -EINVAL with the
 * reason in err (an empty template, an unknown workload, a placeholder in
 * the workload's word, a COUNT, {%} in a built-in or an option, an
 * unterminated quote, a placeholder where sh's quoting cannot be followed);
 * -E2BIG over TMPL_MAX bytes.  Whether the lines it makes parse is the
 * caller's to check (tmpl_sample()). */
int tmpl_compile(const char *text, struct tmpl *t, char *err, size_t errlen);

/* The task line for one input line in[0..len) with sequence number seq,
 * appended to out.  0, or -EINVAL with the reason in err: a control
 * character in the input, or a built-in's value with a blank, a quote or a
 * backslash.  {%} is left as a marker (see tmpl_fill_slot). */
int tmpl_expand(const struct tmpl *t, const char *in, size_t len, uint64_t seq,
		struct strbuf *out, char *err, size_t errlen);

/* The line every value "1" makes (and slot 1): what a template is checked
 * with when it is set. */
void tmpl_sample(const struct tmpl *t, struct strbuf *out);

/* A line tmpl_expand() made from a template with {%}, its markers replaced
 * by slot: appended to out. */
void tmpl_fill_slot(const char *line, unsigned slot, struct strbuf *out);

/* s as one word of a ctl line or task line ('...', '\'' for a quote),
 * appended to out: how a template is shown so it can be written back. */
void tmpl_quote_word(const char *s, struct strbuf *out);

#endif
