/* slurm.c - the Slurm executor's poller: futures of `executor=slurm` pools
 * become Slurm jobs.
 *
 * One poller thread per daemon, started when a pool first needs it, does all
 * the talking to Slurm: sbatch for futures the pool lets through (workers=
 * bounds the jobs in flight), scancel for cancel and ctl, and one batched
 * `squeue -h -t all -j ID,ID,...` per round for the jobs in flight, with
 * `scontrol -o show job` (then `sacct -c`) for the exit code of a job that
 * ended.  The FUSE handlers never wait on Slurm: they change the pool under
 * the engine lock and kick this thread.  The engine lock is taken only to
 * copy work out and to put results in (slurm_exec.c's pool_slurm_* functions);
 * no command runs while it is held.
 *
 * Commands are children of the daemon, started with posix_spawn (the daemon is
 * multi-threaded and never forks).  The engine thread is the only reaper of
 * the daemon's children: a command is registered (under reap_lock, as a
 * spawned task is) before the reaper can see it, and the reaper hands its
 * status back through slurm_reaped() instead of treating it as a stranger.
 *
 * Each job runs a script generated in a spool directory ([state] dir/slurm,
 * else /tmp/pcfs-slurm.PID: it must be visible to the compute nodes, so on a
 * real cluster [state] dir names a shared filesystem): built-ins run
 * `pcfs-worker run LINE`, exec/sh their command.  stdout and stderr go to
 * files there, read into the future when the job ends, then removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pools_int.h"
#include "exec/exec.h"

extern char **environ;

#define CMD_TIMEOUT_MS 60000        /* a Slurm command that hangs longer is killed */
#define CMD_OUT_MAX (4 << 20)       /* squeue text kept per call */
#define SQUEUE_CHUNK 500            /* job ids per squeue call */
#define MISSES_MAX 3                /* rounds a job may be missing before it is failed */
#define BACKOFF_MAX_FACTOR 8        /* idle rounds back off to 8 x poll_interval */

struct slurm {
	pthread_t thread;
	bool running;                  /* thread started and not yet joined */
	pthread_mutex_t mu;            /* everything below; taken after e->lock, never before */
	pthread_cond_t cv;
	bool kicked, stop;
	/* the command running now (one at a time: only the poller runs them) */
	pid_t child;
	bool child_done;
	int child_status;
	/* poller-thread only */
	char spool[512];               /* the spool root (at most ~320 bytes) */
	bool controller_down;          /* said once in /log, until it is back */
	struct miss { uint64_t job; unsigned n; } *misses;
	size_t nmisses;
};

struct cmd_result {
	int status;                    /* wait status; -1 if it could not run */
	int spawn_err;                 /* errno of posix_spawn, 0 if it ran */
	struct strbuf out, err;
};

static void cmd_result_free(struct cmd_result *r)
{
	sb_free(&r->out);
	sb_free(&r->err);
}

static bool cmd_ok(const struct cmd_result *r)
{
	return r->spawn_err == 0 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* ---- running one command ---------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read both pipes to EOF (or the deadline). */
static void drain_pipes(int fds[2], struct strbuf *bufs[2], int64_t deadline)
{
	char chunk[4096];
	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd pf[2] = { { .fd = fds[0], .events = POLLIN },
					{ .fd = fds[1], .events = POLLIN } };
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return;
		if (poll(pf, 2, (int)left) < 0 && errno != EINTR)
			return;
		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i], chunk, sizeof(chunk));
			if (n > 0 && bufs[i]->len < CMD_OUT_MAX)
				sb_add(bufs[i], chunk, (size_t)n);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
}

/* posix_spawnp argv (on the daemon's PATH) with stdin /dev/null, stdout
 * `out` and stderr `err`, environment envp (NULL: the daemon's).  The daemon
 * blocks SIGCHLD and libfuse ignores SIGPIPE: the command gets neither.
 * Returns 0 or an errno. */
