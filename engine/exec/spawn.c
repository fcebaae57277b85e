/* spawn.c - how a task comes to life, one function per start method.
 *
 *   exec/sh, method=spawn (default)  posix_spawn from the daemon (vfork-like: no copy)
 *   exec/sh, method=vfork            vfork() + execve in the daemon
 *   exec/sh, method=clone            clone(CLONE_VM|CLONE_VFORK) + execve
 *   built-in, method=fork (default)  the fork server forks a child that runs it,
 *                                    sharing the server's pages copy-on-write
 *   built-in, method=clone           the fork server clone()s the child
 *   built-in, method=spawn|vfork     a fresh `pcfs-worker run LINE` is exec'd
 *   exec/sh, method=fork             the fork server forks, the child execs
 *   threads                          one `pcfs-worker threads` host per line
 *
 * The daemon is multi-threaded, so it never fork()s: children it creates
 * itself share its memory until they exec (posix_spawn, vfork, CLONE_VM), and
 * everything that must run code after a fork is done by the fork server, a
 * small single-threaded process started before the FUSE session exists.
 *
 * Every task leads its own process group; stdin is /dev/null; stdout and
 * stderr are pipes read by the engine thread.  stdin=/stdout= wire them to a
 * channel instead (the channels room pumps them).
 *
 * Work started for another user by a daemon running as root runs as that
 * user: the child drops to their uid, gid and groups (cred_drop) before it
 * execs or runs anything, on every path: the vfork/clone child here, the
 * fork server's task (the cred travels in W_FORK), thread and pool hosts.
 * posix_spawn cannot change credentials, so `method=spawn` for such a caller
 * makes the same clone(CLONE_VM|CLONE_VFORK) + execve that glibc's
 * posix_spawn makes, with the drop in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_int.h"
#include "cgroup/cgroup.h"
#include "channels/channels.h"
#include "wire.h"

/* At most this many threads start the processes of one line. */
#define SPAWN_THREADS_MAX 8

extern char **environ;

/* ---- environment ------------------------------------------------------------- */

/* A task's environment: the strings pcfs makes for it come first and are
 * owned (freed with the list); the daemon's own, inherited after them, are
 * borrowed from environ, which never changes once the daemon runs (no copy
 * of thirty strings per task). */
struct envlist {
	char **v;
	size_t n, cap;
	size_t nowned;      /* v[0..nowned) are ours to free */
};

static bool env_grow(struct envlist *l)
{
	if (l->n + 2 <= l->cap)
		return true;
	size_t cap = l->cap ? l->cap * 2 : 64;
	char **v = realloc(l->v, cap * sizeof(*v));
	if (!v)
		return false;
	l->v = v;
	l->cap = cap;
	return true;
}

/* Add a string pcfs made (s may be NULL: out of memory). */
static bool env_push(struct envlist *l, char *s)
{
	if (!s || !env_grow(l)) {
		free(s);
		return false;
	}
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
	l->nowned = l->n;
	return true;
}

static bool env_borrow(struct envlist *l, char *s)
{
	if (!env_grow(l))
		return false;
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
	return true;
}

