/* test_log.c - the event log: every event goes to the /log ring (bounded,
 * newest last), and only those at or above [log] level reach stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"

/* An engine with just what the log needs. */
static struct engine *log_engine(size_t lines, enum log_level level)
{
	struct engine *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->cfg.log_lines = (uint32_t)lines;
	e->cfg.log_level = level;
	log_init(e);
	return e;
}

static void log_engine_free(struct engine *e)
{
	log_free(e);
	free(e);
}

/* Run one event of each level with stderr captured; returns what reached it. */
static char *stderr_of_each_level(struct engine *e)
{
	char path[] = "/tmp/pcfs-test-log.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_add(e, LOG_LVL_ERROR, "an error %d", 1);
	log_add(e, LOG_LVL_WARN, "a warning");
	log_add(e, LOG_LVL_INFO, "some news");
	log_add(e, LOG_LVL_DEBUG, "a detail");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	static char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void level_filter(void **state)
{
	assert_true(log_level_passes(LOG_LVL_ERROR, LOG_LVL_ERROR));
	assert_false(log_level_passes(LOG_LVL_WARN, LOG_LVL_ERROR));
	assert_true(log_level_passes(LOG_LVL_WARN, LOG_LVL_INFO));
	assert_true(log_level_passes(LOG_LVL_INFO, LOG_LVL_INFO));
	assert_false(log_level_passes(LOG_LVL_DEBUG, LOG_LVL_INFO));
	assert_true(log_level_passes(LOG_LVL_DEBUG, LOG_LVL_DEBUG));
}

static void warn_level_keeps_errors_and_warnings(void **state)
{
	struct engine *e = log_engine(100, LOG_LVL_WARN);
	const char *err = stderr_of_each_level(e);
	assert_string_equal(err, "pcfs: error: an error 1\npcfs: warn: a warning\n");

	/* the ring keeps all four, whatever the level */
	struct strbuf ring = STRBUF_INIT;
	engine_log_render(e, &ring);
	assert_non_null(strstr(ring.buf, " error an error 1\n"));
	assert_non_null(strstr(ring.buf, " warn a warning\n"));
	assert_non_null(strstr(ring.buf, " info some news\n"));
	assert_non_null(strstr(ring.buf, " debug a detail\n"));
	sb_free(&ring);
	log_engine_free(e);
}

static void debug_level_keeps_everything(void **state)
{
	struct engine *e = log_engine(100, LOG_LVL_DEBUG);
	const char *err = stderr_of_each_level(e);
	assert_string_equal(err, "pcfs: error: an error 1\npcfs: warn: a warning\n"
				 "pcfs: info: some news\npcfs: debug: a detail\n");
	log_engine_free(e);
}

static void error_level_keeps_errors(void **state)
{
	struct engine *e = log_engine(100, LOG_LVL_ERROR);
	assert_string_equal(stderr_of_each_level(e), "pcfs: error: an error 1\n");
	log_engine_free(e);
}

/* A full ring forgets its oldest lines; one event is one line. */
static void ring_is_bounded(void **state)
{
	struct engine *e = log_engine(3, LOG_LVL_ERROR);
	for (int i = 1; i <= 5; i++)
		log_add(e, LOG_LVL_INFO, "event %d\nsecond line", i);
	struct strbuf ring = STRBUF_INIT;
	engine_log_render(e, &ring);
	assert_null(strstr(ring.buf, "event 2 "));
	const char *p3 = strstr(ring.buf, "event 3 second line\n");
	const char *p5 = strstr(ring.buf, "event 5 second line\n");
	assert_non_null(p3);
	assert_non_null(p5);
	assert_true(p3 < p5);
	size_t lines = 0;
	for (size_t i = 0; i < ring.len; i++)
		lines += ring.buf[i] == '\n';
	assert_int_equal(lines, 3);
	sb_free(&ring);
	log_engine_free(e);
}

/* Each line is "2026-12-05T01:34:44.123Z LEVEL message": the time is UTC
 * now, to the millisecond; a message too long for one event is cut, never
 * split. */
static void line_format(void **state)
{
	struct engine *e = log_engine(10, LOG_LVL_ERROR);
	/* the clock the log reads: time() is the coarse clock, up to a tick
	 * behind, and a second that has just begun is not yet its second */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t before = ts.tv_sec;
	log_add(e, LOG_LVL_WARN, "value %d of %s", 7, "x");
	char big[3000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_add(e, LOG_LVL_INFO, "%s", big);
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t after = ts.tv_sec;

	struct strbuf ring = STRBUF_INIT;
	engine_log_render(e, &ring);
	struct tm tm = { 0 };
	int ms = -1, used = 0;
	char lvl[8];
	assert_int_equal(sscanf(ring.buf, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %7s %n", &tm.tm_year,
				&tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms,
				lvl, &used), 8);
	assert_string_equal(lvl, "warn");
	assert_true(ms >= 0 && ms <= 999);
	assert_memory_equal(ring.buf + 19, ".", 1);   /* three digits after the dot */
	assert_memory_equal(ring.buf + 23, "Z warn value 7 of x\n", 20);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t stamp = timegm(&tm);
	assert_true(stamp >= before && stamp <= after);

	const char *second = strchr(ring.buf, '\n') + 1;
	const char *msg = strstr(second, " info ");
	assert_non_null(msg);
	msg += strlen(" info ");
	const char *end = strchr(msg, '\n');
	assert_non_null(end);
	assert_int_equal(end - msg, 1023);   /* cut to the event's 1024-byte buffer */
	assert_int_equal(end[1], '\0');       /* and still one line */
	sb_free(&ring);
	log_engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(level_filter),
		cmocka_unit_test(warn_level_keeps_errors_and_warnings),
		cmocka_unit_test(debug_level_keeps_everything),
		cmocka_unit_test(error_level_keeps_errors),
		cmocka_unit_test(ring_is_bounded),
		cmocka_unit_test(line_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
