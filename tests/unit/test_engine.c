/* test_engine.c - the engine on its own, no FUSE: the task table and state
 * machine, refusals and limits, threads, history; pools and futures
 * (ordering, cancel races, resize, a worker's death).  It runs real
 * processes through the real pcfs-worker ($PCFS_WORKER). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <valgrind/valgrind.h>

#include "config.h"
#include "engine.h"
#include "core/core.h"   /* spawn windows, driven by hand */
#include "memory/memory_int.h"   /* ... and the orphans they leave */

static struct engine *eng;
static struct pcfs_config cfg;

static struct engine *start(void)
{
	char err[256];
	const char *worker = getenv("PCFS_WORKER");
	assert_non_null(worker);
	struct engine *e = engine_new(&cfg, "/pcfs-test", worker, err, sizeof(err));
	if (!e)
		fail_msg("engine_new: %s", err);
	assert_int_equal(engine_start(e), 0);
	return e;
}

static int setup_with_ahead(int64_t ahead_ms)
{
	config_defaults(&cfg);
	cfg.log_level = LOG_LVL_ERROR;
	cfg.kill_grace_ms = 300;
	cfg.pool_ahead_ms = ahead_ms;
	eng = start();
	return 0;
}

static int setup(void **state)
{
	struct pcfs_config def;
	config_defaults(&def);
	return setup_with_ahead(def.pool_ahead_ms);
}

/* Pipelining tests: once a pool has run something its slots are handed
 * futures ahead up to [pools] depth, however loaded the machine is. */
static int setup_far_ahead(void **state)
{
	return setup_with_ahead(10000);
}

/* [tasks] history = 0: the newest ended task is all that is kept. */
static int setup_no_history(void **state)
{
	config_defaults(&cfg);
	cfg.log_level = LOG_LVL_ERROR;
	cfg.history = 0;
	eng = start();
	return 0;
}

/* Rebalancing: a slot's queue is taken back 100 ms into a long future. */
static int setup_near_ahead(void **state)
{
	return setup_with_ahead(100);
}

static int teardown(void **state)
{
	engine_shutdown(eng);
	engine_free(eng);
	eng = NULL;
	return 0;
}

/* spawn one write; returns the first new id (asserting success) */
static uint64_t spawn(const char *lines)
{
	struct strbuf ids = STRBUF_INIT;
	char err[256] = "";
	int rc = engine_spawn(eng, lines, strlen(lines), &ids, err, sizeof(err));
	if (rc < 0)
		fail_msg("spawn '%s': %s", lines, err);
	uint64_t id = strtoull(sb_cstr(&ids), NULL, 10);
	sb_free(&ids);
	return id;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Poll until the task has ended (the engine has no blocking call). */
static struct task_info wait_end(uint64_t id)
{
	struct task_info ti;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(engine_task_info(eng, id, &ti), 0);
		if (ti.ended)
			return ti;
		task_info_free(&ti);
		sleep_ms(10);
	}
	fail_msg("task %llu did not end", (unsigned long long)id);
	return ti;
}

static void expect_end(uint64_t id, enum task_state st, int code)
{
	struct task_info ti = wait_end(id);
	assert_int_equal(ti.state, st);
	assert_int_equal(ti.exitcode, code);
	task_info_free(&ti);
}

static void ctl(uint64_t id, const char *cmd)
{
	char err[256];
	int rc = engine_task_ctl(eng, id, cmd, err, sizeof(err));
	if (rc < 0)
		fail_msg("ctl %s: %s", cmd, err);
}

/* ---- tasks -------------------------------------------------------------- */

static void test_exit_codes(void **state)
{
	expect_end(spawn("exec /bin/true"), TS_EXITED, 0);
	expect_end(spawn("sh exit 3"), TS_EXITED, 3);
	uint64_t a = spawn("sleep time=5s");
	ctl(a, "term");
	expect_end(a, TS_KILLED, -15);
	uint64_t b = spawn("sleep time=5s");
	ctl(b, "kill");
	expect_end(b, TS_KILLED, -9);
	char err[256];
	assert_int_equal(engine_task_ctl(eng, b, "term", err, sizeof(err)), -ESRCH);
	assert_int_equal(engine_task_ctl(eng, 999999, "term", err, sizeof(err)), -ENOENT);
}

/* procs/ID/ctl: a malformed line is refused whole, with the reason, before
 * the task is looked at, and the task goes on; a good one is sent. */
static void test_task_ctl_lines(void **state)
{
	static const struct { const char *line, *why; } bad[] = {
		{ "frobnicate", "unknown command 'frobnicate' (term, kill, signal N|NAME, stop, cont)" },
		{ "", "empty command (term, kill, signal N|NAME, stop, cont)" },
		{ "term now", "'term' takes no arguments" },
		{ "kill -9", "'kill' takes no arguments" },
		{ "signal", "'signal' takes 1 argument" },
		{ "signal 10 12", "'signal' takes 1 argument" },
		{ "signal NOPE", "signal needs one signal number or name" },
		{ "signal 0", "signal needs one signal number or name" },
		{ "signal 65", "signal needs one signal number or name" },
		{ "term=1", "unknown command 'term=1'" },
		{ "'term", "unterminated single quote" },
	};
	char err[256];
	struct task_info ti;
	uint64_t a = spawn("sleep time=30s");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(engine_task_ctl(eng, a, bad[i].line, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("'%s': '%s', not '%s'", bad[i].line, err, bad[i].why);
	}
	assert_int_equal(engine_task_ctl(eng, 999999, "frobnicate", err, sizeof(err)), -EINVAL);
	assert_int_equal(engine_task_info(eng, a, &ti), 0);
	assert_false(ti.ended);
	task_info_free(&ti);
	ctl(a, "stop");
	ctl(a, "cont");
	ctl(a, "signal CONT");
	ctl(a, "signal 'TERM'");
	expect_end(a, TS_KILLED, -15);
}

/* /top lists the live tasks, counted as they start and end. */
static size_t top_rows(void)
{
	struct top_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(engine_top(eng, &rows, &n), 0);
	free(rows);
	return n;
}

static void test_top_follows_live_tasks(void **state)
{
	size_t before = top_rows();
	uint64_t a = spawn("sleep time=5s");
	uint64_t b = spawn("sleep time=5s");
	expect_end(spawn("exec /bin/true"), TS_EXITED, 0);
	assert_int_equal(top_rows(), before + 2);
	ctl(a, "kill");
	expect_end(a, TS_KILLED, -9);
	assert_int_equal(top_rows(), before + 1);
	ctl(b, "kill");
	expect_end(b, TS_KILLED, -9);
	assert_int_equal(top_rows(), before);
}

/* The per-field files' query: every fixed field, no command line copied. */
static void test_task_brief_copies_nothing(void **state)
{
	uint64_t id = spawn("sh exit 3");
	expect_end(id, TS_EXITED, 3);
	struct task_info full, brief;
	assert_int_equal(engine_task_info(eng, id, &full), 0);
	assert_int_equal(engine_task_brief(eng, id, &brief), 0);
	assert_null(brief.cmd);
	assert_string_equal(full.cmd, "sh exit 3");
	assert_int_equal(brief.state, full.state);
	assert_int_equal(brief.exitcode, full.exitcode);
	assert_int_equal(brief.pid, full.pid);
	assert_true(brief.ended);
	task_info_free(&full);
	task_info_free(&brief);
	assert_int_equal(engine_task_brief(eng, 999999, &brief), -ENOENT);
}

/* Descriptors of ours open on /proc/PID/stat. */
static int stat_fds_of(pid_t pid)
{
	char want[64], path[300], link[256];
	snprintf(want, sizeof(want), "/proc/%d/stat", pid);
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		if (len > 0) {
			link[len] = '\0';
			n += !strcmp(link, want);
		}
	}
	closedir(d);
	return n;
}

