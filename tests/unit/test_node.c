/* test_node.c - fs/'s node tables below a mount: the directory kinds and
 * their rows, name lookups, the .json twins, the `only` masks, and the
 * inode numbers that encode (directory kind, object id, row) and must decode
 * to the same.  No session and no engine: the directories used here either
 * need neither, or are copies whose engine callbacks are fakes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgqueue.h"
#include "fs.h"

static struct fs fs;   /* no engine: only what needs none is resolved */

/* Every directory kind that has a table (N_NONE has none). */
static void each_dir(void (*fn)(enum ntype t, const struct dirdesc *dd))
{
	for (unsigned t = N_ROOT; t < N__COUNT; t++) {
		const struct dirdesc *dd = dirdesc_of((enum ntype)t);
		assert_non_null(dd);
		fn((enum ntype)t, dd);
	}
}

static void dirdesc_of_every_type(void **state)
{
	assert_null(dirdesc_of(N_NONE));
	assert_null(dirdesc_of(N__COUNT));
	assert_null(dirdesc_of((enum ntype)255));
	assert_ptr_equal(dirdesc_of(N_ROOT), &dir_root);
	assert_ptr_equal(dirdesc_of(N_PROC), &dir_proc);
	assert_ptr_equal(dirdesc_of(N_CHAN), &dir_chan);
	assert_ptr_equal(dirdesc_of(N_WORKER), &dir_worker);
	assert_ptr_equal(dirdesc_of(N_SYNC), &dir_sync);
}

/* What each kind of row needs to be served (kind.h's operations call these
 * without looking), and what every row needs to be listed. */
static void check_rows(enum ntype t, const struct dirdesc *dd)
{
	assert_true(dd->nrows < 255);   /* row + 1 must fit the inode's 8 bits */
	assert_true(dd->nrows == 0 || dd->rows);
	for (unsigned i = 0; i < dd->nrows; i++) {
		const struct row *r = &dd->rows[i];
		assert_non_null(r->name);
		assert_true(r->name[0] && strlen(r->name) < sizeof(((struct dentry_out *)0)->name));
		assert_null(strchr(r->name, '/'));
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(dd->rows[j].name, r->name))
				fail_msg("%s: two rows called %s", dd->rows[0].name, r->name);
		switch (r->kind) {
		case R_DIR:    assert_non_null(dirdesc_of(r->subdir)); break;
		case R_TEXT:   assert_non_null(r->show); break;
		case R_KV:     assert_non_null(r->kv); break;
		case R_CTL:    assert_non_null(r->store); break;
		case R_WAIT:   assert_non_null(r->ready); assert_true(r->waits_on); break;
		case R_STREAM: assert_non_null(r->stream); break;
		case R_PULL:   assert_non_null(r->fill); assert_true(r->waits_on); break;
		case R_MSG:    assert_non_null(r->msg); assert_true(r->waits_on); break;
		case R_HOLD:   assert_int_equal(r->waits_on, OBJ_SYNC); break;
		}
	}
	if (dd->child)
		assert_non_null(dirdesc_of(dd->child));
	assert_true(!dd->child || (dd->list && dd->lookup));
}

static void tables_are_well_formed(void **state)
{
	each_dir(check_rows);
}

/* KV() makes `name` and `name.json` from one function: the twin follows
 * its row, with the same function and mode, and only the twin is JSON. */
static void check_twins(enum ntype t, const struct dirdesc *dd)
{
	for (unsigned i = 0; i < dd->nrows; i++) {
		const struct row *r = &dd->rows[i];
		if (r->kind != R_KV || r->json)
			continue;
		assert_true(i + 1 < dd->nrows);
		const struct row *tw = &dd->rows[i + 1];
		char want[80];
		snprintf(want, sizeof(want), "%s.json", r->name);
		assert_string_equal(tw->name, want);
		assert_int_equal(tw->kind, R_KV);
		assert_true(tw->json);
		assert_ptr_equal(tw->kv, r->kv);
		assert_int_equal(tw->mode, r->mode);
		assert_int_equal(tw->only, r->only);
		/* and the name finds each of the two */
		assert_int_equal(dir_find(&fs, dd, 1, r->name), (int)i);
		assert_int_equal(dir_find(&fs, dd, 1, want), (int)i + 1);
	}
	for (unsigned i = 0; i < dd->nrows; i++)   /* no twin without its row */
		if (dd->rows[i].json)
			assert_true(i > 0 && dd->rows[i - 1].kv == dd->rows[i].kv &&
				    !dd->rows[i - 1].json);
}

static void kv_rows_have_json_twins(void **state)
{
	each_dir(check_twins);
	/* one known pair, by name */
	int i = dir_find(&fs, &dir_proc, 7, "mem.json");
	assert_true(i > 0);
	assert_true(dir_proc.rows[i].json);
	assert_string_equal(dir_proc.rows[i - 1].name, "mem");
}

