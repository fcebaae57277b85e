/* fs.h - the FUSE layer's private types: node tables, inodes, handles.
 *
 * The namespace is declared, not coded: each kind of directory is a
 * `struct dirdesc` holding a table of rows (one row per file, naming its mode
 * and its show/store function, like Linux's pid_entry and Plan 9's Dirtab)
 * plus, for directories of objects (procs/), how to list and look up the
 * children.  lookup, readdir, getattr and open are generic walkers over these
 * tables: adding a file is adding a row.
 *
 * Inode numbers are computed, never stored (Plan 9's qid.path idea):
 *     ino = type (8 bits) | object id (48 bits) | row + 1 (8 bits)
 * where row 0 is the directory itself.  Object ids are never reused, so a
 * stale inode can never alias a new object.
 *
 * Layers (a file calls only the files below it; what calls back up goes
 * through a function pointer it was given: a row's show/store/..., a dirdesc's
 * list/lookup/..., a park_ops):
 *     main.c                  the mount, the session, teardown
 *     ops.c                   FUSE entry points: walk the tables, dispatch a
 *                             file's operations to its row kind (kind.h)
 *     kind_snap.c kind_ctl.c  the kinds' operations (text, kv, stream; ctl,
 *     msg.c                   wait, pull; msg); they park through park.c
 *     inval.c                 kernel entry invalidation; engine changes to park.c
 *     park.c                  parked requests and poll handles; answers through
 *                             the park_ops its caller gave, never by name
 *     kind_hold.c             opens that wait (R_HOLD)
 *     rows_*.c                the tables: one row per file, and their functions
 *     gate.c node.c           access checks; directory kinds, handles, helpers
 * The engine (engine/) is below all of them and calls the fs only through the
 * change hook main.c gives it (fs_engine_changed, inval.c).
 */
#ifndef PCFS_FS_H
#define PCFS_FS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmdtab.h"
#include "emit.h"
#include "engine.h"
#include "strbuf.h"

enum ntype {
	N_NONE = 0,
	N_ROOT,
	N_PROCS,    /* /procs */
	N_PROC,     /* /procs/ID, obj = task id */
	N_POOLS,    /* /pools */
	N_POOL,     /* /pools/NAME, obj = pool id */
	N_FUTURES,  /* /pools/NAME/futures, obj = pool id */
	N_FUTURE,   /* /pools/NAME/futures/ID, obj = FUTURE_KEY(pool, id) */
	N_WORKERS,  /* /pools/NAME/workers, obj = pool id */
	N_WORKER,   /* /pools/NAME/workers/N (a symlink), obj = FUTURE_KEY(pool, slot) */
	N_SYS,      /* /sys: the system's figures */
	N_CHANS,    /* /channels */
	N_CHAN,     /* /channels/NAME, obj = channel id */
	N_SYNCS,    /* /sync */
	N_SYNC,     /* /sync/NAME, obj = sync object id */
	N_SHMS,     /* /shm */
	N_SHM,      /* /shm/NAME, obj = shm id */
	N_SHMDATA,  /* /shm/NAME/data (a symlink to the backing file), obj = shm id */
	N_CHANFIFO, /* /channels/NAME/fifo (a symlink to the FIFO), obj = channel id */
	N__COUNT
};

enum row_kind {
	R_DIR,      /* a fixed subdirectory: `subdir` */
	R_TEXT,     /* rendered once per open by `show` */
	R_KV,       /* rendered once per open by `kv`; `json` picks the twin */
	R_CTL,      /* commands: each complete write runs `store`; reads give replies */
	R_WAIT,     /* blocks until `ready` says so, then a snapshot (parked, never a worker) */
	R_STREAM,   /* append-only live content (stdout): true size, read in place */
	R_PULL,     /* replies produced over time (map, as_completed, completed): `fill`
		       moves what is available into the handle; reads block until some is */
	R_MSG,      /* a message endpoint (channels): a write() is one message or, in
		       lines mode, one per line; a read() returns one, or as many whole
		       lines as fit; both park while they cannot proceed */
	R_HOLD,     /* holding is an open descriptor (/sync/NAME/hold): the open
		       parks until its unit is granted, the release gives it back */
};

struct fs;
struct handle;

/* Who is calling, copied from the request (valid only during it). */
struct caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	fuse_req_t req;          /* for its supplementary groups (caller_cred) */
};

