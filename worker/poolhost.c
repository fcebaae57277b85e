/* poolhost.c - `pcfs-worker pool`: long-lived slots that run futures.
 *
 * A pool host keeps NSLOTS slot threads alive, and each runs one future after
 * another (a process pool is N hosts of one slot, a thread pool one host of
 * N).  A built-in future runs in the slot thread itself, as a thread host's
 * task does; an exec/sh future is a child process that the slot starts,
 * whose stdout and stderr it forwards, and which it reaps.
 *
 *   main thread   reads the daemon's socket: W_PW_RUN queues a future on its
 *                 slot, W_PW_REVOKE takes a queued one back, W_PW_STOP stops
 *                 one, W_PW_SLOTS starts or retires slots (several of them may
 *                 come in one W_BATCH).  It also joins slot threads that have
 *                 exited (an eventfd wakes it), and starts their successors.
 *   slot thread   runs its queue in order and sends everything about its own
 *                 futures: W_PW_READY once, then per future W_PW_START,
 *                 W_PW_CHILD, W_PW_OUTPUT..., W_PW_DONE, and W_PW_GONE when
 *                 retired.  A SOCK_SEQPACKET send is one atomic datagram, so
 *                 the threads share the socket without a lock, and the
 *                 messages of one future arrive in the order sent.
 *
 * Pipelining.  The daemon hands a slot several futures ahead, so a slot
 * never waits a round trip for its next one, and a slot reports in batches:
 * what it has to say collects in its outbox and goes out as one datagram
 * when the next future starts (its W_PW_START with the last one's W_PW_DONE)
 * or when the slot runs out of work.  A start is always sent before the
 * future runs: if the future takes its worker down, the daemon knows it was
 * the one running.  Output goes out at once (tail -f works on a future).
 *
 * A slot's queue is under the slot's lock.  The slot thread takes the next
 * job and sends its W_PW_START under that lock, and W_PW_REVOKE looks for
 * the job and answers under it too: a revoked future either never starts, or
 * its start reaches the daemon before the answer saying it was too late.
 * A retired slot finishes its running future, then gives its queue back
 * (W_PW_REVOKED with b = 0 for each) before W_PW_GONE; at EOF the queue is
 * dropped (nobody is listening).
 *
 * Slot numbers: a started slot always sends W_PW_READY and a retired one
 * W_PW_GONE, and a number is reused only once its previous thread has sent
 * GONE and been joined.  So after a shrink and a quick grow the daemon still
 * sees, for each number, GONE before the new READY.
 *
 * Children: each one leads its own process group.  A slot reaps exactly its
 * child's pid: waitpid(-1) would steal the children of other slots.  STOP
 * signals the group under the slot lock, and the slot forgets the pid under
 * that lock before it reaps it, so a stop never reaches a recycled pid.
 *
 * Every descriptor the host opens is close-on-exec, and a child gets its
 * 0, 1 and 2 and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "modes.h"
#include "spec.h"
#include "wire.h"

#define DRAIN_MS 50            /* how long a reaped child's pipes are still read */
#define EXIT_POLL_MS 10        /* without a pidfd: how often to look for the child's exit */
#define REQ_MIN 256            /* first size of a slot's request buffer */
#define REQ_KEEP 16384         /* largest one kept between futures */
#define REASON_MAX 512         /* one diagnostic line sent as output */
#define SPIN_YIELDS 50         /* a slot's look for its next job before it sleeps */
#define SLOT_QUEUE_MAX 1024    /* futures one slot holds queued */
#define SPARE_JOBS 8           /* finished jobs a slot keeps for reuse */
#define OUTBOX_BYTES 8192      /* a slot's outbox: what it reports in one datagram */

/* Exit codes for futures that did not run, as a shell would say them. */
#define CODE_BAD_LINE 2        /* the line does not parse (as `pcfs-worker run`) */
#define CODE_CANNOT_RUN 126    /* refused, or could not be started */
#define CODE_NOT_FOUND 127     /* exec/sh: no such program */

extern char **environ;

struct pool {
	int sock;
	int efd;                     /* eventfd: some slot thread has exited */
	struct gil *gil;             /* shared by every slot; NULL without GIL */
	int64_t default_time_ms;
	unsigned ncpus;              /* for spec_parse; sysconf reads sysfs each time */
	pthread_attr_t slot_attr;    /* the slot threads' */
	size_t slot_stack;           /* and so their stack size */
	posix_spawnattr_t child_attr; /* own process group, signals reset; read-only */
	unsigned want;               /* slots the daemon asked for */
	unsigned leaving;            /* retired slots not yet joined */
	unsigned top;                /* highest slot number in slots[] */
	struct slot **slots;         /* [1..POOL_SLOTS_MAX], retiring ones too */
};

/* A future queued on a slot: the W_PW_RUN payload and its descriptors. */
struct job {
	struct job *next;
	uint64_t id;
	char *req;                   /* line \0 {K=V \0}* */
	size_t req_len, req_cap;
	int io_fd[2];                /* the child's stdin, stdout from the daemon (channels), or -1 */
};

struct slot {
	struct pool *pool;
	unsigned num;                /* 1.. */
	pthread_t thread;
	pthread_mutex_t lock;
	sem_t wake;                  /* posted after a job is queued, or retire or quit is set */