static void env_free(struct envlist *l)
{
	for (size_t i = 0; i < l->nowned; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* A task's environment: PCFS_* first (ours), then the line's (its writer's
 * with the line's env=, launch.c), borrowed. */
static int build_env(struct engine *e, const struct task *t, const struct launch *ln,
		     struct envlist *l)
{
	bool ok = env_push(l, xasprintf("PCFS_ID=%llu", (unsigned long long)t->id));
	ok = ok && env_push(l, xasprintf("PCFS_MOUNT=%s", e->mountpoint));
	ok = ok && env_push(l, xasprintf("PCFS_DEFAULT_TIME_MS=%lld",
					 (long long)e->cfg.default_time_ms));
	for (char **p = ln->env; ok && p && *p; p++)
		ok = env_borrow(l, *p);
	if (!ok) {
		env_free(l);
		return -ENOMEM;
	}
	return 0;
}

/* ---- the fork server ----------------------------------------------------------- */

/* Every posix_spawn of the daemon's: the task leads its own process group,
 * with no blocked signal (we block SIGCHLD) and every disposition back to
 * default (libfuse ignores SIGPIPE).  Made once; posix_spawn only reads it. */
void spawn_attr_init(struct exec *x)
{
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_t *a = &x->spawn_attr;
	posix_spawnattr_init(a);
	posix_spawnattr_setflags(a, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(a, 0);
	posix_spawnattr_setsigmask(a, &none);
	posix_spawnattr_setsigdefault(a, &all);
}

int spawn_forkserver(struct engine *e, char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	int sz = WIRE_MAX * 4;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	char deftime[32];
	snprintf(deftime, sizeof(deftime), "%lld", (long long)e->cfg.default_time_ms);
	char *argv[] = { "pcfs-worker", "forkserver", deftime, NULL };

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, e->devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	pid_t pid;
	int rc = posix_spawn(&pid, e->worker_path, &fa, &e->exec->spawn_attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		snprintf(err, errlen, "starting the fork server %s: %s", e->worker_path,
			 strerror(rc));
		return -rc;
	}
	e->exec->server_pid = pid;
	e->exec->server_sock = sv[0];
	return 0;
}

/* One request to the fork server; returns the new pid or -errno, and the
 * server's pid in *server (the process the task shares pages with).  drop:
 * the credentials the task takes before it runs (NULL: the server's). */
static pid_t forkserver_request(struct engine *e, const struct line_start *ls,
				const struct task *t, int method, const int fds[3], pid_t *server,
				const struct cred *drop)
{
	const struct task_spec *s = &ls->spec;
	const char *cwd = ls->launch.cwd ? ls->launch.cwd : "";
	struct strbuf pl = STRBUF_INIT;
	struct envlist env = { 0 };
	pid_t pid = -ENOMEM;
	char cred[16 * (CRED_GROUPS_MAX + 2)] = "";

	if (drop && cred_format(drop, cred, sizeof(cred)) < 0)
		return -EINVAL;
	if (build_env(e, t, &ls->launch, &env) < 0)
		return -ENOMEM;
	sb_add(&pl, s->line, strlen(s->line) + 1);
	sb_add(&pl, cwd, strlen(cwd) + 1);
	sb_add(&pl, cred, strlen(cred) + 1);
	for (size_t i = 0; i < env.n; i++)
		sb_add(&pl, env.v[i], strlen(env.v[i]) + 1);
	env_free(&env);
	if (sb_error(&pl) || pl.len + sizeof(struct wire_hdr) > WIRE_MAX) {
		pid = sb_error(&pl) ? -ENOMEM : -E2BIG;
		goto out;
	}

	pthread_mutex_lock(&e->exec->server_lock);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (e->exec->server_sock < 0 || e->exec->server_pid == 0) {
			char why[256];
			if (e->exec->server_sock >= 0) {
				close(e->exec->server_sock);
				e->exec->server_sock = -1;
			}
			if (spawn_forkserver(e, why, sizeof(why)) < 0) {
				log_add(e, LOG_LVL_ERROR, "%s", why);
				pid = -EAGAIN;
				break;
			}
		}
		int rc = wire_send(e->exec->server_sock, W_FORK, t->id, method,
				   s->nice_set ? s->nice : WIRE_NO_NICE, pl.buf, pl.len, fds, 3);
		struct wire_hdr m = { 0 };
		if (rc == 0) {
			/* server_reply is used only under server_lock */
			ssize_t n = wire_recv(e->exec->server_sock, e->exec->server_reply, &m, NULL, NULL);
			if (n >= 0 && m.type == W_FORKED && m.id == t->id) {
				pid = (pid_t)m.a;
				*server = e->exec->server_pid;
				break;
			}
		}
		/* the server died or spoke nonsense: start a new one, once */
		log_add(e, LOG_LVL_ERROR, "fork server did not answer (%s); restarting it",
			rc ? strerror(-rc) : "bad reply");
		close(e->exec->server_sock);
		e->exec->server_sock = -1;
		if (e->exec->server_pid > 0)
			kill(e->exec->server_pid, SIGKILL);
		e->exec->server_pid = 0;   /* the reaper collects it */
		pid = -EAGAIN;
	}
	pthread_mutex_unlock(&e->exec->server_lock);
out:
	sb_free(&pl);
	return pid;
}

/* ---- vfork and clone ------------------------------------------------------------ */

/* What the vfork/clone child needs; it shares our memory until execve, so
 * it may only touch its own stack, `err` and `what`, and make system calls
 * (no glibc function that takes a lock or signals other threads). */
struct child_exec {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *cwd;
	int fds[4];                   /* become 0, 1, 2, and 3 unless it is -1 */
	const struct cred *cred;      /* become it first (NULL: stay the daemon) */
	int64_t nice;                 /* WIRE_NO_NICE: none */
	const struct cg_join *join;   /* its cgroups and affinity, joined first (NULL: none) */
	volatile int err;
	const char *volatile what;    /* the step that failed */
};

/* nice= is applied after the drop: a user may raise their niceness, not
 * lower it (like nice(1), the task runs anyway, and says so). */
static void child_nice(const struct child_exec *c)
{
	static const char msg[] = "pcfs: nice=: not permitted (lowering niceness needs "
				  "privilege); running at the inherited niceness\n";
	if (c->nice != WIRE_NO_NICE && setpriority(PRIO_PROCESS, 0, (int)c->nice) < 0 &&
	    write(2, msg, sizeof(msg) - 1) < 0)
		return;   /* nobody to tell */
}

/* Into its cgroups ("0" is the writer itself) and onto its CPUs while it is
 * still the daemon's root: the limits hold from exec's first instruction. */
static int child_join(const struct cg_join *j)
{
	for (unsigned i = 0; i < j->n; i++)
		if (write(j->fd[i], "0", 1) < 0)
			return -1;
	if (j->affinity) {
		cpu_set_t set;
		CPU_ZERO(&set);
		for (int c = 0; c < CPU_SETSIZE && c < (int)sizeof(j->cpus) * 8; c++)
			if (j->cpus[c / 8] & (1u << (c % 8)))
				CPU_SET(c, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			return -1;
	}
	return 0;
}

static int child_exec_fn(void *arg)
{
	struct child_exec *c = arg;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	c->what = "exec";
	setpgid(0, 0);
	for (int i = 0; i < 4; i++) {
		if (c->fds[i] < 0)
			continue;
		/* a descriptor already in place only needs to survive exec */
		if (c->fds[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(c->fds[i], i) < 0)
			goto fail;
	}
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);   /* fails harmlessly for KILL, STOP */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (c->join && child_join(c->join) < 0) {
		c->what = "joining its cgroup";
		goto fail;
	}
	if (c->cred) {
		int rc = cred_drop(c->cred);
		if (rc < 0) {
			c->what = "dropping to the caller's uid, gid and groups";
			errno = -rc;
			goto fail;
		}
	}
	child_nice(c);
	if (c->cwd && chdir(c->cwd) < 0) {
		c->what = "cwd";
		goto fail;
	}
	execvpe(c->path, c->argv, c->envp);
fail:
	c->err = errno;
	_exit(127);
}

static pid_t vfork_exec(struct child_exec *c, bool use_clone)
{
	sigset_t all, old;
	pid_t pid;

	/* no handler of ours may run in the child while it shares our memory */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	c->err = 0;
	if (use_clone) {
		size_t sz = 256 * 1024;
		char *stack = malloc(sz);
		if (!stack) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -ENOMEM;
		}
		/* CLONE_VFORK: we resume once the child has exec'd or died */
		pid = clone(child_exec_fn, stack + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
		int saved = errno;
		free(stack);
		errno = saved;
	} else {
		pid = vfork();
		if (pid == 0)
			child_exec_fn(c);
	}
	int saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -saved;
	/* The child exited with 127 if exec failed: it is a zombie our reaper
	 * collects as a stranger (its pid is never published). */
	if (c->err)
		return -c->err;
	return pid;
}

pid_t spawn_cmd_in(struct engine *e, char *const argv[], char *const envp[], const int fds[3],
		   const struct cred *drop, const char *cwd)
{
	struct child_exec c = {
		.path = argv[0], .argv = argv, .envp = envp ? envp : environ, .cwd = cwd,
		.fds = { fds[0], fds[1], fds[2], -1 }, .cred = drop, .nice = WIRE_NO_NICE,
	};
	return vfork_exec(&c, true);
}

pid_t spawn_cmd_as(struct engine *e, char *const argv[], char *const envp[], const int fds[3],
		   const struct cred *drop)
{
	return spawn_cmd_in(e, argv, envp, fds, drop, NULL);
}

/* ---- processes -------------------------------------------------------------------- */

static int make_pipes(int out[2], int errp[2])
{
	out[0] = out[1] = errp[0] = errp[1] = -1;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		int rc = -errno;
		for (int i = 0; i < 2; i++) {
			if (out[i] >= 0)
				close(out[i]);
			if (errp[i] >= 0)
				close(errp[i]);
		}
		return rc;
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Two pipes and their fcntls are a third of the daemon's work between a
 * write on `spawn` and posix_spawn (about 10 us of 25), and the file actions
 * another 4 us.  The engine thread makes a few sets ahead, at the end of a
 * turn, when nobody is waiting on it; a spawn takes one, and makes its own
 * pipes only when none is left (a burst larger than the stash). */
static int pipes_take(struct engine *e, struct out_pipes *op)
{
	pthread_mutex_lock(&e->exec->pipe_lock);
	if (e->exec->npipe_stash) {
		*op = e->exec->pipe_stash[--e->exec->npipe_stash];
		pthread_mutex_unlock(&e->exec->pipe_lock);
		return 0;
	}
	pthread_mutex_unlock(&e->exec->pipe_lock);
	op->has_fa = false;
	return make_pipes(op->out, op->err);
}

/* The file actions, once the pipes' write ends are no longer needed. */
static void pipes_done_fa(struct out_pipes *op)
{
	if (op->has_fa)
		posix_spawn_file_actions_destroy(&op->fa);
	op->has_fa = false;
}

/* Engine thread only: it is the one that adds, so the count read first can
 * only have shrunk by the time its set is put in. */
void pipes_refill(struct engine *e)
{
	for (;;) {
		pthread_mutex_lock(&e->exec->pipe_lock);
		bool full = e->exec->npipe_stash == PIPE_STASH;
		pthread_mutex_unlock(&e->exec->pipe_lock);
		struct out_pipes op;
		if (full || make_pipes(op.out, op.err) < 0)
			return;
		op.has_fa = posix_spawn_file_actions_init(&op.fa) == 0;
		if (op.has_fa &&
		    (posix_spawn_file_actions_adddup2(&op.fa, e->devnull, 0) != 0 ||
		     posix_spawn_file_actions_adddup2(&op.fa, op.out[1], 1) != 0 ||
		     posix_spawn_file_actions_adddup2(&op.fa, op.err[1], 2) != 0))
			pipes_done_fa(&op);   /* a spawn builds its own */
		pthread_mutex_lock(&e->exec->pipe_lock);
		e->exec->pipe_stash[e->exec->npipe_stash++] = op;
		pthread_mutex_unlock(&e->exec->pipe_lock);
	}
}

void pipes_free(struct engine *e)
{
	for (unsigned i = 0; i < e->exec->npipe_stash; i++) {
		struct out_pipes *op = &e->exec->pipe_stash[i];
		pipes_done_fa(op);
		close(op->out[0]);
		close(op->out[1]);
		close(op->err[0]);
		close(op->err[1]);
	}
	e->exec->npipe_stash = 0;
}

/* argv for the program to run: the line's ARGV (the program as found on
 * the task's PATH), sh -c CMDLINE, or the worker */
static void program_for(struct engine *e, const struct line_start *ls, const char *argv_sh[4],
			const char *argv_wk[4], const char **path, char *const **argv)
{
	const struct task_spec *s = &ls->spec;
	switch (s->workload) {
	case WL_EXEC:
		*path = ls->launch.prog ? ls->launch.prog : s->argv[0];
		*argv = s->argv;
		return;
	case WL_SH:
		argv_sh[0] = "sh";
		argv_sh[1] = "-c";
		argv_sh[2] = s->argv[0];
		argv_sh[3] = NULL;
		*path = "/bin/sh";
		*argv = (char *const *)argv_sh;
		return;
	default:
		argv_wk[0] = "pcfs-worker";
		argv_wk[1] = "run";
		argv_wk[2] = s->line;
		argv_wk[3] = NULL;
		*path = e->worker_path;
		*argv = (char *const *)argv_wk;
		return;
	}
}

/* The program is found already (launch.c, on the task's own PATH): a plain
 * posix_spawn, never posix_spawnp, which would search the daemon's PATH. */
static pid_t start_spawn(struct engine *e, const struct line_start *ls, char *const *envp,
			 const int fds[3], const struct out_pipes *op)
{
	const char *argv_sh[4], *argv_wk[4], *path;
	char *const *argv;
	program_for(e, ls, argv_sh, argv_wk, &path, &argv);

	/* the stash's actions are for the usual case: stdin /dev/null, stdout
	 * and stderr the pipes, no cwd */
	posix_spawn_file_actions_t own;
	const posix_spawn_file_actions_t *fa = &op->fa;
	const char *cwd = ls->launch.cwd;
	bool made = !op->has_fa || fds[0] != e->devnull || fds[1] != op->out[1] ||
		    fds[2] != op->err[1] || cwd;
	if (made) {
		posix_spawn_file_actions_init(&own);
		for (int i = 0; i < 3; i++)
			posix_spawn_file_actions_adddup2(&own, fds[i], i);
		if (cwd)
			posix_spawn_file_actions_addchdir_np(&own, cwd);
		fa = &own;
	}
	pid_t pid;
	int rc = posix_spawn(&pid, path, fa, &e->exec->spawn_attr, argv, envp);
	if (made)
		posix_spawn_file_actions_destroy(&own);
	return rc ? -rc : pid;
}

/* Started by the fork server (else directly, by the thread that starts it). */
static bool goes_via_server(const struct task_spec *s, const struct task *t)
{
	return t->method == METHOD_FORK ||
	       (t->method == METHOD_CLONE && workload_is_builtin(s->workload));
}

static void close_out_pipes(const struct out_pipes *op)
{
	for (int i = 0; i < 2; i++) {
		close(op->out[i]);
		close(op->err[i]);
	}
}

/* For the steps before `lock` is taken. */
static void fail_to_start(struct engine *e, struct task *t, int err, const char *what)
{
	pthread_mutex_lock(&e->lock);
	task_failed_to_start(e, t, err, what);
	pthread_mutex_unlock(&e->lock);
}

/* The task's stdout and stderr pipes, and its stdin/stdout channels.  False,
 * with the task failed and nothing left open, when either cannot be had. */
static bool prepare_stdio(struct engine *e, const struct task_spec *s, struct task *t,
			  struct out_pipes *op, struct chan_wiring *wire)
{
	char why[256];
	int rc = pipes_take(e, op);
	if (rc < 0) {
		fail_to_start(e, t, -rc, "pipe");
		return false;
	}
	rc = chan_wire_prepare(e, s, &t->owner, wire, why, sizeof(why));
	if (rc < 0) {
		pipes_done_fa(op);
		close_out_pipes(op);
		fail_to_start(e, t, -rc, why);
		return false;
	}
	return true;
}

/* The task's 0, 1, 2: a file of the line's (shared by its tasks, as one
 * redirection of a shell's is), else a channel's end, else /dev/null for
 * stdin and our pipes for stdout and stderr. */
static void stdio_fds(const struct engine *e, const struct launch *ln,
		      const struct chan_wiring *wire, const struct out_pipes *op, int fds[3])
{
	fds[0] = ln->file[0] >= 0 ? ln->file[0] : wire->child_stdin >= 0 ? wire->child_stdin
									 : e->devnull;
	fds[1] = ln->file[1] >= 0 ? ln->file[1] : wire->child_stdout >= 0 ? wire->child_stdout
									  : op->out[1];
	fds[2] = ln->file[2] >= 0 ? ln->file[2] : op->err[1];
}

/* What starting a process gave. */
struct started {
	pid_t pid;            /* or -errno */
	pid_t server;         /* the fork server that forked it; 0 if none did */
	const char *what;     /* the step that failed, for the task's reason */
	bool nice_later;      /* posix_spawn cannot renice: done once it runs */
};

/* A start by the daemon itself: posix_spawn, or vfork/clone + execve (also
 * spawn for a caller we drop to: posix_spawn's own clone(CLONE_VM|CLONE_VFORK),
 * made here to drop in it). */
static void start_direct(struct engine *e, const struct line_start *ls, const struct task *t,
			 const struct cred *drop, const int fds[3], const struct out_pipes *op,
			 const struct cg_join *join, struct started *st)
{
	struct envlist env = { 0 };
	const struct task_spec *s = &ls->spec;

	if (build_env(e, t, &ls->launch, &env) < 0) {
		st->pid = -ENOMEM;
	} else if (t->method == METHOD_SPAWN && !drop && !join) {
		st->pid = start_spawn(e, ls, env.v, fds, op);
		st->nice_later = s->nice_set;
	} else {
		const char *argv_sh[4], *argv_wk[4], *path;
		char *const *argv;
		program_for(e, ls, argv_sh, argv_wk, &path, &argv);
		struct child_exec c = {
			.path = path, .argv = argv, .envp = env.v, .cwd = ls->launch.cwd,
			.fds = { fds[0], fds[1], fds[2], -1 }, .cred = drop,
			.nice = s->nice_set ? s->nice : WIRE_NO_NICE, .join = join,
		};
		st->pid = vfork_exec(&c, t->method != METHOD_VFORK);
		if (st->pid < 0 && c.err)
			st->what = c.what;
	}
	env_free(&env);
}

/* With `lock` held: the task runs.  Its pipes' read ends are watched (stdout's
 * unless a channel takes it), their write ends kept until its end
 * (out_close_write). */
static void publish_running(struct engine *e, const struct task_spec *s, struct task *t,
			    const struct started *st, bool via_server, const struct out_pipes *op,
			    struct chan_wiring *wire)
{
	t->pid = st->pid;
	t->state = TS_RUNNING;
	/* a built-in forked by the server shares its pages until written;
	 * an exec'd program shares nothing */
	if (via_server && workload_is_builtin(s->workload))
		t->cow_ref = st->server;
	task_pid_link(e, t);
	if (!chan_wire_attach(e, t->id, wire, op->out[0])) {
		t->out[1].fd = op->out[0];
		engine_watch(e, op->out[0], WATCH_STDOUT, t->id);
	}
	t->out[2].fd = op->err[0];
	engine_watch(e, op->err[0], WATCH_STDERR, t->id);
	t->out_w[1] = op->out[1];
	t->out_w[2] = op->err[1];
	task_arm_timeout(e, t);
	/* the fork server and the vfork child renice themselves */
	if (st->nice_later)
		setpriority(PRIO_PROCESS, (id_t)st->pid, s->nice);
}

static void spawn_process(struct engine *e, const struct line_start *ls, struct task *t,
			  const struct cred *drop)
{
	const struct task_spec *s = &ls->spec;
	if (ls->launch.prog_err) {   /* not on its PATH: as execvp would have failed */
		fail_to_start(e, t, ls->launch.prog_err, "exec");
		return;
	}
	struct out_pipes op;
	struct chan_wiring wire;
	if (!prepare_stdio(e, s, t, &op, &wire))
		return;
	int fds[3];
	stdio_fds(e, &ls->launch, &wire, &op, fds);
	struct started st = { .what = "exec" };
	/* a limited task is made its cgroups first, and started by a clone
	 * child that joins them (the slower path: unlimited ones never come
	 * here) */
	struct cg_join join, *jp = NULL;
	if (spec_limits_any(&s->lim)) {
		char why[256];
		int rc = cgroup_task_make(e, t, &s->lim, &join, why, sizeof(why));
		if (rc < 0) {
			pipes_done_fa(&op);
			close_out_pipes(&op);
			chan_wire_release(&wire);
			fail_to_start(e, t, -rc, why);
			return;
		}
		jp = &join;
	}

	bool via_server = goes_via_server(s, t);
	/* The reaper compares pids with the fork server's, which a request may
	 * restart: those keep reap_lock.  A direct start opens a spawn window:
	 * neither it nor the reaper waits for the other. */
	if (via_server) {
		pthread_rwlock_rdlock(&e->reap_lock);
		st.what = t->method == METHOD_FORK ? "fork" : "clone";
		st.pid = forkserver_request(e, ls, t, t->method, fds, &st.server, drop);
	} else {
		spawn_window_open(e);
		start_direct(e, ls, t, drop, fds, &op, jp, &st);
	}
	if (jp)
		cgroup_join_close(jp);
	pipes_done_fa(&op);
	if (wire.child_stdin >= 0) {   /* the task has its own copy now */
		close(wire.child_stdin);
		wire.child_stdin = -1;
	}
	if (wire.child_stdout >= 0) {
		close(wire.child_stdout);
		wire.child_stdout = -1;
	}

	pthread_mutex_lock(&e->lock);
	int early_status = 0;
	struct rusage early_ru;
	bool ended_early = !via_server &&
			   spawn_window_close_locked(e, st.pid, &early_status, &early_ru);
	if (st.pid < 0) {
		close_out_pipes(&op);
		task_failed_to_start(e, t, (int)-st.pid, st.what);
	} else {
		publish_running(e, s, t, &st, via_server, &op, &wire);
		if (ended_early)   /* reaped before it was published */
			task_end_with_status(e, t, early_status, &early_ru);
	}
	pthread_mutex_unlock(&e->lock);
	if (via_server)
		pthread_rwlock_unlock(&e->reap_lock);
	chan_wire_release(&wire);   /* whatever was not attached */
}

/* ---- threads ------------------------------------------------------------------------ */

static int send_retry(int sock, uint32_t type, uint64_t id, int64_t a, const char *payload,
		      size_t len)
{
	for (;;) {
		int rc = wire_send(sock, type, id, a, 0, payload, len, NULL, 0);
		if (rc != -EAGAIN)
			return rc;
		struct pollfd p = { .fd = sock, .events = POLLOUT };
		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
	}
}

static void threads_fail_all(struct engine *e, struct task **tasks, unsigned n, int err,
			     const char *what)
{
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < n; i++)
		task_failed_to_start(e, tasks[i], err, what);
	pthread_mutex_unlock(&e->lock);
}

pid_t spawn_host(struct engine *e, char *const argv[], char *const envp[], const char *cwd,
		 const struct cred *drop, int64_t nice, const struct cg_join *join, int *sock)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int sz = WIRE_MAX * 4;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);

	/* Hosts die with the daemon (PR_SET_PDEATHSIG in the worker).  That
	 * signal follows the *thread* that spawned them: libfuse's worker
	 * threads live as long as the session (max_idle_threads = -1). */
	pid_t pid;
	if (drop || join) {
		/* posix_spawn can neither change credentials nor join a cgroup
		 * first: the same clone, by hand */
		struct child_exec c = {
			.path = e->worker_path, .argv = argv, .envp = envp ? envp : environ,
			.cwd = cwd, .fds = { e->devnull, 1, 2, sv[1] }, .cred = drop,
			.nice = nice, .join = join,
		};
		pid = vfork_exec(&c, true);
	} else {
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, e->devnull, 0);
		posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
		if (cwd)
			posix_spawn_file_actions_addchdir_np(&fa, cwd);
		int rc = posix_spawn(&pid, e->worker_path, &fa, &e->exec->spawn_attr, argv,
				     envp ? envp : environ);
		posix_spawn_file_actions_destroy(&fa);
		if (rc)
			pid = -rc;
		else if (nice != WIRE_NO_NICE)
			setpriority(PRIO_PROCESS, (id_t)pid, (int)nice);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return pid;
	}
	*sock = sv[0];
	return pid;
}

static void spawn_threads(struct engine *e, const struct line_start *ls, struct task **tasks,
			  unsigned n, const struct cred *drop)
{
	const struct task_spec *s = &ls->spec;
	char gil[2] = { s->gil ? '1' : '0', 0 }, deftime[32], count[16];
	snprintf(deftime, sizeof(deftime), "%lld", (long long)e->cfg.default_time_ms);
	snprintf(count, sizeof(count), "%u", n);
	char *argv[] = { "pcfs-worker", "threads", gil, deftime, count, NULL };
	struct envlist env = { 0 };
	struct task fake = { .id = tasks[0]->id };
	int sock = -1;
	pid_t pid;

	pthread_rwlock_rdlock(&e->reap_lock);
	int rc = build_env(e, &fake, &ls->launch, &env);
	pid = rc < 0 ? rc : spawn_host(e, argv, env.v, ls->launch.cwd, drop,
				       s->nice_set ? s->nice : WIRE_NO_NICE, NULL, &sock);
	env_free(&env);
	if (pid < 0) {
		pthread_rwlock_unlock(&e->reap_lock);
		threads_fail_all(e, tasks, n, (int)-pid, "starting the thread host");
		return;
	}

	pthread_mutex_lock(&e->lock);
	struct host *h = host_add(e, pid, sock, &thread_host_ops, NULL);
	if (!h) {
		pthread_mutex_unlock(&e->lock);
		pthread_rwlock_unlock(&e->reap_lock);
		kill(pid, SIGKILL);   /* reaped as a stranger */
		close(sock);
		threads_fail_all(e, tasks, n, ENOMEM, "thread host");
		return;
	}
	h->live = n;
	for (unsigned i = 0; i < n; i++) {
		tasks[i]->pid = pid;
		tasks[i]->host = h;
		tasks[i]->state = TS_RUNNING;
		task_arm_timeout(e, tasks[i]);
	}
	pthread_mutex_unlock(&e->lock);
	pthread_rwlock_unlock(&e->reap_lock);

	/* Tell the host what to run, then wait until every thread has a tid, so
	 * that `tid` is filled in by the time the write returns. */
	for (unsigned i = 0; i < n; i++) {
		rc = send_retry(sock, W_TH_START, tasks[i]->id, i + 1, s->line,
				strlen(s->line) + 1);
		if (rc < 0) {
			log_add(e, LOG_LVL_ERROR, "thread host %d: %s", pid, strerror(-rc));
			kill(pid, SIGKILL);   /* its threads end as killed, with the reason */
			break;
		}
	}
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < n; i++) {
		while (task_find(e, tasks[i]->id) == tasks[i] && tasks[i]->tid == 0 &&
		       tasks[i]->counted) {
			if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&e->lock);
}

/* The processes of one write, shared by the threads that start them: each
 * takes the next task until none is left.
 *
 * Helper threads take only tasks they start directly (posix_spawn, vfork,
 * clone of exec/sh).  A request to the fork server may (re)start it, and its
 * PR_SET_PDEATHSIG follows the thread that spawned it: started by a helper,
 * it would be killed as soon as the helper returns.  So the calling thread
 * (a libfuse worker, which lives as long as the session) sends every fork
 * server request of the write. */
struct spawn_batch {
	struct engine *e;
	const struct line_start *const *lines;   /* lines[i] is tasks[i]'s line */
	struct task **tasks;
	unsigned count;
	const struct cred *drop;   /* the caller's credentials to become, or NULL */
	unsigned next;         /* atomic: the next task to look at for a direct start */
};

static void *spawn_batch_direct(void *arg)
{
	struct spawn_batch *b = arg;
	unsigned i;
	while ((i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED)) < b->count)
		if (!goes_via_server(&b->lines[i]->spec, b->tasks[i]))
			spawn_process(b->e, b->lines[i], b->tasks[i], b->drop);
	return NULL;
}