static int spawn_cmd(struct engine *e, char *const argv[], char *const envp[], int out, int err,
		     pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, e->devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/* Start argv as `drop` (NULL: as the daemon) and make it the poller's child.
 * It is registered before the reaper can look: the reaper holds reap_lock
 * for writing.  Returns 0 or an errno. */
static int start_cmd(struct engine *e, char *const argv[], char *const envp[],
		     const struct cred *drop, int out, int err, pid_t *pid)
{
	struct slurm *s = e->pools->slurm;
	int rc;

	pthread_rwlock_rdlock(&e->reap_lock);
	if (drop) {   /* posix_spawn cannot change credentials */
		*pid = spawn_cmd_as(e, argv, envp, (int[3]){ e->devnull, out, err }, drop);
		rc = *pid < 0 ? (int)-*pid : 0;
	} else {
		rc = spawn_cmd(e, argv, envp, out, err, pid);
	}
	if (rc == 0) {
		pthread_mutex_lock(&s->mu);
		s->child = *pid;
		s->child_done = false;
		pthread_mutex_unlock(&s->mu);
	}
	pthread_rwlock_unlock(&e->reap_lock);
	return rc;
}

/* The command's wait status, once the reaper hands it over (slurm_reaped).
 * Past the deadline it is killed, once. */
static int wait_cmd(struct engine *e, const char *name, pid_t pid, int64_t deadline)
{
	struct slurm *s = e->pools->slurm;

	pthread_mutex_lock(&s->mu);
	while (!s->child_done) {
		if (mono_ms() >= deadline) {
			/* hung: not reaped yet, so the pid is still this child's */
			kill(pid, SIGKILL);
			deadline = INT64_MAX;
			log_add(e, LOG_LVL_ERROR, "slurm: %s took over %d s; killed", name,
				CMD_TIMEOUT_MS / 1000);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	int status = s->child_status;
	s->child = 0;
	pthread_mutex_unlock(&s->mu);
	return status;
}

static void close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

/* Run argv (PATH search), capture stdout and stderr, wait for it; as `drop`
 * if not NULL (a pool owner's sbatch), with envp (NULL: the daemon's
 * environment).  Runs on the poller thread with no engine lock held. */
static void run_cmd_as(struct engine *e, char *const argv[], char *const envp[],
		       const struct cred *drop, struct cmd_result *r)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	pid_t pid = 0;

	*r = (struct cmd_result){ .status = -1, .out = STRBUF_INIT, .err = STRBUF_INIT };
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		r->spawn_err = errno;
	} else {
		r->spawn_err = start_cmd(e, argv, envp, drop, po[1], pe[1], &pid);
		close(po[1]);   /* the child's copies are its own: EOF once it ends */
		close(pe[1]);
		po[1] = pe[1] = -1;
	}
	if (r->spawn_err == 0) {
		int fds[2] = { po[0], pe[0] };
		struct strbuf *bufs[2] = { &r->out, &r->err };
		int64_t deadline = mono_ms() + CMD_TIMEOUT_MS;
		drain_pipes(fds, bufs, deadline);
		po[0] = fds[0];
		pe[0] = fds[1];
		r->status = wait_cmd(e, argv[0], pid, deadline);
	}
	close_pipe(po);
	close_pipe(pe);
	sb_cstr(&r->out);
	sb_cstr(&r->err);
}

static void run_cmd(struct engine *e, char *const argv[], struct cmd_result *r)
{
	run_cmd_as(e, argv, NULL, NULL, r);
}

bool slurm_reaped(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	struct slurm *s = e->pools->slurm;
	if (!s)
		return false;
	pthread_mutex_lock(&s->mu);
	bool mine = s->child == pid && !s->child_done;
	if (mine && !WIFSTOPPED(status) && !WIFCONTINUED(status)) {
		s->child_done = true;
		s->child_status = status;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return mine;
}

/* One line of a command's stderr (or how it ended), for error texts. */
static void cmd_why(const struct cmd_result *r, const char *what, char *buf, size_t len)
{
	if (r->spawn_err) {
		snprintf(buf, len, "%s: %s%s", what, strerror(r->spawn_err),
			 r->spawn_err == ENOENT ? " (is Slurm installed? slurm-client)" : "");
		return;
	}
	const char *t = r->err.len ? r->err.buf : r->out.len ? r->out.buf : "";
	/* sbatch says "sbatch: error: <what>" lines; keep the last, most specific */
	const char *last = t;
	for (const char *p = t; (p = strstr(p, "error: ")); p += 7)
		last = p + 7;
	size_t n = strcspn(last, "\n");
	if (n)
		snprintf(buf, len, "%.*s", (int)n, last);
	else if (WIFSIGNALED(r->status))
		snprintf(buf, len, "%s killed by signal %d", what, WTERMSIG(r->status));
	else
		snprintf(buf, len, "%s exited with status %d", what,
			 WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1);
}

bool slurm_available(char *err, size_t errlen)
{
	const char *path = getenv("PATH");
	char buf[4096];
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		if (n && n < sizeof(buf) - 8) {
			snprintf(buf, sizeof(buf), "%.*s/sbatch", (int)n, p);
			if (access(buf, X_OK) == 0)
				return true;
		}
		p += n + (p[n] == ':');
	}
	snprintf(err, errlen, "Slurm is not installed here: no sbatch on PATH (install slurm-client, "
		 "or run pcfs on the cluster's login node)");
	return false;
}

/* ---- submitting ---------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%.1000s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static void spool_path(const struct slurm *s, const struct slurm_submit *sub, const char *ext,
		       char *buf, size_t len)
{
	snprintf(buf, len, "%.400s/%s/%" PRIu64 ".%s", s->spool, sub->pool_name, sub->fut, ext);
}

/* The job script: the environment a pool task sees, then the task. */
static int write_script(struct engine *e, const struct slurm_submit *sub, const char *path,
			struct task_spec *spec, char *err, size_t errlen)
{
	struct strbuf b = STRBUF_INIT;
	char num[32];
	sb_printf(&b, "#!/bin/sh\n# pcfs pool %s, future %" PRIu64 "\n", sub->pool_name, sub->fut);
	sb_printf(&b, "export PCFS_ID=%" PRIu64 " PCFS_SLOT=0 PCFS_POOL=", sub->fut);
	slurm_sh_quote(&b, sub->pool_name);
	sb_adds(&b, " PCFS_MOUNT=");
	slurm_sh_quote(&b, e->mountpoint);
	snprintf(num, sizeof(num), "%lld", (long long)e->cfg.default_time_ms);
	sb_printf(&b, " PCFS_DEFAULT_TIME_MS=%s\n", num);
	sb_adds(&b, "exec ");
	if (spec->workload == WL_SH) {
		sb_adds(&b, "/bin/sh -c ");
		slurm_sh_quote(&b, spec->argv[0]);
	} else if (spec->workload == WL_EXEC) {
		for (size_t i = 0; i < spec->argc; i++) {
			slurm_sh_quote(&b, spec->argv[i]);
			sb_addc(&b, ' ');
		}
	} else {
		/* built-ins: pcfs' own worker runs the line on the node */
		slurm_sh_quote(&b, e->worker_path);
		sb_adds(&b, " run ");
		slurm_sh_quote(&b, sub->line);
	}
	sb_addc(&b, '\n');
	int rc = sb_error(&b);
	int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (!rc && (fd < 0 || write(fd, b.buf, b.len) != (ssize_t)b.len))
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		snprintf(err, errlen, "job script %.300s: %s", path, strerror(-rc));
	sb_free(&b);
	return rc;
}

/* A pool's spool directory is its owner's (uid, gid): their sbatch reads the
 * script there and their job writes its output there; the root above it lets
 * them through, not look in. */
static int make_spool_dir(const struct slurm *s, const struct slurm_submit *sub, uid_t uid,
			  gid_t gid, char *why, size_t whylen)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%.400s/%s", s->spool, sub->pool_name);
	int rc = mkdir_p(dir);
	if (rc == 0 && sub->drop && chmod(s->spool, 0711) < 0)
		rc = -errno;
	if (rc == 0 && chown(dir, uid, gid) < 0)
		rc = -errno;
	if (rc < 0)
		snprintf(why, whylen, "spool directory %.300s: %s", dir, strerror(-rc));
	return rc;
}

