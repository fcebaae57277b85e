/* channels_int.h - the channels room's own, shared by its files only:
 *   channels.c  the table, the pumps between queues and descriptors, the API
 *   fifo.c      fifo channels: a kernel FIFO opened through a symlink
 *   rundir.c    the directory where sockets and FIFOs live
 * Everything runs with `lock` held unless said otherwise.
 */
#ifndef PCFS_CHANNELS_INT_H
#define PCFS_CHANNELS_INT_H

#include "channels.h"

enum ep_kind { EP_LISTEN, EP_CLIENT, EP_STDIN, EP_STDOUT };

struct channel;

struct endpoint {
	uint64_t id;               /* WATCH_CHAN key; never reused */
	enum ep_kind kind;
	int fd;
	struct channel *ch;
	struct endpoint *next;     /* the channel's endpoints */
	uint64_t task;             /* stdin, stdout: whose */
	int rq, wq;                /* queue it takes messages from / puts lines into, -1 */
	struct strbuf in;          /* bytes read that are not yet a message */
	bool in_eof;               /* ... and nothing more will come */
	bool paused;               /* not reading: the channel has no room */
	struct chan_msg *out;      /* the message being written */
	size_t off;                /* ... bytes of it (and its newline) written */
	bool nl;                   /* ... it needs a newline added */
	uint32_t armed;            /* epoll events registered, 0 if not registered */
};

struct channel {
	uint64_t id;
	char name[CHAN_NAME_MAX + 1];
	struct chan c;
	unsigned blocked_r, blocked_w;
	char *path;                /* sockets: the listening socket; fifos: the FIFO */
	int fifo_fd;               /* fifos: ours, read-write, until `close` (-1) */
	struct owner owner;        /* who created it: only they (and root) use its ends */
	struct endpoint *eps;
	uint64_t rr;               /* round robin: the endpoint served last */
	bool dirty;                /* the engine thread should pump it */
	struct channel *next;
};

struct chantab {
	struct channel *first;
	size_t n;
	uint64_t next_id, next_ep;
	char *rundir;              /* where sockets live, made with the first one */
};


/* rundir.c: the run directory where sockets and FIFOs live (made once). */
int chan_rundir(struct engine *e, char *err, size_t errlen);

/* fifo.c */
/* Make ch's FIFO (rundir/NAME.fifo, the owner's, 0600) and hold it open
 * read-write; size: its buffer (0: the kernel's).  0, or -errno with why. */
int fifo_make(struct engine *e, struct channel *ch, uint64_t size, char *err, size_t errlen);
/* ctl close: let go of our end (readers see EOF once the writers are gone). */
void fifo_close(struct channel *ch);
/* Bytes buffered in it now, and its buffer's size (0 when closed). */
void fifo_stat(const struct channel *ch, uint64_t *bytes, uint64_t *size);
/* A task's stdin (write false) or stdout (write true) opened on it: the
 * descriptor (blocking, close-on-exec), or -errno with why. */
int fifo_open_for_task(const struct channel *ch, bool write, char *err, size_t errlen);

#endif
