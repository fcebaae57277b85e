/* rows_pool.c - /pools: executors and their futures as files.
 *
 *   /pools/NAME/  ctl submit map as_completed completed events[.json] joblog status[.json]
 *                 progress[.json] futures/ID/ workers/N -> ../../../procs/TASK
 *
 * map and as_completed are per descriptor, like a Python iterator: lines
 * written to it are submitted, and reading gives their results, in submission
 * order (map) or completion order (as_completed), then EOF.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

/* ---- /pools ----------------------------------------------------------------- */

static int pools_list(struct fs *fs, uint64_t obj, struct dirlist *out)
{
	uint64_t *ids;
	char (*names)[POOL_NAME_MAX + 1];
	size_t n;
	int rc = engine_pool_list(fs->eng, &ids, &names, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = dirlist_add(out, names[i], ino_make(N_POOL, ids[i], 0), S_IFDIR);
	if (rc == 0 || n) {
		free(ids);
		free(names);
	}
	return rc;
}

static int pools_lookup(struct fs *fs, uint64_t obj, const char *name, uint64_t *child)
{
	return engine_pool_find(fs->eng, name, child);
}

static int pools_mkdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c,
		       uint64_t *child)
{
	char err[256] = "";
	struct cred who;
	caller_cred(fs, c, &who);
	int rc = engine_pool_create_as(fs->eng, name, &who, err, sizeof(err));
	if (rc < 0 && err[0])
		engine_log(fs->eng, "mkdir pools/%.64s: %s", name, err);
	return rc < 0 ? rc : engine_pool_find(fs->eng, name, child);
}

static int pools_rmdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c)
{
	return engine_pool_remove(fs->eng, name);
}

/* Writable by all, sticky (like /tmp): anyone let in makes pools, and
 * removes their own. */
const struct dirdesc dir_pools = {
	.mode = 01777,
	.child = N_POOL,
	.list = pools_list,
	.lookup = pools_lookup,
	.mkdir = pools_mkdir,
	.rmdir = pools_rmdir,
};

/* ---- /pools/NAME -------------------------------------------------------------- */

static bool pool_exists(struct fs *fs, uint64_t id)
{
	struct pool_info pi;
	return engine_pool_info(fs->eng, id, &pi) == 0;
}

/* ctl: one command per line; reading shows the settings. */
static int pool_cmd(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen)
{
	return engine_pool_ctl(fs->eng, obj, cmd, err, errlen);
}

static int store_pool_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			  const struct caller *c, char *err, size_t errlen)
{
	return run_commands(fs, h->obj, buf, len, NULL, pool_cmd, err, errlen);
}

static int show_pool_ctl(struct fs *fs, uint64_t id, struct strbuf *out)
{
	struct pool_info pi;
	int rc = engine_pool_info(fs->eng, id, &pi);
	if (rc < 0)
		return rc;
	char slurm[256] = " executor=slurm";
	if (pi.slurm)   /* a local pool's line stays as it was: no executor= means local */
		slurm_opts_format(&pi.slurm_opts, slurm, sizeof(slurm));
	sb_printf(out, "workers=%u type=%s gil=%d%s%s", pi.workers,
		  pi.type == TASK_THREAD ? "thread" : "process", pi.gil, pi.paused ? " paused" : "",
		  pi.slurm ? slurm : "");
	if (pi.halt[0])
		sb_printf(out, " halt=%s", pi.halt);
	if (pi.limits[0])
		sb_printf(out, " %s", pi.limits);
	if (pi.tmpl[0]) {   /* quoted as it can be written back */
		sb_adds(out, " template=");
		tmpl_quote_word(pi.tmpl, out);
	}
	if (pi.on_end[0]) {
		sb_adds(out, " on_end=");
		tmpl_quote_word(pi.on_end, out);
	}
	sb_addc(out, '\n');
	return sb_error(out);
}

/* Submit lines; remember the ids on this descriptor. */
static int submit_ids(struct fs *fs, struct handle *h, const char *buf, size_t len,
		      char *err, size_t errlen, bool echo)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc = engine_pool_submit(fs->eng, h->obj, h->origin, buf, len, &ids, &n, err, errlen);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (echo)
			sb_printf(&h->buf, "%" PRIu64 "\n", ids[i]);
		else
			rc = handle_add_id(h, ids[i]);
	}
	free(ids);
	return rc;
}

