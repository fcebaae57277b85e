/* channels.c - named channels, and the pumps that bridge them to descriptors.
 *
 * The table of channels lives under the engine lock.  API calls (from the fs
 * layer's request threads) only move messages in and out of a channel's
 * queues; everything that talks to a descriptor runs on the engine thread:
 *
 *   listener  a socket channel's listening AF_UNIX socket: accepts clients
 *   client    one connected client: each line it sends becomes a message of
 *             q[0] (get); messages of q[1] (put) are written to the clients
 *             round robin, one whole message at a time
 *   stdin     a task's stdin (stdin=CHANNEL): a socketpair fed one message at
 *             a time, the next only once the task has read the last, so a farm
 *             of workers shares the queue's messages by readiness; the end of
 *             the channel (closed and drained) is EOF on the task's stdin
 *   stdout    a task's stdout (stdout=CHANNEL): each line is one message
 *
 * Pumps never block and never drop: a pump that has a line and no room stops
 * reading its descriptor (so the task or client blocks in write(2), as with a
 * pipe) until a get makes room.  Line endpoints frame messages by newlines:
 * a message going out gets a '\n' if it does not end with one; a line coming
 * in keeps its '\n', and one longer than maxmsg is cut into maxmsg pieces.
 *
 * Every change marks the channel dirty and queues an OBJ_CHANNEL
 * notification; API calls then poke the engine thread, which pumps dirty
 * channels and delivers the notifications outside the lock.  Delivering from
 * the engine thread only is what lets the fs answer a parked request from a
 * hook while holding that request's handle lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "channels_int.h"
#include "cmdtab.h"

#define READ_CHUNK 65536
#define READS_PER_EVENT 16     /* then let other descriptors have a turn */

/* ---- the table -------------------------------------------------------------- */

static struct chantab *tab(struct engine *e)
{
	if (!e->chans) {
		e->chans = calloc(1, sizeof(*e->chans));
		if (e->chans)
			e->chans->next_id = e->chans->next_ep = 1;
	}
	return e->chans;
}

