/* rows_proc.c - /procs and /procs/ID: one directory per task. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

/* ---- /procs ----------------------------------------------------------------- */

static int procs_list(struct fs *fs, uint64_t obj, struct dirlist *out)
{
	uint64_t *ids;
	size_t n;
	int rc = engine_task_ids(fs->eng, &ids, &n);
	if (rc < 0)
		return rc;
	char name[24];
	for (size_t i = 0; rc == 0 && i < n; i++) {
		snprintf(name, sizeof(name), "%" PRIu64, ids[i]);
		rc = dirlist_add(out, name, ino_make(N_PROC, ids[i], 0), S_IFDIR);
	}
	free(ids);
	return rc;
}

/* A task id as a name: digits only, no leading zero, in range. */
static int parse_id(const char *name, uint64_t *id)
{
	uint64_t v;
	if (name[0] == '0' || parse_uint(name, INO_OBJ_MAX, &v) < 0)
		return -ENOENT;
	*id = v;
	return 0;
}

static int procs_lookup(struct fs *fs, uint64_t obj, const char *name, uint64_t *child)
{
	uint64_t id;
	if (parse_id(name, &id) < 0 || !engine_task_exists(fs->eng, id))
		return -ENOENT;
	*child = id;
	return 0;
}

static int procs_rmdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c)
{
	uint64_t id;
	if (parse_id(name, &id) < 0)
		return -ENOENT;
	return engine_task_forget(fs->eng, id);
}

/* Writable by all, sticky (like /tmp): anyone let in may rmdir their own. */
const struct dirdesc dir_procs = {
	.mode = 01777,
	.child = N_PROC,
	.list = procs_list,
	.lookup = procs_lookup,
	.rmdir = procs_rmdir,
};

/* ---- /procs/ID ---------------------------------------------------------------- */

static bool proc_exists(struct fs *fs, uint64_t id)
{
	return engine_task_exists(fs->eng, id);
}

/* Every show function of a task works on one snapshot of it: without the
 * command line, but for `cmd` and `status`, and with the live CPU times for
 * `status` alone. */
#define WITH_TASK_BY(fs, id, ti, get)                                  \
	struct task_info ti;                                           \
	do {                                                           \
		int rc_ = get((fs)->eng, (id), &ti);                   \
		if (rc_ < 0)                                           \
			return rc_;                                    \
	} while (0)
#define WITH_TASK(fs, id, ti) WITH_TASK_BY(fs, id, ti, engine_task_brief)

static int show_cmd(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK_BY(fs, id, ti, engine_task_info);
	sb_printf(out, "%s\n", ti.cmd);
	task_info_free(&ti);
	return 0;
}

static int show_kind(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	sb_adds(out, ti.kind == TASK_THREAD ? "thread\n" : "process\n");
	task_info_free(&ti);
	return 0;
}

static int show_method(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	sb_printf(out, "%s\n", method_name(ti.method));
	task_info_free(&ti);
	return 0;
}

static int show_pid(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	if (ti.pid > 0)
		sb_printf(out, "%d\n", ti.pid);
	task_info_free(&ti);
	return 0;
}

/* A process's tid is its pid (its main thread); a thread's is its own. */
static int show_tid(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	pid_t tid = ti.kind == TASK_THREAD ? ti.tid : ti.pid;
	if (tid > 0)
		sb_printf(out, "%d\n", tid);
	task_info_free(&ti);
	return 0;
}

static int show_state(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	sb_printf(out, "%s\n", task_state_name(ti.state));
	task_info_free(&ti);
	return 0;
}

static int show_alive(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	sb_adds(out, ti.ended || ti.state == TS_WAITING ? "0\n" : "1\n");
	task_info_free(&ti);
	return 0;
}

/* Python's Process.exitcode: nothing (None) while running, and for a task
 * lost with a previous daemon (its status is unknown) or skipped (it never
 * ran). */
static int show_exitcode(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	if (task_state_has_code(ti.state))
		sb_printf(out, "%d\n", ti.exitcode);
	task_info_free(&ti);
	return 0;
}

static int show_error(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	if (ti.error[0])
		sb_printf(out, "%s\n", ti.error);
	task_info_free(&ti);
	return 0;
}

