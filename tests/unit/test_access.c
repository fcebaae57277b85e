/* test_access.c - the access policy (engine/access.c): who comes in, who
 * controls an object, whose credentials work runs with, and the credential
 * drop itself (in a forked child and in a CLONE_VM|CLONE_VFORK child, as the
 * daemon makes them). */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <valgrind/valgrind.h>

#include "access.h"

#define ALICE 1000   /* the mounting user */
#define BOB 1001     /* in allow_users */
#define CAROL 1002   /* in a group of allow_groups */
#define DAVE 1003    /* nobody in particular */
#define STAFF 50

static const uid_t users[] = { BOB };
static const gid_t groups[] = { STAFF };

static struct access_policy policy(bool other, bool root_only)
{
	return (struct access_policy){
		.mount_uid = ALICE, .allow_other = other, .allow_root = root_only,
		.users = users, .nusers = 1, .groups = groups, .ngroups = 1,
	};
}

static struct cred who(uid_t uid, gid_t gid, int n, ...)
{
	struct cred c = { .uid = uid, .gid = gid, .ngroups = n };
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		c.groups[i] = (gid_t)va_arg(ap, int);
	va_end(ap);
	return c;
}

static void gate_without_allow_other(void **state)
{
	struct access_policy p = policy(false, false);
	struct cred alice = who(ALICE, ALICE, 0), root = who(0, 0, 0), bob = who(BOB, BOB, 0);
	struct cred carol = who(CAROL, CAROL, 1, STAFF);
	assert_true(access_may_enter(&p, &alice));
	assert_true(access_may_enter(&p, &root));
	/* the lists mean nothing until other users are let in */
	assert_false(access_may_enter(&p, &bob));
	assert_false(access_may_enter(&p, &carol));
	assert_false(access_needs_groups(&p, &carol));
}

static void gate_with_allow_other(void **state)
{
	struct access_policy p = policy(true, false);
	struct cred bob = who(BOB, BOB, 0), dave = who(DAVE, DAVE, 2, 7, 8);
	struct cred carol = who(CAROL, CAROL, 2, 7, STAFF), carol_primary = who(CAROL, STAFF, 0);
	struct cred carol_unknown = who(CAROL, CAROL, -1);
	assert_true(access_may_enter(&p, &bob));
	assert_true(access_may_enter(&p, &carol));          /* a supplementary group */
	assert_true(access_may_enter(&p, &carol_primary));  /* the primary group */
	assert_false(access_may_enter(&p, &carol_unknown)); /* groups not known: out */
	assert_false(access_may_enter(&p, &dave));
	/* groups are read only when the uid and the primary gid do not decide */
	assert_false(access_needs_groups(&p, &(struct cred){ .uid = ALICE, .gid = ALICE }));
	assert_false(access_needs_groups(&p, &(struct cred){ .uid = 0, .gid = 0 }));
	assert_false(access_needs_groups(&p, &bob));
	assert_false(access_needs_groups(&p, &carol_primary));   /* STAFF is enough */
	assert_true(access_needs_groups(&p, &carol));
	assert_true(access_needs_groups(&p, &dave));
	struct access_policy nogroups = p;
	nogroups.ngroups = 0;
	assert_false(access_needs_groups(&nogroups, &dave));
	assert_false(access_may_enter(&nogroups, &carol_primary));
}

static void gate_with_allow_root(void **state)
{
	struct access_policy p = policy(true, true);
	struct cred root = who(0, 0, 0), alice = who(ALICE, ALICE, 0), bob = who(BOB, BOB, 0);
	struct cred carol = who(CAROL, CAROL, 1, STAFF);
	assert_true(access_may_enter(&p, &root));
	assert_true(access_may_enter(&p, &alice));
	assert_false(access_may_enter(&p, &bob));    /* allow_root: the lists do not apply */
	assert_false(access_may_enter(&p, &carol));
}

static void control_is_the_owners_and_roots(void **state)
{
	struct owner bobs = { BOB, BOB };
	assert_true(access_may_control(&bobs, BOB));
	assert_true(access_may_control(&bobs, 0));
	assert_false(access_may_control(&bobs, ALICE));   /* not even the mounting user */
	assert_false(access_may_control(&bobs, DAVE));
}

static void mode_bits_as_the_kernel_applies_them(void **state)
{
	struct owner bobs = { BOB, STAFF };
	/* control files, output: the owner's */
	assert_true(access_mode_allows(0600, &bobs, BOB, R_OK | W_OK));
	assert_false(access_mode_allows(0600, &bobs, DAVE, W_OK));
	assert_false(access_mode_allows(0600, &bobs, DAVE, R_OK));
	assert_true(access_mode_allows(0400, &bobs, BOB, R_OK));
	assert_false(access_mode_allows(0400, &bobs, BOB, W_OK));
	assert_false(access_mode_allows(0400, &bobs, ALICE, R_OK));
	assert_true(access_mode_allows(0200, &bobs, BOB, W_OK));
	assert_false(access_mode_allows(0200, &bobs, BOB, R_OK));
	/* status: everyone's, read only */
	assert_true(access_mode_allows(0444, &bobs, DAVE, R_OK));
	assert_false(access_mode_allows(0444, &bobs, BOB, W_OK));
	/* spawn: everyone writes */
	assert_true(access_mode_allows(0666, &bobs, DAVE, R_OK | W_OK));
	/* root passes everything (CAP_DAC_OVERRIDE) */
	assert_true(access_mode_allows(0400, &bobs, 0, R_OK | W_OK));
	assert_true(access_mode_allows(0000, &bobs, 0, W_OK));
}