typedef int (*show_fn)(struct fs *fs, uint64_t obj, struct strbuf *out);
typedef int (*kv_fn)(struct fs *fs, uint64_t obj, struct emit *e);
/* Run the complete lines in buf[0..len).  Return 0, or -errno with a reason in
 * err; replies for the caller go to h->buf. */
typedef int (*store_fn)(struct fs *fs, struct handle *h, const char *buf, size_t len,
			const struct caller *c, char *err, size_t errlen);
/* 1: ready, content in out; 0: not yet; <0: -errno. */
typedef int (*ready_fn)(struct fs *fs, uint64_t obj, struct strbuf *out);
typedef ssize_t (*stream_fn)(struct fs *fs, uint64_t obj, uint64_t off, char *buf,
			     size_t size, uint64_t *total);
/* Append what is ready to h->buf.  1: a read can be answered now (with
 * h->buf's unread bytes, or EOF if there are none); 0: it must wait; <0: -errno.
 * Called with h->lock held. */
typedef int (*fill_fn)(struct fs *fs, struct handle *h);

/* R_MSG rows (fs/msg.c serves them; h->row->arg says which end). */
struct msgops {
	/* What a read of room bytes gets: the oldest whole messages that fit
	 * (one, in message mode), or one longer than room alone, chained by
	 * ->next: 1 (*out is the caller's), 0 at the end, -EAGAIN none yet,
	 * <0 -errno. */
	int (*take)(struct fs *fs, struct handle *h, size_t room, struct chan_msg **out);
	/* A write: the complete lines of head + buf (head: the descriptor's
	 * unfinished line), or in message mode buf as one message.  Returns
	 * how many bytes of buf went into messages (the rest is the unfinished
	 * line), -EAGAIN no room for all of them yet, <0 -errno. */
	ssize_t (*give)(struct fs *fs, struct handle *h, const char *head, size_t hlen,
			const char *buf, size_t len);
	/* A descriptor's unfinished line at its close, as one message: 0,
	 * -EAGAIN no room yet, <0 -errno. */
	int (*give_last)(struct fs *fs, struct handle *h, const char *buf, size_t len);
	/* Would give() of these bytes wait for room now? */
	bool (*waits)(struct fs *fs, struct handle *h, size_t hlen, const char *buf, size_t len);
	/* What would not wait now: POLLIN (a take), POLLOUT (a give of len bytes). */
	unsigned (*events)(struct fs *fs, struct handle *h, size_t len);
	/* A request on h started (+1) or stopped (-1) waiting. */
	void (*blocked)(struct fs *fs, struct handle *h, bool writer, int delta);
};

struct row {
	const char *name;
	mode_t mode;           /* permission bits only */
	enum row_kind kind;
	enum ntype subdir;     /* R_DIR */
	show_fn show;          /* R_TEXT; R_CTL: what a reader sees first */
	kv_fn kv;              /* R_KV */
	bool json;             /* R_KV: the .json twin */
	store_fn store;        /* R_CTL, R_PULL */
	ready_fn ready;        /* R_WAIT */
	enum eng_obj waits_on; /* R_WAIT: the engine object whose changes wake it */
	stream_fn stream;      /* R_STREAM */
	fill_fn fill;          /* R_PULL (store is optional: lines written to it) */
	const struct msgops *msg; /* R_MSG */
	int arg;               /* R_MSG: which end of the object */
	unsigned only;         /* shown only for objects whose variant is in this mask (0: all) */
	bool here;             /* R_CTL, R_PULL: its lines run where their writer stands
				  (each write captures the writer's directory and
				  environment: h->origin) */
};

/* Row constructors.  KV() is two rows: `name` and its JSON twin `name.json`. */
#define DIR_ROW(n, t)        { .name = n, .mode = 0555, .kind = R_DIR, .subdir = t }
#define TEXT(n, m, f)        { .name = n, .mode = m, .kind = R_TEXT, .show = f }
#define KV(n, m, f)          { .name = n, .mode = m, .kind = R_KV, .kv = f }, \
			     { .name = n ".json", .mode = m, .kind = R_KV, .kv = f, .json = true }
#define CTL(n, m, f)         { .name = n, .mode = m, .kind = R_CTL, .store = f }
/* A control file that, opened for reading, first shows its settings. */
#define CTLSHOW(n, m, f, sh) { .name = n, .mode = m, .kind = R_CTL, .store = f, .show = sh }
#define WAIT(n, m, f, o)     { .name = n, .mode = m, .kind = R_WAIT, .ready = f, .waits_on = o }
#define STREAM(n, m, f)      { .name = n, .mode = m, .kind = R_STREAM, .stream = f }
#define PULL(n, m, st, f, o) { .name = n, .mode = m, .kind = R_PULL, .store = st, .fill = f, \
			       .waits_on = o }
