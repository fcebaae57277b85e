/* access.h - who may use the mount, who may control an object, and whose
 * credentials a caller's work runs with.  Pure policy, no FUSE, no engine
 * state: the fs layer and the engine both ask here, and the unit tests
 * check every rule (tests/unit/test_access.c).
 *
 * The model, with `-o allow_other` (or `[access] allow_other = true`):
 *   - the gate: a request is served only for the mounting user, root, a user
 *     of `allow_users` or a member of a group of `allow_groups`;
 *   - objects (tasks, pools and their futures, channels) belong to the caller
 *     that created them; a file's mode bits, taken against that owner as the
 *     kernel takes them with default_permissions, say who may read or write
 *     it (control and captured output: the owner and root; status: everyone);
 *   - work runs as its owner: the daemon, if it is root, drops to the
 *     caller's uid, gid and groups in the child before it execs or runs the
 *     workload; a daemon that is not root runs work only for its own user.
 */
#ifndef PCFS_ACCESS_H
#define PCFS_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Supplementary groups a caller may have for pcfs to run work as them: more
 * cannot be dropped to faithfully (leaving one out could grant what a group
 * denies), so such a caller's work is refused. */
#define CRED_GROUPS_MAX 256

/* A caller's credentials, as the FUSE request gives them. */
struct cred {
	uid_t uid;
	gid_t gid;
	int ngroups;                    /* supplementary groups; -1: not known */
	gid_t groups[CRED_GROUPS_MAX];
};

/* An object's owner: the uid and gid of the caller that created it. */
struct owner {
	uid_t uid;
	gid_t gid;
};

/* Who may come in at all. */
struct access_policy {
	uid_t mount_uid;                /* the user the daemon runs as */
	bool allow_other;               /* -o allow_other / [access] allow_other */
	bool allow_root;                /* -o allow_root: the mounting user and root only */
	const uid_t *users;             /* allow_users */
	size_t nusers;
	const gid_t *groups;            /* allow_groups */
	size_t ngroups;
};

/* Does the policy let this caller use the mount?  Groups (cred->groups) are
 * looked at only when the uid and the primary gid do not decide: see
 * access_needs_groups(). */
bool access_may_enter(const struct access_policy *p, const struct cred *c);
/* Would access_may_enter() look at the caller's supplementary groups?  Only
 * c->uid and c->gid are read: the groups cost a read of /proc, per request
 * (they can change under a live process, so they are never cached). */
bool access_needs_groups(const struct access_policy *p, const struct cred *c);

/* May the caller control (or read the private files of) an object of this
 * owner?  Its owner and root may. */
bool access_may_control(const struct owner *o, uid_t caller);

/* The permission bits of a file of this owner as the kernel applies them
 * (default_permissions): root has every access, the owner the owner bits,
 * anyone else the "other" bits.  want: R_OK and/or W_OK.  pcfs gives its
 * files the same group and other bits, so group membership never changes
 * the answer, and this is the daemon's own copy of the kernel's check. */
bool access_mode_allows(mode_t mode, const struct owner *o, uid_t caller, int want);

/* Whose credentials the caller's work runs with. */
enum cred_plan {
	CRED_KEEP,      /* the daemon's own: the caller is the daemon's user (or root for a root daemon) */
	CRED_DROP,      /* the caller's: the daemon is root, the caller is not */
	CRED_REFUSE,    /* neither: the daemon is not root and the caller is someone else */
};
enum cred_plan access_cred_plan(uid_t daemon_uid, const struct cred *c);

/* Become c (uid, gid, supplementary groups) for good: setgroups, setresgid,
 * setresuid, in that order, each checked, then verified.  Raw system calls
 * only, no glibc set*id wrappers (those signal every thread of the process,
 * which in a vfork or CLONE_VM child are the parent's): safe in such a child
 * and in a forked one.  Returns 0 or -errno. */
int cred_drop(const struct cred *c);

/* The wire form of a cred ("UID GID G1 G2 ..."), for the fork server. */
int cred_format(const struct cred *c, char *buf, size_t len);
int cred_parse(const char *s, struct cred *c);

#endif
