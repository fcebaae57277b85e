/* test_cglib.c - resource control's pure part: CPU lists, the discovery of
 * our cgroups from /proc/self/cgroup and mountinfo texts (v1, v2, hybrid,
 * a container's nested mount), and the limit files written into a fake
 * cgroup tree of plain files in a temp dir: the v2 paths (memory.max,
 * memory.swap.max, cpu.max, pids.max, cpuset.cpus, io.weight, memory.events'
 * oom_kill) a hybrid machine cannot exercise, and v1's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cglib.h"
#include "spec.h"

static void test_cpus(void **state)
{
	(void)state;
	uint8_t m[CG_CPUS_MAX / 8];
	char buf[128];
	assert_int_equal(cg_parse_cpus("0", m), 1);
	cg_format_cpus(m, buf, sizeof(buf));
	assert_string_equal(buf, "0");
	assert_int_equal(cg_parse_cpus("0-3,5,7-8", m), 7);
	cg_format_cpus(m, buf, sizeof(buf));
	assert_string_equal(buf, "0-3,5,7-8");
	assert_int_equal(cg_parse_cpus("2,1,0", m), 3);
	cg_format_cpus(m, buf, sizeof(buf));
	assert_string_equal(buf, "0-2");
	assert_int_equal(cg_parse_cpus("1-1,1", m), 1);
	const char *bad[] = { "", "-1", "3-1", "0,", "a", "0-", "1024", "0 1", ",0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cg_parse_cpus(bad[i], m), -EINVAL);
	assert_int_equal(cg_parse_cpus("1023", m), 1);
}

/* This project's machines: v1 controllers, an empty unified tree. */
static const char hybrid_cgroup[] =
	"9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n";
static const char hybrid_mounts[] =
	"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
	"33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
	"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const struct cg_hier *find(const struct cg_hier *h, size_t n, bool v2, const char *ctrl)
{
	for (size_t i = 0; i < n; i++)
		if (h[i].v2 == v2 && (v2 || strcmp(h[i].ctrl, ctrl) == 0))
			return &h[i];
	return NULL;
}

