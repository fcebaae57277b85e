/* journal.h - the record format of the state directory's journal.
 *
 * One record per line: a kind word, then `key=value` fields separated by
 * single spaces.  Values are percent-encoded (bytes at or below space, DEL,
 * and '%'), so a record is always one line whatever a task's command held.
 * Appending a line is the only write the journal ever sees between
 * compactions, so a daemon killed mid-way leaves at most one torn last line,
 * which the reader skips.
 *
 * Pure code: no engine, no files (unit-tested in tests/unit/test_journal.c).
 */
#ifndef PCFS_JOURNAL_H
#define PCFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "strbuf.h"

#define JREC_FIELDS 32
#define JREC_KIND_MAX 15

/* Writing: jr_begin, then fields, then jr_end (the newline). */
void jr_begin(struct strbuf *sb, const char *kind);
void jr_str(struct strbuf *sb, const char *key, const char *value);   /* NULL: omitted */
void jr_mem(struct strbuf *sb, const char *key, const char *value, size_t len);
void jr_u64(struct strbuf *sb, const char *key, uint64_t v);
void jr_i64(struct strbuf *sb, const char *key, int64_t v);
void jr_ts(struct strbuf *sb, const char *key, struct timespec ts);   /* sec.nsec */
void jr_end(struct strbuf *sb);

/* Reading: a parsed record points into the line it was parsed from, which is
 * modified in place (values are decoded there). */
struct jrec {
	char kind[JREC_KIND_MAX + 1];
	size_t n;
	struct { const char *key, *value; size_t len; } f[JREC_FIELDS];
};

/* Parse one line (without its newline; NUL-terminated, writable).  -EINVAL
 * for anything that is not a well-formed record. */
int jr_parse(char *line, struct jrec *r);
/* A field's value, or NULL when absent. */
const char *jr_get(const struct jrec *r, const char *key, size_t *len);
/* Typed fields: false when absent or malformed (*out untouched). */
bool jr_get_u64(const struct jrec *r, const char *key, uint64_t *out);
bool jr_get_i64(const struct jrec *r, const char *key, int64_t *out);
bool jr_get_ts(const struct jrec *r, const char *key, struct timespec *out);

#endif
