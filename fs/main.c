/* main.c - pcfs: mount the process-control filesystem.
 *
 *   pcfs [-f] [-d] [-o opt,...] [--config FILE] [SOURCE] MOUNTPOINT
 *
 * SOURCE and -o config=FILE are there for mount(8): `mount -t fuse.pcfs pcfs
 * MNT -o config=FILE` and fstab lines run mount.fuse3, which runs
 * `pcfs SOURCE MNT -o OPTIONS`.
 *
 * Order matters here:
 *   1. parse options, load the config: errors stop us before anything mounts;
 *   2. mount, then daemonize (fuse_daemonize forks: nothing with threads or
 *      children may exist before it);
 *   3. create the engine: it blocks SIGCHLD process-wide, becomes a child
 *      subreaper and starts the fork server, all before any thread exists;
 *   4. start the engine thread, serve requests;
 *   5. teardown (research notes F11): stop the engine (unmount policy for live
 *      tasks), answer every parked request, release the files still open,
 *      unmount, destroy.
 *
 * -o allow_other (or [access] allow_other = true) and -o allow_root let other
 * users in; then every request passes the gate of fs/gate.c (the mounting user,
 * root, [access] allow_users and allow_groups) and the owner checks of the
 * row dispatch.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"

static void usage(const char *prog)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n"
	       "\n"
	       "Mount pcfs, a filesystem for starting, pooling and inspecting processes\n"
	       "and threads (see /README inside the mount, and pcfs(1)).  SOURCE, as\n"
	       "mount(8) passes it, is ignored.\n"
	       "\n"
	       "  --config FILE     configuration (default: $PCFS_CONFIG,\n"
	       "                    $XDG_CONFIG_HOME/pcfs/pcfs.ini, /etc/pcfs/pcfs.ini)\n"
	       "  -f                stay in the foreground\n"
	       "  -d                debug: foreground, print every FUSE request\n"
	       "  -s                single-threaded request loop\n"
	       "  -o OPT[,OPT...]   mount options (allow_other, auto_unmount, max_threads=N, ...)\n"
	       "  -o config=FILE    the same as --config FILE (for mount -t fuse.pcfs and fstab)\n"
	       "  -o state_dir=DIR  [state] dir over the config's: auto (a dir per mountpoint),\n"
	       "                    none (results do not survive the daemon), or a directory\n"
	       "  -h, --help        this text\n"
	       "  -V, --version     the version\n",
	       prog);
}

/* Is this -o option ours rather than libfuse's?  The userspace-only `x-*`,
 * `X-*` and `comment=` options of mount(8) are dropped: libmount normally
 * strips them, but other mount programs may pass them on, and libfuse refuses
 * options it does not know. */
static bool userspace_mount_option(const char *opt)
{
	return !strncmp(opt, "x-", 2) || !strncmp(opt, "X-", 2) || !strncmp(opt, "comment=", 8);
}

/* Which of the options that let other users in were given, and the value of
 * -o state_dir= (NULL: not given). */
struct access_opts {
	bool allow_other, allow_root;
	const char *state_dir;
};

/* Remove our options from a comma-separated -o list, in place: `config=FILE`
 * (the fstab and `mount -o` spelling of --config), `state_dir=` (the config's
 * [state] dir, set over it) and the userspace-only ones;
 * note allow_other and allow_root (they stay: libfuse applies them).
 * Returns 1 if options are left for libfuse, 0 if none, -1 on error. */
static int filter_mount_options(char *list, const char **config, struct access_opts *ao)
{
	/* the value is copied out: the list is compacted over it */
	static char config_opt[CONFIG_PATH_MAX], state_opt[CONFIG_PATH_MAX];
	char *out = list, *opt = list;
	while (opt) {
		char *comma = strchr(opt, ',');
		if (comma)
			*comma = '\0';
		if (!strcmp(opt, "allow_other"))
			ao->allow_other = true;
		else if (!strcmp(opt, "allow_root"))
			ao->allow_root = true;
		if (!strncmp(opt, "config=", 7)) {
			if (strlen(opt + 7) >= sizeof(config_opt)) {
				fprintf(stderr, "pcfs: -o config=: the path is too long\n");
				return -1;
			}
			strcpy(config_opt, opt + 7);
			*config = config_opt;
		} else if (!strncmp(opt, "state_dir=", 10)) {
			snprintf(state_opt, sizeof(state_opt), "%s", opt + 10);  /* checked later */
			ao->state_dir = state_opt;
		} else if (*opt && !userspace_mount_option(opt)) {
			if (out != list)
				*out++ = ',';
			size_t n = strlen(opt);
			memmove(out, opt, n + 1);
			out += n;
		}
		opt = comma ? comma + 1 : NULL;
	}
	*out = '\0';
	return out != list;
}

