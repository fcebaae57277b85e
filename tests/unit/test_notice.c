/* test_notice.c - the notice room's pure pieces: the events ring and its
 * readers (what a reader is told it missed, daemon-wide and per pool), the
 * line formats, and the joblog's fields (parallel's Exitval/Signal, the
 * Command a shell reruns). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notice/notice_int.h"

static void push(struct ev_ring *r, uint64_t pool, uint64_t id)
{
	struct event ev = { .id = id, .pool = pool, .what = EV_ENDED, .state = "exited",
			    .has_code = true, .code = 0, .source = pool ? EV_FUTURE : EV_TASK };
	if (pool)
		snprintf(ev.pool_name, sizeof(ev.pool_name), "p%llu", (unsigned long long)pool);
	assert_int_equal(ev_ring_push(r, &ev), 0);
}

/* Read everything: lines of events and the sum of the missed counts. */
static void read_all(const struct ev_ring *r, struct event_reader *rd, unsigned *events,
		     uint64_t *missed)
{
	struct strbuf sb = STRBUF_INIT;
	assert_true(ev_ring_read(r, rd, &sb, SIZE_MAX) >= 0);
	*events = 0;
	*missed = 0;
	for (const char *p = sb_cstr(&sb); *p; p = strchr(p, '\n') + 1) {
		unsigned long long n;
		if (sscanf(p, "# missed %llu event", &n) == 1)
			*missed += n;
		else
			(*events)++;
	}
	sb_free(&sb);
}

static void test_reader_told_what_it_missed(void **state)
{
	struct ev_ring r;
	assert_int_equal(ev_ring_init(&r, 8), 0);
	struct event_reader rd = { 0 };
	unsigned n;
	uint64_t missed;
	for (int i = 1; i <= 5; i++)
		push(&r, 0, (uint64_t)i);
	read_all(&r, &rd, &n, &missed);
	assert_int_equal(n, 5);
	assert_int_equal(missed, 0);
	for (int i = 6; i <= 30; i++)   /* 25 more into a ring of 8 */
		push(&r, 0, (uint64_t)i);
	read_all(&r, &rd, &n, &missed);
	assert_int_equal(n, 8);
	assert_int_equal(missed, 17);
	read_all(&r, &rd, &n, &missed);   /* caught up: nothing, nothing missed */
	assert_int_equal(n + missed, 0);
	/* a new reader starts at the oldest kept, and has missed nothing */
	struct event_reader fresh = { 0 };
	read_all(&r, &fresh, &n, &missed);
	assert_int_equal(n, 8);
	assert_int_equal(missed, 0);
	ev_ring_free(&r);
}

/* A pool's reader counts its own pool's events, whatever others do. */
static void test_pool_reader_counts_its_own(void **state)
{
	struct ev_ring r;
	assert_int_equal(ev_ring_init(&r, 8), 0);
	struct event_reader rd = { .pool = 2 };
	unsigned n;
	uint64_t missed;
	push(&r, 2, 1);
	read_all(&r, &rd, &n, &missed);
	assert_int_equal(n, 1);
	for (int i = 0; i < 20; i++)       /* 3 of pool 2 among 20 of pool 1 */
		push(&r, i % 7 == 3 ? 2 : 1, (uint64_t)i + 2);
	read_all(&r, &rd, &n, &missed);
	assert_int_equal(n + missed, 3);
	assert_true(missed > 0);
	/* all of a quiet pool's events pushed out: the gap is still told */
	push(&r, 2, 99);
	for (int i = 0; i < 10; i++)
		push(&r, 1, 100 + (uint64_t)i);
	read_all(&r, &rd, &n, &missed);
	assert_int_equal(n, 0);
	assert_int_equal(missed, 1);
	ev_ring_free(&r);
}

static void test_line_formats(void **state)
{
	struct event ev = { .id = 42, .at = { 1796652000, 123000000 }, .source = EV_TASK,
			    .what = EV_ENDED, .state = "exited", .has_code = true, .code = 0 };
	strcpy(ev.name, "build");
	struct strbuf sb = STRBUF_INIT;
	ev_format(&ev, false, &sb);
	ev.what = EV_STARTED;
	ev.state = "running";
	ev.has_code = false;
	ev.name[0] = 0;
	strcpy(ev.pool_name, "p");
	ev.source = EV_FUTURE;
	ev_format(&ev, false, &sb);
	ev_format(&ev, true, &sb);
	ev_format_missed(3, false, &sb);
	ev_format_missed(1, true, &sb);
	assert_string_equal(sb_cstr(&sb),
		"2026-12-07T14:00:00.123Z 42 task ended exited code=0 name=build\n"
		"2026-12-07T14:00:00.123Z 42 future started running code=- name=- pool=p\n"
		"{\"time\":\"2026-12-07T14:00:00.123Z\",\"seq\":0,\"id\":42,\"kind\":\"future\","
		"\"event\":\"started\",\"state\":\"running\",\"code\":null,\"name\":null,"
		"\"pool\":\"p\"}\n"
		"# missed 3 events\n"
		"{\"missed\":1}\n");
	sb_free(&sb);
}

static void test_joblog_fields(void **state)
{
	int ev, sig;
	jl_codes(true, 3, true, &ev, &sig);
	assert_true(ev == 3 && sig == 0);
	jl_codes(true, -15, true, &ev, &sig);   /* parallel: a signal is 0 and N */
	assert_true(ev == 0 && sig == 15);
	jl_codes(true, 0, true, &ev, &sig);     /* failed, but not by its status */
	assert_true(ev == 1 && sig == 0);
	jl_codes(true, 0, false, &ev, &sig);
	assert_true(ev == 0 && sig == 0);

	struct strbuf sb = STRBUF_INIT;
	jl_command("sh name=x echo a\tb; exit 3", &sb);
	sb_addc(&sb, '|');
	jl_command("exec /bin/echo \"it's\" \"a b\" c", &sb);
	sb_addc(&sb, '|');
	jl_command("sleep time=1s", &sb);
	assert_string_equal(sb_cstr(&sb), "echo a b; exit 3|/bin/echo 'it'\\''s' 'a b' c|sleep time=1s");
	sb_free(&sb);

	struct jl_ring j;
	assert_int_equal(jl_init(&j, 2), 0);
	struct jl_entry x = { .seq = 7, .start = 1796652000.5, .runtime = 0.25, .exitval = 2,
			      .line = "sh exit 2" };
	assert_int_equal(jl_push(&j, &x), 0);
	x.pool = 1;
	assert_int_equal(jl_push(&j, &x), 0);
	x.pool = 0;
	x.seq = 8;
	assert_int_equal(jl_push(&j, &x), 0);   /* the oldest goes */
	struct jl_entry *v;
	size_t n;
	assert_int_equal(jl_snapshot(&j, 0, &v, &n), 0);
	jl_render(v, n, &sb);
	jl_snapshot_free(v, n);
	assert_string_equal(sb_cstr(&sb),
		"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
		"8\t:\t1796652000.500\t     0.250\t0\t0\t2\t0\texit 2\n");
	sb_free(&sb);
	jl_free(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_told_what_it_missed),
		cmocka_unit_test(test_pool_reader_counts_its_own),
		cmocka_unit_test(test_line_formats),
		cmocka_unit_test(test_joblog_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
