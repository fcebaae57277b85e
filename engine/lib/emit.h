/* emit.h - one description of a record, two renderings.
 *
 * A `status`-like file is written once, as a sequence of typed fields; the
 * emitter renders it either as `key: value` lines for people and `cut`, or
 * as one JSON object for `jq` (its twin `status.json`).  Field names are the
 * same in both; numbers stay numbers and "no value" is JSON null (and an
 * empty value in text), like Python's None. */
#ifndef PCFS_EMIT_H
#define PCFS_EMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "strbuf.h"

enum emit_format { EMIT_TEXT, EMIT_JSON };

struct emit {
	struct strbuf *out;
	enum emit_format fmt;
	unsigned nfields;
};

void emit_begin(struct emit *e, struct strbuf *out, enum emit_format fmt);
void emit_end(struct emit *e);

void emit_str(struct emit *e, const char *key, const char *val);   /* NULL -> null */
void emit_int(struct emit *e, const char *key, int64_t val);
void emit_uint(struct emit *e, const char *key, uint64_t val);
void emit_bool(struct emit *e, const char *key, bool val);          /* 1/0 in text */
void emit_null(struct emit *e, const char *key);
/* A fixed-point number with `decimals` digits (seconds, percentages). */
void emit_fixed(struct emit *e, const char *key, double val, int decimals);

/* JSON string escaping, shared with other JSON writers. */
void json_escape(struct strbuf *out, const char *s);

#endif
