/* log.c - the /log ring: the last cfg.log_lines events, newest last.
 * Every event goes to the ring; those at or above the configured [log] level
 * also go to stderr in the foreground, or to syslog(3) once the daemon has
 * detached (its stderr is then /dev/null; under systemd, syslog is the
 * journal). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

static const char *const lvl_tag[] = {
	[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",   [LOG_LVL_DEBUG] = "debug",
};

/* Where the lines above the level go: one sink for the whole process, chosen
 * by main() when it daemonizes, before any engine thread runs. */
static bool to_syslog;

void engine_log_to_syslog(bool on)
{
	to_syslog = on;
}

static const int syslog_prio[] = {
	[LOG_LVL_ERROR] = LOG_ERR, [LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO, [LOG_LVL_DEBUG] = LOG_DEBUG,
};

/* The level filter: is an event of level lvl wanted outside the ring? */
bool log_level_passes(enum log_level lvl, enum log_level threshold)
{
	return lvl <= threshold;
}

/* glibc's syslog() tries to connect to /dev/log on every call while it is
 * not connected: with no syslog daemon (a container, a minimal VM) that was
 * a socket, a failed connect and a getpid for every event, every spawn line
 * among them.  The socket is looked for at most every 10 s instead; an event
 * that finds none is in /log all the same. */
static bool syslog_socket_there(void)
{
	static _Atomic long long checked;   /* monotonic second + 1 of the last look */
	static _Atomic bool there;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	long long now = (long long)ts.tv_sec + 1;
	long long last = atomic_load(&checked);
	if (!last || now - last >= 10) {
		atomic_store(&there, access(_PATH_LOG, W_OK) == 0);
		atomic_store(&checked, now);
	}
	return atomic_load(&there);
}

static void log_sink(enum log_level lvl, const char *msg)
{
	if (to_syslog) {
		if (syslog_socket_there())
			syslog(syslog_prio[lvl], "%s: %s", lvl_tag[lvl], msg);
	} else {
		fprintf(stderr, "pcfs: %s: %s\n", lvl_tag[lvl], msg);
	}
}

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

/* "2026-12-05T01:34:44.123Z": gmtime_r and strftime change only once a
 * second, so each thread keeps its last second's text (with both, an event
 * cost 4 us, and every task's end is one). */
static size_t format_stamp(char out[40])
{
	static _Thread_local time_t last_sec = -1;
	static _Thread_local char secs[32];
	static _Thread_local size_t nsecs;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		nsecs = strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = ts.tv_sec;
	}
	memcpy(out, secs, nsecs);
	unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
	out[nsecs] = '.';
	out[nsecs + 1] = (char)('0' + ms / 100);
	out[nsecs + 2] = (char)('0' + ms / 10 % 10);
	out[nsecs + 3] = (char)('0' + ms % 10);
	out[nsecs + 4] = 'Z';
	return nsecs + 5;
}

static void log_vadd(struct engine *e, enum log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vadd(struct engine *e, enum log_level lvl, const char *fmt, va_list ap)
{
	char stamp[40], msg[1024];

	size_t ns = format_stamp(stamp);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t nm = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	msg[nm] = '\0';
	/* One event is one line, whatever the message held. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	/* "STAMP LEVEL MSG\n" */
	size_t nt = strlen(lvl_tag[lvl]);
	char *line = malloc(ns + 1 + nt + 1 + nm + 2);
	if (line) {
		char *p = line;
		memcpy(p, stamp, ns);
		p += ns;
		*p++ = ' ';
		memcpy(p, lvl_tag[lvl], nt);
		p += nt;
		*p++ = ' ';
		memcpy(p, msg, nm);
		p += nm;
		*p++ = '\n';
		*p = '\0';
	}

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

	if (log_level_passes(lvl, e->cfg.log_level))
		log_sink(lvl, msg);
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