static int store_submit(struct fs *fs, struct handle *h, const char *buf, size_t len,
			const struct caller *c, char *err, size_t errlen)
{
	return submit_ids(fs, h, buf, len, err, errlen, true);
}

static int store_iter(struct fs *fs, struct handle *h, const char *buf, size_t len,
		      const struct caller *c, char *err, size_t errlen)
{
	return submit_ids(fs, h, buf, len, err, errlen, false);
}

/* Append a future's captured stdout to out. */
static int append_result(struct fs *fs, uint64_t pool, uint64_t fid, struct strbuf *out)
{
	char chunk[65536];
	uint64_t off = 0, total = 0;
	for (;;) {
		ssize_t n = engine_future_output(fs->eng, pool, fid, 1, off, chunk, sizeof(chunk),
						 &total);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return sb_error(out);
		sb_add(out, chunk, (size_t)n);
		off += (uint64_t)n;
	}
}

/* map: results in submission order, each waiting its turn.  A future that
 * failed makes that read fail with EIO (as map() raises there); reading on
 * continues with the next one. */
static int fill_map(struct fs *fs, struct handle *h)
{
	while (h->cursor < h->nids) {
		struct future_info fi;
		int rc = engine_future_info(fs->eng, h->obj, h->ids[h->cursor], &fi);
		if (rc < 0)
			return rc;
		if (!fi.final)
			return h->rpos < h->buf.len ? 1 : 0;
		if (fi.state != FUT_DONE) {
			if (h->rpos < h->buf.len)
				return 1;   /* hand out what precedes it first */
			h->cursor++;
			return fi.state == FUT_FAILED ? -EIO : -ECANCELED;
		}
		rc = append_result(fs, h->obj, h->ids[h->cursor], &h->buf);
		if (rc < 0)
			return rc;
		h->cursor++;
	}
	return 1;   /* everything handed out: EOF once read */
}

/* as_completed marks the ids it has told in their top bit (ids are below
 * 2^32): a future that runs again (retry) and ends again is not told twice. */
#define TOLD (UINT64_C(1) << 63)

