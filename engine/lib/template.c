/* template.c - command templates (see template.h).
 *
 * A template is compiled once: its placeholders are found, each with the
 * quote the template puts around it and whether it begins a word the task
 * grammar reads before the arguments.  Expanding it is then a copy of the
 * text with each value spliced in, quoted for where it lands.
 *
 * One reader of quotes serves the template, the lines it makes and the
 * slot markers in them: '...' is literal; outside it a backslash takes the
 * next byte; "..." ends at an unescaped ".  The task grammar (spec.c) and
 * sh agree on these three, which is all a splice needs to know; where sh
 * reads otherwise (backquotes, $'...', a $( inside "...") a placeholder is
 * refused rather than guessed at.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reason.h"
#include "template.h"

#define DIGITS "0123456789"
#define KEY_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"
/* values made only of these need no quotes, for sh or the task grammar */
#define SAFE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" DIGITS "_+,./:@-"
#define SLOT_MARK "{%}"

/* ---- reading quotes ---------------------------------------------------- */

/* The byte at s[i] read under quote *q (0, '\'' or '"'): how many bytes it
 * takes (2 for a backslash and the byte it escapes), *q updated. */
static size_t quote_step(const char *s, size_t i, char *q)
{
	char c = s[i];

	if (*q == '\'') {
		if (c == '\'')
			*q = 0;
		return 1;
	}
	if (c == '\\')
		return s[i + 1] ? 2 : 1;
	if (*q == '"') {
		if (c == '"')
			*q = 0;
		return 1;
	}
	if (c == '\'' || c == '"')
		*q = c;
	return 1;
}

/* The placeholder at s (which is at a '{'), its length in ph; 0 if none. */
static size_t match_placeholder(const char *s, struct tmpl_ph *ph)
{
	static const struct { const char *text; enum tmpl_what what; } fixed[] = {
		{ "{}", PH_WHOLE }, { "{.}", PH_NOEXT }, { "{/}", PH_BASE }, { "{//}", PH_DIR },
		{ "{/.}", PH_BASE_NOEXT }, { "{#}", PH_SEQ }, { "{%}", PH_SLOT },
	};
	size_t nd = strspn(s + 1, DIGITS);

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		size_t n = strlen(fixed[i].text);
		if (strncmp(s, fixed[i].text, n) == 0) {
			ph->what = (uint8_t)fixed[i].what;
			return n;
		}
	}
	if (nd < 1 || nd > 2 || s[1] == '0' || s[1 + nd] != '}')
		return 0;
	ph->what = PH_FIELD;
	ph->field = (uint8_t)(nd == 1 ? s[1] - '0' : (s[1] - '0') * 10 + s[2] - '0');
	return nd + 2;
}

/* Is s[i] a placeholder's '{'?  Not right after a '$' (${1} is sh's). */
static size_t placeholder_at(const char *s, size_t i, struct tmpl_ph *ph)
{
	if (s[i] != '{' || (i > 0 && s[i - 1] == '$'))
		return 0;
	return match_placeholder(s + i, ph);
}

/* ---- compiling --------------------------------------------------------- */

