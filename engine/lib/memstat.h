/* memstat.h - memory and scheduling figures of a process, from /proc.
 *
 * Two layers.  The parsers and formatters are pure: they take the text of a
 * /proc file in a buffer (so the unit tests feed them fixtures captured from
 * real processes) and fill plain structs.  The readers take a pid, read the
 * files into a buffer and call the parsers; they hold no lock and touch no
 * global state, so the engine calls them without its lock.
 *
 * Units: memory in KiB, as /proc prints it; times in clock ticks.  A figure
 * the kernel did not print is MS_NONE (rendered as null), never 0.
 */
#ifndef PCFS_MEMSTAT_H
#define PCFS_MEMSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "strbuf.h"

#define MS_NONE INT64_C(-1)

/* One mapping of /proc/PID/smaps: its header line and the fields pmap uses.
 * `path` points into the parsed buffer (not NUL-terminated: path_len). */
struct ms_mapping {
	uint64_t start, end, offset, inode;
	char perms[5];
	char dev[16];
	const char *path;
	size_t path_len;
	int64_t size, rss, pss, shared_clean, shared_dirty, private_clean, private_dirty;
	int64_t anonymous, swap;
};

/* What a mapping is, for pmap's Mapping column and for COW accounting. */
enum ms_map_kind { MS_MAP_FILE, MS_MAP_ANON, MS_MAP_HEAP, MS_MAP_STACK, MS_MAP_SPECIAL };
enum ms_map_kind ms_mapping_kind(const struct ms_mapping *m);

/* Call fn for each mapping of smaps text; stops early and returns what fn
 * returned if non-zero.  Returns -EINVAL for text that is not smaps. */
int ms_smaps_foreach(const char *buf, size_t len,
		     int (*fn)(const struct ms_mapping *m, void *ctx), void *ctx);

/* /proc/PID/smaps_rollup (also the sum of smaps: ms_smaps_sum). */
struct ms_rollup {
	int64_t rss, pss, shared_clean, shared_dirty, private_clean, private_dirty;
	int64_t anonymous, swap;
};
int ms_rollup_parse(const char *buf, size_t len, struct ms_rollup *out);
int ms_smaps_sum(const char *buf, size_t len, struct ms_rollup *out);
/* What MS_READ_MEM takes from smaps_rollup and maps, from smaps text in one
 * pass: its sum and the KiB of the [heap] mapping (0 if none).  -EINVAL for
 * text with no mapping (a zombie's) or that is not smaps. */
int ms_smaps_rollup_heap(const char *buf, size_t len, struct ms_rollup *r, int64_t *heap);

/* /proc/PID/status and /proc/PID/task/TID/status. */
struct ms_status {
	char state;                /* R S D T Z ... ('\0' if absent) */
	int64_t vm_size, vm_rss, vm_data, vm_stk, vm_swap, rss_anon, rss_file;
	int64_t vm_hwm;            /* the largest resident set so far (VmHWM) */
	int64_t threads, vol_cs, nonvol_cs;
};
int ms_status_parse(const char *buf, size_t len, struct ms_status *out);

/* /proc/PID/stat and /proc/PID/task/TID/stat. */
struct ms_stat {
	char state;
	uint64_t utime, stime;     /* clock ticks */
	int64_t num_threads;
	int processor;             /* the CPU it last ran on */
};
int ms_stat_parse(const char *buf, size_t len, struct ms_stat *out);

/* /proc/PID/statm: the first three figures (pages there), in KiB here:
 * size (VSZ), resident, shared.  -EINVAL for text that is not statm. */
struct ms_statm {
	int64_t size, resident, shared;
};
int ms_statm_parse(const char *buf, size_t len, long page_kib, struct ms_statm *out);

/* /proc/meminfo, the fields /sys/meminfo shows. */
struct ms_meminfo {
	int64_t total, free, available, buffers, cached, shmem, anon, swap_total, swap_free;
};
int ms_meminfo_parse(const char *buf, size_t len, struct ms_meminfo *out);

/* A `pmap -x` table of smaps text: Address Kbytes RSS Dirty Mode Mapping,
 * one line per mapping, then a total line.  Returns 0 or -EINVAL. */
int ms_format_pmap(const char *smaps, size_t len, struct strbuf *out);

/* Copy-on-write, compared page by page over /proc/PID/pagemap entries of
 * the same virtual range in a child and its parent: a present child page
 * whose frame is the parent's is still shared; one with another frame was
 * copied (or newly allocated) since the fork.  Pages not present in the
 * child (never touched, or swapped out) count in neither. */
