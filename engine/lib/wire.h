/* wire.h - messages between the daemon and its worker processes.
 *
 * The daemon never runs a workload itself.  It talks to small single-threaded
 * (or, for thread hosts, purpose-built) `pcfs-worker` processes over
 * SOCK_SEQPACKET socketpairs: one datagram is one message, so a message is
 * never split or merged and the reader needs no framing.
 *
 *   fork server  (pcfs-worker forkserver, fd 3): W_FORK -> W_FORKED
 *   thread host  (pcfs-worker threads, fd 3):    W_TH_START/W_TH_STOP in,
 *                                                W_TH_STARTED/W_TH_OUTPUT/W_TH_EXIT out
 *
 * Each message is a fixed header followed by `len` payload bytes.  String
 * payloads are packed as consecutive NUL-terminated strings.  A task line is
 * carried as text and parsed again by the worker with spec_parse().
 */
#ifndef PCFS_WIRE_H
#define PCFS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WIRE_MAX 262144          /* largest message, header included */
#define WIRE_NO_NICE INT64_MIN

enum wire_type {
	/* daemon -> fork server.  Carries 3 descriptors (SCM_RIGHTS): the task's
	 * stdin, stdout, stderr.  id = task id, a = enum start_method (FORK or
	 * CLONE), b = nice or WIRE_NO_NICE.  Payload: line \0 cwd \0 cred \0
	 * {K=V \0}... (cwd "" = inherit; cred "UID GID G1 G2 ..." the task
	 * drops to, "" = stay the server's; the K=V are the task's whole
	 * environment).  The server double-forks so the
	 * daemon (a child subreaper) becomes the task's parent, puts the task in
	 * its own process group, wires fds 0-2, drops to cred, applies cwd, nice
	 * and env, runs the workload and _exits with its result. */
	W_FORK = 1,
	/* fork server -> daemon: id = task id, a = pid (> 0) or -errno. */
	W_FORKED,

	/* daemon -> thread host: start one thread.  id = task id, a = slot (the
	 * host-local thread number, 1..N), payload: line \0.  Every thread of one
	 * host shares the host's GIL setting (argv of the host). */
	W_TH_START,
	/* host -> daemon: id = task id, a = tid, or -errno if it could not start. */
	W_TH_STARTED,
	/* host -> daemon: id = task id, a = 1 (stdout) or 2 (stderr), payload = bytes. */
	W_TH_OUTPUT,
	/* host -> daemon: id = task id, a = exit code (>= 0) or -signal when it
	 * was stopped by W_TH_STOP, b = user CPU usec, payload: "" */
	W_TH_EXIT,
	/* daemon -> host: id = task id, a = signal number (15 term, 9 kill): the
	 * thread stops cooperatively at its next check (within ~10 ms) and exits
	 * with -a.  Nothing else in the host is touched. */
	W_TH_STOP,

	/* Pool hosts (pcfs-worker pool GIL DEFAULT_TIME_MS NSLOTS, fd 3): NSLOTS
	 * long-lived slot threads, each running futures one after another (a
	 * process pool is N hosts of one slot, a thread pool one host of N).
	 *
	 * host -> daemon, once per slot when its thread is up: a = slot (1..),
	 * b = its tid.  Also sent for slots added by W_PW_SLOTS. */
	W_PW_READY,
	/* daemon -> host: run future `id` on slot a (which is idle).  Payload:
	 * line \0 {K=V \0}*: the environment for exec/sh children (PCFS_ID,
	 * PCFS_SLOT, PCFS_MOUNT, the line's env=); built-ins run in the slot
	 * thread itself.  b says which descriptors come with it, in this order:
	 * 1 the child's stdin, 2 its stdout (channels wired by stdin=/stdout=). */
	W_PW_RUN,
	/* host -> daemon: output of future id, a = 1 stdout / 2 stderr. */
	W_PW_OUTPUT,
	/* host -> daemon: an exec/sh future's child started: a = its pid (the
	 * child leads its own process group; the host reaps it). */
	W_PW_CHILD,
	/* host -> daemon: future id ended: a = exit code (>= 0) or -signal (a
	 * child killed by a signal, or a built-in stopped by W_PW_STOP), b = CPU
	 * microseconds it used (thread CPU time, or the child's user+sys). */
	W_PW_DONE,
	/* daemon -> host: stop future id: a = signal.  Built-ins stop
	 * cooperatively (ctx.stop); exec/sh children get kill(-pgid, a). */
	W_PW_STOP,
	/* daemon -> host: have slots 1..N, N = a (grow: new slots send
	 * W_PW_READY; shrink: the slots above N exit once idle, each sending
	 * W_PW_GONE; a slot ended and wanted again says GONE, then READY). */
	W_PW_SLOTS,
	/* host -> daemon: slot a has exited (after W_PW_SLOTS shrank it). */
	W_PW_GONE,

