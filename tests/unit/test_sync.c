/* test_sync.c - the core of a sync object (engine/sync/syncobj.c), and the
 * grammars of its ctl files (lib/syncspec.c), with no engine and no mount. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sync/sync_int.h"
#include "syncspec.h"

static struct sync_obj make(enum sync_kind k, int64_t value, bool bounded, unsigned parties)
{
	struct sync_obj o;
	memset(&o, 0, sizeof(o));
	syncobj_init(&o, k, value, bounded, parties, -1);
	return o;
}

static void lock_is_fifo(void **state)
{
	struct sync_obj o = make(SYNC_LOCK, 0, false, 0);
	struct sync_ticket a = { 0 }, b = { 0 }, c = { 0 };
	syncobj_join(&o, &a, 0);
	syncobj_join(&o, &b, 1);
	assert_false(syncobj_take(&o, &b, 2));      /* b is not first */
	assert_true(syncobj_take(&o, &a, 3));
	assert_int_equal(o.value, 0);
	syncobj_join(&o, &c, 4);
	assert_false(syncobj_grantable(&o, &b));   /* held */
	assert_true(syncobj_leave(&o, &a, 10));     /* held 7 ns */
	assert_int_equal(o.longest_hold_ns, 7);
	assert_false(syncobj_take(&o, &c, 11));     /* c came after b */
	assert_true(syncobj_take(&o, &b, 12));
	assert_int_equal(o.acquisitions, 2);
	assert_int_equal(o.contended, 1);           /* b had to wait */
	assert_true(syncobj_busy(&o));
	syncobj_leave(&o, &b, 13);
	assert_true(syncobj_take(&o, &c, 14));
	syncobj_leave(&o, &c, 15);
	assert_false(syncobj_busy(&o));
	assert_int_equal(o.value, 1);
}

static void a_waiter_leaving_lets_the_next_go(void **state)
{
	struct sync_obj o = make(SYNC_LOCK, 0, false, 0);
	struct sync_ticket a = { 0 }, b = { 0 }, c = { 0 };
	syncobj_join(&o, &a, 0);
	assert_true(syncobj_take(&o, &a, 0));
	syncobj_join(&o, &b, 0);
	syncobj_join(&o, &c, 0);
	assert_true(syncobj_leave(&o, &b, 1));      /* an interrupted open took nothing */
	assert_int_equal(o.acquisitions, 1);
	syncobj_leave(&o, &a, 2);
	assert_true(syncobj_grantable(&o, &c));
}

static void semaphore_units(void **state)
{
	struct sync_obj o = make(SYNC_SEMAPHORE, 2, true, 0);
	struct sync_ticket t[3] = { { 0 } };
	for (int i = 0; i < 3; i++)
		syncobj_join(&o, &t[i], 0);
	assert_true(syncobj_take(&o, &t[0], 0));
	assert_true(syncobj_take(&o, &t[1], 0));
	assert_false(syncobj_take(&o, &t[2], 0));
	assert_int_equal(syncobj_release(&o, 1), -EOVERFLOW);   /* bounded: 2 held of 2 */
	syncobj_leave(&o, &t[0], 1);
	assert_true(syncobj_take(&o, &t[2], 1));
	syncobj_leave(&o, &t[1], 1);
	syncobj_leave(&o, &t[2], 1);
	assert_int_equal(o.value, 2);
	struct sync_obj u = make(SYNC_SEMAPHORE, 0, false, 0);
	assert_int_equal(syncobj_release(&u, 3), 1);
	assert_int_equal(u.value, 3);
	assert_int_equal(syncobj_set(&u, true), -EINVAL);
}

static void event_set_and_clear(void **state)
{
	struct sync_obj o = make(SYNC_EVENT, 0, false, 0);
	struct sync_ticket a = { 0 }, b = { 0 };
	syncobj_join(&o, &a, 0);
	assert_int_equal(a.state, TK_WAITING);
	assert_int_equal(syncobj_set(&o, true), 1);
	assert_int_equal(a.state, TK_DONE);
	syncobj_join(&o, &b, 0);
	assert_int_equal(b.state, TK_DONE);          /* set: at once */
	assert_int_equal(syncobj_set(&o, false), 0);
	assert_false(syncobj_busy(&o));
}

