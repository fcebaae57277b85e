/* fuzz_sync.c - the lines of /sync/ctl, /sync/NAME/ctl, /shm/ctl and
 * /shm/NAME/ctl (lib/syncspec.c):
 * any bytes are refused with a one-line reason, or give an object whose
 * name is a good name and whose numbers are in their ranges, or an
 * operation of a known kind. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "syncspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line_reason(int rc, const char *err)
{
	if (rc == 0)
		return;
	if (rc >= 0 || !err[0] || strchr(err, '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[512], err[256];
	if (size >= sizeof(line))
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';

	struct sync_spec s;
	err[0] = '\0';
	int rc = sync_parse_create(line, &s, err, sizeof(err));
	one_line_reason(rc, err);
	if (rc == 0) {
		if (!sync_name_ok(s.name) || (unsigned)s.kind > SYNC_BARRIER)
			abort();
		if (s.value < 0 || s.value > SYNC_VALUE_MAX)
			abort();
		if (s.kind == SYNC_BARRIER && (s.parties < 1 || s.parties > SYNC_PARTIES_MAX))
			abort();
		if (s.timeout_ms == 0 || s.timeout_ms < -1)
			abort();
	}

	struct sync_cmd c;
	err[0] = '\0';
	rc = sync_parse_ctl(line, &c, err, sizeof(err));
	one_line_reason(rc, err);
	if (rc == 0) {
		if (c.op < SYNC_OP_SET || c.op > SYNC_OP_RELEASE || c.n < 1 ||
		    c.n > SYNC_VALUE_MAX || !strcmp(sync_op_name(c.op), "?"))
			abort();
	}

	struct shm_spec h;
	err[0] = '\0';
	rc = shm_parse_create(line, &h, err, sizeof(err));
	one_line_reason(rc, err);
	if (rc == 0 && (!sync_name_ok(h.name) || h.size > SHM_SIZE_MAX ||
			(h.kind != SHM_SEGMENT && h.kind != SHM_VALUE)))
		abort();
	struct shm_cmd m;
	for (int k = SHM_SEGMENT; k <= SHM_VALUE; k++) {
		err[0] = '\0';
		rc = shm_parse_ctl(line, (enum shm_kind)k, &m, err, sizeof(err));
		one_line_reason(rc, err);
		if (rc == 0 && ((k == SHM_SEGMENT) != (m.op == SHM_OP_SIZE) ||
				m.size > SHM_SIZE_MAX))
			abort();
	}
	return 0;
}
