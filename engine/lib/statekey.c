/* statekey.c - a mountpoint's default state dir name (see statekey.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "statekey.h"
#include "strbuf.h"

static bool plain(unsigned char c, bool first)
{
	if (first && c == '.')
		return false;
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '_' || c == '.';
}

/* FNV-1a: stable across builds and machines, which is all a name needs. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

int statekey(const char *path, char *buf, size_t len)
{
	if (!path || path[0] != '/' || len < STATEKEY_MAX + 1)
		return -EINVAL;
	struct strbuf sb = STRBUF_INIT;
	const char *p = path;
	while (*p == '/')
		p++;
	size_t end = strlen(p);
	while (end && p[end - 1] == '/')
		end--;
	if (!end)
		sb_addc(&sb, '-');
	for (size_t i = 0; i < end; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '/') {
			if (p[i + 1] != '/')       /* "a//b" is "a/b" */
				sb_addc(&sb, '-');
		} else if (plain(c, i == 0)) {
			sb_addc(&sb, (char)c);
		} else {
			sb_printf(&sb, "+%02x", c);
		}
	}
	if (sb_error(&sb)) {
		sb_free(&sb);
		return -ENOMEM;
	}
	if (sb.len <= STATEKEY_MAX) {
		snprintf(buf, len, "%s", sb_cstr(&sb));
	} else {
		/* head, '-', 16 hex digits: STATEKEY_MAX bytes */
		snprintf(buf, len, "%.*s-%016" PRIx64, STATEKEY_MAX - 17, sb_cstr(&sb), fnv1a(path));
	}
	sb_free(&sb);
	return 0;
}