/* status reads a live process's CPU times from its /proc/PID/stat, kept
 * open from the first read to the task's end: every read is live, and the
 * descriptor goes with the task. */
static void test_status_cpu_times(void **state)
{
	uint64_t id = spawn("cpu time=5s");
	struct task_info ti;
	double first = -1, last = -1;
	pid_t pid = 0;
	for (int i = 0; i < 500 && last < first + 0.2; i++, sleep_ms(10)) {
		assert_int_equal(engine_task_status(eng, id, &ti), 0);
		assert_false(ti.ended);
		pid = ti.pid;
		if (first < 0)
			first = ti.utime + ti.stime;
		last = ti.utime + ti.stime;
		task_info_free(&ti);
	}
	assert_true(last >= first + 0.2);    /* the later reads were live */
	assert_int_equal(stat_fds_of(pid), 1);   /* one kept, none per read */
	ctl(id, "kill");
	expect_end(id, TS_KILLED, -9);
	assert_int_equal(stat_fds_of(pid), 0);   /* closed at the end */
}

static void test_states(void **state)
{
	uint64_t id = spawn("sleep time=600ms");
	struct task_info ti;
	assert_int_equal(engine_task_info(eng, id, &ti), 0);
	assert_int_equal(ti.state, TS_RUNNING);
	assert_false(ti.ended);
	assert_int_equal(ti.method, METHOD_FORK);
	assert_true(ti.pid > 0);
	assert_int_equal(ti.pgid, ti.pid);
	task_info_free(&ti);
	ctl(id, "stop");
	bool stopped = false;
	for (int i = 0; i < 200 && !stopped; i++, sleep_ms(5)) {
		assert_int_equal(engine_task_info(eng, id, &ti), 0);
		stopped = ti.state == TS_STOPPED;
		task_info_free(&ti);
	}
	assert_true(stopped);
	ctl(id, "cont");
	expect_end(id, TS_EXITED, 0);
}

