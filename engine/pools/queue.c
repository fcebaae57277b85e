/* queue.c - a pool's pending queue, ordered by priority, then by submission.
 *
 * Futures that wait to be handed out (not those already at a worker, nor
 * Slurm jobs) are in one FIFO bucket per priority they have; the buckets
 * are an array sorted by priority, lowest first, so the next future is the
 * head of the highest bucket that is not empty.  A pool uses few distinct
 * priorities (usually one), so taking the next future costs O(1), putting
 * one in O(log buckets), and taking one out (cancel, priority=) O(1): the
 * futures of a bucket are a doubly linked list (qnext, qprev).
 *
 * Buckets are never removed, only left empty: every future's priority has
 * its bucket from the moment it has that priority (made at submit, at a
 * priority= change, at a restore), so putting a future back (a retry, a
 * revoke, a worker's death) never allocates and cannot fail.  There are at
 * most PRIORITY_MAX - PRIORITY_MIN + 1 of them.
 *
 * All with `lock` held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pools_int.h"

#define BUCKETS_FIRST 4   /* room made with the pool: priority 0 and a few more */

int queue_init(struct pool *p)
{
	p->q.b = calloc(BUCKETS_FIRST, sizeof(*p->q.b));
	if (!p->q.b)
		return -ENOMEM;
	p->q.cap = BUCKETS_FIRST;
	p->q.n = 1;   /* priority 0, the default: a pool always has a bucket */
	return 0;
}

void queue_free(struct pool *p)
{
	free(p->q.b);
	p->q.b = NULL;
	p->q.n = p->q.cap = 0;
}

/* The index of priority prio's bucket, or where it would go (*found false). */
static size_t bucket_index(const struct pqueue *q, int prio, bool *found)
{
	size_t lo = 0, hi = q->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (q->b[mid].prio == prio) {
			*found = true;
			return mid;
		}
		if (q->b[mid].prio < prio)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

int queue_bucket(struct pool *p, int prio)
{
	struct pqueue *q = &p->q;
	bool found;
	size_t i = bucket_index(q, prio, &found);
	if (found)
		return 0;
	if (q->n == q->cap) {
		size_t cap = q->cap * 2;
		struct pbucket *v = realloc(q->b, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		q->b = v;
		q->cap = cap;
	}
	memmove(&q->b[i + 1], &q->b[i], (q->n - i) * sizeof(*q->b));
	q->b[i] = (struct pbucket){ .prio = prio };
	q->n++;
	if (q->top > i || (q->top == i && p->queued))
		q->top++;   /* it names the same bucket as before */
	return 0;
}

/* f's bucket.  It exists (see the top); should memory ever have failed
 * where it was made, the nearest one below takes f: its order is then
 * approximate, but nothing is lost. */
static size_t bucket_of(struct pool *p, const struct future *f)
{
	bool found;
	size_t i = bucket_index(&p->q, f->priority, &found);
	if (!found && queue_bucket(p, f->priority) < 0)
		return i ? i - 1 : 0;
	if (!found)
		i = bucket_index(&p->q, f->priority, &found);
	return i;
}

/* f goes between prev and next of bucket b (either may be NULL). */
static void link_between(struct pool *p, size_t bi, struct future *prev, struct future *f,
			 struct future *next)
{
	struct pbucket *b = &p->q.b[bi];
	f->qprev = prev;
	f->qnext = next;
	if (prev)
		prev->qnext = f;
	else
		b->head = f;
	if (next)
		next->qprev = f;
	else
		b->tail = f;
	f->state = FUT_PENDING;
	f->in_queue = true;
	if (!p->queued || bi > p->q.top)
		p->q.top = bi;
	p->queued++;
}

void fut_enqueue(struct pool *p, struct future *f, bool front)
{
	size_t bi = bucket_of(p, f);
	struct pbucket *b = &p->q.b[bi];
	if (front)
		link_between(p, bi, NULL, f, b->head);
	else
		link_between(p, bi, b->tail, f, NULL);
}

/* In id order among the futures of its priority: a future taken back from
 * a worker, or given a new priority, was submitted after those it passed
 * (or before).  Walked from the end nearer its id: futures given new
 * priorities one after another, in id order, each go in at once. */
void fut_enqueue_by_id(struct pool *p, struct future *f)
{
	size_t bi = bucket_of(p, f);
	struct pbucket *b = &p->q.b[bi];
	struct future *next = b->head;
	if (b->head && (int64_t)(f->id - b->head->id) > (int64_t)(b->tail->id - f->id)) {
		struct future *prev = b->tail;
		while (prev && prev->id > f->id)
			prev = prev->qprev;
		next = prev ? prev->qnext : b->head;
	} else {
		while (next && next->id < f->id)
			next = next->qnext;
	}
	link_between(p, bi, next ? next->qprev : b->tail, f, next);
}

/* The highest bucket that holds a future (the queue is not empty). */
static struct pbucket *top_bucket(struct pool *p)
{
	while (p->q.top > 0 && !p->q.b[p->q.top].head)
		p->q.top--;
	return &p->q.b[p->q.top];
}

struct future *fut_queue_first(struct pool *p)
{
	return p->queued ? top_bucket(p)->head : NULL;
}

void fut_unqueue(struct pool *p, struct future *f)
{
	if (!f->in_queue)
		return;
	struct pbucket *b = &p->q.b[bucket_of(p, f)];
	if (f->qprev)
		f->qprev->qnext = f->qnext;
	else
		b->head = f->qnext;
	if (f->qnext)
		f->qnext->qprev = f->qprev;
	else
		b->tail = f->qprev;
	f->qnext = f->qprev = NULL;
	f->in_queue = false;
	p->queued--;
}

struct future *fut_dequeue(struct pool *p)
{
	struct future *f = fut_queue_first(p);
	if (f)
		fut_unqueue(p, f);
	return f;
}

int queue_highest(struct pool *p, int *prio)
{
	if (!p->queued)
		return -ENOENT;
	*prio = top_bucket(p)->prio;
	return 0;
}
