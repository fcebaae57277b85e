/* shm.c - /shm: shared memory segments and atomic 64-bit values.
 *
 * A segment is a file of /dev/shm that pcfs makes (O_EXCL, mode 0600, given
 * to the segment's owner when the daemon is root) and keeps open for as
 * long as the segment exists: its descriptor `fd` is the segment's (owned
 * here, closed at rmdir or at the room's end, when the file is unlinked).
 * Tasks map the file itself through NAME/data, a link to it, because a FUSE
 * file opened with direct I/O cannot be mapped shared.  Who maps it is read
 * from /proc when a status is read: each process whose maps name the file,
 * with the Rss and Pss of those mappings from its smaps.
 *
 * A value is an int64 under the engine's lock: each ctl line (add, set,
 * cas) is one atomic step, as Python's Value with its lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/sync.h"
#include "sync/sync_int.h"

#define SHM_DIR "/dev/shm"

struct shm_obj {
	struct shm_obj *next;
	uint64_t id;
	char name[SYNC_NAME_MAX + 1];
	enum shm_kind kind;
	struct owner owner;
	int fd;                       /* segment: the backing file (owned), else -1 */
	char path[128];
	uint64_t size;
	int64_t value;
	uint64_t ops, cas_failed;
};

static struct shm_obj *find(struct engine *e, uint64_t id)
{
	for (struct shm_obj *o = e->sync->shm; o; o = o->next)
		if (o->id == id)
			return o;
	return NULL;
}

static struct shm_obj *find_name(struct engine *e, const char *name)
{
	for (struct shm_obj *o = e->sync->shm; o; o = o->next)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

static void shm_free(struct shm_obj *o)
{
	if (o->fd >= 0) {
		unlink(o->path);
		close(o->fd);
	}
	free(o);
}

void shm_fini(struct engine *e)
{
	for (struct shm_obj *o = e->sync->shm, *n; o; o = n) {
		n = o->next;
		shm_free(o);
	}
	e->sync->shm = NULL;
}

/* The backing file of a new segment (no lock held: it is nobody's yet). */
static int make_backing(struct shm_obj *o, uint64_t serial, char *err, size_t errlen)
{
	snprintf(o->path, sizeof(o->path), SHM_DIR "/pcfs.%d.%llu.%s", (int)getpid(),
		 (unsigned long long)serial, o->name);
	o->fd = open(o->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = o->fd < 0 ? -errno : 0;
	if (rc == 0 && geteuid() == 0 && o->owner.uid != 0 &&
	    fchown(o->fd, o->owner.uid, o->owner.gid) < 0)
		rc = -errno;
	if (rc == 0 && ftruncate(o->fd, (off_t)o->size) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(-rc));
		if (o->fd >= 0) {
			unlink(o->path);
			close(o->fd);
			o->fd = -1;
		}
	}
	return rc;
}

int engine_shm_create(struct engine *e, const struct shm_spec *s, const struct owner *who,
		      uint64_t *id, char *err, size_t errlen)
{
	if (!sync_name_ok(s->name)) {
		snprintf(err, errlen, "bad name");
		return -EINVAL;
	}
	struct shm_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	strcpy(o->name, s->name);
	o->kind = s->kind;
	o->owner = *who;
	o->fd = -1;
	o->size = s->size;
	o->value = s->value;
	pthread_mutex_lock(&e->lock);
	uint64_t serial = e->sync->next_shm++;
	pthread_mutex_unlock(&e->lock);
	int rc = o->kind == SHM_SEGMENT ? make_backing(o, serial, err, errlen) : 0;
	pthread_mutex_lock(&e->lock);
	if (rc < 0) {
	} else if (find_name(e, s->name)) {
		snprintf(err, errlen, "'%s' exists", s->name);
		rc = -EEXIST;
	} else if (e->sync->nshm >= SYNC_OBJECTS_MAX) {
		snprintf(err, errlen, "there are %d already", SYNC_OBJECTS_MAX);
		rc = -ENOSPC;
	} else {
		o->id = *id = serial;
		o->next = e->sync->shm;
		e->sync->shm = o;
		e->sync->nshm++;
		log_add(e, LOG_LVL_INFO, "shm %s %s made", shm_kind_name(o->kind), o->name);
	}
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		shm_free(o);
	return rc;
}

int engine_shm_remove(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct shm_obj *o = find(e, id);
	if (o) {
		for (struct shm_obj **pp = &e->sync->shm; *pp; pp = &(*pp)->next) {
			if (*pp == o) {
				*pp = o->next;
				break;
			}
		}
		e->sync->nshm--;
		log_add(e, LOG_LVL_INFO, "shm %s removed", o->name);
	}
	pthread_mutex_unlock(&e->lock);
	if (!o)
		return -ENOENT;
	shm_free(o);
	return 0;
}

int engine_shm_lookup(struct engine *e, const char *name, uint64_t *id)
{
	pthread_mutex_lock(&e->lock);
	struct shm_obj *o = find_name(e, name);
	if (o)
		*id = o->id;
	pthread_mutex_unlock(&e->lock);
	return o ? 0 : -ENOENT;
}

int engine_shm_kind(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->lock);
	struct shm_obj *o = find(e, id);
	int rc = o ? (int)o->kind : -ENOENT;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct sync_entry *)a)->name, ((const struct sync_entry *)b)->name);
}