struct compiler {
	struct tmpl *t;
	struct perr *e;
	const char *s;
	size_t i;
	char quote;
	unsigned words;          /* words begun so far (outside quotes, blanks part them) */
	bool in_word;
	bool zone;               /* COUNT, options or -- may still come (exec, sh) */
	bool zone_word;          /* the current word is one of those */
	bool sh;                 /* in sh's command line */
	size_t lead_at;          /* a placeholder that begins the first argument: always quoted */
	const char *hazard;      /* where sh's quoting left ours behind, NULL: not yet */
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t word_len(const char *s)
{
	size_t n = 0;
	while (s[n] && !is_blank(s[n]))
		n++;
	return n;
}

/* The workload named by the template's first word (unquoted, as spec.c). */
static int find_workload(struct compiler *c)
{
	char word[TMPL_MAX + 4], *p = word;
	const char *s = c->s + strspn(c->s, " \t");
	size_t n = word_len(s);

	if (n == 0)
		return perr_fail(c->e, -EINVAL, "empty template (template= alone removes it)");
	memcpy(word, s, n);
	word[n] = '\0';
	if (spec_unquote(&p, s, NULL, 0) == 0) {
		for (int w = 0; w < WL__COUNT; w++) {
			if (strcmp(word, workload_name((enum workload)w)) == 0) {
				c->t->workload = (enum workload)w;
				c->t->raw = workload_is_builtin((enum workload)w);
				return 0;
			}
		}
	}
	return perr_fail(c->e, -EINVAL, "a template begins with its workload (exec, sh, sleep, ...), "
			 "not '%s'", SHOW(word));
}

/* A word begins at c->i: is it COUNT, an option, "--", or the first
 * argument (after which the grammar reads no more options)? */
static int word_begins(struct compiler *c)
{
	const char *w = c->s + c->i;
	struct tmpl_ph ph;
	size_t n = word_len(w), k = strspn(w, KEY_CHARS);

	c->in_word = true;
	c->zone_word = false;
	if (c->words++ == 0 || c->t->raw)
		return 0;
	if (!c->zone) {
		c->sh = c->t->workload == WL_SH;
		return 0;
	}
	if (c->words == 2 && strspn(w, DIGITS) == n)
		return perr_fail(c->e, -EINVAL, "a template makes one future per input: no COUNT");
	if (placeholder_at(w, 0, &ph)) {
		c->zone = false;        /* its value is quoted: an argument */
		c->lead_at = c->i;
	} else if (k > 0 && !(*w >= '0' && *w <= '9') && w[k] == '=') {
		c->zone_word = true;
	} else if (n == 2 && strncmp(w, "--", 2) == 0) {
		c->zone_word = true;
		c->zone = false;
	} else {
		c->zone = false;
	}
	c->sh = !c->zone_word && c->t->workload == WL_SH;
	return 0;
}

/* What sh reads at c->i that this reader cannot follow, if anything. */
static void note_hazard(struct compiler *c)
{
	const char *p = c->s + c->i;

	if (!c->sh || c->hazard || c->quote == '\'')
		return;
	if (*p == '`')
		c->hazard = "a backquote";
	else if (!c->quote && p[0] == '$' && (p[1] == '\'' || p[1] == '"'))
		c->hazard = "$' or $\"";
	else if (c->quote == '"' && p[0] == '$' && (p[1] == '(' || p[1] == '{'))
		c->hazard = "$( or ${ inside double quotes";
}

static int add_placeholder(struct compiler *c, struct tmpl_ph ph, size_t len)
{
	struct tmpl *t = c->t;

	if (c->hazard)
		return perr_fail(c->e, -EINVAL, "a placeholder after %s in an sh template: sh quotes "
				 "it otherwise there (use $(...) outside double quotes, or a variable)",
				 c->hazard);
	if (ph.what == PH_SLOT && (t->raw || c->zone_word))
		return perr_fail(c->e, -EINVAL, "{%%} (the worker slot, known when a worker takes "
				 "the future) goes in an exec or sh command, not %s",
				 t->raw ? "a built-in" : "an option");
	if (t->n == TMPL_PH_MAX)
		return perr_fail(c->e, -EINVAL, "more than %d placeholders", TMPL_PH_MAX);
	ph.at = (uint16_t)c->i;
	ph.len = (uint16_t)len;
	ph.quote = (uint8_t)c->quote;
	ph.lead = c->i == c->lead_at;
	t->uses_seq |= ph.what == PH_SEQ;
	t->uses_slot |= ph.what == PH_SLOT;
	t->ph[t->n++] = ph;
	return 0;
}

/* Read the template word by word, quote by quote, noting its placeholders. */
static int scan(struct compiler *c)
{
	const char *s = c->s;
	int rc;

	while (s[c->i]) {
		struct tmpl_ph ph = { 0 };
		size_t n;

		if (!c->quote && is_blank(s[c->i])) {
			c->in_word = false;
			c->i++;
			continue;
		}
		if (!c->quote && !c->in_word && (rc = word_begins(c)))
			return rc;
		note_hazard(c);
		if ((n = placeholder_at(s, c->i, &ph))) {
			if ((rc = add_placeholder(c, ph, n)))
				return rc;
			c->i += n;
			continue;
		}
		if (s[c->i] == '\\' && !s[c->i + 1] && c->quote != '\'')
			return perr_fail(c->e, -EINVAL, "a trailing backslash in the template");
		c->i += quote_step(s, c->i, &c->quote);
	}
	if (c->quote)
		return perr_fail(c->e, -EINVAL, "an unterminated %s quote in the template",
				 c->quote == '\'' ? "single" : "double");
	return 0;
}

static int compile_text(struct tmpl *t, struct perr *e)
{
	struct compiler c = { .t = t, .e = e, .s = t->text, .zone = true, .lead_at = SIZE_MAX };
	int rc;

	t->n = 0;
	t->uses_seq = t->uses_slot = false;
	if ((rc = find_workload(&c)))
		return rc;
	return scan(&c);
}

int tmpl_compile(const char *text, struct tmpl *t, char *err, size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	size_t len = strnlen(text, TMPL_MAX + 1);
	int rc;

	memset(t, 0, sizeof(*t));
	if (e.len)
		err[0] = '\0';
	if (len > TMPL_MAX)
		return perr_fail(&e, -E2BIG, "a template is at most %d bytes", TMPL_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return perr_fail(&e, -EINVAL, "control character 0x%02x in the template", ch);
	}
	memcpy(t->text, text, len + 1);
	rc = compile_text(t, &e);
	/* as GNU parallel: a command without a placeholder takes the input last */
	if (rc == 0 && t->n == 0 && !t->raw) {
		memcpy(t->text + len, " {}", 4);   /* fits: text has room for it */
		rc = compile_text(t, &e);
	}
	return rc;
}

/* ---- values ------------------------------------------------------------ */

struct input {
	const char *s;
	size_t len;
	uint64_t seq;
	bool sample;             /* every value "1" (tmpl_sample) */
};

/* Field k (1-based) of the input: at *at, *n bytes; *n = 0 past the last. */
static void field_of(const struct input *in, unsigned k, size_t *at, size_t *n)
{
	size_t i = 0;

	for (;;) {
		while (i < in->len && is_blank(in->s[i]))
			i++;
		size_t start = i;
		while (i < in->len && !is_blank(in->s[i]))
			i++;
		if (start == i || --k == 0) {
			*at = start;
			*n = i - start;
			return;
		}
	}
}

/* s[0..n) without its extension: GNU parallel's s:\.[^/.]*$:: */
static size_t without_ext(const char *s, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		if (s[i] == '/')
			return n;
		if (s[i] == '.')
			return i;
	}
	return n;
}

