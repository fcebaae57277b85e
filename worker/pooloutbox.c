/* pooloutbox.c - `pcfs-worker pool`: what a slot thread sends.
 *
 * A slot's messages collect in its outbox and go out as one datagram (see
 * "Pipelining" in poolhost.c); a future's output and diagnostics go out at
 * once.  Nothing here takes a lock: the outbox is its slot thread's own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "poolhost.h"
#include "wire.h"

/* "pcfs-worker: <message>\n" into buf, cut to fit.  Returns its length. */
size_t format_reason(char *buf, size_t size, const char *fmt, va_list ap)
{
	static const char prefix[] = "pcfs-worker: ";
	size_t n = sizeof prefix - 1;
	int m;

	memcpy(buf, prefix, n);
	m = vsnprintf(buf + n, size - n - 1, fmt, ap);  /* room for the newline */
	if (m > 0)
		n += (size_t)m < size - n - 1 ? (size_t)m : size - n - 2;
	buf[n++] = '\n';
	return n;
}

/* Send what the slot's outbox holds, as one datagram. */
void outbox_flush(struct slot *s)
{
	wire_batch_send(s->pool->sock, &s->out);
}

/* Put a message in the slot's outbox, sending the outbox first if it is
 * full; a message bigger than any outbox goes alone, after it. */
void outbox_add(struct slot *s, uint32_t type, uint64_t id, int64_t a, int64_t b,
		const void *payload, size_t len)
{
	if (wire_batch_add(&s->out, type, id, a, b, payload, len))
		return;
	outbox_flush(s);
	if (!wire_batch_add(&s->out, type, id, a, b, payload, len))
		wire_send(s->pool->sock, type, id, a, b, payload, len, NULL, 0);
}

/* Output goes out at once, so that a running future's can be followed. */
void future_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len)
{
	const struct future *f = ctx->opaque;

	while (len > 0) {
		size_t n = len < WORKER_OUTPUT_CHUNK ? len : WORKER_OUTPUT_CHUNK;

		outbox_add(f->slot, W_PW_OUTPUT, f->id, stream, 0, buf, n);
		buf += n;
		len -= n;
	}
	outbox_flush(f->slot);
}

/* Why the future failed, on its stderr. */
void future_say(struct future *f, const char *fmt, ...)
{
	char buf[REASON_MAX];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = format_reason(buf, sizeof buf, fmt, ap);
	va_end(ap);
	future_out(&f->ctx, 2, buf, n);
}
