/* joblog.c - /joblog and pools/NAME/joblog: the ends kept, as GNU
 * parallel's --joblog writes them, so what reads a joblog reads pcfs's:
 *
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 *
 * tab-separated, with that header.  Seq is the task id (a pool's: the
 * future's number, which is its input's position: {#}), Host `:` (this
 * machine), Starttime epoch seconds and JobRuntime seconds with 3 decimals
 * (JobRuntime right-aligned in 10, as parallel pads it), Send and Receive 0.
 * A death by a signal is Exitval 0 and Signal N, as parallel writes it.
 *
 * The ends are a ring of [log] joblog entries shared by tasks and futures:
 * each file shows its part, oldest first, in the order they ended.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "notice_int.h"

int jl_init(struct jl_ring *j, size_t cap)
{
	memset(j, 0, sizeof(*j));
	j->v = calloc(cap, sizeof(*j->v));
	if (!j->v)
		return -ENOMEM;
	j->cap = cap;
	return 0;
}

void jl_free(struct jl_ring *j)
{
	for (size_t i = 0; i < j->cap && j->v; i++)
		free(j->v[i].line);
	free(j->v);
	memset(j, 0, sizeof(*j));
}

int jl_push(struct jl_ring *j, const struct jl_entry *x)
{
	char *line = strdup(x->line ? x->line : "");
	if (!line)
		return -ENOMEM;
	struct jl_entry *slot = &j->v[j->head];
	free(slot->line);   /* the oldest, when full */
	*slot = *x;
	slot->line = line;
	j->head = (j->head + 1) % j->cap;
	if (j->n < j->cap)
		j->n++;
	return 0;
}

void jl_codes(bool has_code, int code, bool failed, int *exitval, int *signal)
{
	*exitval = 0;
	*signal = 0;
	if (has_code && code < 0)
		*signal = -code;
	else if (has_code)
		*exitval = code;
	/* failed for another reason than its status (its worker died): it
	 * must read as failed, or --resume-failed would skip it */
	if (failed && *exitval == 0 && *signal == 0)
		*exitval = 1;
}

/* A word as a shell reads it back: bare if it is safe, else in '...'. */
static void shell_word(const char *w, struct strbuf *out)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789_-+=./,:@%^";
	if (w[0] && strspn(w, safe) == strlen(w)) {
		sb_adds(out, w);
		return;
	}
	sb_addc(out, '\'');
	for (const char *p = w; *p; p++) {
		if (*p == '\'')
			sb_adds(out, "'\\''");
		else
			sb_addc(out, *p);
	}
	sb_addc(out, '\'');
}

void jl_command(const char *line, struct strbuf *out)
{
	struct task_spec s;
	char err[64];
	size_t start = out->len;
	if (spec_parse(line, strlen(line), 1, &s, err, sizeof(err)) < 0) {
		sb_adds(out, line);
	} else {
		if (s.workload == WL_SH) {
			sb_adds(out, s.argv[0]);
		} else if (s.workload == WL_EXEC) {
			for (size_t i = 0; i < s.argc; i++) {
				if (i)
					sb_addc(out, ' ');
				shell_word(s.argv[i], out);
			}
		} else {
			sb_adds(out, line);
		}
		spec_free(&s);
	}
	/* a field holds no tab, a line no newline */
	for (size_t i = start; i < out->len; i++)
		if (out->buf[i] == '\t' || out->buf[i] == '\n' || out->buf[i] == '\r')
			out->buf[i] = ' ';
}

/* With `lock` held: copies of pool's entries, oldest first (lines owned:
 * jl_snapshot_free), so the Commands are made without the lock. */
int jl_snapshot(const struct jl_ring *j, uint64_t pool, struct jl_entry **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (!j->n)
		return 0;
	struct jl_entry *v = malloc(j->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t n = 0, oldest = (j->head + j->cap - j->n) % j->cap;
	for (size_t k = 0; k < j->n; k++) {
		const struct jl_entry *x = &j->v[(oldest + k) % j->cap];
		if (x->pool != pool)
			continue;
		v[n] = *x;
		if (!(v[n].line = strdup(x->line))) {
			jl_snapshot_free(v, n);
			return -ENOMEM;
		}
		n++;
	}
	*out = v;
	*nout = n;
	return 0;
}

void jl_snapshot_free(struct jl_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].line);
	free(v);
}

void jl_render(const struct jl_entry *v, size_t n, struct strbuf *out)
{
	sb_adds(out, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n");
	for (size_t k = 0; k < n; k++) {
		const struct jl_entry *x = &v[k];
		sb_printf(out, "%" PRIu64 "\t:\t%.3f\t%10.3f\t0\t0\t%d\t%d\t", x->seq, x->start,
			  x->runtime, x->exitval, x->signal);
		jl_command(x->line, out);
		sb_addc(out, '\n');
	}
}

int engine_joblog(struct engine *e, uint64_t pool, struct strbuf *out)
{
	struct jl_entry *v;
	size_t n;
	pthread_mutex_lock(&e->lock);
	int rc = jl_snapshot(&e->notice->jl, pool, &v, &n);
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		return rc;
	jl_render(v, n, out);
	jl_snapshot_free(v, n);
	return sb_error(out);
}
