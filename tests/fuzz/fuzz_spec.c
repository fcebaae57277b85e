/* fuzz_spec.c - the task line grammar: any bytes are refused cleanly or
 * parsed into a spec that frees cleanly, and an error is one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task_spec s;
	char err[256];
	memset(err, 'x', sizeof(err));
	int rc = spec_parse((const char *)data, size, 2, &s, err, sizeof(err));
	if (rc < 0) {
		/* a reason, NUL-terminated, on one line */
		if (!memchr(err, '\0', sizeof(err)) || strchr(err, '\n'))
			abort();
		return 0;
	}
	if (s.count < 1 || !s.line)
		abort();
	if ((s.workload == WL_EXEC || s.workload == WL_SH) && (!s.argv || !s.argv[0]))
		abort();
	/* a parsed line parses again to the same workload and count */
	struct task_spec again;
	if (spec_parse(s.line, strlen(s.line), 2, &again, err, sizeof(err)) < 0 ||
	    again.workload != s.workload || again.count != s.count)
		abort();
	spec_free(&again);
	spec_free(&s);
	spec_free(&s);   /* idempotent */
	return 0;
}
