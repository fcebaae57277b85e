/* reason.h - the one-line reasons the parsers give for a refusal (spec.c,
 * cmdtab.c): written into the caller's buffer if it wants one, quoting the
 * user's text only short and printable, so a reason is always one readable
 * line on the descriptor and in /log. */
#ifndef PCFS_REASON_H
#define PCFS_REASON_H

#include <stddef.h>

struct perr {
	char *buf;
	size_t len;     /* 0: the caller wants no message */
};

/* Format the reason into e (if it wants one) and return rc. */
__attribute__((format(printf, 3, 4)))
int perr_fail(struct perr *e, int rc, const char *fmt, ...);

/* s as a reason may quote it: at most SHOW_MAX bytes, other than printable
 * ASCII as '?', "..." when cut.  SHOW() gives each use its own buffer, which
 * lives until the end of the enclosing block. */
#define SHOW_MAX 40
#define SHOW_BUF (SHOW_MAX + sizeof "...")
#define SHOW(s) reason_show((char[SHOW_BUF]){ 0 }, (s))
const char *reason_show(char *buf, const char *s);

#endif
