/* log.c - the /log ring: the last cfg.log_lines events, newest last.
 * Lines at or above the configured level also go to stderr (the daemon points
 * stderr at syslog when it runs in the background). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "engine_int.h"

static const char *const lvl_tag[] = {
	[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",   [LOG_LVL_DEBUG] = "debug",
};

void log_init(struct engine *e)
{
	pthread_mutex_init(&e->log_lock, NULL);
	e->log = calloc(e->cfg.log_lines, sizeof(*e->log));
	e->log_head = e->log_count = 0;
}

void log_free(struct engine *e)
{
	if (e->log)
		for (size_t i = 0; i < e->cfg.log_lines; i++)
			free(e->log[i]);
	free(e->log);
	e->log = NULL;
	pthread_mutex_destroy(&e->log_lock);
}

static void log_vadd(struct engine *e, enum log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vadd(struct engine *e, enum log_level lvl, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40], msg[1024];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One event is one line, whatever the message held. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	char *line = NULL;
	if (asprintf(&line, "%s %s %s\n", stamp, lvl_tag[lvl], msg) < 0)
		line = NULL;

	pthread_mutex_lock(&e->log_lock);
	if (e->log && line) {
		size_t cap = e->cfg.log_lines;
		size_t slot = (e->log_head + e->log_count) % cap;
		if (e->log_count == cap) {      /* full: the oldest goes */
			free(e->log[e->log_head]);
			e->log_head = (e->log_head + 1) % cap;
			slot = (e->log_head + cap - 1) % cap;
		} else {
			e->log_count++;
		}
		e->log[slot] = line;
		line = NULL;
	}
	pthread_mutex_unlock(&e->log_lock);
	free(line);

	if (lvl <= e->cfg.log_level)
		fprintf(stderr, "pcfs: %s: %s\n", lvl_tag[lvl], msg);
}

void log_add(struct engine *e, enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vadd(e, lvl, fmt, ap);
	va_end(ap);
}

void engine_log(struct engine *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vadd(e, LOG_LVL_INFO, fmt, ap);
	va_end(ap);
}

void engine_log_render(struct engine *e, struct strbuf *out)
{
	pthread_mutex_lock(&e->log_lock);
	for (size_t i = 0; i < e->log_count; i++)
		sb_adds(out, e->log[(e->log_head + i) % e->cfg.log_lines]);
	pthread_mutex_unlock(&e->log_lock);
}
