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
#include <sys/types.h>

#define CHAN_NAME_MAX 64
#define CHAN_CAPACITY_MAX 1000000
#define CHAN_MAXMSG_MAX (16u << 20)

/* A fifo is a kernel FIFO the channel's users open through its `fifo`
 * symlink: its bytes never cross FUSE (the queues here stay empty). */
enum chan_type { CHAN_QUEUE, CHAN_PIPE, CHAN_SOCKET, CHAN_FIFO, CHAN__TYPES };

/* How writes and reads of a channel's files frame messages (the pumps of
 * task stdio and socket clients frame by lines in either mode):
 *   lines    a write is split at '\n', each complete line (with its newline)
 *            one message; a read returns as many whole messages as fit
 *   message  a write is one message, a read returns at most one: binary data
 * Lines is 0, the default of a channel made without mode=. */
enum chan_mode { CHAN_MODE_LINES, CHAN_MODE_MESSAGE, CHAN__MODES };

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
	enum chan_mode mode;
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
/* The same for one message made of head[0..hlen) then buf[0..len). */
int chan_put_joined(struct chan *c, int qi, const char *head, size_t hlen, const void *buf,
		    size_t len);
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
/* Only while no message waits in either queue (-EBUSY otherwise): messages
 * already framed one way are never read back the other. */
int chan_set_mode(struct chan *c, enum chan_mode mode);

/* Lines mode: queue each complete line of head[0..hlen) + buf[0..len) (the
 * writer's unfinished line, then its new write) on q[qi] as a message.  A
 * write that could fit at once goes in whole or not at all; one of more
 * lines than the capacity, or more bytes than max_bytes, goes in parts: the
 * first lines there is room for.  Returns how many bytes of buf the lines
 * queued take (0 if buf has no newline).  If the rest of buf holds no
 * newline it is the writer's unfinished line again; if it does, the write
 * went in part (the writer sends the rest again).  Or:
 *   -EPIPE    the channel is closed
 *   -EMSGSIZE a line, or the unfinished one, is over maxmsg
 *   -ENOSPC   a line is over max_bytes: it could never fit
 *   -EAGAIN   no room yet (for all the lines, or for the first): wait
 *   -ENOMEM */
ssize_t chan_put_lines(struct chan *c, int qi, const char *head, size_t hlen, const char *buf,
		       size_t len);
/* What chan_put_lines would return now, without queueing anything (the
 * byte count of a success is not worked out: 0). */
int chan_lines_refuse(const struct chan *c, int qi, size_t hlen, const char *buf, size_t len);
/* Take the oldest messages of q[qi] whose lengths add up to at most room,
 * in order, chained by ->next: 1 (*out is the caller's), 0 at the end,
 * -EAGAIN while empty.  If the oldest alone is longer than room, it alone
 * is taken (the caller keeps its rest). */
int chan_get_upto(struct chan *c, int qi, size_t room, struct chan_msg **out);
void chan_msg_free_all(struct chan_msg *list);

/* What a reader has not yet read of the messages it took last: a chain (a
 * lines-mode read takes several at once), the first read from `off` on. */
struct chan_rest {
	struct chan_msg *m;
	size_t off;
};
/* The next at most `size` unread bytes of the first message (*p): returns
 * their number, 0 if nothing is left.  They stay valid until
 * chan_rest_advance. */
size_t chan_rest_peek(const struct chan_rest *r, size_t size, const char **p);
/* How many bytes a read of size takes: the unread part of the first message
 * and the whole messages after it that fit too, or size if that part alone
 * is longer. */
size_t chan_rest_fit(const struct chan_rest *r, size_t size);
/* n bytes were read; each message is freed once all of it has been. */
void chan_rest_advance(struct chan_rest *r, size_t n);
void chan_rest_set(struct chan_rest *r, struct chan_msg *chain);
void chan_rest_clear(struct chan_rest *r);
static inline bool chan_rest_empty(const struct chan_rest *r)
{
	return r->m == NULL;
}

/* /channels/ctl lines:
 *   queue NAME [capacity=N] [maxmsg=SIZE] [mode=lines|message]
 *   pipe NAME [capacity=N] [maxmsg=SIZE] [mode=lines|message]
 *   socket NAME [capacity=N] [maxmsg=SIZE] [mode=lines|message]
 *   fifo NAME [size=SIZE]      (size: the pipe's buffer, 4K..1G, F_SETPIPE_SZ)
 * Returns 0 or -EINVAL with a one-line reason in err.  (/channels/NAME/ctl
 * is the channels room's command table.) */
struct chan_spec {
	enum chan_type type;
	char name[CHAN_NAME_MAX + 1];
	uint32_t capacity;         /* 0: the configured default */
	uint64_t maxmsg;           /* 0: the configured default */
	enum chan_mode mode;       /* lines unless mode=message */
	uint64_t pipe_size;        /* fifo: size=, 0: the kernel's default */
};
int chan_parse_create(const char *line, struct chan_spec *out, char *err, size_t errlen);

/* The N of capacity=N, in both ctl files: 1..CHAN_CAPACITY_MAX messages.
 * Returns 0, or -EINVAL with the reason in err. */
int chan_parse_capacity(const char *v, uint32_t *out, char *err, size_t errlen);
/* The M of mode=M, in both ctl files: lines or message. */
int chan_parse_mode(const char *v, enum chan_mode *out, char *err, size_t errlen);

/* [A-Za-z0-9._-]{1,64}, and neither "." nor "..". */
bool chan_name_ok(const char *name);
const char *chan_type_name(enum chan_type t);
const char *chan_mode_name(enum chan_mode m);

#endif
