/* wire.c - one message = one SOCK_SEQPACKET datagram (see wire.h).
 *
 * A datagram is [struct wire_hdr][len payload bytes], optionally with up to
 * WIRE_FDS descriptors in a single SCM_RIGHTS control message.  The kernel
 * keeps datagrams whole, so neither side frames, buffers or reassembles; the
 * receiver only checks that what arrived is a well-formed message.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wire.h"

#define WIRE_FDS 3  /* most descriptors one message carries (stdin, stdout, stderr) */

/* Control buffer for WIRE_FDS descriptors, aligned for struct cmsghdr. */
union wire_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * WIRE_FDS)];
	struct cmsghdr align;
};

/* An AF_UNIX datagram larger than the sender's SO_SNDBUF (less a little
 * overhead) fails with EMSGSIZE, and the usual default (net.core.wmem_default,
 * 208 KiB) is below WIRE_MAX.  wire.h promises the sockets are "sized for the
 * largest message" but offers no constructor, so the sender grows its buffer
 * the first time it needs to.  The kernel doubles the value and caps it at
 * 2 * net.core.wmem_max; returns 0 if the buffer is now bigger than it was. */
static int grow_sndbuf(int sock)
{
	int before, after, want = 2 * WIRE_MAX;
	socklen_t sl = sizeof before;

	if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &before, &sl) < 0)
		return -errno;
	if (setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &want, sizeof want) < 0)
		return -errno;
	sl = sizeof after;
	if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &after, &sl) < 0)
		return -errno;
	return after > before ? 0 : -EMSGSIZE;
}

int wire_send(int sock, uint32_t type, uint64_t id, int64_t a, int64_t b,
	      const void *payload, size_t len, const int *fds, int nfds)
{
	struct wire_hdr h = { .type = type, .id = id, .a = a, .b = b };
	union wire_cmsg ctl;
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 1 };
	size_t total = sizeof h + len;
	int grown = 0;
	ssize_t n;

	if (len > WIRE_MAX - sizeof h)
		return -EMSGSIZE;
	if (nfds < 0 || nfds > WIRE_FDS || (nfds > 0 && !fds) || (len > 0 && !payload))
		return -EINVAL;
	h.len = (uint32_t)len;

	iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof h };
	if (len > 0) {
		/* sendmsg does not write through iov_base; the cast only drops const. */
		iov[1] = (struct iovec){ .iov_base = (void *)payload, .iov_len = len };
		msg.msg_iovlen = 2;
	}
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof ctl);  /* no uninitialised padding on the wire */
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = &ctl.align;  /* CMSG_FIRSTHDR(&msg), which cannot be NULL here */
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}

	for (;;) {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EMSGSIZE && !grown) {
			grown = 1;
			if (grow_sndbuf(sock) == 0)
				continue;
			errno = EMSGSIZE;
		}
		return -errno;
	}
	/* A seqpacket send is all or nothing; anything else is a kernel surprise. */
	return (size_t)n == total ? 0 : -EIO;
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Move the descriptors of every SCM_RIGHTS message in msg into rx[] (at most
 * WIRE_FDS); any beyond that are closed.  Returns how many rx[] holds, or
 * -EPROTO (after closing all of them) if there were too many. */
static int take_fds(struct msghdr *msg, int *rx)
{
	int n = 0, extra = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t cnt;
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (n < WIRE_FDS) {
				rx[n++] = fd;
			} else {
				close(fd);
				extra = 1;
			}
		}
	}
	if (extra) {
		close_all(rx, n);
		return -EPROTO;
	}
	return n;
}

ssize_t wire_recv(int sock, void *buf, struct wire_hdr *hdr, int *fds, int *nfds)
{
	union wire_cmsg ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = WIRE_MAX };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf,
	};
	int rx[WIRE_FDS];
	int nrx, err = 0;
	ssize_t n;

	if (nfds)
		*nfds = 0;
	memset(hdr, 0, sizeof *hdr);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	/* Whatever else is wrong, descriptors that arrived are ours to close. */
	nrx = take_fds(&msg, rx);
	if (nrx < 0) {
		err = nrx;
		nrx = 0;
	}

	if (n == 0) {
		/* EOF.  (A zero-length datagram reads the same, but wire_send never
		 * sends one: every message has a header.) */
		close_all(rx, nrx);
		return 0;
	}
	if (msg.msg_flags & MSG_TRUNC)
		err = -EMSGSIZE;        /* longer than WIRE_MAX: the tail is lost */
	else if (msg.msg_flags & MSG_CTRUNC)
		err = -EPROTO;          /* descriptors dropped by the kernel */
	else if ((size_t)n < sizeof *hdr)
		err = -EPROTO;
	if (!err) {
		memcpy(hdr, buf, sizeof *hdr);
		if (hdr->len != (size_t)n - sizeof *hdr || hdr->type == 0)
			err = -EPROTO;  /* type 0 is how EOF is reported */
	}
	if (err) {
		memset(hdr, 0, sizeof *hdr);
		close_all(rx, nrx);
		return err;
	}

	if (nfds) {
		memcpy(fds, rx, sizeof(int) * (size_t)nrx);
		*nfds = nrx;
	} else {
		close_all(rx, nrx);
	}
	return hdr->len;
}

/* ---- batches ---------------------------------------------------------------- */

#define WIRE_ALIGN 8

size_t wire_record_size(size_t len)
{
	return sizeof(struct wire_hdr) + ((len + WIRE_ALIGN - 1) & ~(size_t)(WIRE_ALIGN - 1));
}

bool wire_batch_add(struct wire_batch *b, uint32_t type, uint64_t id, int64_t a, int64_t c,
		    const void *payload, size_t len)
{
	struct wire_hdr h = { .type = type, .len = (uint32_t)len, .id = id, .a = a, .b = c };
	size_t need = wire_record_size(len);

	if (len > WIRE_BATCH_MAX || b->len > b->cap || need > b->cap - b->len)
		return false;
	memcpy(b->buf + b->len, &h, sizeof h);
	if (len > 0)
		memcpy(b->buf + b->len + sizeof h, payload, len);
	/* zero the padding: no uninitialised bytes on the wire */
	memset(b->buf + b->len + sizeof h + len, 0, need - sizeof h - len);
	b->len += need;
	b->n++;
	return true;
}

int wire_batch_send(int sock, struct wire_batch *b)
{
	int rc = 0;

	if (b->n == 1) {
		struct wire_hdr h;

		memcpy(&h, b->buf, sizeof h);
		rc = wire_send(sock, h.type, h.id, h.a, h.b, h.len ? b->buf + sizeof h : NULL,
			       h.len, NULL, 0);
	} else if (b->n > 1) {
		rc = wire_send(sock, W_BATCH, 0, b->n, 0, b->buf, b->len, NULL, 0);
	}
	b->len = 0;
	b->n = 0;
	return rc;
}

int wire_batch_next(const char *p, size_t len, size_t *pos, struct wire_hdr *hdr,
		    const char **payload)
{
	size_t left;

	if (*pos >= len)
		return 0;
	left = len - *pos;
	if (left < sizeof *hdr)
		return -EPROTO;
	memcpy(hdr, p + *pos, sizeof *hdr);
	if (hdr->type == 0 || hdr->type == W_BATCH || hdr->len > left - sizeof *hdr)
		return -EPROTO;
	*payload = p + *pos + sizeof *hdr;
	/* the last record's padding may be missing: a batch ends where it ends */
	*pos += wire_record_size(hdr->len) < left ? wire_record_size(hdr->len) : left;
	return 1;
}
