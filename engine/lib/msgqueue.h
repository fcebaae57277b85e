/* msgqueue.h - message queues with boundaries: the pure core of /channels.
 *
 * A channel carries whole messages, in FIFO order, through two queues:
 *     queue    q[0]: put -> get (q[1] unused)
 *     pipe     q[0]: a -> b,  q[1]: b -> a   (two independent directions)
 *     socket   q[0]: client lines -> get,  q[1]: put -> clients
 * Each queue holds at most `capacity` messages; each message is 1..maxmsg
 * bytes; both queues together buffer at most `max_bytes`.  Closing a channel
 * refuses further puts (EPIPE); readers drain what is left, then see the end.
 *
 * Nothing here locks, blocks or does I/O: the engine owns channels under its
 * lock and decides who waits.  A reader that takes a message but reads only
 * part of it keeps the rest itself (struct chan_rest), so the channel never
 * holds a message that is half gone.
 */
#ifndef PCFS_MSGQUEUE_H
#define PCFS_MSGQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAN_NAME_MAX 64
#define CHAN_CAPACITY_MAX 1000000
#define CHAN_MAXMSG_MAX (16u << 20)

enum chan_type { CHAN_QUEUE, CHAN_PIPE, CHAN_SOCKET, CHAN__TYPES };

struct chan_msg {
	struct chan_msg *next;
	size_t len;
	char data[];
};

/* One direction: a FIFO of messages and its counters. */
struct chan_q {
	struct chan_msg *head, *tail;
	uint32_t depth;            /* messages waiting */
	uint64_t bytes;            /* bytes waiting */
	uint64_t puts, gets;       /* messages ever put / got */
	uint64_t bytes_put, bytes_got;
};

struct chan {
	enum chan_type type;
	uint32_t capacity;         /* messages per queue */
	uint64_t maxmsg;           /* largest message, bytes */
	uint64_t max_bytes;        /* bytes waiting in both queues together */
	bool closed;
	struct chan_q q[2];
};

void chan_init(struct chan *c, enum chan_type type, uint32_t capacity, uint64_t maxmsg,
	       uint64_t max_bytes);
void chan_destroy(struct chan *c);   /* frees every message still waiting */

struct chan_msg *chan_msg_new(const void *data, size_t len);   /* NULL: out of memory */
void chan_msg_free(struct chan_msg *m);

/* Queue a copy of buf[0..len) on q[qi].  0, or:
 *   -EINVAL  len is 0 (an empty message could not be told from the end)
 *   -EPIPE   the channel is closed
 *   -EMSGSIZE len > maxmsg
 *   -ENOSPC  len > max_bytes: it can never fit
 *   -EAGAIN  full (capacity messages, or max_bytes would be exceeded): wait
 *   -ENOMEM */
int chan_put(struct chan *c, int qi, const void *buf, size_t len);
/* The same for a message built by the caller; on success the channel owns
 * it.  Pumps cut what they read to maxmsg, so the size is not checked again. */
int chan_put_msg(struct chan *c, int qi, struct chan_msg *m);
/* Take the oldest message of q[qi]: 1 (*out is the caller's), 0 at the end
 * (closed and drained), -EAGAIN while empty. */
int chan_get(struct chan *c, int qi, struct chan_msg **out);
/* Give back a message that was taken but could not be delivered at all: it
 * becomes the oldest again and is no longer counted as got. */
void chan_unget(struct chan *c, int qi, struct chan_msg *m);

/* Would a get, or a put of len bytes, not wait?  (Also true when it would
 * fail: at the end, or closed.) */
bool chan_can_get(const struct chan *c, int qi);
bool chan_can_put(const struct chan *c, int qi, size_t len);
void chan_close(struct chan *c);
/* A capacity below the current depth is fine: puts wait until it drains. */
void chan_set_capacity(struct chan *c, uint32_t capacity);

/* What a reader has not yet read of the message it took last. */
struct chan_rest {
	struct chan_msg *m;
	size_t off;
};
/* The next at most `size` unread bytes (*p): returns their number, 0 if
 * nothing is left.  They stay valid until chan_rest_advance. */
size_t chan_rest_peek(const struct chan_rest *r, size_t size, const char **p);
/* n bytes were read; the message is freed once all of it has been. */
void chan_rest_advance(struct chan_rest *r, size_t n);
void chan_rest_set(struct chan_rest *r, struct chan_msg *m);
void chan_rest_clear(struct chan_rest *r);
static inline bool chan_rest_empty(const struct chan_rest *r)
{
	return r->m == NULL;
}

/* /channels/ctl lines:
 *   queue NAME [capacity=N] [maxmsg=SIZE]
 *   pipe NAME [capacity=N] [maxmsg=SIZE]
 *   socket NAME [capacity=N] [maxmsg=SIZE]
 * Returns 0 or -EINVAL with a one-line reason in err.  (/channels/NAME/ctl
 * is the channels room's command table.) */
struct chan_spec {
	enum chan_type type;
	char name[CHAN_NAME_MAX + 1];
	uint32_t capacity;         /* 0: the configured default */
	uint64_t maxmsg;           /* 0: the configured default */
};
int chan_parse_create(const char *line, struct chan_spec *out, char *err, size_t errlen);

/* The N of capacity=N, in both ctl files: 1..CHAN_CAPACITY_MAX messages.
 * Returns 0, or -EINVAL with the reason in err. */
int chan_parse_capacity(const char *v, uint32_t *out, char *err, size_t errlen);

/* [A-Za-z0-9._-]{1,64}, and neither "." nor "..". */
bool chan_name_ok(const char *name);
const char *chan_type_name(enum chan_type t);

#endif