static void test_discover_hybrid(void **state)
{
	(void)state;
	struct cg_hier h[CG_HIER_MAX];
	size_t n = cg_discover(hybrid_cgroup, hybrid_mounts, "", h, CG_HIER_MAX);
	assert_int_equal(n, 5);   /* name=systemd is no controller's */
	assert_string_equal(find(h, n, false, "memory")->dir, "/sys/fs/cgroup/memory/process_api/abc");
	assert_string_equal(find(h, n, false, "pids")->dir, "/sys/fs/cgroup/pids");
	assert_string_equal(find(h, n, false, "cpu,cpuacct")->dir, "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(find(h, n, true, "")->dir, "/sys/fs/cgroup/unified");
	assert_true(cg_list_has(find(h, n, false, "cpu,cpuacct")->ctrl, "cpuacct"));
	assert_false(cg_list_has(find(h, n, false, "cpu,cpuacct")->ctrl, "cpuset"));
	/* [cgroup] where = /pcfs: in place of our own, everywhere */
	n = cg_discover(hybrid_cgroup, hybrid_mounts, "/pcfs", h, CG_HIER_MAX);
	assert_string_equal(find(h, n, false, "memory")->dir, "/sys/fs/cgroup/memory/pcfs");
	assert_string_equal(find(h, n, true, "")->dir, "/sys/fs/cgroup/unified/pcfs");
}

/* A pure v2 host, and a container that sees its own cgroup as the mount's
 * root (mountinfo's root field is the cgroup, /proc/self/cgroup the full
 * path). */
static void test_discover_v2_nested(void **state)
{
	(void)state;
	struct cg_hier h[CG_HIER_MAX];
	const char *cgv2 = "0::/system.slice/pcfs.service\n";
	const char *mv2 = "25 20 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
	size_t n = cg_discover(cgv2, mv2, "", h, CG_HIER_MAX);
	assert_int_equal(n, 1);
	assert_true(h[0].v2);
	assert_string_equal(h[0].dir, "/sys/fs/cgroup/system.slice/pcfs.service");
	const char *mnest = "25 20 0:22 /system.slice/pcfs.service /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	n = cg_discover(cgv2, mnest, "", h, CG_HIER_MAX);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].dir, "/sys/fs/cgroup");
	/* not below the mount's root: not visible, not used */
	n = cg_discover("0::/elsewhere\n", mnest, "", h, CG_HIER_MAX);
	assert_int_equal(n, 0);
	/* nothing mounted */
	assert_int_equal(cg_discover(cgv2, "", "", h, CG_HIER_MAX), 0);
}

static void test_values(void **state)
{
	(void)state;
	assert_int_equal(cg_kv_get("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n", "oom_kill", 9), 1);
	assert_int_equal(cg_kv_get("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", "oom_kill", 9), 4);
	assert_int_equal(cg_kv_get("oom 2\n", "oom_kill", 9), 9);
	assert_int_equal(cg_cpu_quota_us(50), 50000);
	assert_int_equal(cg_cpu_quota_us(150), 150000);
	char b[32];
	cg_format_size(128ull << 20, b, sizeof(b));
	assert_string_equal(b, "128M");
	cg_format_size(3ull << 30, b, sizeof(b));
	assert_string_equal(b, "3G");
	cg_format_size(1000, b, sizeof(b));
	assert_string_equal(b, "1000");
}

/* ---- a fake tree: cgroup files are plain files here -------------------------------- */

static char tree[64];

static void touch_in(const char *dir, const char *file, const char *content)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static const char *read_in(const char *dir, const char *file)
{
	static char buf[256];
	assert_true(cg_read(dir, file, buf, sizeof(buf)) >= 0);
	return buf;
}

static struct spec_limits limits(void)
{
	return (struct spec_limits){ .mem_max = 128 << 20, .swap_max = 64 << 20, .pids_max = 20,
				     .cpu_max = 150, .io_weight = 500, .cpus = "0-1" };
}

static void test_apply_v2(void **state)
{
	(void)state;
	snprintf(tree, sizeof(tree), "/tmp/cglib.XXXXXX");
	assert_non_null(mkdtemp(tree));
	const char *files[] = { "memory.max", "memory.swap.max", "pids.max", "cpu.max",
				"cpuset.cpus", "io.weight" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		touch_in(tree, files[i], "");
	struct spec_limits l = limits();
	char why[256];
	unsigned need = cg_ctl_needed(&l);
	assert_int_equal(need, (1u << CGC__COUNT) - 1);
	for (int c = 0; c < CGC__COUNT; c++)
		assert_int_equal(cg_apply(tree, "/nonexistent", true, c, &l, why, sizeof(why)), 0);
	assert_string_equal(read_in(tree, "memory.max"), "134217728");
	assert_string_equal(read_in(tree, "memory.swap.max"), "67108864");
	assert_string_equal(read_in(tree, "pids.max"), "20");
	assert_string_equal(read_in(tree, "cpu.max"), "150000 100000");
	assert_string_equal(read_in(tree, "cpuset.cpus"), "0-1");
	assert_string_equal(read_in(tree, "io.weight"), "default 500");
	/* the OOM verdict's count, from memory.events */
	touch_in(tree, "memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n");
	assert_int_equal(cg_oom_kills(tree, true), 1);
	touch_in(tree, "cgroup.procs", "12\n13\n14\n");
	pid_t p[2];
	assert_int_equal(cg_procs(tree, p, 2), 3);
	assert_int_equal(p[1], 13);
	/* a file the host lacks: the reason names it */
	unlink(strcat(strcpy((char[128]){ 0 }, tree), "/memory.swap.max"));
	assert_int_equal(cg_apply(tree, "/x", true, CGC_MEMORY, &l, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "memory.swap.max"));
}

static void test_apply_v1(void **state)
{
	(void)state;
	char parent[96];
	snprintf(parent, sizeof(parent), "%s/parent", tree);
	mkdir(parent, 0755);
	touch_in(parent, "cpuset.mems", "0\n");
	const char *files[] = { "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cpu.cfs_period_us",
				"cpu.cfs_quota_us", "cpuset.mems", "blkio.weight" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		touch_in(tree, files[i], "");
	struct spec_limits l = limits();
	char why[256];
	for (int c = 0; c < CGC__COUNT; c++)
		assert_int_equal(cg_apply(tree, parent, false, c, &l, why, sizeof(why)), 0);
	assert_string_equal(read_in(tree, "memory.limit_in_bytes"), "134217728");
	assert_string_equal(read_in(tree, "memory.memsw.limit_in_bytes"), "201326592");   /* mem + swap */
	assert_string_equal(read_in(tree, "cpu.cfs_period_us"), "100000");
	assert_string_equal(read_in(tree, "cpu.cfs_quota_us"), "150000");
	assert_string_equal(read_in(tree, "cpuset.mems"), "0");                          /* the parent's */
	assert_string_equal(read_in(tree, "blkio.weight"), "50");
	touch_in(tree, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	assert_int_equal(cg_oom_kills(tree, false), 2);
	assert_string_equal(cg_ctl_name(CGC_IO, false), "blkio");
	assert_string_equal(cg_ctl_name(CGC_IO, true), "io");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);
	assert_int_equal(system(cmd), 0);
}

/* The grammar: limits parse and are range-checked by spec.c. */
static void test_spec_limits(void **state)
{
	(void)state;
	struct task_spec s;
	char err[256];
	const char *line = "mem size=512M touch=10% mem_max=128M pids_max=20 cpu_max=150% cpus=0-1";
	assert_int_equal(spec_parse(line, strlen(line), 2, &s, err, sizeof(err)), 0);
	assert_int_equal(s.lim.mem_max, 128 << 20);
	assert_int_equal(s.lim.pids_max, 20);
	assert_int_equal(s.lim.cpu_max, 150);
	assert_string_equal(s.lim.cpus, "0-1");
	assert_true(spec_limits_any(&s.lim));
	spec_free(&s);
	line = "sleep";
	assert_int_equal(spec_parse(line, strlen(line), 2, &s, err, sizeof(err)), 0);
	assert_false(spec_limits_any(&s.lim));
	spec_free(&s);
	const char *bad[] = { "sleep mem_max=12", "sleep cpus=x", "sleep cpu_max=0%", "sleep pids_max=0",
			      "sleep cgroup=2", "sleep io_weight=0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(spec_parse(bad[i], strlen(bad[i]), 2, &s, err, sizeof(err)), -EINVAL);
}

/* A pool's ctl sets limits one key at a time (spec_limit_set), and shows
 * them as it takes them back (cg_limits_format). */
static void test_pool_limits(void **state)
{
	(void)state;
	struct spec_limits l;
	char err[256], shown[160];
	spec_limits_init(&l);
	cg_limits_format(&l, shown, sizeof(shown));
	assert_string_equal(shown, "");
	assert_int_equal(spec_limit_set(&l, "mem_max", "1536M", err, sizeof(err)), 0);
	assert_int_equal(spec_limit_set(&l, "pids_max", "64", err, sizeof(err)), 0);
	assert_int_equal(spec_limit_set(&l, "cpu_max", "150%", err, sizeof(err)), 0);
	assert_int_equal(spec_limit_set(&l, "cpus", "0-1", err, sizeof(err)), 0);
	assert_int_equal(spec_limit_set(&l, "cpus", "1", err, sizeof(err)), 0);   /* replaced */
	assert_int_equal(spec_limit_set(&l, "swap_max", "0", err, sizeof(err)), 0);
	assert_int_equal(spec_limit_set(&l, "io_weight", "500", err, sizeof(err)), 0);
	cg_limits_format(&l, shown, sizeof(shown));
	assert_string_equal(shown, "mem_max=1536M swap_max=0 pids_max=64 cpu_max=150% cpus=1 "
				   "io_weight=500");
	/* what is no limit, or out of range, is refused and changes nothing */
	const char *bad[][2] = { { "time", "1s" }, { "cgroup", "1" }, { "mem_max", "12" },
				 { "cpus", "x" }, { "pids_max", "0" }, { "nosuch", "1" } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(spec_limit_set(&l, bad[i][0], bad[i][1], err, sizeof(err)), -EINVAL);
	cg_limits_format(&l, shown, sizeof(shown));
	assert_string_equal(shown, "mem_max=1536M swap_max=0 pids_max=64 cpu_max=150% cpus=1 "
				   "io_weight=500");
	/* a copy owns its own cpus= */
	struct spec_limits c;
	assert_int_equal(spec_limits_copy(&c, &l), 0);
	spec_limits_free(&l);
	assert_string_equal(c.cpus, "1");
	assert_int_equal(c.mem_max, 1536 << 20);
	spec_limits_free(&c);
	assert_false(spec_limits_any(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_discover_hybrid),
		cmocka_unit_test(test_discover_v2_nested),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_apply_v2),
		cmocka_unit_test(test_apply_v1),
		cmocka_unit_test(test_spec_limits),
		cmocka_unit_test(test_pool_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