/* wait: ready once the task has ended; the content is its exitcode line, or
 * its state where it has none ("lost": no one can know it; "skipped": it
 * never ran). */
static int ready_wait(struct fs *fs, uint64_t id, struct strbuf *out)
{
	WITH_TASK(fs, id, ti);
	int ready = ti.ended;
	if (ready && !task_state_has_code(ti.state))
		sb_printf(out, "%s\n", task_state_name(ti.state));
	else if (ready)
		sb_printf(out, "%d\n", ti.exitcode);
	task_info_free(&ti);
	return ready;
}

static void emit_time(struct emit *e, const char *key, struct timespec ts)
{
	if (!ts.tv_sec) {
		emit_null(e, key);
		return;
	}
	char buf[64];
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	emit_str(e, key, buf);
}

static void emit_or_null(struct emit *e, const char *key, int64_t v)
{
	if (v >= 0)
		emit_int(e, key, v);
	else
		emit_null(e, key);
}

/* A task with a cgroup: its name, the processes still in it, and its own
 * accounting (everything the cgroup ever held, what it left running too). */
static void emit_status_cgroup(struct fs *fs, struct emit *e, uint64_t id,
			       const struct task_info *ti)
{
	int64_t cpu = -1, peak = -1;
	emit_str(e, "cgroup", ti->cgroup[0] ? ti->cgroup : NULL);
	emit_or_null(e, "cgroup_procs", ti->cgroup[0] ? engine_task_cgroup_procs(fs->eng, id) : -1);
	if (ti->cgroup[0])
		engine_task_cgroup_acct(fs->eng, id, &cpu, &peak);
	if (cpu >= 0)
		emit_fixed(e, "cgroup_cpu", (double)cpu / 1e6, 3);
	else
		emit_null(e, "cgroup_cpu");
	emit_or_null(e, "cgroup_mem_peak_kib", peak >= 0 ? peak / 1024 : -1);
}

static int kv_status(struct fs *fs, uint64_t id, struct emit *e)
{
	WITH_TASK_BY(fs, id, ti, engine_task_status);
	emit_uint(e, "id", ti.id);
	emit_str(e, "name", ti.name[0] ? ti.name : NULL);
	emit_str(e, "cmd", ti.cmd);
	emit_str(e, "kind", ti.kind == TASK_THREAD ? "thread" : "process");
	emit_str(e, "method", method_name(ti.method));
	emit_str(e, "workload", ti.pool[0] ? "pool-worker" : workload_name(ti.workload));
	emit_str(e, "pool", ti.pool[0] ? ti.pool : NULL);
	if (ti.slot)
		emit_uint(e, "slot", ti.slot);
	else
		emit_null(e, "slot");
	emit_str(e, "state", task_state_name(ti.state));
	emit_bool(e, "alive", !ti.ended && ti.state != TS_WAITING);
	if (task_state_has_code(ti.state))
		emit_int(e, "exitcode", ti.exitcode);
	else
		emit_null(e, "exitcode");
	if (ti.pid > 0)
		emit_int(e, "pid", ti.pid);
	else
		emit_null(e, "pid");
	pid_t tid = ti.kind == TASK_THREAD ? ti.tid : ti.pid;
	if (tid > 0)
		emit_int(e, "tid", tid);
	else
		emit_null(e, "tid");
	if (ti.pgid > 0)
		emit_int(e, "pgid", ti.pgid);
	else
		emit_null(e, "pgid");
	if (ti.parent_id)
		emit_uint(e, "parent", ti.parent_id);
	else
		emit_null(e, "parent");
	emit_time(e, "start", ti.start);
	emit_time(e, "end", ti.end);
	emit_fixed(e, "runtime", ti.runtime, 3);
	emit_fixed(e, "utime", ti.utime, 3);
	emit_fixed(e, "stime", ti.stime, 3);
	if (ti.timeout_ms >= 0)
		emit_fixed(e, "timeout", (double)ti.timeout_ms / 1000.0, 3);
	else
		emit_null(e, "timeout");
	emit_bool(e, "timed_out", ti.timed_out);
	if (ti.term_signal)
		emit_int(e, "signal_sent", ti.term_signal);
	else
		emit_null(e, "signal_sent");
	emit_uint(e, "stdout_bytes", ti.out_bytes[1]);
	emit_uint(e, "stdout_dropped", ti.out_dropped[1]);
	emit_uint(e, "stderr_bytes", ti.out_bytes[2]);
	emit_uint(e, "stderr_dropped", ti.out_dropped[2]);
	emit_str(e, "error", ti.error[0] ? ti.error : NULL);
	emit_uint(e, "minflt", ti.minflt);
	emit_uint(e, "majflt", ti.majflt);
	bool ended_proc = ti.ended && ti.kind == TASK_PROCESS;
	emit_or_null(e, "rss_peak_kib", ended_proc ? (int64_t)ti.rss_peak_kib : -1);
	emit_bool(e, "oom_killed", ti.oom_killed);
	emit_status_cgroup(fs, e, id, &ti);
	emit_owner(fs, e, &ti.owner);
	task_info_free(&ti);
	return 0;
}