static void test_refused_write_starts_nothing(void **state)
{
	struct engine_stats before, after;
	engine_stats(eng, &before);
	struct strbuf ids = STRBUF_INIT;
	char err[256] = "";
	const char *w = "noop\nbogus 2\n";
	assert_int_equal(engine_spawn(eng, w, strlen(w), &ids, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	assert_int_equal(ids.len, 0);
	engine_stats(eng, &after);
	assert_int_equal(after.started, before.started);
	assert_int_equal(after.refused, before.refused + 1);
	assert_int_equal(engine_spawn(eng, "\n# only a comment\n", 18, &ids, err, sizeof(err)),
			 -EINVAL);
	sb_free(&ids);
}

static void test_failed_to_start(void **state)
{
	uint64_t id = spawn("exec /no/such/program");
	struct task_info ti = wait_end(id);
	enum task_state st = ti.state;
	int code = ti.exitcode;
	bool says_why = strstr(ti.error, "No such file") != NULL;
	task_info_free(&ti);
	assert_int_equal(code, 127);
	/* posix_spawn reports a failed exec through its CLONE_VFORK child;
	 * valgrind runs that child as a plain fork, so there the failure can
	 * only show as an exit with 127. */
	if (RUNNING_ON_VALGRIND)
		return;
	assert_int_equal(st, TS_FAILED);
	assert_true(says_why);
}

static void test_threads_share_a_host(void **state)
{
	uint64_t id = spawn("sleep 3 as=thread time=200ms");
	struct task_info t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(engine_task_info(eng, id + i, &t[i]), 0);
	assert_int_equal(t[0].pid, t[1].pid);
	assert_int_equal(t[1].pid, t[2].pid);
	assert_true(t[0].tid > 0 && t[0].tid != t[1].tid && t[1].tid != t[2].tid);
	assert_int_not_equal(t[0].pid, getpid());
	for (int i = 0; i < 3; i++)
		task_info_free(&t[i]);
	ctl(id + 1, "term");
	expect_end(id + 1, TS_KILLED, -15);
	expect_end(id, TS_EXITED, 0);
	expect_end(id + 2, TS_EXITED, 0);
}

static void test_timeout_escalates(void **state)
{
	uint64_t a = spawn("sleep time=5s timeout=100ms");
	struct task_info ti = wait_end(a);
	assert_int_equal(ti.exitcode, -15);
	assert_true(ti.timed_out);
	task_info_free(&ti);
	expect_end(spawn("sh timeout=100ms trap '' TERM; while :; do sleep 0.05; done"),
		   TS_KILLED, -9);
}

static void test_output_captured_separately(void **state)
{
	uint64_t id = spawn("sh echo out; echo err >&2");
	expect_end(id, TS_EXITED, 0);
	char buf[64];
	uint64_t total;
	assert_int_equal(engine_task_output(eng, id, 1, 0, buf, sizeof(buf), &total), 4);
	assert_memory_equal(buf, "out\n", 4);
	assert_int_equal(engine_task_output(eng, id, 2, 0, buf, sizeof(buf), &total), 4);
	assert_memory_equal(buf, "err\n", 4);
	assert_int_equal(engine_task_output(eng, id, 1, 2, buf, sizeof(buf), &total), 2);
}

/* Its own engine: small limits and history. */
static void test_limits_and_history(void **state)
{
	teardown(state);
	config_defaults(&cfg);
	cfg.log_level = LOG_LVL_ERROR;
	cfg.max_processes = 2;
	cfg.history = 2;
	eng = start();
	struct strbuf ids = STRBUF_INIT;
	char err[256];
	assert_int_equal(engine_spawn(eng, "sleep 3 time=1s", 15, &ids, err, sizeof(err)), -EAGAIN);
	assert_non_null(strstr(err, "max_processes"));
	uint64_t a = spawn("sleep time=300ms");
	assert_int_equal(engine_task_forget(eng, a), -EBUSY);
	expect_end(a, TS_EXITED, 0);
	uint64_t b = spawn("noop");
	expect_end(b, TS_EXITED, 0);
	uint64_t c = spawn("noop");
	expect_end(c, TS_EXITED, 0);
	/* history = 2: the oldest ended task is forgotten */
	assert_false(engine_task_exists(eng, a));
	assert_true(engine_task_exists(eng, b) && engine_task_exists(eng, c));
	assert_int_equal(engine_task_forget(eng, c), 0);
	assert_false(engine_task_exists(eng, c));
	/* ids are never reused */
	assert_true(spawn("noop") > c);
	sb_free(&ids);
}

/* history = 0 while a host dies under three live threads: the end of each
 * must not free a task the loop still walks (ASan would say so). */
static void test_no_history_host_death(void **state)
{
	uint64_t id = spawn("sleep 3 as=thread time=10s");
	struct task_info ti;
	assert_int_equal(engine_task_info(eng, id, &ti), 0);
	assert_int_equal(kill(ti.pid, SIGKILL), 0);
	task_info_free(&ti);
	for (int i = 0; i < 300 && engine_task_exists(eng, id + 1); i++)
		sleep_ms(10);
	struct engine_stats st;
	engine_stats(eng, &st);
	assert_int_equal(st.killed, 3);
	assert_int_equal(st.running, 0);
	assert_true(st.known <= 1);   /* only the newest ended task is kept */
}

/* Poll a waitset until nothing is pending; everything it told, in order. */
static char *waitset_drain(struct task_waitset *w, struct strbuf *out)
{
	for (int i = 0; i < 1000 && waitset_pending(w); i++) {
		assert_true(waitset_poll(eng, w, out) >= 0);
		sleep_ms(10);
	}
	assert_int_equal(waitset_pending(w), 0);
	return (char *)sb_cstr(out);
}

/* /wait: ends told once each, in the order they happen, whatever the ids'
 * order; refusals change nothing. */
static void test_waitset(void **state)
{
	uint64_t a = spawn("sh sleep 0.6; exit 2");
	uint64_t b = spawn("sh exit 5");
	uint64_t c = spawn("sleep time=300ms");
	struct task_waitset *w = waitset_new();
	struct strbuf out = STRBUF_INIT;
	char err[256] = "", text[128], want[128];

	snprintf(text, sizeof(text), "%llu-%llu %llu", (unsigned long long)a,
		 (unsigned long long)c, (unsigned long long)b);   /* b twice: told once */
	assert_int_equal(waitset_add(eng, w, text, strlen(text), &out, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%llu 5\n%llu 0\n%llu 2\n", (unsigned long long)b,
		 (unsigned long long)c, (unsigned long long)a);
	assert_string_equal(waitset_drain(w, &out), want);

	/* ended already: told at once, by the order they ended */
	sb_reset(&out);
	snprintf(text, sizeof(text), "%llu\n%llu", (unsigned long long)a, (unsigned long long)c);
	assert_int_equal(waitset_add(eng, w, text, strlen(text), &out, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%llu 0\n%llu 2\n", (unsigned long long)c,
		 (unsigned long long)a);
	assert_string_equal(sb_cstr(&out), want);
	assert_int_equal(waitset_pending(w), 0);

	/* refused whole: nothing added, nothing told */
	uint64_t d = spawn("sleep time=5s");
	sb_reset(&out);
	const char *bad[] = { "x", "0", "3-1", "1-", "-2", "7 1x", "  \n", "99999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%llu %s", (unsigned long long)d, bad[i]);
		err[0] = '\0';
		int rc = waitset_add(eng, w, i == 6 ? bad[i] : text, strlen(i == 6 ? bad[i] : text),
				     &out, err, sizeof(err));
		assert_int_equal(rc, -EINVAL);
		assert_true(err[0] != '\0');
		assert_int_equal(waitset_pending(w), 0);
	}
	assert_int_equal(out.len, 0);
	ctl(d, "kill");
	expect_end(d, TS_KILLED, -9);
	sb_free(&out);
	waitset_free(w);
}

/* history = 0: a task that ends, and is forgotten, between two looks is
 * still told (as forgotten), and the one that forgot it with its code. */
static void test_waitset_forgotten(void **state)
{
	uint64_t x = spawn("sh sleep 0.2; exit 4");
	uint64_t y = spawn("sh sleep 0.5; exit 6");
	struct task_waitset *w = waitset_new();
	struct strbuf out = STRBUF_INIT;
	char err[256], text[64], want[64];
	snprintf(text, sizeof(text), "%llu %llu", (unsigned long long)x, (unsigned long long)y);
	assert_int_equal(waitset_add(eng, w, text, strlen(text), &out, err, sizeof(err)), 0);
	assert_int_equal(waitset_pending(w), 2);
	expect_end(y, TS_EXITED, 6);   /* y's end forgot x */
	assert_false(engine_task_exists(eng, x));
	snprintf(want, sizeof(want), "%llu forgotten\n%llu 6\n", (unsigned long long)x,
		 (unsigned long long)y);
	assert_string_equal(waitset_drain(w, &out), want);
	sb_free(&out);
	waitset_free(w);
}

/* A child of ours that exits at once; returns once the engine has reaped
 * it (the engine thread reaps every child of the process). */
static pid_t child_reaped(int code)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(code);
	for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)   /* a zombie until reaped */
		sleep_ms(10);
	assert_int_equal(kill(pid, 0), -1);
	return pid;
}

/* Spawn windows: a child reaped before its spawner has published it is
 * kept for the spawner (its status intact); what nobody claims becomes a
 * stranger once the last window closes. */
static void test_spawn_window(void **state)
{
	int status = -1;
	struct rusage ru;
	spawn_window_open(eng);
	spawn_window_open(eng);
	pid_t a = child_reaped(7), b = child_reaped(9);
	pthread_mutex_lock(&eng->lock);
	assert_int_equal(eng->nearly, 2);
	assert_true(spawn_window_close_locked(eng, a, &status, &ru));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	bool stranger = false;
	for (size_t i = 0; i < STRANGERS; i++)
		stranger |= eng->memory->strangers[i].pid == b;
	assert_false(stranger);                      /* a window is still open */
	assert_false(spawn_window_close_locked(eng, -ENOENT, &status, &ru));   /* a failed spawn */
	assert_int_equal(eng->nearly, 0);
	for (size_t i = 0; i < STRANGERS; i++)
		stranger |= eng->memory->strangers[i].pid == b;
	assert_true(stranger);                       /* b was nobody's */
	pthread_mutex_unlock(&eng->lock);
	/* no window: children nobody knows are strangers at once */
	pid_t c = child_reaped(1);
	pthread_mutex_lock(&eng->lock);
	assert_int_equal(eng->nearly, 0);
	stranger = false;
	for (size_t i = 0; i < STRANGERS; i++)
		stranger |= eng->memory->strangers[i].pid == c;
	assert_true(stranger);
	pthread_mutex_unlock(&eng->lock);
}

/* ---- pools and futures -------------------------------------------------- */

static uint64_t pool(const char *name, const char *ctl_lines)
{
	char err[256] = "";
	uint64_t id;
	assert_int_equal(engine_pool_create(eng, name, err, sizeof(err)), 0);
	assert_int_equal(engine_pool_find(eng, name, &id), 0);
	if (ctl_lines && engine_pool_ctl(eng, id, ctl_lines, err, sizeof(err)) < 0)
		fail_msg("pool ctl %s: %s", ctl_lines, err);
	return id;
}

static uint64_t submit(uint64_t p, const char *lines)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	char err[256] = "";
	if (engine_pool_submit(eng, p, NULL, lines, strlen(lines), &ids, &n, err, sizeof(err)) < 0)
		fail_msg("submit: %s", err);
	uint64_t first = ids[0];
	free(ids);
	return first;
}

