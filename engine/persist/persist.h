/* persist.h - the persist room ([state] dir: results kept across the daemon's
 * death) as the others see it: its row, the journal and output files a room
 * writes its own objects to, and the interface such a room offers the
 * journal's compaction and replay.  Without a state dir (dir = none, or a
 * default dir that could not be made) every call is a
 * no-op.  Record functions run with `lock` held.
 */
#ifndef PCFS_PERSIST_H
#define PCFS_PERSIST_H

#include "core/core.h"
#include "journal.h"

extern const struct room persist_room;

/* The buffer to append one record to, or NULL when nothing is journaled. */
struct strbuf *state_record(struct engine *e);
void state_failed(struct engine *e, const char *what, int err);
/* Output files in DIR/out, named PREFIX ID.STREAM. */
int state_write_output(struct engine *e, const char *prefix, uint64_t id, int stream,
		       const char *data, size_t len);
void state_read_output(struct engine *e, const char *prefix, uint64_t id, int stream,
		       struct outbuf *o);
void state_remove_output(struct engine *e, const char *prefix, uint64_t id);

/* A room whose objects the journal keeps besides tasks (pools): its row's
 * `journal`.  To add one, fill this and set it in the room's row; persist
 * walks the rows. */
struct journal_client {
	/* Its records for a compacted journal (lock held); how many. */
	size_t (*render)(struct engine *e, struct strbuf *sb);
	/* Is DIR/out/FILE one of its objects' outputs (lock held)? */
	bool (*output_known)(struct engine *e, const char *file);
	/* Replay at restore: a context, fed every record that is not a task's
	 * (-ENOENT: not its kind; 0: taken, and with it `line`, which it frees;
	 * -errno: its kind, unreadable), applied once all are read (no lock),
	 * freed, and told when the restored objects may run (no lock). */
	void *(*replay_new)(void);
	int (*replay_record)(void *ctx, const struct jrec *rec, char *line);
	/* Optional: a task's start record (T) of this id was read: a record of
	 * the client's own that stood for it until it started is superseded. */
	void (*replay_task)(void *ctx, uint64_t id);
	size_t (*replay_apply)(struct engine *e, void *ctx);
	void (*replay_free)(void *ctx);
	void (*replay_done)(struct engine *e);
};

#endif
