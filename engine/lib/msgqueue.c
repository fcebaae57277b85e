/* msgqueue.c - message queues with boundaries (see msgqueue.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgqueue.h"
#include "reason.h"
#include "spec.h"

static const char *const type_names[CHAN__TYPES] = {
	[CHAN_QUEUE] = "queue", [CHAN_PIPE] = "pipe", [CHAN_SOCKET] = "socket", [CHAN_FIFO] = "fifo",
};

static const char *const mode_names[CHAN__MODES] = {
	[CHAN_MODE_LINES] = "lines", [CHAN_MODE_MESSAGE] = "message",
};

const char *chan_type_name(enum chan_type t)
{
	return (unsigned)t < CHAN__TYPES ? type_names[t] : "?";
}

const char *chan_mode_name(enum chan_mode m)
{
	return (unsigned)m < CHAN__MODES ? mode_names[m] : "?";
}

void chan_init(struct chan *c, enum chan_type type, uint32_t capacity, uint64_t maxmsg,
	       uint64_t max_bytes)
{
	memset(c, 0, sizeof(*c));
	c->type = type;
	c->capacity = capacity;
	c->maxmsg = maxmsg;
	c->max_bytes = max_bytes;
}

void chan_destroy(struct chan *c)
{
	for (int qi = 0; qi < 2; qi++) {
		for (struct chan_msg *m = c->q[qi].head, *n; m; m = n) {
			n = m->next;
			free(m);
		}
		c->q[qi].head = c->q[qi].tail = NULL;
		c->q[qi].depth = 0;
		c->q[qi].bytes = 0;
	}
}

struct chan_msg *chan_msg_new(const void *data, size_t len)
{
	struct chan_msg *m = malloc(sizeof(*m) + len);
	if (!m)
		return NULL;
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	return m;
}

void chan_msg_free(struct chan_msg *m)
{
	free(m);
}

void chan_msg_free_all(struct chan_msg *list)
{
	for (struct chan_msg *n; list; list = n) {
		n = list->next;
		free(list);
	}
}

static uint64_t bytes_waiting(const struct chan *c)
{
	return c->q[0].bytes + c->q[1].bytes;
}

bool chan_can_get(const struct chan *c, int qi)
{
	return c->q[qi].depth > 0 || c->closed;
}

/* Why a message of len bytes cannot be queued now, or 0. */
static int refuse(const struct chan *c, int qi, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (c->closed)
		return -EPIPE;
	if (len > c->max_bytes)
		return -ENOSPC;
	if (c->q[qi].depth >= c->capacity || bytes_waiting(c) + len > c->max_bytes)
		return -EAGAIN;
	return 0;
}

bool chan_can_put(const struct chan *c, int qi, size_t len)
{
	return refuse(c, qi, len ? len : 1) != -EAGAIN;
}

int chan_put_msg(struct chan *c, int qi, struct chan_msg *m)
{
	int rc = refuse(c, qi, m->len);
	if (rc < 0)
		return rc;
	struct chan_q *q = &c->q[qi];
	m->next = NULL;
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->depth++;
	q->bytes += m->len;
	q->puts++;
	q->bytes_put += m->len;
	return 0;
}

