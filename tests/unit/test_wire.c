/* test_wire.c - the worker wire protocol over a SOCK_SEQPACKET socketpair. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "wire.h"

#define PAYLOAD_MAX (WIRE_MAX - sizeof(struct wire_hdr))

struct fixture {
	int sv[2];
	char *buf;      /* WIRE_MAX bytes for wire_recv */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv), 0);
	f->buf = malloc(WIRE_MAX);
	assert_non_null(f->buf);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->sv[0] >= 0)
		close(f->sv[0]);
	if (f->sv[1] >= 0)
		close(f->sv[1]);
	free(f->buf);
	free(f);
	return 0;
}

/* Nothing (more) waiting on the socket. */
static void assert_empty(int sock)
{
	char c;

	assert_int_equal(recv(sock, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static int count_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_int_equal(sa.st_dev, sb.st_dev);
	assert_int_equal(sa.st_ino, sb.st_ino);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	static const char payload[] = "cpu ops=5\0/tmp\0A=1\0";
	struct wire_hdr h;
	ssize_t n;

	assert_int_equal(wire_send(f->sv[0], W_FORK, UINT64_MAX, -7, WIRE_NO_NICE,
				   payload, sizeof payload, NULL, 0), 0);
	n = wire_recv(f->sv[1], f->buf, &h, NULL, NULL);
	assert_int_equal(n, sizeof payload);
	assert_int_equal(h.type, W_FORK);
	assert_int_equal(h.len, sizeof payload);
	assert_true(h.id == UINT64_MAX);
	assert_true(h.a == -7);
	assert_true(h.b == WIRE_NO_NICE);
	assert_memory_equal(f->buf + sizeof h, payload, sizeof payload);
	assert_empty(f->sv[1]);
}

static void test_empty_payload(void **state)
{
	struct fixture *f = *state;
	struct wire_hdr h;
	int fds[3], nfds = -1;

	assert_int_equal(wire_send(f->sv[1], W_FORKED, 42, 1234, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(wire_recv(f->sv[0], f->buf, &h, fds, &nfds), 0);
	assert_int_equal(h.type, W_FORKED);     /* a message, not EOF */
	assert_int_equal(h.len, 0);
	assert_true(h.id == 42 && h.a == 1234 && h.b == 0);
	assert_int_equal(nfds, 0);
}

/* Messages stay separate and in order. */
static void test_boundaries(void **state)
{
	struct fixture *f = *state;
	struct wire_hdr h;

	assert_int_equal(wire_send(f->sv[0], W_TH_OUTPUT, 1, 1, 0, "ab", 2, NULL, 0), 0);
	assert_int_equal(wire_send(f->sv[0], W_TH_OUTPUT, 2, 2, 0, "cde", 3, NULL, 0), 0);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, NULL, NULL), 2);
	assert_true(h.id == 1 && h.a == 1);
	assert_memory_equal(f->buf + sizeof h, "ab", 2);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, NULL, NULL), 3);
	assert_true(h.id == 2 && h.a == 2);
	assert_memory_equal(f->buf + sizeof h, "cde", 3);
}

static void test_fds(void **state)
{
	struct fixture *f = *state;
	int p[2], nul, sent[3], got[3], nfds = -1;
	struct wire_hdr h;
	char c;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(nul >= 0);
	sent[0] = nul;
	sent[1] = p[1];
	sent[2] = p[1];
	assert_int_equal(wire_send(f->sv[0], W_FORK, 9, 1, 0, "noop\0\0", 6, sent, 3), 0);
	/* The message owns copies: closing ours changes nothing for the peer. */
	close(p[1]);
	close(nul);

	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, got, &nfds), 6);
	assert_int_equal(nfds, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(got[i] >= 0);
		assert_int_equal(fcntl(got[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	}
	assert_int_not_equal(got[1], got[2]);   /* one file, two descriptors */
	same_file(got[1], got[2]);
	assert_int_equal(write(got[2], "x", 1), 1);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	for (int i = 0; i < 3; i++)
		close(got[i]);
	close(p[0]);
}

static void test_fds_refused(void **state)
{
	struct fixture *f = *state;
	int p[2], before;
	struct wire_hdr h;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	before = count_open_fds();
	assert_int_equal(wire_send(f->sv[0], W_FORK, 1, 1, 0, "x", 1, p, 2), 0);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, NULL, NULL), 1);
	assert_int_equal(h.type, W_FORK);
	assert_int_equal(count_open_fds(), before);   /* received and closed */
	close(p[0]);
	close(p[1]);
}

