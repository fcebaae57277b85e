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
	 * drops to, "" = stay the server's).  The server double-forks so the
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

/* Receive one message into buf (at least WIRE_MAX bytes).  On success returns
 * the payload length (>= 0) and fills *hdr; the payload starts at
 * buf + sizeof(struct wire_hdr).  Received descriptors (close-on-exec) go to
 * fds[0..*nfds-1] (pass nfds = NULL to refuse them: they are closed).  Returns
 * 0 with hdr->type == 0 at EOF, or -errno. */
ssize_t wire_recv(int sock, void *buf, struct wire_hdr *hdr, int *fds, int *nfds);

#endif