	/* Under lock. */
	struct job *qhead, *qtail;   /* queued, not started, in order */
	unsigned queued;
	uint64_t cur;                /* the running future's id, 0 if none */
	bool retire;                 /* W_PW_SLOTS shrank the pool: finish, give the queue back, GONE */
	bool quit;                   /* the daemon closed the socket: finish, drop the queue */
	pid_t child;                 /* the running exec/sh child, 0 if none or being reaped */
	struct job *spare;           /* finished jobs, kept for their buffers */
	unsigned nspare;

	atomic_int stop;             /* signal asked for by W_PW_STOP, 0 = run on */

	/* The slot thread's own. */
	struct wire_batch out;       /* its outbox */

	atomic_bool exited;          /* set last by the slot thread: it may be joined */
};

/* One future, as its slot thread runs it. */
struct future {
	struct slot *slot;
	uint64_t id;
	struct wl_ctx ctx;           /* out: W_PW_OUTPUT messages for this future */
	struct task_spec spec;
	const char *env, *env_end;   /* the payload's K=V list (in slot->req) */
	int io_fd[2];                /* taken from the slot: the child's stdin, stdout, or -1 */
	int code;                    /* a built-in's result... */
	int64_t cpu_us;              /* ...and the CPU time it took, or the child's */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* "pcfs-worker: <message>\n" into buf, cut to fit.  Returns its length. */
__attribute__((format(printf, 3, 0)))
static size_t reason(char *buf, size_t size, const char *fmt, va_list ap)
{
	static const char prefix[] = "pcfs-worker: ";
	size_t n = sizeof prefix - 1;
	int m;

	memcpy(buf, prefix, n);
	m = vsnprintf(buf + n, size - n - 1, fmt, ap);  /* room for the newline */
	if (m > 0)
		n += (size_t)m < size - n - 1 ? (size_t)m : size - n - 2;
	buf[n++] = '\n';
	return n;
}

/* --- in a slot thread: one future -------------------------------------- */

/* Send what the slot's outbox holds, as one datagram. */
static void out_flush(struct slot *s)
{
	wire_batch_send(s->pool->sock, &s->out);
}

/* Put a message in the slot's outbox, sending the outbox first if it is
 * full; a message bigger than any outbox goes alone, after it. */
static void out_add(struct slot *s, uint32_t type, uint64_t id, int64_t a, int64_t b,
		    const void *payload, size_t len)
{
	if (wire_batch_add(&s->out, type, id, a, b, payload, len))
		return;
	out_flush(s);
	if (!wire_batch_add(&s->out, type, id, a, b, payload, len))
		wire_send(s->pool->sock, type, id, a, b, payload, len, NULL, 0);
}

/* Output goes out at once, so that a running future's can be followed. */
static void fut_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len)
{
	const struct future *f = ctx->opaque;

	while (len > 0) {
		size_t n = len < WORKER_OUTPUT_CHUNK ? len : WORKER_OUTPUT_CHUNK;

		out_add(f->slot, W_PW_OUTPUT, f->id, stream, 0, buf, n);
		buf += n;
		len -= n;
	}
	out_flush(f->slot);
}

/* Why the future failed, on its stderr. */
__attribute__((format(printf, 2, 3)))
static void fut_say(struct future *f, const char *fmt, ...)
{
	char buf[REASON_MAX];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = reason(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fut_out(&f->ctx, 2, buf, n);
}

/* Split the W_PW_RUN payload, line \0 {K=V \0}*.  Returns the line, or NULL
 * if the payload is malformed. */
static const char *split_request(struct future *f, const char *req, size_t len)
{
	const char *end = req + len, *kv;

	if (len == 0 || end[-1] != '\0' || req[0] == '\0')
		return NULL;
	f->env = req + strlen(req) + 1;
	f->env_end = end;
	for (kv = f->env; kv < end; kv += strlen(kv) + 1)
		if (kv[0] == '=' || !strchr(kv, '='))
			return NULL;   /* a bare name would mean nothing to execve */
	return req;
}

/* --- built-ins --- */

/* Run the built-in and measure the CPU time of the thread it runs in. */
static void *builtin_main(void *arg)
{
	struct future *f = arg;
	int64_t t0 = thread_cputime_us();

	f->code = workload_run(&f->ctx);
	f->cpu_us = thread_cputime_us() - t0;
	return NULL;
}

/* A `stack` future too deep for a slot's stack runs on a thread of its own,
 * with a stack to fit, while the slot waits for it.  Returns 0 or errno. */
static int run_on_own_stack(struct future *f, size_t size)
{
	pthread_attr_t attr;
	pthread_t t;
	char name[16];
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		return err;
	err = pthread_attr_setstacksize(&attr, size);
	if (!err)
		err = pthread_create(&t, &attr, builtin_main, f);
	pthread_attr_destroy(&attr);
	if (err)
		return err;
	snprintf(name, sizeof name, "pool-%u-stack", f->slot->num);
	pthread_setname_np(t, name);
	pthread_join(t, NULL);
	return 0;
}

static int run_builtin(struct future *f)
{
	size_t need;
	int err = thread_stack_need(&f->spec, &need);

	if (!err && need <= f->slot->pool->slot_stack) {
		builtin_main(f);
		return f->code;
	}
	if (!err)
		err = run_on_own_stack(f, need);
	if (err) {
		fut_say(f, "stack depth=%lld: no thread with a stack that deep: %s",
			(long long)f->spec.depth, strerror(err));
		return CODE_CANNOT_RUN;
	}
	return f->code;
}

/* --- exec and sh --- */

static bool has_key(char *const *v, size_t n, const char *kv)
{
	size_t klen = strcspn(kv, "=");

	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i], kv, klen) == 0 && v[i][klen] == '=')
			return true;
	return false;
}

