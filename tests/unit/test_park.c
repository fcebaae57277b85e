/* test_park.c - fs/park.c's claim protocol, without libfuse: a parked
 * request is answered exactly once, whether a change of its object, an
 * interrupt, or the shutdown comes first, in any order and when they race.
 *
 * park.c is compiled into this test alone; the few libfuse calls it makes
 * are the fakes below, which keep libfuse's promises park.c relies on: an
 * interrupt callback runs under the request's lock, at once if the request
 * was interrupted before the callback was registered, and
 * fuse_req_interrupt_func(req, NULL, NULL) waits out a callback in flight.
 * handle_get/handle_put are fakes too, counting the handle's references.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs.h"

/* ---- fakes of libfuse -------------------------------------------------------------- */

struct fuse_req {
	pthread_mutex_t lock;
	struct fs *fs;
	fuse_interrupt_func_t func;
	void *data;
	bool interrupted;
	/* an interrupt that has read func/data and not yet called it */
	bool in_flight;
	fuse_interrupt_func_t flight_func;
	void *flight_data;
	int replies;          /* every answer, of any sort: must end at exactly 1 */
	int err;              /* the last error answered (0: data) */
};

void *fuse_req_userdata(fuse_req_t req)
{
	return req->fs;
}

/* Run a callback in flight to its end, as libfuse's req->lock makes
 * fuse_req_interrupt_func wait for it.  With req->lock held. */
static void land_in_flight(fuse_req_t req)
{
	if (!req->in_flight)
		return;
	req->in_flight = false;
	req->flight_func(req, req->flight_data);
}

void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data)
{
	pthread_mutex_lock(&req->lock);
	/* nothing may touch a request once it is answered (libfuse frees it) */
	assert_int_equal(req->replies, 0);
	land_in_flight(req);
	req->func = func;
	req->data = data;
	if (req->interrupted && func)
		func(req, data);
	pthread_mutex_unlock(&req->lock);
}

int fuse_reply_err(fuse_req_t req, int err)
{
	__atomic_add_fetch(&req->replies, 1, __ATOMIC_SEQ_CST);
	req->err = err;
	return 0;
}

/* An INTERRUPT from the kernel, handled in full. */
static void interrupt(fuse_req_t req)
{
	pthread_mutex_lock(&req->lock);
	if (__atomic_load_n(&req->replies, __ATOMIC_SEQ_CST)) {   /* answered: gone */
		pthread_mutex_unlock(&req->lock);
		return;
	}
	req->interrupted = true;
	if (req->func)
		req->func(req, req->data);
	pthread_mutex_unlock(&req->lock);
}

/* An INTERRUPT whose handler has read the callback, and is about to call
 * it when it is preempted: the callback runs before the next
 * fuse_req_interrupt_func returns. */
static void interrupt_starts(fuse_req_t req)
{
	pthread_mutex_lock(&req->lock);
	req->interrupted = true;
	if (req->func) {
		req->in_flight = true;
		req->flight_func = req->func;
		req->flight_data = req->data;
	}
	pthread_mutex_unlock(&req->lock);
}

struct fuse_pollhandle {
	int notified, destroyed;
};

int fuse_lowlevel_notify_poll(struct fuse_pollhandle *ph)
{
	ph->notified++;
	return 0;
}

void fuse_pollhandle_destroy(struct fuse_pollhandle *ph)
{
	ph->destroyed++;
}

/* ---- fakes of node.c ---------------------------------------------------------------- */

static int handles_freed;

struct handle *handle_get(struct handle *h)
{
	__atomic_add_fetch(&h->refs, 1, __ATOMIC_SEQ_CST);
	return h;
}

void handle_put(struct handle *h)
{
	int left = __atomic_sub_fetch(&h->refs, 1, __ATOMIC_SEQ_CST);
	assert_true(left >= 0);
	if (!left)
		__atomic_add_fetch(&handles_freed, 1, __ATOMIC_SEQ_CST);
}