/* Where id is among the descriptor's ids (appended in increasing order), or NULL. */
static uint64_t *find_id(struct handle *h, uint64_t id)
{
	size_t lo = 0, hi = h->nids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t v = h->ids[mid] & ~TOLD;
		if (v == id)
			return &h->ids[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* One `ID RESULT` line: the result on one line, or why there is none. */
static int append_completed_line(struct fs *fs, uint64_t pool, uint64_t fid, struct strbuf *out)
{
	struct future_info fi;
	int rc = engine_future_info(fs->eng, pool, fid, &fi);
	if (rc < 0)
		return rc;
	sb_printf(out, "%" PRIu64 " ", fid);
	if (fi.state == FUT_DONE) {
		struct strbuf r = STRBUF_INIT;
		rc = append_result(fs, pool, fid, &r);
		size_t n = r.len;
		while (n && r.buf[n - 1] == '\n')
			n--;
		for (size_t i = 0; i < n; i++)
			sb_addc(out, r.buf[i] == '\n' ? ' ' : r.buf[i]);
		sb_free(&r);
	} else {
		sb_printf(out, "%s: %s", future_state_name(fi.state), fi.error);
	}
	sb_addc(out, '\n');
	return rc;
}

/* as_completed: this descriptor's futures in the order they finish. */
static int fill_as_completed(struct fs *fs, struct handle *h)
{
	uint64_t batch[256];
	size_t n;
	bool more;
	do {
		int rc = engine_pool_completed(fs->eng, h->obj, h->cursor, batch, 256, &n, &more);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++) {
			h->cursor++;
			/* 0: a future that ran again (retry) since */
			uint64_t *mine = batch[i] ? find_id(h, batch[i]) : NULL;
			if (!mine || (*mine & TOLD))
				continue;
			rc = append_completed_line(fs, h->obj, batch[i], &h->buf);
			if (rc < 0)
				return rc;
			*mine |= TOLD;
			h->delivered++;
		}
	} while (n == 256);
	if (h->rpos < h->buf.len || h->delivered == h->nids)
		return 1;
	return 0;
}

/* completed: every future id of the pool in completion order; at the end it
 * waits for the next, like `tail -f`; EOF once the pool is closed. */
static int fill_completed(struct fs *fs, struct handle *h)
{
	uint64_t batch[256];
	size_t n;
	bool more;
	int rc = engine_pool_completed(fs->eng, h->obj, h->cursor, batch, 256, &n, &more);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (batch[i])   /* 0: it ran again (retry); it comes again at its new end */
			sb_printf(&h->buf, "%" PRIu64 "\n", batch[i]);
	h->cursor += n;
	if (h->rpos < h->buf.len || !more)
		return 1;
	return 0;
}

/* events: the pool's futures' starts and ends (its workers' are in
 * /events); EOF once the pool is closed and all of them are read. */
static int fill_pool_events_as(struct fs *fs, struct handle *h, bool json)
{
	struct pool_info pi;
	if (engine_pool_info(fs->eng, h->obj, &pi) < 0)
		return 1;   /* removed: nothing more will come */
	int rc = fill_events_of(fs, h, h->obj, json);
	return rc == 0 && pi.state == POOL_CLOSED ? 1 : rc;
}

static int fill_pool_events(struct fs *fs, struct handle *h)
{
	return fill_pool_events_as(fs, h, false);
}

static int fill_pool_events_json(struct fs *fs, struct handle *h)
{
	return fill_pool_events_as(fs, h, true);
}

/* joblog: its futures that ran, as GNU parallel's --joblog (Seq = {#}). */
static int show_pool_joblog(struct fs *fs, uint64_t id, struct strbuf *out)
{
	return engine_joblog(fs->eng, id, out);
}

/* A cgroup's figures, null where there is none or the host does not count them. */
static void emit_cg_figures(struct emit *e, const struct cg_figures *cg)
{
	emit_str(e, "cgroup", cg->name[0] ? cg->name : NULL);
	if (cg->name[0] && cg->procs >= 0)
		emit_int(e, "cgroup_procs", cg->procs);
	else
		emit_null(e, "cgroup_procs");
	if (cg->name[0] && cg->cpu_us >= 0)
		emit_fixed(e, "cgroup_cpu", (double)cg->cpu_us / 1e6, 3);
	else
		emit_null(e, "cgroup_cpu");
	if (cg->name[0] && cg->mem_peak >= 0)
		emit_int(e, "cgroup_mem_peak_kib", cg->mem_peak / 1024);
	else
		emit_null(e, "cgroup_mem_peak_kib");
}

static int kv_pool_status(struct fs *fs, uint64_t id, struct emit *e)
{
	struct pool_info pi;
	int rc = engine_pool_info(fs->eng, id, &pi);
	if (rc < 0)
		return rc;
	emit_str(e, "name", pi.name);
	emit_str(e, "type", pi.type == TASK_THREAD ? "thread" : "process");
	emit_uint(e, "workers", pi.workers);
	emit_uint(e, "ready", pi.ready);
	emit_uint(e, "busy", pi.busy);
	emit_uint(e, "submitted", pi.submitted);
	emit_uint(e, "queued", pi.queued);
	emit_uint(e, "prefetched", pi.prefetched);
	emit_uint(e, "running", pi.running);
	emit_uint(e, "done", pi.done);
	emit_uint(e, "failed", pi.failed);
	emit_uint(e, "cancelled", pi.cancelled);
	emit_uint(e, "waiting", pi.waiting);
	emit_uint(e, "skipped", pi.skipped);
	emit_str(e, "state", pi.halted && pi.state == POOL_RUNNING ? "halted"
							       : pool_state_name(pi.state));
	emit_str(e, "halt", pi.halt[0] ? pi.halt : NULL);
	emit_str(e, "halted", pi.halted ? pi.halt_why : NULL);
	struct strbuf run = STRBUF_INIT;
	rc = engine_pool_running(fs->eng, id, &run);
	emit_str(e, "running_futures", rc == 0 ? sb_cstr(&run) : NULL);
	sb_free(&run);
	emit_bool(e, "paused", pi.paused);
	emit_bool(e, "gil", pi.gil);
	emit_str(e, "executor", pi.slurm ? "slurm" : "local");
	emit_str(e, "template", pi.tmpl[0] ? pi.tmpl : NULL);
	emit_str(e, "limits", pi.limits[0] ? pi.limits : NULL);
	emit_cg_figures(e, &pi.cg);
	emit_owner(fs, e, &pi.owner);
	return 0;
}

/* progress: done/total, rate and ETA, as GNU parallel's --eta gives them. */
static int kv_progress(struct fs *fs, uint64_t id, struct emit *e)
{
	struct pool_info pi;
	int rc = engine_pool_info(fs->eng, id, &pi);
	if (rc < 0)
		return rc;
	uint64_t ended = pi.done + pi.failed + pi.cancelled + pi.skipped;
	emit_uint(e, "done", ended);
	emit_uint(e, "total", pi.submitted);
	emit_fixed(e, "percent", pi.submitted ? 100.0 * (double)ended / (double)pi.submitted : 0, 1);
	emit_fixed(e, "rate", pi.rate, 2);
	emit_fixed(e, "elapsed", pi.elapsed, 1);
	uint64_t left = pi.submitted - ended;
	if (!left)
		emit_fixed(e, "eta", 0, 1);
	else if (pi.rate > 0)
		emit_fixed(e, "eta", (double)left / pi.rate, 1);
	else
		emit_null(e, "eta");
	return 0;
}

static const struct row pool_rows[] = {
	CTLSHOW("ctl", 0600, store_pool_ctl, show_pool_ctl),
	CTL_HERE("submit", 0600, store_submit),
	PULL_HERE("map", 0600, store_iter, fill_map, OBJ_POOL),
	PULL_HERE("as_completed", 0600, store_iter, fill_as_completed, OBJ_POOL),
	PULL("completed", 0444, NULL, fill_completed, OBJ_POOL),
	PULL("events", 0444, NULL, fill_pool_events, OBJ_EVENTS),
	PULL("events.json", 0444, NULL, fill_pool_events_json, OBJ_EVENTS),
	TEXT("joblog", 0444, show_pool_joblog),
	KV("status", 0444, kv_pool_status),
	KV("progress", 0444, kv_progress),
	DIR_ROW("futures", N_FUTURES),
	DIR_ROW("workers", N_WORKERS),
};

const struct dirdesc dir_pool = {
	.rows = pool_rows,
	.nrows = sizeof(pool_rows) / sizeof(pool_rows[0]),
	.mode = 0555,
	.exists = pool_exists,
	.owned_by = OBJ_POOL,
};

/* ---- /pools/NAME/futures -------------------------------------------------------- */

static int parse_num(const char *name, uint64_t max, uint64_t *v)
{
	if (name[0] == '0' || parse_uint(name, max, v) < 0)
		return -ENOENT;
	return 0;
}

static int futures_list(struct fs *fs, uint64_t pool, struct dirlist *out)
{
	uint64_t n = engine_future_count(fs->eng, pool);
	char name[24];
	int rc = 0;
	for (uint64_t i = 1; rc == 0 && i <= n; i++) {
		snprintf(name, sizeof(name), "%" PRIu64, i);
		rc = dirlist_add(out, name, ino_make(N_FUTURE, FUTURE_KEY(pool, i), 0), S_IFDIR);
	}
	return rc;
}

static int futures_lookup(struct fs *fs, uint64_t pool, const char *name, uint64_t *child)
{
	uint64_t v;
	if (parse_num(name, UINT32_MAX, &v) < 0 || !engine_future_exists(fs->eng, pool, v))
		return -ENOENT;
	*child = FUTURE_KEY(pool, v);
	return 0;
}

const struct dirdesc dir_futures = {
	.mode = 0555,
	.exists = pool_exists,
	.owned_by = OBJ_POOL,
	.child = N_FUTURE,
	.list = futures_list,
	.lookup = futures_lookup,
};

/* ---- /pools/NAME/futures/ID ------------------------------------------------------- */

static bool future_exists(struct fs *fs, uint64_t key)
{
	return engine_future_exists(fs->eng, FUTURE_POOL(key), FUTURE_ID(key));
}

#define WITH_FUTURE(fs, key, fi)                                                         \
	struct future_info fi;                                                           \
	do {                                                                             \
		int rc_ = engine_future_info((fs)->eng, FUTURE_POOL(key), FUTURE_ID(key), &fi); \
		if (rc_ < 0)                                                             \
			return rc_;                                                      \
	} while (0)

static int show_fstate(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	sb_printf(out, "%s\n", future_state_name(fi.state));
	return 0;
}

static int show_fexitcode(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	if (fi.final && future_state_has_code(fi.state))
		sb_printf(out, "%d\n", fi.exitcode);
	return 0;
}

static int show_ferror(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	if (fi.error[0])
		sb_printf(out, "%s\n", fi.error);
	return 0;
}

static int show_ftask(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	if (fi.task)
		sb_printf(out, "%" PRIu64 "\n", fi.task);
	return 0;
}

/* result: Future.result(): the output of a future that succeeded; EIO for
 * one that failed (the reason is in `error`), ECANCELED for one that never
 * ran (cancelled, or skipped: what it waited for did not end as needed). */
static int ready_result(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	if (!fi.final)
		return 0;
	if (fi.state == FUT_CANCELLED || fi.state == FUT_SKIPPED)
		return -ECANCELED;
	if (fi.state == FUT_FAILED)
		return -EIO;
	int rc = append_result(fs, FUTURE_POOL(key), FUTURE_ID(key), out);
	return rc < 0 ? rc : 1;
}

static int ready_fwait(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	int ready = fi.final;
	if (ready)
		sb_printf(out, "%s\n", future_state_name(fi.state));
	return ready;
}

static int store_cancel(struct fs *fs, struct handle *h, const char *buf, size_t len,
			const struct caller *c, char *err, size_t errlen)
{
	int rc = engine_future_cancel(fs->eng, FUTURE_POOL(h->obj), FUTURE_ID(h->obj));
	if (rc == -EBUSY)
		snprintf(err, errlen, "future %u is running or has ended: it cannot be cancelled",
			 (unsigned)FUTURE_ID(h->obj));
	return rc;
}

/* ctl: one command per write ("term", "kill", "signal N|NAME"). */
static int future_cmd(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen)
{
	return engine_future_ctl(fs->eng, FUTURE_POOL(obj), FUTURE_ID(obj), cmd, err, errlen);
}

static int store_fctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
		      const struct caller *c, char *err, size_t errlen)
{
	static const struct cmd_write one = {
		.max_cmds = 1, .usage = "term, kill, signal N|NAME, priority=N",
	};
	return run_commands(fs, h->obj, buf, len, &one, future_cmd, err, errlen);
}

