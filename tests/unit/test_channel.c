/* test_channel.c - the channel core: boundaries, capacity, bytes, close and
 * drain, the two directions of a pipe, partial reads, the control lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgqueue.h"

static void put_str(struct chan *c, int qi, const char *s)
{
	assert_int_equal(chan_put(c, qi, s, strlen(s)), 0);
}

/* Take one message and check it is exactly `want`. */
static void get_str(struct chan *c, int qi, const char *want)
{
	struct chan_msg *m = NULL;
	assert_int_equal(chan_get(c, qi, &m), 1);
	assert_non_null(m);
	assert_int_equal(m->len, strlen(want));
	assert_memory_equal(m->data, want, m->len);
	chan_msg_free(m);
}

static void test_fifo_keeps_boundaries(void **state)
{
	struct chan c;
	chan_init(&c, CHAN_QUEUE, 10, 100, 1000);
	put_str(&c, 0, "one");
	put_str(&c, 0, "two\n");
	put_str(&c, 0, "x");
	assert_int_equal(c.q[0].depth, 3);
	assert_int_equal(c.q[0].bytes, 8);
	get_str(&c, 0, "one");
	get_str(&c, 0, "two\n");
	get_str(&c, 0, "x");
	struct chan_msg *m;
	assert_int_equal(chan_get(&c, 0, &m), -EAGAIN);
	assert_int_equal(c.q[0].puts, 3);
	assert_int_equal(c.q[0].gets, 3);
	assert_int_equal(c.q[0].bytes_put, 8);
	assert_int_equal(c.q[0].bytes_got, 8);
	assert_int_equal(c.q[0].bytes, 0);
	chan_destroy(&c);
}

static void test_capacity_and_sizes(void **state)
{
	struct chan c;
	chan_init(&c, CHAN_QUEUE, 2, 5, 1000);
	assert_int_equal(chan_put(&c, 0, "", 0), -EINVAL);
	assert_int_equal(chan_put(&c, 0, "123456", 6), -EMSGSIZE);
	put_str(&c, 0, "12345");
	assert_true(chan_can_put(&c, 0, 1));
	put_str(&c, 0, "a");
	assert_false(chan_can_put(&c, 0, 1));
	assert_int_equal(chan_put(&c, 0, "b", 1), -EAGAIN);
	get_str(&c, 0, "12345");
	assert_true(chan_can_put(&c, 0, 1));
	put_str(&c, 0, "b");
	/* lowering capacity below the depth: puts wait until it drains */
	chan_set_capacity(&c, 1);
	assert_int_equal(chan_put(&c, 0, "c", 1), -EAGAIN);
	get_str(&c, 0, "a");
	assert_int_equal(chan_put(&c, 0, "c", 1), -EAGAIN);
	get_str(&c, 0, "b");
	put_str(&c, 0, "c");
	chan_destroy(&c);
}

static void test_byte_limit(void **state)
{
	struct chan c;
	chan_init(&c, CHAN_PIPE, 100, 64, 10);
	assert_int_equal(chan_put(&c, 0, "0123456789a", 11), -ENOSPC);   /* never fits */
	put_str(&c, 0, "012345");
	put_str(&c, 1, "abc");                       /* both directions count */
	assert_int_equal(chan_put(&c, 0, "xy", 2), -EAGAIN);
	assert_true(chan_can_put(&c, 0, 1));         /* one byte fits, two do not */
	assert_false(chan_can_put(&c, 0, 2));
	assert_true(chan_can_put(&c, 0, 11));        /* it would fail (ENOSPC), not wait */
	put_str(&c, 1, "z");
	assert_false(chan_can_put(&c, 0, 1));
	get_str(&c, 1, "abc");
	put_str(&c, 0, "xy");
	chan_destroy(&c);
}

static void test_close_then_drain(void **state)
{
	struct chan c;
	struct chan_msg *m;
	chan_init(&c, CHAN_QUEUE, 10, 100, 1000);
	put_str(&c, 0, "last");
	assert_true(chan_can_get(&c, 0));
	chan_close(&c);
	assert_int_equal(chan_put(&c, 0, "more", 4), -EPIPE);
	assert_int_equal(chan_put(&c, 0, "far too long for this channel.........................."
				  "......................................................", 110), -EPIPE);
	assert_true(chan_can_put(&c, 0, 1));         /* it would fail at once, not wait */
	get_str(&c, 0, "last");                      /* what was put is still got */
	assert_true(chan_can_get(&c, 0));            /* ... and then the end, at once */
	assert_int_equal(chan_get(&c, 0, &m), 0);
	assert_int_equal(chan_get(&c, 0, &m), 0);
	chan_destroy(&c);
}

