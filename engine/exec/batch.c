/* batch.c - a write to `spawn`: its lines parsed and checked all together,
 * then their tasks reserved, started in order, and announced.  Nothing starts
 * unless every line parses and the limits allow them all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "cgroup/cgroup.h"
#include "channels/channels.h"

/* One parsed line of a write. */
struct parsed {
	struct line_start ls;
	unsigned nproc, nthread;
	unsigned count;           /* its tasks (ls.spec.count: ls is emptied once held) */
	struct dep_seen *seen;    /* after=: how each id stood at the write */
	bool held;                /* its tasks wait (waiting.c has the line now) */
};

/* What a task takes of its line and its owner (lock held).  -ENOMEM: its
 * on_end= could not be kept. */
int line_task_fill(struct task *t, const struct line_start *ls, const struct owner *owner,
		   const struct cred *drop)
{
	const struct task_spec *s = &ls->spec;
	/* on_end= runs where the task runs, as whom it runs */
	if (s->on_end && !(t->on_end = end_hook_new(s->on_end, ls->launch.cwd, drop)))
		return -ENOMEM;
	t->owner = *owner;
	t->kind = s->kind;
	t->workload = s->workload;
	t->method = s->method;
	/* a limited built-in is a fresh pcfs-worker: the fork server's child
	 * could not join its cgroups before it runs (cgroup_check) */
	if (t->method == METHOD_DEFAULT)
		t->method = s->kind == TASK_THREAD ? METHOD_PTHREAD
			  : workload_is_builtin(s->workload) && !spec_limits_any(&s->lim)
			  ? METHOD_FORK : METHOD_SPAWN;
	t->timeout_ms = s->timeout_ms;
	snprintf(t->name, sizeof(t->name), "%s", s->name);
	return 0;
}

static struct task *task_new(struct engine *e, const struct line_start *ls,
			     const struct owner *owner, const struct cred *drop)
{
	struct task *t = task_alloc(e, ls->spec.line);
	if (t && line_task_fill(t, ls, owner, drop) < 0) {
		task_destroy(e, t);
		return NULL;
	}
	return t;
}

static int check_limits_locked(struct engine *e, unsigned nproc, unsigned nthread,
			       char *err, size_t errlen)
{
	if (e->stopping) {
		snprintf(err, errlen, "pcfs is shutting down");
		return -ESHUTDOWN;
	}
	if (e->st.live_processes + nproc > e->cfg.max_processes) {
		snprintf(err, errlen, "limit: %llu live processes + %u would exceed "
			 "max_processes=%u", (unsigned long long)e->st.live_processes, nproc,
			 e->cfg.max_processes);
		return -EAGAIN;
	}
	if (e->st.live_threads + nthread > e->cfg.max_threads) {
		snprintf(err, errlen, "limit: %llu live threads + %u would exceed max_threads=%u",
			 (unsigned long long)e->st.live_threads, nthread, e->cfg.max_threads);
		return -EAGAIN;
	}
	if (!make_room(e, nproc + nthread)) {
		snprintf(err, errlen, "limit: %zu tasks are running or kept; %u more would exceed "
			 "max_tasks=%u", e->ntasks, nproc + nthread, e->cfg.max_tasks);
		return -EAGAIN;
	}
	return 0;
}

static void free_lines(struct parsed *lines, size_t nlines)
{
	for (size_t i = 0; i < nlines; i++) {
		spec_free(&lines[i].ls.spec);
		launch_free(&lines[i].ls.launch);
		free(lines[i].seen);
	}
	free(lines);
}

/* Split buf into lines, parse them all and prepare what they start with
 * from the writer's context o; nothing starts unless all of it can be. */