static void test_eof(void **state)
{
	struct fixture *f = *state;
	struct wire_hdr h = { .type = 99 };
	int fds[3], nfds = -1;

	assert_int_equal(wire_send(f->sv[0], W_TH_EXIT, 5, -15, 77, NULL, 0, NULL, 0), 0);
	close(f->sv[0]);
	f->sv[0] = -1;
	/* What was sent before the close is still delivered, then EOF. */
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, fds, &nfds), 0);
	assert_int_equal(h.type, W_TH_EXIT);
	assert_true(h.a == -15 && h.b == 77);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, fds, &nfds), 0);
	assert_int_equal(h.type, 0);
	assert_int_equal(nfds, 0);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, fds, &nfds), 0);
	assert_int_equal(h.type, 0);
}

static void test_send_to_closed(void **state)
{
	struct fixture *f = *state;

	close(f->sv[1]);
	f->sv[1] = -1;
	/* EPIPE, and no SIGPIPE to kill the test. */
	assert_int_equal(wire_send(f->sv[0], W_TH_OUTPUT, 1, 1, 0, "x", 1, NULL, 0), -EPIPE);
}

static void test_max_payload(void **state)
{
	struct fixture *f = *state;
	char *payload = malloc(PAYLOAD_MAX);
	int p[2], got[3], nfds = -1;
	struct wire_hdr h;

	assert_non_null(payload);
	for (size_t i = 0; i < PAYLOAD_MAX; i++)
		payload[i] = (char)(i * 7 + 3);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* The default SO_SNDBUF is below WIRE_MAX: wire_send must cope. */
	assert_int_equal(wire_send(f->sv[0], W_TH_OUTPUT, 3, 1, 2, payload, PAYLOAD_MAX,
				   p, 2), 0);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, got, &nfds), (ssize_t)PAYLOAD_MAX);
	assert_int_equal(h.len, PAYLOAD_MAX);
	assert_int_equal(nfds, 2);
	assert_memory_equal(f->buf + sizeof h, payload, PAYLOAD_MAX);
	same_file(got[0], p[0]);
	same_file(got[1], p[1]);
	for (int i = 0; i < 2; i++) {
		close(got[i]);
		close(p[i]);
	}
	free(payload);
}

static void test_oversize_refused(void **state)
{
	struct fixture *f = *state;
	char *payload = calloc(1, PAYLOAD_MAX + 1);

	assert_non_null(payload);
	assert_int_equal(wire_send(f->sv[0], W_TH_OUTPUT, 1, 1, 0, payload, PAYLOAD_MAX + 1,
				   NULL, 0), -EMSGSIZE);
	assert_int_equal(wire_send(f->sv[0], W_TH_OUTPUT, 1, 1, 0, payload, SIZE_MAX,
				   NULL, 0), -EMSGSIZE);
	assert_empty(f->sv[1]);   /* nothing half-sent */
	free(payload);
}

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	int fds[4] = { 0, 0, 0, 0 };

	assert_int_equal(wire_send(f->sv[0], W_FORK, 1, 0, 0, NULL, 0, fds, 4), -EINVAL);
	assert_int_equal(wire_send(f->sv[0], W_FORK, 1, 0, 0, NULL, 0, fds, -1), -EINVAL);
	assert_int_equal(wire_send(f->sv[0], W_FORK, 1, 0, 0, NULL, 0, NULL, 1), -EINVAL);
	assert_int_equal(wire_send(f->sv[0], W_FORK, 1, 0, 0, NULL, 5, NULL, 0), -EINVAL);
	assert_int_equal(wire_send(-1, W_FORK, 1, 0, 0, NULL, 0, NULL, 0), -EBADF);
	assert_empty(f->sv[1]);
}