static struct future_info fwait(uint64_t p, uint64_t f)
{
	struct future_info fi;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(engine_future_info(eng, p, f, &fi), 0);
		if (fi.final)
			return fi;
		sleep_ms(10);
	}
	fail_msg("future %llu did not end", (unsigned long long)f);
	return fi;
}

static void test_completion_order(void **state)
{
	uint64_t p = pool("sq", "workers=4");
	/* the four workers start on the first submit, one by one: a loaded
	 * machine may start them far apart, so the timed futures go only once
	 * all four are ready (four no-ops ended: ids 1-4) */
	assert_int_equal(submit(p, "noop\nnoop\nnoop\nnoop\n"), 1);
	for (uint64_t i = 1; i <= 4; i++)
		assert_int_equal(fwait(p, i).state, FUT_DONE);
	struct pool_info pi;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(engine_pool_info(eng, p, &pi), 0);
		if (pi.ready == 4)
			break;
		sleep_ms(10);
	}
	assert_int_equal(pi.ready, 4);
	uint64_t f = submit(p, "sh sleep 0.3; echo 9\nsh sleep 0.1; echo 1\n"
			       "sh sleep 0.4; echo 16\nsh sleep 0.2; echo 4\n");
	assert_int_equal(f, 5);
	for (uint64_t i = 5; i <= 8; i++) {
		struct future_info fi = fwait(p, i);
		assert_int_equal(fi.state, FUT_DONE);
	}
	uint64_t order[8];
	size_t n;
	bool more;
	assert_int_equal(engine_pool_completed(eng, p, 4, order, 8, &n, &more), 0);
	assert_int_equal(n, 4);
	assert_true(more);   /* not shut down: more may come */
	uint64_t want[] = { 6, 8, 5, 7 };   /* 0.1 s, 0.2 s, 0.3 s, 0.4 s */
	assert_memory_equal(order, want, sizeof(want));
	char out[16];
	uint64_t total;
	assert_int_equal(engine_future_output(eng, p, 7, 1, 0, out, sizeof(out), &total), 3);
	assert_memory_equal(out, "16\n", 3);
}

struct race { uint64_t pool, fut; int rc; };

static void *cancel_thread(void *arg)
{
	struct race *r = arg;
	r->rc = engine_future_cancel(eng, r->pool, r->fut);
	return NULL;
}

static void test_cancel_races(void **state)
{
	uint64_t p = pool("one", "workers=1");
	uint64_t f = submit(p, "sleep time=400ms\nnoop\nnoop\n");
	/* two threads cancel the same pending future: it is cancelled once */
	struct race r[2] = { { p, f + 1, 1 }, { p, f + 1, 1 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, cancel_thread, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r[0].rc, 0);
	assert_int_equal(r[1].rc, 0);
	struct future_info fi = fwait(p, f + 1);
	assert_int_equal(fi.state, FUT_CANCELLED);
	/* a running one cannot be cancelled */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(engine_future_info(eng, p, f, &fi), 0);
		bool running = fi.state == FUT_RUNNING;
		if (running)
			break;
		sleep_ms(10);
	}
	assert_int_equal(engine_future_cancel(eng, p, f), -EBUSY);
	char err[128];
	assert_int_equal(engine_pool_ctl(eng, p, "shutdown", err, sizeof(err)), 0);
	fi = fwait(p, f + 2);
	assert_int_equal(fi.state, FUT_DONE);
	/* every future once in the completion list; closed: no more */
	uint64_t order[8];
	size_t n;
	bool more = true;
	for (int i = 0; i < 200 && more; i++, sleep_ms(10))
		engine_pool_completed(eng, p, 0, order, 8, &n, &more);
	assert_false(more);
	assert_int_equal(n, 3);
	assert_int_equal(order[0], f + 1);   /* cancelled first, while f ran */
	assert_int_equal(engine_pool_submit(eng, p, NULL, "noop", 4, &(uint64_t *){ NULL },
					    &(size_t){ 0 }, err, sizeof(err)), -ESHUTDOWN);
	assert_int_equal(engine_pool_remove(eng, "one"), 0);
}

