/* inputs.c - a pool's command template (ctl template='exec ./square {}').
 *
 * With a template, every line written to submit, map or as_completed is an
 * input, not a task line: it is expanded (lib/template.c) into the task
 * line its future runs, at submit time, and that line is parsed as any
 * other, so a bad input refuses the whole write and the future keeps the
 * template it was submitted under.  {%}, the worker slot, is known only
 * when a worker takes the future: its markers stay in the line and are
 * filled for each RUN (handing.c) and in what the future shows.
 *
 * The template itself is checked when it is set: the line a sample input
 * makes must be one this pool can run.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pools_int.h"

int template_check(struct engine *e, const char *text, enum task_kind type,
		   const struct executor *ex, char *err, size_t errlen)
{
	struct tmpl t;
	struct strbuf sample = STRBUF_INIT;
	struct task_spec spec;
	struct slurm_opts lo;
	char why[256];
	int rc = tmpl_compile(text, &t, err, errlen);

	if (rc < 0)
		return rc;
	if (t.uses_slot && ex->job_options) {
		snprintf(err, errlen, "{%%} is a local worker's slot: futures of executor=%s have none",
			 ex->name);
		return -EINVAL;
	}
	tmpl_sample(&t, &sample);
	rc = sb_error(&sample);
	if (rc == 0)
		rc = parse_pool_line(e, ex->job_options, sample.buf, sample.len, &spec, &lo, why,
				     sizeof(why));
	if (rc == 0) {
		const char *no = pool_spec_refusal(type, &spec);
		if (no)
			snprintf(why, sizeof(why), "%s", no);
		rc = no ? -EINVAL : 0;
		spec_free(&spec);
	}
	if (rc == -EINVAL || rc == -E2BIG) {
		snprintf(err, errlen, "the template's lines cannot run here (input 1 makes '%.80s'): %s",
			 sb_cstr(&sample), why);
		rc = -EINVAL;
	} else if (rc < 0) {
		snprintf(err, errlen, "out of memory");
	}
	sb_free(&sample);
	return rc;
}

int template_line(struct engine *e, const struct tmpl *t, bool job_options, const char *in,
		  size_t len, uint64_t seq, struct task_spec *spec, struct slurm_opts *lo,
		  char *why, size_t whylen)
{
	struct strbuf line = STRBUF_INIT;
	int rc = tmpl_expand(t, in, len, seq, &line, why, whylen);

	if (rc == 0)
		rc = parse_pool_line(e, job_options, line.buf, line.len, spec, lo, why, whylen);
	if (rc == 0 && spec->count != 1) {
		/* a built-in's raw value can land where COUNT is read */
		snprintf(why, whylen, "a template makes one future per input (this one makes "
			 "COUNT %u)", spec->count);
		spec_free(spec);
		rc = -EINVAL;
	}
	sb_free(&line);
	return rc;
}

void fut_line(const struct future *f, unsigned slot, struct strbuf *out)
{
	if (f->slot_marks && slot)
		tmpl_fill_slot(f->line, slot, out);
	else
		sb_adds(out, f->line);
}
