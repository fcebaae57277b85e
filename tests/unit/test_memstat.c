/* test_memstat.c - the /proc parsers, the pmap formatter and the COW
 * arithmetic, on fixtures captured from real processes on a Linux 6.x
 * machine (tests/fixtures/): a bash process sleeping in `read` (smaps,
 * smaps_rollup, status, stat, maps, taken at one moment), the second thread
 * of a python process (task_status, task_stat), /proc/meminfo, and the
 * pagemap entries of a 64-page region of a parent and its child after the
 * child wrote to every fourth page (16 of 64). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "memstat.h"

static struct strbuf fixture(const char *name)
{
	const char *src = getenv("PCFS_SOURCE_DIR");
	char path[4096];
	struct strbuf sb = STRBUF_INIT;

	snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", name);
	assert_int_equal(ms_read_file(path, &sb), 0);
	assert_true(sb.len > 0);
	return sb;
}

/* ---- smaps ---- */

struct count {
	unsigned n, heap, stack, anon, special, file;
	struct ms_mapping heap_m;
};

static int count_one(const struct ms_mapping *m, void *arg)
{
	struct count *c = arg;

	c->n++;
	switch (ms_mapping_kind(m)) {
	case MS_MAP_HEAP:  c->heap++; c->heap_m = *m; break;
	case MS_MAP_STACK: c->stack++; break;
	case MS_MAP_ANON:  c->anon++; break;
	case MS_MAP_SPECIAL: c->special++; break;
	case MS_MAP_FILE:  c->file++; break;
	}
	return 0;
}

static void smaps_mappings(void **state)
{
	struct strbuf sb = fixture("smaps.txt");
	struct count c = { 0 };

	assert_int_equal(ms_smaps_foreach(sb.buf, sb.len, count_one, &c), 0);
	assert_int_equal(c.n, 43);
	assert_int_equal(c.heap, 1);
	assert_int_equal(c.stack, 1);
	assert_int_equal(c.anon, 4);
	assert_int_equal(c.special, 4);   /* [vvar] [vvar_vclock] [vdso] [vsyscall] */
	assert_int_equal(c.file, 33);
	/* 55caffbab000-55caffbcc000 rw-p 00000000 00:00 0  [heap] */
	assert_true(c.heap_m.start == 0x55caffbab000ULL);
	assert_true(c.heap_m.end == 0x55caffbcc000ULL);
	assert_string_equal(c.heap_m.perms, "rw-p");
	assert_string_equal(c.heap_m.dev, "00:00");
	assert_int_equal(c.heap_m.size, 132);
	assert_int_equal(c.heap_m.rss, 84);
	assert_int_equal(c.heap_m.private_dirty, 84);
	assert_int_equal(c.heap_m.anonymous, 84);
	sb_free(&sb);
}

static int stop_at_third(const struct ms_mapping *m, void *arg)
{
	return ++*(int *)arg == 3 ? 7 : 0;
}

static void smaps_callback_stops(void **state)
{
	struct strbuf sb = fixture("smaps.txt");
	int n = 0;

	assert_int_equal(ms_smaps_foreach(sb.buf, sb.len, stop_at_third, &n), 7);
	assert_int_equal(n, 3);
	sb_free(&sb);
}

static void smaps_rejects_other_text(void **state)
{
	struct strbuf sb = fixture("status.txt");
	struct count c = { 0 };

	assert_int_equal(ms_smaps_foreach(sb.buf, sb.len, count_one, &c), -EINVAL);
	assert_int_equal(c.n, 0);
	sb_free(&sb);
	/* a zombie's smaps is empty: no mappings, no error */
	assert_int_equal(ms_smaps_foreach("", 0, count_one, &c), 0);
	assert_int_equal(c.n, 0);
}

/* The kernel's rollup is the sum of the mappings (Pss within rounding: the
 * rollup sums before dividing). */
static void rollup_matches_smaps_sum(void **state)
{
	struct strbuf a = fixture("smaps_rollup.txt"), b = fixture("smaps.txt");
	struct ms_rollup r, s;

	assert_int_equal(ms_rollup_parse(a.buf, a.len, &r), 0);
	assert_int_equal(r.rss, 3376);
	assert_int_equal(r.pss, 774);
	assert_int_equal(r.shared_clean, 3088);
	assert_int_equal(r.shared_dirty, 0);
	assert_int_equal(r.private_clean, 8);
	assert_int_equal(r.private_dirty, 280);
	assert_int_equal(r.anonymous, 280);
	assert_int_equal(r.swap, 0);
	assert_int_equal(ms_smaps_sum(b.buf, b.len, &s), 0);
	assert_int_equal(s.rss, r.rss);
	assert_int_equal(s.shared_clean, r.shared_clean);
	assert_int_equal(s.private_dirty, r.private_dirty);
	assert_int_equal(s.anonymous, r.anonymous);
	assert_true(s.pss >= r.pss - 15 && s.pss <= r.pss + 15);
	sb_free(&a);
	sb_free(&b);
}