static void test_resize_and_retries(void **state)
{
	uint64_t p = pool("rs", "workers=1");
	uint64_t f = submit(p, "sleep 4 time=3s\n");   /* long enough for new workers to start */
	char err[128];
	assert_int_equal(engine_pool_ctl(eng, p, "workers=4", err, sizeof(err)), 0);
	/* four at once after the resize, not in a row on the first worker:
	 * each ran on a worker of its own (judged from what the pool
	 * recorded, not the clock, which a loaded machine stretches) */
	unsigned slots = 0;
	for (uint64_t i = f; i < f + 4; i++) {
		struct future_info fi = fwait(p, i);
		assert_int_equal(fi.state, FUT_DONE);
		assert_true(fi.slot >= 1 && fi.slot <= 4);
		slots |= 1u << fi.slot;
	}
	assert_int_equal(slots, 0x1e);
	struct pool_info pi;
	assert_int_equal(engine_pool_info(eng, p, &pi), 0);
	assert_int_equal(pi.workers, 4);
	assert_int_equal(engine_pool_ctl(eng, p, "workers=0", err, sizeof(err)), -EINVAL);

	uint64_t r = submit(p, "sh retries=2 exit 1\n");
	struct future_info fi = fwait(p, r);
	assert_int_equal(fi.state, FUT_FAILED);
	assert_int_equal(fi.attempts, 3);
	assert_int_equal(fi.exitcode, 1);
}

static void test_worker_death_fails_one_future(void **state)
{
	uint64_t p = pool("w", "workers=2");
	uint64_t f = submit(p, "sleep time=2s\nsleep time=300ms\n");
	struct future_info fi;
	uint64_t task = 0;
	for (int i = 0; i < 300 && !task; i++, sleep_ms(10)) {
		assert_int_equal(engine_future_info(eng, p, f, &fi), 0);
		if (fi.state == FUT_RUNNING)
			task = fi.task;
	}
	assert_true(task > 0);
	struct task_info ti;
	assert_int_equal(engine_task_info(eng, task, &ti), 0);
	assert_int_equal(kill(ti.pid, SIGKILL), 0);
	task_info_free(&ti);
	fi = fwait(p, f);
	assert_int_equal(fi.state, FUT_FAILED);
	assert_non_null(strstr(fi.error, "died"));
	fi = fwait(p, f + 1);
	assert_int_equal(fi.state, FUT_DONE);
	uint64_t g = submit(p, "noop\n");   /* a replacement worker took over */
	fi = fwait(p, g);
	assert_int_equal(fi.state, FUT_DONE);
}

/* ---- pipelining: futures handed to a slot ahead ------------------------------ */

static uint64_t pool2(const char *name, const char *type, const char *workers)
{
	char err[256] = "";
	uint64_t p = pool(name, type);
	if (engine_pool_ctl(eng, p, workers, err, sizeof(err)) < 0)
		fail_msg("pool ctl %s: %s", workers, err);
	return p;
}

static struct pool_info pinfo(uint64_t p);

/* A pool that has run quick futures hands its slots several ahead.  Waits
 * for every worker to be ready too (one slow to start would be handed
 * nothing, and the tests below say which slot gets what). */
static void warm_up(uint64_t p)
{
	uint64_t f = submit(p, "noop\nnoop\nnoop\nnoop\nnoop\nnoop\nnoop\nnoop\n");
	for (uint64_t i = f; i < f + 8; i++) {
		struct future_info fi = fwait(p, i);
		assert_int_equal(fi.state, FUT_DONE);
	}
	struct pool_info pi = pinfo(p);
	for (int i = 0; i < 500 && pi.ready < pi.workers; i++, sleep_ms(10))
		pi = pinfo(p);
	assert_int_equal(pi.ready, pi.workers);
}

static enum future_state fstate(uint64_t p, uint64_t f)
{
	struct future_info fi;
	assert_int_equal(engine_future_info(eng, p, f, &fi), 0);
	enum future_state st = fi.state;
	return st;
}

static void wait_state(uint64_t p, uint64_t f, enum future_state want)
{
	for (int i = 0; i < 500 && fstate(p, f) != want; i++)
		sleep_ms(10);
	assert_int_equal(fstate(p, f), want);
}

static struct pool_info pinfo(uint64_t p)
{
	struct pool_info pi;
	assert_int_equal(engine_pool_info(eng, p, &pi), 0);
	return pi;
}

static void expect_done(uint64_t p, uint64_t f, unsigned slot)
{
	struct future_info fi = fwait(p, f);
	assert_int_equal(fi.state, FUT_DONE);
	assert_int_equal(fi.attempts, 1);
	if (slot)
		assert_int_equal(fi.slot, slot);
}

/* Handed ahead is still pending (not running, no slot, no attempt); a
 * cancel takes it back from the worker; the rest run once, after the
 * running one; a timeout counts from the start, not from the handing. */
