/* hooks.c - on_end= hooks: a shell command run once a task or future has
 * ended, like pueue's callback and task-spooler's TS_ONFINISH.
 *
 * The engine never waits for one.  Its end only queues a job (everything
 * copied: the task may be forgotten at once); one thread of this room's
 * starts the jobs in order, at most [tasks] on_end_max at a time, reads
 * their output, and kills (SIGKILL, the whole process group) one still
 * running after [tasks] on_end_timeout.  A hook is a child of the daemon but
 * no task: the reaper hands its status here (claim_child), and it never
 * makes an event, a joblog line or another hook.  Its output (the first
 * HOOK_OUT_KEEP bytes) and how it ended go to /log.
 *
 * It runs `/bin/sh -c CMD` in its task's directory, as its task's owner
 * (the credential drop of a root daemon), stdin /dev/null, with the
 * daemon's environment and PCFS_ID, PCFS_STATE, PCFS_EXITCODE (PCFS_POOL for
 * a future).  At most HOOKS_QUEUE_MAX wait; one more is not run (logged).
 * At unmount, those waiting are not run and those running are killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "notice_int.h"
#include "exec/exec.h"

#define HOOKS_QUEUE_MAX 4096
#define HOOK_OUT_KEEP 512

extern char **environ;

struct hook_run {
	struct hook_run *next;
	struct hook_job *job;
	pid_t pid;
	int fd;                        /* its stdout and stderr, -1 at EOF */
	char out[HOOK_OUT_KEEP];
	size_t nout;
	uint64_t dropped;              /* output beyond HOOK_OUT_KEEP */
	struct timespec deadline;      /* CLOCK_MONOTONIC */
	bool reaped, killed;
	int status;
};

/* What to run is a copy of the task's or pool's end_hook (the core's). */
struct hook_job *hook_job_new(const char *cmd, const char *cwd, const struct cred *drop)
{
	struct hook_job *j = calloc(1, sizeof(*j));
	if (j && !(j->hook = end_hook_new(cmd, cwd, drop))) {
		free(j);
		j = NULL;
	}
	return j;
}

void hook_job_setenv(struct hook_job *j, const char *key, const char *val)
{
	if (j->nenv < sizeof(j->env) / sizeof(j->env[0]))
		snprintf(j->env[j->nenv++], sizeof(j->env[0]), "%s=%s", key, val);
}

void hook_job_free(struct hook_job *j)
{
	if (!j)
		return;
	end_hook_free(j->hook);
	free(j);
}

static void wake(struct hooks *h)
{
	uint64_t one = 1;
	if (write(h->wakefd, &one, sizeof(one)) < 0)
		return;   /* the counter is full: the thread is awake anyway */
}

void hooks_queue(struct engine *e, struct hook_job *job)
{
	struct hooks *h = &e->notice->hooks;
	pthread_mutex_lock(&h->mu);
	bool refuse = h->quit || h->queued >= HOOKS_QUEUE_MAX;
	if (!refuse) {
		if (h->qtail)
			h->qtail->next = job;
		else
			h->qhead = job;
		h->qtail = job;
		h->queued++;
	}
	bool quit = h->quit;
	pthread_mutex_unlock(&h->mu);
	if (!refuse)
		return wake(h);
	log_add(e, LOG_LVL_WARN, "on_end of %s not run: %s", job->what,
		quit ? "pcfs is shutting down" : "4096 hooks wait already");
	hook_job_free(job);
}

/* The daemon's environment without its PCFS_ variables, then the job's. */
static char **hook_env(struct hook_job *j)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **v = malloc((n + j->nenv + 1) * sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PCFS_", 5) != 0)
			v[k++] = environ[i];
	for (unsigned i = 0; i < j->nenv; i++)
		v[k++] = j->env[i];
	v[k] = NULL;
	return v;
}

/* Spawn j's shell; its run is listed before reap_lock is let go, so the
 * reaper cannot collect it before it is known here.  0, or -errno. */
static int hook_spawn(struct engine *e, struct hooks *h, struct hook_job *j,
		      struct hook_run *run, int p[2])
{
	char *argv[] = { "/bin/sh", "-c", j->hook->cmd, NULL };
	char **envp = hook_env(j);
	if (!envp)
		return -ENOMEM;
	pthread_rwlock_rdlock(&e->reap_lock);
	pid_t pid = spawn_cmd_in(e, argv, envp, (int[3]){ e->devnull, p[1], p[1] },
				 j->hook->drop ? &j->hook->cred : NULL, j->hook->cwd);
	if (pid > 0) {
		run->pid = pid;
		pthread_mutex_lock(&h->mu);
		run->next = h->runs;
		h->runs = run;
		pthread_mutex_unlock(&h->mu);
	}
	pthread_rwlock_unlock(&e->reap_lock);
	free(envp);
	return pid > 0 ? 0 : (int)pid;
}

