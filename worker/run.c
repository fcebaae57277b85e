/* run.c - `pcfs-worker run LINE`: one built-in workload in this process.
 *
 * The daemon starts this program afresh (method=spawn or vfork of a
 * built-in) rather than asking the fork server; the output goes straight to
 * fds 1 and 2.
 */
#include <string.h>

#include "common.h"
#include "modes.h"
#include "spec.h"

int run_main(const char *line, int64_t default_time_ms)
{
	struct task_spec spec;
	struct wl_ctx ctx;
	char err[256];
	int code;

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
		.default_time_ms = default_time_ms,
		.out = fd_out,
	};
	code = workload_run(&ctx);
	spec_free(&spec);
	return code;
}
