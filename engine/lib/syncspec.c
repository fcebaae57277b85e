/* syncspec.c - the grammars of /sync/ctl and /sync/NAME/ctl (syncspec.h).
 *
 * Each is a cmdtab: the table checks the words' count, its handlers the
 * name and the options, and stage the result in the caller's struct, which
 * is theirs only once the whole line was found good.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdtab.h"
#include "spec.h"
#include "syncspec.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const kind_names[] = {
	[SYNC_LOCK] = "lock", [SYNC_SEMAPHORE] = "semaphore",
	[SYNC_EVENT] = "event", [SYNC_BARRIER] = "barrier",
};

const char *sync_kind_name(enum sync_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

bool sync_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SYNC_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789._-") == n;
}

/* ---- /sync/ctl ---------------------------------------------------------------- */

static int take_name(struct sync_spec *s, const char *name, char *err, size_t errlen)
{
	if (!sync_name_ok(name)) {
		snprintf(err, errlen, "a name is 1 to %d of A-Z a-z 0-9 . _ - (not . or ..)",
			 SYNC_NAME_MAX);
		return -EINVAL;
	}
	strcpy(s->name, name);
	return 0;
}

/* One option word of a semaphore or a barrier line. */
static int take_option(struct sync_spec *s, const char *w, char *err, size_t errlen)
{
	uint64_t n;
	if (s->kind == SYNC_SEMAPHORE && !strcmp(w, "bounded")) {
		s->bounded = true;
		return 0;
	}
	if (s->kind == SYNC_SEMAPHORE && !strncmp(w, "value=", 6)) {
		if (parse_uint(w + 6, SYNC_VALUE_MAX, &n) == 0) {
			s->value = (int64_t)n;
			return 0;
		}
		snprintf(err, errlen, "value= takes 0 to %d", SYNC_VALUE_MAX);
		return -EINVAL;
	}
	if (s->kind == SYNC_BARRIER && !strncmp(w, "parties=", 8)) {
		if (parse_uint(w + 8, SYNC_PARTIES_MAX, &n) == 0 && n > 0) {
			s->parties = (unsigned)n;
			return 0;
		}
		snprintf(err, errlen, "parties= takes 1 to %d", SYNC_PARTIES_MAX);
		return -EINVAL;
	}
	if (s->kind == SYNC_BARRIER && !strncmp(w, "timeout=", 8)) {
		if (parse_duration_ms(w + 8, &s->timeout_ms) == 0 && s->timeout_ms > 0)
			return 0;
		snprintf(err, errlen, "timeout= takes a duration (500ms, 10s, 2m)");
		return -EINVAL;
	}
	snprintf(err, errlen, "%s: unknown option '%.40s'", sync_kind_name(s->kind), w);
	return -EINVAL;
}

static int create_row(void *ctx, size_t argc, char **argv, char *err, size_t errlen,
		      enum sync_kind kind)
{
	struct sync_spec *s = ctx;
	s->kind = kind;
	int rc = take_name(s, argv[1], err, errlen);
	for (size_t i = 2; rc == 0 && i < argc; i++)
		rc = take_option(s, argv[i], err, errlen);
	if (rc == 0 && kind == SYNC_BARRIER && !s->parties) {
		snprintf(err, errlen, "a barrier needs parties=N");
		rc = -EINVAL;
	}
	return rc;
}

static int h_lock(void *c, size_t n, char **v, char *err, size_t el)
{
	return create_row(c, n, v, err, el, SYNC_LOCK);
}
static int h_semaphore(void *c, size_t n, char **v, char *err, size_t el)
{
	return create_row(c, n, v, err, el, SYNC_SEMAPHORE);
}
static int h_event(void *c, size_t n, char **v, char *err, size_t el)
{
	return create_row(c, n, v, err, el, SYNC_EVENT);
}
static int h_barrier(void *c, size_t n, char **v, char *err, size_t el)
{
	return create_row(c, n, v, err, el, SYNC_BARRIER);
}

static const struct cmdtab create_tab[] = {
	{ "lock", 1, 1, h_lock, "lock NAME" },
	{ "semaphore", 1, 3, h_semaphore, "semaphore NAME value=N [bounded]" },
	{ "event", 1, 1, h_event, "event NAME" },
	{ "barrier", 2, 3, h_barrier, "barrier NAME parties=N [timeout=DUR]" },
};

int sync_parse_create(const char *line, struct sync_spec *out, char *err, size_t errlen)
{
	struct sync_spec s = { .value = 1, .timeout_ms = -1 };
	int rc = cmd_exec(create_tab, ARRAY_SIZE(create_tab), line, &s, err, errlen);
	if (rc == 0)
		*out = s;
	return rc;
}

/* ---- /sync/NAME/ctl ------------------------------------------------------------- */

static const struct {
	const char *name;
	enum sync_kind kind;
} ops[] = {
	[SYNC_OP_SET] = { "set", SYNC_EVENT },
	[SYNC_OP_CLEAR] = { "clear", SYNC_EVENT },
	[SYNC_OP_ABORT] = { "abort", SYNC_BARRIER },
	[SYNC_OP_RESET] = { "reset", SYNC_BARRIER },
	[SYNC_OP_RELEASE] = { "release", SYNC_SEMAPHORE },
};

