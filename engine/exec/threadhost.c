/* threadhost.c - what the thread host of a spawn line tells the engine: a
 * thread started (or could not), wrote output, ended.  host.c reads the
 * socket; these run on the engine thread with `lock` held.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exec_int.h"

static void thread_started(struct engine *e, struct host *h, struct task *t, int64_t tid)
{
	if (tid > 0) {
		t->tid = (pid_t)tid;
	} else {
		snprintf(t->error, sizeof(t->error), "pthread_create: %s", strerror((int)-tid));
		if (h->live)
			h->live--;
		task_ended(e, t, TS_FAILED, 126);
	}
	pthread_cond_broadcast(&e->cond);
}

static void thread_exited(struct engine *e, struct host *h, struct task *t, int64_t code,
			  int64_t cpu_us)
{
	t->thread_cpu_us = cpu_us;
	if (h->live)
		h->live--;
	task_ended(e, t, code >= 0 ? TS_EXITED : TS_KILLED, (int)code);
	pthread_cond_broadcast(&e->cond);
}

static void thread_host_message(struct engine *e, struct host *h, const struct wire_hdr *m,
				const char *payload, size_t len)
{
	struct task *t = task_find(e, m->id);
	if (!t || t->host != h)
		return;
	switch (m->type) {
	case W_TH_STARTED:
		thread_started(e, h, t, m->a);
		break;
	case W_TH_OUTPUT:
		if (m->a == 1 || m->a == 2) {
			out_append(&t->out[m->a], payload, len, e->cfg.output_max);
			ROOMS_CALL(e, task_output, t, (int)m->a);
		}
		engine_notify_locked(e, OBJ_TASK, t->id);
		break;
	case W_TH_EXIT:
		thread_exited(e, h, t, m->a, m->b);
		break;
	default:
		break;
	}
}

/* One thread of the host, on its own: the host raises the signal in it. */
static int thread_host_signal(struct engine *e, struct host *h, struct task *t, int sig)
{
	return wire_send(h->sock, W_TH_STOP, t->id, sig, 0, NULL, 0, NULL, 0);
}

const struct host_ops thread_host_ops = {
	.what = "thread host",
	.message = thread_host_message,
	.signal = thread_host_signal,
};
