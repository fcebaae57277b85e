/* fifo.c - fifo channels: a kernel FIFO that producers and consumers open
 * through the channel's `fifo` symlink, so its bytes never cross FUSE (the
 * floor doc/perf-notes.md measured for one write per message).  pcfs keeps
 * the control plane:
 *
 *   - while the channel is open the daemon holds the FIFO read-write
 *     (fifo_fd), so neither side's open(2) blocks, a reader that finds it
 *     empty waits (no EOF) and a writer whose reader went away waits (no
 *     SIGPIPE), as with a queue; its buffer is the channel's capacity;
 *   - `ctl close` lets go of that end: once the last writer closes, readers
 *     read EOF (and a writer with no reader left gets EPIPE), as with any
 *     pipe;
 *   - `stat` reads what is buffered (FIONREAD) and the buffer's size;
 *   - stdin=/stdout= open the FIFO itself for the task, nobody in between;
 *   - removing the channel unlinks it: who holds it open keeps it.
 *
 * It is the kernel's pipe, not a queue of messages: a write of at most
 * PIPE_BUF (4 KiB) bytes is never interleaved with another writer's, a read
 * returns whatever bytes are there.  The FIFO is its owner's (mode 0600) in
 * the daemon's run directory, as a socket channel's socket is; that
 * directory is the daemon user's alone, so only that user makes fifos.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels_int.h"

static int fail(char *err, size_t errlen, const char *what, const char *path, int rc)
{
	snprintf(err, errlen, "fifo %s: %s: %s", path, what, strerror(-rc));
	return rc;
}

/* The FIFO, ours to hold open read-write, its buffer sized. */
static int fifo_node(const struct channel *ch, const char *path, uint64_t size, char *err,
		     size_t errlen)
{
	unlink(path);   /* left by a daemon that died: the directory is ours */
	if (mkfifo(path, 0600) < 0)   /* its owner is the daemon's user (fifo_make) */
		return fail(err, errlen, "mkfifo", path, -errno);
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, "open", path, -errno);
	if (size && fcntl(fd, F_SETPIPE_SZ, (int)size) < 0) {
		int rc = -errno;
		close(fd);
		return fail(err, errlen, "size= (F_SETPIPE_SZ; see /proc/sys/fs/pipe-max-size)",
			    path, rc);
	}
	return fd;
}

int fifo_make(struct engine *e, struct channel *ch, uint64_t size, char *err, size_t errlen)
{
	if (ch->owner.uid != geteuid()) {
		/* the run directory is the daemon user's alone (0700) */
		snprintf(err, errlen, "a fifo lives in the daemon's run directory, which only "
			 "uid %u can enter: another user's channel is a queue", (unsigned)geteuid());
		return -EACCES;
	}
	int rc = chan_rundir(e, err, errlen);
	if (rc < 0)
		return rc;
	char path[512];
	int n = snprintf(path, sizeof(path), "%s/%s.fifo", e->chans->rundir, ch->name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "fifo path %s/%s.fifo is too long", e->chans->rundir, ch->name);
		return -ENAMETOOLONG;
	}
	int fd = fifo_node(ch, path, size, err, errlen);
	if (fd >= 0 && !(ch->path = strdup(path))) {
		close(fd);
		fd = -ENOMEM;
	}
	if (fd < 0) {
		unlink(path);
		return fd;
	}
	ch->fifo_fd = fd;
	return 0;
}

void fifo_close(struct channel *ch)
{
	if (ch->fifo_fd >= 0)
		close(ch->fifo_fd);
	ch->fifo_fd = -1;
}

void fifo_stat(const struct channel *ch, uint64_t *bytes, uint64_t *size)
{
	int queued = 0, sz;
	*bytes = *size = 0;
	if (ch->fifo_fd < 0)
		return;
	if (ioctl(ch->fifo_fd, FIONREAD, &queued) == 0 && queued > 0)
		*bytes = (uint64_t)queued;
	if ((sz = fcntl(ch->fifo_fd, F_GETPIPE_SZ)) > 0)
		*size = (uint64_t)sz;
}

int fifo_open_for_task(const struct channel *ch, bool write, char *err, size_t errlen)
{
	/* non-blocking, so a closed fifo (no reader for a writer) fails here
	 * with ENXIO instead of blocking the daemon; blocking once open */
	int fd = open(ch->path, (write ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, write ? "open for the task's stdout"
					       : "open for the task's stdin", ch->path, -errno);
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}