/* The child's environment: the payload's K=V list, then the host's own
 * environment without the keys already set.  The array is the caller's to
 * free; the strings are borrowed from the payload and from environ (which
 * nothing in the host modifies). */
static char **child_env(const struct future *f)
{
	size_t n = 0, ours, cap = 1;
	const char *kv;
	char **v;

	for (kv = f->env; kv < f->env_end; kv += strlen(kv) + 1)
		cap++;
	for (char **e = environ; *e; e++)
		cap++;
	v = malloc(cap * sizeof *v);
	if (!v)
		return NULL;
	for (kv = f->env; kv < f->env_end; kv += strlen(kv) + 1)
		v[n++] = (char *)kv;   /* execve does not write through envp */
	ours = n;
	for (char **e = environ; *e; e++)
		if (!has_key(v, ours, *e))
			v[n++] = *e;
	v[n] = NULL;
	return v;
}

/* stdin /dev/null, stdout and stderr the write ends of our pipes, nothing
 * else (what the host opens is close-on-exec, but a descriptor the daemon
 * let it inherit would not be: as the fork server does, close them all),
 * cwd=. */
static int child_actions(posix_spawn_file_actions_t *fa, int out, int err, const char *cwd,
			 const int io[2])
{
	int rc = posix_spawn_file_actions_init(fa);

	if (rc)
		return rc;
	/* a channel's end where the line said stdin=/stdout= */
	if (io[0] >= 0)
		rc = posix_spawn_file_actions_adddup2(fa, io[0], 0);
	else
		rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, io[1] >= 0 ? io[1] : out, 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, err, 2);
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(fa, STDERR_FILENO + 1);
	if (!rc && cwd)
		rc = posix_spawn_file_actions_addchdir_np(fa, cwd);
	if (rc)
		posix_spawn_file_actions_destroy(fa);
	return rc;
}

/* posix_spawn the exec/sh line with stdout and stderr on the write ends
 * w[0], w[1].  Returns 0 with *pid, or errno. */
static int spawn_line(const struct future *f, const int w[2], pid_t *pid)
{
	const struct task_spec *s = &f->spec;
	const posix_spawnattr_t *attr = &f->slot->pool->child_attr;
	char *sh_argv[] = { "sh", "-c", s->argv[0], NULL };
	posix_spawn_file_actions_t fa;
	char **envp = child_env(f);
	int rc;

	if (!envp)
		return ENOMEM;
	rc = child_actions(&fa, w[0], w[1], s->cwd, f->io_fd);
	if (!rc) {
		if (s->workload == WL_EXEC)
			rc = posix_spawnp(pid, s->argv[0], &fa, attr, s->argv, envp);
		else
			rc = posix_spawn(pid, "/bin/sh", &fa, attr, sh_argv, envp);
		posix_spawn_file_actions_destroy(&fa);
	}
	free(envp);
	return rc;
}

/* Start the child.  On success returns 0 with *pid and the read ends of its
 * stdout and stderr pipes in rd[0], rd[1] (the caller's to close); on
 * failure returns errno and leaves no descriptor open. */
static int start_child(const struct future *f, pid_t *pid, int rd[2])
{
	int po[2], pe[2], w[2], rc;

	if (pipe2(po, O_CLOEXEC) < 0)
		return errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		rc = errno;
		close(po[0]);
		close(po[1]);
		return rc;
	}
	w[0] = po[1];
	w[1] = pe[1];
	rc = spawn_line(f, w, pid);
	close(po[1]);   /* the child has its copies: EOF comes when it (and */
	close(pe[1]);   /* whatever inherited them) has closed them */
	if (rc) {
		close(po[0]);
		close(pe[0]);
		return rc;
	}
	rd[0] = po[0];
	rd[1] = pe[0];
	return 0;
}

/* The child is running: make it stoppable.  A W_PW_STOP that came while it
 * was being started found no pid and only set the stop flag: deliver it now.
 * Under the lock, so that exactly one of the two sends it. */
static void adopt_child(struct slot *s, pid_t pid)
{
	int sig;

	pthread_mutex_lock(&s->lock);
	s->child = pid;
	sig = atomic_load(&s->stop);
	if (sig)
		kill(-pid, sig);
	pthread_mutex_unlock(&s->lock);
}

/* Has pid exited?  WNOWAIT leaves it a zombie, so its pid and its process
 * group stay reserved until reap_child.  With `block`, wait until it has. */
static bool child_exited(pid_t pid, bool block)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0)
		if (errno != EINTR)
			return true;   /* ECHILD: there is nothing left to wait for */
	return si.si_pid == pid;
}