/* Where one future's job keeps its script and its output, in the spool. */
struct job_files {
	char script[1024], out[1024], err[1024];
};

/* The job's script written and given to its owner, no output left from a
 * job before it. */
static int write_job_files(struct engine *e, const struct slurm_submit *sub,
			   struct task_spec *spec, uid_t uid, gid_t gid, struct job_files *f,
			   char *why, size_t whylen)
{
	const struct slurm *s = e->pools->slurm;
	spool_path(s, sub, "sh", f->script, sizeof(f->script));
	spool_path(s, sub, "out", f->out, sizeof(f->out));
	spool_path(s, sub, "err", f->err, sizeof(f->err));
	unlink(f->out);
	unlink(f->err);
	if (write_script(e, sub, f->script, spec, why, whylen) < 0)
		return -1;
	if (chown(f->script, uid, gid) < 0) {
		snprintf(why, whylen, "job script %.300s: %s", f->script, strerror(errno));
		return -1;
	}
	return 0;
}

/* sbatch's command line, and the options it points into. */
struct sbatch_line {
	char *argv[24];
	char name[96], partition[80], account[80], mem[48], cpus[48], tlim[48], chdir_opt[4200];
};

static void sbatch_line(const struct slurm_submit *sub, const struct task_spec *spec,
			struct job_files *f, struct sbatch_line *l)
{
	const struct slurm_opts *o = &sub->opts;
	char **argv = l->argv;
	int n = 0;
	snprintf(l->name, sizeof(l->name), "pcfs-%s-%" PRIu64, sub->pool_name, sub->fut);
	argv[n++] = "sbatch";
	argv[n++] = "--parsable";
	argv[n++] = "--job-name";
	argv[n++] = l->name;
	argv[n++] = "-o";
	argv[n++] = f->out;
	argv[n++] = "-e";
	argv[n++] = f->err;
	if (o->partition[0]) {
		snprintf(l->partition, sizeof(l->partition), "--partition=%s", o->partition);
		argv[n++] = l->partition;
	}
	if (o->account[0]) {
		snprintf(l->account, sizeof(l->account), "--account=%s", o->account);
		argv[n++] = l->account;
	}
	if (o->mem_mib) {
		snprintf(l->mem, sizeof(l->mem), "--mem=%" PRIu64 "M", o->mem_mib);
		argv[n++] = l->mem;
	}
	if (o->cpus) {
		snprintf(l->cpus, sizeof(l->cpus), "--cpus-per-task=%u", o->cpus);
		argv[n++] = l->cpus;
	}
	if (o->time_min) {
		snprintf(l->tlim, sizeof(l->tlim), "--time=%u", o->time_min);
		argv[n++] = l->tlim;
	}
	if (sub->cwd) {   /* where the line was written, or its cwd= */
		snprintf(l->chdir_opt, sizeof(l->chdir_opt), "--chdir=%s", sub->cwd);
		argv[n++] = l->chdir_opt;
	}
	argv[n++] = f->script;
	argv[n] = NULL;
}