/* Take our own options out of argv, leaving libfuse's.  A command line may
 * name a SOURCE before the MOUNTPOINT (`pcfs SOURCE MOUNTPOINT -o ...`), as
 * mount.fuse3 runs filesystems for `mount -t fuse.pcfs SOURCE MOUNTPOINT` and
 * fstab lines; pcfs has no source to read, so it is accepted and ignored. */
static int take_own_options(int *argc, char **argv, const char **config, bool *help,
			    bool *version, struct access_opts *ao)
{
	int out = 1, first_pos = -1, npos = 0;
	for (int i = 1; i < *argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--config")) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "pcfs: --config needs a file\n");
				return -1;
			}
			*config = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			*config = a + 9;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*help = true;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			*version = true;
		} else if (!strcmp(a, "-o") && i + 1 < *argc) {
			int left = filter_mount_options(argv[++i], config, ao);
			if (left < 0)
				return -1;
			if (left) {
				argv[out++] = a;
				argv[out++] = argv[i];
			}
		} else if (!strncmp(a, "-o", 2) && a[2]) {
			int left = filter_mount_options(a + 2, config, ao);
			if (left < 0)
				return -1;
			if (left)
				argv[out++] = a;
		} else {
			if (a[0] != '-' && npos++ == 0)
				first_pos = out;
			argv[out++] = a;
		}
	}
	if (npos > 2) {
		fprintf(stderr, "pcfs: too many arguments: [SOURCE] MOUNTPOINT (try --help)\n");
		return -1;
	}
	if (npos == 2) {        /* SOURCE MOUNTPOINT: drop the source */
		memmove(&argv[first_pos], &argv[first_pos + 1],
			(size_t)(out - first_pos - 1) * sizeof(*argv));
		out--;
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

/* The worker program: $PCFS_WORKER, else beside this binary (a build tree),
 * else the installed libexec copy. */
/* A FUSE mount whose daemon died (kill -9 with auto_unmount off) answers
 * ENOTCONN to everything, and mounting over it would stack a second mount.
 * Detach it: umount2 as root, fusermount3 -uz (setuid) otherwise.
 * Returns 0 when the path is usable now. */
static int clear_stale_mount(const char *path)
{
	struct stat st;
	int rc = umount2(path, MNT_DETACH);
	if (rc < 0) {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", "-z", "--", path, (char *)NULL);
			_exit(127);
		}
		int status = 0;
		rc = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		     WEXITSTATUS(status) == 0 ? 0 : -1;
	}
	if (rc == 0 && stat(path, &st) == 0) {
		fprintf(stderr, "pcfs: %s: cleared a stale mount (its pcfs had died)\n", path);
		syslog(LOG_NOTICE, "%s: cleared a stale mount (its pcfs had died)", path);
		return 0;
	}
	fprintf(stderr, "pcfs: %s: a stale mount (its daemon died) that could not be "
		"cleared; try: fusermount3 -uz %s\n", path, path);
	return -1;
}

/* The mount point as given is a dead FUSE mount (not even stat works)? */
static bool stale_before_realpath(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 && errno == ENOTCONN;
}

/* Is a pcfs mounted right there?  (Two would stack.) */
static bool pcfs_mounted_at(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096], point[PATH_MAX], type[64];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE SOURCE SUPER */
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
		    sscanf(dash + 3, "%63s", type) != 1)
			continue;
		found = !strcmp(point, mnt) && !strcmp(type, "fuse.pcfs");
	}
	fclose(f);
	return found;
}

static int find_worker(char *buf, size_t len)
{
	const char *env = getenv("PCFS_WORKER");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return 0;
	}
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%s/pcfs-worker", self);
			if (access(buf, X_OK) == 0)
				return 0;
		}
	}
	snprintf(buf, len, "%s/pcfs-worker", PCFS_LIBEXECDIR);
	return access(buf, X_OK);
}

