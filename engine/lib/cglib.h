/* cglib.h - the pure part of resource control (the cgroup room uses it):
 * CPU lists, where this process's cgroups are (from the texts of
 * /proc/self/cgroup and /proc/self/mountinfo), and the values cgroup files
 * hold.  No I/O here: the room reads the files, these read the text, so the
 * unit tests drive every hierarchy shape (v1, v2, hybrid, nested mounts)
 * from strings and a fake tree in a temp dir.
 */
#ifndef PCFS_CGLIB_H
#define PCFS_CGLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spec.h"

#define CG_CPUS_MAX 1024          /* CPUs a cpus= list may name (0..1023) */
#define CG_PATH_MAX 512
#define CG_HIER_MAX 16            /* hierarchies looked at */

/* cpus=LIST: "0", "0-3", "0,2-3".  Sets bits of mask (CG_CPUS_MAX bits, the
 * caller's 128 bytes) and returns how many CPUs it names, or -EINVAL. */
int cg_parse_cpus(const char *s, uint8_t mask[CG_CPUS_MAX / 8]);
/* The mask back as a list ("0-1,3"), as cpuset.cpus wants it. */
void cg_format_cpus(const uint8_t mask[CG_CPUS_MAX / 8], char *buf, size_t n);

/* One mounted hierarchy and this process's cgroup in it. */
struct cg_hier {
	bool v2;                  /* the unified hierarchy (cgroup2) */
	char ctrl[128];           /* v1: its controllers, comma-separated ("cpu,cpuacct") */
	char dir[CG_PATH_MAX];    /* the directory of our cgroup: mount + path below its root */
};

/* From /proc/self/cgroup and /proc/self/mountinfo: the hierarchies this
 * process is in that are mounted where we can see them (named v1 ones, like
 * name=systemd, are skipped).  `where`: "" to use our own cgroup, else a
 * cgroup path ("/pcfs") used in place of it in every hierarchy.  Returns how
 * many were written to out (at most max). */
size_t cg_discover(const char *proc_cgroup, const char *mountinfo, const char *where,
		   struct cg_hier *out, size_t max);

/* Is controller c in a comma- or blank-separated list ("cpu,cpuacct",
 * cgroup.controllers' "cpu memory pids")? */
bool cg_list_has(const char *list, const char *c);

/* "KEY VALUE" lines (memory.events, memory.oom_control, cpu.stat, io.stat's
 * fields): the value of key, or def if absent. */
uint64_t cg_kv_get(const char *text, const char *key, uint64_t def);

/* cpu_max=P% (P: percent of one CPU) as v2's cpu.max ("50000 100000") and
 * v1's quota for a 100 ms period. */
#define CG_CPU_PERIOD_US 100000
int64_t cg_cpu_quota_us(int pct);

/* The size as people write it: "128M", "1.5G", "4096" (for messages). */
void cg_format_size(uint64_t bytes, char *buf, size_t n);

/* l as a ctl line takes it ("mem_max=256M pids_max=20 cpu_max=50%"), "" if
 * it sets nothing. */
void cg_limits_format(const struct spec_limits *l, char *buf, size_t n);

/* ---- cgroup files (these do I/O on the directory they are given, so the
 * unit tests drive them against a fake tree of plain files) ---- */

enum cg_ctl { CGC_MEMORY, CGC_PIDS, CGC_CPU, CGC_CPUSET, CGC_IO, CGC__COUNT };
/* The controller's name in a hierarchy ("io" in v2 is "blkio" in v1). */
const char *cg_ctl_name(enum cg_ctl c, bool v2);
/* Which controllers a line's limits need (bit 1 << CGC_*); cpus= needs
 * CGC_CPUSET, which the caller may replace by an affinity. */
unsigned cg_ctl_needed(const struct spec_limits *l);

/* dir/file: write val (0 or -errno), read at most n-1 bytes (NUL-terminated;
 * the length or -errno). */
int cg_write(const char *dir, const char *file, const char *val);
ssize_t cg_read(const char *dir, const char *file, char *buf, size_t n);
bool cg_file_exists(const char *dir, const char *file);

/* Write l's limits of controller c into the cgroup dir (parent: its parent,
 * whose cpuset.mems a v1 cpuset copies).  0, or -errno with the file that
 * refused it in why. */
int cg_apply(const char *dir, const char *parent, bool v2, enum cg_ctl c,
	     const struct spec_limits *l, char *why, size_t whylen);
/* OOM kills in the memory cgroup dir so far (v2: memory.events oom_kill;
 * v1: memory.oom_control oom_kill).  0 if it cannot be read. */
uint64_t cg_oom_kills(const char *dir, bool v2);
/* The pids in dir's cgroup.procs, at most max of them; the count (which may
 * be more than max), or -errno. */
long cg_procs(const char *dir, pid_t *pids, size_t max);

#endif