static struct channel *find(struct engine *e, uint64_t id)
{
	if (!e->chans)
		return NULL;
	for (struct channel *ch = e->chans->first; ch; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

static struct channel *find_name(struct engine *e, const char *name)
{
	if (!e->chans)
		return NULL;
	for (struct channel *ch = e->chans->first; ch; ch = ch->next)
		if (!strcmp(ch->name, name))
			return ch;
	return NULL;
}

static struct endpoint *find_ep(struct engine *e, uint64_t id)
{
	if (!e->chans)
		return NULL;
	for (struct channel *ch = e->chans->first; ch; ch = ch->next)
		for (struct endpoint *ep = ch->eps; ep; ep = ep->next)
			if (ep->id == id)
				return ep;
	return NULL;
}

/* The queue an end writes to (write) or reads from; -1 if it does not. */
static int queue_of(enum chan_type t, enum chan_end end, bool write)
{
	switch (t) {
	case CHAN_QUEUE:
		return (write ? end == CHAN_END_PUT : end == CHAN_END_GET) ? 0 : -1;
	case CHAN_SOCKET:
		if (write)
			return end == CHAN_END_PUT ? 1 : -1;
		return end == CHAN_END_GET ? 0 : -1;
	case CHAN_PIPE:
		if (end == CHAN_END_A)
			return write ? 0 : 1;
		if (end == CHAN_END_B)
			return write ? 1 : 0;
		return -1;
	default:
		return -1;
	}
}

/* A task wired to a pipe plays its end b, so a shell talks to it through a. */
static enum chan_end task_end(const struct channel *ch, bool write)
{
	if (ch->c.type == CHAN_PIPE)
		return CHAN_END_B;
	return write ? CHAN_END_PUT : CHAN_END_GET;
}

static void changed(struct engine *e, struct channel *ch)
{
	ch->dirty = true;
	engine_notify_locked(e, OBJ_CHANNEL, ch->id);
}

/* Wake the engine thread: it pumps and delivers the notifications. */
static void kick(struct engine *e)
{
	uint64_t one = 1;
	if (write(e->wakefd, &one, sizeof(one)) < 0)
		return;   /* saturated: a wakeup is pending anyway */
}

/* ---- endpoints ----------------------------------------------------------------- */

static void ep_arm(struct engine *e, struct endpoint *ep, uint32_t events)
{
	if (events == ep->armed)
		return;
	struct epoll_event ev = { .events = events, .data.u64 = WATCH_KEY(WATCH_CHAN, ep->id) };
	int op = !events ? EPOLL_CTL_DEL : ep->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	/* A paused endpoint leaves the set entirely: a hung-up descriptor would
	 * otherwise report EPOLLHUP forever, whatever the mask. */
	if (epoll_ctl(e->epfd, op, ep->fd, &ev) < 0 && op != EPOLL_CTL_DEL) {
		log_add(e, LOG_LVL_ERROR, "channel %s: epoll: %s", ep->ch->name, strerror(errno));
		return;
	}
	ep->armed = events;
}

static struct endpoint *ep_new(struct engine *e, struct channel *ch, enum ep_kind kind, int fd)
{
	struct endpoint *ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->id = e->chans->next_ep++;
	ep->kind = kind;
	ep->fd = fd;
	ep->ch = ch;
	ep->rq = ep->wq = -1;
	ep->next = ch->eps;
	ch->eps = ep;
	return ep;
}

static void ep_close(struct engine *e, struct endpoint *ep)
{
	struct channel *ch = ep->ch;
	for (struct endpoint **pp = &ch->eps; *pp; pp = &(*pp)->next) {
		if (*pp == ep) {
			*pp = ep->next;
			break;
		}
	}
	ep_arm(e, ep, 0);
	close(ep->fd);
	/* A message not begun is given back; one partly written is gone with
	 * its reader (its first bytes were delivered: it cannot be re-sent). */
	if (ep->out && ep->off == 0 && ep->rq >= 0)
		chan_unget(&ch->c, ep->rq, ep->out);
	else
		chan_msg_free(ep->out);
	sb_free(&ep->in);
	free(ep);
	changed(e, ch);
}

/* Write what is left of ep->out: 1 all written, 0 it would block, <0 the
 * reader is gone. */
static int ep_flush(struct endpoint *ep)
{
	static const char newline = '\n';
	size_t len = ep->out->len, total = len + ep->nl;
	while (ep->off < total) {
		struct iovec iov[2];
		int n = 0;
		if (ep->off < len)
			iov[n++] = (struct iovec){ ep->out->data + ep->off, len - ep->off };
		if (ep->nl)
			iov[n++] = (struct iovec){ (void *)&newline, 1 };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(ep->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		ep->off += (size_t)w;
	}
	chan_msg_free(ep->out);
	ep->out = NULL;
	ep->off = 0;
	return 1;
}

/* Can ep take the next message now?  A task's stdin holds at most one that
 * the task has not read, so idle workers are the ones fed.  SIOCOUTQ counts
 * the socket's write memory, and the kernel (sock_wfree) wakes us while it
 * still holds 1 of it, dropped just after: read then, that 1 is not a
 * message (any real one counts hundreds of bytes with its overhead), and
 * taking it for one would wait for a wakeup that never comes. */
static bool ep_idle(const struct endpoint *ep)
{
	if (ep->out)
		return false;
	if (ep->kind != EP_STDIN)
		return true;
	int unread = 0;
	return ioctl(ep->fd, SIOCOUTQ, &unread) == 0 && unread <= 1;
}

static uint32_t reading_events(const struct endpoint *ep)
{
	uint32_t ev = ep->paused || ep->in_eof ? 0 : EPOLLIN;
	if (ep->kind == EP_CLIENT && ep->out)
		ev |= EPOLLOUT;
	return ev;
}

/* Start writing m to ep. */
static void ep_give(struct engine *e, struct endpoint *ep, struct chan_msg *m)
{
	ep->out = m;
	ep->off = 0;
	ep->nl = m->data[m->len - 1] != '\n';
	int rc = ep_flush(ep);
	if (rc < 0) {
		ep_close(e, ep);
		return;
	}
	if (ep->kind == EP_CLIENT)   /* stdin is always armed, edge-triggered */
		ep_arm(e, ep, reading_events(ep));
}

/* Turn what ep has read into messages of q[wq]: 0 all whole lines are in,
 * -EAGAIN no room (the rest waits), -EPIPE the channel takes no more. */
static int ep_lines(struct engine *e, struct endpoint *ep)
{
	struct chan *c = &ep->ch->c;
	size_t max = c->maxmsg < c->max_bytes ? c->maxmsg : c->max_bytes;
	while (ep->in.len) {
		const char *nl = memchr(ep->in.buf, '\n', ep->in.len);
		size_t cut;
		if (nl)
			cut = (size_t)(nl - ep->in.buf) + 1;
		else if (ep->in.len >= max || ep->in_eof)
			cut = ep->in.len;    /* a last line without newline, or too long */
		else
			return 0;
		if (cut > max)
			cut = max;
		struct chan_msg *m = chan_msg_new(ep->in.buf, cut);
		if (!m)
			return -EAGAIN;      /* try again at the next pump */
		int rc = chan_put_msg(c, ep->wq, m);
		if (rc < 0) {
			chan_msg_free(m);
			return rc == -EAGAIN ? -EAGAIN : -EPIPE;
		}
		sb_consume(&ep->in, cut);
		changed(e, ep->ch);
	}
	return 0;
}

/* Move lines on; pause or resume reading accordingly.  Returns false if ep
 * was closed. */
static bool ep_produce(struct engine *e, struct endpoint *ep)
{
	int rc = ep_lines(e, ep);
	if (rc == -EPIPE) {
		/* The channel takes no more: a task writing on gets EPIPE; a
		 * client still receives what is queued for it. */
		if (ep->kind == EP_STDOUT) {
			ep_close(e, ep);
			return false;
		}
		sb_reset(&ep->in);
		ep->in_eof = true;
		rc = 0;
	}
	if (ep->kind == EP_STDOUT && ep->in_eof && ep->in.len == 0) {
		ep_close(e, ep);   /* the writer is done and all it wrote is in */
		return false;
	}
	/* A client that shut its sending side (socat at the end of its input)
	 * stays as a receiver until it is gone. */
	ep->paused = rc == -EAGAIN;
	ep_arm(e, ep, reading_events(ep));
	return true;
}

/* Read what the descriptor has (a bounded amount), then make messages. */
static void ep_read(struct engine *e, struct endpoint *ep)
{
	char chunk[READ_CHUNK];
	for (int i = 0; i < READS_PER_EVENT && !ep->paused && !ep->in_eof; i++) {
		ssize_t n = read(ep->fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			ep->in_eof = true;   /* the end, or the peer is gone */
			break;
		}
		sb_add(&ep->in, chunk, (size_t)n);
		if (sb_error(&ep->in)) {
			log_add(e, LOG_LVL_ERROR, "channel %s: out of memory reading a line; "
				"closing that reader", ep->ch->name);
			sb_free(&ep->in);
			ep->in_eof = true;
			break;
		}
		if (ep_lines(e, ep) < 0)
			break;
	}
	ep_produce(e, ep);
}

static void accept_clients(struct engine *e, struct endpoint *lst)
{
	for (;;) {
		int fd = accept4(lst->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_add(e, LOG_LVL_WARN, "channel %s: accept: %s", lst->ch->name,
					strerror(errno));
			return;
		}
		struct endpoint *ep = ep_new(e, lst->ch, EP_CLIENT, fd);
		if (!ep) {
			close(fd);
			return;
		}
		ep->rq = 1;
		ep->wq = 0;
		ep_arm(e, ep, EPOLLIN);
		changed(e, lst->ch);   /* messages may be waiting for a client */
	}
}

static void chan_event(struct engine *e, uint64_t id, uint32_t events)
{
	struct endpoint *ep = find_ep(e, id);
	if (!ep)
		return;   /* closed earlier in this batch */
	struct channel *ch = ep->ch;
	ch->dirty = true;
	switch (ep->kind) {
	case EP_LISTEN:
		accept_clients(e, ep);
		return;
	case EP_STDIN:
		/* An edge: the task read something, or went away. */
		if (ep->out && ep_flush(ep) < 0) {
			ep_close(e, ep);
			return;
		}
		if (events & (EPOLLHUP | EPOLLERR))
			ep_close(e, ep);
		return;
	case EP_CLIENT:
		if ((events & EPOLLOUT) && ep->out) {
			int rc = ep_flush(ep);
			if (rc < 0) {
				ep_close(e, ep);
				return;
			}
			ep_arm(e, ep, reading_events(ep));
		}
		__attribute__((fallthrough));   /* a client is read as a task's stdout is */
	case EP_STDOUT:
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			ep_read(e, ep);
		return;
	}
}

/* Hand waiting messages of q[qi] to idle endpoints, round robin. */
static void distribute(struct engine *e, struct channel *ch, int qi)
{
	for (;;) {
		if (ch->c.q[qi].depth == 0)
			return;
		/* the first idle taker after the one served last, wrapping */
		struct endpoint *pick = NULL, *first = NULL;
		for (struct endpoint *ep = ch->eps; ep; ep = ep->next) {
			if (ep->rq != qi || !ep_idle(ep))
				continue;
			if (ep->id > ch->rr && (!pick || ep->id < pick->id))
				pick = ep;
			if (!first || ep->id < first->id)
				first = ep;
		}
		if (!pick)
			pick = first;
		if (!pick)
			return;
		struct chan_msg *m;
		if (chan_get(&ch->c, qi, &m) != 1)
			return;
		ch->rr = pick->id;
		changed(e, ch);
		ep_give(e, pick, m);
	}
}

static void pump_one(struct engine *e, struct channel *ch)
{
	for (int qi = 0; qi < 2; qi++)
		distribute(e, ch, qi);
	for (struct endpoint *ep = ch->eps, *next; ep; ep = next) {
		next = ep->next;
		if (ep->rq >= 0 && !ep->out && ch->c.closed && ch->c.q[ep->rq].depth == 0) {
			/* the end of what it reads: EOF for the task or the client */
			ep_close(e, ep);
			continue;
		}
		if (ep->wq >= 0 && (ep->paused || ep->in.len || ep->in_eof))
			ep_produce(e, ep);
	}
}

static void chan_pump(struct engine *e)
{
	if (!e->chans)
		return;
	for (struct channel *ch = e->chans->first; ch; ch = ch->next) {
		/* each pass either moves something or clears the flag */
		for (int pass = 0; ch->dirty && pass < 64; pass++) {
			ch->dirty = false;
			pump_one(e, ch);
		}
		if (ch->dirty)
			kick(e);   /* more to do: come back after the others */
	}
}

/* A task ended: what it wrote is in its stdout pipe now; take it before the
 * end is told, as for captured output (as far as the channel has room). */
static void chan_task_ended(struct engine *e, struct task *t)
{
	if (!e->chans)
		return;
	for (struct channel *ch = e->chans->first; ch; ch = ch->next)
		for (struct endpoint *ep = ch->eps; ep; ep = ep->next)
			if (ep->kind == EP_STDOUT && ep->task == t->id) {
				ep_read(e, ep);
				return;
			}
}

/* ---- sockets -------------------------------------------------------------------- */

static int open_listener(struct engine *e, struct channel *ch, char *err, size_t errlen)
{
	int rc = chan_rundir(e, err, errlen);
	if (rc < 0)
		return rc;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", e->chans->rundir,
			 ch->name);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s/%s.sock is too long", e->chans->rundir,
			 ch->name);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	unlink(sa.sun_path);   /* left by a daemon that died: the directory is ours */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		goto fail;
	ch->path = strdup(sa.sun_path);
	struct endpoint *ep = ch->path ? ep_new(e, ch, EP_LISTEN, fd) : NULL;
	if (!ep) {
		errno = ENOMEM;
		goto fail;
	}
	ep_arm(e, ep, EPOLLIN);
	return 0;
fail:
	rc = -errno;
	snprintf(err, errlen, "socket %s: %s", sa.sun_path, strerror(errno));
	if (fd >= 0) {
		close(fd);
		unlink(sa.sun_path);
	}
	free(ch->path);
	ch->path = NULL;
	return rc;
}

/* ---- the API -------------------------------------------------------------------- */

static void channel_free(struct engine *e, struct channel *ch)
{
	while (ch->eps)
		ep_close(e, ch->eps);
	fifo_close(ch);
	if (ch->path)
		unlink(ch->path);
	free(ch->path);
	chan_destroy(&ch->c);
	free(ch);
}

int engine_chan_create(struct engine *e, const struct chan_spec *s, uint64_t *id, char *err,
		       size_t errlen)
{
	return engine_chan_create_as(e, s, &e->self, id, err, errlen);
}

int engine_chan_create_as(struct engine *e, const struct chan_spec *s, const struct owner *who,
			  uint64_t *id, char *err, size_t errlen)
{
	if (!chan_name_ok(s->name)) {
		snprintf(err, errlen, "bad channel name");
		return -EINVAL;
	}
	struct channel *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	strcpy(ch->name, s->name);
	ch->owner = *who;
	ch->fifo_fd = -1;
	chan_init(&ch->c, s->type, s->capacity ? s->capacity : e->cfg.chan_capacity,
		  s->maxmsg ? s->maxmsg : e->cfg.chan_maxmsg, e->cfg.chan_max_bytes);
	chan_set_mode(&ch->c, s->mode);

	int rc = 0;
	pthread_mutex_lock(&e->lock);
	struct chantab *t = tab(e);
	if (!t) {
		rc = -ENOMEM;
	} else if (find_name(e, s->name)) {
		snprintf(err, errlen, "channel '%s' exists", s->name);
		rc = -EEXIST;
	} else if (t->n >= e->cfg.max_channels) {
		snprintf(err, errlen, "limit: %zu channels exist; max_channels=%u", t->n,
			 e->cfg.max_channels);
		rc = -ENOSPC;
	} else {
		ch->id = t->next_id++;
		if (s->type == CHAN_SOCKET)
			rc = open_listener(e, ch, err, errlen);
		else if (s->type == CHAN_FIFO)
			rc = fifo_make(e, ch, s->pipe_size, err, errlen);
	}
	if (rc == 0) {
		ch->next = t->first;
		t->first = ch;
		t->n++;
		*id = ch->id;
		log_add(e, LOG_LVL_INFO, "channel %s: %s created for uid %u (mode %s, capacity %u, "
			"maxmsg %llu)%s%s", ch->name, chan_type_name(s->type), (unsigned)who->uid,
			chan_mode_name(ch->c.mode), ch->c.capacity,
			(unsigned long long)ch->c.maxmsg, ch->path ? " at " : "",
			ch->path ? ch->path : "");
	}
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		channel_free(e, ch);
	return rc;
}

/* Bytes wait in a fifo that is still open. */
static bool fifo_holds(const struct channel *ch)
{
	uint64_t bytes, size;
	fifo_stat(ch, &bytes, &size);
	return bytes > 0;
}

int engine_chan_remove(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	int rc = 0;
	if (!ch)
		rc = -ENOENT;
	else if (ch->blocked_r || ch->blocked_w)
		rc = -EBUSY;
	else if (!ch->c.closed && (ch->c.q[0].depth || ch->c.q[1].depth || fifo_holds(ch)))
		rc = -ENOTEMPTY;
	if (rc == 0) {
		for (struct channel **pp = &e->chans->first; *pp; pp = &(*pp)->next) {
			if (*pp == ch) {
				*pp = ch->next;
				break;
			}
		}
		e->chans->n--;
		log_add(e, LOG_LVL_INFO, "channel %s removed", ch->name);
		engine_notify_locked(e, OBJ_CHANNEL, id);   /* stragglers see the end */
		channel_free(e, ch);
	}
	pthread_mutex_unlock(&e->lock);
	if (rc == 0)
		kick(e);
	return rc;
}

int engine_chan_lookup(struct engine *e, const char *name, uint64_t *id)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find_name(e, name);
	if (ch)
		*id = ch->id;
	pthread_mutex_unlock(&e->lock);
	return ch ? 0 : -ENOENT;
}

