/* forkserver.c - `pcfs-worker forkserver`: create process tasks on request.
 *
 * The daemon is multi-threaded, and fork() from a multi-threaded process is a
 * minefield (locks held by other threads, memory to copy).  So it asks this
 * small single-threaded process instead: one W_FORK in, one W_FORKED out.
 * The task runs a built-in workload, or execs an `exec`/`sh` line (the daemon
 * sends those here for method=fork).
 *
 * Each task is created by a short-lived intermediate child, which exits at
 * once: the task is then reparented to the nearest child subreaper, the
 * daemon, which thus reaps and signals it as its own child while the server
 * keeps no state about it.
 *
 *   daemon ──W_FORK──> server ──fork──> intermediate ──fork/clone──> task
 *          <─W_FORKED─   ^                   │ _exit(0)                │
 *                        └── status pipe <───┴── pid      -errno or EOF┘
 *
 * The status pipe tells the server how the start went.  The intermediate
 * writes the task's pid (or -errno if it could not create it).  The task holds
 * the pipe open, close-on-exec, until it has started: it closes it before
 * running a built-in, or exec closes it; if setting up or exec fails, it first
 * writes -errno.  So at EOF the server knows a pid that really started, or
 * why not, just as posix_spawn reports a failed exec to the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access.h"
#include "common.h"
#include "modes.h"
#include "spec.h"
#include "wire.h"

#define CLONE_STACK_MIN (8 << 20)   /* and default, when RLIMIT_STACK is unlimited */
#define CLONE_STACK_MAX (1L << 30)
#define STATUS_FD 3                 /* in the task, once its descriptors are wired */

/* One W_FORK, pointing into the receive buffer. */
struct fork_req {
	int method;               /* METHOD_FORK or METHOD_CLONE */
	int64_t nice;             /* or WIRE_NO_NICE */
	int fds[3];               /* the task's stdin, stdout, stderr */
	int status;               /* write end of the status pipe */
	const char *line;
	const char *cwd;          /* "" = inherit */
	bool drop;                /* become `cred` before anything runs */
	struct cred cred;
	const char *env;          /* K=V\0K=V\0... */
	const char *env_end;
	int64_t default_time_ms;
};

static void write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* --- in the task ------------------------------------------------------ */

/* Every signal back to its default action, none blocked. */
static void reset_signals(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&sa.sa_mask);
	/* SIGKILL, SIGSTOP and the signals glibc keeps for itself refuse with
	 * EINVAL; that is fine, they cannot be left non-default anyway. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The task could not start: tell the server why, and exit. */
static _Noreturn void start_failed(int status_fd, int err, int code)
{
	int64_t v = -err;

	write_full(status_fd, &v, sizeof v);
	_exit(code);
}

/* Install the received descriptors as 0, 1, 2 and the status pipe as
 * STATUS_FD (close-on-exec), and close all others.  A source may itself be
 * one of the target numbers (if the server's own 0-2 were closed), so all
 * are first moved above STATUS_FD: dup2() onto a number still needed as a
 * source would lose it.  dup2 clears close-on-exec on 0-2. */
static int wire_stdio(const struct fork_req *r)
{
	int src[4] = { r->fds[0], r->fds[1], r->fds[2], r->status }, hi[4];

	for (int i = 0; i < 4; i++) {
		hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, STATUS_FD + 1);
		if (hi[i] < 0)
			return -errno;
	}
	for (int i = 0; i < 3; i++)
		if (dup2(hi[i], i) < 0)
			return -errno;
	if (dup3(hi[3], STATUS_FD, O_CLOEXEC) < 0)
		return -errno;
	if (close_range(STATUS_FD + 1, ~0U, 0) < 0) {
		/* Kernels before 5.9 (or a seccomp filter) lack close_range. */
		long max = sysconf(_SC_OPEN_MAX);

		for (long fd = STATUS_FD + 1; fd < max; fd++)
			close((int)fd);
	}
	return 0;
}

/* The task's whole environment is the payload's (its writer's, made by
 * the daemon): nothing of the server's own is kept.  The strings stay
 * valid: they live in this process's copy of the receive buffer, which is
 * never reused here (the task never returns to the server loop).  execvp
 * then searches the task's own PATH. */
static void apply_env(const struct fork_req *r)
{
	clearenv();
	for (const char *kv = r->env; kv < r->env_end; kv += strlen(kv) + 1)
		putenv((char *)kv);
}

/* exec or sh, as the daemon itself would start them (posix_spawnp of ARGV,
 * /bin/sh -c CMDLINE).  Returns only on failure, with errno set. */