static void test_pipelined_pending_and_cancel(void **state)
{
	uint64_t p = pool2("pipe", "type=thread", "workers=1");
	warm_up(p);
	uint64_t f = submit(p, "sleep time=700ms\nnoop\nnoop\nsleep time=100ms timeout=400ms\n");
	wait_state(p, f, FUT_RUNNING);
	struct pool_info pi = pinfo(p);
	assert_int_equal(pi.prefetched, 3);   /* on the worker's queue */
	assert_int_equal(pi.queued, 3);
	assert_int_equal(pi.running, 1);
	assert_int_equal(pi.busy, 1);
	struct future_info fi;
	assert_int_equal(engine_future_info(eng, p, f + 1, &fi), 0);
	assert_int_equal(fi.state, FUT_PENDING);
	assert_int_equal(fi.slot, 0);
	assert_int_equal(fi.attempts, 0);

	assert_int_equal(engine_future_cancel(eng, p, f + 1), 0);
	assert_int_equal(fstate(p, f + 1), FUT_CANCELLED);
	/* two at once on one handed future: both see it cancelled */
	struct race r[2] = { { p, f + 2, 1 }, { p, f + 2, 1 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, cancel_thread, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r[0].rc, 0);
	assert_int_equal(r[1].rc, 0);
	assert_int_equal(pinfo(p).prefetched, 1);
	assert_int_equal(engine_future_cancel(eng, p, f), -EBUSY);

	expect_done(p, f, 1);
	fi = fwait(p, f + 3);   /* waited 0.7 s at the worker, ran 0.1 s: no timeout */
	assert_int_equal(fi.state, FUT_DONE);
	assert_true(fi.queued_for >= 0.5);
	assert_true(fi.runtime < 0.4);
	uint64_t order[16];
	size_t n;
	bool more;
	assert_int_equal(engine_pool_completed(eng, p, 8, order, 16, &n, &more), 0);
	uint64_t want[] = { f + 1, f + 2, f, f + 3 };
	assert_int_equal(n, 4);
	assert_memory_equal(order, want, sizeof(want));
}

/* A worker that dies fails only its running future: those handed to it
 * ahead go back to the queue and run, once, on its replacement. */
static void test_pipelined_worker_death(void **state)
{
	uint64_t p = pool2("death", "type=process", "workers=1");
	warm_up(p);
	uint64_t f = submit(p, "sleep time=5s\nnoop\nnoop\n");
	wait_state(p, f, FUT_RUNNING);
	assert_int_equal(pinfo(p).prefetched, 2);
	struct future_info fi;
	assert_int_equal(engine_future_info(eng, p, f, &fi), 0);
	struct task_info ti;
	assert_int_equal(engine_task_info(eng, fi.task, &ti), 0);
	assert_int_equal(kill(ti.pid, SIGKILL), 0);
	task_info_free(&ti);
	fi = fwait(p, f);
	assert_int_equal(fi.state, FUT_FAILED);
	assert_non_null(strstr(fi.error, "died"));
	expect_done(p, f + 1, 1);
	expect_done(p, f + 2, 1);
}

/* Shrinking takes back what the retired slots were handed: it runs on the
 * slot that is left (PCFS_SLOT says so), each once. */
static void test_pipelined_shrink(void **state)
{
	static const char *const types[] = { "type=thread", "type=process" };
	for (int k = 0; k < 2; k++) {
		char name[16], err[128];
		snprintf(name, sizeof(name), "shrink%d", k);
		uint64_t p = pool2(name, types[k], "workers=2");
		warm_up(p);
		/* one at a time to each slot: 1 [f, f+2, f+4], 2 [f+1, f+3, f+5] */
		uint64_t f = submit(p, "sleep time=500ms\nsleep time=500ms\nsh echo $PCFS_SLOT\n"
				       "sh echo $PCFS_SLOT\nsh echo $PCFS_SLOT\nsh echo $PCFS_SLOT\n");
		wait_state(p, f, FUT_RUNNING);
		wait_state(p, f + 1, FUT_RUNNING);
		assert_int_equal(pinfo(p).prefetched, 4);
		assert_int_equal(engine_pool_ctl(eng, p, "workers=1", err, sizeof(err)), 0);
		for (uint64_t i = f; i < f + 6; i++)
			expect_done(p, i, i == f + 1 ? 2 : 1);
		for (uint64_t i = f + 2; i < f + 6; i++) {
			char out[8];
			uint64_t total;
			assert_int_equal(engine_future_output(eng, p, i, 1, 0, out, sizeof(out), &total), 2);
			assert_memory_equal(out, "1\n", 2);
		}
		struct pool_info pi = pinfo(p);
		assert_int_equal(pi.workers, 1);
		assert_int_equal(pi.prefetched, 0);
	}
}

/* A slot left idle takes over what waits behind another slot's future
 * once that has run longer than [pools] ahead, instead of waiting for it. */
static void test_pipelined_rebalance(void **state)
{
	uint64_t p = pool2("bal", "type=thread", "workers=2");
	warm_up(p);
	/* one at a time to each slot: 1 [f, f+2], 2 [f+1, f+3] */
	uint64_t f = submit(p, "sleep time=3s\nnoop\nnoop\nnoop\n");
	struct future_info fi = fwait(p, f + 2);
	assert_int_equal(fi.state, FUT_DONE);
	assert_int_equal(fi.slot, 2);       /* not behind the sleep on slot 1 */
	assert_true(fi.queued_for < 1.5);
	assert_int_equal(fstate(p, f), FUT_RUNNING);
	expect_done(p, f, 1);
}

/* The same when the long future's start is told only after the other slot
 * has gone idle (its worker stopped until then): the start looks again. */
static void test_pipelined_rebalance_late_start(void **state)
{
	uint64_t p = pool2("late", "type=process", "workers=2");
	warm_up(p);
	uint64_t task;
	struct task_info ti;
	assert_int_equal(engine_pool_worker(eng, p, 1, &task), 0);
	assert_int_equal(engine_task_info(eng, task, &ti), 0);
	pid_t w1 = ti.pid;
	task_info_free(&ti);
	assert_int_equal(kill(w1, SIGSTOP), 0);
	/* one at a time to each slot: 1 [f, f+2], 2 [f+1, f+3] */
	uint64_t f = submit(p, "sleep time=3s\nnoop\nnoop\nnoop\n");
	expect_done(p, f + 1, 2);
	expect_done(p, f + 3, 2);   /* slot 2 is idle; slot 1 has started nothing */
	assert_int_equal(kill(w1, SIGCONT), 0);
	struct future_info fi = fwait(p, f + 2);
	assert_int_equal(fi.state, FUT_DONE);
	assert_int_equal(fi.slot, 2);       /* not behind the sleep on slot 1 */
	assert_int_equal(fstate(p, f), FUT_RUNNING);
	expect_done(p, f, 1);
}

/* pause takes back what the slots were handed: nothing more starts. */
static void test_pipelined_pause(void **state)
{
	uint64_t p = pool2("pause", "type=thread", "workers=1");
	warm_up(p);
	char err[128];
	uint64_t f = submit(p, "sleep time=300ms\nnoop\nnoop\n");
	wait_state(p, f, FUT_RUNNING);
	assert_int_equal(engine_pool_ctl(eng, p, "pause", err, sizeof(err)), 0);
	expect_done(p, f, 1);
	sleep_ms(100);
	assert_int_equal(fstate(p, f + 1), FUT_PENDING);
	struct pool_info pi = pinfo(p);
	assert_int_equal(pi.prefetched, 0);
	assert_int_equal(pi.queued, 2);
	assert_int_equal(engine_pool_ctl(eng, p, "resume", err, sizeof(err)), 0);
	expect_done(p, f + 1, 1);
	expect_done(p, f + 2, 1);
}

/* strdup stands in for libc's here, in the engine too (a static library):
 * it counts the copies made of one watched string. */
static const char *dup_watch;
static int dup_count;

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	const char *w = __atomic_load_n(&dup_watch, __ATOMIC_SEQ_CST);
	if (w && !strcmp(s, w))
		__atomic_add_fetch(&dup_count, 1, __ATOMIC_SEQ_CST);
	return p;
}

/* Every read of a future's file asks for its info: that copies nothing of
 * its line (it was strdup'd each time, to learn the state); status gets the
 * line on its own. */