	/* Pipelining (see engine/pools/pool.c).  A slot holds a small FIFO of futures
	 * handed to it ahead: W_PW_RUN queues a future on slot a, which runs its
	 * queue in order.
	 *
	 * host -> daemon: future id starts now on slot a.  Sent before the
	 * future runs (so a future that kills its worker is known to have been
	 * running), in the same datagram as what its slot reported since its
	 * last send (the previous future's W_PW_DONE, typically). */
	W_PW_START,
	/* daemon -> host: take back future id from slot a's queue if it has not
	 * started (a cancel, a pause).  b is echoed in the answer. */
	W_PW_REVOKE,
	/* host -> daemon: a = 1: future id was taken off slot a's queue and
	 * will not run; a = 0: it was not queued there (started, or over).
	 * b: the W_PW_REVOKE's b, or 0 when the host drops a slot's queue on
	 * its own (the slot was retired by W_PW_SLOTS). */
	W_PW_REVOKED,

	/* Either way: several messages in one datagram.  The payload is a
	 * sequence of records, each a struct wire_hdr and its `len` payload
	 * bytes, padded to a multiple of 8.  A batch neither nests nor carries
	 * descriptors: a message with descriptors travels alone. */
	W_BATCH,
};

struct wire_hdr {
	uint32_t type;   /* enum wire_type */
	uint32_t len;    /* payload bytes following the header */
	uint64_t id;
	int64_t a;
	int64_t b;
};

/* Send one message (header + payload) with up to 3 descriptors attached.
 * Returns 0 or -errno.  Retries EINTR.  A socket whose send buffer is smaller
 * than the message is enlarged on the first EMSGSIZE, so either side may
 * leave its buffer at the default. */
int wire_send(int sock, uint32_t type, uint64_t id, int64_t a, int64_t b,
	      const void *payload, size_t len, const int *fds, int nfds);

/* Building a W_BATCH: records are appended to buf until the next does not
 * fit, then the batch is sent (wire_batch_send) and starts again empty. */
#define WIRE_BATCH_MAX 65536     /* bytes of records one batch collects */

struct wire_batch {
	char *buf;                   /* cap bytes, the owner's */
	size_t cap;                  /* at most WIRE_BATCH_MAX */
	size_t len;                  /* bytes of records in buf */
	unsigned n;                  /* records */
};

/* Bytes a record of `len` payload bytes takes in a batch. */
size_t wire_record_size(size_t len);
/* Append one record; returns false (and appends nothing) if it does not fit. */
bool wire_batch_add(struct wire_batch *b, uint32_t type, uint64_t id, int64_t a, int64_t c,
		    const void *payload, size_t len);
/* Send what the batch holds, if anything, and empty it: one record goes as a
 * plain message, several as one W_BATCH.  Returns 0 or -errno. */
int wire_batch_send(int sock, struct wire_batch *b);
/* The next record of a W_BATCH payload p[0..len) from *pos: returns 1 with
 * *hdr and *payload (hdr->len bytes) and advances *pos, 0 at the end, or
 * -EPROTO if the record is malformed (short, overlong, type 0, a nested
 * W_BATCH); the rest of the batch is then lost. */
int wire_batch_next(const char *p, size_t len, size_t *pos, struct wire_hdr *hdr,
		    const char **payload);

/* Receive one message into buf (at least WIRE_MAX bytes).  On success returns
 * the payload length (>= 0) and fills *hdr; the payload starts at
 * buf + sizeof(struct wire_hdr).  Received descriptors (close-on-exec) go to
 * fds[0..*nfds-1] (pass nfds = NULL to refuse them: they are closed).  Returns
 * 0 with hdr->type == 0 at EOF, or -errno. */
ssize_t wire_recv(int sock, void *buf, struct wire_hdr *hdr, int *fds, int *nfds);

#endif
