/* table.c - /mem: every live task's memory figures in one read.
 *
 * Reading every task's procs/ID/mem costs five FUSE requests and three
 * /proc files (smaps_rollup, status, maps) a task; a table costs the FUSE
 * requests of one file, and per process only what its columns need:
 * smaps_rollup (RSS, PSS, USS, swap: one page-table walk, the floor of any
 * fresh figure) and statm (VSZ: one line, no walk).  The figures are read now, not taken from the
 * sampler (whose rollup is up to a second old): age is 0 for them, and
 * says how old the figures are only for a task whose process cannot be
 * read now.  /proc is read without the engine lock: the lock is taken to
 * list the live tasks, and again only for those that need a stand-in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memory_int.h"

/* One row being made, with what the read gave. */
struct mem_probe {
	struct mem_row row;
	int rc;                     /* of the read: 0, or -errno */
};

/* The live tasks (lock held): a row each, its process to read in pid. */
static struct mem_probe *probes_of(struct engine *e, size_t *n)
{
	size_t cap = e->nlive, k = 0;
	struct mem_probe *v = calloc(cap ? cap : 1, sizeof(*v));
	for (struct task *t = e->live_first; v && t && k < cap; t = t->lnext) {
		struct mem_row *r = &v[k++].row;
		r->id = t->id;
		r->kind = t->kind;
		/* a thread task shows its host's memory, once it has its thread */
		r->pid = t->kind == TASK_THREAD && t->tid <= 0 ? 0 : t->pid;
		memcpy(r->name, t->name, sizeof(r->name));
	}
	*n = k;
	return v;
}

static int by_pid(const void *a, const void *b)
{
	const struct mem_probe *x = a, *y = b;
	if (x->row.pid != y->row.pid)
		return (x->row.pid > y->row.pid) - (x->row.pid < y->row.pid);
	return (x->row.id > y->row.id) - (x->row.id < y->row.id);
}

static int by_id(const void *a, const void *b)
{
	const struct mem_probe *x = a, *y = b;
	return (x->row.id > y->row.id) - (x->row.id < y->row.id);
}

static void fill_row(struct mem_row *r, const struct ms_rollup *ro, int64_t vsz)
{
	r->known = true;
	r->age = 0;
	r->vsz = vsz;
	r->rss = ro->rss;
	r->pss = ro->pss;
	r->uss = ro->private_clean == MS_NONE || ro->private_dirty == MS_NONE ?
		 MS_NONE : ro->private_clean + ro->private_dirty;
	r->swap = ro->swap;
}

/* Read each process once (sorted by pid, a host's threads are neighbours);
 * no lock held. */
static void probes_read(struct mem_probe *v, size_t n)
{
	qsort(v, n, sizeof(*v), by_pid);
	for (size_t i = 0; i < n; i++) {
		struct mem_probe *p = &v[i];
		if (p->row.pid <= 0) {
			p->rc = -ESRCH;
		} else if (i > 0 && v[i - 1].row.pid == p->row.pid) {
			/* another thread of the same host: its figures */
			const struct mem_row *q = &v[i - 1].row;
			p->rc = v[i - 1].rc;
			p->row.known = q->known;
			p->row.vsz = q->vsz;
			p->row.rss = q->rss;
			p->row.pss = q->pss;
			p->row.uss = q->uss;
			p->row.swap = q->swap;
		} else {
			struct ms_rollup ro;
			int64_t vsz;
			p->rc = ms_read_brief(p->row.pid, &ro, &vsz);
			if (p->rc == 0)
				fill_row(&p->row, &ro, vsz);
		}
	}
}

static double mono_since(struct timespec a, struct timespec now)
{
	return (double)(now.tv_sec - a.tv_sec) + (double)(now.tv_nsec - a.tv_nsec) / 1e9;
}

/* Rows whose process could not be read take the task's last sample, with
 * its age (lock held).  The rollup's figures are as old as the smaps
 * snapshot they came from (mem_mono), so that is the age told. */
static void stand_ins(struct engine *e, struct mem_probe *v, size_t n)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < n; i++) {
		if (v[i].rc == 0)
			continue;
		struct task *t = task_find(e, v[i].row.id);
		if (!t || !t->mem || !t->mem->have_last)
			continue;
		const struct ms_sample *s = &t->mem->last;
		fill_row(&v[i].row, &s->r, s->st.vm_size);
		v[i].row.rss = s->st.vm_rss;
		v[i].row.age = mono_since(t->mem->mem_mono, now);
	}
}

int engine_mem_table(struct engine *e, struct mem_row **rows, size_t *n)
{
	size_t k = 0;
	pthread_mutex_lock(&e->lock);
	struct mem_probe *v = probes_of(e, &k);
	pthread_mutex_unlock(&e->lock);
	if (!v)
		return -ENOMEM;
	probes_read(v, k);
	bool missing = false;
	for (size_t i = 0; i < k; i++)
		missing |= v[i].rc != 0;
	if (missing) {
		pthread_mutex_lock(&e->lock);
		stand_ins(e, v, k);
		pthread_mutex_unlock(&e->lock);
	}
	qsort(v, k, sizeof(*v), by_id);
	struct mem_row *out = malloc((k ? k : 1) * sizeof(*out));
	for (size_t i = 0; out && i < k; i++)
		out[i] = v[i].row;
	free(v);
	if (!out)
		return -ENOMEM;
	*rows = out;
	*n = k;
	return 0;
}
