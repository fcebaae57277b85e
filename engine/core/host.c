/* host.c - worker hosts: pcfs-worker processes the engine talks to over a
 * SOCK_SEQPACKET socket.  Here: their table, reading their sockets (batches
 * unpacked), and their death, which ends the tasks still attached to them.
 * What a message means is the business of the room that made the host,
 * through its host_ops (exec: a spawn line's threads; pools: a pool's slots).
 *
 * Everything here runs on the engine thread with `lock` held, but host_add,
 * which any thread may call with `lock` held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"

static void host_close(struct engine *e, struct host *h)
{
	engine_close_watched(e, &h->sock);
}

struct host *host_add(struct engine *e, pid_t pid, int sock, const struct host_ops *ops,
		      struct pool *pool)
{
	struct host *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->id = e->next_host_id++;
	h->pid = pid;
	h->sock = sock;
	h->ops = ops;
	h->pool = pool;
	h->next = e->hosts;
	e->hosts = h;
	engine_watch(e, sock, WATCH_HOST, h->id);
	return h;
}

static void host_free_if_done(struct engine *e, struct host *h)
{
	if (!h->reaped || h->sock >= 0 || h->live)
		return;
	for (struct host **pp = &e->hosts; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	free(h);
}

/* The threads of a host that died without reporting their end died with it. */
void host_died(struct engine *e, struct host *h, int status)
{
	char why[96];
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "%s (pid %d) was killed by signal %d",
			 h->ops->what, h->pid, WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "%s (pid %d) exited with status %d",
			 h->ops->what, h->pid, WEXITSTATUS(status));
	/* Its last W_TH_EXIT messages may still sit in the socket: read them
	 * while the host still counts as alive, so only we free it below. */
	host_readable(e, h->id);
	h->reaped = true;
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	for (struct task *t = e->live_first, *n; t && h->live; t = n) {
		n = t->lnext;   /* its end takes it off the list */
		if (t->host != h)
			continue;
		h->live--;
		if (!clean)
			snprintf(t->error, sizeof(t->error), "%s", why);
		if (WIFEXITED(status))
			task_ended(e, t, TS_EXITED, WEXITSTATUS(status));
		else
			task_ended(e, t, TS_KILLED, -WTERMSIG(status));
	}
	if (h->ops->died)
		h->ops->died(e, h, clean ? NULL : why);
	if (h->live == 0)
		host_close(e, h);
	pthread_cond_broadcast(&e->cond);
	if (!clean)
		log_add(e, e->stopping ? LOG_LVL_DEBUG : LOG_LVL_WARN, "%s", why);
	host_free_if_done(e, h);
}

void host_readable(struct engine *e, uint64_t hid)
{
	struct host *h;
	for (h = e->hosts; h; h = h->next)
		if (h->id == hid)
			break;
	if (!h || h->sock < 0)
		return;
	char *buf = e->host_buf;    /* only the engine thread reads hosts */
	/* h may be freed below; its owner outlives it (pools go only through
	 * the API, never on this thread) */
	const struct host_ops *ops = h->ops;
	struct pool *pool = h->pool;
	for (;;) {
		struct wire_hdr m;
		ssize_t n = wire_recv(h->sock, buf, &m, NULL, NULL);
		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n < 0 || m.type == 0) {
			host_close(e, h);
			host_free_if_done(e, h);
			break;
		}
		if (m.type != W_BATCH) {
			ops->message(e, h, &m, buf + sizeof(struct wire_hdr), (size_t)n);
			continue;
		}
		/* several messages in one datagram (wire.h) */
		const char *batch = buf + sizeof(struct wire_hdr), *pl;
		struct wire_hdr r;
		size_t pos = 0;
		int k;
		while ((k = wire_batch_next(batch, (size_t)n, &pos, &r, &pl)) > 0)
			ops->message(e, h, &r, pl, r.len);
		if (k < 0)
			log_add(e, LOG_LVL_WARN, "worker %d sent a malformed batch: the rest is lost",
				h->pid);
	}
	if (ops->drained)
		ops->drained(e, pool);
}

/* ---- timeouts ------------------------------------------------------------- */

void hosts_free(struct engine *e)
{
	for (struct host *h = e->hosts, *n; h; h = n) {
		n = h->next;
		if (h->sock >= 0)
			close(h->sock);
		free(h);
	}
	e->hosts = NULL;
}