static void rollup_empty_is_an_error(void **state)
{
	struct ms_rollup r;

	assert_int_equal(ms_rollup_parse("", 0, &r), -EINVAL);
	assert_int_equal(r.rss, MS_NONE);
}

/* statm: pages in, KiB out; what /mem reads for VSZ. */
static void statm_fields(void **state)
{
	struct ms_statm m;
	const char *t = "4829 370 322 6 0 122 0\n";

	assert_int_equal(ms_statm_parse(t, strlen(t), 4, &m), 0);
	assert_int_equal(m.size, 4829 * 4);
	assert_int_equal(m.resident, 370 * 4);
	assert_int_equal(m.shared, 322 * 4);
	assert_int_equal(ms_statm_parse("", 0, 4, &m), -EINVAL);
	assert_int_equal(ms_statm_parse("12 x\n", 5, 4, &m), -EINVAL);
}

/* ms_read_brief of this very process: its VSZ is its status's VmSize, and
 * the rollup is there; a pid that is no process is ESRCH. */
static void brief_of_self(void **state)
{
	struct ms_rollup r;
	int64_t vsz;
	struct ms_sample s;

	assert_int_equal(ms_read_brief(getpid(), &r, &vsz), 0);
	assert_int_equal(ms_read_sample(getpid(), 0, MS_READ_MEM, &s), 0);
	assert_true(vsz > 0 && r.rss > 0 && r.pss > 0);
	assert_true(vsz >= s.st.vm_size - 1024 && vsz <= s.st.vm_size + 1024);
	assert_int_equal(ms_read_brief(INT32_MAX - 1, &r, &vsz), -ESRCH);
}

/* ---- status, stat, meminfo ---- */

static void status_process(void **state)
{
	struct strbuf sb = fixture("status.txt");
	struct ms_status st;

	assert_int_equal(ms_status_parse(sb.buf, sb.len, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.vm_size, 4360);
	assert_int_equal(st.vm_rss, 3376);
	assert_int_equal(st.vm_data, 304);
	assert_int_equal(st.vm_stk, 132);
	assert_int_equal(st.vm_swap, 0);
	assert_int_equal(st.rss_anon, 280);
	assert_int_equal(st.rss_file, 3096);
	assert_int_equal(st.threads, 1);
	assert_int_equal(st.vol_cs, 2);
	assert_int_equal(st.nonvol_cs, 10);
	sb_free(&sb);
}

static void status_thread_and_missing(void **state)
{
	struct strbuf sb = fixture("task_status.txt");
	struct ms_status st;

	assert_int_equal(ms_status_parse(sb.buf, sb.len, &st), 0);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.threads, 2);
	assert_int_equal(st.vol_cs, 1);
	assert_int_equal(st.nonvol_cs, 0);
	sb_free(&sb);

	/* a kernel thread has no Vm* lines: missing, not zero */
	const char *kthread = "Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n";
	assert_int_equal(ms_status_parse(kthread, strlen(kthread), &st), 0);
	assert_int_equal(st.state, 'I');
	assert_int_equal(st.vm_size, MS_NONE);
	assert_int_equal(st.vm_rss, MS_NONE);
	assert_int_equal(st.threads, 1);
}

static void stat_fields(void **state)
{
	struct strbuf a = fixture("stat.txt"), b = fixture("task_stat.txt");
	struct ms_stat st;

	assert_int_equal(ms_stat_parse(a.buf, a.len, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.utime, 7);
	assert_int_equal(st.stime, 25);
	assert_int_equal(st.num_threads, 1);
	assert_int_equal(st.processor, 1);
	assert_int_equal(ms_stat_parse(b.buf, b.len, &st), 0);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.num_threads, 2);
	assert_int_equal(st.processor, 0);
	sb_free(&a);
	sb_free(&b);
}