static void exec_line(const struct task_spec *s)
{
	if (s->workload == WL_EXEC) {
		execvp(s->argv[0], s->argv);
	} else {
		char *argv[] = { "sh", "-c", s->argv[0], NULL };

		execv("/bin/sh", argv);
	}
}

/* Become the task and run it.  Never returns. */
static _Noreturn void task_main(const struct fork_req *r)
{
	struct task_spec spec;
	struct wl_ctx ctx;
	char err[256];
	int rc, code;

	setpgid(0, 0);  /* the intermediate did it too; whoever runs first wins */
	rc = wire_stdio(r);
	if (rc < 0)
		start_failed(r->status, -rc, 127);  /* no stderr to speak of yet */
	reset_signals();
	prctl(PR_SET_PDEATHSIG, 0);  /* fork clears it already; do not rely on that */
	/* The caller's credentials, before anything of theirs is touched: cwd
	 * is entered, nice applied, the program exec'd as them. */
	if (r->drop) {
		rc = cred_drop(&r->cred);
		if (rc < 0) {
			wlog("dropping to uid %u: %s", (unsigned)r->cred.uid, strerror(-rc));
			start_failed(STATUS_FD, -rc, 126);
		}
	}

	if (*r->cwd && chdir(r->cwd) < 0) {
		rc = errno;
		wlog("cwd %s: %s", r->cwd, strerror(rc));
		start_failed(STATUS_FD, rc, 127);
	}
	if (r->nice != WIRE_NO_NICE && setpriority(PRIO_PROCESS, 0, (int)r->nice) < 0)
		/* Like nice(1): lowering niceness needs privilege; run anyway. */
		wlog("nice %lld: %s", (long long)r->nice, strerror(errno));
	apply_env(r);

	rc = spec_parse(r->line, strlen(r->line), online_cpus(), &spec, err, sizeof err);
	if (rc < 0) {
		wlog("%s", err);
		start_failed(STATUS_FD, -rc, 2);
	}
	if (!workload_is_builtin(spec.workload)) {
		exec_line(&spec);
		rc = errno;
		wlog("%s: %s", spec.argv[0], strerror(rc));
		start_failed(STATUS_FD, rc, rc == ENOENT ? 127 : 126);
	}

	close(STATUS_FD);  /* started: the server may answer now */
	ctx = (struct wl_ctx){
		.spec = &spec,
		.default_time_ms = r->default_time_ms,
		.out = fd_out,
	};
	code = workload_run(&ctx);
	spec_free(&spec);
	_exit(code & 0xff);
}

static int clone_entry(void *arg)
{
	task_main(arg);
}

/* --- in the intermediate ------------------------------------------------ */

/* Stack for a cloned task: it runs its whole life on it, so give it what a
 * forked task gets, RLIMIT_STACK.  mmap rather than malloc so the lowest page
 * can be a guard: a too-deep `stack` workload must fault, not scribble over
 * the heap.  Never freed: it belongs to the task's copy of the address space
 * (no CLONE_VM), and this process _exits right after the clone. */
static char *clone_stack(size_t *size)
{
	struct rlimit rl;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), sz = CLONE_STACK_MIN;
	char *p;

	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur > sz)
		sz = rl.rlim_cur < CLONE_STACK_MAX ? rl.rlim_cur : CLONE_STACK_MAX;
	sz = (sz + pg - 1) / pg * pg;
	p = mmap(NULL, sz + pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, pg, PROT_NONE) < 0) {
		munmap(p, sz + pg);
		return NULL;
	}
	*size = sz;
	return p + pg;
}

/* Create the task: fork(), or clone() with just SIGCHLD (a fork by another
 * name, to show the system call the fork wrapper is built on).  Returns its
 * pid or -errno. */
static pid_t start_task(const struct fork_req *r)
{
	pid_t pid;

	if (r->method == METHOD_CLONE) {
		size_t size;
		char *stack = clone_stack(&size);

		if (!stack)
			return -ENOMEM;
		/* Unlike fork(), the clone() wrapper runs no atfork handlers
		 * and does not reset glibc's locks or its thread descriptor in
		 * the child.  Safe here: this process is single-threaded, holds
		 * no lock, and the task makes no pthread calls. */
		pid = clone(clone_entry, stack + size, SIGCHLD, (void *)r);
	} else {
		pid = fork();
		if (pid == 0)
			task_main(r);
	}
	if (pid < 0)
		return -errno;
	/* Put the task in its own process group before anyone learns its pid,
	 * so the daemon can signal the group the moment W_FORKED arrives. */
	setpgid(pid, pid);
	return pid;
}

/* --- in the server ---------------------------------------------------- */

static void reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* Read the status pipe to EOF: the pid the intermediate reports, and the
 * first failure anyone reports.  Writes are 8 bytes, so atomic on a pipe. */