/* sbatch's environment, which it passes on to the job (--export=ALL): the
 * future's (its writer's and its env=), plus the daemon's SLURM_ settings
 * (SLURM_CONF...) it does not set itself, for sbatch to find the cluster.
 * The vector borrows its strings; NULL (out of memory): the daemon's. */
static char **sbatch_env(const struct slurm_submit *sub)
{
	size_t n = 0, cap = 1;
	for (const char *kv = sub->env; kv && kv < sub->env + sub->envlen; kv += strlen(kv) + 1)
		cap++;
	for (char **p = environ; *p; p++)
		cap++;
	char **v = malloc(cap * sizeof(*v));
	if (!v)
		return NULL;
	for (const char *kv = sub->env; kv && kv < sub->env + sub->envlen; kv += strlen(kv) + 1)
		v[n++] = (char *)kv;
	size_t own = n;
	for (char **p = environ; *p; p++) {
		size_t klen = strcspn(*p, "=");
		bool have = false;
		for (size_t i = 0; i < own && !have; i++)
			have = strncmp(v[i], *p, klen + 1) == 0;
		if (!have && strncmp(*p, "SLURM_", 6) == 0)
			v[n++] = *p;
	}
	v[n] = NULL;
	return v;
}

/* Run sbatch as the pool's owner; returns as submit_one does. */
static int run_sbatch(struct engine *e, const struct slurm_submit *sub, char *const argv[],
		      uint64_t *job, char *why, size_t whylen)
{
	struct cmd_result r;
	int res;
	char **envp = sbatch_env(sub);
	run_cmd_as(e, argv, envp, sub->drop ? &sub->cred : NULL, &r);
	free(envp);
	if (cmd_ok(&r) && slurm_parse_sbatch(r.out.buf, job) == 0) {
		res = 1;
	} else {
		cmd_why(&r, "sbatch", why, whylen);
		res = r.spawn_err == 0 && slurm_error_transient(r.err.buf) ? -1 : 0;
	}
	cmd_result_free(&r);
	return res;
}

