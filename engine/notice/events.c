/* events.c - the events ring behind /events and pools/NAME/events.
 *
 * Every start and end of a task or future is one fixed record in a ring of
 * [log] events records (no allocation per event; the line is made when it
 * is read).  A reader is a place in the ring, not a queue of its own: a
 * slow reader never holds the engine back, and when the ring has moved past
 * it, it is told how many it missed (`# missed N events`), never silently.
 * A pool's reader counts in its pool's own numbers (pseq), so what it is
 * told it missed is exactly its pool's events, whatever other pools did.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notice_int.h"
#include "emit.h"

const struct ev_what_row ev_whats[EV__COUNT] = {
	[EV_STARTED] = { .name = "started", .final = false },
	[EV_ENDED] = { .name = "ended", .final = true },
};

static const char *const source_names[] = {
	[EV_TASK] = "task", [EV_WORKER] = "worker", [EV_FUTURE] = "future",
};

int ev_ring_init(struct ev_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->v = calloc(cap, sizeof(*r->v));
	if (!r->v)
		return -ENOMEM;
	r->cap = cap;
	return 0;
}

void ev_ring_free(struct ev_ring *r)
{
	free(r->v);
	free(r->pool_last);
	memset(r, 0, sizeof(*r));
}

/* The pool's counter, grown to hold its id; NULL when memory is short. */
static uint64_t *pool_counter(struct ev_ring *r, uint64_t pool)
{
	if (pool >= r->npool) {
		size_t n = r->npool ? r->npool : 16;
		while (n <= pool)
			n *= 2;
		uint64_t *v = realloc(r->pool_last, n * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + r->npool, 0, (n - r->npool) * sizeof(*v));
		r->pool_last = v;
		r->npool = n;
	}
	return &r->pool_last[pool];
}

static uint64_t pool_newest(const struct ev_ring *r, uint64_t pool)
{
	return pool < r->npool ? r->pool_last[pool] : 0;
}

int ev_ring_push(struct ev_ring *r, struct event *ev)
{
	int rc = 0;
	ev->seq = ++r->last;
	ev->pseq = 0;
	if (ev->pool) {
		uint64_t *c = pool_counter(r, ev->pool);
		if (c)
			ev->pseq = ++*c;
		else
			rc = -ENOMEM;
	}
	r->v[(ev->seq - 1) % r->cap] = *ev;
	return rc;
}

static uint64_t ring_first(const struct ev_ring *r)
{
	return r->last >= r->cap ? r->last - r->cap + 1 : 1;
}

static const struct event *ring_at(const struct ev_ring *r, uint64_t seq)
{
	return &r->v[(seq - 1) % r->cap];
}

/* A reader's number for ev: a pool reader counts its pool's events. */
static uint64_t reader_key(const struct event_reader *rd, const struct event *ev)
{
	return rd->pool ? ev->pseq : ev->seq;
}

static bool reader_wants(const struct event_reader *rd, const struct event *ev)
{
	return !rd->pool || (ev->pool == rd->pool && ev->pseq);
}

/* A first read starts at the oldest kept: it expects the first of its own
 * there, or (none kept) the next to come. */
static void reader_begin(const struct ev_ring *r, struct event_reader *rd)
{
	rd->begun = true;
	rd->gpos = ring_first(r);
	rd->next = (rd->pool ? pool_newest(r, rd->pool) : r->last) + 1;
	for (uint64_t s = rd->gpos; s <= r->last; s++) {
		if (reader_wants(rd, ring_at(r, s))) {
			rd->next = reader_key(rd, ring_at(r, s));
			return;
		}
	}
}