static int kv_fstatus(struct fs *fs, uint64_t key, struct emit *e)
{
	WITH_FUTURE(fs, key, fi);
	emit_uint(e, "id", fi.id);
	struct strbuf cmd = STRBUF_INIT;
	int rc = engine_future_cmd(fs->eng, FUTURE_POOL(key), FUTURE_ID(key), &cmd);
	if (rc < 0) {
		sb_free(&cmd);
		return rc;
	}
	emit_str(e, "cmd", sb_cstr(&cmd));
	sb_free(&cmd);
	emit_str(e, "name", fi.name[0] ? fi.name : NULL);
	emit_str(e, "state", future_state_name(fi.state));
	emit_int(e, "priority", fi.priority);
	if (fi.final && future_state_has_code(fi.state))
		emit_int(e, "exitcode", fi.exitcode);
	else
		emit_null(e, "exitcode");
	emit_str(e, "error", fi.error[0] ? fi.error : NULL);
	emit_bool(e, "oom_killed", fi.oom_killed);
	emit_str(e, "limits", fi.limits[0] ? fi.limits : NULL);
	emit_uint(e, "attempts", fi.attempts);
	emit_uint(e, "retries", fi.retries);
	if (fi.slot)
		emit_uint(e, "slot", fi.slot);
	else
		emit_null(e, "slot");
	if (fi.task)
		emit_uint(e, "task", fi.task);
	else
		emit_null(e, "task");
	if (fi.child)
		emit_int(e, "child_pid", fi.child);
	else
		emit_null(e, "child_pid");
	emit_fixed(e, "queued_for", fi.queued_for, 3);
	emit_fixed(e, "runtime", fi.runtime, 3);
	emit_fixed(e, "cpu", fi.cpu, 3);
	if (fi.timeout_ms >= 0)
		emit_fixed(e, "timeout", (double)fi.timeout_ms / 1000.0, 3);
	else
		emit_null(e, "timeout");
	emit_uint(e, "stdout_bytes", fi.out_bytes[1]);
	emit_uint(e, "stdout_dropped", fi.out_dropped[1]);
	emit_uint(e, "stderr_bytes", fi.out_bytes[2]);
	emit_uint(e, "stderr_dropped", fi.out_dropped[2]);
	if (fi.slurm_job)
		emit_uint(e, "slurm_job", fi.slurm_job);
	else
		emit_null(e, "slurm_job");
	emit_owner(fs, e, &fi.owner);
	return 0;
}

