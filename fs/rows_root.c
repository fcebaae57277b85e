/* rows_root.c - the root directory: control and system files. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"

const char pcfs_readme[] =
"pcfs - processes and threads as files\n"
"\n"
"  /README          this text\n"
"  /spawn           write task lines; read back the new ids (one per line)\n"
"  /wait            write task ids or ranges A-B; read `ID CODE` lines as they end\n"
"  /run             spawn and wait on one descriptor: write task lines, read an\n"
"                   `ID CODE` line for each as it ends (exec 3<>run; echo LINE >&3;\n"
"                   read id code <&3)\n"
"  /procs/ID/       one directory per task (ids are never reused)\n"
"  /log             recent events and errors, newest last\n"
"  /events[.json]   a line per task start and end, oldest kept first, then as they\n"
"                   come (like tail -f): TIME ID KIND EVENT STATE code=N name=N\n"
"                   [pool=P]; `# missed N events` when the ring moved past you\n"
"  /joblog          GNU parallel's --joblog of the tasks that ended (Seq = id)\n"
"  /stats[.json]    engine counters\n"
"  /config          the effective configuration (ini)\n"
"  /top             one line per live task: CPU%, RSS, VSZ (watch -n1 cat top)\n"
"  /mem[.json]      every live task's memory in one read: VSZ RSS PSS USS SWAP\n"
"                   (KiB) AGE, read now (AGE: seconds, for a stand-in sample)\n"
"  /sys/meminfo     the system's memory totals (KiB); also meminfo.json\n"
"  /pools/NAME/     executors: mkdir; ctl submit map as_completed completed futures/ workers/\n"
"                   ctl template='exec /bin/prog {}': lines written are inputs ({} {1} {#} {%})\n"
"                   ctl halt=now|soon,fail|success=N|P% (never): stop the batch when met;\n"
"                   ctl retry failed|cancelled: run those futures again (new attempts)\n"
"                   lines take priority=N (-1000..1000, bigger first) and name=NAME;\n"
"                   futures/ID/ctl priority=N moves a pending future\n"
"                   ctl on_end='CMD': every future's hook; events[.json] joblog: its futures'\n"
"  /channels/       message queues, duplex pipes and sockets (see below)\n"
"  /sync/           locks, semaphores, events, barriers (see below)\n"
"  /shm/            shared memory segments and atomic values (see below)\n"
"\n"
"Task line:  WORKLOAD [COUNT] [KEY=VALUE ...] [ARGS ...]\n"
"  cpu      CPU-bound work            ops=N time=DUR\n"
"  io       I/O-bound (write+fsync)   ops=N time=DUR size=SIZE\n"
"  sleep    sleep                     time=DUR\n"
"  mem      map and touch memory      size=SIZE touch=PCT step=SIZE rate=DUR time=DUR\n"
"  cow      fork and copy-on-write    size=SIZE write=PCT time=DUR\n"
"  stack    grow the stack            depth=N time=DUR\n"
"  noop     return at once\n"
"  exec     run a program             exec [COUNT] [opts] PROGRAM ARGS...\n"
"  sh       /bin/sh -c CMDLINE        sh [COUNT] [opts] CMDLINE\n"
"  COUNT 0 means one per online CPU.  Options for all: as=process|thread,\n"
"  on_end='CMD' (sh -c CMD once it ended, in its directory, as its owner, with\n"
"  PCFS_ID PCFS_STATE PCFS_EXITCODE [PCFS_POOL]; output to /log),\n"
"  method=fork|spawn|vfork|clone|pthread, timeout=DUR, name=NAME, nice=N,\n"
"  cwd=PATH, env=K=V | env=-K | env=- (repeatable), stdin= stdout= stderr=\n"
"  (a path with a /, append:PATH or truncate:PATH; else a channel),\n"
"  after=ID,... | after_any= | after_fail= (wait for those tasks to end: run if\n"
"  all succeeded / whatever they ended as / if one failed; else skipped; in a\n"
"  pool, the ids are futures of the same pool),\n"
"  gil=0|1 (with as=thread), retries=N and priority=N (pools).\n"
"  Limits (a cgroup per task, joined before exec; refused if not enforceable):\n"
"  mem_max=SIZE swap_max=SIZE pids_max=N cpu_max=P% cpus=LIST io_weight=N\n"
"  cgroup=1; an OOM kill says so (oom_killed: 1, error); kill/stop/cont reach\n"
"  the whole cgroup; /stats says which mechanisms are in use.  A line runs\n"
"  in its writer's directory with its writer's environment (exec looks\n"
"  PROGRAM up on that PATH).\n"
"  Durations: 500ms 2s 1.5m 1h.  Sizes: 4k 64M 1G.\n"
"  A malformed line refuses the whole write (EINVAL); nothing starts, and the\n"
"  reason is in /log and readable on the same descriptor.\n"
"\n"
"/procs/ID/: cmd kind method pid tid state alive exitcode wait ctl stdout\n"
"  stderr status status.json error maps smaps mem mem.json memlog cow cow.json\n"
"  sched sched.json io io.json cgroup\n"
"  cgroup: its cgroup's directories and the processes still in it; io: its\n"
"  I/O bytes and page faults (status: faults, rss_peak_kib, cgroup_cpu).\n"
"  maps: pmap -x table; smaps: the kernel's; mem: vsz rss pss uss ... in KiB;\n"
"  memlog: t_ms vsz_kib rss_kib samples; cow: pages shared with / copied from\n"
"  the fork parent; sched: context switches, CPU times, last CPU.  Thread\n"
"  tasks show their host's memory.  The last figures stay after the end.\n"
"  exitcode: empty while running, N after exit(N), -S after signal S;\n"
"  empty for a `lost` task (it ran when a previous pcfs died: [state] dir).\n"
"  wait: blocks until the task ends, then gives its exitcode (O_NONBLOCK: EAGAIN).\n"
"  ctl: term | kill | signal N|NAME | stop | cont   (ESRCH once ended)\n"
"  rmdir /procs/ID forgets an ended task (EBUSY while it runs).\n"
"\n"
"/channels/ctl: queue NAME [capacity=N] [maxmsg=SIZE] [mode=lines|message] |\n"
"  pipe NAME [...] | socket NAME [...] | fifo NAME [size=SIZE]; mkdir\n"
"  /channels/NAME makes a queue; rmdir removes an empty or closed one.\n"
"  /channels/NAME/: put get (queue, socket), a b (pipe), address (socket),\n"
"  fifo (fifo: a symlink to a kernel FIFO, opened directly: no FUSE in the\n"
"  data path), ctl (close, capacity=N, mode=lines|message while empty),\n"
"  stat stat.json.\n"
"  Lines mode (the default): each line written is a message (a last line\n"
"  without newline at close), a read() returns as many whole lines as fit.\n"
"  mode=message: each write() is one message, each read() at most one.\n"
"  Reads block while empty, writes while full (O_NONBLOCK: EAGAIN); `cat get`\n"
"  ends once the channel is closed and drained.  Task lines take\n"
"  stdin=CHANNEL and stdout=CHANNEL (exec, sh): one line per message.\n"
"\n"
"/sync/ctl: lock NAME | semaphore NAME value=N [bounded] | event NAME |\n"
"  barrier NAME parties=N [timeout=DUR]; mkdir /sync/NAME makes a lock; rmdir\n"
"  removes one nobody holds or waits on.  /sync/NAME/: hold (lock, semaphore:\n"
"  an open returns once the unit is yours, its close gives it back:\n"
"  `exec 9>/sync/L/hold; ...; exec 9>&-`; first come, first served;\n"
"  O_NONBLOCK: EAGAIN; Ctrl-C: EINTR, nothing taken), wait (event: blocks\n"
"  until set; barrier: until parties wait, then each gets its arrival index;\n"
"  aborted or broken: EPIPE), ctl (release [N] | set | clear | abort |\n"
"  reset), status status.json (holders with their task ids, waiters, counts).\n"
"/shm/ctl: segment NAME size=SIZE | value NAME [N]; mkdir /shm/NAME makes a\n"
"  segment of size 0.  /shm/NAME/: data (a link to the /dev/shm file: mmap\n"
"  it), value, ctl (size=SIZE | add N | set N | cas OLD NEW: EAGAIN if not\n"
"  OLD), status status.json (size, resident pages, mappers with RSS and PSS).\n"
"\n"
"Example:  echo 'cpu 4 time=2s' > /mnt/pcfs/spawn; cat /mnt/pcfs/procs/1/wait\n";

static int show_readme(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	sb_adds(out, pcfs_readme);
	return 0;
}

static int show_log(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	engine_log_render(fs->eng, out);
	return 0;
}

static int show_config(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	char *s = config_render(fs->cfg);
	if (!s)
		return -ENOMEM;
	sb_adds(out, s);
	free(s);
	return 0;
}

static int kv_stats(struct fs *fs, uint64_t obj, struct emit *e)
{
	struct engine_stats st;
	engine_stats(fs->eng, &st);
	emit_uint(e, "started", st.started);
	emit_uint(e, "running", st.running);
	emit_uint(e, "exited", st.exited);
	emit_uint(e, "killed", st.killed);
	emit_uint(e, "failed", st.failed);
	emit_uint(e, "refused", st.refused);
	emit_uint(e, "forgotten", st.forgotten);
	emit_uint(e, "waiting", st.waiting);
	emit_uint(e, "skipped", st.skipped);
	emit_uint(e, "known", st.known);
	emit_uint(e, "live_processes", st.live_processes);
	emit_uint(e, "live_threads", st.live_threads);
	char cg[512];
	engine_cgroup_mechanisms(fs->eng, cg, sizeof(cg));
	emit_str(e, "cgroup", cg);
	/* where results survive the daemon, and how surely */
	const struct pcfs_config *c = fs->cfg;
	emit_str(e, "state_dir", c->state_path[0] ? c->state_path : "none");
	static const char *const sync_words[] = { "none", "batch", "always" };
	emit_str(e, "state_sync", c->state_path[0] ? sync_words[c->state_sync] : "none");
	return 0;
}