static int parse_all(struct engine *e, const struct owner *owner, const struct origin *o,
		     const char *buf, size_t len, struct parsed **out, size_t *nout, char *err,
		     size_t errlen)
{
	struct parsed *v = NULL;
	size_t n = 0, cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		const char *line = buf + pos;
		size_t ll = end - pos;
		pos = end + 1;
		lineno++;
		size_t i = 0;
		while (i < ll && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		if (i == ll || line[i] == '#')
			continue;
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			struct parsed *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			v = nv;
		}
		char why[256];
		memset(&v[n], 0, sizeof(v[n]));
		launch_init(&v[n].ls.launch);
		struct task_spec *spec = &v[n].ls.spec;
		rc = spec_parse(line, ll, e->online_cpus, spec, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			goto fail;
		}
		n++;
		rc = chan_check_wiring(e, spec, owner, why, sizeof(why));
		cgroup_defaults(e, spec);
		if (rc == 0)
			rc = cgroup_check(e, spec, why, sizeof(why));
		if (rc == 0)
			rc = launch_prepare(o, spec, &v[n - 1].ls.launch, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			goto fail;
		}
		if (spec->kind == TASK_THREAD)
			v[n - 1].nthread = spec->count;
		else
			v[n - 1].nproc = spec->count;
		v[n - 1].count = spec->count;
		if (spec->nafter && !(v[n - 1].seen = calloc(spec->nafter, sizeof(struct dep_seen)))) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (n == 0) {
		snprintf(err, errlen, "no task line in the write");
		rc = -EINVAL;
		goto fail;
	}
	*out = v;
	*nout = n;
	return 0;
fail:
	free_lines(v, n);
	return rc;
}

int engine_run_as(struct engine *e, const struct cred *who, const struct cred **drop,
		  struct owner *owner, char *err, size_t errlen)
{
	*drop = NULL;
	*owner = e->self;
	if (!who)
		return 0;
	*owner = (struct owner){ .uid = who->uid, .gid = who->gid };
	switch (access_cred_plan(e->self.uid, who)) {
	case CRED_KEEP:
		return 0;
	case CRED_REFUSE:
		snprintf(err, errlen, "uid %u may not start work here: pcfs runs as uid %u, not "
			 "root, so it would run as uid %u", (unsigned)who->uid,
			 (unsigned)e->self.uid, (unsigned)e->self.uid);
		return -EACCES;
	case CRED_DROP:
		break;
	}
	if (who->ngroups < 0) {
		snprintf(err, errlen, "uid %u: its supplementary groups cannot be read (or are "
			 "more than %d): its work would not run with exactly its groups",
			 (unsigned)who->uid, CRED_GROUPS_MAX);
		return -EACCES;
	}
	*drop = who;
	return 0;
}

/* Start the reserved tasks of a write, in its order: each run of process
 * lines together (spawn_processes starts them several at a time), each
 * thread line in its own host. */
static void start_all(struct engine *e, const struct parsed *lines, size_t nlines,
		      struct task **tasks, size_t total, const struct cred *drop)
{
	const struct line_start **ls = malloc(total * sizeof(*ls));
	struct task **ts = malloc(total * sizeof(*ts));
	size_t k = 0, n = 0, run = 0;   /* ts[run..n) are processes not started yet */
	for (size_t i = 0; i < nlines; k += lines[i++].count) {
		const struct line_start *l = &lines[i].ls;
		if (lines[i].held)
			continue;      /* they wait: waiting.c starts them */
		if (l->spec.kind == TASK_THREAD) {
			if (n > run)
				spawn_processes(e, ls + run, ts + run, (unsigned)(n - run), drop);
			spawn_thread_tasks(e, l, tasks + k, l->spec.count, drop);
			run = n;
		} else if (ls && ts) {
			for (unsigned c = 0; c < l->spec.count; c++, n++) {
				ls[n] = l;
				ts[n] = tasks[k + c];
			}
		} else {       /* no room for the lists: one task at a time */
			const struct line_start *one[1] = { l };
			for (unsigned c = 0; c < l->spec.count; c++)
				spawn_processes(e, one, tasks + k + c, 1, drop);
		}
	}
	if (n > run)
		spawn_processes(e, ls + run, ts + run, (unsigned)(n - run), drop);
	free(ls);
	free(ts);
}

int engine_spawn(struct engine *e, const char *buf, size_t len, struct strbuf *ids_out,
		 char *err, size_t errlen)
{
	return engine_spawn_as(e, NULL, NULL, buf, len, ids_out, err, errlen);
}

