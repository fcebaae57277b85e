/* threadhost.c - `pcfs-worker threads`: run thread tasks in one process.
 *
 * The main thread only reads the daemon's socket (W_TH_START, W_TH_STOP) and
 * joins finished threads; each task thread talks to the daemon directly
 * (W_TH_STARTED, W_TH_OUTPUT, W_TH_EXIT).  A SOCK_SEQPACKET send is one atomic
 * datagram, so the threads share the socket without a lock.
 *
 * Ownership: the main thread owns the list of task threads and every struct th
 * in it; a task thread only reads its own entry, and after it sets `done` it
 * touches nothing of it again, so the main thread may join and free it.
 * Threads are joined as soon as they finish (an eventfd wakes the main thread),
 * so a host whose tasks end at different times does not keep the stacks of
 * those already over.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "modes.h"
#include "spec.h"
#include "wire.h"

struct host {
	int sock;
	int efd;                  /* eventfd: some thread has finished */
	struct gil *gil;          /* NULL without GIL */
	int64_t default_time_ms;
	struct th *threads;       /* started, not yet joined */
	unsigned ended;           /* tasks over: joined, or failed to start */
};

struct th {
	struct th *next;
	struct host *host;
	uint64_t id;              /* the daemon's task id */
	int64_t slot;
	pthread_t thread;
	atomic_int stop;          /* signal asked for by W_TH_STOP, 0 = run */
	atomic_bool done;         /* set last by the thread: it may be joined */
	bool parsed;              /* spec is valid (else err says why) */
	struct task_spec spec;
	char err[256];
};

/* --- in a task thread ------------------------------------------------- */

/* Send buf to the daemon as W_TH_OUTPUT messages for task id, a = stream,
 * at most WORKER_OUTPUT_CHUNK bytes each.  Errors are dropped: if the daemon
 * is gone, there is no one to tell. */
static void send_output(int sock, uint64_t id, int stream, const char *buf, size_t len)
{
	while (len > 0) {
		size_t n = len < WORKER_OUTPUT_CHUNK ? len : WORKER_OUTPUT_CHUNK;

		wire_send(sock, W_TH_OUTPUT, id, stream, 0, buf, n, NULL, 0);
		buf += n;
		len -= n;
	}
}

/* ctx->out: W_TH_OUTPUT messages. */
static void th_out(struct wl_ctx *ctx, int stream, const char *buf, size_t len)
{
	const struct th *t = ctx->opaque;

	send_output(t->host->sock, t->id, stream, buf, len);
}

/* "t<slot>-<workload>" in /proc/PID/task/TID/comm, for whoever looks. */
static void name_thread(const struct th *t)
{
	char name[16];

	snprintf(name, sizeof name, "t%lld-%s", (long long)t->slot,
		 t->parsed ? workload_name(t->spec.workload) : "?");
	pthread_setname_np(pthread_self(), name);
}

static void *th_main(void *arg)
{
	struct th *t = arg;
	int sock = t->host->sock, efd = t->host->efd;
	uint64_t one = 1;
	struct wl_ctx ctx = {
		.spec = &t->spec,
		.default_time_ms = t->host->default_time_ms,
		.stop = &t->stop,
		.gil = t->host->gil,
		.out = th_out,
		.opaque = t,
	};
	int code;

	name_thread(t);
	wire_send(sock, W_TH_STARTED, t->id, gettid(), 0, NULL, 0, NULL, 0);
	if (t->parsed) {
		code = workload_run(&ctx);
	} else {
		/* As `pcfs-worker run` does: the reason on stderr, exit 2. */
		wl_printf(&ctx, 2, "pcfs-worker: %s\n", t->err);
		code = 2;
	}
	wire_send(sock, W_TH_EXIT, t->id, code, thread_cputime_us(), NULL, 0, NULL, 0);

	/* After this store *t belongs to the main thread again. */
	atomic_store_explicit(&t->done, true, memory_order_release);
	while (write(efd, &one, sizeof one) < 0 && errno == EINTR)
		;
	return NULL;
}

/* --- in the main thread ----------------------------------------------- */

static void th_free(struct th *t)
{
	if (t->parsed)
		spec_free(&t->spec);
	free(t);
}

static struct th *find_live(const struct host *h, uint64_t id)
{
	for (struct th *t = h->threads; t; t = t->next)
		if (t->id == id && !atomic_load(&t->done))
			return t;
	return NULL;
}

/* Give the thread a stack deep enough for a `stack` task. */
static int size_stack(pthread_attr_t *attr, const struct th *t)
{
	size_t def, need;
	int err;

	if (!t->parsed)
		return 0;
	err = thread_stack_need(&t->spec, &need);
	if (err || need == 0)
		return err;
	if (pthread_attr_getstacksize(attr, &def) == 0 && need <= def)
		return 0;
	return pthread_attr_setstacksize(attr, need);
}

/* W_TH_START: parse and start one thread.  Failures are reported to the
 * daemon (W_TH_STARTED with -errno) and count as a task that has ended. */