/* spawn: every write is a batch of lines, all started or none. */
static int store_spawn(struct fs *fs, struct handle *h, const char *buf, size_t len,
		       const struct caller *c, char *err, size_t errlen)
{
	struct cred who;
	caller_cred(fs, c, &who);
	return engine_spawn_as(fs->eng, &who, h->origin, buf, len, &h->buf, err, errlen);
}

/* wait: many tasks at once.  Ids and A-B ranges written on a descriptor
 * are reported back on it as `ID CODE` lines in the order the tasks end;
 * reads block while none is ready, and give EOF once all have been told. */
static int store_wait(struct fs *fs, struct handle *h, const char *buf, size_t len,
		      const struct caller *c, char *err, size_t errlen)
{
	if (!h->ws && !(h->ws = waitset_new()))
		return -ENOMEM;
	return waitset_add(fs->eng, h->ws, buf, len, &h->buf, err, errlen);
}

/* run: spawn and wait on one descriptor.  Each write's lines start tasks as
 * spawn's do (all of them or none; a refusal is EINVAL and its reason is
 * read back on the descriptor); a read gives, for each of them, an `ID CODE`
 * line once it has ended, in the order they end (/wait's lines), and blocks
 * while none has.  So a shell waits for one command with two requests and no
 * open: `exec 3<>run; echo 'exec /bin/true' >&3; read id code <&3`.  The
 * ids go straight from the spawn into the descriptor's wait set, never to
 * the reader. */