/* sbatch one future.  Returns 1 with *job, 0 if refused (why), -1 if Slurm
 * could not be reached (why; try again later). */
static int submit_one(struct engine *e, const struct slurm_submit *sub, uint64_t *job,
		      char *why, size_t whylen)
{
	struct task_spec spec;
	struct job_files f;
	struct sbatch_line l;
	if (spec_parse(sub->line, strlen(sub->line), e->online_cpus, &spec, why, whylen) < 0)
		return 0;
	uid_t uid = sub->drop ? sub->cred.uid : geteuid();
	gid_t gid = sub->drop ? sub->cred.gid : getegid();
	if (make_spool_dir(e->pools->slurm, sub, uid, gid, why, whylen) < 0 ||
	    write_job_files(e, sub, &spec, uid, gid, &f, why, whylen) < 0) {
		spec_free(&spec);
		return 0;
	}
	sbatch_line(sub, &spec, &f, &l);
	spec_free(&spec);
	return run_sbatch(e, sub, l.argv, job, why, whylen);
}

static void submit_all(struct engine *e)
{
	struct slurm *s = e->pools->slurm;
	struct slurm_submit *subs;
	pthread_mutex_lock(&e->lock);
	size_t n = pool_slurm_take(e, &subs);
	pthread_mutex_unlock(&e->lock);
	bool down = false;
	for (size_t i = 0; i < n; i++) {
		char why[512] = "";
		uint64_t job = 0;
		int res = down ? -1 : submit_one(e, &subs[i], &job, why, sizeof(why));
		if (res < 0 && !down) {
			down = true;   /* the rest wait too, without a round trip each */
			if (!s->controller_down)
				log_add(e, LOG_LVL_WARN, "slurm: cannot submit (%s); futures stay "
					"pending and are submitted when the controller answers", why);
			s->controller_down = true;
		} else if (res >= 0 && s->controller_down) {
			s->controller_down = false;
			log_add(e, LOG_LVL_INFO, "slurm: the controller answers again");
		}
		/* a future cancelled while sbatch ran gets its scancel with the signals */
		pthread_mutex_lock(&e->lock);
		if (res == 1)
			pool_slurm_submitted(e, subs[i].pool, subs[i].fut, job);
		else
			pool_slurm_unsubmitted(e, subs[i].pool, subs[i].fut, res < 0,
					       why[0] ? why : "Slurm is unreachable");
		pthread_mutex_unlock(&e->lock);
		engine_flush_notify(e);
		if (res == 1)
			log_add(e, LOG_LVL_DEBUG, "pool %s: future %" PRIu64 " is slurm job %" PRIu64,
				subs[i].pool_name, subs[i].fut, job);
		free(subs[i].line);
		free(subs[i].cwd);
		free(subs[i].env);
	}
	free(subs);
}

/* ---- watching -------------------------------------------------------------------------- */