static void start_thread(struct host *h, const struct wire_hdr *hdr, const char *payload)
{
	pthread_attr_t attr;
	struct th *t;
	int err;

	if (hdr->len == 0 || payload[hdr->len - 1] != '\0') {
		err = EINVAL;
		goto fail;
	}
	if (find_live(h, hdr->id)) {
		err = EEXIST;
		goto fail;
	}
	t = calloc(1, sizeof *t);
	if (!t) {
		err = ENOMEM;
		goto fail;
	}
	t->host = h;
	t->id = hdr->id;
	t->slot = hdr->a;
	t->parsed = spec_parse(payload, strlen(payload), online_cpus(), &t->spec,
			       t->err, sizeof t->err) == 0;

	err = pthread_attr_init(&attr);
	if (!err) {
		err = size_stack(&attr, t);
		if (!err)
			err = pthread_create(&t->thread, &attr, th_main, t);
		pthread_attr_destroy(&attr);
	}
	if (err) {
		th_free(t);
		goto fail;
	}
	t->next = h->threads;
	h->threads = t;
	return;
fail:
	wire_send(h->sock, W_TH_STARTED, hdr->id, -err, 0, NULL, 0, NULL, 0);
	h->ended++;
}

static void stop_thread(struct host *h, const struct wire_hdr *hdr)
{
	struct th *t = find_live(h, hdr->id);

	if (hdr->a <= 0 || hdr->a >= NSIG) {
		wlog("threads: W_TH_STOP with signal %lld ignored", (long long)hdr->a);
		return;
	}
	if (t)
		atomic_store(&t->stop, (int)hdr->a);
	/* else it has just finished: its W_TH_EXIT is on its way */
}

/* Join every thread that has finished (all of them if `all`). */
static void join_threads(struct host *h, bool all)
{
	struct th **pp = &h->threads;

	while (*pp) {
		struct th *t = *pp;

		if (!all && !atomic_load_explicit(&t->done, memory_order_acquire)) {
			pp = &t->next;
			continue;
		}
		pthread_join(t->thread, NULL);
		*pp = t->next;
		th_free(t);
		h->ended++;
	}
}

/* Read and act on one message.  Returns 1 to go on, 0 at EOF, -1 on a
 * receive error that will not go away. */
static int handle_msg(struct host *h, char *buf)
{
	struct wire_hdr hdr;
	ssize_t n = wire_recv(h->sock, buf, &hdr, NULL, NULL);

	if (n == 0 && hdr.type == 0)
		return 0;
	if (n == -EPROTO || n == -EMSGSIZE) {
		wlog("threads: dropped a malformed message: %s", strerror((int)-n));
		return 1;
	}
	if (n < 0) {
		wlog("threads: receive: %s", strerror((int)-n));
		return -1;
	}
	switch (hdr.type) {
	case W_TH_START:
		start_thread(h, &hdr, buf + sizeof hdr);
		break;
	case W_TH_STOP:
		stop_thread(h, &hdr);
		break;
	default:
		wlog("threads: unexpected message type %u", hdr.type);
		break;
	}
	return 1;
}

/* Serve until EOF, or (nthreads > 0) until that many tasks have ended. */
static int serve(struct host *h, unsigned nthreads)
{
	static char buf[WIRE_MAX];  /* static: too big for a stack, one reader */

	while (nthreads == 0 || h->ended < nthreads) {
		struct pollfd pfd[2] = {
			{ .fd = h->sock, .events = POLLIN },
			{ .fd = h->efd, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			wlog("threads: poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[1].revents) {
			uint64_t cnt;

			/* Drain first, then scan: a thread finishing after the
			 * scan has written again and wakes the next poll. */
			if (read(h->efd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
				wlog("threads: eventfd: %s", strerror(errno));
			join_threads(h, false);
		}
		if (pfd[0].revents) {
			int r = handle_msg(h, buf);

			if (r <= 0)
				return r < 0;  /* EOF: take no more work */
		}
	}
	return 0;
}

int threadhost_main(bool gil, int64_t default_time_ms, unsigned nthreads)
{
	struct host h = { .sock = WORKER_SOCK_FD, .default_time_ms = default_time_ms };
	int code;

	if (!watch_parent() || !check_sock())
		return 1;
	/* wire_send uses MSG_NOSIGNAL, but a workload writing to a broken pipe
	 * must not kill every thread of the host either. */
	signal(SIGPIPE, SIG_IGN);
	h.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h.efd < 0) {
		wlog("threads: eventfd: %s", strerror(errno));
		return 1;
	}
	if (gil) {
		h.gil = gil_new(WORKER_GIL_INTERVAL_US);
		if (!h.gil) {
			wlog("threads: out of memory");
			close(h.efd);
			return 1;
		}
	}

	code = serve(&h, nthreads);
	join_threads(&h, true);  /* running threads finish their work first */

	gil_free(h.gil);
	close(h.efd);
	return code;
}
