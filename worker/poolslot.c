/* poolslot.c - `pcfs-worker pool`: slots, their threads and their queues.
 *
 * A slot thread takes the jobs queued on its slot one after the other and
 * runs each as a future (poolfuture.c); the main thread starts, retires and
 * joins slots, and queues, revokes and stops their futures (poolhost.c).
 * A slot's queue is under its lock (see poolhost.c for why the start and
 * the revoke answers go out under it too).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "modes.h"
#include "poolhost.h"
#include "wire.h"

#define REQ_MIN 256            /* first size of a slot's request buffer */
#define REQ_KEEP 16384         /* largest one kept between futures */
#define SPIN_YIELDS 50         /* a slot's look for its next job before it sleeps */
#define SPARE_JOBS 8           /* finished jobs a slot keeps for reuse */
#define OUTBOX_BYTES 8192      /* a slot's outbox: what it reports in one datagram */

/* A future queued on a slot: the W_PW_RUN payload and its descriptors. */
struct job {
	struct job *next;
	uint64_t id;
	char *req;                   /* line \0 {K=V \0}* */
	size_t req_len, req_cap;
	int io_fd[2];                /* the child's stdin, stdout from the daemon (channels), or -1 */
};

/* --- in a slot thread --------------------------------------------------- */

/* Has the semaphore been posted within a few yields?  Waking a sleeping
 * thread is most of what a noop future costs (on an idle CPU, and more so in
 * a VM, where the wakeup is an interrupt through the hypervisor), and when a
 * slot runs dry under a stream of futures its next ones are usually on their
 * way.  Yielding, not busy-waiting, so that threads with work go first.  A
 * spin that finds nothing costs ~30 us of CPU. */
static bool posted_soon(sem_t *sem)
{
	for (int i = 0; i < SPIN_YIELDS; i++) {
		if (sem_trywait(sem) == 0)
			return true;
		sched_yield();
	}
	return false;
}

static void job_close_fds(struct job *j)
{
	for (int i = 0; i < 2; i++) {
		if (j->io_fd[i] >= 0)
			close(j->io_fd[i]);
		j->io_fd[i] = -1;
	}
}

/* Keep a finished job for the next W_PW_RUN (lock held), or free it. */
static void job_recycle(struct slot *s, struct job *j)
{
	job_close_fds(j);
	if (s->nspare < SPARE_JOBS && j->req_cap <= REQ_KEEP) {
		j->next = s->spare;
		s->spare = j;
		s->nspare++;
		return;
	}
	/* rare big requests: 4096 idle slots must not hold 256 KiB each */
	free(j->req);
	free(j);
}

/* Take the next job, or NULL when the slot is to exit (*retired: because
 * W_PW_SLOTS shrank the pool).  The job's W_PW_START goes out, with what
 * the outbox holds, before the lock is released (see poolhost.c).
 *
 * A semaphore rather than a condition variable: a handover is then at most
 * one futex wake and one futex wait.  It may count more posts than there
 * are jobs: the state is checked again after each, so an extra one only
 * costs a loop. */
static struct job *slot_next(struct slot *s, bool *retired)
{
	for (bool first = true;; first = false) {
		struct job *j = NULL;
		bool leave;

		pthread_mutex_lock(&s->lock);
		leave = s->retire || s->quit;
		*retired = s->retire;
		if (!leave && s->qhead) {
			j = s->qhead;
			s->qhead = j->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->queued--;
			s->cur = j->id;
			atomic_store(&s->stop, 0);
			outbox_add(s, W_PW_START, j->id, s->num, 0, NULL, 0);
			outbox_flush(s);
		}
		pthread_mutex_unlock(&s->lock);
		if (j || leave)
			return j;
		/* Idle: what we have to say goes now, not with the next start. */
		outbox_flush(s);
		if (first && posted_soon(&s->wake))
			continue;
		while (sem_wait(&s->wake) < 0 && errno == EINTR)
			;
	}
}