/* Files of task lines, which run where their writer stands. */
#define CTL_HERE(n, m, f)    { .name = n, .mode = m, .kind = R_CTL, .store = f, .here = true }
#define PULL_HERE(n, m, st, f, o) { .name = n, .mode = m, .kind = R_PULL, .store = st, \
				    .fill = f, .waits_on = o, .here = true }
#define HOLD(n, m, vis)      { .name = n, .mode = m, .kind = R_HOLD, .waits_on = OBJ_SYNC, \
			       .only = vis }
#define MSG(n, m, ops, end, o, vis) { .name = n, .mode = m, .kind = R_MSG, .msg = ops, \
				      .arg = end, .waits_on = o, .only = vis }

struct dentry_out {
	char name[72];
	fuse_ino_t ino;
	mode_t mode;
};

struct dirlist {
	struct dentry_out *v;
	size_t n, cap;
};

int dirlist_add(struct dirlist *l, const char *name, fuse_ino_t ino, mode_t mode);

struct dirdesc {
	const struct row *rows;
	unsigned nrows;
	mode_t mode;                       /* permission bits of the directory */
	/* Does the object behind a directory of this type still exist? */
	bool (*exists)(struct fs *fs, uint64_t obj);
	/* Directories of objects: their children are directories of type `child`. */
	enum ntype child;
	int (*list)(struct fs *fs, uint64_t obj, struct dirlist *out);
	int (*lookup)(struct fs *fs, uint64_t obj, const char *name, uint64_t *child);
	int (*rmdir)(struct fs *fs, uint64_t obj, const char *name, const struct caller *c);
	int (*mkdir)(struct fs *fs, uint64_t obj, const char *name, const struct caller *c,
		     uint64_t *child);
	/* Symlinks: a node of this type is a link whose target this renders. */
	int (*readlink)(struct fs *fs, uint64_t obj, struct strbuf *out);
	/* Rows with `only` set are shown when it has the bit this returns (a
	 * channel's type): one table serves directories of several shapes. */
	unsigned (*variant)(struct fs *fs, uint64_t obj);
	/* Whose directory this is: the engine object that owns it (its files
	 * show that owner, and their mode bits apply against it); 0: the
	 * mount's own (the daemon's user). */
	enum eng_obj owned_by;
};

extern const struct dirdesc dir_root, dir_procs, dir_proc, dir_sys, dir_chans, dir_chan,
	dir_chanfifo;
extern const struct dirdesc dir_syncs, dir_sync, dir_shms, dir_shm, dir_shmdata;
extern const struct dirdesc dir_pools, dir_pool, dir_futures, dir_future, dir_workers,
	dir_worker;

/* node.c: the walkers' common steps over the tables. */
bool row_visible(struct fs *fs, const struct dirdesc *dd, const struct row *r, uint64_t obj);
/* The file that row number r (1-based, as in an inode) of dd names: NULL if
 * there is none (0 is the directory; a subdirectory row has its own inode). */
const struct row *dir_row(const struct dirdesc *dd, unsigned r);
/* The inode of row i (0-based) of a directory of type t: a subdirectory's
 * own, or the row's in t. */
fuse_ino_t row_ino(enum ntype t, uint64_t obj, const struct dirdesc *dd, unsigned i);
/* The index of the row called name that obj's directory shows, or -1. */
int dir_find(struct fs *fs, const struct dirdesc *dd, uint64_t obj, const char *name);
/* ino's directory kind and row (NULL: the directory itself), once the
 * object is found to exist: 0, or -ENOENT. */
int node_resolve(struct fs *fs, fuse_ino_t ino, const struct dirdesc **dd,
		 const struct row **row);

/* inode numbers */
#define INO_OBJ_MAX ((UINT64_C(1) << 48) - 1)
static inline fuse_ino_t ino_make(enum ntype t, uint64_t obj, unsigned row)
{
	if (t == N_ROOT && obj == 0 && row == 0)
		return FUSE_ROOT_ID;
	return ((fuse_ino_t)t << 56) | ((obj & INO_OBJ_MAX) << 8) | (row & 0xff);
}
static inline enum ntype ino_type(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? N_ROOT : (enum ntype)(ino >> 56);
}
static inline uint64_t ino_obj(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? 0 : (ino >> 8) & INO_OBJ_MAX;
}
static inline unsigned ino_row(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? 0 : (unsigned)(ino & 0xff);
}

