/* floorfs.c - the FUSE floor for bench/run's status-read row: the least a
 * low-level libfuse filesystem can do to serve one file, so that pcfs's
 * `open+read+close procs/ID/status` can be compared with what any FUSE file
 * costs on this machine.
 *
 *   floorfs [-f] MOUNTPOINT
 *
 * It serves /status, a static text of the size of a pcfs status file, and
 * does everything the way pcfs does (fs/main.c, fs/ops.c): the same mount
 * options (default_permissions, auto_unmount), the multi-threaded loop with
 * 16 workers and no clone_fd, one-second entry and attribute timeouts, no
 * readdirplus, opens with direct I/O, no page cache and no FLUSH, a per-open
 * handle allocated at open and freed at release.  What it does not do is
 * anything pcfs's content needs: no engine lock, no rendering.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2
#define FILE_NAME "status"

/* About as long as a pcfs status file (~400 bytes). */
static char content[400];
static size_t content_len;

static void fill_content(void)
{
	size_t n = 0;
	for (int i = 0; n + 40 < sizeof(content); i++)
		n += (size_t)snprintf(content + n, sizeof(content) - n, "key_%02d: value %d\n", i, i * 7);
	content_len = n;
}

static void file_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_nlink = ino == FUSE_ROOT_ID ? 2 : 1;
	st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0555 : S_IFREG | 0444;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != FUSE_ROOT_ID || strcmp(name, FILE_NAME))
		return (void)fuse_reply_err(req, ENOENT);
	struct fuse_entry_param e = { .ino = FILE_INO, .entry_timeout = 1.0, .attr_timeout = 1.0 };
	file_attr(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FUSE_ROOT_ID && ino != FILE_INO)
		return (void)fuse_reply_err(req, ENOENT);
	struct stat st;
	file_attr(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
		{ ".", FUSE_ROOT_ID, S_IFDIR }, { "..", FUSE_ROOT_ID, S_IFDIR },
		{ FILE_NAME, FILE_INO, S_IFREG },
	};
	char buf[512];
	size_t used = 0;
	for (size_t i = (size_t)off; i < sizeof(ents) / sizeof(ents[0]); i++) {
		struct stat st = { .st_ino = ents[i].ino, .st_mode = ents[i].mode };
		size_t n = fuse_add_direntry(req, buf + used, sizeof(buf) - used, ents[i].name, &st,
					     (off_t)(i + 1));
		if (n > sizeof(buf) - used || n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

/* A handle per open, as pcfs has (it holds the snapshot there). */
struct handle {
	size_t len;
};

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO)
		return (void)fuse_reply_err(req, EISDIR);
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return (void)fuse_reply_err(req, EACCES);
	struct handle *h = malloc(sizeof(*h));
	if (!h)
		return (void)fuse_reply_err(req, ENOMEM);
	h->len = content_len;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		free(h);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if ((size_t)off >= h->len)
		return (void)fuse_reply_buf(req, NULL, 0);
	size_t n = h->len - (size_t)off < size ? h->len - (size_t)off : size;
	fuse_reply_buf(req, content + off, n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 2;
	if (!opts.mountpoint) {
		fprintf(stderr, "usage: floorfs [-f] MOUNTPOINT\n");
		return 2;
	}
	fill_content();
	int ret = 1;
	fuse_opt_add_arg(&args, "-odefault_permissions,fsname=floorfs,subtype=floorfs,auto_unmount");
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(opts.foreground);
	struct fuse_loop_config *loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, 16);   /* pcfs's [fuse] threads default */
	ret = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(loop);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