/* Run the job and put its W_PW_DONE in the outbox. */
static void slot_run(struct slot *s, struct job *j)
{
	struct future f = { .slot = s, .id = j->id, .io_fd = { j->io_fd[0], j->io_fd[1] } };
	int code;

	j->io_fd[0] = j->io_fd[1] = -1;   /* the future's now: closed when it is done */
	code = future_run(&f, j->req, j->req_len);
	pthread_mutex_lock(&s->lock);
	s->cur = 0;
	job_recycle(s, j);   /* from here on, nothing reads j->req (nor f.env in it) */
	pthread_mutex_unlock(&s->lock);
	outbox_add(s, W_PW_DONE, f.id, code, f.cpu_us, NULL, 0);
}

/* The slot is leaving: a retired one gives its queue back to the daemon
 * (which runs those futures elsewhere), one quitting at EOF drops it. */
static void slot_drop_queue(struct slot *s, bool retired)
{
	pthread_mutex_lock(&s->lock);
	while (s->qhead) {
		struct job *j = s->qhead;

		s->qhead = j->next;
		s->queued--;
		if (retired)
			outbox_add(s, W_PW_REVOKED, j->id, 1, 0, NULL, 0);
		job_recycle(s, j);
	}
	s->qtail = NULL;
	pthread_mutex_unlock(&s->lock);
}

static void *slot_main(void *arg)
{
	struct slot *s = arg;
	struct pool *p = s->pool;
	uint64_t one = 1;
	char name[16];
	struct job *j;
	bool retired;

	/* "pool-<slot>" in /proc/PID/task/TID/comm, for whoever looks. */
	snprintf(name, sizeof name, "pool-%u", s->num);
	pthread_setname_np(pthread_self(), name);

	outbox_add(s, W_PW_READY, 0, s->num, gettid(), NULL, 0);
	outbox_flush(s);
	while ((j = slot_next(s, &retired)))
		slot_run(s, j);
	slot_drop_queue(s, retired);
	if (retired)
		outbox_add(s, W_PW_GONE, 0, s->num, 0, NULL, 0);
	outbox_flush(s);

	/* After this store *s belongs to the main thread again. */
	atomic_store_explicit(&s->exited, true, memory_order_release);
	while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR)
		;
	return NULL;
}

/* --- in the main thread ------------------------------------------------- */

static void job_free_list(struct job *j)
{
	while (j) {
		struct job *next = j->next;

		job_close_fds(j);
		free(j->req);
		free(j);
		j = next;
	}
}

static void slot_free(struct slot *s)
{
	sem_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	job_free_list(s->qhead);
	job_free_list(s->spare);
	free(s->out.buf);
	free(s);
}

/* Start slot `num`.  If it cannot be started, say W_PW_GONE for it rather
 * than leave the daemon waiting for a W_PW_READY that will never come. */
static void slot_start(struct pool *p, unsigned num)
{
	struct slot *s = calloc(1, sizeof *s);
	int err = ENOMEM;

	if (s && (s->out.buf = malloc(OUTBOX_BYTES))) {
		s->out.cap = OUTBOX_BYTES;
		s->pool = p;
		s->num = num;
		pthread_mutex_init(&s->lock, NULL);
		sem_init(&s->wake, 0, 0);
		err = pthread_create(&s->thread, &p->slot_attr, slot_main, s);
		if (err)
			slot_free(s);
	} else if (s) {
		free(s);
	}
	if (err) {
		wlog("pool: slot %u: %s", num, strerror(err));
		wire_send(p->sock, W_PW_GONE, 0, num, 0, NULL, 0, NULL, 0);
		return;
	}
	p->slots[num] = s;
	if (num > p->top)
		p->top = num;
}

/* Ask the slot to exit once its running future is over: retired by
 * W_PW_SLOTS (its queue goes back to the daemon), or at EOF.  (Only
 * this thread writes retire and quit, so it may read them unlocked.) */
void slot_dismiss(struct pool *p, struct slot *s, bool retire)
{
	if (retire ? s->retire : s->quit)
		return;
	pthread_mutex_lock(&s->lock);
	if (retire)
		s->retire = true;
	else
		s->quit = true;
	pthread_mutex_unlock(&s->lock);
	if (retire)
		p->leaving++;
	sem_post(&s->wake);
}

/* Join every slot thread that has exited (all of them if `all`).  A slot
 * retired and then wanted again is started anew once its old thread is gone. */
