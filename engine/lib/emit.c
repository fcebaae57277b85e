/* emit.c - see emit.h */
#include "emit.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

void emit_begin(struct emit *e, struct strbuf *out, enum emit_format fmt)
{
	e->out = out;
	e->fmt = fmt;
	e->nfields = 0;
	if (fmt == EMIT_JSON)
		sb_addc(out, '{');
}

void emit_end(struct emit *e)
{
	if (e->fmt == EMIT_JSON)
		sb_adds(e->out, "}\n");
}

void json_escape(struct strbuf *out, const char *s)
{
	sb_addc(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':  sb_adds(out, "\\\""); break;
		case '\\': sb_adds(out, "\\\\"); break;
		case '\n': sb_adds(out, "\\n"); break;
		case '\t': sb_adds(out, "\\t"); break;
		case '\r': sb_adds(out, "\\r"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				sb_printf(out, "\\u%04x", *p);
			else
				sb_addc(out, (char)*p);
		}
	}
	sb_addc(out, '"');
}

/* Start a field: the key and its separator in either format. */
static void key(struct emit *e, const char *k)
{
	if (e->fmt == EMIT_JSON) {
		if (e->nfields)
			sb_addc(e->out, ',');
		json_escape(e->out, k);
		sb_addc(e->out, ':');
	} else {
		sb_printf(e->out, "%s: ", k);
	}
	e->nfields++;
}

static void done(struct emit *e)
{
	if (e->fmt == EMIT_TEXT)
		sb_addc(e->out, '\n');
}

void emit_str(struct emit *e, const char *k, const char *val)
{
	key(e, k);
	if (e->fmt == EMIT_JSON) {
		if (val)
			json_escape(e->out, val);
		else
			sb_adds(e->out, "null");
	} else if (val) {
		/* One field is one line in text form. */
		for (const char *p = val; *p; p++)
			sb_addc(e->out, *p == '\n' ? ' ' : *p);
	}
	done(e);
}

void emit_int(struct emit *e, const char *k, int64_t val)
{
	key(e, k);
	sb_printf(e->out, "%" PRId64, val);
	done(e);
}

void emit_uint(struct emit *e, const char *k, uint64_t val)
{
	key(e, k);
	sb_printf(e->out, "%" PRIu64, val);
	done(e);
}

void emit_bool(struct emit *e, const char *k, bool val)
{
	key(e, k);
	if (e->fmt == EMIT_JSON)
		sb_adds(e->out, val ? "true" : "false");
	else
		sb_addc(e->out, val ? '1' : '0');
	done(e);
}

void emit_null(struct emit *e, const char *k)
{
	key(e, k);
	if (e->fmt == EMIT_JSON)
		sb_adds(e->out, "null");
	done(e);
}

void emit_fixed(struct emit *e, const char *k, double val, int decimals)
{
	key(e, k);
	if (!isfinite(val))
		sb_adds(e->out, e->fmt == EMIT_JSON ? "null" : "");
	else
		sb_printf(e->out, "%.*f", decimals, val);
	done(e);
}
