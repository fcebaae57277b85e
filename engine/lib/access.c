/* access.c - the access policy (pure) and the credential drop (raw syscalls). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "access.h"

static bool uid_listed(const uid_t *v, size_t n, uid_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == uid)
			return true;
	return false;
}

static bool gid_listed(const gid_t *v, size_t n, gid_t gid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == gid)
			return true;
	return false;
}

/* Admitted on the uid alone? */
static bool uid_admitted(const struct access_policy *p, uid_t uid)
{
	if (uid == p->mount_uid || uid == 0)
		return true;
	return p->allow_other && !p->allow_root && uid_listed(p->users, p->nusers, uid);
}

/* Do the groups decide at all (allow_other, not allow_root, a list)? */
static bool groups_count(const struct access_policy *p)
{
	return p->allow_other && !p->allow_root && p->ngroups > 0;
}

bool access_needs_groups(const struct access_policy *p, const struct cred *c)
{
	return !uid_admitted(p, c->uid) && groups_count(p) &&
	       !gid_listed(p->groups, p->ngroups, c->gid);
}

bool access_may_enter(const struct access_policy *p, const struct cred *c)
{
	if (uid_admitted(p, c->uid))
		return true;
	if (!groups_count(p))
		return false;
	if (gid_listed(p->groups, p->ngroups, c->gid))
		return true;
	for (int i = 0; i < c->ngroups; i++)
		if (gid_listed(p->groups, p->ngroups, c->groups[i]))
			return true;
	return false;
}

bool access_may_control(const struct owner *o, uid_t caller)
{
	return caller == 0 || caller == o->uid;
}

bool access_mode_allows(mode_t mode, const struct owner *o, uid_t caller, int want)
{
	if (caller == 0)
		return true;
	mode_t bits = caller == o->uid ? (mode >> 6) & 7 : mode & 7;
	if ((want & R_OK) && !(bits & 4))
		return false;
	if ((want & W_OK) && !(bits & 2))
		return false;
	return true;
}

enum cred_plan access_cred_plan(uid_t daemon_uid, const struct cred *c)
{
	if (c->uid == daemon_uid)
		return CRED_KEEP;
	return daemon_uid == 0 ? CRED_DROP : CRED_REFUSE;
}

int cred_drop(const struct cred *c)
{
	if (c->ngroups < 0 || c->ngroups > CRED_GROUPS_MAX)
		return -EINVAL;
	if (syscall(SYS_setgroups, (size_t)c->ngroups, c->groups) < 0)
		return -errno;
	if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
		return -errno;
	if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
		return -errno;
	/* Trust, but verify: every id is the one asked for. */
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (syscall(SYS_getresuid, &r, &e, &s) < 0 || syscall(SYS_getresgid, &rg, &eg, &sg) < 0)
		return -errno;
	if (r != c->uid || e != c->uid || s != c->uid || rg != c->gid || eg != c->gid ||
	    sg != c->gid)
		return -EPERM;
	return 0;
}

int cred_format(const struct cred *c, char *buf, size_t len)
{
	if (c->ngroups < 0 || c->ngroups > CRED_GROUPS_MAX)
		return -EINVAL;
	int n = snprintf(buf, len, "%u %u", (unsigned)c->uid, (unsigned)c->gid);
	if (n < 0 || (size_t)n >= len)
		return -E2BIG;
	size_t pos = (size_t)n;
	for (int i = 0; i < c->ngroups; i++) {
		n = snprintf(buf + pos, len - pos, " %u", (unsigned)c->groups[i]);
		if (n < 0 || (size_t)n >= len - pos)
			return -E2BIG;
		pos += (size_t)n;
	}
	return 0;
}

/* One id: decimal, in range, followed by a blank or the end. */
static int parse_id(const char **s, unsigned *out)
{
	char *end;
	if (**s < '0' || **s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(*s, &end, 10);
	if (errno || v > 0xfffffffeUL || (*end && (*end != ' ' || !end[1])))
		return -EINVAL;   /* (uid_t)-1 means "unchanged" to set*id: never an id */
	*out = (unsigned)v;
	*s = *end ? end + 1 : end;
	return 0;
}

int cred_parse(const char *s, struct cred *c)
{
	unsigned v;
	if (parse_id(&s, &v) < 0)
		return -EINVAL;
	c->uid = v;
	if (parse_id(&s, &v) < 0)
		return -EINVAL;
	c->gid = v;
	c->ngroups = 0;
	while (*s) {
		if (c->ngroups == CRED_GROUPS_MAX || parse_id(&s, &v) < 0)
			return -EINVAL;
		c->groups[c->ngroups++] = v;
	}
	return 0;
}
