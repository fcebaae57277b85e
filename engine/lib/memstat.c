/* memstat.c - parse and format /proc memory and scheduling figures (see memstat.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memstat.h"
#include "strbuf.h"

/* ---- lines ------------------------------------------------------------------- */


/* "Key:   123 kB" -> true with *val; the key must match exactly. */
static bool kv_num(const char *line, size_t n, const char *key, int64_t *val)
{
	size_t kl = strlen(key);
	if (n <= kl || memcmp(line, key, kl) || line[kl] != ':')
		return false;
	size_t i = kl + 1;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == n || line[i] < '0' || line[i] > '9')
		return false;
	int64_t v = 0;
	for (; i < n && line[i] >= '0' && line[i] <= '9'; i++) {
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (line[i] - '0');
	}
	*val = v;
	return true;
}

/* A table of keys to fields: one description serves every key:value file. */
struct kv_field {
	const char *key;
	size_t off;            /* of an int64_t in the output struct */
};

/* Fill the fields f names from the "Key: N" lines of buf; a key the text
 * lacks stays MS_NONE.  -EINVAL when no key at all was found: the text is
 * not the file it was taken for (or is empty, as a zombie's files are). */
static int kv_fill(const char *buf, size_t len, const struct kv_field *f, size_t nf, void *out)
{
	for (size_t i = 0; i < nf; i++)
		*(int64_t *)((char *)out + f[i].off) = MS_NONE;
	size_t pos = 0, found = 0;
	const char *line;
	size_t n;
	while ((line = next_line(buf, len, &pos, &n))) {
		for (size_t i = 0; i < nf; i++) {
			int64_t *dst = (int64_t *)((char *)out + f[i].off);
			if (*dst == MS_NONE && kv_num(line, n, f[i].key, dst)) {
				found++;
				break;
			}
		}
	}
	return found ? 0 : -EINVAL;
}

/* ---- smaps --------------------------------------------------------------------- */