/* One open file or directory. */
struct handle {
	pthread_mutex_t lock;
	const struct row *row;   /* NULL for directories */
	uint64_t obj;
	fuse_ino_t ino;
	int flags;
	struct strbuf buf;       /* snapshot, WAIT result, or CTL replies */
	bool rendered;
	size_t rpos;             /* CTL: read cursor into buf */
	struct strbuf pend;      /* CTL, R_MSG: bytes of a line not yet terminated */
	struct origin *origin;   /* rows with `here`: the last write's writer, whose
				    context the lines of pend run with (owned) */
	struct dirlist dir;      /* directories: the listing, taken at opendir */
	uint64_t *ids;           /* R_PULL: objects submitted on this descriptor */
	size_t nids, capids;
	size_t cursor;           /* R_PULL: how far fill has got */
	int pull_err;            /* R_PULL: an error fill gave (-EIO...), kept for the
				    read that reports it: a poll() only looks */
	size_t delivered;        /* R_PULL: how many ids have been answered */
	struct task_waitset *ws; /* /wait: the tasks waited for on this descriptor */
	struct event_reader *evr; /* events: this descriptor's place in the ring */
	struct chan_rest rest;   /* R_MSG: the unread rest of the message taken last */
	struct sync_ticket *sync; /* R_HOLD, a sync object's wait: this descriptor's
				    place at the object (owned: given back at the
				    last reference, which releases a held unit) */
	int refs;                /* the open file + parked requests/pollers */
	struct handle *open_next, *open_prev;   /* fs->open: linked while the kernel
						   holds it open (fs->open_lock); on
						   it iff open_prev or fs->open == it */
};

struct handle *handle_get(struct handle *h);
void handle_put(struct handle *h);
/* The open file's reference: handle_opened links h into fs->open once the
 * open has succeeded (before the reply, after which a release may come at
 * once); handle_release unlinks it and drops that reference (release,
 * releasedir, or an open whose reply failed).  handles_release_all, at
 * shutdown once no request is served any more, releases every handle the
 * kernel never released. */
void handle_opened(struct fs *fs, struct handle *h);
void handle_release(struct fs *fs, struct handle *h);
void handles_release_all(struct fs *fs);

/* A user name looked up for an owner's uid, kept OWNER_NAME_TTL seconds: a
 * status open looks up its owner's name, and getpwuid_r reads the passwd
 * database (a file, or a directory service) each time. */
#define OWNER_NAMES 16
#define OWNER_NAME_TTL 10
struct owner_name {
	bool used, known;              /* known: the uid has a name */
	uid_t uid;
	char name[64];
	struct timespec at;            /* CLOCK_MONOTONIC of the lookup */
};

struct fs {
	struct engine *eng;
	struct fuse_session *se;
	const struct pcfs_config *cfg;
	char *mountpoint;
	uid_t owner;             /* the daemon's user: owns the mount's own files */
	gid_t owner_gid;
	struct park *park;
	/* Access (access.h).  multiuser: other users may come in (allow_other
	 * or allow_root), so each read and write is checked again against the
	 * object's owner (a descriptor can be passed to another user). */
	struct access_policy policy;
	bool multiuser;
	pthread_mutex_t refusal_lock;   /* the rate limit of refusal log lines */
	time_t refusal_window;
	unsigned refusals_logged, refusals_suppressed;
	struct inval *inval;
	/* uid -> user name for the owner lines (node.c: emit_owner) */
	pthread_mutex_t names_lock;
	struct owner_name names[OWNER_NAMES];
	unsigned names_next;           /* the slot a new uid takes (round robin) */
	/* Every open file and directory, so that those still open when the
	 * loop ends (the kernel sends no release after it) are freed. */
	pthread_mutex_t open_lock;
	struct handle *open;
};

/* gate.c: who is calling, and may they.  caller_of copies the request's
 * caller; caller_cred gives the engine their credentials, with the
 * supplementary groups when its work will run as them (read from the
 * request; ngroups is -1 if they cannot be read, and the engine then refuses
 * the work). */
