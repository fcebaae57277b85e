/* main.c - pcfs-worker: runs built-in workloads on behalf of the daemon.
 *
 *   pcfs-worker run LINE                          one workload in this process
 *   pcfs-worker forkserver DEFAULT_TIME_MS        fork/clone tasks on request (fd 3)
 *   pcfs-worker threads GIL DEFAULT_TIME_MS N     run tasks as threads (fd 3)
 *   pcfs-worker pool GIL DEFAULT_TIME_MS NSLOTS   run futures on long-lived slots (fd 3)
 *
 * This file only checks the arguments and hands over to the mode, one row of
 * modes[] each; the modes live in files of their own (see modes.h).  The
 * daemon is the only intended caller; argument errors exit 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "modes.h"
#include "spec.h"

#define DEFAULT_TIME_MS 10000  /* run mode, without PCFS_DEFAULT_TIME_MS */

/* A strict integer argument in [0, max]. */
static bool arg_uint(const char *what, const char *s, uint64_t max, uint64_t *out)
{
	if (parse_uint(s, max, out) == 0)
		return true;
	wlog("bad %s: '%s'", what, s);
	return false;
}

/* The modes' arguments: arg[0] is the first one after the mode's name, and
 * there are as many as the row's `args` names.  Each returns the exit code. */

static int start_run(char **arg)
{
	const char *env = getenv("PCFS_DEFAULT_TIME_MS");
	uint64_t ms = DEFAULT_TIME_MS;

	if (env && !arg_uint("PCFS_DEFAULT_TIME_MS", env, INT64_MAX, &ms))
		return 2;
	return run_main(arg[0], (int64_t)ms);
}

static int start_forkserver(char **arg)
{
	uint64_t ms;

	if (!arg_uint("DEFAULT_TIME_MS", arg[0], INT64_MAX, &ms))
		return 2;
	return forkserver_main((int64_t)ms);
}

static int start_threads(char **arg)
{
	uint64_t gil, ms, n;

	if (!arg_uint("GIL", arg[0], 1, &gil) ||
	    !arg_uint("DEFAULT_TIME_MS", arg[1], INT64_MAX, &ms) ||
	    !arg_uint("N", arg[2], UINT32_MAX, &n))
		return 2;
	return threadhost_main(gil == 1, (int64_t)ms, (unsigned)n);
}

static int start_pool(char **arg)
{
	uint64_t gil, ms, n;

	if (!arg_uint("GIL", arg[0], 1, &gil) ||
	    !arg_uint("DEFAULT_TIME_MS", arg[1], INT64_MAX, &ms) ||
	    !arg_uint("NSLOTS", arg[2], POOL_SLOTS_MAX, &n))
		return 2;
	if (n == 0) {
		wlog("bad NSLOTS: '%s'", arg[2]);
		return 2;
	}
	return poolhost_main(gil == 1, (int64_t)ms, (unsigned)n);
}

static const struct mode {
	const char *name;
	int nargs;
	const char *args;          /* their names, for the usage message */
	int (*start)(char **arg);
} modes[] = {
	{ "run",        1, "LINE",                       start_run },
	{ "forkserver", 1, "DEFAULT_TIME_MS",            start_forkserver },
	{ "threads",    3, "GIL DEFAULT_TIME_MS N",      start_threads },
	{ "pool",       3, "GIL DEFAULT_TIME_MS NSLOTS", start_pool },
};

#define NMODES (sizeof modes / sizeof modes[0])

/* Every mode's line, in one message (one write: see wlog). */
static int usage(void)
{
	char buf[512];
	size_t n = 0;

	for (size_t i = 0; i < NMODES && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s pcfs-worker %s %s",
				      i ? "\n" : "", i ? "      " : "usage:",
				      modes[i].name, modes[i].args);
	wlog("%s", buf);
	return 2;
}

int main(int argc, char **argv)
{
	for (size_t i = 0; i < NMODES; i++)
		if (argc == 2 + modes[i].nargs && strcmp(argv[1], modes[i].name) == 0)
			return modes[i].start(argv + 2);
	return usage();
}