static void send_signals(struct engine *e, const struct slurm_watch *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!w[i].signal)
			continue;
		char job[32], sig[32];
		snprintf(job, sizeof(job), "%" PRIu64, w[i].job);
		snprintf(sig, sizeof(sig), "--signal=%d", w[i].signal);
		/* cancel: a plain scancel (the job ends CANCELLED).  A ctl signal
		 * goes to every step, the batch script included, so the job's
		 * exit code names it, except KILL: Slurm turns `--full
		 * --signal=KILL` into a cancel (0:15), so KILL goes to the batch
		 * script alone (the job ends FAILED 0:9 and slurmd ends the rest
		 * of its processes with it). */
		char *cancel_argv[] = { "scancel", job, NULL };
		char *sig_argv[] = { "scancel", w[i].signal == SIGKILL ? "--batch" : "--full", sig,
				     job, NULL };
		struct cmd_result r;
		run_cmd(e, w[i].signal < 0 ? cancel_argv : sig_argv, &r);
		if (cmd_ok(&r)) {
			pthread_mutex_lock(&e->lock);
			pool_slurm_signalled(e, w[i].pool, w[i].fut, w[i].signal);
			pthread_mutex_unlock(&e->lock);
		} else {
			char why[256];
			cmd_why(&r, "scancel", why, sizeof(why));
			log_add(e, LOG_LVL_WARN, "slurm: scancel of job %s: %s (tried again)", job, why);
		}
		cmd_result_free(&r);
	}
}

/* Read and remove a spool file of the job (what the future keeps). */
static char *slurp_spool(const char *path, uint64_t max, size_t *len)
{
	struct strbuf b = STRBUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	ssize_t n;
	while (fd >= 0 && (n = read(fd, chunk, sizeof(chunk))) > 0)
		if (b.len < max)
			sb_add(&b, chunk, (size_t)n);
	if (fd >= 0)
		close(fd);
	unlink(path);
	*len = b.len;
	return sb_error(&b) ? (sb_free(&b), NULL) : sb_steal(&b);
}

/* The exit code of an ended job (and its state, if squeue no longer lists
 * it): scontrol while it still knows the job (MinJobAge), else the
 * completion log (sacct -c).  false if neither knows it. */
static bool final_details(struct engine *e, uint64_t id, struct slurm_job *j)
{
	char job[32];
	snprintf(job, sizeof(job), "%" PRIu64, id);
	char *sc[] = { "scontrol", "-o", "show", "job", job, NULL };
	char *sa[] = { "sacct", "-c", "-n", "-P", "-j", job, "-o", "JobID,State,ExitCode", NULL };
	struct cmd_result r;
	struct slurm_job got;
	run_cmd(e, sc, &r);
	bool ok = cmd_ok(&r) && slurm_parse_scontrol(r.out.buf, &got) == 0 && got.id == id;
	cmd_result_free(&r);
	if (!ok) {
		run_cmd(e, sa, &r);
		ok = cmd_ok(&r) && slurm_parse_sacct(r.out.buf, id, &got) == 0;
		cmd_result_free(&r);
	}
	if (!ok)
		return false;
	if (!j->state[0] || slurm_fate_final(slurm_state_fate(got.state)))
		memcpy(j->state, got.state, sizeof(j->state));
	if (!j->reason[0] || !strcmp(j->reason, "None"))
		memcpy(j->reason, got.reason, sizeof(j->reason));
	j->have_exit = got.have_exit;
	j->exitcode = got.exitcode;
	return true;
}

static unsigned *miss_count(struct slurm *s, uint64_t job)
{
	for (size_t i = 0; i < s->nmisses; i++)
		if (s->misses[i].job == job)
			return &s->misses[i].n;
	struct miss *v = realloc(s->misses, (s->nmisses + 1) * sizeof(*v));
	if (!v)
		return NULL;
	s->misses = v;
	s->misses[s->nmisses] = (struct miss){ .job = job };
	return &s->misses[s->nmisses++].n;
}

static void miss_forget(struct slurm *s, uint64_t job)
{
	for (size_t i = 0; i < s->nmisses; i++)
		if (s->misses[i].job == job) {
			s->misses[i] = s->misses[--s->nmisses];
			return;
		}
}

