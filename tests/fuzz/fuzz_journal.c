/* fuzz_journal.c - what a new daemon reads from [state] dir/journal, which a
 * killed daemon may have left torn or a disk may have damaged: any line
 * parses into a record or is refused, never overrun; a record that parses
 * renders back to a line that parses to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536 || memchr(data, '\n', size) || memchr(data, '\0', size))
		return 0;   /* the reader hands jr_parse one line, without NULs */
	char *line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	struct jrec r;
	if (jr_parse(line, &r) == 0) {
		struct strbuf sb = STRBUF_INIT;
		jr_begin(&sb, r.kind);
		for (size_t i = 0; i < r.n; i++)
			jr_mem(&sb, r.f[i].key, r.f[i].value, r.f[i].len);
		char *again = strndup(sb.buf ? sb.buf : "", sb.len);
		struct jrec r2;
		if (!again || jr_parse(again, &r2) != 0 || r2.n != r.n || strcmp(r2.kind, r.kind))
			abort();
		for (size_t i = 0; i < r.n; i++)
			if (strcmp(r.f[i].key, r2.f[i].key) || r.f[i].len != r2.f[i].len ||
			    memcmp(r.f[i].value, r2.f[i].value, r.f[i].len))
				abort();
		uint64_t u;
		int64_t x;
		struct timespec ts;
		for (size_t i = 0; i < r.n; i++) {
			jr_get_u64(&r, r.f[i].key, &u);
			jr_get_i64(&r, r.f[i].key, &x);
			jr_get_ts(&r, r.f[i].key, &ts);
		}
		free(again);
		sb_free(&sb);
	}
	free(line);
	return 0;
}