int engine_chan_type(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	int rc = ch ? (int)ch->c.type : -ENOENT;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct chan_entry *)a)->name, ((const struct chan_entry *)b)->name);
}

int engine_chan_list(struct engine *e, struct chan_entry **out, size_t *nout)
{
	pthread_mutex_lock(&e->lock);
	size_t n = e->chans ? e->chans->n : 0, k = 0;
	struct chan_entry *v = malloc((n ? n : 1) * sizeof(*v));
	if (v && n) {
		for (struct channel *ch = e->chans->first; ch; ch = ch->next) {
			v[k].id = ch->id;
			strcpy(v[k].name, ch->name);
			k++;
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (!v)
		return -ENOMEM;
	qsort(v, k, sizeof(*v), by_name);
	*out = v;
	*nout = k;
	return 0;
}

int engine_chan_put(struct engine *e, uint64_t id, enum chan_end end, const void *buf,
		    size_t len)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	int qi = ch ? queue_of(ch->c.type, end, true) : -1;
	int rc = !ch ? -EPIPE : qi < 0 ? -EBADF : chan_put(&ch->c, qi, buf, len);
	if (rc == 0)
		changed(e, ch);
	pthread_mutex_unlock(&e->lock);
	if (rc == 0)
		kick(e);
	return rc;
}


/* A write that could never go in, whatever the readers do: said in /log,
 * since the writer only sees an errno. */
static void log_never_fits(struct engine *e, const struct channel *ch, int rc)
{
	const char *what = ch->c.mode == CHAN_MODE_LINES ? "line" : "message";
	if (rc == -ENOSPC)
		log_add(e, LOG_LVL_WARN, "channel %s: refused a write: a %s over max_bytes (%llu "
			"bytes) could never fit", ch->name, what,
			(unsigned long long)ch->c.max_bytes);
	else if (rc == -EMSGSIZE)
		log_add(e, LOG_LVL_WARN, "channel %s: refused a write: a %s over maxmsg (%llu "
			"bytes)", ch->name, what, (unsigned long long)ch->c.maxmsg);
}

ssize_t engine_chan_write(struct engine *e, uint64_t id, enum chan_end end, const char *head,
			  size_t hlen, const char *buf, size_t len)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	int qi = ch ? queue_of(ch->c.type, end, true) : -1;
	ssize_t rc;
	if (!ch || qi < 0)
		rc = !ch ? -EPIPE : -EBADF;
	else if (ch->c.mode == CHAN_MODE_LINES)
		rc = chan_put_lines(&ch->c, qi, head, hlen, buf, len);
	else if ((rc = chan_put_joined(&ch->c, qi, head, hlen, buf, len)) == 0)
		rc = (ssize_t)len;   /* head: an unfinished line of lines mode, now ended */
	if (rc > 0)
		changed(e, ch);
	else if (rc < 0 && rc != -EAGAIN && ch)
		log_never_fits(e, ch, (int)rc);
	pthread_mutex_unlock(&e->lock);
	if (rc > 0)
		kick(e);
	return rc;
}