/* A job ended: read its output, hand everything to its future. */
static void job_ended(struct engine *e, const struct slurm_watch *w, const struct slurm_job *j)
{
	struct slurm *s = e->pools->slurm;
	char path[1024];
	size_t olen = 0, elen = 0;
	struct slurm_submit sub = { .fut = w->fut };
	memcpy(sub.pool_name, w->pool_name, sizeof(sub.pool_name));
	spool_path(s, &sub, "out", path, sizeof(path));
	char *out = slurp_spool(path, e->cfg.output_max, &olen);
	spool_path(s, &sub, "err", path, sizeof(path));
	char *err = slurp_spool(path, e->cfg.output_max, &elen);
	spool_path(s, &sub, "sh", path, sizeof(path));
	unlink(path);
	pthread_mutex_lock(&e->lock);
	pool_slurm_update(e, w->pool, w->fut, j, out ? out : "", out ? olen : 0, err ? err : "",
			  err ? elen : 0);
	pthread_mutex_unlock(&e->lock);
	engine_flush_notify(e);
	free(out);
	free(err);
	miss_forget(s, j->id);
}

/* Look at one chunk of jobs in flight with one squeue.  Returns whether any
 * future changed. */
static bool watch_chunk(struct engine *e, const struct slurm_watch *w, size_t n)
{
	struct slurm *s = e->pools->slurm;
	struct strbuf ids = STRBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sb_printf(&ids, "%s%" PRIu64, i ? "," : "", w[i].job);
	if (sb_error(&ids)) {
		sb_free(&ids);
		return false;
	}
	char *argv[] = { "squeue", "-h", "-t", "all", "-j", ids.buf, "-o", "%i|%T|%r", NULL };
	struct cmd_result r;
	run_cmd(e, argv, &r);
	sb_free(&ids);
	/* squeue fails as a whole if one id is unknown to it (ended longer ago
	 * than MinJobAge): then every job is asked about one by one */
	bool listed = cmd_ok(&r);
	struct slurm_job *jobs = calloc(n, sizeof(*jobs));
	size_t nj = listed && jobs ? slurm_parse_squeue(r.out.buf, jobs, n) : 0;
	bool down = !listed && slurm_error_transient(r.err.buf);
	cmd_result_free(&r);
	if (down || !jobs) {
		free(jobs);
		if (down && !s->controller_down) {
			s->controller_down = true;
			log_add(e, LOG_LVL_WARN, "slurm: the controller does not answer squeue; "
				"jobs are watched again when it does");
		}
		return false;
	}
	bool changed = false;
	for (size_t i = 0; i < n; i++) {
		struct slurm_job j = { .id = w[i].job };
		for (size_t k = 0; k < nj; k++)
			if (jobs[k].id == w[i].job)
				j = jobs[k];
		enum slurm_fate fate = j.state[0] ? slurm_state_fate(j.state) : SF_UNKNOWN;
		if (fate == SF_PENDING || fate == SF_RUNNING) {
			miss_forget(s, j.id);
			pthread_mutex_lock(&e->lock);
			pool_slurm_update(e, w[i].pool, w[i].fut, &j, NULL, 0, NULL, 0);
			pthread_mutex_unlock(&e->lock);
			engine_flush_notify(e);
			changed |= fate == SF_RUNNING && !w[i].running;
			continue;
		}
		/* ended, or not listed: the exit code (or the state) from scontrol/sacct */
		if (!final_details(e, j.id, &j) && !j.state[0]) {
			unsigned *m = miss_count(s, j.id);
			if (m && ++*m < MISSES_MAX)
				continue;
			/* gone from squeue, scontrol and sacct -c alike */
			snprintf(j.state, sizeof(j.state), "FAILED");
			snprintf(j.reason, sizeof(j.reason), "job vanished from Slurm");
		}
		if (!slurm_fate_final(slurm_state_fate(j.state)))
			continue;
		job_ended(e, &w[i], &j);
		changed = true;
	}
	free(jobs);
	return changed;
}

/* ---- the poller thread ------------------------------------------------------------------- */

/* One round: submit, signal, look.  Returns whether anything moved and
 * whether jobs are still in flight. */
static bool poll_round(struct engine *e, bool *busy)
{
	submit_all(e);
	struct slurm_watch *w;
	pthread_mutex_lock(&e->lock);
	size_t n = pool_slurm_watch(e, &w);
	pthread_mutex_unlock(&e->lock);
	send_signals(e, w, n);
	bool changed = false;
	for (size_t i = 0; i < n; i += SQUEUE_CHUNK)
		changed |= watch_chunk(e, w + i, n - i < SQUEUE_CHUNK ? n - i : SQUEUE_CHUNK);
	free(w);
	*busy = n > 0 || e->pools->slurm->controller_down;
	return changed;
}

