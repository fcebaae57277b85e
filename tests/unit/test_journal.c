/* test_journal.c - the [state] dir's record format: what is written reads
 * back the same whatever bytes a value holds, and anything torn or malformed
 * is refused rather than half-read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal.h"
#include "statekey.h"

/* A mountpoint's default state dir name: systemd-escape --path's, with +NN. */
static void test_statekey(void **state)
{
	(void)state;
	char k[STATEKEY_MAX + 1];
	static const char *const cases[][2] = {
		{ "/", "-" },
		{ "/mnt/pcfs", "mnt-pcfs" },
		{ "/tmp/pcfs-test.Ab1/mnt.x", "tmp-pcfs+2dtest.Ab1-mnt.x" },
		{ "/home/a b/.hidden", "home-a+20b-.hidden" },
		{ "/.dot//x/", "+2edot-x" },
		{ "/caf\xc3\xa9:1_2", "caf+c3+a9:1_2" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(statekey(cases[i][0], k, sizeof(k)), 0);
		assert_string_equal(k, cases[i][1]);
	}
	assert_int_equal(statekey("rel/x", k, sizeof(k)), -EINVAL);
	/* long paths: a bounded name, distinct for two that share a long head */
	char a[1200], b[1200], ka[STATEKEY_MAX + 1];
	memset(a, 'x', sizeof(a) - 2);
	a[0] = '/';
	a[sizeof(a) - 2] = 'a';
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(a));
	b[sizeof(b) - 2] = 'b';
	assert_int_equal(statekey(a, ka, sizeof(ka)), 0);
	assert_int_equal(statekey(b, k, sizeof(k)), 0);
	assert_int_equal(strlen(ka), STATEKEY_MAX);
	assert_int_equal(strlen(k), STATEKEY_MAX);
	assert_string_not_equal(ka, k);
}

static void test_round_trip(void **state)
{
	static const char cmd[] = "sh printf '%s\\n' \"a b\"; echo 100%\ttab=x";
	static const char bin[] = { 'a', '\n', '\r', 0x7f, ' ', '%', (char)0xc3, (char)0xa9 };
	struct strbuf sb = STRBUF_INIT;
	struct timespec ts = { 1795574735, 406720256 };
	jr_begin(&sb, "T");
	jr_u64(&sb, "id", 18446744073709551615ull);
	jr_i64(&sb, "code", -9);
	jr_ts(&sb, "start", ts);
	jr_str(&sb, "cmd", cmd);
	jr_mem(&sb, "bin", bin, sizeof(bin));
	jr_str(&sb, "empty", "");
	jr_str(&sb, "absent", NULL);
	jr_end(&sb);
	/* one line, nothing but printable non-space bytes inside values */
	assert_non_null(memchr(sb.buf, '\n', sb.len));
	assert_ptr_equal(memchr(sb.buf, '\n', sb.len), sb.buf + sb.len - 1);
	sb.buf[--sb.len] = '\0';

	struct jrec r;
	assert_int_equal(jr_parse(sb.buf, &r), 0);
	assert_string_equal(r.kind, "T");
	uint64_t u;
	int64_t i;
	struct timespec t2;
	assert_true(jr_get_u64(&r, "id", &u));
	assert_true(u == 18446744073709551615ull);
	assert_true(jr_get_i64(&r, "code", &i));
	assert_int_equal(i, -9);
	assert_true(jr_get_ts(&r, "start", &t2));
	assert_int_equal(t2.tv_sec, ts.tv_sec);
	assert_int_equal(t2.tv_nsec, ts.tv_nsec);
	assert_string_equal(jr_get(&r, "cmd", NULL), cmd);
	size_t len;
	const char *b = jr_get(&r, "bin", &len);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(b, bin, sizeof(bin));
	assert_string_equal(jr_get(&r, "empty", &len), "");
	assert_int_equal(len, 0);
	assert_null(jr_get(&r, "absent", NULL));
	sb_free(&sb);
}

/* What a daemon killed mid-write or a damaged file can leave. */
static void test_malformed_refused(void **state)
{
	static const char *const bad[] = {
		"",                      /* nothing */
		"T id",                  /* a field without '=' */
		"T =5",                  /* a field without a key */
		"T id=5 cmd=ab%2",       /* a torn escape */
		"T id=5 cmd=%zz",        /* not hex */
		"kind=T id=5",           /* no kind word */
		"AVERYLONGKINDWORDX id=1",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char *line = strdup(bad[k]);
		struct jrec r;
		if (jr_parse(line, &r) == 0)
			fail_msg("accepted '%s'", bad[k]);
		free(line);
	}
}

static void test_typed_getters_refuse_garbage(void **state)
{
	char line[] = "E id=12x code= neg=-5 ts=12.5 ts2=1.000000001 big=99999999999999999999";
	struct jrec r;
	assert_int_equal(jr_parse(line, &r), 0);
	uint64_t u = 7;
	int64_t i = 7;
	struct timespec ts;
	assert_false(jr_get_u64(&r, "id", &u));
	assert_int_equal(u, 7);
	assert_false(jr_get_i64(&r, "code", &i));
	assert_false(jr_get_u64(&r, "neg", &u));
	assert_true(jr_get_i64(&r, "neg", &i));
	assert_int_equal(i, -5);
	assert_false(jr_get_ts(&r, "ts", &ts));      /* nanoseconds are 9 digits */
	assert_true(jr_get_ts(&r, "ts2", &ts));
	assert_int_equal(ts.tv_nsec, 1);
	assert_false(jr_get_u64(&r, "big", &u));     /* out of range */
	assert_false(jr_get_u64(&r, "missing", &u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_statekey),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_typed_getters_refuse_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