int engine_shm_list(struct engine *e, struct sync_entry **v, size_t *n)
{
	pthread_mutex_lock(&e->lock);
	*n = e->sync->nshm;
	*v = calloc(*n ? *n : 1, sizeof(**v));
	size_t i = 0;
	for (struct shm_obj *o = e->sync->shm; *v && o; o = o->next, i++) {
		(*v)[i].id = o->id;
		strcpy((*v)[i].name, o->name);
	}
	pthread_mutex_unlock(&e->lock);
	if (!*v)
		return -ENOMEM;
	qsort(*v, *n, sizeof(**v), by_name);
	return 0;
}

int engine_shm_path(struct engine *e, uint64_t id, struct strbuf *out)
{
	pthread_mutex_lock(&e->lock);
	struct shm_obj *o = find(e, id);
	int rc = !o ? -ENOENT : o->kind != SHM_SEGMENT ? -EINVAL : 0;
	if (rc == 0)
		sb_adds(out, o->path);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int shm_owner(struct engine *e, uint64_t id, struct owner *out)
{
	struct shm_obj *o = find(e, id);
	if (!o)
		return -ENOENT;
	*out = o->owner;
	return 0;
}

/* ---- who maps a segment -------------------------------------------------------- */

struct map_sum {
	const char *path;
	size_t len;
	int64_t rss, pss;
	bool found;
};

static int add_mapping(const struct ms_mapping *m, void *ctx)
{
	struct map_sum *s = ctx;
	if (m->path_len >= s->len && !memcmp(m->path, s->path, s->len) &&
	    (m->path_len == s->len || m->path[s->len] == ' ')) {   /* " (deleted)" */
		s->rss += m->rss;
		s->pss += m->pss;
		s->found = true;
	}
	return 0;
}

/* pid's mappings of path, from its smaps if its maps name it: true if any. */
static bool mapper_of(pid_t pid, const char *path, struct strbuf *buf, struct shm_mapper *out)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	if (ms_read_file(p, buf) < 0 || !buf->len ||
	    !memmem(buf->buf, buf->len, path, strlen(path)))
		return false;
	snprintf(p, sizeof(p), "/proc/%d/smaps", (int)pid);
	struct map_sum s = { .path = path, .len = strlen(path) };
	if (ms_read_file(p, buf) < 0 || !buf->len ||
	    ms_smaps_foreach(buf->buf, buf->len, add_mapping, &s) < 0 || !s.found)
		return false;
	*out = (struct shm_mapper){ .pid = pid, .rss_kib = s.rss, .pss_kib = s.pss };
	return true;
}

static void find_mappers(struct shm_info *out)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct strbuf buf = STRBUF_INIT;
	for (struct dirent *de; (de = readdir(d));) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		struct shm_mapper m;
		if (!mapper_of((pid_t)pid, out->path, &buf, &m))
			continue;
		if (out->mappers < SHM_MAPPERS_MAX)
			out->mapper[out->mappers] = m;
		out->mappers++;
	}
	sb_free(&buf);
	closedir(d);
}

int engine_shm_info(struct engine *e, uint64_t id, struct shm_info *out)
{
	memset(out, 0, sizeof(*out));
	int fd = -1;
	pthread_mutex_lock(&e->lock);
	struct shm_obj *o = find(e, id);
	if (o) {
		out->id = o->id;
		strcpy(out->name, o->name);
		out->kind = o->kind;
		out->size = o->size;
		strcpy(out->path, o->path);
		out->value = o->value;
		out->ops = o->ops;
		out->cas_failed = o->cas_failed;
		out->owner = o->owner;
		if (o->fd >= 0)
			fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);   /* ours, for fstat unlocked */
	}
	pthread_mutex_unlock(&e->lock);
	if (!o)
		return -ENOENT;
	if (out->kind != SHM_SEGMENT)
		return 0;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0)
		out->resident_kib = (int64_t)st.st_blocks / 2;   /* tmpfs: pages held */
	if (fd >= 0)
		close(fd);
	find_mappers(out);
	pid_t chain[16];
	for (unsigned i = 0; i < out->mappers && i < SHM_MAPPERS_MAX; i++) {
		int n = sync_ancestry(out->mapper[i].pid, chain, 16);
		pthread_mutex_lock(&e->lock);
		out->mapper[i].task = sync_task_of(e, chain, n);
		pthread_mutex_unlock(&e->lock);
	}
	return 0;
}

/* ---- ctl --------------------------------------------------------------------------- */

static int apply(struct shm_obj *o, const struct shm_cmd *c, char *err, size_t errlen)
{
	switch (c->op) {
	case SHM_OP_SIZE:
		if (ftruncate(o->fd, (off_t)c->size) < 0)
			return -errno;
		o->size = c->size;
		return 0;
	case SHM_OP_ADD: {
		int64_t sum;
		if (__builtin_add_overflow(o->value, c->a, &sum)) {
			snprintf(err, errlen, "add %lld would overflow", (long long)c->a);
			return -EOVERFLOW;
		}
		o->value = sum;
		break;
	}
	case SHM_OP_SET:
		o->value = c->a;
		break;
	case SHM_OP_CAS:
		if (o->value != c->a) {
			o->cas_failed++;
			snprintf(err, errlen, "cas: the value is %lld, not %lld",
				 (long long)o->value, (long long)c->a);
			return -EAGAIN;
		}
		o->value = c->b;
		break;
	}
	o->ops++;
	return 0;
}

int engine_shm_ctl(struct engine *e, uint64_t id, const char *line, char *err, size_t errlen)
{
	int kind = engine_shm_kind(e, id);
	if (kind < 0)
		return kind;
	struct shm_cmd c;
	int rc = shm_parse_ctl(line, (enum shm_kind)kind, &c, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->lock);
	struct shm_obj *o = find(e, id);
	rc = o ? apply(o, &c, err, errlen) : -ENOENT;
	pthread_mutex_unlock(&e->lock);
	return rc;
}