const char *sync_op_name(enum sync_op op)
{
	return (unsigned)op < ARRAY_SIZE(ops) && ops[op].name ? ops[op].name : "?";
}

enum sync_kind sync_op_kind(enum sync_op op)
{
	return (unsigned)op < ARRAY_SIZE(ops) ? ops[op].kind : SYNC_LOCK;
}

static int h_op(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct sync_cmd *c = ctx;
	for (size_t i = 1; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(argv[0], ops[i].name))
			c->op = (enum sync_op)i;
	c->n = 1;
	uint64_t n;
	if (argc == 2) {
		if (parse_uint(argv[1], SYNC_VALUE_MAX, &n) || n == 0) {
			snprintf(err, errlen, "release takes 1 to %d units", SYNC_VALUE_MAX);
			return -EINVAL;
		}
		c->n = (int64_t)n;
	}
	return 0;
}

static const struct cmdtab ctl_tab[] = {
	{ "set", 0, 0, h_op, "set" },
	{ "clear", 0, 0, h_op, "clear" },
	{ "abort", 0, 0, h_op, "abort" },
	{ "reset", 0, 0, h_op, "reset" },
	{ "release", 0, 1, h_op, "release [N]" },
};

int sync_parse_ctl(const char *line, struct sync_cmd *out, char *err, size_t errlen)
{
	struct sync_cmd c = { 0 };
	int rc = cmd_exec(ctl_tab, ARRAY_SIZE(ctl_tab), line, &c, err, errlen);
	if (rc == 0)
		*out = c;
	return rc;
}

/* ---- /shm/ctl and /shm/NAME/ctl ------------------------------------------------- */

const char *shm_kind_name(enum shm_kind k)
{
	return k == SHM_SEGMENT ? "segment" : k == SHM_VALUE ? "value" : "?";
}

static int take_int64(const char *w, int64_t *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long long v = strtoll(w, &end, 10);
	if (!w[0] || *end || errno || (w[0] != '-' && (w[0] < '0' || w[0] > '9'))) {
		snprintf(err, errlen, "'%.40s' is not a 64-bit integer", w);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int take_size(const char *w, uint64_t *out, char *err, size_t errlen)
{
	if (strncmp(w, "size=", 5) || parse_size(w + 5, out) || *out > SHM_SIZE_MAX) {
		snprintf(err, errlen, "size= takes a size up to 1T (4k, 64M, 1G)");
		return -EINVAL;
	}
	return 0;
}

static int h_segment(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct shm_spec *s = ctx;
	s->kind = SHM_SEGMENT;
	struct sync_spec n;
	int rc = take_name(&n, argv[1], err, errlen);
	if (rc == 0)
		strcpy(s->name, n.name);
	return rc ? rc : take_size(argv[2], &s->size, err, errlen);
}

static int h_value(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct shm_spec *s = ctx;
	s->kind = SHM_VALUE;
	struct sync_spec n;
	int rc = take_name(&n, argv[1], err, errlen);
	if (rc == 0)
		strcpy(s->name, n.name);
	return rc || argc < 3 ? rc : take_int64(argv[2], &s->value, err, errlen);
}

static const struct cmdtab shm_create_tab[] = {
	{ "segment", 2, 2, h_segment, "segment NAME size=SIZE" },
	{ "value", 1, 2, h_value, "value NAME [N]" },
};

int shm_parse_create(const char *line, struct shm_spec *out, char *err, size_t errlen)
{
	struct shm_spec s = { 0 };
	int rc = cmd_exec(shm_create_tab, ARRAY_SIZE(shm_create_tab), line, &s, err, errlen);
	if (rc == 0)
		*out = s;
	return rc;
}

static int h_size(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct shm_cmd *c = ctx;
	c->op = SHM_OP_SIZE;
	if (parse_size(argv[1], &c->size) || c->size > SHM_SIZE_MAX) {
		snprintf(err, errlen, "size= takes a size up to 1T (4k, 64M, 1G)");
		return -EINVAL;
	}
	return 0;
}

static int h_arith(void *ctx, size_t argc, char **argv, char *err, size_t errlen)
{
	struct shm_cmd *c = ctx;
	c->op = !strcmp(argv[0], "add") ? SHM_OP_ADD : !strcmp(argv[0], "set") ? SHM_OP_SET
										: SHM_OP_CAS;
	int rc = take_int64(argv[1], &c->a, err, errlen);
	return rc || argc < 3 ? rc : take_int64(argv[2], &c->b, err, errlen);
}

static const struct cmdtab segment_tab[] = {
	{ "size=", 1, 1, h_size, "size=SIZE" },
};

static const struct cmdtab value_tab[] = {
	{ "add", 1, 1, h_arith, "add N" },
	{ "set", 1, 1, h_arith, "set N" },
	{ "cas", 2, 2, h_arith, "cas OLD NEW" },
};

int shm_parse_ctl(const char *line, enum shm_kind kind, struct shm_cmd *out, char *err,
		  size_t errlen)
{
	struct shm_cmd c = { 0 };
	int rc = kind == SHM_SEGMENT
		? cmd_exec(segment_tab, ARRAY_SIZE(segment_tab), line, &c, err, errlen)
		: cmd_exec(value_tab, ARRAY_SIZE(value_tab), line, &c, err, errlen);
	if (rc == 0)
		*out = c;
	return rc;
}
