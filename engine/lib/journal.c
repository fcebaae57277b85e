/* journal.c - encode and decode journal records (see journal.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

static bool needs_escape(unsigned char c)
{
	return c <= ' ' || c == 0x7f || c == '%';
}

void jr_begin(struct strbuf *sb, const char *kind)
{
	sb_adds(sb, kind);
}

void jr_mem(struct strbuf *sb, const char *key, const char *value, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	sb_addc(sb, ' ');
	sb_adds(sb, key);
	sb_addc(sb, '=');
	size_t run = 0;       /* copy unescaped stretches in one piece */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (!needs_escape(c))
			continue;
		sb_add(sb, value + run, i - run);
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
		sb_add(sb, esc, 3);
		run = i + 1;
	}
	sb_add(sb, value + run, len - run);
}

void jr_str(struct strbuf *sb, const char *key, const char *value)
{
	if (value)
		jr_mem(sb, key, value, strlen(value));
}

void jr_u64(struct strbuf *sb, const char *key, uint64_t v)
{
	sb_printf(sb, " %s=%" PRIu64, key, v);
}

void jr_i64(struct strbuf *sb, const char *key, int64_t v)
{
	sb_printf(sb, " %s=%" PRId64, key, v);
}

void jr_ts(struct strbuf *sb, const char *key, struct timespec ts)
{
	sb_printf(sb, " %s=%lld.%09ld", key, (long long)ts.tv_sec, ts.tv_nsec);
}

void jr_end(struct strbuf *sb)
{
	sb_addc(sb, '\n');
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s in place; returns the decoded length or -1. */
static long decode(char *s)
{
	char *w = s;
	for (const char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (hi < 0 || lo < 0)
			return -1;
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = '\0';
	return (long)(w - s);
}

int jr_parse(char *line, struct jrec *r)
{
	memset(r, 0, sizeof(*r));
	char *save = NULL;
	char *tok = strtok_r(line, " ", &save);
	if (!tok || strlen(tok) > JREC_KIND_MAX || strchr(tok, '='))
		return -EINVAL;
	strcpy(r->kind, tok);
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || r->n == JREC_FIELDS)
			return -EINVAL;
		*eq = '\0';
		long len = decode(eq + 1);
		if (len < 0)
			return -EINVAL;
		r->f[r->n].key = tok;
		r->f[r->n].value = eq + 1;
		r->f[r->n].len = (size_t)len;
		r->n++;
	}
	return 0;
}

const char *jr_get(const struct jrec *r, const char *key, size_t *len)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->f[i].key, key)) {
			if (len)
				*len = r->f[i].len;
			return r->f[i].value;
		}
	return NULL;
}

bool jr_get_u64(const struct jrec *r, const char *key, uint64_t *out)
{
	const char *v = jr_get(r, key, NULL);
	if (!v || *v < '0' || *v > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

bool jr_get_i64(const struct jrec *r, const char *key, int64_t *out)
{
	const char *v = jr_get(r, key, NULL);
	if (!v || !*v)
		return false;
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

bool jr_get_ts(const struct jrec *r, const char *key, struct timespec *out)
{
	const char *v = jr_get(r, key, NULL);
	if (!v)
		return false;
	char *end;
	errno = 0;
	long long s = strtoll(v, &end, 10);
	if (errno || *end != '.' || s < 0)
		return false;
	const char *ns = end + 1;
	long n = strtol(ns, &end, 10);
	if (*end || end - ns != 9 || n < 0 || n > 999999999)
		return false;
	out->tv_sec = (time_t)s;
	out->tv_nsec = n;
	return true;
}