static ssize_t stream_fstdout(struct fs *fs, uint64_t key, uint64_t off, char *buf, size_t size,
			      uint64_t *total)
{
	return engine_future_output(fs->eng, FUTURE_POOL(key), FUTURE_ID(key), 1, off, buf, size,
				    total);
}

static ssize_t stream_fstderr(struct fs *fs, uint64_t key, uint64_t off, char *buf, size_t size,
			      uint64_t *total)
{
	return engine_future_output(fs->eng, FUTURE_POOL(key), FUTURE_ID(key), 2, off, buf, size,
				    total);
}

/* slurm_job: the Slurm job id of a Slurm pool's future; empty otherwise */
static int show_fslurm_job(struct fs *fs, uint64_t key, struct strbuf *out)
{
	WITH_FUTURE(fs, key, fi);
	if (fi.slurm_job)
		sb_printf(out, "%" PRIu64 "\n", fi.slurm_job);
	return 0;
}

static const struct row future_rows[] = {
	TEXT("state", 0444, show_fstate),
	WAIT("result", 0400, ready_result, OBJ_FUTURE),   /* output: the owner's */
	TEXT("exitcode", 0444, show_fexitcode),
	TEXT("error", 0444, show_ferror),
	WAIT("wait", 0444, ready_fwait, OBJ_FUTURE),
	CTL("cancel", 0200, store_cancel),
	CTL("ctl", 0600, store_fctl),
	KV("status", 0444, kv_fstatus),
	TEXT("task", 0444, show_ftask),
	STREAM("stdout", 0400, stream_fstdout),
	STREAM("stderr", 0400, stream_fstderr),
	TEXT("slurm_job", 0444, show_fslurm_job),
};