int chan_put_joined(struct chan *c, int qi, const char *head, size_t hlen, const void *buf,
		    size_t len)
{
	if (hlen + len > c->maxmsg)
		return c->closed ? -EPIPE : -EMSGSIZE;
	int rc = refuse(c, qi, hlen + len);
	if (rc < 0)
		return rc;
	struct chan_msg *m = malloc(sizeof(*m) + hlen + len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = hlen + len;
	if (hlen)
		memcpy(m->data, head, hlen);
	memcpy(m->data + hlen, buf, len);
	return chan_put_msg(c, qi, m);
}

int chan_put(struct chan *c, int qi, const void *buf, size_t len)
{
	return chan_put_joined(c, qi, NULL, 0, buf, len);
}

int chan_get(struct chan *c, int qi, struct chan_msg **out)
{
	struct chan_q *q = &c->q[qi];
	struct chan_msg *m = q->head;
	if (!m)
		return c->closed ? 0 : -EAGAIN;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	m->next = NULL;
	q->depth--;
	q->bytes -= m->len;
	q->gets++;
	q->bytes_got += m->len;
	*out = m;
	return 1;
}

void chan_unget(struct chan *c, int qi, struct chan_msg *m)
{
	struct chan_q *q = &c->q[qi];
	m->next = q->head;
	q->head = m;
	if (!q->tail)
		q->tail = m;
	q->depth++;
	q->bytes += m->len;
	q->gets--;
	q->bytes_got -= m->len;
}

void chan_close(struct chan *c)
{
	c->closed = true;
}

void chan_set_capacity(struct chan *c, uint32_t capacity)
{
	c->capacity = capacity;
}

int chan_set_mode(struct chan *c, enum chan_mode mode)
{
	if (c->q[0].depth || c->q[1].depth)
		return -EBUSY;
	c->mode = mode;
	return 0;
}

int chan_get_upto(struct chan *c, int qi, size_t room, struct chan_msg **out)
{
	struct chan_msg *first;
	int rc = chan_get(c, qi, &first);
	if (rc <= 0)
		return rc;
	struct chan_msg *last = first;
	size_t used = first->len;
	while (used < room && c->q[qi].head && c->q[qi].head->len <= room - used) {
		struct chan_msg *m;
		chan_get(c, qi, &m);
		used += m->len;
		last->next = m;
		last = m;
	}
	*out = first;
	return 1;
}

/* ---- lines mode ---------------------------------------------------------------- */

/* The complete lines of head + buf (head, the writer's unfinished line, begins
 * the first): how many, their bytes, the longest, where in buf the last one
 * ends (0: buf has no newline) and the unfinished line left after it; and
 * how many of the first ones fit in the room there is now (fit_n lines,
 * ending at fit_end in buf). */
struct line_count {
	size_t n, bytes, longest, end, unfinished;
	size_t fit_n, fit_end;
};

static struct line_count count_lines(const struct chan *c, int qi, size_t hlen,
				     const char *buf, size_t len)
{
	struct line_count lc = { 0 };
	uint64_t room_n = c->q[qi].depth < c->capacity ? c->capacity - c->q[qi].depth : 0;
	uint64_t room_bytes = c->max_bytes > bytes_waiting(c) ? c->max_bytes - bytes_waiting(c) : 0;
	size_t start = 0;
	for (const char *nl; (nl = memchr(buf + start, '\n', len - start));) {
		size_t end = (size_t)(nl - buf) + 1;
		size_t line = end - start + (lc.n == 0 ? hlen : 0);
		lc.n++;
		lc.bytes += line;
		if (line > lc.longest)
			lc.longest = line;
		if (lc.fit_n == lc.n - 1 && lc.n <= room_n && lc.bytes <= room_bytes) {
			lc.fit_n = lc.n;
			lc.fit_end = end;
		}
		start = end;
	}
	lc.end = start;
	lc.unfinished = lc.n ? len - start : hlen + len;
	return lc;
}

/* 0: put the first *take lines (ending at buf[*end]), or -errno.  A write
 * that could go in at once goes in whole or waits; one that never could
 * (more lines than the capacity, more bytes than max_bytes) goes in parts,
 * as many lines as there is room for, so a big write streams through a
 * small channel rather than fail. */
static int lines_to_put(const struct chan *c, const struct line_count *lc, size_t *take,
			size_t *end)
{
	*take = *end = 0;
	if (c->closed)
		return -EPIPE;
	if (lc->longest > c->maxmsg || lc->unfinished > c->maxmsg)
		return -EMSGSIZE;
	if (lc->longest > c->max_bytes)
		return -ENOSPC;   /* this line alone could never fit */
	if (lc->n == 0)
		return 0;
	bool whole = lc->n <= c->capacity && lc->bytes <= c->max_bytes;
	if (whole ? lc->fit_n < lc->n : lc->fit_n == 0)
		return -EAGAIN;
	*take = lc->fit_n;
	*end = lc->fit_end;
	return 0;
}

int chan_lines_refuse(const struct chan *c, int qi, size_t hlen, const char *buf, size_t len)
{
	struct line_count lc = count_lines(c, qi, hlen, buf, len);
	size_t take, end;
	return lines_to_put(c, &lc, &take, &end);
}

/* The lines as messages, chained by ->next; NULL if out of memory. */
static struct chan_msg *make_lines(const char *head, size_t hlen, const char *buf, size_t end)
{
	struct chan_msg *first = NULL, **tail = &first;
	for (size_t start = 0; start < end;) {
		size_t stop = (size_t)((const char *)memchr(buf + start, '\n', end - start) - buf) + 1;
		size_t h = start == 0 ? hlen : 0;
		struct chan_msg *m = malloc(sizeof(*m) + h + stop - start);
		if (!m) {
			chan_msg_free_all(first);
			return NULL;
		}
		m->next = NULL;
		m->len = h + stop - start;
		if (h)
			memcpy(m->data, head, h);
		memcpy(m->data + h, buf + start, stop - start);
		*tail = m;
		tail = &m->next;
		start = stop;
	}
	return first;
}

ssize_t chan_put_lines(struct chan *c, int qi, const char *head, size_t hlen, const char *buf,
		       size_t len)
{
	struct line_count lc = count_lines(c, qi, hlen, buf, len);
	size_t take, end;
	int rc = lines_to_put(c, &lc, &take, &end);
	if (rc < 0 || take == 0)
		return rc;
	struct chan_msg *list = make_lines(head, hlen, buf, end);
	if (!list)
		return -ENOMEM;
	for (struct chan_msg *m = list, *n; m; m = n) {
		n = m->next;
		chan_put_msg(c, qi, m);   /* room for all of them was checked */
	}
	return (ssize_t)end;
}

/* ---- partial reads ---------------------------------------------------------- */

size_t chan_rest_peek(const struct chan_rest *r, size_t size, const char **p)
{
	if (!r->m) {
		*p = NULL;
		return 0;
	}
	size_t left = r->m->len - r->off;
	*p = r->m->data + r->off;
	return left < size ? left : size;
}

size_t chan_rest_fit(const struct chan_rest *r, size_t size)
{
	if (!r->m)
		return 0;
	size_t n = r->m->len - r->off;
	if (n >= size)
		return size;
	for (const struct chan_msg *m = r->m->next; m && m->len <= size - n; m = m->next)
		n += m->len;
	return n;
}

void chan_rest_advance(struct chan_rest *r, size_t n)
{
	while (r->m && n) {
		size_t left = r->m->len - r->off, step = n < left ? n : left;
		r->off += step;
		n -= step;
		if (r->off < r->m->len)
			return;
		struct chan_msg *next = r->m->next;
		free(r->m);
		r->m = next;
		r->off = 0;
	}
}

void chan_rest_set(struct chan_rest *r, struct chan_msg *chain)
{
	chan_rest_clear(r);
	r->m = chain;
	r->off = 0;
}

void chan_rest_clear(struct chan_rest *r)
{
	chan_msg_free_all(r->m);
	r->m = NULL;
	r->off = 0;
}

/* ---- control lines ------------------------------------------------------------ */

bool chan_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CHAN_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-") == n;
}

