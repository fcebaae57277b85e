/* waitset.c - waiting for many tasks at once (the /wait file).
 *
 * bash's `wait -n` in a loop, or concurrent.futures.as_completed() for
 * tasks: a set of task ids, each reported once, as `ID CODE`, in the order
 * the tasks end.  A reader of one descriptor waits for a whole batch instead
 * of opening `procs/ID/wait` for each task (five FUSE requests a task).
 *
 * Every ended task gets an end number (task.end_seq, in fin_append), and
 * the history list holds ended tasks in that order.  A set remembers the
 * last end number it has looked at (`since`), so a poll walks only the tasks
 * that ended after it, from the newest back, and finds its own among them by
 * binary search: the cost follows the ends, not the size of the set.  A task
 * that ended after `since` and was forgotten before the poll (a small
 * [tasks] history, a quick rmdir) is not on the list any more: then, and
 * only then, every pending id is looked up (engine.forgot_seq tells).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct ws_ent {
	uint64_t id;
	bool done;
};

struct task_waitset {
	struct ws_ent *v;       /* ascending ids: pending, and reported (done) */
	size_t n, cap;
	size_t ndone;
	uint64_t since;         /* every end up to this one has been looked at */
};

/* One end to report: sorted by `seq` before it is written out. */
struct ws_end {
	uint64_t seq;           /* 0: forgotten, order unknown (reported first) */
	uint64_t id;
	enum task_state state;
	int exitcode;
};

struct task_waitset *waitset_new(void)
{
	return calloc(1, sizeof(struct task_waitset));
}

void waitset_free(struct task_waitset *w)
{
	if (!w)
		return;
	free(w->v);
	free(w);
}

size_t waitset_pending(const struct task_waitset *w)
{
	return w->n - w->ndone;
}

static struct ws_ent *ws_find(struct task_waitset *w, uint64_t id)
{
	size_t lo = 0, hi = w->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->v[mid].id == id)
			return &w->v[mid];
		if (w->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_end(const void *a, const void *b)
{
	const struct ws_end *x = a, *y = b;
	if (x->seq != y->seq)
		return (x->seq > y->seq) - (x->seq < y->seq);
	return (x->id > y->id) - (x->id < y->id);
}

/* Drop reported entries once they are half the array (keeps the search short). */
static void ws_compact(struct task_waitset *w)
{
	if (w->ndone * 2 < w->n)
		return;
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++)
		if (!w->v[i].done)
			w->v[k++] = w->v[i];
	w->n = k;
	w->ndone = 0;
}