static void test_future_info_copies_nothing(void **state)
{
	static const char line[] = "sh echo state-read-4711";
	uint64_t p = pool("fi", "workers=1");
	uint64_t f = submit(p, line);
	struct future_info fi = fwait(p, f);
	assert_int_equal(fi.state, FUT_DONE);
	__atomic_store_n(&dup_watch, line, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 100; i++)
		assert_int_equal(engine_future_info(eng, p, f, &fi), 0);
	__atomic_store_n(&dup_watch, NULL, __ATOMIC_SEQ_CST);
	assert_int_equal(dup_count, 0);
	struct strbuf cmd = STRBUF_INIT;
	assert_int_equal(engine_future_cmd(eng, p, f, &cmd), 0);
	assert_string_equal(sb_cstr(&cmd), line);
	sb_free(&cmd);
	assert_int_equal(engine_future_cmd(eng, p, f + 1, &cmd), -ENOENT);
	sb_free(&cmd);
}

/* ---- channels ------------------------------------------------------------ */

static struct chan_info chan_info(uint64_t id)
{
	struct chan_info ci;
	assert_int_equal(engine_chan_info(eng, id, &ci), 0);
	return ci;
}

/* channels/NAME/ctl: close, capacity=N or mode=M, a malformed line refused
 * whole with the reason, before the channel is looked at. */