int main(int argc, char *argv[])
{
	const char *config_arg = NULL;
	bool help = false, version = false;
	struct access_opts ao = { 0 };
	if (take_own_options(&argc, argv, &config_arg, &help, &version, &ao) < 0)
		return 2;
	if (help) {
		usage(argv[0]);
		return 0;
	}
	if (version) {
		printf("pcfs %s (libfuse %s)\n", PCFS_VERSION, fuse_pkgversion());
		return 0;
	}

	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 2;
	int ret = 1;
	static struct pcfs_config cfg;
	char err[1024], path[CONFIG_PATH_MAX], worker[PATH_MAX], mnt[PATH_MAX];
	struct fs fs = { 0 };
	struct engine *eng = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;

	if (opts.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (!opts.mountpoint) {
		fprintf(stderr, "pcfs: no mountpoint (try --help)\n");
		ret = 2;
		goto out_args;
	}
	if (stale_before_realpath(opts.mountpoint) && clear_stale_mount(opts.mountpoint) < 0) {
		ret = 2;
		goto out_args;
	}
	if (!realpath(opts.mountpoint, mnt)) {
		fprintf(stderr, "pcfs: %s: %s\n", opts.mountpoint, strerror(errno));
		ret = 2;
		goto out_args;
	}

	config_defaults(&cfg);
	const char *cfile = config_find(config_arg, path, sizeof(path));
	if (!cfile && (config_arg || getenv("PCFS_CONFIG"))) {
		fprintf(stderr, "pcfs: %s: %s\n", config_arg ? config_arg : getenv("PCFS_CONFIG"),
			strerror(ENOENT));
		ret = 2;
		goto out_args;
	}
	if ((cfile && config_load(&cfg, cfile, err, sizeof(err)) < 0) ||
	    (ao.state_dir && config_set(&cfg, "-o state_dir", "state", "dir", ao.state_dir, err,
					sizeof(err)) < 0)) {
		fprintf(stderr, "pcfs: %s\n", err);
		ret = 2;
		goto out_args;
	}
	/* A pcfs there: dead (statfs always reaches the daemon, unlike a
	 * cached stat) is cleared, alive is refused. */
	struct statfs sfs;
	if (pcfs_mounted_at(mnt) && statfs(mnt, &sfs) < 0 && errno == ENOTCONN &&
	    clear_stale_mount(mnt) < 0) {
		ret = 2;
		goto out_args;
	}
	if (pcfs_mounted_at(mnt)) {
		fprintf(stderr, "pcfs: %s: a pcfs is already mounted there (unmount it first: "
			"fusermount3 -u %s)\n", mnt, mnt);
		ret = 2;
		goto out_args;
	}
	char state_warning[1024] = "";
	int src = state_check(&cfg, mnt, err, sizeof(err));
	if (src < 0) {
		fprintf(stderr, "pcfs: %s\n", err);
		ret = 2;
		goto out_args;
	}
	if (src > 0) {
		fprintf(stderr, "pcfs: %s\n", err);
		snprintf(state_warning, sizeof(state_warning), "%s", err);
	}
	if (find_worker(worker, sizeof(worker)) < 0) {
		fprintf(stderr, "pcfs: cannot find the worker program (%s): %s\n", worker,
			strerror(errno));
		goto out_args;
	}

	/* Mode bits are checked by the kernel; the rest by us, per request. */
	fuse_opt_add_arg(&args, "-odefault_permissions,fsname=pcfs,subtype=pcfs");
	if (cfg.auto_unmount)
		fuse_opt_add_arg(&args, "-oauto_unmount");
	if (ao.allow_other && ao.allow_root) {
		fprintf(stderr, "pcfs: -o allow_other and allow_root: give one of them\n");
		ret = 2;
		goto out_args;
	}
	if (cfg.allow_other && !ao.allow_other) {
		if (ao.allow_root) {
			fprintf(stderr, "pcfs: -o allow_root and [access] allow_other = true: "
				"give one of them\n");
			ret = 2;
			goto out_args;
		}
		fuse_opt_add_arg(&args, "-oallow_other");
		ao.allow_other = true;
	}

	fs.cfg = &cfg;
	fs.mountpoint = mnt;
	fs.owner = geteuid();
	fs.owner_gid = getegid();
	fs.policy = (struct access_policy){
		.mount_uid = fs.owner, .allow_other = ao.allow_other || ao.allow_root,
		.allow_root = ao.allow_root,
		.users = cfg.allow_users, .nusers = cfg.n_allow_users,
		.groups = cfg.allow_groups, .ngroups = cfg.n_allow_groups,
	};
	fs.multiuser = ao.allow_other || ao.allow_root;
	pthread_mutex_init(&fs.refusal_lock, NULL);
	pthread_mutex_init(&fs.names_lock, NULL);
	pthread_mutex_init(&fs.open_lock, NULL);
	se = fuse_session_new(&args, &pcfs_ops, sizeof(pcfs_ops), &fs);
	if (!se)
		goto out_args;
	fs.se = se;
	/* SIGTERM and SIGINT are how pcfs is told to unmount.  A script's
	 * background job (`pcfs -f MNT &`) starts with SIGINT ignored, and
	 * libfuse installs no handler over an ignored signal: take both back
	 * (SIGHUP stays as it came, for nohup). */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, mnt) != 0)
		goto out_signals;
	fuse_daemonize(opts.foreground);
	if (!opts.foreground) {
		/* stderr is /dev/null from here on: log lines go to syslog */
		openlog("pcfs", LOG_PID, LOG_DAEMON);
		engine_log_to_syslog(true);
	}

	eng = engine_new(&cfg, mnt, worker, err, sizeof(err));
	if (!eng) {
		fprintf(stderr, "pcfs: %s\n", err);
		syslog(LOG_ERR, "%s", err);
		goto out_unmount;
	}
	fs.eng = eng;
	fs.park = park_new(&fs);
	fs.inval = inval_new(&fs);
	struct engine_hooks hooks = { .ctx = &fs, .changed = fs_engine_changed };
	engine_set_hooks(eng, &hooks);
	if (!fs.park || !fs.inval || engine_start(eng) < 0) {
		fprintf(stderr, "pcfs: cannot start the engine\n");
		goto out_engine;
	}
	engine_log(eng, "pcfs %s mounted on %s (worker %s, config %s, state dir %s)", PCFS_VERSION,
		   mnt, worker, cfile ? cfile : "built-in defaults",
		   cfg.state_path[0] ? cfg.state_path : "none");
	if (state_warning[0])
		engine_log(eng, "%s", state_warning);
	if (fs.multiuser)
		engine_log(eng, "other users may come in (%s): %s; work runs as %s",
			   ao.allow_root ? "allow_root" : "allow_other",
			   ao.allow_root ? "root and the mounting user"
					 : "the mounting user, root, [access] allow_users and "
					   "allow_groups",
			   fs.owner == 0 ? "its owner (dropped from root)"
					 : "the mounting user, for the mounting user only");

	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, 0);
		/* libfuse 3.14.0 ignores -o max_threads by itself; apply it here */
		/* 10 is libfuse's default: anything else was asked for with -o */
		unsigned max = opts.max_threads != 10 ? opts.max_threads : cfg.fuse_threads;
		fuse_loop_cfg_set_max_threads(loop, max);
		/* Every thread is kept (at most `max`): worker hosts and the fork
		 * server die with the thread that started them (PR_SET_PDEATHSIG
		 * follows the thread), and they are started by whichever libfuse
		 * thread took the request.  An idle thread let go would SIGKILL a
		 * pool's workers mid-future (the chaos test found it). */
		if (opts.max_idle_threads != UINT_MAX)
			engine_log(eng, "-o max_idle_threads is ignored: pcfs keeps its "
				   "%u FUSE threads, whose children are its worker hosts", max);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	/* A signal or an unmount ends the loop: both are a clean stop. */
	ret = ret < 0 ? 1 : 0;

out_engine:
	/* The invalidation thread first: the loop has ended, so a notification
	 * that waits on a request nobody will read (a LOOKUP in /procs holds
	 * the lock the kernel needs to drop an entry) would never return, and
	 * engine_shutdown forgets tasks (history) as it ends them. */
	inval_stop(fs.inval);
	engine_shutdown(eng);
	if (fs.park)
		park_fail_all(fs.park, EINTR);
	/* Files and directories still open: the kernel sends no release once
	 * the loop has ended.  Their parked reads were answered just above;
	 * their poll handles go with the park. */
	handles_release_all(&fs);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	park_free(fs.park);
	inval_free(fs.inval);
	engine_free(eng);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