/* Read one chunk from *fd and send it as output; close *fd at EOF. */
static void forward_chunk(const struct future *f, int stream, int *fd, char *buf)
{
	ssize_t n = read(*fd, buf, WORKER_OUTPUT_CHUNK);

	if (n > 0) {
		out_add(f->slot, W_PW_OUTPUT, f->id, stream, 0, buf, (size_t)n);
		out_flush(f->slot);
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN))
		close_fd(fd);
}

/* Forward the child's stdout and stderr (rd[0], rd[1]) until both reach EOF,
 * or for DRAIN_MS after the child has exited: a grandchild may hold the pipes
 * open for ever, and the future is over when its child is.  A pidfd tells
 * when the child exits; without one (kernel < 5.3) we look every
 * EXIT_POLL_MS.  Closes rd[0] and rd[1]. */
static void forward_output(const struct future *f, pid_t pid, int rd[2])
{
	char buf[WORKER_OUTPUT_CHUNK];
	int pidfd = pidfd_open(pid, 0);
	int64_t drain_end = -1;      /* set once the child has exited */

	while (rd[0] >= 0 || rd[1] >= 0) {
		struct pollfd pfd[3] = {
			{ .fd = rd[0], .events = POLLIN },
			{ .fd = rd[1], .events = POLLIN },
			{ .fd = drain_end < 0 ? pidfd : -1, .events = POLLIN },
		};
		int timeout = -1;

		if (drain_end >= 0) {
			int64_t left = drain_end - now_ms();

			if (left <= 0)
				break;
			timeout = (int)left;
		} else if (pidfd < 0) {
			timeout = EXIT_POLL_MS;
		}
		if (poll(pfd, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			wlog("pool: future %llu: poll: %s", (unsigned long long)f->id,
			     strerror(errno));
			break;
		}
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents)
				forward_chunk(f, i + 1, &rd[i], buf);
		if (drain_end < 0 && (pfd[2].revents || (pidfd < 0 && child_exited(pid, false))))
			drain_end = now_ms() + DRAIN_MS;
	}
	close_fd(&rd[0]);
	close_fd(&rd[1]);
	close_fd(&pidfd);
}