/* ---- the parker's callbacks ------------------------------------------------------ */

static int ready_rc;           /* what `ready` says */
static int answer_rc = 1;      /* what `answer` says (0: lost to a faster request) */
static int waiting;            /* the `waiting` count */
static bool waiting_dropped;   /* it fell to 0 while the request was unanswered */
static fuse_req_t racing;      /* interrupted from inside `ready` */
static void (*in_ready)(fuse_req_t req);
static char seen_data[16];

static int t_ready(struct fs *fs, struct handle *h, const struct park_args *a)
{
	if (in_ready && racing)
		in_ready(racing);
	return ready_rc;
}

static int t_answer(struct fs *fs, struct handle *h, fuse_req_t req, const struct park_args *a,
		    int ready)
{
	assert_true(ready != 0);
	if (a->data) {   /* a write's data, kept by park.c: its own copy */
		assert_true(a->len < sizeof(seen_data));
		memcpy(seen_data, a->data, a->len);
		seen_data[a->len] = '\0';
	}
	if (!answer_rc) {   /* what ready saw went to a faster request */
		answer_rc = 1;
		ready_rc = 0;
		return 0;
	}
	__atomic_add_fetch(&req->replies, 1, __ATOMIC_SEQ_CST);
	req->err = ready < 0 ? -ready : 0;
	return 1;
}

static void t_waiting(struct fs *fs, struct handle *h, const struct park_args *a, int delta)
{
	int now = __atomic_add_fetch(&waiting, delta, __ATOMIC_SEQ_CST);
	if (now == 0 && racing && racing->replies == 0)
		waiting_dropped = true;
}

static const struct park_ops t_ops = {
	.ready = t_ready, .answer = t_answer, .waiting = t_waiting,
};

/* ---- fixtures --------------------------------------------------------------------- */

#define KIND OBJ_TASK
#define ID 42

static struct fs fs;
static struct handle h;

static void req_init(struct fuse_req *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->fs = &fs;
}

static int setup(void **state)
{
	memset(&fs, 0, sizeof(fs));
	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.lock, NULL);
	h.refs = 1;   /* the open file's */
	fs.park = park_new(&fs);
	ready_rc = 0;
	answer_rc = 1;
	waiting = 0;
	waiting_dropped = false;
	racing = NULL;
	in_ready = NULL;
	handles_freed = 0;
	seen_data[0] = '\0';
	return fs.park ? 0 : -1;
}

/* Whatever happened, nothing stays parked or referenced. */
static int teardown(void **state)
{
	park_fail_all(fs.park, EIO);   /* must find nothing left */
	park_free(fs.park);
	assert_int_equal(waiting, 0);
	assert_int_equal(h.refs, 1);
	assert_int_equal(handles_freed, 0);
	pthread_mutex_destroy(&h.lock);
	return 0;
}

static void park(fuse_req_t r)
{
	park_req(fs.park, r, &h, &t_ops, &(struct park_args){ .size = 10 }, KIND, ID);
}

/* ---- the orders -------------------------------------------------------------------- */

static void change_answers(void **state)
{
	struct fuse_req r;
	req_init(&r);
	park(&r);
	assert_int_equal(r.replies, 0);
	assert_int_equal(waiting, 1);
	assert_int_equal(h.refs, 2);   /* the parked request holds the handle */

	park_changed(&fs, KIND, ID);   /* changed, not ready: it stays */
	assert_int_equal(r.replies, 0);
	ready_rc = 1;
	park_changed(&fs, KIND, ID + 1);   /* another object's change */
	park_changed(&fs, OBJ_POOL, ID);
	assert_int_equal(r.replies, 0);

	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(waiting, 0);
	assert_int_equal(h.refs, 1);

	park_changed(&fs, KIND, ID);   /* and never again */
	interrupt(&r);
	park_fail_all(fs.park, EIO);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, 0);
}

static void ready_error_answers(void **state)
{
	struct fuse_req r;
	req_init(&r);
	park(&r);
	ready_rc = -ESRCH;
	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, ESRCH);
}

