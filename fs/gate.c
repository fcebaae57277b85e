/* gate.c - who may do what: the gate of every request and the owner checks
 * of the rows (engine/access.h has the rules; this applies them to requests).
 *
 * Two checks, each in one place: the gate, first thing in every request
 * (admit: is this caller let into the mount at all?), and the owner check of
 * the row dispatch (row_access: does the caller have the access the file's
 * mode gives them, against the object's owner?).  With default_permissions
 * the kernel makes the same mode check first; ours is the one that must
 * hold (a descriptor passed to another user, a kernel without the option).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "fs.h"

struct caller caller_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (struct caller){ .uid = c->uid, .gid = c->gid, .pid = c->pid, .req = req };
}

#define REFUSALS_PER_SECOND 20

void log_refusal(struct fs *fs, const char *fmt, ...)
{
	time_t now = time(NULL);
	unsigned suppressed = 0;
	pthread_mutex_lock(&fs->refusal_lock);
	if (now != fs->refusal_window) {
		fs->refusal_window = now;
		fs->refusals_logged = 0;
	}
	bool log = fs->refusals_logged < REFUSALS_PER_SECOND;
	if (log) {
		fs->refusals_logged++;
		suppressed = fs->refusals_suppressed;
		fs->refusals_suppressed = 0;
	} else {
		fs->refusals_suppressed++;
	}
	pthread_mutex_unlock(&fs->refusal_lock);
	if (!log)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (suppressed)
		engine_log(fs->eng, "access: %s (and %u more refusals not logged)", msg, suppressed);
	else
		engine_log(fs->eng, "access: %s", msg);
}

/* The caller's supplementary groups into out (ngroups -1 if unknown). */
static void read_groups(const struct caller *c, struct cred *out)
{
	int n = fuse_req_getgroups(c->req, CRED_GROUPS_MAX, out->groups);
	out->ngroups = n >= 0 && n <= CRED_GROUPS_MAX ? n : -1;
}

void caller_cred(struct fs *fs, const struct caller *c, struct cred *out)
{
	out->uid = c->uid;
	out->gid = c->gid;
	out->ngroups = 0;
	if (access_cred_plan(fs->owner, out) == CRED_DROP)
		read_groups(c, out);
}

/* The gate: replies EACCES (and logs) when the caller may not come in. */
bool admit(fuse_req_t req)
{
	struct fs *fs = fuse_req_userdata(req);
	const struct fuse_ctx *x = fuse_req_ctx(req);
	struct cred cr = { .uid = x->uid, .gid = x->gid, .ngroups = 0 };
	if (access_needs_groups(&fs->policy, &cr))
		read_groups(&(struct caller){ .req = req }, &cr);
	if (access_may_enter(&fs->policy, &cr))
		return true;
	log_refusal(fs, "uid %u (pid %d) refused: not the mounting user, root, nor in "
		    "[access] allow_users or allow_groups", (unsigned)x->uid, (int)x->pid);
	fuse_reply_err(req, EACCES);
	return false;
}

/* Who owns the object behind a directory of this kind. */
int dir_owner(struct fs *fs, const struct dirdesc *dd, uint64_t obj, struct owner *o)
{
	if (!dd->owned_by) {
		*o = (struct owner){ .uid = fs->owner, .gid = fs->owner_gid };
		return 0;
	}
	return engine_owner(fs->eng, dd->owned_by, obj, o);
}

static const char *want_name(int want)
{
	return want == (R_OK | W_OK) ? "read-write" : want == W_OK ? "write" : "read";
}

/* May the caller have `want` (R_OK, W_OK) on this file?  0 or -errno. */
int row_access(struct fs *fs, const struct caller *c, fuse_ino_t ino,
		      const struct row *row, int want)
{
	const struct dirdesc *dd = dirdesc_of(ino_type(ino));
	struct owner o;
	int rc = dir_owner(fs, dd, ino_obj(ino), &o);
	if (rc < 0)
		return rc;
	if (access_mode_allows(row->mode, &o, c->uid, want))
		return 0;
	log_refusal(fs, "uid %u (pid %d) refused %s of %s (inode %#llx): it belongs to uid %u",
		    (unsigned)c->uid, (int)c->pid, want_name(want), row->name,
		    (unsigned long long)ino, (unsigned)o.uid);
	return -EACCES;
}

/* The same, again at each read and write of an open file when other users
 * are let in: the descriptor may have been passed on. */
int recheck(fuse_req_t req, const struct handle *h, int want)
{
	struct fs *fs = fuse_req_userdata(req);
	if (!fs->multiuser)
		return 0;
	struct caller c = caller_of(req);
	return row_access(fs, &c, h->ino, h->row, want);
}
