/* fuzz_wire.c - what the daemon reads from its workers: any datagram is
 * received as a well-formed message or refused, never overrun; a batch's
 * records stay inside it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (size > 65536 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (send(sv[1], data, size, MSG_NOSIGNAL) == (ssize_t)size) {
		close(sv[1]);
		static char buf[WIRE_MAX];
		struct wire_hdr h;
		ssize_t n = wire_recv(sv[0], buf, &h, NULL, NULL);
		if (n >= 0 && h.type != 0 && (size_t)n != h.len)
			abort();
		if (n > 0 && h.type == W_BATCH) {   /* as the daemon unpacks one */
			const char *pl;
			struct wire_hdr r;
			size_t pos = 0;
			while (wire_batch_next(buf + sizeof h, (size_t)n, &pos, &r, &pl) > 0)
				if (pos > (size_t)n || pl < buf + sizeof h ||
				    pl + r.len > buf + sizeof h + (size_t)n)
					abort();
		}
	} else {
		close(sv[1]);
	}
	close(sv[0]);
	return 0;
}
