/* fuzz_values.c - the value syntax every ctl file and the config share:
 * durations, sizes, numbers, signal names.  No crash, and a value that
 * parses is in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t ms;
	uint64_t v;
	int sig;
	if (parse_duration_ms(s, &ms) == 0 && ms < 0)
		abort();
	(void)parse_size(s, &v);
	if (parse_uint(s, 1000, &v) == 0 && v > 1000)
		abort();
	if (parse_signal(s, &sig) == 0 && (sig < 1 || sig > 64))
		abort();
	free(s);
	return 0;
}