/* How many threads start a write's processes.  posix_spawn, vfork and clone
 * each block the calling thread until the child has exec'd, which is most of
 * a spawn's cost and is CPU work in the child: one thread per online CPU
 * keeps every CPU exec'ing.  The fork server takes one request at a time, so
 * writes whose tasks all go through it gain nothing. */
static unsigned spawn_threads_for(const struct engine *e, const struct spawn_batch *b)
{
	unsigned direct = 0;
	for (unsigned i = 0; i < b->count; i++)
		if (!goes_via_server(&b->lines[i]->spec, b->tasks[i]))   /* method resolved by now */
			direct++;
	if (direct < 4)
		return 1;
	unsigned n = e->online_cpus < SPAWN_THREADS_MAX ? e->online_cpus : SPAWN_THREADS_MAX;
	return n < direct ? n : direct;
}

void spawn_processes(struct engine *e, const struct line_start *const *lines,
		     struct task **tasks, unsigned count, const struct cred *drop)
{
	struct spawn_batch b = { .e = e, .lines = lines, .tasks = tasks, .count = count,
				 .drop = drop };
	pthread_t helper[SPAWN_THREADS_MAX];
	unsigned nhelpers = 0, want = spawn_threads_for(e, &b);
	/* a helper that cannot be created leaves its share to the others */
	while (nhelpers + 1 < want &&
	       pthread_create(&helper[nhelpers], NULL, spawn_batch_direct, &b) == 0)
		nhelpers++;
	if (nhelpers == 0) {
		/* alone: every task in the write's order */
		for (unsigned i = 0; i < count; i++)
			spawn_process(e, lines[i], tasks[i], drop);
		return;
	}
	/* the fork server's tasks (in order) on this thread, then help with the rest */
	for (unsigned i = 0; i < count; i++)
		if (goes_via_server(&lines[i]->spec, tasks[i]))
			spawn_process(e, lines[i], tasks[i], drop);
	spawn_batch_direct(&b);
	for (unsigned i = 0; i < nhelpers; i++)
		pthread_join(helper[i], NULL);
}

void spawn_thread_tasks(struct engine *e, const struct line_start *ls, struct task **tasks,
			unsigned count, const struct cred *drop)
{
	spawn_threads(e, ls, tasks, count, drop);
}