static int store_run(struct fs *fs, struct handle *h, const char *buf, size_t len,
		     const struct caller *c, char *err, size_t errlen)
{
	if (!h->ws && !(h->ws = waitset_new()))
		return -ENOMEM;
	struct cred who;
	struct strbuf ids = STRBUF_INIT;
	caller_cred(fs, c, &who);
	int rc = engine_spawn_as(fs->eng, &who, h->origin, buf, len, &ids, err, errlen);
	/* only ENOMEM fails here (the ids are new and exist): the tasks run,
	 * and the write's error says they will not be told on this descriptor */
	if (rc == 0 && ids.len)
		rc = waitset_add(fs->eng, h->ws, ids.buf, ids.len, &h->buf, err, errlen);
	sb_free(&ids);
	return rc;
}

/* events: every start and end, from the oldest kept, then each as it comes
 * (tail -f); it never ends by itself. */
static int fill_events(struct fs *fs, struct handle *h)
{
	return fill_events_of(fs, h, 0, false);
}

static int fill_events_json(struct fs *fs, struct handle *h)
{
	return fill_events_of(fs, h, 0, true);
}

/* joblog: the tasks spawned, as GNU parallel's --joblog. */
static int show_joblog(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	return engine_joblog(fs->eng, 0, out);
}

