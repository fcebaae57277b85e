/* poolchild.c - `pcfs-worker pool`: an exec or sh future, as a child process.
 *
 * The slot thread starts the child with posix_spawn (its own process group,
 * signals default, 0-2 and nothing else), forwards its stdout and stderr as
 * W_PW_OUTPUT, and reaps exactly its pid (see "Children" in poolhost.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "origin.h"
#include "poolhost.h"
#include "wire.h"

#define DRAIN_MS 50            /* how long a reaped child's pipes are still read */
#define EXIT_POLL_MS 10        /* without a pidfd: how often to look for the child's exit */

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

/* The child's environment: the payload's K=V list, which the daemon made
 * whole (the writer's, the line's env=, PCFS_*): nothing of the host's own.
 * The array is the caller's to free; the strings are the payload's. */
static char **child_env(const struct future *f)
{
	size_t n = 0, cap = 1;
	const char *kv;
	char **v;

	for (kv = f->env; kv < f->env_end; kv += strlen(kv) + 1)
		cap++;
	v = malloc(cap * sizeof *v);
	if (!v)
		return NULL;
	for (kv = f->env; kv < f->env_end; kv += strlen(kv) + 1)
		v[n++] = (char *)kv;   /* execve does not write through envp */
	v[n] = NULL;
	return v;
}

/* stdin=, stdout=, stderr= files of the line, opened here, as the pool's
 * owner (whom the host runs as), relative to the future's directory:
 * stdout and stderr truncated (>) or appended to (append:).  Returns 0 with
 * fds[i] (-1 where the line has none), or errno with what failed said. */
static int open_files(struct future *f, int fds[3])
{
	static const char *const key[3] = { "stdin", "stdout", "stderr" };
	int rc = 0;

	for (int i = 0; i < 3; i++)
		fds[i] = -1;
	for (int i = 0; i < 3 && rc == 0; i++) {
		const struct spec_file *sf = &f->spec.file[i];
		char path[2 * ORIGIN_PATH_MAX + 2];
		int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

		if (!sf->path)
			continue;
		if (sf->path[0] != '/' && f->cwd[0])
			snprintf(path, sizeof path, "%s/%s", f->cwd, sf->path);
		else
			snprintf(path, sizeof path, "%s", sf->path);
		if (i > 0)
			flags |= O_WRONLY | O_CREAT | (sf->append ? O_APPEND : O_TRUNC);
		fds[i] = open(path, flags, 0666);
		if (fds[i] < 0) {
			rc = errno;
			future_say(f, "%s=%s: %s", key[i], sf->path,
				   rc == ENXIO ? "a FIFO with no reader" : strerror(rc));
		} else {
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) & ~O_NONBLOCK);
		}
	}
	if (rc)
		for (int i = 0; i < 3; i++)
			close_fd(&fds[i]);
	return rc;
}

/* stdin /dev/null, stdout and stderr the write ends of our pipes, nothing
 * else (what the host opens is close-on-exec, but a descriptor the daemon
 * let it inherit would not be: as the fork server does, close them all),
 * the future's directory; a file or channel of the line's in place of any. */
static int child_actions(posix_spawn_file_actions_t *fa, int out, int err, const char *cwd,
			 const int io[2], const int file[3])
{
	int rc = posix_spawn_file_actions_init(fa);

	if (rc)
		return rc;
	if (file[0] >= 0)
		rc = posix_spawn_file_actions_adddup2(fa, file[0], 0);
	else if (io[0] >= 0)   /* a channel's end where the line said stdin= */
		rc = posix_spawn_file_actions_adddup2(fa, io[0], 0);
	else
		rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, file[1] >= 0 ? file[1]
						      : io[1] >= 0 ? io[1] : out, 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, file[2] >= 0 ? file[2] : err, 2);
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(fa, STDERR_FILENO + 1);
	if (!rc && cwd[0])
		rc = posix_spawn_file_actions_addchdir_np(fa, cwd);
	if (rc)
		posix_spawn_file_actions_destroy(fa);
	return rc;
}

/* posix_spawn the exec/sh line with stdout and stderr on the write ends
 * w[0], w[1].  The program is looked up on the future's own PATH (posix_spawnp
 * would search the host's).  Returns 0 with *pid, or errno. */
static int spawn_line(const struct future *f, const int w[2], const int file[3], pid_t *pid)
{
	const struct task_spec *s = &f->spec;
	const posix_spawnattr_t *attr = &f->slot->pool->child_attr;
	char *sh_argv[] = { "sh", "-c", s->argv[0], NULL };
	char prog[ORIGIN_PATH_MAX];
	posix_spawn_file_actions_t fa;
	char **envp = child_env(f);
	int rc;

	if (!envp)
		return ENOMEM;
	rc = s->workload == WL_EXEC ? -origin_which(s->argv[0], env_lookup(envp, "PATH"),
						   f->cwd[0] ? f->cwd : NULL, prog, sizeof prog)
				    : 0;
	if (!rc)
		rc = child_actions(&fa, w[0], w[1], f->cwd, f->io_fd, file);
	if (!rc) {
		if (s->workload == WL_EXEC)
			rc = posix_spawn(pid, prog, &fa, attr, s->argv, envp);
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
static int start_child(const struct future *f, const int file[3], pid_t *pid, int rd[2])
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
	rc = spawn_line(f, w, file, pid);
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
		outbox_add(f->slot, W_PW_OUTPUT, f->id, stream, 0, buf, (size_t)n);
		outbox_flush(f->slot);
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

int run_child(struct future *f)
{
	struct slot *s = f->slot;
	int rd[2], err, sig = atomic_load(&s->stop);
	pid_t pid;

	if (sig)
		return -sig;   /* stopped before it started: as if killed at once */
	int file[3];
	if (open_files(f, file))
		return CODE_CANNOT_RUN;
	err = start_child(f, file, &pid, rd);
	for (int i = 0; i < 3; i++)
		close_fd(&file[i]);   /* the child has its own */
	if (err) {
		/* posix_spawn does not say whether the program or cwd= failed. */
		const char *prog = f->spec.workload == WL_EXEC ? f->spec.argv[0] : "/bin/sh";

		if (f->cwd[0])
			future_say(f, "%s (cwd %s): %s", prog, f->cwd, strerror(err));
		else
			future_say(f, "%s: %s", prog, strerror(err));
		return err == ENOENT ? CODE_NOT_FOUND : CODE_CANNOT_RUN;
	}
	adopt_child(s, pid);
	outbox_add(s, W_PW_CHILD, f->id, pid, 0, NULL, 0);
	outbox_flush(s);
	forward_output(f, pid, rd);
	return reap_child(s, pid, &f->cpu_us);
}