/* Ready by the time it is published (the change came between the caller's
 * look and the park): answered there and then. */
static void ready_at_publish(void **state)
{
	struct fuse_req r;
	req_init(&r);
	ready_rc = 1;
	park(&r);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, 0);
	park_changed(&fs, KIND, ID);
	interrupt(&r);
	assert_int_equal(r.replies, 1);
}

static void interrupt_first(void **state)
{
	struct fuse_req r;
	req_init(&r);
	park(&r);
	interrupt(&r);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, EINTR);
	assert_int_equal(waiting, 0);
	assert_int_equal(h.refs, 1);
	ready_rc = 1;
	park_changed(&fs, KIND, ID);
	park_fail_all(fs.park, EIO);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, EINTR);
}

/* Interrupted before it was parked: the callback runs inside its
 * registration, and the request must not be published nor answered again,
 * even though it is ready. */
static void interrupted_before_parking(void **state)
{
	struct fuse_req r;
	req_init(&r);
	r.interrupted = true;
	ready_rc = 1;
	park(&r);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, EINTR);
	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 1);
}

/* The interrupt comes while the change is looking (after the look, before
 * the claim): the interrupt wins, the change must not answer too. */
static void interrupt_during_look(void **state)
{
	struct fuse_req r;
	req_init(&r);
	park(&r);
	ready_rc = 1;
	racing = &r;
	in_ready = interrupt;
	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, EINTR);
}

/* The interrupt's callback is in flight when the change claims: the change
 * wins, and the callback (which runs before the claim's deregistration
 * returns) must find the request claimed and answer nothing. */
static void interrupt_in_flight_loses(void **state)
{
	struct fuse_req r;
	req_init(&r);
	park(&r);
	ready_rc = 1;
	racing = &r;
	in_ready = interrupt_starts;
	park_changed(&fs, KIND, ID);
	assert_false(r.in_flight);   /* it did run */
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, 0);
}

/* Shutdown first: every parked request is answered with its error, once. */
static void shutdown_first(void **state)
{
	struct fuse_req r[3];
	for (int i = 0; i < 3; i++) {
		req_init(&r[i]);
		park_req(fs.park, &r[i], &h, &t_ops, &(struct park_args){ .size = 1 }, KIND,
			 ID + (uint64_t)i * 256);   /* in different buckets, likely */
	}
	assert_int_equal(waiting, 3);
	park_fail_all(fs.park, EIO);
	ready_rc = 1;
	for (int i = 0; i < 3; i++) {
		park_changed(&fs, KIND, ID + (uint64_t)i * 256);
		interrupt(&r[i]);
		assert_int_equal(r[i].replies, 1);
		assert_int_equal(r[i].err, EIO);
	}
}

/* The open file's reference goes while a request is parked (its close in
 * another thread): the handle lives until the request is answered. */
static void release_while_parked(void **state)
{
	struct fuse_req r;
	req_init(&r);
	park(&r);
	handle_put(&h);   /* the release */
	assert_int_equal(handles_freed, 0);
	ready_rc = 1;
	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 1);
	assert_int_equal(handles_freed, 1);   /* the last reference was the request's */
	h.refs = 1;   /* for teardown's accounting */
	handles_freed = 0;
}

/* A write claimed and then beaten to the room by a faster request is parked
 * again under the same request, with its data, and still answered once.
 * The waiting count never drops to 0 in between. */
static void lost_race_parks_again(void **state)
{
	struct fuse_req r;
	req_init(&r);
	char data[] = "hello";
	racing = &r;   /* for t_waiting's check */
	park_req(fs.park, &r, &h, &t_ops, &(struct park_args){ .data = data, .len = 5 }, KIND,
		 ID);
	memset(data, 'x', sizeof(data) - 1);   /* the caller's buffer goes */
	ready_rc = 1;
	answer_rc = 0;
	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 0);
	assert_int_equal(waiting, 1);
	assert_string_equal(seen_data, "hello");
	seen_data[0] = '\0';
	ready_rc = 1;
	park_changed(&fs, KIND, ID);
	assert_int_equal(r.replies, 1);
	assert_int_equal(r.err, 0);
	assert_string_equal(seen_data, "hello");
	assert_false(waiting_dropped);
	interrupt(&r);
	assert_int_equal(r.replies, 1);
}