static int fill_wait(struct fs *fs, struct handle *h)
{
	if (!h->ws)
		return 1;   /* nothing asked: EOF */
	long pending = waitset_poll(fs->eng, h->ws, &h->buf);
	if (pending < 0)
		return (int)pending;
	return h->rpos < h->buf.len || pending == 0;
}

/* /top: the live tasks from their last samples (no /proc reads at open). */
static int show_top(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	struct top_row *v;
	size_t n;
	int rc = engine_top(fs->eng, &v, &n);
	if (rc < 0)
		return rc;
	sb_printf(out, "%6s %-7s %8s %-8s %6s %9s %9s %s\n", "ID", "KIND", "PID", "STATE", "CPU%",
		  "RSS", "VSZ", "NAME");
	for (size_t i = 0; i < n; i++) {
		const struct top_row *r = &v[i];
		char cpu[16] = "-", rss[24] = "-", vsz[24] = "-";
		if (r->cpu_pct >= 0)
			snprintf(cpu, sizeof(cpu), "%.1f", r->cpu_pct);
		if (r->sampled && r->rss >= 0)
			snprintf(rss, sizeof(rss), "%lld", (long long)r->rss);
		if (r->sampled && r->vsz >= 0)
			snprintf(vsz, sizeof(vsz), "%lld", (long long)r->vsz);
		sb_printf(out, "%6llu %-7s %8d %-8s %6s %9s %9s %s\n", (unsigned long long)r->id,
			  r->kind == TASK_THREAD ? "thread" : "process", (int)r->pid,
			  task_state_name(r->state), cpu, rss, vsz, r->name[0] ? r->name : "-");
	}
	free(v);
	return 0;
}

/* /mem: every live task's memory figures, read at this open (one read for
 * all, where procs/ID/mem is five FUSE requests each).  KiB; `-` where the
 * kernel gave none; age: seconds since read (0, but for a stand-in). */
static void mem_kib(char *buf, size_t n, int64_t v)
{
	if (v == MS_NONE)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%lld", (long long)v);
}

static int show_mem(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	struct mem_row *v;
	size_t n;
	int rc = engine_mem_table(fs->eng, &v, &n);
	if (rc < 0)
		return rc;
	sb_printf(out, "%6s %8s %9s %9s %9s %9s %7s %7s %s\n", "ID", "PID", "VSZ", "RSS", "PSS",
		  "USS", "SWAP", "AGE", "NAME");
	for (size_t i = 0; i < n; i++) {
		const struct mem_row *r = &v[i];
		char f[5][24], age[24] = "-";
		const int64_t figs[5] = { r->vsz, r->rss, r->pss, r->uss, r->swap };
		for (int j = 0; j < 5; j++)
			mem_kib(f[j], sizeof(f[j]), r->known ? figs[j] : MS_NONE);
		if (r->known)
			snprintf(age, sizeof(age), "%.3f", r->age);
		sb_printf(out, "%6llu %8d %9s %9s %9s %9s %7s %7s %s\n", (unsigned long long)r->id,
			  (int)r->pid, f[0], f[1], f[2], f[3], f[4], age, r->name[0] ? r->name : "-");
	}
	free(v);
	return sb_error(out);
}