/* Where the base name of s[0..n) begins: after the last '/'. */
static size_t base_at(const char *s, size_t n)
{
	for (size_t i = n; i-- > 0;)
		if (s[i] == '/')
			return i + 1;
	return 0;
}

/* dirname(1) of s[0..n), into v. */
static void dir_of(const char *s, size_t n, struct strbuf *v)
{
	size_t slash;

	while (n > 1 && s[n - 1] == '/')
		n--;
	for (slash = n; slash > 0 && s[slash - 1] != '/';)
		slash--;
	if (slash == 0) {
		sb_adds(v, ".");
		return;
	}
	for (n = slash; n > 1 && s[n - 1] == '/';)
		n--;
	sb_add(v, s, n);
}

/* The value of placeholder ph for this input, into v (reset first). */
static void value_of(const struct tmpl_ph *ph, const struct input *in, struct strbuf *v)
{
	const char *s = in->s;
	size_t n = in->len, at, k;

	sb_reset(v);
	if (in->sample) {
		sb_adds(v, "1");
		return;
	}
	switch ((enum tmpl_what)ph->what) {
	case PH_WHOLE:
		sb_add(v, s, n);
		break;
	case PH_FIELD:
		field_of(in, ph->field, &at, &k);
		sb_add(v, s + at, k);
		break;
	case PH_NOEXT:
		sb_add(v, s, without_ext(s, n));
		break;
	case PH_BASE:
		k = base_at(s, n);
		sb_add(v, s + k, n - k);
		break;
	case PH_BASE_NOEXT:
		k = base_at(s, n);
		sb_add(v, s + k, without_ext(s + k, n - k));
		break;
	case PH_DIR:
		dir_of(s, n, v);
		break;
	case PH_SEQ:
		sb_printf(v, "%llu", (unsigned long long)in->seq);
		break;
	case PH_SLOT:
		sb_adds(v, SLOT_MARK);
		break;
	}
}

/* ---- splicing ---------------------------------------------------------- */

static bool all_in(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

static bool any_in(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] && strchr(set, s[i]))
			return true;
	return false;
}