bool engine_chan_write_waits(struct engine *e, uint64_t id, enum chan_end end, size_t hlen,
			     const char *buf, size_t len)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	int qi = ch ? queue_of(ch->c.type, end, true) : -1;
	bool waits = false;
	if (qi >= 0 && ch->c.mode == CHAN_MODE_LINES)
		waits = chan_lines_refuse(&ch->c, qi, hlen, buf, len) == -EAGAIN;
	else if (qi >= 0)
		waits = !chan_can_put(&ch->c, qi, hlen + len);
	pthread_mutex_unlock(&e->lock);
	return waits;
}

int engine_chan_take(struct engine *e, uint64_t id, enum chan_end end, size_t room,
		     struct chan_msg **out)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	int qi = ch ? queue_of(ch->c.type, end, false) : -1;
	int rc = !ch ? 0 : qi < 0 ? -EBADF
		: chan_get_upto(&ch->c, qi, ch->c.mode == CHAN_MODE_LINES ? room : 0, out);
	if (rc == 1)
		changed(e, ch);   /* room for a blocked writer or a paused pump */
	pthread_mutex_unlock(&e->lock);
	if (rc == 1)
		kick(e);
	return rc;
}

/* One message: a take with no room for a second. */
int engine_chan_get(struct engine *e, uint64_t id, enum chan_end end, struct chan_msg **out)
{
	return engine_chan_take(e, id, end, 0, out);
}

