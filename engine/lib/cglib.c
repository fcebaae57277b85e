/* cglib.c - the pure part of resource control (see cglib.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cglib.h"

/* ---- CPU lists -------------------------------------------------------------- */

static int cpu_number(const char **p)
{
	const char *s = *p;
	long v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		if (v >= CG_CPUS_MAX)
			return -1;
	}
	*p = s;
	return (int)v;
}

int cg_parse_cpus(const char *s, uint8_t mask[CG_CPUS_MAX / 8])
{
	int count = 0;
	memset(mask, 0, CG_CPUS_MAX / 8);
	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		int lo = cpu_number(&s), hi = lo;
		if (lo < 0)
			return -EINVAL;
		if (*s == '-') {
			s++;
			if ((hi = cpu_number(&s)) < lo)
				return -EINVAL;
		}
		for (int c = lo; c <= hi; c++) {
			if (!(mask[c / 8] & (1u << (c % 8))))
				count++;
			mask[c / 8] |= (uint8_t)(1u << (c % 8));
		}
		if (*s == '\0')
			return count;
		if (*s++ != ',')
			return -EINVAL;
	}
}

static bool cpu_in(const uint8_t *mask, int c)
{
	return c < CG_CPUS_MAX && (mask[c / 8] & (1u << (c % 8)));
}

void cg_format_cpus(const uint8_t mask[CG_CPUS_MAX / 8], char *buf, size_t n)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int c = 0; c < CG_CPUS_MAX; c++) {
		if (!cpu_in(mask, c))
			continue;
		int hi = c;
		while (cpu_in(mask, hi + 1))
			hi++;
		int w = hi > c ? snprintf(buf + len, n - len, "%s%d-%d", len ? "," : "", c, hi)
			       : snprintf(buf + len, n - len, "%s%d", len ? "," : "", c);
		if (w < 0 || (size_t)w >= n - len)
			return;
		len += (size_t)w;
		c = hi;
	}
}

/* ---- discovery --------------------------------------------------------------- */

bool cg_list_has(const char *list, const char *c)
{
	size_t cl = strlen(c);
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ", \t\n");
		if (n == cl && strncmp(p, c, n) == 0)
			return true;
		p += n;
		p += strspn(p, ", \t\n");
	}
	return false;
}