long ev_ring_read(const struct ev_ring *r, struct event_reader *rd, struct strbuf *out,
		  size_t max)
{
	size_t start = out->len;
	long lines = 0;
	if (!rd->begun)
		reader_begin(r, rd);
	if (rd->gpos < ring_first(r))
		rd->gpos = ring_first(r);
	while (rd->gpos <= r->last && out->len - start < max) {
		const struct event *ev = ring_at(r, rd->gpos++);
		if (!reader_wants(rd, ev))
			continue;
		uint64_t key = reader_key(rd, ev);
		if (key > rd->next) {
			ev_format_missed(key - rd->next, rd->json, out);
			lines++;
		}
		ev_format(ev, rd->json, out);
		lines++;
		rd->next = key + 1;
	}
	/* caught up: what is newer than the last seen and not in the ring
	 * (every one of a quiet pool's events pushed out) was missed too */
	uint64_t newest = rd->pool ? pool_newest(r, rd->pool) : r->last;
	if (rd->gpos > r->last && newest >= rd->next) {
		ev_format_missed(newest + 1 - rd->next, rd->json, out);
		lines++;
		rd->next = newest + 1;
	}
	return sb_error(out) < 0 ? -ENOMEM : lines;
}

void ev_stamp(struct timespec at, char *buf, size_t len)
{
	struct tm tm;
	char secs[24];
	gmtime_r(&at.tv_sec, &tm);
	strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", secs, at.tv_nsec / 1000000);
}

static void format_text(const struct event *ev, const char *stamp, struct strbuf *out)
{
	sb_printf(out, "%s %" PRIu64 " %s %s %s code=", stamp, ev->id, source_names[ev->source],
		  ev_whats[ev->what].name, ev->state);
	if (ev->has_code)
		sb_printf(out, "%d", ev->code);
	else
		sb_addc(out, '-');
	sb_printf(out, " name=%s", ev->name[0] ? ev->name : "-");
	if (ev->pool_name[0])
		sb_printf(out, " pool=%s", ev->pool_name);
	sb_addc(out, '\n');
}

static void json_str_or_null(struct strbuf *out, const char *key, const char *v)
{
	sb_printf(out, ",\"%s\":", key);
	if (v && v[0])
		json_escape(out, v);
	else
		sb_adds(out, "null");
}

static void format_json(const struct event *ev, const char *stamp, struct strbuf *out)
{
	sb_printf(out, "{\"time\":\"%s\",\"seq\":%" PRIu64 ",\"id\":%" PRIu64
		  ",\"kind\":\"%s\",\"event\":\"%s\",\"state\":\"%s\",\"code\":", stamp, ev->seq,
		  ev->id, source_names[ev->source], ev_whats[ev->what].name, ev->state);
	if (ev->has_code)
		sb_printf(out, "%d", ev->code);
	else
		sb_adds(out, "null");
	json_str_or_null(out, "name", ev->name);
	json_str_or_null(out, "pool", ev->pool_name);
	sb_adds(out, "}\n");
}

void ev_format(const struct event *ev, bool json, struct strbuf *out)
{
	char stamp[40];
	ev_stamp(ev->at, stamp, sizeof(stamp));
	if (json)
		format_json(ev, stamp, out);
	else
		format_text(ev, stamp, out);
}

void ev_format_missed(uint64_t n, bool json, struct strbuf *out)
{
	if (json)
		sb_printf(out, "{\"missed\":%" PRIu64 "}\n", n);
	else
		sb_printf(out, "# missed %" PRIu64 " event%s\n", n, n == 1 ? "" : "s");
}

/* ---- the API: fs reads through these ---------------------------------------------- */

struct event_reader *engine_events_open(struct engine *e, uint64_t pool, bool json)
{
	struct event_reader *rd = calloc(1, sizeof(*rd));
	if (rd) {
		rd->pool = pool;
		rd->json = json;
	}
	return rd;
}

void engine_events_close(struct event_reader *r)
{
	free(r);
}

long engine_events_read(struct engine *e, struct event_reader *r, struct strbuf *out,
			size_t max)
{
	pthread_mutex_lock(&e->lock);
	long n = ev_ring_read(&e->notice->ring, r, out, max);
	pthread_mutex_unlock(&e->lock);
	return n;
}