#define WORDS_MAX 8
#define LINE_MAX_ 512

/* Split a copy of line into blank-separated words; returns their number, or
 * -1 if there are too many or the line is too long. */
static int split(const char *line, char *copy, char *words[WORDS_MAX])
{
	if (strlen(line) >= LINE_MAX_)
		return -1;
	strcpy(copy, line);
	int n = 0;
	for (char *save = NULL, *w = strtok_r(copy, " \t\r\n", &save); w;
	     w = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == WORDS_MAX)
			return -1;
		words[n++] = w;
	}
	return n;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int chan_parse_capacity(const char *v, uint32_t *out, char *err, size_t errlen)
{
	uint64_t n;
	if (parse_uint(v, CHAN_CAPACITY_MAX, &n) < 0 || n == 0)
		return bad(err, errlen, "capacity=%s: want 1..1000000 messages", SHOW(v));
	*out = (uint32_t)n;
	return 0;
}

int chan_parse_mode(const char *v, enum chan_mode *out, char *err, size_t errlen)
{
	for (int m = 0; m < CHAN__MODES; m++) {
		if (!strcmp(v, mode_names[m])) {
			*out = (enum chan_mode)m;
			return 0;
		}
	}
	return bad(err, errlen, "mode=%s: want lines or message", SHOW(v));
}