/* Room for n more entries, before anything is changed. */
static int ws_reserve(struct task_waitset *w, size_t n)
{
	if (w->n + n <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 64;
	while (cap < w->n + n)
		cap *= 2;
	struct ws_ent *v = realloc(w->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	w->v = v;
	w->cap = cap;
	return 0;
}

/* Merge ids[0..n) (sorted, distinct, none in w yet, room reserved) into w. */
static void ws_merge(struct task_waitset *w, const uint64_t *ids, size_t n)
{
	/* from the back: the larger of the two tails moves first */
	size_t i = w->n, j = n, k = w->n + n;
	while (j > 0) {
		if (i > 0 && w->v[i - 1].id > ids[j - 1])
			w->v[--k] = w->v[--i];
		else
			w->v[--k] = (struct ws_ent){ .id = ids[--j] };
	}
	w->n += n;
}

struct ws_found {
	struct ws_end *v;
	size_t n, cap;
	bool oom;
};

static void found_add(struct ws_found *f, uint64_t seq, uint64_t id, const struct task *t)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct ws_end *v = realloc(f->v, cap * sizeof(*v));
		if (!v) {
			f->oom = true;
			return;
		}
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = (struct ws_end){
		.seq = seq, .id = id,
		.state = t ? t->state : TS_STARTING,   /* TS_STARTING: forgotten */
		.exitcode = t ? t->exitcode : 0,
	};
}

/* The pending ids that have ended since w->since, into f (lock held). */
static void ws_collect_locked(struct engine *e, struct task_waitset *w, struct ws_found *f)
{
	if (w->ndone == w->n)
		return;   /* nothing pending (the first write, say): nothing to walk */
	if (e->forgot_seq > w->since) {
		/* something that ended after our last look is gone: look at all */
		for (size_t i = 0; i < w->n; i++) {
			if (w->v[i].done)
				continue;
			struct task *t = task_find(e, w->v[i].id);
			if (!t)
				found_add(f, 0, w->v[i].id, NULL);
			else if (!task_live(t))
				found_add(f, t->end_seq, t->id, t);
		}
	} else {
		for (struct task *t = e->fin_last; t && t->end_seq > w->since; t = t->fprev) {
			struct ws_ent *x = ws_find(w, t->id);
			if (x && !x->done)
				found_add(f, t->end_seq, t->id, t);
		}
	}
}

/* Every end up to now has been looked at; after a failed allocation, none
 * has (the next look is a full one, so nothing is missed). */
static void ws_seen_locked(struct engine *e, struct task_waitset *w, const struct ws_found *f)
{
	w->since = f->oom ? 0 : e->end_seq;
}

/* Report what was found, in the order it ended; mark it done. */
static int ws_report(struct task_waitset *w, struct ws_found *f, struct strbuf *out)
{
	if (f->oom) {
		free(f->v);
		return -ENOMEM;   /* nothing marked: the next look finds them again */
	}
	if (f->n > 1)
		qsort(f->v, f->n, sizeof(*f->v), cmp_end);
	for (size_t i = 0; i < f->n; i++) {
		const struct ws_end *x = &f->v[i];
		sb_printf(out, "%" PRIu64 " ", x->id);
		if (x->state == TS_STARTING)
			sb_adds(out, "forgotten\n");
		else if (!task_state_has_code(x->state))
			sb_printf(out, "%s\n", task_state_name(x->state));
		else
			sb_printf(out, "%d\n", x->exitcode);
		ws_find(w, x->id)->done = true;
		w->ndone++;
	}
	free(f->v);
	ws_compact(w);
	return sb_error(out);
}

long waitset_poll(struct engine *e, struct task_waitset *w, struct strbuf *out)
{
	struct ws_found f = { 0 };
	pthread_mutex_lock(&e->lock);
	ws_collect_locked(e, w, &f);
	ws_seen_locked(e, w, &f);
	pthread_mutex_unlock(&e->lock);
	int rc = ws_report(w, &f, out);
	return rc < 0 ? rc : (long)waitset_pending(w);
}

/* The length of the token at p (up to blank space or the end), for messages. */
static int toklen(const char *p, const char *end)
{
	const char *q = p;
	while (q < end && q - p < 40 && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
		q++;
	return (int)(q - p);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One id or A-B range at p; returns the position after it, or NULL with the
 * reason in err. */
static const char *parse_item(const char *p, const char *end, uint64_t *lo, uint64_t *hi,
			      char *err, size_t errlen)
{
	const char *tok = p;
	uint64_t v[2] = { 0, 0 };
	int k = 0;
	for (;;) {
		if (p == end || *p < '0' || *p > '9')
			goto bad;
		while (p < end && *p >= '0' && *p <= '9') {
			if (v[k] > (UINT64_MAX - 9) / 10) {
				snprintf(err, errlen, "'%.*s': a number too large", toklen(tok, end), tok);
				return NULL;
			}
			v[k] = v[k] * 10 + (uint64_t)(*p++ - '0');
		}
		if (k == 1 || p == end || *p != '-')
			break;
		p++;
		k = 1;
	}
	if (p < end && !is_blank(*p))
		goto bad;
	*lo = v[0];
	*hi = k ? v[1] : v[0];
	if (*lo == 0 || *hi < *lo) {
		snprintf(err, errlen, "'%.*s': ids start at 1, and a range A-B needs A <= B",
			 toklen(tok, end), tok);
		return NULL;
	}
	return p;
bad:
	snprintf(err, errlen, "'%.*s': not a task id or a range A-B", toklen(tok, end), tok);
	return NULL;
}

/* Room for `need` ids in *ids, which holds *cap. */
static int ids_reserve(uint64_t **ids, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	uint64_t *v = realloc(*ids, ncap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*ids = v;
	*cap = ncap;
	return 0;
}

/* Every id of a write, its ranges spelt out, into *ids: every one, or an
 * error with the reason.  *ids is the caller's to free in either case. */
static int parse_ids(const struct engine *e, const char *buf, size_t len, uint64_t **ids,
		     size_t *nout, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	size_t n = 0, cap = 0;
	int rc;

	*nout = 0;
	for (;;) {
		while (p < end && is_blank(*p))
			p++;
		if (p == end)
			break;
		uint64_t lo, hi;
		p = parse_item(p, end, &lo, &hi, err, errlen);
		if (!p)
			return -EINVAL;
		uint64_t span = hi - lo + 1;
		if (span > e->cfg.max_tasks || n + span > (size_t)e->cfg.max_tasks) {
			snprintf(err, errlen, "more ids than [limits] max_tasks=%u tasks can exist",
				 e->cfg.max_tasks);
			return -E2BIG;
		}
		if ((rc = ids_reserve(ids, &cap, n + span)) < 0)
			return rc;
		for (uint64_t id = lo; id <= hi; id++)
			(*ids)[n++] = id;
	}
	if (n == 0) {
		snprintf(err, errlen, "no task ids (write ids or ranges A-B, e.g. '3 5 7-9')");
		return -EINVAL;
	}
	*nout = n;
	return 0;
}

/* Sort ids[0..n) and keep each id once, unless it is pending on this
 * descriptor already (one reported before may be waited for again).
 * Returns how many are kept. */
static size_t ws_new_ids(struct task_waitset *w, uint64_t *ids, size_t n)
{
	size_t k = 0;

	qsort(ids, n, sizeof(*ids), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (k && ids[k - 1] == ids[i])
			continue;
		struct ws_ent *x = ws_find(w, ids[i]);
		if (x && !x->done)
			continue;
		ids[k++] = ids[i];
	}
	return k;
}

/* With `lock` held: ids[0..n) (sorted, from ws_new_ids, room reserved) join
 * the set.  What has ended (or is gone) goes into f, to be told now; the
 * rest waits in the set.  -EINVAL for an id no task has had yet. */
static int ws_add_locked(struct engine *e, struct task_waitset *w, uint64_t *ids, size_t n,
			 struct ws_found *f, char *err, size_t errlen)
{
	if (n && ids[n - 1] >= e->next_id) {
		snprintf(err, errlen, "no task %" PRIu64 " (the newest is %" PRIu64 ")",
			 ids[n - 1], e->next_id - 1);
		return -EINVAL;
	}
	ws_collect_locked(e, w, f);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct ws_ent *x = ws_find(w, ids[i]);   /* reported before: a new wait */
		struct task *t = task_find(e, ids[i]);
		if (x) {
			x->done = false;
			w->ndone--;
		} else {
			ids[k++] = ids[i];
		}
		if (!t)
			found_add(f, 0, ids[i], NULL);
		else if (!task_live(t))
			found_add(f, t->end_seq, t->id, t);
	}
	ws_merge(w, ids, k);
	ws_seen_locked(e, w, f);
	return 0;
}

int waitset_add(struct engine *e, struct task_waitset *w, const char *buf, size_t len,
		struct strbuf *out, char *err, size_t errlen)
{
	uint64_t *ids = NULL;
	size_t n;
	struct ws_found f = { 0 };

	/* every id of the write, or nothing */
	int rc = parse_ids(e, buf, len, &ids, &n, err, errlen);
	if (rc == 0) {
		n = ws_new_ids(w, ids, n);
		rc = ws_reserve(w, n);
	}
	if (rc == 0) {
		pthread_mutex_lock(&e->lock);
		rc = ws_add_locked(e, w, ids, n, &f, err, errlen);
		pthread_mutex_unlock(&e->lock);
	}
	if (rc == 0)
		rc = ws_report(w, &f, out);
	free(ids);
	return rc;
}
