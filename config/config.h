/* config.h - pcfs configuration: built-in defaults, the ini loader, the ini
 * renderer behind /config.
 *
 * Every key is one row of a table in config.c (section, key, type, offset,
 * range, help), so loading, validating, rendering and documenting a key all
 * come from that one row.  Unknown sections or keys, and bad values, are errors
 * ("FILE:LINE: reason") that stop the daemon at startup.
 */
#ifndef PCFS_CONFIG_H
#define PCFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum unmount_policy {
	UNMOUNT_TERM,  /* SIGTERM every live task group, SIGKILL after unmount.grace */
	UNMOUNT_KILL,  /* SIGKILL at once */
	UNMOUNT_LEAVE  /* leave tasks running, detached (they are reparented to init) */
};

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* [state] keep: is the state dir emptied and removed at a clean stop? */
enum state_keep {
	KEEP_AUTO,     /* the default dir is removed, a dir the config names is kept */
	KEEP_YES,      /* kept, whichever it is */
	KEEP_NO        /* removed, whichever it is */
};

/* [state] sync: when the journal (and output files) are fsync'd. */
enum state_sync {
	SYNC_NONE,     /* never: they survive the daemon, not the machine */
	SYNC_BATCH,    /* by a flusher thread, at most [state] sync_ms after a write */
	SYNC_ALWAYS    /* before anyone is told of the change */
};

#define CONFIG_LIST_MAX 32
#define CONFIG_PATH_MAX 4096

struct pcfs_config {
	/* [limits] */
	uint32_t max_tasks;        /* tasks known at once: live + kept history (oldest ended forgotten first; EAGAIN once all live) */
	uint32_t max_processes;    /* live process tasks (EAGAIN beyond) */
	uint32_t max_threads;      /* live thread tasks (EAGAIN beyond) */
	uint32_t max_pools;        /* pools (ENOSPC beyond) */
	uint32_t max_channels;     /* channels (ENOSPC beyond) */
	uint32_t max_queued;       /* queued futures per pool (EAGAIN beyond) */
	uint64_t max_write;        /* bytes in one write to a control file (E2BIG beyond) */

	/* [tasks] */
	int64_t default_time_ms;   /* built-ins without time=/ops= run this long */
	int64_t kill_grace_ms;     /* timeout=: SIGTERM, then SIGKILL after this */
	uint32_t history;          /* finished tasks kept; oldest forgotten first */
	uint64_t output_max;       /* captured bytes per stream per task; the rest is dropped and counted */
	int64_t on_end_timeout_ms; /* an on_end= hook is killed (SIGKILL, its group) after this */
	uint32_t on_end_max;       /* on_end= hooks running at once; the rest wait their turn */

	/* [unmount] */
	enum unmount_policy unmount_policy;
	int64_t unmount_grace_ms;

	/* [log] */
	uint32_t log_lines;        /* lines kept in the /log ring */
	enum log_level log_level;  /* what goes to stderr/syslog */
	uint32_t events;           /* starts and ends kept in the /events ring */
	uint32_t joblog;           /* ends kept for /joblog and pools/NAME/joblog */

	/* [fuse] */
	uint32_t fuse_threads;     /* FUSE worker threads (libfuse max_threads) */
	bool auto_unmount;         /* -o auto_unmount: the mount goes away if the daemon dies */

	/* [memory] */
	int64_t mem_sample_ms;     /* memlog sampling period */
	uint32_t memlog_max;       /* samples kept per task */

	/* [cgroup] */
	char cgroup_where[CONFIG_PATH_MAX]; /* "": auto (the daemon's own cgroup); "off"; a cgroup path */
	uint64_t cgroup_mem_max;   /* default mem_max= of a spawned process task, 0: none */
	uint32_t cgroup_pids_max;  /* default pids_max=, 0: none */
	uint32_t cgroup_cpu_max;   /* default cpu_max= (percent of a CPU), 0: none */

	/* [pools] */
	uint32_t pool_default_workers; /* 0 = number of online CPUs */
	uint32_t pool_depth;       /* futures a worker holds at most (running + handed ahead) */
	int64_t pool_ahead_ms;     /* work handed to a worker ahead, at the pool's pace */

	/* [channels] */
	uint32_t chan_capacity;    /* default capacity, messages */
	uint64_t chan_maxmsg;      /* default largest message, bytes */
	uint64_t chan_max_bytes;   /* bytes buffered per channel (ENOSPC beyond) */

	/* [state] */
	char state_dir[CONFIG_PATH_MAX]; /* "" (auto): the default dir; "none"; or a path */
	enum state_keep state_keep;
	enum state_sync state_sync;
	int64_t state_sync_ms;     /* sync = batch: the longest a write waits for its fsync */
	/* Not keys: the dir in use, resolved from state_dir and the mountpoint
	 * at startup (state_check); "" when nothing is journaled.  Empty in a
	 * loaded or rendered configuration. */
	char state_path[CONFIG_PATH_MAX];
	bool state_default;        /* state_path is the default dir, not one named */

	/* [access] */
	bool allow_other;          /* let other users in (those of allow_users/allow_groups) */
	uid_t allow_users[CONFIG_LIST_MAX];
	size_t n_allow_users;
	gid_t allow_groups[CONFIG_LIST_MAX];
	size_t n_allow_groups;

	/* [slurm] */
	int64_t slurm_poll_ms;     /* squeue polling interval (backs off when idle) */
};

/* Fill with built-in defaults. */
void config_defaults(struct pcfs_config *c);

/* Load FILE over the defaults already in c.  Returns 0, or -1 with
 * "FILE:LINE: reason" in err. */
int config_load(struct pcfs_config *c, const char *path, char *err, size_t errlen);

/* Which file to load: the explicit path if non-NULL, else $PCFS_CONFIG, else
 * $XDG_CONFIG_HOME/pcfs/pcfs.ini (or ~/.config/pcfs/pcfs.ini), else
 * /etc/pcfs/pcfs.ini, else NULL (built-in defaults).  An explicit path or
 * $PCFS_CONFIG must exist; the others are used only if present.  Writes the
 * chosen path into buf and returns buf, or returns NULL for defaults. */
const char *config_find(const char *explicit_path, char *buf, size_t buflen);

/* Render the effective configuration as ini text (every key, with its value)
 * into a malloc'd NUL-terminated string.  Loading that text gives back an
 * identical struct. */
char *config_render(const struct pcfs_config *c);

/* One key set from elsewhere than a file (pcfs -o state_dir=...), checked as
 * a file's line would be; "WHERE: reason" in err. */
int config_set(struct pcfs_config *c, const char *where, const char *section,
	       const char *key, const char *value, char *err, size_t errlen);

const char *unmount_policy_name(enum unmount_policy p);
const char *log_level_name(enum log_level l);

#endif
