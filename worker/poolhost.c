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
 *
 * This file sets the host up and runs its main thread; poolhost.h lists the
 * files that do the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common.h"
#include "modes.h"
#include "poolhost.h"
#include "wire.h"

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
	n = format_reason(buf, sizeof buf, fmt, ap);
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
			join_slots(p, false);
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
	join_slots(p, true);
	pool_free(p);
	return code;
}