/* A fifo is the kernel's pipe: its buffer's size is all there is to set
 * (it has no messages to count, bound or frame). */
static int parse_fifo_options(char **w, int n, struct chan_spec *out, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		uint64_t v;
		if (strncmp(w[i], "size=", 5))
			return bad(err, errlen, "a fifo takes only size=SIZE (its pipe buffer), not '%s'",
				   SHOW(w[i]));
		if (parse_size(w[i] + 5, &v) < 0 || v < 4096 || v > (1u << 30))
			return bad(err, errlen, "size=%s: want a size of 4K..1G", SHOW(w[i] + 5));
		out->pipe_size = v;
	}
	return 0;
}

int chan_parse_create(const char *line, struct chan_spec *out, char *err, size_t errlen)
{
	char copy[LINE_MAX_], *w[WORDS_MAX];
	int n = split(line, copy, w);
	memset(out, 0, sizeof(*out));
	if (n < 0)
		return bad(err, errlen, "line too long or too many words (the limits are %d bytes, "
			   "%d words)", LINE_MAX_ - 1, WORDS_MAX);
	if (n < 2)
		return bad(err, errlen, "want: queue|pipe|socket NAME [capacity=N] [maxmsg=SIZE] "
			   "[mode=lines|message], or fifo NAME [size=SIZE]");
	int t;
	for (t = 0; t < CHAN__TYPES; t++)
		if (!strcmp(w[0], type_names[t]))
			break;
	if (t == CHAN__TYPES)
		return bad(err, errlen, "unknown channel type '%s' (queue, pipe, socket, fifo)",
			   SHOW(w[0]));
	out->type = (enum chan_type)t;
	if (!chan_name_ok(w[1]))
		return bad(err, errlen, "bad channel name '%s': 1 to 64 of A-Z a-z 0-9 . _ - "
			   "(not . or ..)", SHOW(w[1]));
	strcpy(out->name, w[1]);
	if (out->type == CHAN_FIFO)
		return parse_fifo_options(w + 2, n - 2, out, err, errlen);
	for (int i = 2; i < n; i++) {
		if (!strncmp(w[i], "capacity=", 9)) {
			if (chan_parse_capacity(w[i] + 9, &out->capacity, err, errlen) < 0)
				return -EINVAL;
		} else if (!strncmp(w[i], "maxmsg=", 7)) {
			uint64_t v;
			if (parse_size(w[i] + 7, &v) < 0 || v == 0 || v > CHAN_MAXMSG_MAX)
				return bad(err, errlen, "maxmsg=%s: want a size of 1..16M", SHOW(w[i] + 7));
			out->maxmsg = v;
		} else if (!strncmp(w[i], "mode=", 5)) {
			if (chan_parse_mode(w[i] + 5, &out->mode, err, errlen) < 0)
				return -EINVAL;
		} else {
			return bad(err, errlen, "unknown option '%s' (capacity=N, maxmsg=SIZE, "
				   "mode=lines|message)", SHOW(w[i]));
		}
	}
	return 0;
}