static int64_t tv_us(struct timeval tv)
{
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Wait for the child to exit, forget it (from now on a W_PW_STOP sends
 * nothing), and only then reap it: its exit code or -signal, and in *cpu_us
 * its user + system time. */
static int reap_child(struct slot *s, pid_t pid, int64_t *cpu_us)
{
	struct rusage ru;
	pid_t r;
	int st;

	child_exited(pid, true);
	pthread_mutex_lock(&s->lock);
	s->child = 0;
	pthread_mutex_unlock(&s->lock);

	do
		r = wait4(pid, &st, 0, &ru);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		/* Only if someone else reaped it: nothing in the host does. */
		wlog("pool: wait4 %d: %s", (int)pid, strerror(errno));
		return CODE_CANNOT_RUN;
	}
	*cpu_us = tv_us(ru.ru_utime) + tv_us(ru.ru_stime);
	return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

static int run_child(struct future *f)
{
	struct slot *s = f->slot;
	int rd[2], err, sig = atomic_load(&s->stop);
	pid_t pid;

	if (sig)
		return -sig;   /* stopped before it started: as if killed at once */
	err = start_child(f, &pid, rd);
	if (err) {
		/* posix_spawn does not say whether the program or cwd= failed. */
		const char *prog = f->spec.workload == WL_EXEC ? f->spec.argv[0] : "/bin/sh";

		if (f->spec.cwd)
			fut_say(f, "%s (cwd %s): %s", prog, f->spec.cwd, strerror(err));
		else
			fut_say(f, "%s: %s", prog, strerror(err));
		return err == ENOENT ? CODE_NOT_FOUND : CODE_CANNOT_RUN;
	}
	adopt_child(s, pid);
	out_add(s, W_PW_CHILD, f->id, pid, 0, NULL, 0);
	out_flush(s);
	forward_output(f, pid, rd);
	return reap_child(s, pid, &f->cpu_us);
}

/* --- in a slot thread: the slot ----------------------------------------- */

/* Has the semaphore been posted within a few yields?  Waking a sleeping
 * thread is most of what a noop future costs (on an idle CPU, and more so in
 * a VM, where the wakeup is an interrupt through the hypervisor), and when a
 * slot runs dry under a stream of futures its next ones are usually on their
 * way.  Yielding, not busy-waiting, so that threads with work go first.  A
 * spin that finds nothing costs ~30 us of CPU. */
static bool posted_soon(sem_t *sem)
{
	for (int i = 0; i < SPIN_YIELDS; i++) {
		if (sem_trywait(sem) == 0)
			return true;
		sched_yield();
	}
	return false;
}

static void job_close_fds(struct job *j)
{
	for (int i = 0; i < 2; i++)
		close_fd(&j->io_fd[i]);
}

/* Keep a finished job for the next W_PW_RUN (lock held), or free it. */
static void job_recycle(struct slot *s, struct job *j)
{
	job_close_fds(j);
	if (s->nspare < SPARE_JOBS && j->req_cap <= REQ_KEEP) {
		j->next = s->spare;
		s->spare = j;
		s->nspare++;
		return;
	}
	/* rare big requests: 4096 idle slots must not hold 256 KiB each */
	free(j->req);
	free(j);
}

/* Take the next job, or NULL when the slot is to exit (*retired: because
 * W_PW_SLOTS shrank the pool).  The job's W_PW_START goes out, with what
 * the outbox holds, before the lock is released (see the top).
 *
 * A semaphore rather than a condition variable: a handover is then at most
 * one futex wake and one futex wait.  It may count more posts than there
 * are jobs: the state is checked again after each, so an extra one only
 * costs a loop. */
static struct job *slot_next(struct slot *s, bool *retired)
{
	for (bool first = true;; first = false) {
		struct job *j = NULL;
		bool leave;

		pthread_mutex_lock(&s->lock);
		leave = s->retire || s->quit;
		*retired = s->retire;
		if (!leave && s->qhead) {
			j = s->qhead;
			s->qhead = j->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->queued--;
			s->cur = j->id;
			atomic_store(&s->stop, 0);
			out_add(s, W_PW_START, j->id, s->num, 0, NULL, 0);
			out_flush(s);
		}
		pthread_mutex_unlock(&s->lock);
		if (j || leave)
			return j;
		/* Idle: what we have to say goes now, not with the next start. */
		out_flush(s);
		if (first && posted_soon(&s->wake))
			continue;
		while (sem_wait(&s->wake) < 0 && errno == EINTR)
			;
	}
}

/* Run the job and put its W_PW_DONE in the outbox. */
static void slot_run(struct slot *s, struct job *j)
{
	struct pool *p = s->pool;
	struct future f = { .slot = s, .id = j->id, .io_fd = { j->io_fd[0], j->io_fd[1] } };
	char err[256];
	const char *line;
	int code;

	j->io_fd[0] = j->io_fd[1] = -1;   /* the future's now: closed when it is done */
	f.ctx = (struct wl_ctx){
		.spec = &f.spec,
		.default_time_ms = p->default_time_ms,
		.stop = &s->stop,
		.gil = p->gil,
		.out = fut_out,
		.opaque = &f,
	};
	line = split_request(&f, j->req, j->req_len);
	if (!line) {
		fut_say(&f, "pool: future %llu: malformed W_PW_RUN payload",
			(unsigned long long)f.id);
		code = CODE_CANNOT_RUN;
	} else if (spec_parse(line, strlen(line), p->ncpus, &f.spec, err, sizeof err) < 0) {
		/* As `pcfs-worker run` does: the reason on stderr, exit 2. */
		fut_say(&f, "%s", err);
		code = CODE_BAD_LINE;
	} else {
		code = workload_is_builtin(f.spec.workload) ? run_builtin(&f) : run_child(&f);
		spec_free(&f.spec);
	}
	for (int i = 0; i < 2; i++)
		if (f.io_fd[i] >= 0)
			close(f.io_fd[i]);   /* the child has its copies */
	pthread_mutex_lock(&s->lock);
	s->cur = 0;
	job_recycle(s, j);   /* from here on, nothing reads j->req (nor f.env in it) */
	pthread_mutex_unlock(&s->lock);
	out_add(s, W_PW_DONE, f.id, code, f.cpu_us, NULL, 0);
}

/* The slot is leaving: a retired one gives its queue back to the daemon
 * (which runs those futures elsewhere), one quitting at EOF drops it. */
static void slot_drop_queue(struct slot *s, bool retired)
{
	pthread_mutex_lock(&s->lock);
	while (s->qhead) {
		struct job *j = s->qhead;

		s->qhead = j->next;
		s->queued--;
		if (retired)
			out_add(s, W_PW_REVOKED, j->id, 1, 0, NULL, 0);
		job_recycle(s, j);
	}
	s->qtail = NULL;
	pthread_mutex_unlock(&s->lock);
}

static void *slot_main(void *arg)
{
	struct slot *s = arg;
	struct pool *p = s->pool;
	uint64_t one = 1;
	char name[16];
	struct job *j;
	bool retired;

	/* "pool-<slot>" in /proc/PID/task/TID/comm, for whoever looks. */
	snprintf(name, sizeof name, "pool-%u", s->num);
	pthread_setname_np(pthread_self(), name);

	out_add(s, W_PW_READY, 0, s->num, gettid(), NULL, 0);
	out_flush(s);
	while ((j = slot_next(s, &retired)))
		slot_run(s, j);
	slot_drop_queue(s, retired);
	if (retired)
		out_add(s, W_PW_GONE, 0, s->num, 0, NULL, 0);
	out_flush(s);

	/* After this store *s belongs to the main thread again. */
	atomic_store_explicit(&s->exited, true, memory_order_release);
	while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR)
		;
	return NULL;
}

/* --- in the main thread: slots ------------------------------------------ */

static void job_free_list(struct job *j)
{
	while (j) {
		struct job *next = j->next;

		job_close_fds(j);
		free(j->req);
		free(j);
		j = next;
	}
}

static void slot_free(struct slot *s)
{
	sem_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	job_free_list(s->qhead);
	job_free_list(s->spare);
	free(s->out.buf);
	free(s);
}

/* Start slot `num`.  If it cannot be started, say W_PW_GONE for it rather
 * than leave the daemon waiting for a W_PW_READY that will never come. */