static void stat_comm_with_parens_and_spaces(void **state)
{
	const char *s = "42 (a) b (c)) S 1 42 42 0 -1 4194304 0 0 0 0 11 22 0 0 20 0 3 0 100 "
			"1000 10 18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 5 0 0 0 0 0\n";
	struct ms_stat st;

	assert_int_equal(ms_stat_parse(s, strlen(s), &st), 0);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.utime, 11);
	assert_int_equal(st.stime, 22);
	assert_int_equal(st.num_threads, 3);
	assert_int_equal(st.processor, 5);
	assert_int_equal(ms_stat_parse("42 (x", 5, &st), -EINVAL);
	assert_int_equal(ms_stat_parse("", 0, &st), -EINVAL);
}

static void meminfo_fields(void **state)
{
	struct strbuf sb = fixture("meminfo.txt");
	struct ms_meminfo mi;

	assert_int_equal(ms_meminfo_parse(sb.buf, sb.len, &mi), 0);
	assert_int_equal(mi.total, 24684084);
	assert_int_equal(mi.free, 24422948);
	assert_int_equal(mi.available, 24382524);
	assert_int_equal(mi.buffers, 1184);
	assert_int_equal(mi.cached, 103944);   /* not SwapCached, which comes first */
	assert_int_equal(mi.shmem, 8872);
	assert_int_equal(mi.anon, 19256);
	assert_int_equal(mi.swap_total, 0);
	assert_int_equal(mi.swap_free, 0);
	sb_free(&sb);
}

/* ---- [heap] from maps, read piece by piece ---- */

/* A file holding text, positioned at its start (closed by the caller). */
static int text_fd(const char *text, size_t len)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	int fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static int64_t heap_of(const char *text, size_t len)
{
	int fd = text_fd(text, len);
	int64_t kib = -1;
	assert_int_equal(ms_maps_heap_fd(fd, &kib), 0);
	close(fd);
	return kib;
}

static void heap_from_maps_fixture(void **state)
{
	struct strbuf sb = fixture("maps.txt");
	/* 55caffbab000-55caffbcc000: 132 KiB, as smaps says (pmap_table) */
	assert_int_equal(heap_of(sb.buf, sb.len), 132);
	sb_free(&sb);
}

static void heap_past_pieces_and_long_lines(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	/* lines split across 1 KiB reads, and one path longer than the reader's
	 * buffer (it ends in "[heap]" but is a file, not the heap) */
	for (int i = 0; i < 40; i++)
		sb_printf(&sb, "7f00%08x-7f00%08x r--p 00000000 fe:00 1 /usr/lib/libx%d.so\n",
			  i * 0x1000, i * 0x1000 + 0x1000, i);
	sb_printf(&sb, "7f10000000-7f10001000 r--p 00000000 fe:00 2 /");
	for (int i = 0; i < 5000; i++)
		sb_add(&sb, "d", 1);
	sb_printf(&sb, "[heap]\n");
	sb_printf(&sb, "7f20000000-7f20010000 rw-p 00000000 00:00 0 [heap]\n");
	sb_printf(&sb, "7f30000000-7f30001000 rw-p 00000000 00:00 0 [stack]\n");
	assert_int_equal(sb_error(&sb), 0);
	assert_int_equal(heap_of(sb.buf, sb.len), 64);
	sb_free(&sb);
}

static void heap_absent_is_zero(void **state)
{
	const char *maps = "00400000-00401000 r-xp 00000000 fe:00 3 /bin/x\n"
			   "7ffc0000-7ffc1000 rw-p 00000000 00:00 0 [stack]\n";
	assert_int_equal(heap_of(maps, strlen(maps)), 0);
	assert_int_equal(heap_of("", 0), 0);    /* a zombie's maps */
	int64_t kib;
	assert_int_equal(ms_maps_heap_fd(-1, &kib), -EBADF);
}

/* The sampler's snapshot stands in for smaps_rollup and maps: the same
 * figures from the smaps text of the same process. */
