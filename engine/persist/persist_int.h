/* persist_int.h - the persist room's own: its state, shared by state.c (the
 * journal, replay, compaction) and durable.c (the default dir, fsync, and
 * removal at a clean stop).
 *
 * Locks, in the order they are taken: wlock (orders journal writes and
 * swaps of jfd), then the engine lock; fmu (the flusher's wake-up, taken
 * alone) guards fdirty, fstop and last_sync.
 */
#ifndef PCFS_PERSIST_INT_H
#define PCFS_PERSIST_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "persist.h"

#define JOURNAL "journal"
#define JOURNAL_NEW "journal.new"

struct state {
	int dirfd, outfd, lockfd, jfd;   /* owned; closed by state_close, lock last */
	struct strbuf pending;         /* records not yet written (engine lock) */
	pthread_mutex_t wlock;         /* orders writes (taken before the engine lock) */
	size_t records, base;          /* written since / left by the last compaction */
	bool restoring;                /* replay: nothing is journaled */
	bool restored;                 /* replay done: a clean stop may remove the dir */
	bool broken;                   /* a write failed: logged once, then silence */
	bool made;                     /* state_open made the dir */
	enum state_sync sync;
	atomic_bool outputs_dirty;     /* an output file written since the last fsync */
	/* sync = batch: the flusher thread */
	pthread_t fthread;
	bool fstarted;
	pthread_mutex_t fmu;
	pthread_cond_t fcv;            /* CLOCK_MONOTONIC */
	bool fdirty, fstop;
	struct timespec last_sync;
};

/* durable.c */
int state_write_all(int fd, const char *p, size_t n);
/* After a batch reached the journal (wlock held): fsync now (always) or
 * wake the flusher (batch). */
void durable_written(struct engine *e);
/* An output file about to be renamed into place (sync = always: its data). */
void durable_output(struct state *s, int fd);
/* A new journal (compaction) before its rename, and the dir after it. */
void durable_replaced(struct state *s, int fd);
void durable_start(struct engine *e);
/* A clean stop: stop the flusher, then sync what is left, or empty the dir
 * when [state] keep says so (true: the caller removes it once its files are
 * closed). */
bool durable_stop(struct engine *e);
/* Empty the dir of what pcfs puts there (its files still open). */
void durable_unmake(struct state *s);

#endif
