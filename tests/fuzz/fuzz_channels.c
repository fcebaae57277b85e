/* fuzz_channels.c - the /channels/ctl line (queue|pipe|socket NAME
 * [capacity=N] [maxmsg=SIZE] [mode=M]) and the capacity= and mode= values of
 * a channel's own ctl: any bytes are refused with a one-line reason or give
 * a spec whose name is a valid channel name and whose figures are in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reason(const char *err, size_t len)
{
	if (!memchr(err, '\0', len) || strchr(err, '\n') || !err[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), err[256];
	struct chan_spec cs;
	enum chan_mode mode;
	uint32_t cap;

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	memset(err, 'x', sizeof(err));
	if (chan_parse_create(line, &cs, err, sizeof(err)) == 0) {
		if (!chan_name_ok(cs.name) || cs.capacity > CHAN_CAPACITY_MAX ||
		    (cs.mode != CHAN_MODE_LINES && cs.mode != CHAN_MODE_MESSAGE))
			abort();
	} else {
		check_reason(err, sizeof(err));
	}
	memset(err, 'x', sizeof(err));
	if (chan_parse_capacity(line, &cap, err, sizeof(err)) == 0) {
		if (cap < 1 || cap > CHAN_CAPACITY_MAX)
			abort();
	} else {
		check_reason(err, sizeof(err));
	}
	memset(err, 'x', sizeof(err));
	if (chan_parse_mode(line, &mode, err, sizeof(err)) != 0)
		check_reason(err, sizeof(err));
	free(line);
	return 0;
}