/* Many requests on one object, every other interrupted: each answered once. */
static void many_waiters(void **state)
{
	enum { N = 200 };
	struct fuse_req *r = calloc(N, sizeof(*r));
	assert_non_null(r);
	for (int i = 0; i < N; i++) {
		req_init(&r[i]);
		park(&r[i]);
	}
	assert_int_equal(waiting, N);
	for (int i = 0; i < N; i += 2)
		interrupt(&r[i]);
	ready_rc = 1;
	park_changed(&fs, KIND, ID);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].replies, 1);
		assert_int_equal(r[i].err, i % 2 ? 0 : EINTR);
	}
	free(r);
}

/* ---- the races, on threads --------------------------------------------------------- */

static void *changer(void *arg)
{
	park_changed(&fs, KIND, ID);
	return NULL;
}

static void *interrupter(void *arg)
{
	interrupt(arg);
	return NULL;
}

static void change_and_interrupt_race(void **state)
{
	ready_rc = 1;
	for (int i = 0; i < 300; i++) {
		struct fuse_req r;
		req_init(&r);
		__atomic_store_n(&ready_rc, 0, __ATOMIC_SEQ_CST);
		park(&r);
		__atomic_store_n(&ready_rc, 1, __ATOMIC_SEQ_CST);
		pthread_t a, b;
		pthread_create(&a, NULL, changer, NULL);
		pthread_create(&b, NULL, interrupter, &r);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		assert_int_equal(r.replies, 1);
		assert_true(r.err == 0 || r.err == EINTR);
		pthread_mutex_destroy(&r.lock);
	}
}

/* ---- poll handles ------------------------------------------------------------------- */

static void poll_notified_once(void **state)
{
	struct fuse_pollhandle a = { 0 }, b = { 0 }, c = { 0 };
	park_poll(fs.park, &h, &a, KIND, ID);
	park_poll(fs.park, &h, &b, KIND, ID);   /* the newest replaces the older */
	assert_int_equal(a.destroyed, 1);
	assert_int_equal(a.notified, 0);
	park_poll(fs.park, &h, &c, KIND, ID + 1);
	assert_int_equal(h.refs, 3);
	park_changed(&fs, KIND, ID);
	assert_int_equal(b.notified, 1);
	assert_int_equal(b.destroyed, 1);
	assert_int_equal(c.notified, 0);
	park_changed(&fs, KIND, ID);
	assert_int_equal(b.notified, 1);
	assert_int_equal(h.refs, 2);
	park_free(fs.park);   /* c, never notified, is destroyed with the park */
	assert_int_equal(c.destroyed, 1);
	assert_int_equal(c.notified, 0);
	assert_int_equal(h.refs, 1);
	fs.park = park_new(&fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(change_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(ready_error_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(ready_at_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(interrupt_first, setup, teardown),
		cmocka_unit_test_setup_teardown(interrupted_before_parking, setup, teardown),
		cmocka_unit_test_setup_teardown(interrupt_during_look, setup, teardown),
		cmocka_unit_test_setup_teardown(interrupt_in_flight_loses, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_first, setup, teardown),
		cmocka_unit_test_setup_teardown(release_while_parked, setup, teardown),
		cmocka_unit_test_setup_teardown(lost_race_parks_again, setup, teardown),
		cmocka_unit_test_setup_teardown(many_waiters, setup, teardown),
		cmocka_unit_test_setup_teardown(change_and_interrupt_race, setup, teardown),
		cmocka_unit_test_setup_teardown(poll_notified_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