struct caller caller_of(fuse_req_t req);
void caller_cred(struct fs *fs, const struct caller *c, struct cred *out);
/* A refusal in /log, at most a few a second (the rest are counted). */
void log_refusal(struct fs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The gate, first in every request: false when it has replied EACCES. */
bool admit(fuse_req_t req);
/* Who owns the object behind a directory of this kind (0 or -errno). */
int dir_owner(struct fs *fs, const struct dirdesc *dd, uint64_t obj, struct owner *o);
/* May the caller have `want` (R_OK, W_OK) on the file ino, row?  0 or -EACCES
 * (logged).  recheck: the same at each read and write of an open file when
 * other users are let in, since a descriptor can be passed on. */
int row_access(struct fs *fs, const struct caller *c, fuse_ino_t ino, const struct row *row,
	       int want);
int recheck(fuse_req_t req, const struct handle *h, int want);

/* How long the kernel may keep a /procs/ID entry: a task id never names
 * another task, and inval.c drops the entry when the task is forgotten. */
#define PROC_ENTRY_TIMEOUT 3600.0

/* inval.c: drop the kernel's entries of forgotten tasks, from a thread of
 * its own (started by inval_new; inval_stop joins it, before the session
 * goes). */
struct inval *inval_new(struct fs *fs);
void inval_stop(struct inval *v);
void inval_free(struct inval *v);
void inval_task_gone(struct inval *v, uint64_t id);
/* The engine hook: OBJ_TASK_GONE to inval, the rest to park_changed. */
void fs_engine_changed(void *ctx, enum eng_obj kind, uint64_t id);

const struct dirdesc *dirdesc_of(enum ntype t);

/* park.c: requests answered later, and poll handles.  park.c knows no row
 * kind: whoever parks a request gives the park_ops that look at it and
 * answer it, and park.c calls back through them at each change of the
 * object the request waits on (and once more right after parking it). */
struct park_args {
	size_t size;          /* a read's */
	off_t off;
	const char *data;     /* a write's data, or what an open's answer needs (its
				 fuse_file_info): park_req keeps a copy; NULL: a read */
	size_t len;
};
struct park_ops {
	/* Can the request be answered now?  Nonzero: yes (1), or with that
	 * error (<0); 0: not yet.  With h->lock held; the request is claimed
	 * only when this says so. */
	int (*ready)(struct fs *fs, struct handle *h, const struct park_args *a);
	/* Answer the claimed request (ready: what `ready` said): 1, or 0 if it
	 * could not after all (a faster request took what `ready` saw), and it
	 * is parked again.  With h->lock held, from the look to the reply. */
	int (*answer)(struct fs *fs, struct handle *h, fuse_req_t req, const struct park_args *a,
		      int ready);
	/* Optional: a request on h started (+1) or stopped (-1) waiting. */
	void (*waiting)(struct fs *fs, struct handle *h, const struct park_args *a, int delta);
};
struct park *park_new(struct fs *fs);
void park_free(struct park *p);
/* Park req on h until (kind, id) changes and ops->ready says so; an
 * interrupt answers EINTR.  Exactly one of them answers. */
void park_req(struct park *p, fuse_req_t req, struct handle *h, const struct park_ops *ops,
	      const struct park_args *a, enum eng_obj kind, uint64_t id);
/* Keep a poll handle: notify it when (kind, id) changes. */
void park_poll(struct park *p, struct handle *h, struct fuse_pollhandle *ph,
	       enum eng_obj kind, uint64_t id);
/* The engine hook: (kind, id) changed. */
void park_changed(void *ctx, enum eng_obj kind, uint64_t id);
/* Shutdown: answer every parked request with err. */
void park_fail_all(struct park *p, int err);

/* Run each command line of a control write through run(fs, obj, cmd, ...),
 * split by cmd_each_line (cmdtab.h): blank lines and # comments are skipped;
 * a line with a control character or over CMD_LINE_MAX bytes, a write with
 * no command, or more than how->max_cmds (how NULL: any number) refuse the
 * whole write with EINVAL before any line runs. */
typedef int (*cmd_fn)(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen);
int run_commands(struct fs *fs, uint64_t obj, const char *buf, size_t len,
		 const struct cmd_write *how, cmd_fn run, char *err, size_t errlen);
/* The `uid`, `gid` and `owner` (user name, null if it has none) lines of a
 * status file. */
void emit_owner(struct fs *fs, struct emit *e, const struct owner *o);
/* Remember an id on a descriptor (R_PULL rows). */
int handle_add_id(struct handle *h, uint64_t id);
/* An events row's fill: what came since this descriptor's last read, from
 * pool's events (0: every event).  1: something to read; 0: wait. */
int fill_events_of(struct fs *fs, struct handle *h, uint64_t pool, bool json);

/* ops.c */
extern const struct fuse_lowlevel_ops pcfs_ops;

/* rows_root.c: the in-mount /README (doc/pcfs.1 is the full reference) */
extern const char pcfs_readme[];

#endif