unsigned engine_chan_events(struct engine *e, uint64_t id, enum chan_end end, size_t len)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	unsigned ev = 0;
	if (!ch) {
		ev = POLLIN | POLLOUT | POLLHUP | POLLERR;   /* gone: EOF, EPIPE */
	} else {
		int r = queue_of(ch->c.type, end, false), w = queue_of(ch->c.type, end, true);
		if (r >= 0 && chan_can_get(&ch->c, r))
			ev |= POLLIN | (ch->c.q[r].depth ? 0 : POLLHUP);
		if (w >= 0 && ch->c.closed)
			ev |= POLLOUT | POLLERR;
		else if (w >= 0 && chan_can_put(&ch->c, w, len))
			ev |= POLLOUT;
	}
	pthread_mutex_unlock(&e->lock);
	return ev;
}

int engine_chan_info(struct engine *e, uint64_t id, struct chan_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	if (ch) {
		out->id = ch->id;
		strcpy(out->name, ch->name);
		out->type = ch->c.type;
		out->mode = ch->c.mode;
		out->capacity = ch->c.capacity;
		out->maxmsg = ch->c.maxmsg;
		out->max_bytes = ch->c.max_bytes;
		out->closed = ch->c.closed;
		for (int qi = 0; qi < 2; qi++) {
			out->q[qi] = ch->c.q[qi];
			out->q[qi].head = out->q[qi].tail = NULL;
		}
		out->blocked_readers = ch->blocked_r;
		out->blocked_writers = ch->blocked_w;
		for (struct endpoint *ep = ch->eps; ep; ep = ep->next) {
			out->clients += ep->kind == EP_CLIENT;
			out->wired += ep->kind == EP_STDIN || ep->kind == EP_STDOUT;
		}
		if (ch->path)
			snprintf(out->address, sizeof(out->address), "%s", ch->path);
		if (ch->c.type == CHAN_FIFO) {   /* the kernel's figures: bytes, buffer */
			uint64_t size;
			fifo_stat(ch, &out->q[0].bytes, &size);
			out->max_bytes = size;
		}
		out->owner = ch->owner;
	}
	pthread_mutex_unlock(&e->lock);
	return ch ? 0 : -ENOENT;
}