static void test_pipe_directions_are_independent(void **state)
{
	struct chan c;
	chan_init(&c, CHAN_PIPE, 1, 100, 1000);
	put_str(&c, 0, "a->b");
	assert_int_equal(chan_put(&c, 0, "again", 5), -EAGAIN);   /* a->b is full */
	put_str(&c, 1, "b->a");                                   /* b->a is not */
	get_str(&c, 1, "b->a");
	get_str(&c, 0, "a->b");
	struct chan_msg *m;
	assert_int_equal(chan_get(&c, 1, &m), -EAGAIN);
	chan_destroy(&c);
}

static void test_unget_restores_order_and_counts(void **state)
{
	struct chan c;
	struct chan_msg *m;
	chan_init(&c, CHAN_QUEUE, 2, 100, 1000);
	put_str(&c, 0, "first");
	put_str(&c, 0, "second");
	assert_int_equal(chan_get(&c, 0, &m), 1);
	chan_unget(&c, 0, m);                        /* a pump could not deliver it */
	assert_int_equal(c.q[0].gets, 0);
	assert_int_equal(c.q[0].depth, 2);
	get_str(&c, 0, "first");
	get_str(&c, 0, "second");
	assert_int_equal(chan_get(&c, 0, &m), -EAGAIN);
	put_str(&c, 0, "x");
	assert_int_equal(chan_get(&c, 0, &m), 1);
	chan_unget(&c, 0, m);                        /* into a queue left empty */
	assert_ptr_equal(c.q[0].head, c.q[0].tail);
	get_str(&c, 0, "x");
	chan_destroy(&c);
}

static void test_partial_reads_keep_the_rest(void **state)
{
	struct chan c;
	struct chan_msg *m;
	struct chan_rest r = { 0 };
	const char *p;
	chan_init(&c, CHAN_QUEUE, 10, 100, 1000);
	put_str(&c, 0, "hello world");
	put_str(&c, 0, "next");
	assert_int_equal(chan_get(&c, 0, &m), 1);
	chan_rest_set(&r, m);
	size_t n = chan_rest_peek(&r, 5, &p);        /* a short read */
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	chan_rest_advance(&r, n);
	n = chan_rest_peek(&r, 100, &p);             /* the rest, and not a byte of "next" */
	assert_int_equal(n, 6);
	assert_memory_equal(p, " world", 6);
	chan_rest_advance(&r, n);
	assert_true(chan_rest_empty(&r));
	assert_int_equal(chan_rest_peek(&r, 100, &p), 0);
	assert_int_equal(c.q[0].depth, 1);           /* "next" never left the channel */
	assert_int_equal(chan_get(&c, 0, &m), 1);
	chan_rest_set(&r, m);
	chan_rest_clear(&r);                         /* a reader closing mid-message frees it */
	assert_true(chan_rest_empty(&r));
	chan_destroy(&c);
}

/* Lines mode's writes: each complete line a message, all or none when they
 * could fit at once, in parts when they never could; the writer's
 * unfinished line begins the first and is left after the last. */
static void test_put_lines(void **state)
{
	struct chan c;
	chan_init(&c, CHAN_QUEUE, 4, 4, 11);
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "ab", 2), 0);     /* no line yet */
	assert_int_equal(c.q[0].depth, 0);
	assert_int_equal(chan_put_lines(&c, 0, "ab", 2, "c\nd\ne", 5), 4);
	get_str(&c, 0, "abc\n");
	get_str(&c, 0, "d\n");
	assert_int_equal(chan_put_lines(&c, 0, "e", 1, "abcd", 4), -EMSGSIZE);  /* unfinished */
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "abcde\n", 6), -EMSGSIZE);
	/* more lines than the capacity: as many as there is room for */
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "1\n2\n3\n4\n5\n", 10), 8);
	assert_int_equal(c.q[0].depth, 4);
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "5\n", 2), -EAGAIN);
	get_str(&c, 0, "1\n");
	/* two lines could fit at once, but there is room for one: all or none */
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "5\n6\n", 4), -EAGAIN);
	assert_int_equal(chan_lines_refuse(&c, 0, 0, "5\n6\n", 4), -EAGAIN);
	assert_int_equal(chan_lines_refuse(&c, 0, 0, "y", 1), 0);   /* no line: no room needed */
	assert_int_equal(c.q[0].depth, 3);
	get_str(&c, 0, "2\n");
	get_str(&c, 0, "3\n");
	get_str(&c, 0, "4\n");
	/* more bytes than max_bytes: in parts too */
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "abc\nabc\nabc\n", 12), 8);
	assert_int_equal(chan_set_mode(&c, CHAN_MODE_MESSAGE), -EBUSY);   /* not empty */
	chan_close(&c);
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "y", 1), -EPIPE);
	chan_destroy(&c);
	assert_int_equal(chan_set_mode(&c, CHAN_MODE_MESSAGE), 0);
	/* a line over max_bytes alone could never fit */
	chan_init(&c, CHAN_QUEUE, 4, 100, 10);
	assert_int_equal(chan_put_lines(&c, 0, NULL, 0, "0123456789a\n", 12), -ENOSPC);
	chan_destroy(&c);
}