static ssize_t stream_stdout(struct fs *fs, uint64_t id, uint64_t off, char *buf, size_t size,
			     uint64_t *total)
{
	return engine_task_output(fs->eng, id, 1, off, buf, size, total);
}

static ssize_t stream_stderr(struct fs *fs, uint64_t id, uint64_t off, char *buf, size_t size,
			     uint64_t *total)
{
	return engine_task_output(fs->eng, id, 2, off, buf, size, total);
}

/* ctl: one command per line. */
static int task_cmd(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen)
{
	return engine_task_ctl(fs->eng, obj, cmd, err, errlen);
}

static int store_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
		     const struct caller *c, char *err, size_t errlen)
{
	return run_commands(fs, h->obj, buf, len, NULL, task_cmd, err, errlen);
}

/* ---- memory and scheduling (engine/sample.c, engine/cowtask.c) ---- */

/* A figure in KiB, or null when the kernel did not give it. */
static void emit_kib(struct emit *e, const char *key, int64_t v)
{
	if (v == MS_NONE)
		emit_null(e, key);
	else
		emit_int(e, key, v);
}

static int64_t sum2(int64_t a, int64_t b)
{
	return a == MS_NONE || b == MS_NONE ? MS_NONE : a + b;
}

/* mem's and sched's figures of the task's tree and limits: the peak RSS
 * (VmHWM while it runs, wait4's once ended), its cgroup's, mem_max=. */
static int emit_mem_bounds(struct fs *fs, struct emit *e, uint64_t id, const struct task_mem *m)
{
	WITH_TASK(fs, id, ti);
	int64_t cpu = -1, peak = -1;
	if (ti.cgroup[0])
		engine_task_cgroup_acct(fs->eng, id, &cpu, &peak);
	emit_or_null(e, "rss_peak", m->live ? m->s.st.vm_hwm
					    : ti.ended && ti.kind == TASK_PROCESS ? (int64_t)ti.rss_peak_kib : -1);
	emit_or_null(e, "cgroup_mem_peak", peak >= 0 ? peak / 1024 : -1);
	emit_or_null(e, "mem_max", ti.mem_max != SPEC_UNSET ? ti.mem_max / 1024 : -1);
	emit_bool(e, "oom_killed", ti.oom_killed);
	task_info_free(&ti);
	return 0;
}

static int emit_sched_bounds(struct fs *fs, struct emit *e, uint64_t id)
{
	WITH_TASK(fs, id, ti);
	int64_t cpu = -1, peak = -1;
	if (ti.cgroup[0])
		engine_task_cgroup_acct(fs->eng, id, &cpu, &peak);
	if (cpu >= 0)
		emit_fixed(e, "cgroup_cpu", (double)cpu / 1e6, 3);
	else
		emit_null(e, "cgroup_cpu");
	emit_or_null(e, "cpu_max", ti.cpu_max != SPEC_UNSET ? ti.cpu_max : -1);
	emit_str(e, "cpus", ti.cpus[0] ? ti.cpus : NULL);
	task_info_free(&ti);
	return 0;
}