static void barrier_rounds_and_abort(void **state)
{
	struct sync_obj o = make(SYNC_BARRIER, 0, false, 3);
	struct sync_ticket t[4] = { { 0 } };
	assert_false(syncobj_join(&o, &t[0], 0));
	assert_false(syncobj_join(&o, &t[1], 0));
	assert_true(syncobj_join(&o, &t[2], 0));     /* the third completes the round */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(t[i].state, TK_DONE);
		assert_int_equal(t[i].index, i);
	}
	assert_int_equal(o.passed, 1);
	syncobj_join(&o, &t[3], 0);
	assert_int_equal(syncobj_abort(&o), 1);
	assert_int_equal(t[3].state, TK_BROKEN);
	struct sync_ticket late = { 0 };
	syncobj_join(&o, &late, 0);
	assert_int_equal(late.state, TK_BROKEN);     /* broken until reset */
	syncobj_reset(&o);
	struct sync_ticket again = { 0 };
	syncobj_join(&o, &again, 0);
	assert_int_equal(again.state, TK_WAITING);
	assert_true(syncobj_leave(&o, &again, 0));   /* a wait given up breaks it */
	assert_true(o.broken);
}

static void barrier_timeout(void **state)
{
	struct sync_obj o;
	memset(&o, 0, sizeof(o));
	syncobj_init(&o, SYNC_BARRIER, 0, false, 2, 100);
	struct sync_ticket a = { 0 };
	syncobj_join(&o, &a, 0);
	assert_false(syncobj_expire(&o, 99 * 1000000LL));
	assert_true(syncobj_expire(&o, 100 * 1000000LL));
	assert_int_equal(a.state, TK_BROKEN);
}

static void create_lines(void **state)
{
	struct sync_spec s;
	char err[256];
	assert_int_equal(sync_parse_create("semaphore s value=3 bounded", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SYNC_SEMAPHORE);
	assert_string_equal(s.name, "s");
	assert_int_equal(s.value, 3);
	assert_true(s.bounded);
	assert_int_equal(sync_parse_create("barrier b parties=4 timeout=2s", &s, err, sizeof(err)), 0);
	assert_int_equal(s.parties, 4);
	assert_int_equal(s.timeout_ms, 2000);
	assert_int_equal(sync_parse_create("lock L", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SYNC_LOCK);
	assert_int_equal(sync_parse_create("barrier b", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_create("barrier b parties=0", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_create("lock ..", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_create("lock L bounded", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_create("event e value=1", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_create("semaphore s colour=red", &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown option"));
	assert_int_equal(sync_parse_create("mutex m", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "semaphore NAME value=N [bounded]"));
}

static void ctl_lines(void **state)
{
	struct sync_cmd c;
	char err[256];
	assert_int_equal(sync_parse_ctl("release 4", &c, err, sizeof(err)), 0);
	assert_int_equal(c.op, SYNC_OP_RELEASE);
	assert_int_equal(c.n, 4);
	assert_int_equal(sync_op_kind(c.op), SYNC_SEMAPHORE);
	assert_int_equal(sync_parse_ctl("set", &c, err, sizeof(err)), 0);
	assert_string_equal(sync_op_name(c.op), "set");
	assert_int_equal(sync_parse_ctl("release 0", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_ctl("set now", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(sync_parse_ctl("go", &c, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lock_is_fifo),
		cmocka_unit_test(a_waiter_leaving_lets_the_next_go),
		cmocka_unit_test(semaphore_units),
		cmocka_unit_test(event_set_and_clear),
		cmocka_unit_test(barrier_rounds_and_abort),
		cmocka_unit_test(barrier_timeout),
		cmocka_unit_test(create_lines),
		cmocka_unit_test(ctl_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