/* Lines mode's reads: the oldest whole messages that fit, or one too long
 * alone; the reader goes through them in parts. */
static void test_get_upto_and_rest_chains(void **state)
{
	struct chan c;
	struct chan_msg *m;
	struct chan_rest r = { 0 };
	const char *p;
	chan_init(&c, CHAN_QUEUE, 10, 100, 1000);
	put_str(&c, 0, "aa\n");
	put_str(&c, 0, "bbbbbbbb\n");
	put_str(&c, 0, "c\n");
	assert_int_equal(chan_get_upto(&c, 0, 5, &m), 1);    /* "aa\n" fits, the next not */
	assert_null(m->next);
	chan_rest_set(&r, m);
	assert_int_equal(chan_rest_fit(&r, 100), 3);
	chan_rest_advance(&r, 3);
	assert_true(chan_rest_empty(&r));
	assert_int_equal(chan_get_upto(&c, 0, 4, &m), 1);    /* too long: alone */
	assert_int_equal(m->len, 9);
	assert_null(m->next);
	assert_int_equal(c.q[0].depth, 1);
	chan_msg_free(m);
	put_str(&c, 0, "dd\n");
	assert_int_equal(chan_get_upto(&c, 0, 100, &m), 1);  /* both */
	chan_rest_set(&r, m);
	assert_int_equal(chan_rest_fit(&r, 1), 1);            /* a part of the first */
	assert_int_equal(chan_rest_fit(&r, 4), 2);            /* the first, not a part of "dd" */
	assert_int_equal(chan_rest_peek(&r, 1, &p), 1);
	assert_memory_equal(p, "c", 1);
	chan_rest_advance(&r, 1);
	assert_int_equal(chan_rest_fit(&r, 100), 4);          /* "\n" and "dd\n" */
	chan_rest_advance(&r, 2);                             /* across the two */
	assert_int_equal(chan_rest_peek(&r, 100, &p), 2);
	assert_memory_equal(p, "d\n", 2);
	chan_rest_clear(&r);
	assert_int_equal(chan_get_upto(&c, 0, 100, &m), -EAGAIN);
	chan_destroy(&c);
}

static void test_destroy_frees_waiting_messages(void **state)
{
	struct chan c;
	chan_init(&c, CHAN_PIPE, 10, 100, 1000);
	put_str(&c, 0, "left");
	put_str(&c, 1, "behind");
	chan_destroy(&c);       /* valgrind/ASan check that nothing leaks */
	assert_int_equal(c.q[0].depth + c.q[1].depth, 0);
}

static void test_names(void **state)
{
	assert_true(chan_name_ok("jobs"));
	assert_true(chan_name_ok("a.b_c-1"));
	assert_true(chan_name_ok("..."));
	char max[CHAN_NAME_MAX + 2];
	memset(max, 'x', sizeof(max));
	max[CHAN_NAME_MAX] = '\0';
	assert_true(chan_name_ok(max));
	max[CHAN_NAME_MAX] = 'x';
	max[CHAN_NAME_MAX + 1] = '\0';
	assert_false(chan_name_ok(max));
	assert_false(chan_name_ok(""));
	assert_false(chan_name_ok("."));
	assert_false(chan_name_ok(".."));
	assert_false(chan_name_ok("a/b"));
	assert_false(chan_name_ok("a b"));
	assert_false(chan_name_ok("caf\xc3\xa9"));
}