static void slot_start(struct pool *p, unsigned num)
{
	struct slot *s = calloc(1, sizeof *s);
	int err = ENOMEM;

	if (s && (s->out.buf = malloc(OUTBOX_BYTES))) {
		s->out.cap = OUTBOX_BYTES;
		s->pool = p;
		s->num = num;
		pthread_mutex_init(&s->lock, NULL);
		sem_init(&s->wake, 0, 0);
		err = pthread_create(&s->thread, &p->slot_attr, slot_main, s);
		if (err)
			slot_free(s);
	} else if (s) {
		free(s);
	}
	if (err) {
		wlog("pool: slot %u: %s", num, strerror(err));
		wire_send(p->sock, W_PW_GONE, 0, num, 0, NULL, 0, NULL, 0);
		return;
	}
	p->slots[num] = s;
	if (num > p->top)
		p->top = num;
}

/* Ask the slot to exit once its running future is over: retired by
 * W_PW_SLOTS (its queue goes back to the daemon), or at EOF.  (Only
 * this thread writes retire and quit, so it may read them unlocked.) */
static void slot_dismiss(struct pool *p, struct slot *s, bool retire)
{
	if (retire ? s->retire : s->quit)
		return;
	pthread_mutex_lock(&s->lock);
	if (retire)
		s->retire = true;
	else
		s->quit = true;
	pthread_mutex_unlock(&s->lock);
	if (retire)
		p->leaving++;
	sem_post(&s->wake);
}

/* Join every slot thread that has exited (all of them if `all`).  A slot
 * retired and then wanted again is started anew once its old thread is gone. */
static void reap_slots(struct pool *p, bool all)
{
	for (unsigned k = 1; k <= p->top; k++) {
		struct slot *s = p->slots[k];

		if (!s || (!all && !atomic_load_explicit(&s->exited, memory_order_acquire)))
			continue;
		pthread_join(s->thread, NULL);
		if (s->retire)
			p->leaving--;
		slot_free(s);
		p->slots[k] = NULL;
		if (!all && k <= p->want)
			slot_start(p, k);
	}
	while (p->top > 0 && !p->slots[p->top])
		p->top--;
}

/* W_PW_SLOTS: have n slots.  Slots above n retire; missing ones start, except
 * those whose retiring predecessor is still finishing (see reap_slots). */
static void set_slots(struct pool *p, int64_t n)
{
	unsigned top;

	if (n < 0 || n > POOL_SLOTS_MAX) {
		wlog("pool: W_PW_SLOTS %lld ignored (0..%d)", (long long)n, POOL_SLOTS_MAX);
		return;
	}
	p->want = (unsigned)n;
	top = p->top > p->want ? p->top : p->want;
	for (unsigned k = 1; k <= top; k++) {
		struct slot *s = p->slots[k];

		if (k > p->want && s)
			slot_dismiss(p, s, true);
		else if (k <= p->want && !s)
			slot_start(p, k);
	}
}

/* A job with room for len request bytes: a spare one, or a new one (lock
 * held).  NULL if out of memory. */
static struct job *job_get(struct slot *s, size_t len)
{
	struct job *j = s->spare;

	if (j) {
		s->spare = j->next;
		s->nspare--;
	} else if (!(j = calloc(1, sizeof *j))) {
		return NULL;
	}
	if (len > j->req_cap) {
		size_t cap = j->req_cap ? j->req_cap : REQ_MIN;
		char *req;

		while (cap < len)
			cap *= 2;
		req = realloc(j->req, cap);
		if (!req) {
			free(j->req);
			free(j);
			return NULL;
		}
		j->req = req;
		j->req_cap = cap;
	}
	j->next = NULL;
	return j;
}

/* Queue the future on slot s.  Returns 0, or EBUSY (its queue is full),
 * ENXIO (the slot is retiring) or ENOMEM. */
static int slot_assign(struct slot *s, const struct wire_hdr *h, const char *payload,
		       const int io[2])
{
	struct job *j = NULL;
	bool was_empty = false;
	int err = 0;

	pthread_mutex_lock(&s->lock);
	if (s->retire || s->quit)
		err = ENXIO;
	else if (s->queued >= SLOT_QUEUE_MAX)
		err = EBUSY;
	else if (!(j = job_get(s, h->len)))
		err = ENOMEM;
	if (!err) {
		if (h->len > 0)
			memcpy(j->req, payload, h->len);
		j->req_len = h->len;
		j->id = h->id;
		j->io_fd[0] = io[0];
		j->io_fd[1] = io[1];
		was_empty = !s->qhead;
		if (s->qtail)
			s->qtail->next = j;
		else
			s->qhead = j;
		s->qtail = j;
		s->queued++;
	}
	pthread_mutex_unlock(&s->lock);
	/* a slot with work queued does not sleep: only an empty queue needs a post */
	if (was_empty)
		sem_post(&s->wake);
	return err;
}

/* Signal future id if slot s runs it.  Returns whether it does. */
static bool slot_stop(struct slot *s, uint64_t id, int sig)
{
	bool mine;

	pthread_mutex_lock(&s->lock);
	mine = s->cur == id;
	if (mine) {
		atomic_store(&s->stop, sig);
		if (s->child > 0)
			kill(-s->child, sig);
	}
	pthread_mutex_unlock(&s->lock);
	return mine;
}