/* Start job j (taken off the queue, counted as running). */
static void hook_start(struct engine *e, struct hooks *h, struct hook_job *j)
{
	struct hook_run *run = calloc(1, sizeof(*run));
	int p[2] = { -1, -1 };
	int rc = run && pipe2(p, O_CLOEXEC) == 0 ? 0 : -ENOMEM;
	if (rc == 0) {
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		run->job = j;
		run->fd = p[0];
		run->deadline = ts_in_ms(CLOCK_MONOTONIC, e->cfg.on_end_timeout_ms);
		rc = hook_spawn(e, h, j, run, p);
		close(p[1]);
	}
	if (rc == 0)
		return;
	log_add(e, LOG_LVL_WARN, "on_end of %s not run: %s (in %s)", j->what, strerror(-rc),
		j->hook->cwd ? j->hook->cwd : "pcfs's directory");
	if (p[0] >= 0)
		close(p[0]);
	free(run);
	hook_job_free(j);
	pthread_mutex_lock(&h->mu);
	h->running--;
	pthread_mutex_unlock(&h->mu);
}

/* Start what waits, while fewer than on_end_max run. */
static void start_queued(struct engine *e, struct hooks *h)
{
	for (;;) {
		pthread_mutex_lock(&h->mu);
		struct hook_job *j = NULL;
		if (!h->quit && h->qhead && h->running < e->cfg.on_end_max) {
			j = h->qhead;
			h->qhead = j->next;
			if (!h->qhead)
				h->qtail = NULL;
			h->queued--;
			h->running++;
		}
		pthread_mutex_unlock(&h->mu);
		if (!j)
			return;
		j->next = NULL;
		hook_start(e, h, j);
	}
}

/* Read what the hook wrote; keep the first HOOK_OUT_KEEP bytes. */
static void read_output(struct hook_run *r)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(r->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(r->fd);
			r->fd = -1;
			return;
		}
		size_t keep = HOOK_OUT_KEEP - r->nout < (size_t)n ? HOOK_OUT_KEEP - r->nout : (size_t)n;
		memcpy(r->out + r->nout, buf, keep);
		r->nout += keep;
		r->dropped += (uint64_t)n - keep;
	}
}

/* How it ended, and what it said, in one /log line. */
static void log_finished(struct engine *e, const struct hook_run *r)
{
	char how[96];
	if (r->killed)
		snprintf(how, sizeof(how), "killed after on_end_timeout=%lldms",
			 (long long)e->cfg.on_end_timeout_ms);
	else if (WIFEXITED(r->status))
		snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(r->status));
	else
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(r->status));
	bool ok = !r->killed && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
	size_t n = r->nout;
	while (n && (r->out[n - 1] == '\n' || r->out[n - 1] == '\r'))
		n--;
	char more[48] = "";
	if (r->dropped)
		snprintf(more, sizeof(more), " (+%llu bytes)", (unsigned long long)r->dropped);
	log_add(e, ok ? LOG_LVL_INFO : LOG_LVL_WARN, "on_end of %s: %s%s%.*s%s", r->job->what,
		how, n ? ": " : "", (int)n, r->out, more);
}