static void rollup_and_heap_from_smaps(void **state)
{
	struct strbuf a = fixture("smaps_rollup.txt"), b = fixture("smaps.txt");
	struct strbuf m = fixture("maps.txt");
	struct ms_rollup r, s, sum;
	int64_t heap = -1;

	assert_int_equal(ms_rollup_parse(a.buf, a.len, &r), 0);
	assert_int_equal(ms_smaps_sum(b.buf, b.len, &sum), 0);
	assert_int_equal(ms_smaps_rollup_heap(b.buf, b.len, &s, &heap), 0);
	assert_memory_equal(&s, &sum, sizeof(s));
	assert_int_equal(s.rss, r.rss);
	assert_int_equal(s.private_dirty, r.private_dirty);
	assert_int_equal(heap, heap_of(m.buf, m.len));
	assert_int_equal(heap, 132);

	const char *noheap = "00400000-00401000 r-xp 00000000 fe:00 3 /bin/x\n"
			     "Rss:                   4 kB\n";
	assert_int_equal(ms_smaps_rollup_heap(noheap, strlen(noheap), &s, &heap), 0);
	assert_int_equal(heap, 0);
	assert_int_equal(s.rss, 4);
	/* a zombie's smaps is empty: an error, as its empty rollup is */
	assert_int_equal(ms_smaps_rollup_heap("", 0, &s, &heap), -EINVAL);
	assert_int_equal(ms_smaps_rollup_heap("Rss: 4 kB\n", 10, &s, &heap), -EINVAL);
	sb_free(&a);
	sb_free(&b);
	sb_free(&m);
}

/* ---- pmap -x ---- */

static void pmap_table(void **state)
{
	struct strbuf sb = fixture("smaps.txt"), out = STRBUF_INIT;
	struct ms_rollup sum;

	assert_int_equal(ms_format_pmap(sb.buf, sb.len, &out), 0);
	const char *t = sb_cstr(&out);
	assert_non_null(strstr(t, "Address           Kbytes     RSS   Dirty Mode  Mapping\n"));
	assert_non_null(strstr(t, "000055caffbab000     132      84      84 rw--- [heap]\n"));
	assert_non_null(strstr(t, "00007ffe16876000     132 "));
	assert_non_null(strstr(t, " rw--- [stack]\n"));
	assert_non_null(strstr(t, " r---- bash\n"));          /* files by base name */
	assert_non_null(strstr(t, " r-x-- libc.so.6\n"));
	assert_non_null(strstr(t, " [anon]\n"));
	assert_non_null(strstr(t, " [vdso]\n"));
	/* one line per mapping, plus header, rule and total */
	unsigned lines = 0;
	for (const char *p = t; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 43 + 3);
	/* the total: Kbytes is VmSize (4360) plus [vsyscall] (4, which VmSize
	 * leaves out, as pmap does not), RSS the rollup's Rss */
	assert_int_equal(ms_smaps_sum(sb.buf, sb.len, &sum), 0);
	char want[128];
	snprintf(want, sizeof want, "total kB            4364 %7lld %7lld\n",
		 (long long)sum.rss, (long long)(sum.private_dirty + sum.shared_dirty));
	assert_non_null(strstr(t, want));
	sb_free(&sb);
	sb_free(&out);
}

/* ---- COW ---- */

static void cow_pagemap_fixture(void **state)
{
	struct strbuf c = fixture("pagemap_child.bin"), p = fixture("pagemap_parent.bin");
	struct ms_cow cow = { 0 };

	assert_int_equal(c.len, 64 * 8);
	assert_int_equal(p.len, 64 * 8);
	assert_true(ms_pagemap_has_pfns((const uint64_t *)c.buf, 64));
	ms_cow_add(&cow, (const uint64_t *)c.buf, (const uint64_t *)p.buf, 64);
	assert_int_equal(cow.shared, 48);
	assert_int_equal(cow.copied, 16);
	/* against itself: everything shared */
	struct ms_cow self = { 0 };
	ms_cow_add(&self, (const uint64_t *)p.buf, (const uint64_t *)p.buf, 64);
	assert_int_equal(self.shared, 64);
	assert_int_equal(self.copied, 0);
	sb_free(&c);
	sb_free(&p);
}

static void cow_arithmetic(void **state)
{
	const uint64_t P = MS_PM_PRESENT;
	uint64_t child[] = {
		P | 100,              /* same frame: shared */
		P | 201,              /* another frame: copied */
		0,                    /* not present in the child: neither */
		P | MS_PM_FILE | 103, /* file / shared-anon page: not COW */
		P | 104,              /* parent's page gone (swapped): copied */
		MS_PM_SWAPPED | 7,    /* swapped out in the child: neither */
	};
	uint64_t parent[] = { P | 100, P | 101, P | 102, P | 103, MS_PM_SWAPPED | 5, P | 105 };
	struct ms_cow c = { 0 };

	ms_cow_add(&c, child, parent, 6);
	assert_int_equal(c.shared, 1);
	assert_int_equal(c.copied, 2);

	/* without CAP_SYS_ADMIN the kernel gives present pages with frame 0 */
	uint64_t hidden[] = { P, P, 0 };
	assert_false(ms_pagemap_has_pfns(hidden, 3));
	assert_true(ms_pagemap_has_pfns(child, 6));
}