/* Take future id off slot s's queue if it is there (lock held). */
static bool slot_unqueue(struct slot *s, uint64_t id)
{
	for (struct job **pp = &s->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		struct job *j = *pp;

		if (j->id != id)
			continue;
		*pp = j->next;
		if (s->qtail == j)
			s->qtail = prev;
		s->queued--;
		job_recycle(s, j);
		return true;
	}
	return false;
}

/* --- in the main thread: messages ---------------------------------------- */

/* A W_PW_RUN that no slot will run: say why on its stderr and end it, so the
 * daemon never waits for it. */
__attribute__((format(printf, 3, 4)))
static void refuse(const struct pool *p, uint64_t id, const char *fmt, ...)
{
	char buf[REASON_MAX];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = reason(buf, sizeof buf, fmt, ap);
	va_end(ap);
	wire_send(p->sock, W_PW_OUTPUT, id, 2, 0, buf, n, NULL, 0);
	wire_send(p->sock, W_PW_DONE, id, CODE_CANNOT_RUN, 0, NULL, 0, NULL, 0);
}

/* b's bits say which descriptors came with it, in this order: 1 the child's
 * stdin, 2 its stdout (channels wired by stdin=/stdout=). */
static void run_future(struct pool *p, const struct wire_hdr *h, const char *payload,
		       const int *fds, int nfds)
{
	struct slot *s = h->a >= 1 && h->a <= POOL_SLOTS_MAX ? p->slots[h->a] : NULL;
	int io[2] = { -1, -1 }, k = 0;
	if ((h->b & 1) && k < nfds)
		io[0] = fds[k++];
	if ((h->b & 2) && k < nfds)
		io[1] = fds[k++];
	while (k < nfds)
		close(fds[k++]);   /* more than it said: none of ours */
	int err = s ? slot_assign(s, h, payload, io) : ENXIO;

	if (err)
		for (int i = 0; i < 2; i++)
			if (io[i] >= 0)
				close(io[i]);
	if (err == EBUSY)
		refuse(p, h->id, "pool: slot %lld has %d futures queued already", (long long)h->a,
		       SLOT_QUEUE_MAX);
	else if (err == ENXIO)
		refuse(p, h->id, "pool: no slot %lld", (long long)h->a);
	else if (err)
		refuse(p, h->id, "pool: slot %lld: %s", (long long)h->a, strerror(err));
}

/* W_PW_REVOKE: answer whether the future was still queued (and now is not).
 * The answer goes under the slot's lock, so that a start the slot sent
 * first reaches the daemon first. */
static void revoke_future(struct pool *p, const struct wire_hdr *h)
{
	struct slot *s = h->a >= 1 && h->a <= POOL_SLOTS_MAX ? p->slots[h->a] : NULL;
	bool taken = false;

	if (s)
		pthread_mutex_lock(&s->lock);
	if (s)
		taken = slot_unqueue(s, h->id);
	wire_send(p->sock, W_PW_REVOKED, h->id, taken, h->b, NULL, 0, NULL, 0);
	if (s)
		pthread_mutex_unlock(&s->lock);
}

static void stop_future(struct pool *p, const struct wire_hdr *h)
{
	if (h->a <= 0 || h->a >= NSIG) {
		wlog("pool: W_PW_STOP with signal %lld ignored", (long long)h->a);
		return;
	}
	for (unsigned k = 1; k <= p->top; k++)
		if (p->slots[k] && slot_stop(p->slots[k], h->id, (int)h->a))
			return;
	/* Not running: it has just finished, and its W_PW_DONE is on its way. */
}

/* Act on one message (alone, or a record of a batch). */
static void act(struct pool *p, const struct wire_hdr *h, const char *payload, const int *fds,
		int nfds)
{
	switch (h->type) {
	case W_PW_RUN:
		run_future(p, h, payload, fds, nfds);
		break;
	case W_PW_REVOKE:
		revoke_future(p, h);
		break;
	case W_PW_STOP:
		stop_future(p, h);
		break;
	case W_PW_SLOTS:
		set_slots(p, h->a);
		break;
	default:
		wlog("pool: unexpected message type %u", h->type);
		break;
	}
}

/* Read and act on one message, or on each of a batch.  Returns 1 to go on,
 * 0 at EOF, -1 on a receive error that will not go away. */
static int handle_msg(struct pool *p, char *buf)
{
	struct wire_hdr hdr;
	int fds[3], nfds = 0;
	ssize_t n = wire_recv(p->sock, buf, &hdr, fds, &nfds);

	if (n >= 0 && hdr.type != W_PW_RUN)
		while (nfds > 0)
			close(fds[--nfds]);   /* only a RUN carries descriptors */
	/* A daemon that closes its end with our messages still unread makes
	 * the receive fail with ECONNRESET instead of reading 0: an EOF too. */
	if ((n == 0 && hdr.type == 0) || n == -ECONNRESET)
		return 0;
	if (n == -EPROTO || n == -EMSGSIZE) {
		wlog("pool: dropped a malformed message: %s", strerror((int)-n));
		return 1;
	}
	if (n < 0) {
		wlog("pool: receive: %s", strerror((int)-n));
		return -1;
	}
	if (hdr.type != W_BATCH) {
		act(p, &hdr, buf + sizeof hdr, fds, nfds);
		return 1;
	}
	const char *pl, *batch = buf + sizeof hdr;
	size_t pos = 0;
	struct wire_hdr rec;
	int r;
	while ((r = wire_batch_next(batch, (size_t)n, &pos, &rec, &pl)) > 0)
		act(p, &rec, pl, NULL, 0);
	if (r < 0)
		wlog("pool: dropped the rest of a malformed batch");
	return 1;
}