/* The n-th blank-separated field of line (ending at '\n'), copied to out. */
static bool field(const char *line, int n, char *out, size_t outlen)
{
	const char *p = line;
	for (int i = 0; i < n; i++) {
		p += strcspn(p, " \n");
		if (*p != ' ')
			return false;
		p++;
	}
	size_t len = strcspn(p, " \n");
	if (len >= outlen)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/* A mountinfo line's parts: root, mount point, fstype and super options
 * (after the " - " that ends the optional fields). */
struct mnt {
	char root[CG_PATH_MAX], point[CG_PATH_MAX], fstype[32], superopts[256];
};

static bool mount_parse(const char *line, struct mnt *m)
{
	const char *dash = strstr(line, " - ");
	const char *eol = strchr(line, '\n');
	if (!dash || (eol && dash > eol))
		return false;
	return field(line, 3, m->root, sizeof(m->root)) &&
	       field(line, 4, m->point, sizeof(m->point)) &&
	       field(dash + 3, 0, m->fstype, sizeof(m->fstype)) &&
	       field(dash + 3, 2, m->superopts, sizeof(m->superopts));
}

/* The mount of the hierarchy with controllers ctrl (v2: ctrl ""): its
 * directory for cgroup path `path`.  False if none is mounted. */
static bool mount_dir(const char *mountinfo, bool v2, const char *ctrl, const char *path,
		      char *dir, size_t dirlen)
{
	for (const char *l = mountinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		struct mnt m;
		if (!mount_parse(l, &m))
			continue;
		if (v2 ? strcmp(m.fstype, "cgroup2") != 0 : strcmp(m.fstype, "cgroup") != 0)
			continue;
		if (!v2) {
			/* every controller of ctrl among the super options */
			bool all = true;
			char c[128];
			snprintf(c, sizeof(c), "%s", ctrl);
			for (char *sv, *tok = strtok_r(c, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv))
				all = all && cg_list_has(m.superopts, tok);
			if (!all)
				continue;
		}
		/* the mount shows the hierarchy from m.root down: path must be below it */
		size_t rl = strcmp(m.root, "/") == 0 ? 0 : strlen(m.root);
		if (strncmp(path, m.root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
			continue;
		const char *rest = path + rl;
		if (strcmp(rest, "/") == 0)
			rest = "";
		int w = snprintf(dir, dirlen, "%s%s", m.point, rest);
		return w > 0 && (size_t)w < dirlen;
	}
	return false;
}

size_t cg_discover(const char *proc_cgroup, const char *mountinfo, const char *where,
		   struct cg_hier *out, size_t max)
{
	size_t n = 0;
	for (const char *l = proc_cgroup; l && *l && n < max;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		/* ID:CONTROLLERS:PATH */
		const char *c1 = strchr(l, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *eol = strchr(l, '\n');
		if (!c2 || (eol && c2 > eol))
			continue;
		struct cg_hier h = { .v2 = c2 == c1 + 1 };
		size_t cl = (size_t)(c2 - c1 - 1), pl = eol ? (size_t)(eol - c2 - 1) : strlen(c2 + 1);
		if (cl >= sizeof(h.ctrl) || pl >= CG_PATH_MAX)
			continue;
		memcpy(h.ctrl, c1 + 1, cl);
		h.ctrl[cl] = '\0';
		if (!h.v2 && (cl == 0 || strncmp(h.ctrl, "name=", 5) == 0))
			continue;   /* a named hierarchy has no controller */
		char path[CG_PATH_MAX];
		memcpy(path, c2 + 1, pl);
		path[pl] = '\0';
		if (where && *where)
			snprintf(path, sizeof(path), "%s", where);
		if (mount_dir(mountinfo, h.v2, h.ctrl, path, h.dir, sizeof(h.dir)))
			out[n++] = h;
	}
	return n;
}

/* ---- values -------------------------------------------------------------------- */

uint64_t cg_kv_get(const char *text, const char *key, uint64_t def)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && (l[kl] == ' ' || l[kl] == '='))
			return strtoull(l + kl + 1, NULL, 10);
	}
	return def;
}

int64_t cg_cpu_quota_us(int pct)
{
	return (int64_t)pct * CG_CPU_PERIOD_US / 100;
}

void cg_format_size(uint64_t b, char *buf, size_t n)
{
	static const char units[] = "KMGT";
	int u = -1;
	while (u < 3 && b >= 1024 && b % 1024 == 0) {
		b /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, n, "%llu", (unsigned long long)b);
	else
		snprintf(buf, n, "%llu%c", (unsigned long long)b, units[u]);
}

void cg_limits_format(const struct spec_limits *l, char *buf, size_t n)
{
	char size[32];
	size_t len = 0;
	buf[0] = '\0';
#define ADD(...) do { int w_ = snprintf(buf + len, len < n ? n - len : 0, __VA_ARGS__); \
		      len += w_ > 0 ? (size_t)w_ : 0; } while (0)
	if (l->mem_max != SPEC_UNSET) {
		cg_format_size((uint64_t)l->mem_max, size, sizeof(size));
		ADD("%smem_max=%s", len ? " " : "", size);
	}
	if (l->swap_max != SPEC_UNSET) {
		cg_format_size((uint64_t)l->swap_max, size, sizeof(size));
		ADD("%sswap_max=%s", len ? " " : "", size);
	}
	if (l->pids_max != SPEC_UNSET)
		ADD("%spids_max=%lld", len ? " " : "", (long long)l->pids_max);
	if (l->cpu_max != SPEC_UNSET)
		ADD("%scpu_max=%d%%", len ? " " : "", l->cpu_max);
	if (l->cpus)
		ADD("%scpus=%s", len ? " " : "", l->cpus);
	if (l->io_weight != SPEC_UNSET)
		ADD("%sio_weight=%lld", len ? " " : "", (long long)l->io_weight);
#undef ADD
	if (len >= n && n)
		buf[n - 1] = '\0';
}

/* ---- cgroup files -------------------------------------------------------------- */

static const char *const ctl_v1[CGC__COUNT] = { "memory", "pids", "cpu", "cpuset", "blkio" };
static const char *const ctl_v2[CGC__COUNT] = { "memory", "pids", "cpu", "cpuset", "io" };

const char *cg_ctl_name(enum cg_ctl c, bool v2)
{
	return v2 ? ctl_v2[c] : ctl_v1[c];
}

unsigned cg_ctl_needed(const struct spec_limits *l)
{
	unsigned m = 0;
	if (l->mem_max != SPEC_UNSET || l->swap_max != SPEC_UNSET)
		m |= 1u << CGC_MEMORY;
	if (l->pids_max != SPEC_UNSET)
		m |= 1u << CGC_PIDS;
	if (l->cpu_max != SPEC_UNSET)
		m |= 1u << CGC_CPU;
	if (l->cpus)
		m |= 1u << CGC_CPUSET;
	if (l->io_weight != SPEC_UNSET)
		m |= 1u << CGC_IO;
	return m;
}

