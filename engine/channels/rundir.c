/* rundir.c - where a mount's kernel objects live: socket channels' sockets
 * and fifo channels' FIFOs, in a directory of the mount's own that only the
 * daemon's user can enter (channels.c and fifo.c make them there).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels_int.h"

/* A directory only we can enter: made if missing, refused if it is not ours. */
static int private_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

/* $XDG_RUNTIME_DIR/pcfs/HASH, or /run/pcfs/HASH for root, else
 * /tmp/pcfs-UID/HASH, where HASH names the mountpoint: one directory per
 * mount, so two mounts never share a socket's or FIFO's path. */
int chan_rundir(struct engine *e, char *err, size_t errlen)
{
	struct chantab *t = e->chans;
	if (t->rundir)
		return 0;
	uint64_t h = 0xcbf29ce484222325ULL;   /* FNV-1a */
	for (const char *p = e->mountpoint; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	char base[256], dir[300];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && xdg[0] == '/' && strlen(xdg) < 200)
		snprintf(base, sizeof(base), "%s/pcfs", xdg);
	else if (geteuid() == 0)
		snprintf(base, sizeof(base), "/run/pcfs");
	else
		snprintf(base, sizeof(base), "/tmp/pcfs-%u", (unsigned)geteuid());
	snprintf(dir, sizeof(dir), "%s/%016llx", base, (unsigned long long)h);
	int rc = private_dir(base);
	if (rc == 0)
		rc = private_dir(dir);
	if (rc < 0) {
		snprintf(err, errlen, "run directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	t->rundir = strdup(dir);
	return t->rundir ? 0 : -ENOMEM;
}