const struct dirdesc dir_future = {
	.rows = future_rows,
	.nrows = sizeof(future_rows) / sizeof(future_rows[0]),
	.mode = 0555,
	.exists = future_exists,
	.owned_by = OBJ_FUTURE,
};

/* ---- /pools/NAME/workers/N -> ../../../procs/TASK ----------------------------------- */

static int workers_list(struct fs *fs, uint64_t pool, struct dirlist *out)
{
	struct pool_info pi;
	int rc = engine_pool_info(fs->eng, pool, &pi);
	char name[16];
	uint64_t task;
	/* slots are numbered densely from 1; a few beyond `workers` may still be retiring */
	for (unsigned s = 1; rc == 0 && s <= pi.workers + 64; s++) {
		if (engine_pool_worker(fs->eng, pool, s, &task) < 0)
			continue;
		snprintf(name, sizeof(name), "%u", s);
		rc = dirlist_add(out, name, ino_make(N_WORKER, FUTURE_KEY(pool, s), 0), S_IFLNK);
	}
	return rc;
}

static int workers_lookup(struct fs *fs, uint64_t pool, const char *name, uint64_t *child)
{
	uint64_t v, task;
	if (parse_num(name, 65536, &v) < 0 || engine_pool_worker(fs->eng, pool, (unsigned)v, &task) < 0)
		return -ENOENT;
	*child = FUTURE_KEY(pool, v);
	return 0;
}

const struct dirdesc dir_workers = {
	.mode = 0555,
	.exists = pool_exists,
	.owned_by = OBJ_POOL,
	.child = N_WORKER,
	.list = workers_list,
	.lookup = workers_lookup,
};

static bool worker_exists(struct fs *fs, uint64_t key)
{
	uint64_t task;
	return engine_pool_worker(fs->eng, FUTURE_POOL(key), (unsigned)FUTURE_ID(key), &task) == 0;
}

static int worker_readlink(struct fs *fs, uint64_t key, struct strbuf *out)
{
	uint64_t task;
	int rc = engine_pool_worker(fs->eng, FUTURE_POOL(key), (unsigned)FUTURE_ID(key), &task);
	if (rc == 0)
		sb_printf(out, "../../../procs/%" PRIu64, task);
	return rc;
}

const struct dirdesc dir_worker = {
	.mode = 0777,
	.exists = worker_exists,
	.readlink = worker_readlink,
	.owned_by = OBJ_FUTURE,   /* FUTURE_KEY(pool, slot): the pool's owner */
};