static int kv_mem(struct fs *fs, uint64_t id, struct emit *e)
{
	struct task_mem m;
	int rc = engine_task_mem(fs->eng, id, MS_READ_MEM, &m);
	if (rc < 0)
		return rc;
	const struct ms_rollup *r = &m.s.r;
	const struct ms_status *st = &m.s.st;
	emit_kib(e, "vsz", st->vm_size);
	emit_kib(e, "rss", st->vm_rss);
	emit_kib(e, "pss", r->pss);
	emit_kib(e, "uss", sum2(r->private_clean, r->private_dirty));
	emit_kib(e, "shared_clean", r->shared_clean);
	emit_kib(e, "shared_dirty", r->shared_dirty);
	emit_kib(e, "private_clean", r->private_clean);
	emit_kib(e, "private_dirty", r->private_dirty);
	emit_kib(e, "swap", r->swap);
	emit_kib(e, "anon", st->rss_anon);
	emit_kib(e, "file", st->rss_file);
	emit_kib(e, "heap", m.s.heap);
	emit_kib(e, "stack", st->vm_stk);
	emit_int(e, "pid", m.pid);
	emit_bool(e, "live", m.live);
	emit_fixed(e, "age", m.age, 3);
	return emit_mem_bounds(fs, e, id, &m);
}

static const char *sched_state(char c)
{
	switch (c) {
	case 'R': return "running";
	case 'S': return "sleeping";
	case 'D': return "disk-sleep";
	case 'T': return "stopped";
	case 't': return "tracing-stop";
	case 'Z': return "zombie";
	case 'X': return "dead";
	case 'I': return "idle";
	default:  return NULL;
	}
}

static int kv_sched(struct fs *fs, uint64_t id, struct emit *e)
{
	struct task_mem m;
	int rc = engine_task_mem(fs->eng, id, MS_READ_SCHED, &m);
	if (rc < 0)
		return rc;
	emit_kib(e, "voluntary_ctxt_switches", m.vol_cs);
	emit_kib(e, "nonvoluntary_ctxt_switches", m.nonvol_cs);
	emit_fixed(e, "utime", m.utime, 3);
	emit_fixed(e, "stime", m.stime, 3);
	emit_kib(e, "threads", m.s.tst.threads);
	emit_int(e, "last_cpu", m.s.stat.processor);
	/* the kernel's view while it runs; once ended, the last sample's state
	 * would be stale, so say so */
	emit_str(e, "state", m.live ? sched_state(m.s.stat.state) : "ended");
	emit_int(e, "tid", m.tid);
	emit_bool(e, "live", m.live);
	return emit_sched_bounds(fs, e, id);
}

/* io: the task's I/O (live: /proc/PID/io; ended: wait4's blocks) and its
 * page faults. */
static int kv_io(struct fs *fs, uint64_t id, struct emit *e)
{
	struct task_io io;
	int rc = engine_task_io(fs->eng, id, &io);
	if (rc < 0)
		return rc;
	emit_or_null(e, "rchar", io.rchar);
	emit_or_null(e, "wchar", io.wchar);
	emit_or_null(e, "syscr", io.syscr);
	emit_or_null(e, "syscw", io.syscw);
	emit_or_null(e, "read_bytes", io.read_bytes);
	emit_or_null(e, "write_bytes", io.write_bytes);
	emit_or_null(e, "cancelled_write_bytes", io.cancelled_write_bytes);
	emit_uint(e, "minflt", io.minflt);
	emit_uint(e, "majflt", io.majflt);
	emit_bool(e, "live", io.live);
	return 0;
}

static int show_smaps(struct fs *fs, uint64_t id, struct strbuf *out)
{
	bool live;
	return engine_task_smaps(fs->eng, id, out, &live);
}

static int show_maps(struct fs *fs, uint64_t id, struct strbuf *out)
{
	struct strbuf sm = STRBUF_INIT;
	bool live;
	int rc = engine_task_smaps(fs->eng, id, &sm, &live);
	if (rc == 0)
		rc = ms_format_pmap(sm.buf, sm.len, out);
	sb_free(&sm);
	return rc;
}

static int show_memlog(struct fs *fs, uint64_t id, struct strbuf *out)
{
	return engine_task_memlog(fs->eng, id, out);
}