struct ms_cow {
	uint64_t shared, copied;   /* pages */
	/* ms_read_cow: pages of huge sparse mappings (over MS_COW_WALK_MAX
	 * pages, such as a sanitizer's shadow) counted from smaps instead */
	uint64_t estimated;
	/* The mapping with the most pages counted above (the `cow` workload's
	 * region, whatever else the allocator or a sanitizer maps beside it):
	 * its own figures, so a test or a user can read that region alone. */
	struct ms_cow_region {
		uint64_t start, pages;     /* first address; size in pages */
		uint64_t shared, copied;   /* pages */
	} region;
};
#define MS_COW_WALK_MAX (UINT64_C(1) << 20)   /* 4 GiB of 4 KiB pages */
#define MS_PM_PRESENT (UINT64_C(1) << 63)
#define MS_PM_SWAPPED (UINT64_C(1) << 62)
#define MS_PM_FILE    (UINT64_C(1) << 61)   /* file page or shared anonymous */
#define MS_PM_PFN_MASK ((UINT64_C(1) << 55) - 1)
void ms_cow_add(struct ms_cow *c, const uint64_t *child, const uint64_t *parent, size_t n);
/* Did pagemap give frame numbers (root with CAP_SYS_ADMIN), or zeros? */
bool ms_pagemap_has_pfns(const uint64_t *pm, size_t n);

/* ---- readers (by pid) ---------------------------------------------------- */

/* Read a whole /proc file into out (reset first).  0 or -errno. */
int ms_read_file(const char *path, struct strbuf *out);

/* The figures of `mem` and `sched` (cheap files only, never smaps):
 *   MS_READ_MEM    smaps_rollup and status of the process, [heap] from maps
 *   MS_READ_SCHED  status and stat of the thread tid (> 0), else the process
 * Fields of a part not asked for are left zero. */
#define MS_READ_MEM   1u
#define MS_READ_SCHED 2u
struct ms_sample {
	struct ms_rollup r;
	struct ms_status st;       /* the process's status (memory) */
	struct ms_status tst;      /* the thread's (a process's own) status: switches */
	struct ms_stat stat;       /* the thread's (or process's) stat */
	int64_t heap;              /* KiB: the [heap] mapping, 0 if none */
};
int ms_read_sample(pid_t pid, pid_t tid, unsigned what, struct ms_sample *out);

/* MS_READ_MEM's three files of one process (smaps_rollup, status, maps),
 * open, -1 where not.  Read again with pread from offset 0, a descriptor
 * kept open costs a third to two thirds of an open, read and close of the
 * same file, and it names the process it was opened for: once that process
 * is reaped, reads fail (ESRCH), never showing a process that reused its
 * pid.  Dups share one file offset, which pread ignores. */
struct ms_memfds {
	int rollup, status, maps;
};
#define MS_MEMFDS_NONE { -1, -1, -1 }
int ms_memfds_open(pid_t pid, struct ms_memfds *f);          /* 0 or -errno; none on error */
int ms_memfds_dup(const struct ms_memfds *from, struct ms_memfds *to);
void ms_memfds_close(struct ms_memfds *f);                   /* each set to -1 */
/* out's r, st and heap from f, as MS_READ_MEM reads them.  0 or -errno. */
int ms_read_mem_fds(const struct ms_memfds *f, struct ms_sample *out);

/* What /mem shows of a process, read now: its smaps_rollup and its VSZ
 * (statm's size), each read whole into a buffer on the stack (no
 * allocation: /mem reads one per live task).  0; -ESRCH for a zombie (an
 * empty rollup) or a process gone; -errno. */
int ms_read_brief(pid_t pid, struct ms_rollup *r, int64_t *vsz);

/* The KiB of the [heap] mapping in the maps text read from fd (0 if there is
 * none), reading only as far as that line.  0 or -errno. */
int ms_maps_heap_fd(int fd, int64_t *kib);

/* The COW figures of child against parent over the child's private
 * anonymous mappings.  Exact (pagemap) when pagemap gives frame numbers:
 * *exact = true.  Otherwise an estimate from smaps: Shared_* of those
 * mappings are still shared, Private_Dirty copied (*exact = false). */
int ms_read_cow(pid_t child, pid_t parent, struct ms_cow *out, bool *exact);

/* Is pid still the process that started at `start` (CLOCK_REALTIME), not a
 * reused pid?  From /proc/PID/stat's starttime and the boot time. */
bool ms_same_process(pid_t pid, struct timespec start);

#endif