static void test_channel_ctl_lines(void **state)
{
	static const struct { const char *line, *why; } bad[] = {
		{ "open", "unknown command 'open' (close, capacity=N, mode=lines|message)" },
		{ "", "empty command (close, capacity=N, mode=lines|message)" },
		{ "close now", "'close' takes no arguments" },
		{ "capacity=x", "capacity=x: want 1..1000000 messages" },
		{ "capacity=0", "capacity=0: want 1..1000000 messages" },
		{ "capacity=1000001", "want 1..1000000 messages" },
		{ "capacity=", "'capacity=' needs a value" },
		{ "capacity=3 capacity=4", "'capacity=' given twice" },
		{ "capacity=3 close", "'close' goes on a line of its own" },
		{ "maxmsg=4k", "unknown setting 'maxmsg=' (close, capacity=N, mode=" },
		{ "mode=binary", "mode=binary: want lines or message" },
		{ "capacity=5 mode=text", "mode=text: want lines or message" },
		{ "capacity 3", "unknown command 'capacity'" },
	};
	struct chan_spec spec = { .type = CHAN_QUEUE, .name = "q" };
	char err[256];
	uint64_t id;

	assert_int_equal(engine_chan_create(eng, &spec, &id, err, sizeof(err)), 0);
	assert_int_equal(engine_chan_ctl(eng, id, "capacity=7", err, sizeof(err)), 0);
	assert_int_equal(chan_info(id).capacity, 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(engine_chan_ctl(eng, id, bad[i].line, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("'%s': '%s', not '%s'", bad[i].line, err, bad[i].why);
	}
	assert_int_equal(engine_chan_ctl(eng, id + 1000, "open", err, sizeof(err)), -EINVAL);
	assert_int_equal(engine_chan_ctl(eng, id + 1000, "close", err, sizeof(err)), -ENOENT);
	assert_int_equal(chan_info(id).capacity, 7);   /* nothing refused was applied */
	assert_false(chan_info(id).closed);
	assert_int_equal(engine_chan_ctl(eng, id, "'close'", err, sizeof(err)), 0);
	assert_true(chan_info(id).closed);
}

static const char *take_str(uint64_t id, size_t room, char *buf, size_t size)
{
	struct chan_msg *m = NULL;
	assert_int_equal(engine_chan_take(eng, id, CHAN_END_GET, room, &m), 1);
	size_t n = 0;
	for (struct chan_msg *x = m; x; x = x->next) {
		assert_true(n + x->len < size);
		memcpy(buf + n, x->data, x->len);
		n += x->len;
	}
	buf[n] = '\0';
	chan_msg_free_all(m);
	return buf;
}

/* Lines mode, the default: a write is its lines, a take as many whole ones
 * as fit; mode= switches while empty only, all of a line's settings or none. */
static void test_channel_lines_mode(void **state)
{
	struct chan_spec spec = { .type = CHAN_QUEUE, .name = "lines", .capacity = 4 };
	char err[256], got[64];
	uint64_t id;

	assert_int_equal(engine_chan_create(eng, &spec, &id, err, sizeof(err)), 0);
	assert_int_equal(chan_info(id).mode, CHAN_MODE_LINES);
	assert_int_equal(engine_chan_write(eng, id, CHAN_END_PUT, NULL, 0, "a\nbb\nc", 7), 5);
	assert_int_equal(chan_info(id).q[0].depth, 2);
	/* "c" was the writer's unfinished line: its next write ends it */
	assert_int_equal(engine_chan_write(eng, id, CHAN_END_PUT, "c", 1, "d\ne\n", 4), 4);
	assert_int_equal(engine_chan_write(eng, id, CHAN_END_PUT, NULL, 0, "f\n", 2), -EAGAIN);
	assert_true(engine_chan_write_waits(eng, id, CHAN_END_PUT, 0, "f\n", 2));
	assert_false(engine_chan_write_waits(eng, id, CHAN_END_PUT, 0, "no newline", 10));
	/* more lines than the capacity could go in parts, but there is no room */
	assert_int_equal(engine_chan_write(eng, id, CHAN_END_PUT, NULL, 0, "1\n2\n3\n4\n5\n",
					   10), -EAGAIN);
	assert_string_equal(take_str(id, 5, got, sizeof(got)), "a\nbb\n");
	assert_string_equal(take_str(id, 1, got, sizeof(got)), "cd\n");   /* alone, too long */
	assert_int_equal(engine_chan_ctl(eng, id, "capacity=9 mode=message", err, sizeof(err)),
			 -EBUSY);
	assert_non_null(strstr(err, "only while it is empty"));
	assert_int_equal(chan_info(id).capacity, 4);   /* nothing of the line was applied */
	assert_string_equal(take_str(id, 100, got, sizeof(got)), "e\n");
	assert_int_equal(engine_chan_ctl(eng, id, "capacity=9 mode=message", err, sizeof(err)), 0);
	assert_int_equal(chan_info(id).mode, CHAN_MODE_MESSAGE);
	assert_int_equal(engine_chan_write(eng, id, CHAN_END_PUT, NULL, 0, "x\ny\n", 4), 4);
	assert_int_equal(engine_chan_write(eng, id, CHAN_END_PUT, NULL, 0, "z\n", 2), 2);
	assert_string_equal(take_str(id, 100, got, sizeof(got)), "x\ny\n");   /* one message */
	assert_int_equal(engine_chan_remove(eng, id), -ENOTEMPTY);
	assert_string_equal(take_str(id, 100, got, sizeof(got)), "z\n");
	assert_int_equal(engine_chan_remove(eng, id), 0);
}

static void test_pool_names_and_lines(void **state)
{
	char err[256];
	assert_int_equal(engine_pool_create(eng, "a b", err, sizeof(err)), -EINVAL);
	assert_int_equal(engine_pool_create(eng, "..", err, sizeof(err)), -EINVAL);
	uint64_t p = pool("names", NULL);
	assert_int_equal(engine_pool_create(eng, "names", err, sizeof(err)), -EEXIST);
	uint64_t *ids = NULL;
	size_t n = 0;
	assert_int_equal(engine_pool_submit(eng, p, NULL, "noop as=thread", 14, &ids, &n, err,
					    sizeof(err)), -EINVAL);
	assert_int_equal(engine_pool_submit(eng, p, NULL, "noop\nbogus", 10, &ids, &n, err,
					    sizeof(err)), -EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(engine_future_count(eng, p), 0);
	free(ids);
}

/* ---- [state] dir --------------------------------------------------------- */

static char state_dir[64];

static int setup_state(void **state)
{
	config_defaults(&cfg);
	cfg.log_level = LOG_LVL_ERROR;
	cfg.kill_grace_ms = 300;
	/* what a killed daemon leaves: running tasks were never ended */
	cfg.unmount_policy = UNMOUNT_LEAVE;
	strcpy(state_dir, "/tmp/pcfs-test-state.XXXXXX");
	assert_non_null(mkdtemp(state_dir));
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s/st", state_dir);
	/* the daemon resolves the dir in use before the engine starts */
	char err[256];
	assert_int_equal(state_check(&cfg, "/unused", err, sizeof(err)), 0);
	assert_string_equal(cfg.state_path, cfg.state_dir);
	eng = start();
	return 0;
}

static int teardown_state(void **state)
{
	teardown(state);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void restart(void)
{
	engine_shutdown(eng);
	engine_free(eng);
	eng = start();
}

static void expect_output(uint64_t id, int stream, const char *want)
{
	char buf[256];
	uint64_t total;
	ssize_t n = engine_task_output(eng, id, stream, 0, buf, sizeof(buf), &total);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_state_survives_restart(void **state)
{
	uint64_t done = spawn("sh echo out; echo err >&2; exit 3 name=kept");
	expect_end(done, TS_EXITED, 3);
	uint64_t forgotten = spawn("exec /bin/true");
	expect_end(forgotten, TS_EXITED, 0);
	assert_int_equal(engine_task_forget(eng, forgotten), 0);
	uint64_t running = spawn("exec /bin/sleep 30");
	struct task_info ti;
	assert_int_equal(engine_task_info(eng, running, &ti), 0);
	pid_t left = ti.pid;
	task_info_free(&ti);
	uint64_t p = pool("sp", "workers=1");
	submit(p, "sh echo f1");
	struct future_info fi = fwait(p, 1);

	restart();

	assert_int_equal(engine_task_info(eng, done, &ti), 0);
	assert_int_equal(ti.state, TS_EXITED);
	assert_int_equal(ti.exitcode, 3);
	assert_string_equal(ti.cmd, "sh echo out; echo err >&2; exit 3 name=kept");
	task_info_free(&ti);
	expect_output(done, 1, "out\n");
	expect_output(done, 2, "err\n");
	assert_false(engine_task_exists(eng, forgotten));
	assert_int_equal(engine_task_info(eng, running, &ti), 0);
	assert_int_equal(ti.state, TS_LOST);
	assert_true(ti.ended);
	assert_non_null(strstr(ti.error, "lost"));
	task_info_free(&ti);
	/* new ids go on after the old ones */
	assert_true(spawn("exec /bin/true") > running);

	uint64_t p2;
	assert_int_equal(engine_pool_find(eng, "sp", &p2), 0);
	fi = fwait(p2, 1);
	assert_int_equal(fi.state, FUT_DONE);
	char out[16];
	uint64_t total;
	assert_int_equal(engine_future_output(eng, p2, 1, 1, 0, out, sizeof(out), &total), 3);
	assert_memory_equal(out, "f1\n", 3);
	assert_int_equal(submit(p2, "noop"), 2);   /* the pool goes on numbering */
	kill(left, SIGKILL);
}

/* A daemon killed in the middle of a journal write leaves a torn last line:
 * the record is skipped, the task it would have ended is lost, not garbage. */
static void test_state_torn_journal(void **state)
{
	engine_shutdown(eng);
	engine_free(eng);
	char path[128];
	snprintf(path, sizeof(path), "%s/st/journal", state_dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	/* torn on a field boundary: it would parse, as "exited, code 1" */
	fputs("T id=5 kind=process method=spawn workload=exec start=1.000000000 cmd=exec%20x\n"
	      "E id=5 state=exited code=1", f);
	fclose(f);
	eng = start();
	struct task_info ti;
	assert_int_equal(engine_task_info(eng, 5, &ti), 0);
	assert_int_equal(ti.state, TS_LOST);
	assert_string_equal(ti.cmd, "exec x");
	task_info_free(&ti);
}

int main(void)
{
	/* Every task runs in a child of ours: keep our own SIGCHLD, SIGPIPE sane. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_ctl_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waitset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waitset_forgotten, setup_no_history, teardown),
		cmocka_unit_test_setup_teardown(test_status_cpu_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_brief_copies_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_follows_live_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_write_starts_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_to_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_a_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_escalates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_captured_separately, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_history_host_death, setup_no_history, teardown),
		cmocka_unit_test_setup_teardown(test_completion_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_races, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize_and_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_death_fails_one_future, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_pending_and_cancel, setup_far_ahead, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_worker_death, setup_far_ahead, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_shrink, setup_far_ahead, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_rebalance, setup_near_ahead, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_rebalance_late_start, setup_near_ahead,
						teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_pause, setup_far_ahead, teardown),
		cmocka_unit_test_setup_teardown(test_channel_ctl_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_lines_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_names_and_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_future_info_copies_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_survives_restart, setup_state,
						teardown_state),
		cmocka_unit_test_setup_teardown(test_state_torn_journal, setup_state,
						teardown_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