/* Datagrams that wire_send never makes are refused by wire_recv, and the
 * next good message still comes through. */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	struct wire_hdr h = { .type = W_FORKED, .len = 10 }, got;
	int big = 4 * WIRE_MAX, p[2], before, fds[3], nfds = -1;
	char *huge = calloc(1, WIRE_MAX + 1);
	struct iovec iov = { &h, sizeof h };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	int four[4];

	assert_non_null(huge);
	/* shorter than a header */
	assert_int_equal(send(f->sv[0], "abc", 3, 0), 3);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &got, NULL, NULL), -EPROTO);
	/* len disagrees with the datagram */
	assert_int_equal(send(f->sv[0], &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &got, NULL, NULL), -EPROTO);
	/* type 0 is reserved for EOF */
	h.type = 0;
	h.len = 0;
	assert_int_equal(send(f->sv[0], &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &got, NULL, NULL), -EPROTO);
	/* longer than WIRE_MAX */
	assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
	assert_int_equal(send(f->sv[0], huge, WIRE_MAX + 1, 0), WIRE_MAX + 1);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &got, NULL, NULL), -EMSGSIZE);

	/* four descriptors: more than a message may carry; none may leak */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	before = count_open_fds();
	h.type = W_FORK;
	four[0] = four[1] = p[0];
	four[2] = four[3] = p[1];
	memset(&ctl, 0, sizeof ctl);
	msg.msg_control = ctl.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof four);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof four);
	memcpy(CMSG_DATA(c), four, sizeof four);
	assert_int_equal(sendmsg(f->sv[0], &msg, 0), (ssize_t)sizeof h);
	assert_true(wire_recv(f->sv[1], f->buf, &got, fds, &nfds) < 0);
	assert_int_equal(nfds, 0);
	assert_int_equal(count_open_fds(), before);
	close(p[0]);
	close(p[1]);

	assert_int_equal(wire_send(f->sv[0], W_TH_STOP, 8, 15, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &got, NULL, NULL), 0);
	assert_int_equal(got.type, W_TH_STOP);
	assert_true(got.id == 8 && got.a == 15);
	free(huge);
}

/* ---- batches ---------------------------------------------------------------- */

/* Several records in one datagram come out whole, in order, padding and all;
 * one record alone goes as a plain message. */
static void test_batch_roundtrip(void **state)
{
	struct fixture *f = *state;
	char space[256];
	struct wire_batch b = { .buf = space, .cap = sizeof space };
	struct wire_hdr h, r;
	const char *pl;
	size_t pos = 0;
	ssize_t n;

	assert_true(wire_batch_add(&b, W_PW_DONE, 7, 0, 12, NULL, 0));
	assert_true(wire_batch_add(&b, W_PW_OUTPUT, 8, 2, 0, "abc", 3));   /* padded to 8 */
	assert_true(wire_batch_add(&b, W_PW_START, 9, 1, 0, NULL, 0));
	assert_int_equal(b.n, 3);
	assert_int_equal(b.len, 3 * sizeof(struct wire_hdr) + 8);
	assert_int_equal(wire_batch_send(f->sv[0], &b), 0);
	assert_int_equal(b.n, 0);
	assert_int_equal(b.len, 0);
	n = wire_recv(f->sv[1], f->buf, &h, NULL, NULL);
	assert_int_equal(h.type, W_BATCH);
	assert_int_equal(h.a, 3);
	const char *batch = f->buf + sizeof h;
	assert_int_equal(wire_batch_next(batch, (size_t)n, &pos, &r, &pl), 1);
	assert_int_equal(r.type, W_PW_DONE);
	assert_int_equal(r.id, 7);
	assert_int_equal(r.b, 12);
	assert_int_equal(r.len, 0);
	assert_int_equal(wire_batch_next(batch, (size_t)n, &pos, &r, &pl), 1);
	assert_int_equal(r.type, W_PW_OUTPUT);
	assert_int_equal(r.len, 3);
	assert_memory_equal(pl, "abc", 3);
	assert_int_equal(wire_batch_next(batch, (size_t)n, &pos, &r, &pl), 1);
	assert_int_equal(r.type, W_PW_START);
	assert_int_equal(r.id, 9);
	assert_int_equal(wire_batch_next(batch, (size_t)n, &pos, &r, &pl), 0);

	assert_true(wire_batch_add(&b, W_PW_REVOKE, 5, 1, 44, NULL, 0));
	assert_int_equal(wire_batch_send(f->sv[0], &b), 0);
	assert_int_equal(wire_recv(f->sv[1], f->buf, &h, NULL, NULL), 0);
	assert_int_equal(h.type, W_PW_REVOKE);
	assert_int_equal(h.b, 44);
	assert_int_equal(wire_batch_send(f->sv[0], &b), 0);   /* empty: nothing sent */
	assert_empty(f->sv[1]);
}