/* "start-end perms offset dev inode [path]" */
static bool parse_header(const char *line, size_t n, struct ms_mapping *m)
{
	/* Every line of smaps is asked: its "Key: value" lines (twenty-odd a
	 * mapping) start with a capital, a header with a lower-case hex digit
	 * (the kernel's %08lx).  Turn the former away before the sscanf, which
	 * costs more than all the rest of the parse. */
	if (n == 0 || !((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')))
		return false;
	char tmp[512];
	size_t cut = n < sizeof(tmp) - 1 ? n : sizeof(tmp) - 1;
	memcpy(tmp, line, cut);
	tmp[cut] = '\0';
	int used = 0;
	unsigned long long s, e, off, ino;
	if (sscanf(tmp, "%llx-%llx %4s %llx %15s %llu%n", &s, &e, m->perms, &off, m->dev, &ino,
		   &used) != 6 || e < s)
		return false;
	m->start = s;
	m->end = e;
	m->offset = off;
	m->inode = ino;
	size_t i = (size_t)used;
	while (i < n && line[i] == ' ')
		i++;
	m->path = line + i;
	m->path_len = n - i;
	return true;
}

static const struct kv_field mapping_fields[] = {
	{ "Size", offsetof(struct ms_mapping, size) },
	{ "Rss", offsetof(struct ms_mapping, rss) },
	{ "Pss", offsetof(struct ms_mapping, pss) },
	{ "Shared_Clean", offsetof(struct ms_mapping, shared_clean) },
	{ "Shared_Dirty", offsetof(struct ms_mapping, shared_dirty) },
	{ "Private_Clean", offsetof(struct ms_mapping, private_clean) },
	{ "Private_Dirty", offsetof(struct ms_mapping, private_dirty) },
	{ "Anonymous", offsetof(struct ms_mapping, anonymous) },
	{ "Swap", offsetof(struct ms_mapping, swap) },
};
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

int ms_smaps_foreach(const char *buf, size_t len,
		     int (*fn)(const struct ms_mapping *m, void *ctx), void *ctx)
{
	size_t pos = 0, body = 0, n;
	const char *line;
	struct ms_mapping m;
	bool have = false;

	/* A mapping is its header line and the key:value lines up to the next
	 * header; its fields are parsed from that slice alone. */
	for (;;) {
		size_t here = pos;
		line = next_line(buf, len, &pos, &n);
		bool more = line != NULL;
		struct ms_mapping next;
		bool header = more && parse_header(line, n, &next);
		if (!more || header) {
			if (have) {
				kv_fill(buf + body, here - body, mapping_fields,
					NFIELDS(mapping_fields), &m);
				int rc = fn(&m, ctx);
				if (rc)
					return rc;
			}
			if (!more)
				break;
			m = next;
			have = true;
			body = pos;
		} else if (!have) {
			return -EINVAL;   /* text before the first header: not smaps */
		}
	}
	return 0;
}

enum ms_map_kind ms_mapping_kind(const struct ms_mapping *m)
{
	if (m->path_len == 0)
		return MS_MAP_ANON;
	if (m->path_len == 6 && !memcmp(m->path, "[heap]", 6))
		return MS_MAP_HEAP;
	if (m->path_len == 7 && !memcmp(m->path, "[stack]", 7))
		return MS_MAP_STACK;
	if (m->path[0] == '[')
		return MS_MAP_SPECIAL;   /* [vdso] [vvar] [vsyscall] [anon:name] */
	return MS_MAP_FILE;
}

static const struct kv_field rollup_fields[] = {
	{ "Rss", offsetof(struct ms_rollup, rss) },
	{ "Pss", offsetof(struct ms_rollup, pss) },
	{ "Shared_Clean", offsetof(struct ms_rollup, shared_clean) },
	{ "Shared_Dirty", offsetof(struct ms_rollup, shared_dirty) },
	{ "Private_Clean", offsetof(struct ms_rollup, private_clean) },
	{ "Private_Dirty", offsetof(struct ms_rollup, private_dirty) },
	{ "Anonymous", offsetof(struct ms_rollup, anonymous) },
	{ "Swap", offsetof(struct ms_rollup, swap) },
};

int ms_rollup_parse(const char *buf, size_t len, struct ms_rollup *out)
{
	return kv_fill(buf, len, rollup_fields, NFIELDS(rollup_fields), out);
}

int ms_statm_parse(const char *buf, size_t len, long page_kib, struct ms_statm *out)
{
	char tmp[128];
	size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
	memcpy(tmp, buf, n);
	tmp[n] = '\0';
	long long size, res, shr;
	if (sscanf(tmp, "%lld %lld %lld", &size, &res, &shr) != 3 || size < 0 || res < 0 ||
	    shr < 0)
		return -EINVAL;
	out->size = size * page_kib;
	out->resident = res * page_kib;
	out->shared = shr * page_kib;
	return 0;
}

/* a + b of two figures, at most INT64_MAX: the kernel's text is trusted,
 * but a torn or garbled read must not overflow (fuzz_proc found one). */
static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_add_overflow(a, b, &r) ? (a < 0 && b < 0 ? INT64_MIN : INT64_MAX) : r;
}

static void add_field(int64_t *sum, int64_t v)
{
	if (v == MS_NONE)
		return;
	*sum = *sum == MS_NONE ? v : sat_add(*sum, v);
}

static int sum_one(const struct ms_mapping *m, void *ctx)
{
	struct ms_rollup *r = ctx;
	add_field(&r->rss, m->rss);
	add_field(&r->pss, m->pss);
	add_field(&r->shared_clean, m->shared_clean);
	add_field(&r->shared_dirty, m->shared_dirty);
	add_field(&r->private_clean, m->private_clean);
	add_field(&r->private_dirty, m->private_dirty);
	add_field(&r->anonymous, m->anonymous);
	add_field(&r->swap, m->swap);
	return 0;
}

int ms_smaps_sum(const char *buf, size_t len, struct ms_rollup *out)
{
	*out = (struct ms_rollup){ MS_NONE, MS_NONE, MS_NONE, MS_NONE, MS_NONE, MS_NONE,
				   MS_NONE, MS_NONE };
	return ms_smaps_foreach(buf, len, sum_one, out);
}

struct rollup_heap {
	struct ms_rollup *r;
	int64_t *heap;
	size_t n;
};

static int rollup_heap_one(const struct ms_mapping *m, void *ctx)
{
	struct rollup_heap *rh = ctx;
	rh->n++;
	if (ms_mapping_kind(m) == MS_MAP_HEAP)
		*rh->heap = (int64_t)((m->end - m->start) / 1024);
	return sum_one(m, rh->r);
}

int ms_smaps_rollup_heap(const char *buf, size_t len, struct ms_rollup *r, int64_t *heap)
{
	*r = (struct ms_rollup){ MS_NONE, MS_NONE, MS_NONE, MS_NONE, MS_NONE, MS_NONE,
				 MS_NONE, MS_NONE };
	*heap = 0;
	struct rollup_heap rh = { r, heap, 0 };
	int rc = ms_smaps_foreach(buf, len, rollup_heap_one, &rh);
	if (rc == 0 && rh.n == 0)
		rc = -EINVAL;      /* a zombie's: no memory, as an empty rollup */
	return rc;
}

/* ---- status, stat, meminfo ---------------------------------------------------- */

static const struct kv_field status_fields[] = {
	{ "VmSize", offsetof(struct ms_status, vm_size) },
	{ "VmRSS", offsetof(struct ms_status, vm_rss) },
	{ "VmHWM", offsetof(struct ms_status, vm_hwm) },
	{ "VmData", offsetof(struct ms_status, vm_data) },
	{ "VmStk", offsetof(struct ms_status, vm_stk) },
	{ "VmSwap", offsetof(struct ms_status, vm_swap) },
	{ "RssAnon", offsetof(struct ms_status, rss_anon) },
	{ "RssFile", offsetof(struct ms_status, rss_file) },
	{ "Threads", offsetof(struct ms_status, threads) },
	{ "voluntary_ctxt_switches", offsetof(struct ms_status, vol_cs) },
	{ "nonvoluntary_ctxt_switches", offsetof(struct ms_status, nonvol_cs) },
};

int ms_status_parse(const char *buf, size_t len, struct ms_status *out)
{
	int rc = kv_fill(buf, len, status_fields, NFIELDS(status_fields), out);
	out->state = '\0';
	size_t pos = 0, n;
	const char *line;
	while ((line = next_line(buf, len, &pos, &n))) {
		if (n > 6 && !memcmp(line, "State:", 6)) {
			size_t i = 6;
			while (i < n && (line[i] == ' ' || line[i] == '\t'))
				i++;
			if (i < n)
				out->state = line[i];
			break;
		}
	}
	return rc;
}

int ms_stat_parse(const char *buf, size_t len, struct ms_stat *out)
{
	char tmp[1024];
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return -EINVAL;
	size_t cut = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
	memcpy(tmp, buf, cut);
	tmp[cut] = '\0';
	/* comm (field 2) may hold spaces and parentheses: fields resume after
	 * the last ')'. */
	char *p = strrchr(tmp, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	unsigned long long ut, st;
	long long nthreads;
	int cpu;
	/* 3 state ... 14 utime 15 stime ... 20 num_threads ... 39 processor */
	if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
		   "%lld %*d %*u %*u %*d %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u "
		   "%*d %d", &out->state, &ut, &st, &nthreads, &cpu) != 5)
		return -EINVAL;
	out->utime = ut;
	out->stime = st;
	out->num_threads = nthreads;
	out->processor = cpu;
	return 0;
}

static const struct kv_field meminfo_fields[] = {
	{ "MemTotal", offsetof(struct ms_meminfo, total) },
	{ "MemFree", offsetof(struct ms_meminfo, free) },
	{ "MemAvailable", offsetof(struct ms_meminfo, available) },
	{ "Buffers", offsetof(struct ms_meminfo, buffers) },
	{ "Cached", offsetof(struct ms_meminfo, cached) },
	{ "Shmem", offsetof(struct ms_meminfo, shmem) },
	{ "AnonPages", offsetof(struct ms_meminfo, anon) },
	{ "SwapTotal", offsetof(struct ms_meminfo, swap_total) },
	{ "SwapFree", offsetof(struct ms_meminfo, swap_free) },
};

int ms_meminfo_parse(const char *buf, size_t len, struct ms_meminfo *out)
{
	return kv_fill(buf, len, meminfo_fields, NFIELDS(meminfo_fields), out);
}

/* ---- pmap -x ------------------------------------------------------------------- */

struct pmap_ctx {
	struct strbuf *out;
	int64_t kbytes, rss, dirty;
};

static int64_t nz(int64_t v)
{
	return v == MS_NONE ? 0 : v;
}

/* pmap's Mode: the permissions, with the 4th column 's' for shared
 * mappings and '-' for private ones, plus pmap's fifth column. */
static void pmap_mode(const struct ms_mapping *m, char mode[6])
{
	mode[0] = m->perms[0];
	mode[1] = m->perms[1];
	mode[2] = m->perms[2];
	mode[3] = m->perms[3] == 's' ? 's' : '-';
	mode[4] = '-';
	mode[5] = '\0';
}

static int pmap_line(const struct ms_mapping *m, void *arg)
{
	struct pmap_ctx *c = arg;
	int64_t kb = (int64_t)((m->end - m->start) / 1024);
	int64_t dirty = sat_add(nz(m->shared_dirty), nz(m->private_dirty));
	char mode[6];
	pmap_mode(m, mode);
	sb_printf(c->out, "%016" PRIx64 " %7" PRId64 " %7" PRId64 " %7" PRId64 " %s ", m->start,
		  kb, nz(m->rss), dirty, mode);
	switch (ms_mapping_kind(m)) {
	case MS_MAP_ANON:
		sb_adds(c->out, "[anon]");
		break;
	case MS_MAP_FILE: {
		/* pmap -x shows the file's base name; " (deleted)" stays */
		const char *slash = memrchr(m->path, '/', m->path_len);
		const char *b = slash ? slash + 1 : m->path;
		sb_add(c->out, b, m->path_len - (size_t)(b - m->path));
		break;
	}
	default:
		sb_add(c->out, m->path, m->path_len);
		break;
	}
	sb_addc(c->out, '\n');
	c->kbytes = sat_add(c->kbytes, kb);
	c->rss = sat_add(c->rss, nz(m->rss));
	c->dirty = sat_add(c->dirty, dirty);
	return 0;
}

int ms_format_pmap(const char *smaps, size_t len, struct strbuf *out)
{
	struct pmap_ctx c = { .out = out };
	sb_printf(out, "%-16s %7s %7s %7s %-5s %s\n", "Address", "Kbytes", "RSS", "Dirty", "Mode",
		  "Mapping");
	int rc = ms_smaps_foreach(smaps, len, pmap_line, &c);
	if (rc < 0)
		return rc;
	sb_printf(out, "---------------- ------- ------- -------\n");
	sb_printf(out, "%-16s %7" PRId64 " %7" PRId64 " %7" PRId64 "\n", "total kB", c.kbytes,
		  c.rss, c.dirty);
	return 0;
}

/* ---- COW ------------------------------------------------------------------------- */

void ms_cow_add(struct ms_cow *c, const uint64_t *child, const uint64_t *parent, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t ce = child[i], pe = parent[i];
		if (!(ce & MS_PM_PRESENT) || (ce & MS_PM_FILE))
			continue;
		if ((pe & MS_PM_PRESENT) && (ce & MS_PM_PFN_MASK) == (pe & MS_PM_PFN_MASK))
			c->shared++;
		else
			c->copied++;
	}
}

