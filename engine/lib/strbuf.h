/* strbuf.h - a growable byte buffer, the one text type pcfs renders into.
 * Allocation failures are sticky: after one, the buffer reports ENOMEM from
 * sb_error() and further appends are no-ops, so renderers need not check each
 * call (seq_file's overflow idea). */
#ifndef PCFS_STRBUF_H
#define PCFS_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *buf;      /* NUL-terminated when len > 0 or after sb_cstr() */
	size_t len;
	size_t cap;
	bool oom;
};

#define STRBUF_INIT { 0 }

void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);                 /* len = 0, keep the memory */
void sb_add(struct strbuf *sb, const void *p, size_t n);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_consume(struct strbuf *sb, size_t n);     /* drop the first n bytes */
int sb_reserve(struct strbuf *sb, size_t n);      /* room for n more: 0 or -ENOMEM */
const char *sb_cstr(struct strbuf *sb);           /* never NULL */
int sb_error(const struct strbuf *sb);            /* 0 or -ENOMEM */
char *sb_steal(struct strbuf *sb);                /* caller frees; sb is reset */

/* The lines of buf[0..len), one per call: returns the next line (without
 * its newline) and sets *linelen, or NULL at the end.  Start with *pos = 0. */
const char *next_line(const char *buf, size_t len, size_t *pos, size_t *linelen);
/* Is this line blank or a # comment? */
bool line_is_blank(const char *line, size_t len);
/* Does it hold a NUL or a control character other than TAB and CR? */
bool line_has_ctrl(const char *line, size_t len);

#endif