static int open_in(const char *dir, const char *file, int flags)
{
	char p[CG_PATH_MAX + 64];
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, file) >= sizeof(p))
		return -ENAMETOOLONG;
	int fd = open(p, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cg_write(const char *dir, const char *file, const char *val)
{
	int fd = open_in(dir, file, O_WRONLY);
	if (fd < 0)
		return fd;
	ssize_t n = write(fd, val, strlen(val));
	int rc = n < 0 ? -errno : 0;
	close(fd);
	return rc;
}

ssize_t cg_read(const char *dir, const char *file, char *buf, size_t n)
{
	int fd = open_in(dir, file, O_RDONLY);
	if (fd < 0)
		return fd;
	size_t len = 0;
	while (len + 1 < n) {
		ssize_t r = read(fd, buf + len, n - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(fd);
	return (ssize_t)len;
}

bool cg_file_exists(const char *dir, const char *file)
{
	int fd = open_in(dir, file, O_RDONLY);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* One file of a limit: written, or the reason. */
static int put(const char *dir, const char *file, const char *val, char *why, size_t whylen)
{
	int rc = cg_write(dir, file, val);
	if (rc < 0)
		snprintf(why, whylen, "writing %s to %s: %s", val, file, strerror(-rc));
	return rc;
}

static int apply_memory(const char *dir, bool v2, const struct spec_limits *l, char *why,
			size_t n)
{
	char v[32];
	int rc = 0;
	if (l->mem_max != SPEC_UNSET) {
		snprintf(v, sizeof(v), "%lld", (long long)l->mem_max);
		rc = put(dir, v2 ? "memory.max" : "memory.limit_in_bytes", v, why, n);
	}
	if (rc == 0 && l->swap_max != SPEC_UNSET) {
		/* v1 bounds memory and swap together: memsw = mem_max + swap_max */
		snprintf(v, sizeof(v), "%lld",
			 (long long)(v2 ? l->swap_max : l->mem_max + l->swap_max));
		rc = put(dir, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes", v, why, n);
	}
	return rc;
}

static int apply_cpuset(const char *dir, const char *parent, bool v2,
			const struct spec_limits *l, char *why, size_t n)
{
	uint8_t mask[CG_CPUS_MAX / 8];
	char list[256], mems[256];
	cg_parse_cpus(l->cpus, mask);
	cg_format_cpus(mask, list, sizeof(list));
	if (!v2) {
		/* a v1 cpuset takes no process before it has memory nodes */
		if (cg_read(parent, "cpuset.mems", mems, sizeof(mems)) < 0)
			mems[0] = '\0';
		mems[strcspn(mems, "\n")] = '\0';
		if (put(dir, "cpuset.mems", mems[0] ? mems : "0", why, n) < 0)
			return -EINVAL;
	}
	return put(dir, "cpuset.cpus", list, why, n);
}

int cg_apply(const char *dir, const char *parent, bool v2, enum cg_ctl c,
	     const struct spec_limits *l, char *why, size_t whylen)
{
	char v[48];
	switch (c) {
	case CGC_MEMORY:
		return apply_memory(dir, v2, l, why, whylen);
	case CGC_PIDS:
		snprintf(v, sizeof(v), "%lld", (long long)l->pids_max);
		return put(dir, "pids.max", v, why, whylen);
	case CGC_CPU:
		if (v2) {
			snprintf(v, sizeof(v), "%lld %d", (long long)cg_cpu_quota_us(l->cpu_max),
				 CG_CPU_PERIOD_US);
			return put(dir, "cpu.max", v, why, whylen);
		}
		snprintf(v, sizeof(v), "%d", CG_CPU_PERIOD_US);
		if (put(dir, "cpu.cfs_period_us", v, why, whylen) < 0)
			return -EINVAL;
		snprintf(v, sizeof(v), "%lld", (long long)cg_cpu_quota_us(l->cpu_max));
		return put(dir, "cpu.cfs_quota_us", v, why, whylen);
	case CGC_CPUSET:
		return apply_cpuset(dir, parent, v2, l, why, whylen);
	case CGC_IO:
		if (v2) {
			snprintf(v, sizeof(v), "default %lld", (long long)l->io_weight);
			return put(dir, "io.weight", v, why, whylen);
		}
		/* v1's blkio.weight is 10..1000 where v2's io.weight is 1..10000 */
		snprintf(v, sizeof(v), "%lld",
			 (long long)(l->io_weight / 10 < 10 ? 10 : l->io_weight / 10));
		return put(dir, "blkio.weight", v, why, whylen);
	default:
		return 0;
	}
}

uint64_t cg_oom_kills(const char *dir, bool v2)
{
	char buf[1024];
	if (cg_read(dir, v2 ? "memory.events" : "memory.oom_control", buf, sizeof(buf)) < 0)
		return 0;
	return cg_kv_get(buf, "oom_kill", 0);
}

long cg_procs(const char *dir, pid_t *pids, size_t max)
{
	int fd = open_in(dir, "cgroup.procs", O_RDONLY);
	if (fd < 0)
		return fd;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	long n = 0, pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		if ((size_t)n < max)
			pids[n] = (pid_t)pid;
		n++;
	}
	fclose(f);
	return n;
}