void join_slots(struct pool *p, bool all)
{
	for (unsigned k = 1; k <= p->top; k++) {
		struct slot *s = p->slots[k];

		if (!s || (!all && !atomic_load_explicit(&s->exited, memory_order_acquire)))
			continue;
		pthread_join(s->thread, NULL);
		if (s->retire)
			p->leaving--;
		slot_free(s);
		p->slots[k] = NULL;
		if (!all && k <= p->want)
			slot_start(p, k);
	}
	while (p->top > 0 && !p->slots[p->top])
		p->top--;
}

/* W_PW_SLOTS: have n slots.  Slots above n retire; missing ones start, except
 * those whose retiring predecessor is still finishing (see join_slots). */
void set_slots(struct pool *p, int64_t n)
{
	unsigned top;

	if (n < 0 || n > POOL_SLOTS_MAX) {
		wlog("pool: W_PW_SLOTS %lld ignored (0..%d)", (long long)n, POOL_SLOTS_MAX);
		return;
	}
	p->want = (unsigned)n;
	top = p->top > p->want ? p->top : p->want;
	for (unsigned k = 1; k <= top; k++) {
		struct slot *s = p->slots[k];

		if (k > p->want && s)
			slot_dismiss(p, s, true);
		else if (k <= p->want && !s)
			slot_start(p, k);
	}
}

/* A job with room for len request bytes: a spare one, or a new one (lock
 * held).  NULL if out of memory. */
static struct job *job_get(struct slot *s, size_t len)
{
	struct job *j = s->spare;

	if (j) {
		s->spare = j->next;
		s->nspare--;
	} else if (!(j = calloc(1, sizeof *j))) {
		return NULL;
	}
	if (len > j->req_cap) {
		size_t cap = j->req_cap ? j->req_cap : REQ_MIN;
		char *req;

		while (cap < len)
			cap *= 2;
		req = realloc(j->req, cap);
		if (!req) {
			free(j->req);
			free(j);
			return NULL;
		}
		j->req = req;
		j->req_cap = cap;
	}
	j->next = NULL;
	return j;
}

/* Queue the future on slot s.  Returns 0, or EBUSY (its queue is full),
 * ENXIO (the slot is retiring) or ENOMEM. */
int slot_assign(struct slot *s, const struct wire_hdr *h, const char *payload,
		const int io[2])
{
	struct job *j = NULL;
	bool was_empty = false;
	int err = 0;

	pthread_mutex_lock(&s->lock);
	if (s->retire || s->quit)
		err = ENXIO;
	else if (s->queued >= SLOT_QUEUE_MAX)
		err = EBUSY;
	else if (!(j = job_get(s, h->len)))
		err = ENOMEM;
	if (!err) {
		if (h->len > 0)
			memcpy(j->req, payload, h->len);
		j->req_len = h->len;
		j->id = h->id;
		j->io_fd[0] = io[0];
		j->io_fd[1] = io[1];
		was_empty = !s->qhead;
		if (s->qtail)
			s->qtail->next = j;
		else
			s->qhead = j;
		s->qtail = j;
		s->queued++;
	}
	pthread_mutex_unlock(&s->lock);
	/* a slot with work queued does not sleep: only an empty queue needs a post */
	if (was_empty)
		sem_post(&s->wake);
	return err;
}

/* Signal future id if slot s runs it.  Returns whether it does. */
bool slot_stop(struct slot *s, uint64_t id, int sig)
{
	bool mine;

	pthread_mutex_lock(&s->lock);
	mine = s->cur == id;
	if (mine) {
		atomic_store(&s->stop, sig);
		if (s->child > 0)
			kill(-s->child, sig);
	}
	pthread_mutex_unlock(&s->lock);
	return mine;
}

/* Take future id off slot s's queue if it is there (lock held). */
bool slot_unqueue(struct slot *s, uint64_t id)
{
	for (struct job **pp = &s->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		struct job *j = *pp;

		if (j->id != id)
			continue;
		*pp = j->next;
		if (s->qtail == j)
			s->qtail = prev;
		s->queued--;
		job_recycle(s, j);
		return true;
	}
	return false;
}