/* Lookups of the root directory's names, which need no engine. */
static void lookups_by_name(void **state)
{
	for (unsigned i = 0; i < dir_root.nrows; i++)
		assert_int_equal(dir_find(&fs, &dir_root, 0, dir_root.rows[i].name), (int)i);
	assert_int_equal(dir_find(&fs, &dir_root, 0, "nope"), -1);
	assert_int_equal(dir_find(&fs, &dir_root, 0, ""), -1);
	assert_int_equal(dir_find(&fs, &dir_root, 0, "stat"), -1);     /* "stats" is there */
	assert_int_equal(dir_find(&fs, &dir_root, 0, "statss"), -1);
	assert_int_equal(dir_find(&fs, &dir_root, 0, "README/"), -1);
	assert_int_equal(dir_find(&fs, &dir_proc, 3, "status.json"),
			 dir_find(&fs, &dir_proc, 3, "status") + 1);

	/* a subdirectory row names its directory's inode, not a row's */
	int p = dir_find(&fs, &dir_root, 0, "procs");
	assert_true(p >= 0);
	assert_int_equal(dir_root.rows[p].kind, R_DIR);
	assert_int_equal(row_ino(N_ROOT, 0, &dir_root, (unsigned)p), ino_make(N_PROCS, 0, 0));
	int q = dir_find(&fs, &dir_pool, 5, "futures");
	assert_true(q >= 0);
	assert_int_equal(row_ino(N_POOL, 5, &dir_pool, (unsigned)q), ino_make(N_FUTURES, 5, 0));
}

/* /channels/NAME is one table for three shapes of channel: the `only` mask
 * of a row says for which it is there.  Its variant comes from the engine;
 * here from a fake. */
static unsigned fake_type;
static unsigned fake_variant(struct fs *f, uint64_t obj)
{
	return 1u << fake_type;
}

static bool visible_in(const struct dirdesc *dd, const char *name)
{
	return dir_find(&fs, dd, 9, name) >= 0;
}

static void only_masks(void **state)
{
	struct dirdesc chan = dir_chan;
	chan.variant = fake_variant;
	chan.exists = NULL;

	static const struct {
		enum chan_type type;
		const char *shown[4], *hidden[4];
	} cases[] = {
		{ CHAN_QUEUE, { "put", "get", "ctl", "stat.json" }, { "a", "b", "address", NULL } },
		{ CHAN_PIPE, { "a", "b", "ctl", "stat" }, { "put", "get", "address", NULL } },
		{ CHAN_SOCKET, { "put", "get", "address", "ctl" }, { "a", "b", NULL, NULL } },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		fake_type = cases[c].type;
		for (int i = 0; i < 4; i++) {
			if (cases[c].shown[i])
				assert_true(visible_in(&chan, cases[c].shown[i]));
			if (cases[c].hidden[i])
				assert_false(visible_in(&chan, cases[c].hidden[i]));
		}
		/* the same answer from row_visible, and every row without a
		 * mask is shown whatever the type */
		for (unsigned i = 0; i < chan.nrows; i++) {
			const struct row *r = &chan.rows[i];
			bool v = row_visible(&fs, &chan, r, 9);
			assert_int_equal(v, !r->only || (r->only & (1u << fake_type)));
			assert_int_equal(visible_in(&chan, r->name), v);
		}
	}
	/* a directory kind without a variant shows every row, masked or not */
	chan.variant = NULL;
	for (unsigned i = 0; i < chan.nrows; i++)
		assert_true(row_visible(&fs, &chan, &chan.rows[i], 9));
}

/* node_resolve: the root and /sys need no engine. */
static void resolve_rows(void **state)
{
	static const enum ntype types[] = { N_ROOT, N_SYS };
	for (size_t k = 0; k < 2; k++) {
		const struct dirdesc *want = dirdesc_of(types[k]), *dd;
		const struct row *row;
		assert_int_equal(node_resolve(&fs, ino_make(types[k], 0, 0), &dd, &row), 0);
		assert_ptr_equal(dd, want);
		assert_null(row);
		for (unsigned i = 0; i < want->nrows; i++) {
			int rc = node_resolve(&fs, ino_make(types[k], 0, i + 1), &dd, &row);
			if (want->rows[i].kind == R_DIR) {   /* reached by its own inode */
				assert_int_equal(rc, -ENOENT);
				continue;
			}
			assert_int_equal(rc, 0);
			assert_ptr_equal(row, &want->rows[i]);
		}
		assert_int_equal(node_resolve(&fs, ino_make(types[k], 0, want->nrows + 1), &dd, &row),
				 -ENOENT);
		assert_int_equal(node_resolve(&fs, ino_make(types[k], 0, 255), &dd, &row), -ENOENT);
	}
	const struct dirdesc *dd;
	const struct row *row;
	assert_int_equal(node_resolve(&fs, FUSE_ROOT_ID, &dd, &row), 0);
	assert_ptr_equal(dd, &dir_root);
	assert_int_equal(node_resolve(&fs, ino_make(N_NONE, 4, 1), &dd, &row), -ENOENT);
	assert_int_equal(node_resolve(&fs, ino_make(N__COUNT, 0, 0), &dd, &row), -ENOENT);
	assert_int_equal(node_resolve(&fs, (fuse_ino_t)0xff << 56, &dd, &row), -ENOENT);
	assert_null(dir_row(&dir_root, 0));
	assert_null(dir_row(&dir_root, dir_root.nrows + 1));
}

