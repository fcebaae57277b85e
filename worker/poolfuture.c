/* poolfuture.c - `pcfs-worker pool`: one future, in its slot thread.
 *
 * The W_PW_RUN payload is split and its line parsed here; a built-in runs
 * in the slot thread itself (or, for a deep `stack`, on a thread with a
 * stack to fit), an exec/sh line as a child process (poolchild.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "poolhost.h"
#include "spec.h"

/* Split the W_PW_RUN payload, line \0 cwd \0 {K=V \0}*.  Returns the line,
 * or NULL if the payload is malformed. */
static const char *split_request(struct future *f, const char *req, size_t len)
{
	const char *end = req + len, *kv;

	if (len == 0 || end[-1] != '\0' || req[0] == '\0')
		return NULL;
	f->cwd = req + strlen(req) + 1;
	if (f->cwd >= end)
		return NULL;
	f->env = f->cwd + strlen(f->cwd) + 1;
	f->env_end = end;
	for (kv = f->env; kv < end; kv += strlen(kv) + 1)
		if (kv[0] == '=' || !strchr(kv, '='))
			return NULL;   /* a bare name would mean nothing to execve */
	return req;
}

/* --- built-ins --- */

/* Run the built-in and measure the CPU time of the thread it runs in. */
static void *builtin_main(void *arg)
{
	struct future *f = arg;
	int64_t t0 = thread_cputime_us();

	f->code = workload_run(&f->ctx);
	f->cpu_us = thread_cputime_us() - t0;
	return NULL;
}

/* A `stack` future too deep for a slot's stack runs on a thread of its own,
 * with a stack to fit, while the slot waits for it.  Returns 0 or errno. */
static int run_on_own_stack(struct future *f, size_t size)
{
	pthread_attr_t attr;
	pthread_t t;
	char name[16];
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		return err;
	err = pthread_attr_setstacksize(&attr, size);
	if (!err)
		err = pthread_create(&t, &attr, builtin_main, f);
	pthread_attr_destroy(&attr);
	if (err)
		return err;
	snprintf(name, sizeof name, "pool-%u-stack", f->slot->num);
	pthread_setname_np(t, name);
	pthread_join(t, NULL);
	return 0;
}

static int run_builtin(struct future *f)
{
	size_t need;
	int err = thread_stack_need(&f->spec, &need);

	if (!err && need <= f->slot->pool->slot_stack) {
		builtin_main(f);
		return f->code;
	}
	if (!err)
		err = run_on_own_stack(f, need);
	if (err) {
		future_say(f, "stack depth=%lld: no thread with a stack that deep: %s",
			(long long)f->spec.depth, strerror(err));
		return CODE_CANNOT_RUN;
	}
	return f->code;
}

/* Run the future whose W_PW_RUN payload is req, len bytes; the caller has set
 * f->slot, f->id and f->io_fd, which are closed here.  Returns the exit code
 * (or -signal), with the CPU time it took in f->cpu_us. */
int future_run(struct future *f, const char *req, size_t len)
{
	struct pool *p = f->slot->pool;
	char err[256];
	const char *line;
	int code;

	f->ctx = (struct wl_ctx){
		.spec = &f->spec,
		.default_time_ms = p->default_time_ms,
		.stop = &f->slot->stop,
		.gil = p->gil,
		.out = future_out,
		.opaque = f,
	};
	line = split_request(f, req, len);
	if (!line) {
		future_say(f, "pool: future %llu: malformed W_PW_RUN payload",
			   (unsigned long long)f->id);
		code = CODE_CANNOT_RUN;
	} else if (spec_parse(line, strlen(line), p->ncpus, &f->spec, err, sizeof err) < 0) {
		/* As `pcfs-worker run` does: the reason on stderr, exit 2. */
		future_say(f, "%s", err);
		code = CODE_BAD_LINE;
	} else {
		code = workload_is_builtin(f->spec.workload) ? run_builtin(f) : run_child(f);
		spec_free(&f->spec);
	}
	for (int i = 0; i < 2; i++)
		if (f->io_fd[i] >= 0)
			close(f->io_fd[i]);   /* the child has its copies */
	return code;
}