/* A real fork: the child writes a quarter of a 32 MiB region and all of a
 * 1 MiB one; the cow region is the larger one, with its own figures. */
static void cow_region_of_a_real_child(void **state)
{
	const size_t big = 32 << 20, small = 1 << 20;
	long page = sysconf(_SC_PAGESIZE);
	/* guard, region, guard, small, guard: a PROT_NONE page on each side
	 * keeps the kernel from merging either mapping with a neighbour (a
	 * hole would not: the next mmap may fill it) */
	size_t pg = (size_t)page, total = pg + big + pg + small + pg;
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(base != MAP_FAILED);
	char *r = base + pg, *s = r + big + pg;
	assert_int_equal(mprotect(base, pg, PROT_NONE), 0);
	assert_int_equal(mprotect(r + big, pg, PROT_NONE), 0);
	assert_int_equal(mprotect(s + small, pg, PROT_NONE), 0);
	memset(r, 1, big);
	memset(s, 1, small);
	int ready[2], done[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		memset(r, 2, big / 4);
		memset(s, 2, small);
		char c = 0;
		_exit(write(ready[1], &c, 1) == 1 && read(done[0], &c, 1) >= 0 ? 0 : 1);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	struct ms_cow cow;
	bool exact = false;
	int rc = ms_read_cow(pid, getpid(), &cow, &exact);
	assert_int_equal(write(done[1], &c, 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(rc, 0);
	assert_int_equal(cow.region.start, (uint64_t)(uintptr_t)r);
	assert_int_equal(cow.region.pages, big / (size_t)page);
	if (exact) {   /* frame numbers need CAP_SYS_ADMIN */
		assert_int_equal(cow.region.copied, big / 4 / (size_t)page);
		assert_int_equal(cow.region.shared, big * 3 / 4 / (size_t)page);
		assert_true(cow.copied >= cow.region.copied + small / (size_t)page);
	}
	munmap(base, total);
	close(ready[0]); close(ready[1]); close(done[0]); close(done[1]);
}

/* Garbled figures whose sum does not fit: the totals stop at INT64_MAX
 * instead of overflowing (fuzz_proc's long run found it: signed overflow in
 * the sum; tests/fuzz/regress/proc holds its input). */
static void sums_saturate(void **state)
{
	(void)state;
	const char *two =
		"00400000-00401000 r--p 00000000 00:00 0 \n"
		"Rss:            5555555555555555555 kB\n"
		"Private_Dirty:  5555555555555555555 kB\n"
		"Shared_Dirty:   5555555555555555555 kB\n"
		"00401000-00402000 r--p 00000000 00:00 0 \n"
		"Rss:            5555555555555555556 kB\n"
		"Private_Dirty:  1 kB\n";
	struct ms_rollup sum;
	assert_int_equal(ms_smaps_sum(two, strlen(two), &sum), 0);
	assert_true(sum.rss == INT64_MAX);
	assert_true(sum.private_dirty == 5555555555555555556LL);
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(ms_format_pmap(two, strlen(two), &out), 0);
	assert_non_null(strstr(sb_cstr(&out), " 9223372036854775807 "));   /* the RSS total */
	sb_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(smaps_mappings),
		cmocka_unit_test(smaps_callback_stops),
		cmocka_unit_test(smaps_rejects_other_text),
		cmocka_unit_test(rollup_matches_smaps_sum),
		cmocka_unit_test(rollup_empty_is_an_error),
		cmocka_unit_test(statm_fields),
		cmocka_unit_test(brief_of_self),
		cmocka_unit_test(status_process),
		cmocka_unit_test(status_thread_and_missing),
		cmocka_unit_test(stat_fields),
		cmocka_unit_test(stat_comm_with_parens_and_spaces),
		cmocka_unit_test(meminfo_fields),
		cmocka_unit_test(heap_from_maps_fixture),
		cmocka_unit_test(heap_past_pieces_and_long_lines),
		cmocka_unit_test(heap_absent_is_zero),
		cmocka_unit_test(rollup_and_heap_from_smaps),
		cmocka_unit_test(pmap_table),
		cmocka_unit_test(sums_saturate),
		cmocka_unit_test(cow_pagemap_fixture),
		cmocka_unit_test(cow_arithmetic),
		cmocka_unit_test(cow_region_of_a_real_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
