/* main.c - pcfs-worker: runs built-in workloads on behalf of the daemon.
 *
 *   pcfs-worker run LINE                          one workload in this process
 *   pcfs-worker forkserver DEFAULT_TIME_MS        fork/clone tasks on request (fd 3)
 *   pcfs-worker threads GIL DEFAULT_TIME_MS N     run tasks as threads (fd 3)
 *   pcfs-worker pool GIL DEFAULT_TIME_MS NSLOTS   run futures on long-lived slots (fd 3)
 *
 * The daemon is the only intended caller; argument errors exit 2.
 */
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

static int usage(void)
{
	wlog("usage: pcfs-worker run LINE\n"
	     "       pcfs-worker forkserver DEFAULT_TIME_MS\n"
	     "       pcfs-worker threads GIL DEFAULT_TIME_MS N\n"
	     "       pcfs-worker pool GIL DEFAULT_TIME_MS NSLOTS");
	return 2;
}

/* pcfs-worker run LINE: the workload runs here, output on fds 1 and 2. */
static int run_main(const char *line)
{
	const char *env = getenv("PCFS_DEFAULT_TIME_MS");
	uint64_t default_ms = DEFAULT_TIME_MS;
	struct task_spec spec;
	struct wl_ctx ctx;
	char err[256];
	int code;

	if (env && !arg_uint("PCFS_DEFAULT_TIME_MS", env, INT64_MAX, &default_ms))
		return 2;
	if (spec_parse(line, strlen(line), online_cpus(), &spec, err, sizeof err) < 0) {
		wlog("%s", err);
		return 2;
	}
	if (!workload_is_builtin(spec.workload)) {
		wlog("run: %s lines are not run by the worker", workload_name(spec.workload));
		spec_free(&spec);
		return 2;
	}
	ctx = (struct wl_ctx){
		.spec = &spec,
		.default_time_ms = (int64_t)default_ms,
		.out = fd_out,
	};
	code = workload_run(&ctx);
	spec_free(&spec);
	return code;
}

int main(int argc, char **argv)
{
	uint64_t ms, gil, n;

	if (argc == 3 && strcmp(argv[1], "run") == 0)
		return run_main(argv[2]);
	if (argc == 3 && strcmp(argv[1], "forkserver") == 0) {
		if (!arg_uint("DEFAULT_TIME_MS", argv[2], INT64_MAX, &ms))
			return 2;
		return forkserver_main((int64_t)ms);
	}
	if (argc == 5 && strcmp(argv[1], "threads") == 0) {
		if (!arg_uint("GIL", argv[2], 1, &gil) ||
		    !arg_uint("DEFAULT_TIME_MS", argv[3], INT64_MAX, &ms) ||
		    !arg_uint("N", argv[4], UINT32_MAX, &n))
			return 2;
		return threadhost_main(gil == 1, (int64_t)ms, (unsigned)n);
	}
	if (argc == 5 && strcmp(argv[1], "pool") == 0) {
		if (!arg_uint("GIL", argv[2], 1, &gil) ||
		    !arg_uint("DEFAULT_TIME_MS", argv[3], INT64_MAX, &ms) ||
		    !arg_uint("NSLOTS", argv[4], POOL_SLOTS_MAX, &n))
			return 2;
		if (n == 0) {
			wlog("bad NSLOTS: '%s'", argv[4]);
			return 2;
		}
		return poolhost_main(gil == 1, (int64_t)ms, (unsigned)n);
	}
	return usage();
}