static int64_t ms_until(struct timespec t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(t.tv_sec - now.tv_sec) * 1000 + (t.tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms + 1;
}

/* Kill the hooks past their deadline (their whole group: a shell's
 * children too); the poll timeout until the next deadline, -1 none.  With
 * mu held: a run's pid is signalled only while it is not reaped. */
static int kill_overdue_locked(struct hooks *h)
{
	int64_t next = -1;
	for (struct hook_run *r = h->runs; r; r = r->next) {
		if (r->reaped || r->killed)
			continue;
		int64_t ms = ms_until(r->deadline);
		if (ms <= 1) {
			r->killed = true;
			kill(-r->pid, SIGKILL);
			kill(r->pid, SIGKILL);
		} else if (next < 0 || ms < next) {
			next = ms;
		}
	}
	return next > 60000 ? 60000 : (int)next;
}

/* Take the reaped runs off the list (mu held); they are the caller's. */
static struct hook_run *take_reaped_locked(struct hooks *h)
{
	struct hook_run *done = NULL;
	for (struct hook_run **pp = &h->runs; *pp;) {
		struct hook_run *r = *pp;
		if (r->reaped) {
			*pp = r->next;
			r->next = done;
			done = r;
			h->running--;
		} else {
			pp = &r->next;
		}
	}
	return done;
}

/* The reaped: what is left in the pipe (a descendant that keeps it open is
 * not waited for), their /log line, gone. */
static void finish(struct engine *e, struct hook_run *done)
{
	for (struct hook_run *r = done, *n; r; r = n) {
		n = r->next;
		if (r->fd >= 0) {
			read_output(r);
			if (r->fd >= 0)
				close(r->fd);
		}
		log_finished(e, r);
		hook_job_free(r->job);
		free(r);
	}
}

/* Wait for output, a reaped hook, a new job or a deadline. */
static void wait_for_news(struct hooks *h, int timeout)
{
	struct pollfd pfd[257];
	struct hook_run *who[257];
	nfds_t n = 1;
	pfd[0] = (struct pollfd){ .fd = h->wakefd, .events = POLLIN };
	pthread_mutex_lock(&h->mu);
	for (struct hook_run *r = h->runs; r && n < 257; r = r->next) {
		if (r->fd < 0)
			continue;
		who[n] = r;
		pfd[n++] = (struct pollfd){ .fd = r->fd, .events = POLLIN };
	}
	pthread_mutex_unlock(&h->mu);
	if (poll(pfd, n, timeout) <= 0)
		return;
	uint64_t v;
	if (pfd[0].revents && read(h->wakefd, &v, sizeof(v)) < 0)
		v = 0;   /* nothing to take: a spurious wakeup */
	for (nfds_t i = 1; i < n; i++)
		if (pfd[i].revents)
			read_output(who[i]);   /* only this thread reads, closes and frees runs */
}

static void *hooks_thread(void *arg)
{
	struct engine *e = arg;
	struct hooks *h = &e->notice->hooks;
	for (;;) {
		start_queued(e, h);
		pthread_mutex_lock(&h->mu);
		int timeout = kill_overdue_locked(h);
		struct hook_run *done = take_reaped_locked(h);
		bool quit = h->quit && !h->runs;
		pthread_mutex_unlock(&h->mu);
		finish(e, done);
		if (quit)
			return NULL;
		if (!done)
			wait_for_news(h, timeout);
	}
}

bool hooks_claim_child(struct engine *e, pid_t pid, int status, const struct rusage *ru)
{
	struct hooks *h = &e->notice->hooks;
	bool mine = false;
	pthread_mutex_lock(&h->mu);
	for (struct hook_run *r = h->runs; r; r = r->next) {
		if (r->pid == pid && !r->reaped) {
			r->reaped = true;
			r->status = status;
			mine = true;
			break;
		}
	}
	pthread_mutex_unlock(&h->mu);
	if (mine)
		wake(h);
	return mine;
}

int hooks_init(struct engine *e, struct hooks *h)
{
	memset(h, 0, sizeof(*h));
	h->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->wakefd < 0)
		return -errno;
	pthread_mutex_init(&h->mu, NULL);
	return 0;
}

void hooks_start(struct engine *e, struct hooks *h)
{
	h->started = pthread_create(&h->thread, NULL, hooks_thread, e) == 0;
	if (!h->started)
		log_add(e, LOG_LVL_ERROR, "on_end hooks: no thread to run them; none will run");
}

/* Before the loop ends (the reaper still runs, so the killed are reaped and
 * the thread sees them go). */
void hooks_stop(struct engine *e, struct hooks *h)
{
	pthread_mutex_lock(&h->mu);
	h->quit = true;
	size_t dropped = h->queued;
	for (struct hook_job *j = h->qhead, *n; j; j = n) {
		n = j->next;
		hook_job_free(j);
	}
	h->qhead = h->qtail = NULL;
	h->queued = 0;
	for (struct hook_run *r = h->runs; r; r = r->next) {
		if (!r->reaped) {
			r->killed = true;
			kill(-r->pid, SIGKILL);
			kill(r->pid, SIGKILL);
		}
	}
	pthread_mutex_unlock(&h->mu);
	if (dropped)
		log_add(e, LOG_LVL_WARN, "on_end: %zu hook%s not run: pcfs is shutting down",
			dropped, dropped == 1 ? "" : "s");
	wake(h);
	if (h->started)
		pthread_join(h->thread, NULL);
	h->started = false;
}

void hooks_free(struct hooks *h)
{
	for (struct hook_job *j = h->qhead, *n; j; j = n) {
		n = j->next;
		hook_job_free(j);
	}
	for (struct hook_run *r = h->runs, *n; r; r = n) {
		n = r->next;
		if (r->fd >= 0)
			close(r->fd);
		hook_job_free(r->job);
		free(r);
	}
	if (h->wakefd >= 0)
		close(h->wakefd);
	pthread_mutex_destroy(&h->mu);
}