static void count_refused(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->st.refused++;
	pthread_mutex_unlock(&e->lock);
}

static void count_tasks(const struct parsed *lines, size_t nlines, unsigned *nproc,
			unsigned *nthread)
{
	*nproc = *nthread = 0;
	for (size_t i = 0; i < nlines; i++) {
		*nproc += lines[i].nproc;
		*nthread += lines[i].nthread;
	}
}

/* With `lock` held: a task for each one the lines ask for, in their order,
 * into tasks.  On failure none is left (their ids are never reused). */
static int new_tasks_locked(struct engine *e, const struct parsed *lines, size_t nlines,
			    const struct owner *owner, const struct cred *drop,
			    struct task **tasks, char *err, size_t errlen)
{
	size_t k = 0;
	for (size_t i = 0; i < nlines; i++) {
		for (unsigned c = 0; c < lines[i].ls.spec.count; c++) {
			struct task *t = task_new(e, &lines[i].ls, owner, drop);
			if (!t) {
				for (size_t j = 0; j < k; j++)
					task_destroy(e, tasks[j]);
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			tasks[k++] = t;
		}
	}
	return 0;
}

/* With `lock` held: the new tasks are in the table, and live from now on. */
static void link_tasks_locked(struct engine *e, struct task **tasks, unsigned nproc,
			      unsigned nthread)
{
	size_t total = (size_t)nproc + nthread;
	for (size_t k = 0; k < total; k++) {
		task_link(e, tasks[k]);
		tasks[k]->counted = true;
	}
	e->st.started += total;
	e->st.running += total;
	e->st.live_processes += nproc;
	e->st.live_threads += nthread;
}

/* Reserve: allocate every task and check the limits before starting any, so
 * a write starts all its tasks or none.  A refusal is counted. */
/* With `lock` held: every after= names an earlier task; how each stands is
 * kept (a later make_room may forget one that ended). */
static int check_deps_locked(struct engine *e, struct parsed *lines, size_t nlines,
			     uint64_t nnew, char *err, size_t errlen)
{
	for (size_t i = 0; i < nlines; i++) {
		char why[256];
		if (!lines[i].ls.spec.nafter)
			continue;
		int rc = waiting_check_locked(e, &lines[i].ls.spec, e->next_id, nnew,
					      lines[i].seen, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %zu: %s", i + 1, why);
			return rc;
		}
	}
	return 0;
}

/* With `lock` held: the lines with after= hand their tasks to waiting.c. */
static void hold_waiting_locked(struct engine *e, struct parsed *lines, size_t nlines,
				struct task **tasks, const struct origin *o,
				const struct cred *drop)
{
	size_t k = 0;
	for (size_t i = 0; i < nlines; k += lines[i++].count) {
		if (!lines[i].ls.spec.nafter)
			continue;
		launch_commit(&lines[i].ls.spec, &lines[i].ls.launch);   /* `>` at the write */
		lines[i].held = waiting_add_locked(e, &lines[i].ls, o, drop, lines[i].seen,
						   tasks + k, lines[i].count) == 0;
		if (!lines[i].held)   /* no memory to hold it: it fails, never runs early */
			for (unsigned c = 0; c < lines[i].count; c++)
				task_failed_to_start(e, tasks[k + c], ENOMEM, "after=");
	}
}

/* Reserve: allocate every task and check the limits before starting any, so
 * a write starts all its tasks or none; a line with after= waits.  A
 * refusal is counted. */
static int reserve_tasks(struct engine *e, struct parsed *lines, size_t nlines,
			 const struct owner *owner, unsigned nproc, unsigned nthread,
			 struct task **tasks, const struct origin *o, const struct cred *drop,
			 char *err, size_t errlen)
{
	pthread_mutex_lock(&e->lock);
	int rc = check_deps_locked(e, lines, nlines, (uint64_t)nproc + nthread, err, errlen);
	if (rc == 0)
		rc = check_limits_locked(e, nproc, nthread, err, errlen);
	if (rc == 0)
		rc = new_tasks_locked(e, lines, nlines, owner, drop, tasks, err, errlen);
	if (rc == 0) {
		link_tasks_locked(e, tasks, nproc, nthread);
		hold_waiting_locked(e, lines, nlines, tasks, o, drop);
	} else {
		e->st.refused++;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* The rooms hear of tasks first..last now that they have pids (persist
 * journals them; one that ended already was told of as it ended, and may be
 * forgotten: look each up). */
static void announce_started(struct engine *e, uint64_t first, uint64_t last)
{
	pthread_mutex_lock(&e->lock);
	for (uint64_t id = first; id <= last; id++) {
		struct task *t = task_find(e, id);
		/* one that ended already was told of its end; one that waits is
		 * told of when it starts (waiting.c) */
		if (t && task_live(t) && t->state != TS_WAITING)
			task_started(e, t);
	}
	engine_notify_locked(e, OBJ_STATS, 0);
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
}

/* Start the reserved tasks, their ids put in ids_out first: a task that
 * fails at once may be forgotten at once. */
static void start_reserved(struct engine *e, const struct parsed *lines, size_t nlines,
			   struct task **tasks, size_t total, const struct cred *drop,
			   const struct owner *owner, struct strbuf *ids_out)
{
	uint64_t first = tasks[0]->id, last = tasks[total - 1]->id;
	for (size_t j = 0; j < total; j++)
		sb_printf(ids_out, "%llu\n", (unsigned long long)tasks[j]->id);
	start_all(e, lines, nlines, tasks, total, drop);
	log_add(e, LOG_LVL_INFO, "spawned %zu task%s (ids %llu-%llu, uid %u%s): %s%s", total,
		total == 1 ? "" : "s", (unsigned long long)first, (unsigned long long)last,
		(unsigned)owner->uid, drop ? ", dropped from root" : "",
		lines[0].ls.spec.line, nlines > 1 ? " ..." : "");
	announce_started(e, first, last);
}

/* Check every line's cwd= and open its files, as the owner; on a failure
 * none is left open or made.  "line N: stdout=...: reason". */
static int open_all(struct engine *e, struct parsed *lines, size_t nlines,
		    const struct cred *drop, char *err, size_t errlen)
{
	for (size_t i = 0; i < nlines; i++) {
		char why[512];
		int rc = launch_open_files(&lines[i].ls.spec, drop, e->mountpoint,
					   &lines[i].ls.launch, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "line %zu: %s", i + 1, why);
			for (size_t j = 0; j <= i; j++)
				launch_undo(&lines[j].ls.spec, drop, &lines[j].ls.launch);
			return rc;
		}
	}
	return 0;
}

int engine_spawn_as(struct engine *e, const struct cred *who, const struct origin *o,
		    const char *buf, size_t len, struct strbuf *ids_out, char *err, size_t errlen)
{
	struct parsed *lines = NULL;
	size_t nlines = 0;
	const struct cred *drop;
	struct owner owner;
	int rc = engine_run_as(e, who, &drop, &owner, err, errlen);
	if (rc == 0)
		rc = parse_all(e, &owner, o, buf, len, &lines, &nlines, err, errlen);
	if (rc == 0)
		rc = open_all(e, lines, nlines, drop, err, errlen);
	if (rc < 0) {
		free_lines(lines, nlines);
		count_refused(e);
		return rc;   /* the caller logs the refusal with its reason */
	}

	unsigned nproc, nthread;
	count_tasks(lines, nlines, &nproc, &nthread);
	size_t total = (size_t)nproc + nthread;
	struct task **tasks = calloc(total, sizeof(*tasks));
	if (!tasks) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
	} else {
		rc = reserve_tasks(e, lines, nlines, &owner, nproc, nthread, tasks, o, drop, err,
				   errlen);
	}
	for (size_t i = 0; i < nlines; i++) {
		if (rc == 0)
			launch_commit(&lines[i].ls.spec, &lines[i].ls.launch);
		else
			launch_undo(&lines[i].ls.spec, drop, &lines[i].ls.launch);
	}
	if (rc == 0)
		start_reserved(e, lines, nlines, tasks, total, drop, &owner, ids_out);
	free(tasks);
	free_lines(lines, nlines);
	return rc;
}