bool ms_pagemap_has_pfns(const uint64_t *pm, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((pm[i] & MS_PM_PRESENT) && (pm[i] & MS_PM_PFN_MASK))
			return true;
	return false;
}

/* ---- readers ------------------------------------------------------------------------ */

int ms_read_file(const char *path, struct strbuf *out)
{
	sb_reset(out);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char chunk[16384];
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		sb_add(out, chunk, (size_t)n);
	}
	close(fd);
	if (rc == 0)
		rc = sb_error(out);
	return rc;
}

/* Read /proc/PID/NAME, or /proc/PID/task/TID/NAME with tid > 0. */
static int read_proc(struct strbuf *sb, pid_t pid, pid_t tid, const char *name)
{
	char path[96];
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
	else
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	return ms_read_file(path, sb);
}

/* KiB of a maps line if it is the [heap] mapping; -1 if it is not. */
static int64_t heap_line_kib(const char *line, size_t n)
{
	if (n < 6 || memcmp(line + n - 6, "[heap]", 6))
		return -1;
	unsigned long long s, e;
	char tmp[64];
	size_t cut = n < sizeof(tmp) - 1 ? n : sizeof(tmp) - 1;
	memcpy(tmp, line, cut);
	tmp[cut] = '\0';
	if (sscanf(tmp, "%llx-%llx", &s, &e) == 2 && e >= s)
		return (int64_t)((e - s) / 1024);
	return 0;
}