/* ---- inode round trip ---------------------------------------------------------- */

/* Distinct ids at the edges of each byte and of the 48 bits an inode keeps;
 * INO_OBJ_MAX is also the largest future key, FUTURE_KEY(0xffff, UINT32_MAX). */
static const uint64_t edge_ids[] = {
	0, 1, 2, 255, 256, 0xffff, UINT32_MAX, FUTURE_KEY(1, 0), FUTURE_KEY(1, 1),
	UINT64_C(1) << 47, INO_OBJ_MAX - 1, INO_OBJ_MAX,
};
#define NEDGE (sizeof(edge_ids) / sizeof(edge_ids[0]))

static fuse_ino_t *seen;
static size_t nseen;

static void round_trip(enum ntype t, const struct dirdesc *dd)
{
	for (size_t k = 0; k < NEDGE; k++) {
		uint64_t obj = edge_ids[k];
		fuse_ino_t dir = ino_make(t, obj, 0);
		assert_int_equal(ino_type(dir), t);
		assert_int_equal(ino_obj(dir), obj);
		assert_int_equal(ino_row(dir), 0);
		seen[nseen++] = dir;
		for (unsigned i = 0; i < dd->nrows; i++) {
			const struct row *r = &dd->rows[i];
			fuse_ino_t ino = row_ino(t, obj, dd, i);
			if (r->kind == R_DIR) {   /* the subdirectory's own inode */
				assert_int_equal(ino, ino_make(r->subdir, obj, 0));
				continue;
			}
			assert_int_equal(ino_type(ino), t);
			assert_int_equal(ino_obj(ino), obj);
			assert_int_equal(ino_row(ino), i + 1);
			assert_ptr_equal(dirdesc_of(ino_type(ino)), dd);
			assert_ptr_equal(dir_row(dirdesc_of(ino_type(ino)), ino_row(ino)), r);
			assert_true(ino != FUSE_ROOT_ID);
			seen[nseen++] = ino;
		}
	}
}

static int cmp_ino(const void *a, const void *b)
{
	fuse_ino_t x = *(const fuse_ino_t *)a, y = *(const fuse_ino_t *)b;
	return x < y ? -1 : x > y;
}

static void count_rows(enum ntype t, const struct dirdesc *dd)
{
	nseen += (dd->nrows + 1) * NEDGE;
}

/* Every (kind, id, row) decodes to itself, and no two share an inode. */
static void inode_round_trip(void **state)
{
	nseen = 0;
	each_dir(count_rows);
	seen = calloc(nseen, sizeof(*seen));
	assert_non_null(seen);
	nseen = 0;
	each_dir(round_trip);
	qsort(seen, nseen, sizeof(*seen), cmp_ino);
	for (size_t i = 1; i < nseen; i++)
		if (seen[i] == seen[i - 1])
			fail_msg("inode %#llx made twice", (unsigned long long)seen[i]);
	free(seen);

	/* the root is FUSE's own inode, both ways */
	assert_int_equal(ino_make(N_ROOT, 0, 0), FUSE_ROOT_ID);
	assert_int_equal(ino_type(FUSE_ROOT_ID), N_ROOT);
	assert_int_equal(ino_obj(FUSE_ROOT_ID), 0);
	assert_int_equal(ino_row(FUSE_ROOT_ID), 0);
	/* a future's key keeps its pool and id through the inode */
	assert_int_equal(FUTURE_KEY(0xffff, UINT32_MAX), INO_OBJ_MAX);
	fuse_ino_t f = ino_make(N_FUTURE, FUTURE_KEY(0xffff, 0xfffffffe), 3);
	assert_int_equal(ino_obj(f) >> 32, 0xffff);
	assert_int_equal(ino_obj(f) & 0xffffffff, 0xfffffffe);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dirdesc_of_every_type),
		cmocka_unit_test(tables_are_well_formed),
		cmocka_unit_test(kv_rows_have_json_twins),
		cmocka_unit_test(lookups_by_name),
		cmocka_unit_test(only_masks),
		cmocka_unit_test(resolve_rows),
		cmocka_unit_test(inode_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
