/* reason.c - one-line reasons for refusals (see reason.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reason.h"

int perr_fail(struct perr *e, int rc, const char *fmt, ...)
{
	va_list ap;

	if (e->len) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

const char *reason_show(char *buf, const char *s)
{
	size_t i;

	for (i = 0; i < SHOW_MAX && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	strcpy(buf + i, s[i] ? "..." : "");
	return buf;
}