/* maps is a seq_file: each read() formats only the lines it returns (a
 * d_path per file mapping), and [heap] comes right after the executable's
 * few mappings, ahead of the libraries.  So read it a small piece at a time
 * and stop at [heap]: about a third of the cost of the whole file. */
#define MAPS_PIECE 1024

int ms_maps_heap_fd(int fd, int64_t *kib)
{
	char buf[4 * MAPS_PIECE];
	size_t len = 0;
	off_t off = 0;              /* pread from 0: a kept descriptor reads afresh */
	bool skipping = false;      /* inside a line longer than buf: not [heap] */
	*kib = 0;
	for (;;) {
		size_t room = sizeof(buf) - len;
		ssize_t n = pread(fd, buf + len, room < MAPS_PIECE ? room : MAPS_PIECE, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;           /* no [heap] (a tail without newline is none) */
		len += (size_t)n;
		off += n;
		size_t start = 0;
		for (const char *nl; (nl = memchr(buf + start, '\n', len - start));) {
			size_t end = (size_t)(nl - buf);
			int64_t k = skipping ? -1 : heap_line_kib(buf + start, end - start);
			skipping = false;
			if (k >= 0) {
				*kib = k;
				return 0;
			}
			start = end + 1;
		}
		if (start == 0 && len == sizeof(buf)) {
			skipping = true;    /* a path longer than buf: drop what we have */
			len = 0;
			continue;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
	}
}

/* ---- mem's three files, kept open ------------------------------------------ */

int ms_memfds_open(pid_t pid, struct ms_memfds *f)
{
	static const char *const names[] = { "smaps_rollup", "status", "maps" };
	int *fd[] = { &f->rollup, &f->status, &f->maps };
	for (size_t i = 0; i < 3; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, names[i]);
		*fd[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd[i] < 0) {
			int err = errno;
			ms_memfds_close(f);
			return -err;
		}
	}
	return 0;
}

int ms_memfds_dup(const struct ms_memfds *from, struct ms_memfds *to)
{
	*to = (struct ms_memfds)MS_MEMFDS_NONE;
	if ((to->rollup = fcntl(from->rollup, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (to->status = fcntl(from->status, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (to->maps = fcntl(from->maps, F_DUPFD_CLOEXEC, 0)) < 0) {
		int err = errno;
		ms_memfds_close(to);
		return -err;
	}
	return 0;
}

void ms_memfds_close(struct ms_memfds *f)
{
	int *fd[] = { &f->rollup, &f->status, &f->maps };
	for (size_t i = 0; i < 3; i++) {
		if (*fd[i] >= 0)
			close(*fd[i]);
		*fd[i] = -1;
	}
}

/* A one-record /proc file (smaps_rollup, status: single_open seq files)
 * read again from offset 0 into buf[0..cap): its length, or -errno (-E2BIG
 * if it does not fit).  Such a file gives its whole text to one read big
 * enough, so a short read is the end: no second read to see EOF. */
static ssize_t pread_record(int fd, char *buf, size_t cap)
{
	ssize_t n;
	while ((n = pread(fd, buf, cap, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	return (size_t)n == cap ? -E2BIG : n;
}

int ms_read_mem_fds(const struct ms_memfds *f, struct ms_sample *out)
{
	char buf[16384];
	ssize_t n = pread_record(f->rollup, buf, sizeof(buf));
	int rc;
	/* A zombie's (or a kernel thread's) smaps_rollup is empty: it has no
	 * memory to report, and that is an error, not a row of zeros. */
	if (n < 0)
		return (int)n;
	if ((rc = ms_rollup_parse(buf, (size_t)n, &out->r)) < 0)
		return rc;
	if ((n = pread_record(f->status, buf, sizeof(buf))) < 0)
		return (int)n;
	if ((rc = ms_status_parse(buf, (size_t)n, &out->st)) < 0)
		return rc;
	return ms_maps_heap_fd(f->maps, &out->heap);
}

static int read_mem(pid_t pid, struct ms_sample *out)
{
	struct ms_memfds f = MS_MEMFDS_NONE;
	int rc = ms_memfds_open(pid, &f);
	if (rc == 0)
		rc = ms_read_mem_fds(&f, out);
	ms_memfds_close(&f);
	return rc;
}

/* Read /proc/PID/NAME whole into buf[0..cap): its length, or -errno
 * (-E2BIG if it does not fit). */
static ssize_t read_small(pid_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	ssize_t n = 0;
	while (len < cap && ((n = read(fd, buf + len, cap - len)) > 0 || (n < 0 && errno == EINTR)))
		len += n > 0 ? (size_t)n : 0;
	int err = n < 0 ? errno : 0;
	close(fd);
	if (err)
		return -err;
	return len == cap ? -E2BIG : (ssize_t)len;
}

int ms_read_brief(pid_t pid, struct ms_rollup *r, int64_t *vsz)
{
	char buf[4096];
	ssize_t n = read_small(pid, "smaps_rollup", buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	if (ms_rollup_parse(buf, (size_t)n, r) < 0)
		return -ESRCH;   /* empty: a zombie's */
	struct ms_statm sm;
	n = read_small(pid, "statm", buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	if (ms_statm_parse(buf, (size_t)n, sysconf(_SC_PAGESIZE) / 1024, &sm) < 0)
		return -ESRCH;
	*vsz = sm.size;
	return 0;
}

static int read_sched(struct strbuf *sb, pid_t pid, pid_t tid, struct ms_sample *out)
{
	int rc;
	if (tid == pid)
		tid = 0;
	if ((rc = read_proc(sb, pid, tid, "status")) < 0 ||
	    (rc = ms_status_parse(sb->buf, sb->len, &out->tst)) < 0)
		return rc;
	if ((rc = read_proc(sb, pid, tid, "stat")) < 0)
		return rc;
	return ms_stat_parse(sb->buf, sb->len, &out->stat);
}

int ms_read_sample(pid_t pid, pid_t tid, unsigned what, struct ms_sample *out)
{
	struct strbuf sb = STRBUF_INIT;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (what & MS_READ_MEM)
		rc = read_mem(pid, out);
	if (rc == 0 && (what & MS_READ_SCHED))
		rc = read_sched(&sb, pid, tid, out);
	sb_free(&sb);
	return rc == -EINVAL ? -ESRCH : rc;
}

/* ---- COW readers ----------------------------------------------------------------------- */

#define COW_CHUNK 4096   /* pagemap entries per read */

struct cow_walk {
	int cfd, pfd;              /* pagemaps of child and parent */
	long page;
	struct ms_cow c;
	struct ms_cow est;         /* the smaps estimate, in pages */
	bool exact;
	bool pfns_checked;
	int err;
	uint64_t *cv, *pv;         /* COW_CHUNK entries each */
};

/* Read n pagemap entries from vpn on; 0 or -errno. */
static int pagemap_read(int fd, uint64_t vpn, uint64_t *v, size_t n)
{
	size_t want = n * sizeof(*v), got = 0;
	while (got < want) {
		ssize_t r = pread(fd, (char *)v + got, want - got,
				  (off_t)(vpn * sizeof(*v) + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

/* Private anonymous memory: what fork shares copy-on-write. */
static bool cow_relevant(const struct ms_mapping *m)
{
	enum ms_map_kind k = ms_mapping_kind(m);
	return m->perms[3] == 'p' &&
	       (k == MS_MAP_ANON || k == MS_MAP_HEAP || k == MS_MAP_STACK ||
		(k == MS_MAP_FILE && nz(m->anonymous) > 0));
}

/* Keep m as c's region if it counted more pages than the region so far:
 * before and after are c's totals around m's walk. */
static void cow_note_region(struct ms_cow *c, const struct ms_mapping *m, long page,
			    uint64_t shared_before, uint64_t copied_before)
{
	uint64_t shared = c->shared - shared_before, copied = c->copied - copied_before;
	if (shared + copied <= c->region.shared + c->region.copied)
		return;
	c->region = (struct ms_cow_region){
		.start = m->start, .pages = (m->end - m->start) / (uint64_t)page,
		.shared = shared, .copied = copied,
	};
}

/* Compare the child's pages of m with its parent's, page by page. */
static int cow_walk_pagemap(struct cow_walk *w, const struct ms_mapping *m)
{
	uint64_t *cv = w->cv, *pv = w->pv;
	for (uint64_t vpn = m->start / (uint64_t)w->page, end = m->end / (uint64_t)w->page;
	     vpn < end;) {
		size_t n = end - vpn < COW_CHUNK ? (size_t)(end - vpn) : COW_CHUNK;
		int rc = pagemap_read(w->cfd, vpn, cv, n);
		if (rc == 0)
			rc = pagemap_read(w->pfd, vpn, pv, n);
		if (rc < 0) {
			w->err = rc;
			return rc;
		}
		if (!w->pfns_checked && ms_pagemap_has_pfns(cv, n)) {
			w->pfns_checked = true;
		} else if (!w->pfns_checked) {
			bool any_present = false;
			for (size_t i = 0; i < n && !any_present; i++)
				any_present = cv[i] & MS_PM_PRESENT;
			if (any_present) {
				/* present pages with frame 0: PFNs are hidden from us */
				w->exact = false;
				return 0;
			}
		}
		ms_cow_add(&w->c, cv, pv, n);
		vpn += n;
	}
	return 0;
}

static int cow_mapping(const struct ms_mapping *m, void *arg)
{
	struct cow_walk *w = arg;
	if (!cow_relevant(m))
		return 0;
	long kpp = w->page / 1024;
	uint64_t shared = (uint64_t)((nz(m->shared_clean) + nz(m->shared_dirty)) / kpp);
	uint64_t copied = (uint64_t)(nz(m->private_dirty) / kpp);
	uint64_t est_shared = w->est.shared, est_copied = w->est.copied;
	w->est.shared += shared;
	w->est.copied += copied;
	cow_note_region(&w->est, m, w->page, est_shared, est_copied);
	if (!w->exact || nz(m->rss) == 0)
		return 0;   /* nothing resident: nothing shared or copied */
	uint64_t was_shared = w->c.shared, was_copied = w->c.copied;
	if ((m->end - m->start) / (uint64_t)w->page > MS_COW_WALK_MAX) {
		/* Reading pagemap costs 8 bytes per virtual page, resident or
		 * not: a sparse mapping of terabytes is counted from smaps. */
		w->c.shared += shared;
		w->c.copied += copied;
		w->c.estimated += shared + copied;
	} else {
		int rc = cow_walk_pagemap(w, m);
		if (rc < 0 || !w->exact)
			return rc;
	}
	cow_note_region(&w->c, m, w->page, was_shared, was_copied);
	return 0;
}

int ms_read_cow(pid_t child, pid_t parent, struct ms_cow *out, bool *exact)
{
	struct strbuf sb = STRBUF_INIT;
	char path[64];
	struct cow_walk w = { .cfd = -1, .pfd = -1, .page = sysconf(_SC_PAGESIZE), .exact = true };
	int rc = read_proc(&sb, child, 0, "smaps");
	if (rc < 0)
		goto out;
	if (sb.len == 0) {
		rc = -ESRCH;   /* a zombie: no address space left */
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)child);
	w.cfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)parent);
	w.pfd = open(path, O_RDONLY | O_CLOEXEC);
	w.cv = malloc(COW_CHUNK * sizeof(*w.cv));
	w.pv = malloc(COW_CHUNK * sizeof(*w.pv));
	if (!w.cv || !w.pv) {
		rc = -ENOMEM;
		goto out;
	}
	if (w.cfd < 0 || w.pfd < 0)
		w.exact = false;
	rc = ms_smaps_foreach(sb.buf, sb.len, cow_mapping, &w);
	if (rc < 0 && w.err) {
		/* the parent's pagemap ended early or vanished: say what smaps says */
		w.exact = false;
		rc = 0;
	}
	if (rc < 0)
		goto out;
	*exact = w.exact;
	*out = w.exact ? w.c : w.est;
out:
	if (w.cfd >= 0)
		close(w.cfd);
	if (w.pfd >= 0)
		close(w.pfd);
	free(w.cv);
	free(w.pv);
	sb_free(&sb);
	return rc;
}

/* Is pid still the process that started at `start` (not a reused pid)?
 * Its start time is boot time + /proc/PID/stat's starttime (clock ticks). */
bool ms_same_process(pid_t pid, struct timespec start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');     /* the name may hold spaces */
	unsigned long long ticks = 0;
	/* after ")": state is field 3; starttime is field 22 */
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return false;
	long long btime = -1;
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return false;
	char line[256];
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	long hz = sysconf(_SC_CLK_TCK);
	if (btime < 0 || hz <= 0)
		return false;
	double started = (double)btime + (double)ticks / (double)hz;
	double d = started - ((double)start.tv_sec + (double)start.tv_nsec / 1e9);
	return d > -2.0 && d < 2.0;     /* btime is whole seconds */
}
