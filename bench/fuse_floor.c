/* fuse_floor.c - the least a FUSE file can cost here: the floor under the
 * memory-stats row (bench/fuse_floor.sh runs it).
 *
 *   fuse_floor [-s] [-o max_threads=N] MOUNTPOINT
 *
 * Serves MOUNTPOINT/N/mem for N = 1..200, the way pcfs serves procs/ID/mem
 * (the same low-level API, multithreaded loop, direct I/O, no FLUSH, entries
 * and attributes kept), with nothing else in the way: no tables, no engine,
 * no lock.  The content is a fixed 185-byte mem text, unless
 * FLOOR_PIDS=FILE (one pid per line, for N = 1, 2, ...) and FLOOR_READ=1:
 * then each open also reads /proc/PID/smaps_rollup, the one file whose
 * figures (pss, swap, private/shared) `mem` cannot get elsewhere.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NDIRS 200
#define KEEP 86400.0

static const char mem_text[] =
	"vsz: 3292\nrss: 1312\npss: 67\nuss: 56\nshared_clean: 1216\nshared_dirty: 40\n"
	"private_clean: 0\nprivate_dirty: 56\nswap: 0\nanon: 96\nfile: 1216\nheap: 132\n"
	"stack: 132\npid: 28403\nlive: 1\nage: 0.000\n";

static int pids[NDIRS + 1];
static bool read_rollup;

/* Inodes: 1 the root, 2N directory N, 2N + 1 its mem. */
static bool is_dir(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID || ino % 2 == 0;
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = is_dir(ino) ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = is_dir(ino) ? 2 : 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .entry_timeout = KEEP, .attr_timeout = KEEP };
	int n = atoi(name);
	if (parent == FUSE_ROOT_ID && n >= 1 && n <= NDIRS)
		e.ino = 2 * (fuse_ino_t)n;
	else if (parent != FUSE_ROOT_ID && !strcmp(name, "mem"))
		e.ino = parent + 1;
	else
		return (void)fuse_reply_err(req, ENOENT);
	fill_attr(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, KEEP);
}

/* One read of smaps_rollup, as pcfs does at open; the bytes are dropped. */
static void read_proc_rollup(fuse_ino_t ino)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pids[(ino - 1) / 2]);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_dir(ino))
		return (void)fuse_reply_err(req, EISDIR);
	if (read_rollup)
		read_proc_rollup(ino);
	fi->direct_io = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	size_t len = sizeof(mem_text) - 1;
	if ((size_t)off >= len)
		return (void)fuse_reply_buf(req, NULL, 0);
	size_t n = len - (size_t)off < size ? len - (size_t)off : size;
	fuse_reply_buf(req, mem_text + off, n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.release = op_release,
};

static void load_pids(const char *file)
{
	FILE *f = fopen(file, "r");
	for (int i = 1; f && i <= NDIRS && fscanf(f, "%d", &pids[i]) == 1; i++)
		;
	if (f)
		fclose(f);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint)
		return 2;
	const char *pf = getenv("FLOOR_PIDS");
	if (pf)
		load_pids(pf);
	read_rollup = pf && getenv("FLOOR_READ") && !strcmp(getenv("FLOOR_READ"), "1");
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_session_mount(se, opts.mountpoint) != 0)
		return 1;
	fuse_daemonize(opts.foreground);
	int rc;
	if (opts.singlethread) {
		rc = fuse_session_loop(se);
	} else {   /* as pcfs: no clone_fd, 16 threads unless -o max_threads */
		struct fuse_loop_config *loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, 0);
		fuse_loop_cfg_set_max_threads(loop, opts.max_threads != 10 ? opts.max_threads : 16);
		rc = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return rc < 0 ? 1 : 0;
}