/* s in single quotes, a quote as '\'' (sh's and the task grammar's way). */
static void sq_quote(const char *s, size_t n, struct strbuf *out)
{
	sb_addc(out, '\'');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'')
			sb_adds(out, "'\\''");
		else
			sb_addc(out, s[i]);
	}
	sb_addc(out, '\'');
}

void tmpl_quote_word(const char *s, struct strbuf *out)
{
	sq_quote(s, strlen(s), out);
}

/* The slot marker goes outside every quote, where tmpl_fill_slot finds it;
 * ahead of a word the grammar might take for COUNT, behind an empty ''. */
static void splice_slot_mark(const struct tmpl_ph *ph, struct strbuf *out)
{
	if (ph->lead)
		sb_adds(out, "''" SLOT_MARK);
	else if (ph->quote) {
		sb_addc(out, (char)ph->quote);
		sb_adds(out, SLOT_MARK);
		sb_addc(out, (char)ph->quote);
	} else
		sb_adds(out, SLOT_MARK);
}

/* Value v in place of ph, so that it is read back as exactly itself. */
static void splice(const struct tmpl_ph *ph, const struct input *in, const struct strbuf *v,
		   struct strbuf *out)
{
	if (ph->what == PH_SLOT && !in->sample) {
		splice_slot_mark(ph, out);
	} else if (ph->quote == '\'') {
		/* inside the template's '...': only a quote needs closing it */
		for (size_t i = 0; i < v->len; i++) {
			if (v->buf[i] == '\'')
				sb_adds(out, "'\\''");
			else
				sb_addc(out, v->buf[i]);
		}
	} else if (ph->quote == '"') {
		/* inside "...": close it around a value sh would read into */
		if (!any_in(v->buf, v->len, "$`\\\"")) {
			sb_add(out, v->buf, v->len);
		} else {
			sb_addc(out, '"');
			sq_quote(v->buf, v->len, out);
			sb_addc(out, '"');
		}
	} else if (!ph->lead && v->len && all_in(v->buf, v->len, SAFE_CHARS)) {
		sb_add(out, v->buf, v->len);
	} else {
		sq_quote(v->buf, v->len, out);
	}
}

static int expand(const struct tmpl *t, const struct input *in, struct strbuf *out, struct perr *e)
{
	struct strbuf v = STRBUF_INIT;
	size_t from = 0;
	int rc = 0;

	for (size_t k = 0; k < t->n && rc == 0; k++) {
		const struct tmpl_ph *ph = &t->ph[k];

		sb_add(out, t->text + from, ph->at - from);
		from = ph->at + ph->len;
		value_of(ph, in, &v);
		if (!t->raw)
			splice(ph, in, &v, out);
		else if (!any_in(v.buf, v.len, " \t'\"\\"))
			sb_add(out, v.buf, v.len);
		else
			rc = perr_fail(e, -EINVAL, "a %s template takes values without blanks, quotes or "
				       "backslashes (got '%s')", workload_name(t->workload),
				       SHOW(sb_cstr(&v)));
	}
	sb_adds(out, t->text + from);
	if (rc == 0 && (sb_error(&v) || sb_error(out)))
		rc = perr_fail(e, -ENOMEM, "out of memory");
	sb_free(&v);
	return rc;
}

int tmpl_expand(const struct tmpl *t, const char *in, size_t len, uint64_t seq,
		struct strbuf *out, char *err, size_t errlen)
{
	struct perr e = { err, err ? errlen : 0 };
	struct input input = { .s = in, .len = len, .seq = seq };

	if (e.len)
		err[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return perr_fail(&e, -EINVAL, "the input holds control character 0x%02x at "
					 "column %zu", c, i + 1);
	}
	return expand(t, &input, out, &e);
}

void tmpl_sample(const struct tmpl *t, struct strbuf *out)
{
	struct input input = { .s = "1", .len = 1, .seq = 1, .sample = true };

	expand(t, &input, out, &(struct perr){ NULL, 0 });
}

void tmpl_fill_slot(const char *line, unsigned slot, struct strbuf *out)
{
	struct tmpl_ph ph;
	size_t i = 0, from = 0;
	char q = 0;

	while (line[i]) {
		if (!q && placeholder_at(line, i, &ph) && ph.what == PH_SLOT) {
			sb_add(out, line + from, i - from);
			sb_printf(out, "%u", slot);
			i += strlen(SLOT_MARK);
			from = i;
			continue;
		}
		i += quote_step(line, i, &q);
	}
	sb_adds(out, line + from);
}