static int chan_owner(struct engine *e, enum eng_obj kind, uint64_t id, struct owner *out)
{
	if (kind != OBJ_CHANNEL)
		return -ESRCH;
	struct channel *ch = find(e, id);
	if (!ch)
		return -ENOENT;
	*out = ch->owner;
	return 0;
}

/* A ctl line, staged by chan_ctl_tab's handlers and done once the whole
 * line is known good: `close`, or any of the settings. */
struct chan_cmd {
	bool close, set_capacity, set_mode;
	uint32_t capacity;
	enum chan_mode mode;
};

static int want_close(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	((struct chan_cmd *)ctx)->close = true;
	return 0;
}

static int set_capacity(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct chan_cmd *c = ctx;
	c->set_capacity = true;
	return chan_parse_capacity(argv[1], &c->capacity, err, errlen);
}

static int set_mode(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct chan_cmd *c = ctx;
	c->set_mode = true;
	return chan_parse_mode(argv[1], &c->mode, err, errlen);
}

/* channels/NAME/ctl: one command a line. */
static const struct cmdtab chan_ctl_tab[] = {
	{ "close", 0, 0, want_close, "close" },
	{ "capacity=", 1, 1, set_capacity, "capacity=N" },
	{ "mode=", 1, 1, set_mode, "mode=lines|message" },
};

