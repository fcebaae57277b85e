/* fuzz_config.c - the config loader on any file content: it loads, or
 * fails with "FILE:LINE: reason" and leaves the config untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("pcfs.ini", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64], err[1024];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct pcfs_config c, before;
	config_defaults(&c);
	before = c;
	if (config_load(&c, path, err, sizeof(err)) < 0) {
		if (memcmp(&c, &before, sizeof(c)) || strncmp(err, path, strlen(path)))
			abort();
	} else {
		char *text = config_render(&c);
		if (!text)
			abort();
		free(text);
	}
	close(fd);
	return 0;
}