/* mem.json: the same rows as one JSON array, an object a line. */
static void mem_json_row(struct strbuf *out, const struct mem_row *r)
{
	struct emit e;
	emit_begin(&e, out, EMIT_JSON);
	emit_uint(&e, "id", r->id);
	emit_int(&e, "pid", r->pid);
	const char *keys[5] = { "vsz", "rss", "pss", "uss", "swap" };
	const int64_t figs[5] = { r->vsz, r->rss, r->pss, r->uss, r->swap };
	for (int j = 0; j < 5; j++) {
		if (!r->known || figs[j] == MS_NONE)
			emit_null(&e, keys[j]);
		else
			emit_int(&e, keys[j], figs[j]);
	}
	if (r->known)
		emit_fixed(&e, "age", r->age, 3);
	else
		emit_null(&e, "age");
	emit_str(&e, "name", r->name[0] ? r->name : NULL);
	emit_str(&e, "kind", r->kind == TASK_THREAD ? "thread" : "process");
	emit_end(&e);
}

static int show_mem_json(struct fs *fs, uint64_t obj, struct strbuf *out)
{
	struct mem_row *v;
	size_t n;
	int rc = engine_mem_table(fs->eng, &v, &n);
	if (rc < 0)
		return rc;
	sb_adds(out, "[\n");
	for (size_t i = 0; i < n; i++) {
		mem_json_row(out, &v[i]);   /* ends in "}\n": the comma goes before it */
		if (i + 1 < n && out->len && out->buf[out->len - 1] == '\n') {
			out->len--;
			sb_adds(out, ",\n");
		}
	}
	sb_adds(out, "]\n");
	free(v);
	return sb_error(out);
}

static const struct row root_rows[] = {
	TEXT("README", 0444, show_readme),
	CTL_HERE("spawn", 0666, store_spawn),   /* every user let in may start work */
	/* woken by every task's end: OBJ_STATS changes with each */
	PULL("wait", 0666, store_wait, fill_wait, OBJ_STATS),
	TEXT("log", 0444, show_log),
	/* spawn and wait in one: woken, as wait, by every task's end */
	PULL_HERE("run", 0666, store_run, fill_wait, OBJ_STATS),
	PULL("events", 0444, NULL, fill_events, OBJ_EVENTS),
	PULL("events.json", 0444, NULL, fill_events_json, OBJ_EVENTS),
	TEXT("joblog", 0444, show_joblog),
	KV("stats", 0444, kv_stats),
	TEXT("config", 0444, show_config),
	DIR_ROW("procs", N_PROCS),
	DIR_ROW("pools", N_POOLS),
	TEXT("top", 0444, show_top),
	TEXT("mem", 0444, show_mem),
	TEXT("mem.json", 0444, show_mem_json),
	DIR_ROW("sys", N_SYS),
	DIR_ROW("channels", N_CHANS),
	DIR_ROW("sync", N_SYNCS),
	DIR_ROW("shm", N_SHMS),
};

const struct dirdesc dir_root = {
	.rows = root_rows,
	.nrows = sizeof(root_rows) / sizeof(root_rows[0]),
	.mode = 0555,
};

/* ---- /sys: the system's figures ---------------------------------------------- */

static void emit_kib(struct emit *e, const char *key, int64_t v)
{
	if (v == MS_NONE)
		emit_null(e, key);
	else
		emit_int(e, key, v);
}

static int kv_meminfo(struct fs *fs, uint64_t obj, struct emit *e)
{
	struct strbuf sb = STRBUF_INIT;
	struct ms_meminfo mi;
	int rc = ms_read_file("/proc/meminfo", &sb);
	if (rc == 0)
		rc = ms_meminfo_parse(sb.buf, sb.len, &mi);
	sb_free(&sb);
	if (rc < 0)
		return rc == -EINVAL ? -EIO : rc;
	emit_kib(e, "total", mi.total);
	emit_kib(e, "free", mi.free);
	emit_kib(e, "available", mi.available);
	emit_kib(e, "buffers", mi.buffers);
	emit_kib(e, "cached", mi.cached);
	emit_kib(e, "shared", mi.shmem);
	emit_kib(e, "anon", mi.anon);
	emit_kib(e, "swap_total", mi.swap_total);
	emit_kib(e, "swap_free", mi.swap_free);
	emit_int(e, "page_size", sysconf(_SC_PAGESIZE));
	return 0;
}

static const struct row sys_rows[] = {
	KV("meminfo", 0444, kv_meminfo),
};

const struct dirdesc dir_sys = {
	.rows = sys_rows,
	.nrows = sizeof(sys_rows) / sizeof(sys_rows[0]),
	.mode = 0555,
};