static void close_channel(struct engine *e, struct channel *ch)
{
	chan_close(&ch->c);
	fifo_close(ch);   /* a fifo's readers see EOF once its writers are gone */
	/* no new clients; the connected ones are closed once drained */
	for (struct endpoint *ep = ch->eps, *n; ep; ep = n) {
		n = ep->next;
		if (ep->kind == EP_LISTEN)
			ep_close(e, ep);
	}
}

/* Apply a line's settings, all or none: mode= only while no message waits. */
static int apply_settings(struct channel *ch, const struct chan_cmd *c, char *err,
			  size_t errlen)
{
	if ((c->set_mode || c->set_capacity) && ch->c.type == CHAN_FIFO) {
		snprintf(err, errlen, "a fifo has no messages to count or frame: capacity= and "
			 "mode= do not apply (its buffer is size= when it is made)");
		return -EINVAL;
	}
	if (c->set_mode && c->mode != ch->c.mode && chan_set_mode(&ch->c, c->mode) < 0) {
		snprintf(err, errlen, "mode=%s: %u messages wait in the channel; its mode changes "
			 "only while it is empty", chan_mode_name(c->mode),
			 ch->c.q[0].depth + ch->c.q[1].depth);
		return -EBUSY;
	}
	if (c->set_capacity)
		chan_set_capacity(&ch->c, c->capacity);
	return 0;
}