/* A batch takes what fits and refuses the rest without appending a byte. */
static void test_batch_full(void **state)
{
	char space[2 * sizeof(struct wire_hdr) + 16];
	struct wire_batch b = { .buf = space, .cap = sizeof space };

	(void)state;
	assert_int_equal(wire_record_size(0), sizeof(struct wire_hdr));
	assert_int_equal(wire_record_size(1), sizeof(struct wire_hdr) + 8);
	assert_int_equal(wire_record_size(8), sizeof(struct wire_hdr) + 8);
	assert_true(wire_batch_add(&b, W_PW_RUN, 1, 1, 0, "noop", 5));
	assert_false(wire_batch_add(&b, W_PW_RUN, 2, 1, 0, "noop and more", 14));
	assert_int_equal(b.n, 1);
	assert_int_equal(b.len, wire_record_size(5));
	assert_true(wire_batch_add(&b, W_PW_RUN, 2, 1, 0, "noop", 5));
	assert_false(wire_batch_add(&b, W_PW_STOP, 3, 9, 0, NULL, 0));
	assert_int_equal(b.n, 2);
}

/* Malformed records end the batch with -EPROTO, never an overrun: short
 * headers, lengths past the end, type 0, nested batches. */
static void test_batch_malformed(void **state)
{
	char buf[128];
	struct wire_hdr h = { .type = W_PW_DONE, .len = 0, .id = 1 }, r;
	const char *pl;
	size_t pos;

	(void)state;
	memcpy(buf, &h, sizeof h);
	pos = 0;
	assert_int_equal(wire_batch_next(buf, sizeof h - 1, &pos, &r, &pl), -EPROTO);
	h.len = 9;
	memcpy(buf, &h, sizeof h);
	pos = 0;
	assert_int_equal(wire_batch_next(buf, sizeof h + 8, &pos, &r, &pl), -EPROTO);
	pos = 0;   /* the last record's padding may be missing */
	assert_int_equal(wire_batch_next(buf, sizeof h + 9, &pos, &r, &pl), 1);
	assert_int_equal(pos, sizeof h + 9);
	h.len = 0;
	h.type = 0;
	memcpy(buf, &h, sizeof h);
	pos = 0;
	assert_int_equal(wire_batch_next(buf, sizeof h, &pos, &r, &pl), -EPROTO);
	h.type = W_BATCH;
	memcpy(buf, &h, sizeof h);
	pos = 0;
	assert_int_equal(wire_batch_next(buf, sizeof h, &pos, &r, &pl), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boundaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_to_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_roundtrip, setup, teardown),
		cmocka_unit_test(test_batch_full),
		cmocka_unit_test(test_batch_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
