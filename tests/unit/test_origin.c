/* test_origin.c - the writer's context: what /proc gives of a process, a
 * line's directory and environment made of it, and the PATH search that
 * replaces the daemon's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "origin.h"

static void test_capture_self(void **state)
{
	(void)state;
	char here[4096];
	assert_non_null(getcwd(here, sizeof(here)));
	struct origin *o = origin_capture(getpid(), (uid_t)-1);
	assert_non_null(o);
	assert_string_equal(o->cwd, here);
	assert_non_null(o->env);                 /* what this process was started with */
	assert_int_equal(o->env_len == 0 || o->env[o->env_len - 1] == '\0', 1);
	assert_ptr_equal(origin_get(o), o);
	origin_put(o);
	origin_put(o);
}

static void test_capture_refusals(void **state)
{
	(void)state;
	struct origin *o = origin_capture(0, (uid_t)-1);   /* not visible to us */
	assert_null(o->cwd);
	assert_int_equal(o->cwd_err, ESRCH);
	assert_int_equal(o->env_err, ESRCH);
	origin_put(o);
	/* pid 1 is root's: read "as" another user, it is not theirs */
	o = origin_capture(1, 4242);
	assert_null(o->env);
	assert_int_equal(o->env_err, EACCES);
	char out[64], err[256];
	assert_int_equal(origin_cwd(o, NULL, out, sizeof(out), err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "/proc/1/cwd"));
	struct task_spec s = { 0 };
	char **env;
	assert_int_equal(origin_env(o, &s, &env, err, sizeof(err)), -EACCES);
	assert_int_equal(origin_env_check(o, false, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "/proc/1/environ"));
	assert_int_equal(origin_env_check(o, true, err, sizeof(err)), 0);
	assert_int_equal(origin_env_check(NULL, false, err, sizeof(err)), 0);
	/* a line that needs none of it still goes: env=- and an absolute cwd= */
	s.env_clean = true;
	assert_int_equal(origin_env(o, &s, &env, err, sizeof(err)), 0);
	assert_null(env[0]);
	free(env);
	assert_int_equal(origin_cwd(o, "/", out, sizeof(out), err, sizeof(err)), 0);
	origin_put(o);
}

static void test_cwd(void **state)
{
	(void)state;
	char out[4096], err[256];
	struct origin o = { .refs = 1, .cwd = "/" };
	assert_int_equal(origin_cwd(&o, NULL, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(origin_cwd(&o, "tmp", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "/tmp");
	o.cwd = "/usr";
	assert_int_equal(origin_cwd(&o, "bin", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "/usr/bin");
	/* arithmetic only: existence is checked as the owner (exec/launch.c) */
	assert_int_equal(origin_cwd(&o, "no-such-dir", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "/usr/no-such-dir");
	/* the daemon's own lines: an absolute cwd= or none */
	assert_int_equal(origin_cwd(NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "");
	assert_int_equal(origin_cwd(NULL, "tmp", out, sizeof(out), err, sizeof(err)), -EINVAL);
	assert_int_equal(origin_cwd(&o, "bin", out, 8, err, sizeof(err)), -ENAMETOOLONG);
}

static void test_env_edits(void **state)
{
	(void)state;
	static char block[] = "A=1\0B=2\0PCFS_ID=9\0C=old\0BASH_FUNC_f%%=() {}\0";
	struct origin o = { .refs = 1, .env = block, .env_len = sizeof(block) - 1 };
	char *edits[] = { "-A", "C=new", "D=4" }, **env, err[256];
	assert_int_equal(origin_env_edit(&o, false, edits, 3, &env, err, sizeof(err)), 0);
	const char *want[] = { "B=2", "BASH_FUNC_f%%=() {}", "C=new", "D=4", NULL };
	for (int i = 0; want[i]; i++)
		assert_string_equal(env[i], want[i]);
	assert_null(env[4]);
	assert_string_equal(env_lookup(env, "C"), "new");
	assert_null(env_lookup(env, "A"));
	free(env);
	assert_int_equal(origin_env_edit(&o, true, edits, 3, &env, err, sizeof(err)), 0);
	assert_string_equal(env[0], "C=new");
	assert_string_equal(env[1], "D=4");
	assert_null(env[2]);
	free(env);
}

static void touch_mode(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\n", f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_which(void **state)
{
	(void)state;
	char dir[] = "/tmp/pcfs-which.XXXXXX", path[4200], out[4096];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/b", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/a/tool", dir);
	touch_mode(path, 0644);   /* there, not executable */
	snprintf(path, sizeof(path), "%s/b/tool", dir);
	touch_mode(path, 0755);

	char pathvar[4200];
	snprintf(pathvar, sizeof(pathvar), "%s/a:%s/b", dir, dir);
	assert_int_equal(origin_which("tool", pathvar, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, path);   /* the executable one, as execvp goes on */
	snprintf(pathvar, sizeof(pathvar), "%s/a", dir);
	if (geteuid() != 0)   /* root may execute anything with an x bit: there is none */
		assert_int_equal(origin_which("tool", pathvar, NULL, out, sizeof(out)), -EACCES);
	assert_int_equal(origin_which("none", pathvar, NULL, out, sizeof(out)), -ENOENT);
	/* relative entries, and an empty one, are the task's directory */
	assert_int_equal(origin_which("tool", "b", dir, out, sizeof(out)), 0);
	assert_string_equal(out, path);
	snprintf(pathvar, sizeof(pathvar), "%s/b", dir);
	assert_int_equal(origin_which("tool", ":/nonexistent", pathvar, out, sizeof(out)), 0);
	/* a name with a '/' is not searched */
	assert_int_equal(origin_which("./tool", pathvar, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "./tool");
	/* no PATH: the system's default */
	assert_int_equal(origin_which("sh", NULL, NULL, out, sizeof(out)), 0);
	assert_int_equal(origin_which("", pathvar, NULL, out, sizeof(out)), -ENOENT);

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capture_self),
		cmocka_unit_test(test_capture_refusals),
		cmocka_unit_test(test_cwd),
		cmocka_unit_test(test_env_edits),
		cmocka_unit_test(test_which),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