static void *poller(void *arg)
{
	struct engine *e = arg;
	struct slurm *s = e->pools->slurm;
	int64_t base = e->cfg.slurm_poll_ms, interval = base;
	bool busy = false;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		if (!s->kicked && !s->stop) {
			/* nothing in flight: sleep until a submit kicks; else poll,
			 * backing off while nothing changes */
			if (busy) {
				struct timespec ts = ts_in_ms(CLOCK_REALTIME, interval);
				pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			} else {
				pthread_cond_wait(&s->cv, &s->mu);
			}
		}
		bool kicked = s->kicked, stop = s->stop;
		s->kicked = false;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		bool changed = poll_round(e, &busy);
		if (changed || kicked)
			interval = base;
		else if (interval < base * BACKOFF_MAX_FACTOR)
			interval *= 2;
	}
	return NULL;
}

static void spool_root(const struct engine *e, char *buf, size_t len)
{
	if (e->cfg.state_path[0])
		snprintf(buf, len, "%.300s/slurm", e->cfg.state_path);
	else
		snprintf(buf, len, "/tmp/pcfs-slurm.%d", (int)getpid());
}

int slurm_kick(struct engine *e)
{
	struct slurm *s = e->pools->slurm;
	if (!s) {
		/* the first Slurm pool: the poller starts (under e->lock, which
		 * every caller holds, so it starts once) */
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		pthread_mutex_init(&s->mu, NULL);
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_cond_init(&s->cv, &ca);
		pthread_condattr_destroy(&ca);
		spool_root(e, s->spool, sizeof(s->spool));
		e->pools->slurm = s;
		s->running = true;
		int rc = pthread_create(&s->thread, NULL, poller, e);
		if (rc) {
			e->pools->slurm = NULL;
			pthread_cond_destroy(&s->cv);
			pthread_mutex_destroy(&s->mu);
			free(s);
			log_add(e, LOG_LVL_ERROR, "slurm: cannot start the poller thread: %s",
				strerror(rc));
			return -rc;
		}
	}
	pthread_mutex_lock(&s->mu);
	s->kicked = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

void slurm_stop(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	struct slurm *s = e->pools->slurm;
	pthread_mutex_unlock(&e->lock);
	if (!s || !s->running)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->running = false;
	if (e->cfg.unmount_policy == UNMOUNT_LEAVE)
		return;
	/* Nothing would watch them after this: end the jobs in flight (their
	 * futures go with the mount).  One scancel for all of them. */
	struct slurm_watch *w;
	pthread_mutex_lock(&e->lock);
	size_t n = pool_slurm_watch(e, &w);
	pthread_mutex_unlock(&e->lock);
	if (n) {
		char **argv = calloc(n + 2, sizeof(*argv));
		char (*ids)[24] = calloc(n, sizeof(*ids));
		if (argv && ids) {
			argv[0] = "scancel";
			for (size_t i = 0; i < n; i++) {
				snprintf(ids[i], sizeof(ids[i]), "%" PRIu64, w[i].job);
				argv[i + 1] = ids[i];
			}
			struct cmd_result r;
			run_cmd(e, argv, &r);
			log_add(e, LOG_LVL_INFO, "unmount: scancel of %zu slurm jobs in flight: %s", n,
				cmd_ok(&r) ? "done" : "failed");
			cmd_result_free(&r);
		}
		free(argv);
		free(ids);
	}
	free(w);
}

void slurm_free(struct engine *e)
{
	struct slurm *s = e->pools->slurm;
	if (!s)
		return;
	slurm_stop(e);
	/* the spool: only empty directories go (a left job may still write) */
	DIR *d = opendir(s->spool);
	for (struct dirent *de; d && (de = readdir(d));) {
		char dir[1024];
		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%.400s/%.255s", s->spool, de->d_name);
		rmdir(dir);
	}
	if (d)
		closedir(d);
	rmdir(s->spool);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->misses);
	free(s);
	e->pools->slurm = NULL;
}