int engine_chan_ctl(struct engine *e, uint64_t id, const char *cmd, char *err, size_t errlen)
{
	struct chan_cmd c = { 0 };
	int rc = cmd_exec(chan_ctl_tab, sizeof(chan_ctl_tab) / sizeof(chan_ctl_tab[0]), cmd, &c,
			  err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	if (!ch)
		rc = -ENOENT;
	else if (c.close)
		close_channel(e, ch);
	else
		rc = apply_settings(ch, &c, err, errlen);
	if (rc == 0) {
		changed(e, ch);
		log_add(e, LOG_LVL_INFO, "channel %s: %s", ch->name, cmd);
	}
	pthread_mutex_unlock(&e->lock);
	kick(e);
	return rc;
}

void engine_chan_blocked(struct engine *e, uint64_t id, bool writer, int delta)
{
	pthread_mutex_lock(&e->lock);
	struct channel *ch = find(e, id);
	if (ch) {
		unsigned *n = writer ? &ch->blocked_w : &ch->blocked_r;
		if (delta > 0 || *n > 0)
			*n += (unsigned)delta;
	}
	pthread_mutex_unlock(&e->lock);
}

static void chan_free_all(struct engine *e)
{
	struct chantab *t = e->chans;
	if (!t)
		return;
	for (struct channel *ch = t->first, *n; ch; ch = n) {
		n = ch->next;
		channel_free(e, ch);
	}
	if (t->rundir)
		rmdir(t->rundir);
	free(t->rundir);
	free(t);
	e->chans = NULL;
}

/* ---- wiring tasks' stdio ------------------------------------------------------------- */

/* Whether who may wire a task to the channels named (NULL: not wired); the
 * reason in err if not.  With `lock` held. */
static int wiring_allowed(struct engine *e, const char *stdin_chan, const char *stdout_chan,
			  const struct owner *who, char *err, size_t errlen)
{
	const char *names[2] = { stdin_chan, stdout_chan };
	for (int i = 0; i < 2; i++) {
		struct channel *ch = names[i] ? find_name(e, names[i]) : NULL;
		if (names[i] && !ch) {
			snprintf(err, errlen, "%s=%s: no such channel (create it in /channels first)",
				 i ? "stdout" : "stdin", names[i]);
			return -ENOENT;
		}
		if (ch && !access_may_control(&ch->owner, who->uid)) {
			/* wiring a task to it reads or writes it: its owner's right */
			snprintf(err, errlen, "%s=%s: the channel belongs to uid %u",
				 i ? "stdout" : "stdin", names[i], (unsigned)ch->owner.uid);
			return -EACCES;
		}
	}
	return 0;
}

int chan_check_wiring(struct engine *e, const struct task_spec *s, const struct owner *who,
		      char *err, size_t errlen)
{
	pthread_mutex_lock(&e->lock);
	int rc = wiring_allowed(e, s->stdin_chan, s->stdout_chan, who, err, errlen);
	pthread_mutex_unlock(&e->lock);
	return rc == -ENOENT ? -EINVAL : rc;
}

int chan_wire_prepare(struct engine *e, const struct task_spec *s, const struct owner *who,
		      struct chan_wiring *w, char *err, size_t errlen)
{
	pthread_mutex_lock(&e->lock);
	int rc = chan_wire_prepare_locked(e, s->stdin_chan, s->stdout_chan, who, w, err, errlen);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int chan_wire_prepare_locked(struct engine *e, const char *stdin_chan, const char *stdout_chan,
			     const struct owner *who, struct chan_wiring *w, char *err,
			     size_t errlen)
{
	*w = (struct chan_wiring){ .child_stdin = -1, .our_stdin = -1, .child_stdout = -1 };
	if (!stdin_chan && !stdout_chan)
		return 0;
	/* Checked again now, not only when the line was parsed: a queued
	 * future's channel may have been removed since, and another user may
	 * have made one of the same name. */
	int rc = wiring_allowed(e, stdin_chan, stdout_chan, who, err, errlen);
	if (rc < 0)
		return rc;
	struct channel *in = stdin_chan ? find_name(e, stdin_chan) : NULL;
	struct channel *out = stdout_chan ? find_name(e, stdout_chan) : NULL;
	/* a fifo is opened for the task itself: nothing of ours in between */
	if (out && out->c.type == CHAN_FIFO) {
		if ((w->child_stdout = fifo_open_for_task(out, true, err, errlen)) < 0)
			return w->child_stdout;
		out = NULL;
	}
	if (in && in->c.type == CHAN_FIFO) {
		if ((w->child_stdin = fifo_open_for_task(in, false, err, errlen)) < 0) {
			rc = w->child_stdin;
			chan_wire_release(w);
			return rc;
		}
		in = NULL;
	}
	w->in_chan = in ? in->id : 0;
	w->out_chan = out ? out->id : 0;
	if (in) {
		/* A socket, not a pipe: its writer is woken when the reader has
		 * consumed what it was sent (SIOCOUTQ then says 0), which is how
		 * one message at a time reaches each worker. */
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			rc = -errno;
			snprintf(err, errlen, "socketpair");
			return rc;
		}
		shutdown(sv[0], SHUT_RD);
		shutdown(sv[1], SHUT_WR);
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		w->our_stdin = sv[0];
		w->child_stdin = sv[1];
	}
	return 0;
}

bool chan_wire_attach(struct engine *e, uint64_t task, struct chan_wiring *w, int stdout_fd)
{
	struct channel *ch;
	if (w->our_stdin >= 0) {
		struct endpoint *ep = NULL;
		if ((ch = find(e, w->in_chan)) && (ep = ep_new(e, ch, EP_STDIN, w->our_stdin))) {
			ep->task = task;
			ep->rq = queue_of(ch->c.type, task_end(ch, false), false);
			ep_arm(e, ep, EPOLLOUT | EPOLLET);
			changed(e, ch);
		} else {
			close(w->our_stdin);   /* the channel is gone: EOF at once */
		}
		w->our_stdin = -1;
	}
	if (!w->out_chan || !(ch = find(e, w->out_chan)))
		return false;
	struct endpoint *ep = ep_new(e, ch, EP_STDOUT, stdout_fd);
	if (!ep)
		return false;
	ep->task = task;
	ep->wq = queue_of(ch->c.type, task_end(ch, true), true);
	ep_arm(e, ep, EPOLLIN);
	return true;
}

void chan_wire_release(struct chan_wiring *w)
{
	if (w->child_stdin >= 0)
		close(w->child_stdin);
	if (w->our_stdin >= 0)
		close(w->our_stdin);
	if (w->child_stdout >= 0)
		close(w->child_stdout);
	w->child_stdin = w->our_stdin = w->child_stdout = -1;
}

static const struct watch_row chan_watches[] = {
	{ .type = WATCH_CHAN, .fn = chan_event },
};

const struct room channels_room = {
	.name = "channels",
	.fini = chan_free_all,
	.task_ended = chan_task_ended,
	.watches = chan_watches,
	.nwatches = sizeof(chan_watches) / sizeof(chan_watches[0]),
	.turn_end = chan_pump,
	.owner = chan_owner,
};
