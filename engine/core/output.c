/* output.c - capture of a task's stdout/stderr into bounded buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

void out_append(struct outbuf *o, const char *p, size_t n, uint64_t max)
{
	size_t room = o->len < max ? (size_t)(max - o->len) : 0;
	size_t keep = n < room ? n : room;
	o->dropped += n - keep;
	if (!keep)
		return;
	if (o->len + keep > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->len + keep)
			cap *= 2;
		if (cap > max)
			cap = max;
		char *d = realloc(o->data, cap);
		if (!d) {               /* keep what we have; count the rest as lost */
			o->dropped += keep;
			return;
		}
		o->data = d;
		o->cap = cap;
	}
	memcpy(o->data + o->len, p, keep);
	o->len += keep;
}

bool out_drain(struct engine *e, struct outbuf *o, uint64_t max)
{
	char buf[65536];
	if (o->fd < 0)
		return false;
	for (;;) {
		ssize_t n = read(o->fd, buf, sizeof(buf));
		if (n > 0) {
			out_append(o, buf, (size_t)n, max);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		engine_close_soon(e, &o->fd);   /* EOF or a real error: no more */
		return false;
	}
}

size_t out_copy(const struct outbuf *o, uint64_t off, char *buf, size_t size, uint64_t *total)
{
	size_t n = 0;
	if (off < o->len) {
		n = o->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, o->data + off, n);
	}
	if (total)
		*total = o->len;
	return n;
}

void out_free(struct engine *e, struct outbuf *o)
{
	engine_close_watched(e, &o->fd);
	free(o->data);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}