/* The region with the most pages counted: the cow workload's own, apart
 * from the allocator's and a sanitizer's mappings around it. */
static void emit_cow_region(struct emit *e, const struct ms_cow_region *r, uint64_t kib)
{
	char start[20];
	snprintf(start, sizeof(start), "%08" PRIx64, r->start);   /* as smaps writes it */
	uint64_t total = r->shared + r->copied;
	emit_str(e, "region", total ? start : NULL);
	emit_uint(e, "region_kib", r->pages * kib);
	emit_uint(e, "region_shared", r->shared);
	emit_uint(e, "region_copied", r->copied);
	if (total)
		emit_fixed(e, "region_shared_pct", 100.0 * (double)r->shared / (double)total, 1);
	else
		emit_null(e, "region_shared_pct");
}

static int kv_cow(struct fs *fs, uint64_t id, struct emit *e)
{
	struct task_cow c;
	int rc = engine_task_cow(fs->eng, id, &c);
	if (rc < 0)
		return rc;
	if (c.method == COW_NA) {
		emit_str(e, "method", "n/a");
		emit_str(e, "reason", c.reason);
		return 0;
	}
	long kib = sysconf(_SC_PAGESIZE) / 1024;
	uint64_t total = c.c.shared + c.c.copied;
	if (c.parent_id)
		emit_uint(e, "parent", c.parent_id);
	else
		emit_str(e, "parent", "fork-server");
	emit_int(e, "parent_pid", c.parent_pid);
	emit_uint(e, "shared", c.c.shared);
	emit_uint(e, "copied", c.c.copied);
	emit_uint(e, "shared_kib", c.c.shared * (uint64_t)kib);
	emit_uint(e, "copied_kib", c.c.copied * (uint64_t)kib);
	if (total)
		emit_fixed(e, "shared_pct", 100.0 * (double)c.c.shared / (double)total, 1);
	else
		emit_null(e, "shared_pct");
	emit_cow_region(e, &c.c.region, (uint64_t)kib);
	emit_str(e, "method", c.method == COW_PAGEMAP ? "pagemap" : "smaps");
	emit_str(e, "exact", c.method == COW_PAGEMAP ? "yes" : "no (an estimate)");
	emit_uint(e, "estimated", c.c.estimated);
	emit_str(e, "note", c.reason[0] ? c.reason : NULL);
	emit_bool(e, "live", c.live);
	return 0;
}

/* cgroup: its cgroup in each hierarchy and the processes still in it;
 * empty for a task with none. */
static int show_cgroup(struct fs *fs, uint64_t id, struct strbuf *out)
{
	return engine_task_cgroup(fs->eng, id, out);
}

static const struct row proc_rows[] = {
	TEXT("cmd", 0444, show_cmd),
	TEXT("kind", 0444, show_kind),
	TEXT("method", 0444, show_method),
	TEXT("pid", 0444, show_pid),
	TEXT("tid", 0444, show_tid),
	TEXT("state", 0444, show_state),
	TEXT("alive", 0444, show_alive),
	TEXT("exitcode", 0444, show_exitcode),
	WAIT("wait", 0444, ready_wait, OBJ_TASK),
	/* control and captured output: the owner's (and root's); the rest is
	 * for everyone let in, as ps shows every process */
	CTL("ctl", 0600, store_ctl),
	STREAM("stdout", 0400, stream_stdout),
	STREAM("stderr", 0400, stream_stderr),
	KV("status", 0444, kv_status),
	TEXT("error", 0444, show_error),
	TEXT("maps", 0400, show_maps),     /* addresses: the owner's, as /proc/PID/maps */
	TEXT("smaps", 0400, show_smaps),
	KV("mem", 0444, kv_mem),
	TEXT("memlog", 0444, show_memlog),
	KV("cow", 0444, kv_cow),
	KV("sched", 0444, kv_sched),
	TEXT("cgroup", 0444, show_cgroup),
	KV("io", 0444, kv_io),
};

const struct dirdesc dir_proc = {
	.rows = proc_rows,
	.nrows = sizeof(proc_rows) / sizeof(proc_rows[0]),
	.mode = 0555,
	.exists = proc_exists,
	.owned_by = OBJ_TASK,
};
