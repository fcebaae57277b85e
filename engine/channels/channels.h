/* channels.h - the channels room as the others see it: its row, and a task's
 * stdio wired to channels (exec and pools start tasks so wired).
 * Everything runs with `lock` held, except as noted.
 */
#ifndef PCFS_CHANNELS_H
#define PCFS_CHANNELS_H

#include "core/core.h"

extern const struct room channels_room;

/* The channels named by stdin=/stdout= exist and belong to `who` (or who is
 * root): -ENOENT/-EACCES with the reason otherwise (no lock held). */
int chan_check_wiring(struct engine *e, const struct task_spec *s, const struct owner *who,
		      char *err, size_t errlen);

/* A task's stdio wired to channels: prepared before it starts (no lock held),
 * attached once it runs, released in any case. */
struct chan_wiring {
	int child_stdin;               /* the task's stdin, -1 if not wired */
	int our_stdin;                 /* the engine's end of it (-1 for a fifo's) */
	int child_stdout;              /* a fifo's write end, as the task's stdout; -1 */
	uint64_t in_chan, out_chan;    /* 0 if not wired */
};
/* Refused (-ENOENT, -EACCES, with the reason in err) unless the channels
 * exist and who may use them: checked when the task starts, whatever the
 * parse of its line found. */
int chan_wire_prepare(struct engine *e, const struct task_spec *s, const struct owner *who,
		      struct chan_wiring *w, char *err, size_t errlen);
/* The same as chan_wire_prepare, by name, with `lock` held. */
int chan_wire_prepare_locked(struct engine *e, const char *stdin_chan, const char *stdout_chan,
			     const struct owner *who, struct chan_wiring *w, char *err,
			     size_t errlen);
/* Takes our_stdin, and stdout_fd if stdout is wired (then returns true).
 * task: whose end drains its stdout (0 for a pool's future: none). */
bool chan_wire_attach(struct engine *e, uint64_t task, struct chan_wiring *w, int stdout_fd);
void chan_wire_release(struct chan_wiring *w);                     /* no lock */

#endif