static int64_t read_status(int fd)
{
	int64_t v, pid = 0, err = 0;

	for (;;) {
		ssize_t n = read(fd, &v, sizeof v);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof v)
			break;  /* EOF: every writer has exec'd, closed or exited */
		if (v > 0)
			pid = v;
		else if (!err)
			err = v;
	}
	if (err)
		return err;
	return pid > 0 ? pid : -ECHILD;  /* the intermediate died without a word */
}

/* Double-fork the task; return its pid or -errno.  When this returns, the
 * intermediate is reaped and the task already belongs to the subreaper. */
static int64_t spawn_task(struct fork_req *r)
{
	int pfd[2];
	int64_t result;
	pid_t mid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	r->status = pfd[1];
	mid = fork();
	if (mid < 0) {
		result = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return result;
	}
	if (mid == 0) {
		close(pfd[0]);
		result = start_task(r);
		write_full(pfd[1], &result, sizeof result);
		_exit(0);
	}
	close(pfd[1]);
	result = read_status(pfd[0]);
	close(pfd[0]);
	reap(mid);
	return result;
}

/* Split and check a W_FORK payload (line\0cwd\0cred\0{K=V\0}*) into r. */
static int parse_payload(struct fork_req *r, const char *p, size_t len)
{
	const char *end = p + len;

	if (len < 3 || end[-1] != '\0')
		return -EINVAL;
	r->line = p;
	p += strlen(p) + 1;
	if (p >= end)
		return -EINVAL;  /* no cwd */
	r->cwd = p;
	p += strlen(p) + 1;
	if (p >= end)
		return -EINVAL;  /* no cred */
	r->drop = *p != '\0';
	if (r->drop && cred_parse(p, &r->cred) < 0)
		return -EINVAL;
	p += strlen(p) + 1;
	r->env = p;
	r->env_end = end;
	for (; p < end; p += strlen(p) + 1) {
		const char *eq = strchr(p, '=');

		if (!eq || eq == p)
			return -EINVAL;  /* putenv would unset a bare name */
	}
	return *r->line ? 0 : -EINVAL;
}

static int check_fork(struct fork_req *r, const struct wire_hdr *h, const char *payload,
		      int nfds)
{
	if (nfds != 3)
		return -EBADF;
	if (h->a != METHOD_FORK && h->a != METHOD_CLONE)
		return -EINVAL;
	if (h->b != WIRE_NO_NICE && (h->b < -20 || h->b > 19))
		return -EINVAL;
	r->method = (int)h->a;
	r->nice = h->b;
	return parse_payload(r, payload, h->len);
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* One W_FORK: create the task, close our copies of its descriptors, reply.
 * Returns 0, or -errno if the reply could not be sent. */
static int handle_fork(const struct wire_hdr *h, const char *payload, const int *fds,
		       int nfds, int64_t default_time_ms)
{
	struct fork_req r = { .default_time_ms = default_time_ms };
	int64_t result = check_fork(&r, h, payload, nfds);

	if (result == 0) {
		memcpy(r.fds, fds, sizeof r.fds);
		result = spawn_task(&r);
	}
	close_fds(fds, nfds);
	return wire_send(WORKER_SOCK_FD, W_FORKED, h->id, result, 0, NULL, 0, NULL, 0);
}

int forkserver_main(int64_t default_time_ms)
{
	/* Static: 256 KiB is a lot of stack, and there is only one loop. */
	static char buf[WIRE_MAX];
	struct wire_hdr h;
	int fds[3], nfds;

	if (!watch_parent() || !check_sock())
		return 1;
	/* Tasks inherit our dispositions from the moment they exist; make them
	 * default here so a signal sent before the task resets them itself is
	 * not lost to an ignored disposition inherited from the daemon. */
	reset_signals();

	for (;;) {
		ssize_t n = wire_recv(WORKER_SOCK_FD, buf, &h, fds, &nfds);
		int err;

		if (n == 0 && h.type == 0)
			return 0;  /* the daemon closed the socket */
		if (n < 0) {
			if (n == -EPROTO || n == -EMSGSIZE) {
				wlog("forkserver: dropped a malformed message: %s", strerror((int)-n));
				continue;
			}
			wlog("forkserver: receive: %s", strerror((int)-n));
			return 1;
		}
		if (h.type != W_FORK) {
			wlog("forkserver: unexpected message type %u", h.type);
			close_fds(fds, nfds);
			continue;
		}
		err = handle_fork(&h, buf + sizeof h, fds, nfds, default_time_ms);
		if (err < 0) {
			/* EPIPE: the daemon is gone; nothing else to do either. */
			wlog("forkserver: reply: %s", strerror(-err));
			return 1;
		}
	}
}