/* Serve until EOF.  Returns the exit code.
 *
 * Only a retired slot exits on its own, so while none is leaving there is
 * nothing to join, and the loop blocks in the receive alone: a poll per
 * message would be a fifth of a noop future's system calls. */
static int serve(struct pool *p)
{
	static char buf[WIRE_MAX];  /* static: too big for a stack, one reader */

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = p->sock, .events = POLLIN },
			{ .fd = p->efd, .events = POLLIN },
		};

		if (p->leaving == 0) {
			int r = handle_msg(p, buf);

			if (r <= 0)
				return r < 0;
			continue;
		}
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			wlog("pool: poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[1].revents) {
			uint64_t cnt;

			/* Drain first, then scan: a slot exiting after the scan
			 * has written again and wakes the next poll. */
			if (read(p->efd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
				wlog("pool: eventfd: %s", strerror(errno));
			reap_slots(p, false);
		}
		if (pfd[0].revents) {
			int r = handle_msg(p, buf);

			if (r <= 0)
				return r < 0;
		}
	}
}

/* --- setup ---------------------------------------------------------------- */

/* Children get fresh 0, 1 and 2, but the dup2s that set them up must not
 * find a pipe end already sitting on one of those numbers: make sure 0-2
 * are open (to /dev/null if the daemon left them closed). */
static void fill_stdio(void)
{
	int fd;

	do
		fd = open("/dev/null", O_RDWR);
	while (fd >= 0 && fd <= STDERR_FILENO);
	if (fd >= 0)
		close(fd);
}

static int init_child_attr(posix_spawnattr_t *a)
{
	sigset_t none, all;
	int rc = posix_spawnattr_init(a);

	if (rc)
		return rc;
	sigemptyset(&none);
	sigfillset(&all);
	/* Own process group (so a stop reaches its descendants), nothing
	 * blocked, every disposition default (we ignore SIGPIPE). */
	rc = posix_spawnattr_setflags(a, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					 POSIX_SPAWN_SETSIGDEF);
	if (!rc)
		rc = posix_spawnattr_setpgroup(a, 0);
	if (!rc)
		rc = posix_spawnattr_setsigmask(a, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(a, &all);
	if (rc)
		posix_spawnattr_destroy(a);
	return rc;
}

static void pool_free(struct pool *p)
{
	posix_spawnattr_destroy(&p->child_attr);
	pthread_attr_destroy(&p->slot_attr);
	gil_free(p->gil);
	if (p->efd >= 0)
		close(p->efd);
	free(p->slots);
	free(p);
}

static struct pool *pool_new(bool gil, int64_t default_time_ms)
{
	struct pool *p = calloc(1, sizeof *p);
	int err;

	if (!p)
		goto nomem;
	p->sock = WORKER_SOCK_FD;
	p->default_time_ms = default_time_ms;
	p->ncpus = online_cpus();
	p->efd = -1;
	p->slots = calloc(POOL_SLOTS_MAX + 1, sizeof *p->slots);
	if (!p->slots) {
		free(p);
		goto nomem;
	}
	err = pthread_attr_init(&p->slot_attr);
	if (!err)
		err = pthread_attr_getstacksize(&p->slot_attr, &p->slot_stack);
	if (!err) {
		err = init_child_attr(&p->child_attr);
		if (err)
			pthread_attr_destroy(&p->slot_attr);
	}
	if (err) {
		wlog("pool: %s", strerror(err));
		free(p->slots);
		free(p);
		return NULL;
	}
	/* From here on pool_free undoes everything. */
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		wlog("pool: eventfd: %s", strerror(errno));
		pool_free(p);
		return NULL;
	}
	if (gil) {
		p->gil = gil_new(WORKER_GIL_INTERVAL_US);
		if (!p->gil) {
			pool_free(p);
			goto nomem;
		}
	}
	return p;
nomem:
	wlog("pool: out of memory");
	return NULL;
}

int poolhost_main(bool gil, int64_t default_time_ms, unsigned nslots)
{
	struct pool *p;
	int code;

	if (!watch_parent() || !check_sock())
		return 1;
	/* wire_send uses MSG_NOSIGNAL, but a workload writing to a broken pipe
	 * must not kill every slot of the host either. */
	signal(SIGPIPE, SIG_IGN);
	/* Inherited SIG_IGN would have the kernel reap our children itself,
	 * and no slot could learn how its child ended. */
	signal(SIGCHLD, SIG_DFL);
	fill_stdio();
	p = pool_new(gil, default_time_ms);
	if (!p)
		return 1;

	set_slots(p, nslots);
	code = serve(p);

	/* EOF (or a dead socket): no more work.  Running futures finish first;
	 * what they still send fails quietly if the daemon is gone. */
	for (unsigned k = 1; k <= p->top; k++)
		if (p->slots[k])
			slot_dismiss(p, p->slots[k], false);
	reap_slots(p, true);
	pool_free(p);
	return code;
}