static void test_parse_create(void **state)
{
	struct chan_spec s;
	char err[256];
	assert_int_equal(chan_parse_create("queue jobs", &s, err, sizeof(err)), 0);
	assert_int_equal(s.type, CHAN_QUEUE);
	assert_string_equal(s.name, "jobs");
	assert_int_equal(s.capacity, 0);
	assert_int_equal(s.maxmsg, 0);
	assert_int_equal(s.mode, CHAN_MODE_LINES);   /* the default */
	assert_int_equal(chan_parse_create("queue q capacity=3 maxmsg=4k\n", &s, err,
					   sizeof(err)), 0);
	assert_int_equal(s.capacity, 3);
	assert_int_equal(s.maxmsg, 4096);
	assert_int_equal(chan_parse_create("pipe p capacity=1 mode=message", &s, err, sizeof(err)),
			 0);
	assert_int_equal(s.type, CHAN_PIPE);
	assert_int_equal(s.mode, CHAN_MODE_MESSAGE);
	assert_int_equal(chan_parse_create("queue l mode=lines", &s, err, sizeof(err)), 0);
	assert_int_equal(s.mode, CHAN_MODE_LINES);
	assert_int_equal(chan_parse_create("queue b mode=binary", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "mode=binary: want lines or message");
	assert_int_equal(chan_parse_create("socket s", &s, err, sizeof(err)), 0);
	assert_int_equal(s.type, CHAN_SOCKET);
	assert_int_equal(chan_parse_create("fifo f", &s, err, sizeof(err)), 0);
	assert_int_equal(s.type, CHAN_FIFO);
	assert_int_equal(s.pipe_size, 0);
	assert_int_equal(chan_parse_create("fifo f size=1M", &s, err, sizeof(err)), 0);
	assert_int_equal(s.pipe_size, 1 << 20);
	/* a fifo is the kernel's pipe: nothing of a queue's applies */
	assert_int_equal(chan_parse_create("fifo f capacity=3", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a fifo takes only size="));
	assert_int_equal(chan_parse_create("fifo f size=1K", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_create("fifo f size=2G", &s, err, sizeof(err)), -EINVAL);

	assert_int_equal(chan_parse_create("tube t", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown channel type"));
	assert_int_equal(chan_parse_create("queue", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_create("queue ..", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad channel name"));
	assert_int_equal(chan_parse_create("queue q capacity=0", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_create("queue q capacity=1000001", &s, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(chan_parse_create("queue q maxmsg=17M", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_create("queue q colour=red", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown option"));
}

/* capacity=N, as both ctl files read it (channels/NAME/ctl's lines are the
 * channels room's: test_engine's test_channel_ctl_lines). */
static void test_parse_capacity(void **state)
{
	uint32_t cap = 0;
	char err[256];
	assert_int_equal(chan_parse_capacity("7", &cap, err, sizeof(err)), 0);
	assert_int_equal(cap, 7);
	assert_int_equal(chan_parse_capacity("1000000", &cap, err, sizeof(err)), 0);
	assert_int_equal(cap, 1000000);
	cap = 5;
	assert_int_equal(chan_parse_capacity("x", &cap, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "capacity=x: want 1..1000000 messages");
	/* the user's text in a reason is short and printable (fuzz_channels
	 * found a newline quoted as it came): one line in /log */
	assert_int_equal(chan_parse_capacity("\n", &cap, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "capacity=?: want 1..1000000 messages");
	assert_int_equal(chan_parse_mode("\x1b[2J", NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "mode=?[2J: want lines or message");
	assert_int_equal(chan_parse_capacity("0", &cap, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_capacity("1000001", &cap, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_capacity("-1", &cap, err, sizeof(err)), -EINVAL);
	assert_int_equal(chan_parse_capacity("", &cap, err, sizeof(err)), -EINVAL);
	assert_int_equal(cap, 5);   /* a refusal stages nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_keeps_boundaries),
		cmocka_unit_test(test_capacity_and_sizes),
		cmocka_unit_test(test_byte_limit),
		cmocka_unit_test(test_close_then_drain),
		cmocka_unit_test(test_pipe_directions_are_independent),
		cmocka_unit_test(test_unget_restores_order_and_counts),
		cmocka_unit_test(test_partial_reads_keep_the_rest),
		cmocka_unit_test(test_put_lines),
		cmocka_unit_test(test_get_upto_and_rest_chains),
		cmocka_unit_test(test_destroy_frees_waiting_messages),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_parse_create),
		cmocka_unit_test(test_parse_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
