/* fuzz_proc.c - the /proc parsers and the pmap formatter (a process's
 * smaps, status, stat, /proc/meminfo) and the credential line the worker is
 * given: the kernel's text is trusted, but a truncated read or a path with
 * newlines in a mapping name must not crash the daemon.  The buffers are not
 * NUL-terminated, as the readers pass them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "memstat.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int each(const struct ms_mapping *m, void *ctx)
{
	(void)ms_mapping_kind(m);
	*(size_t *)ctx += 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), *s = malloc(size + 1);
	struct ms_rollup r;
	struct ms_status st;
	struct ms_stat sa;
	struct ms_meminfo mi;
	struct strbuf sb = { 0 };
	struct cred c;
	int64_t heap;
	size_t n = 0;

	if (!buf || !s)
		goto out;
	memcpy(buf, data, size);
	(void)ms_smaps_foreach(buf, size, each, &n);
	(void)ms_rollup_parse(buf, size, &r);
	(void)ms_smaps_sum(buf, size, &r);
	(void)ms_smaps_rollup_heap(buf, size, &r, &heap);
	(void)ms_status_parse(buf, size, &st);
	(void)ms_stat_parse(buf, size, &sa);
	(void)ms_meminfo_parse(buf, size, &mi);
	(void)ms_format_pmap(buf, size, &sb);
	sb_free(&sb);
	memcpy(s, data, size);
	s[size] = '\0';
	if (cred_parse(s, &c) == 0 && c.ngroups > CRED_GROUPS_MAX)
		abort();
out:
	free(buf);
	free(s);
	return 0;
}