static void whose_credentials_work_runs_with(void **state)
{
	struct cred root = who(0, 0, 0), alice = who(ALICE, ALICE, 0), bob = who(BOB, BOB, 0);
	/* a root daemon: root's work as itself, anyone else's dropped to them */
	assert_int_equal(access_cred_plan(0, &root), CRED_KEEP);
	assert_int_equal(access_cred_plan(0, &bob), CRED_DROP);
	/* a daemon of alice's: hers as itself; nobody else's, root's neither */
	assert_int_equal(access_cred_plan(ALICE, &alice), CRED_KEEP);
	assert_int_equal(access_cred_plan(ALICE, &bob), CRED_REFUSE);
	assert_int_equal(access_cred_plan(ALICE, &root), CRED_REFUSE);
}

static void cred_text_round_trip(void **state)
{
	struct cred c = who(BOB, STAFF, 3, 4, 24, STAFF), back;
	char buf[64];
	assert_int_equal(cred_format(&c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1001 50 4 24 50");
	assert_int_equal(cred_parse(buf, &back), 0);
	assert_int_equal(back.uid, BOB);
	assert_int_equal(back.gid, STAFF);
	assert_int_equal(back.ngroups, 3);
	assert_int_equal(back.groups[1], 24);
	struct cred none = who(BOB, BOB, 0);
	assert_int_equal(cred_format(&none, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1001 1001");
	assert_int_equal(cred_parse(buf, &back), 0);
	assert_int_equal(back.ngroups, 0);
	assert_int_equal(cred_format(&c, buf, 8), -E2BIG);
	struct cred unknown = who(BOB, BOB, -1);
	assert_int_equal(cred_format(&unknown, buf, sizeof(buf)), -EINVAL);
}

static void cred_text_refuses_garbage(void **state)
{
	struct cred c;
	const char *bad[] = {
		"", "1001", "x 1", "1001 x", "1001  50", "1001 50 ", " 1001 50", "-1 50",
		"4294967295 50",     /* (uid_t)-1 means "unchanged" to setresuid */
		"1001 4294967295", "1001 50 99999999999", "1001 50 4,5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cred_parse(bad[i], &c), -EINVAL);
	/* more groups than a cred holds */
	static char many[16 * (CRED_GROUPS_MAX + 4)];
	size_t pos = (size_t)snprintf(many, sizeof(many), "1 1");
	for (int i = 0; i <= CRED_GROUPS_MAX; i++)
		pos += (size_t)snprintf(many + pos, sizeof(many) - pos, " %d", i);
	assert_int_equal(cred_parse(many, &c), -EINVAL);
}

/* ---- the drop itself -------------------------------------------------------------- */

#define NOBODY 65534

/* In the child: drop, then check every id, and that root cannot come back. */
static int drop_and_check(const struct cred *c)
{
	if (cred_drop(c) < 0)
		return 1;
	uid_t r, e, s;
	gid_t gr, ge, gs, g[8];
	if (getresuid(&r, &e, &s) < 0 || r != c->uid || e != c->uid || s != c->uid)
		return 2;
	if (getresgid(&gr, &ge, &gs) < 0 || gr != c->gid || ge != c->gid || gs != c->gid)
		return 3;
	int n = getgroups(8, g);
	if (n != c->ngroups || (n && g[0] != c->groups[0]))
		return 4;
	if (setuid(0) == 0 || seteuid(0) == 0)
		return 5;
	return 0;
}

static void drop_in_a_forked_child(void **state)
{
	if (geteuid() != 0)
		skip();
	struct cred c = who(NOBODY, NOBODY, 1, NOBODY);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(drop_and_check(&c));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

struct vfork_arg {
	const struct cred *c;
	volatile int result;
};

static int vfork_child(void *p)
{
	struct vfork_arg *a = p;
	a->result = cred_drop(a->c);   /* raw syscalls: only this process changes */
	_exit(0);
}

static void drop_in_a_clone_vm_child_leaves_us_alone(void **state)
{
	/* valgrind runs a CLONE_VM child as a fork: the shared memory this test
	 * reads the child's result from is not shared there */
	if (geteuid() != 0 || RUNNING_ON_VALGRIND)
		skip();
	struct cred c = who(NOBODY, NOBODY, 0);
	struct vfork_arg a = { .c = &c, .result = 1 };
	size_t sz = 256 * 1024;
	char *stack = malloc(sz);
	assert_non_null(stack);
	pid_t pid = clone(vfork_child, stack + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	assert_true(pid > 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	free(stack);
	assert_int_equal(a.result, 0);
	/* the parent (sharing its memory with the child) is still root */
	assert_int_equal(geteuid(), 0);
	assert_int_equal(getuid(), 0);
	assert_int_equal(getegid(), 0);
}

static void drop_refused_without_privilege(void **state)
{
	if (geteuid() == 0)
		skip();
	struct cred c = who(geteuid() + 1, getegid(), 0);
	assert_int_equal(cred_drop(&c), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gate_without_allow_other),
		cmocka_unit_test(gate_with_allow_other),
		cmocka_unit_test(gate_with_allow_root),
		cmocka_unit_test(control_is_the_owners_and_roots),
		cmocka_unit_test(mode_bits_as_the_kernel_applies_them),
		cmocka_unit_test(whose_credentials_work_runs_with),
		cmocka_unit_test(cred_text_round_trip),
		cmocka_unit_test(cred_text_refuses_garbage),
		cmocka_unit_test(drop_in_a_forked_child),
		cmocka_unit_test(drop_in_a_clone_vm_child_leaves_us_alone),
		cmocka_unit_test(drop_refused_without_privilege),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
