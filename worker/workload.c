/* workload.c - the built-in workloads and the fair GIL (see workload.h).
 *
 * Every workload is bounded: by ops= or time= (cpu, io), or by time= (the
 * others), with ctx->default_time_ms when the line says neither.  Any loop
 * that can run for long polls the stop flag at least every STOP_SLICE_NS, so a
 * thread task answers W_TH_STOP within ~10 ms.  Process tasks have no stop
 * flag; signals end them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define NSEC_PER_MSEC 1000000LL
#define NSEC_PER_SEC 1000000000LL
#define STOP_SLICE_NS (5 * NSEC_PER_MSEC)  /* longest wait between stop checks */
#define NO_LIMIT INT64_MAX

#define MIB (1024LL * 1024)
#define DEFAULT_MEM_SIZE (64 * MIB)   /* mem, cow */
#define DEFAULT_IO_SIZE 4096
#define DEFAULT_RATE_MS 100           /* mem step= interval */
#define DEFAULT_TOUCH_PCT 100
#define DEFAULT_WRITE_PCT 25          /* cow */
#define DEFAULT_DEPTH 1000            /* stack */
#define STACK_FRAME 1024              /* bytes of buffer per stack frame */
#define CPU_OP_ITERS 10000            /* inner iterations per bogo-op */
#define TOUCH_BATCH 256               /* pages touched between stop checks */

/* --- time ------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static struct timespec ns_to_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / NSEC_PER_SEC, .tv_nsec = ns % NSEC_PER_SEC };
}

static int64_t ms_to_ns(int64_t ms)
{
	return ms > INT64_MAX / NSEC_PER_MSEC ? NO_LIMIT : ms * NSEC_PER_MSEC;
}

static int64_t add_sat(int64_t t, int64_t d)
{
	return d > INT64_MAX - t ? INT64_MAX : t + d;
}

/* How long a workload that lives for a time (sleep, mem, cow, stack) holds. */
static int64_t hold_ns(const struct wl_ctx *ctx)
{
	int64_t ms = ctx->spec->time_ms;

	return ms_to_ns(ms != SPEC_UNSET ? ms : ctx->default_time_ms);
}

/* Time limit of a workload that counts operations (cpu, io): time= if given;
 * none if only ops= is given; else the default time. */
static int64_t run_limit_ns(const struct wl_ctx *ctx)
{
	const struct task_spec *s = ctx->spec;

	if (s->time_ms == SPEC_UNSET && s->ops != SPEC_UNSET)
		return NO_LIMIT;
	return hold_ns(ctx);
}

static double secs(int64_t ns)
{
	return (double)ns / NSEC_PER_SEC;
}

/* --- stop and wait ---------------------------------------------------- */

/* The signal a thread was asked to stop with, or 0. */
static int stop_sig(const struct wl_ctx *ctx)
{
	return ctx->stop ? atomic_load_explicit(ctx->stop, memory_order_relaxed) : 0;
}

/* Sleep until the absolute CLOCK_MONOTONIC time `deadline`.  With a stop flag
 * in slices of STOP_SLICE_NS, checking it between them; without, in one
 * absolute sleep that simply resumes after a signal handler (EINTR).
 * Returns 0, or -signo when stopped. */
static int hold_until(const struct wl_ctx *ctx, int64_t deadline)
{
	for (;;) {
		int64_t now, until;
		struct timespec ts;
		int sig = stop_sig(ctx);

		if (sig)
			return -sig;
		now = now_ns();
		if (now >= deadline)
			return 0;
		until = deadline;
		if (ctx->stop && until - now > STOP_SLICE_NS)
			until = now + STOP_SLICE_NS;
		ts = ns_to_ts(until);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/* --- output ----------------------------------------------------------- */

void wl_printf(struct wl_ctx *ctx, int stream, const char *fmt, ...)
{
	char local[1024];
	char *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(local, sizeof local, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof local) {
		ctx->out(ctx, stream, local, (size_t)n);
		return;
	}
	/* Rare: a long message.  Format it again into the heap rather than cut it. */
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	ctx->out(ctx, stream, big, (size_t)n);
	free(big);
}

/* --- the GIL ------------------------------------------------------------
 *
 * A FIFO hand-over lock.  A waiter queues a node on its own stack; release
 * passes ownership straight to the oldest waiter (`held` stays true), so the
 * releasing thread, if it asks again at once, queues behind everyone already
 * waiting instead of winning the race for a free mutex, which is what makes
 * a plain mutex unfair under a tight release/acquire loop.  A stoppable waiter
 * can leave the queue (gil_take with a stop flag), so a thread stopped while
 * queued behind N others need not wait N switch intervals.
 */

struct gil_waiter {
	struct gil_waiter *next;
	bool granted;
};

struct gil {
	pthread_mutex_t lock;
	pthread_cond_t turn;             /* broadcast on every hand-over */
	bool held;
	struct gil_waiter *head;         /* oldest waiter */
	struct gil_waiter **tail;        /* where the next waiter is linked */
	int64_t interval_ns;             /* how long a computing holder keeps it */
};

struct gil *gil_new(int64_t switch_interval_us)
{
	struct gil *g = calloc(1, sizeof *g);

	if (!g)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->turn, NULL);
	g->tail = &g->head;
	g->interval_ns = switch_interval_us > 0 ? switch_interval_us * 1000 : 5 * NSEC_PER_MSEC;
	return g;
}

void gil_free(struct gil *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->turn);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Unlink w from the wait queue (g->lock held). */
static void gil_unqueue(struct gil *g, struct gil_waiter *w)
{
	struct gil_waiter **pp = &g->head;

	while (*pp != w)
		pp = &(*pp)->next;
	*pp = w->next;
	if (g->tail == &w->next)
		g->tail = pp;
}

/* Acquire g.  With a stop flag, give up (and return false) once it is set. */
static bool gil_take(struct gil *g, atomic_int *stop)
{
	struct gil_waiter w = { 0 };

	pthread_mutex_lock(&g->lock);
	if (!g->held && !g->head) {
		g->held = true;
		pthread_mutex_unlock(&g->lock);
		return true;
	}
	*g->tail = &w;
	g->tail = &w.next;
	while (!w.granted) {
		if (stop && atomic_load(stop)) {
			gil_unqueue(g, &w);
			pthread_mutex_unlock(&g->lock);
			return false;
		}
		if (stop) {
			struct timespec ts = ns_to_ts(now_ns() + STOP_SLICE_NS);

			pthread_cond_clockwait(&g->turn, &g->lock, CLOCK_MONOTONIC, &ts);
		} else {
			pthread_cond_wait(&g->turn, &g->lock);
		}
	}
	pthread_mutex_unlock(&g->lock);
	return true;
}

void gil_acquire(struct gil *g)
{
	gil_take(g, NULL);
}

void gil_release(struct gil *g)
{
	struct gil_waiter *w;

	pthread_mutex_lock(&g->lock);
	w = g->head;
	if (w) {
		g->head = w->next;
		if (!g->head)
			g->tail = &g->head;
		w->granted = true;
		pthread_cond_broadcast(&g->turn);
	} else {
		g->held = false;
	}
	pthread_mutex_unlock(&g->lock);
}

/* --- cpu -------------------------------------------------------------- */

struct cpu_state {
	uint64_t x;     /* xorshift64 state */
	double acc;     /* floating-point accumulator */
};

/* One bogo-op: CPU_OP_ITERS rounds of xorshift64 feeding a float division
 * into an accumulator (division rather than sqrt: the same kind of slow FPU
 * work, without needing libm, which pcfs-worker does not link). */
static void cpu_op(struct cpu_state *st)
{
	uint64_t x = st->x;
	double acc = st->acc;

	for (int i = 0; i < CPU_OP_ITERS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		acc = acc * 0.5 + 1.0 / (double)(x | 1);
	}
	st->x = x;
	st->acc = acc;
}

static uint64_t cpu_checksum(const struct cpu_state *st)
{
	uint64_t bits;

	memcpy(&bits, &st->acc, sizeof bits);
	return st->x ^ bits;
}

static int run_cpu(struct wl_ctx *ctx)
{
	const struct task_spec *s = ctx->spec;
	struct cpu_state st = { .x = 0x9e3779b97f4a7c15ULL, .acc = 0 };
	int64_t start = now_ns(), limit = run_limit_ns(ctx), slice, elapsed;
	int64_t ops = 0;
	bool held = false;
	int ret = 0;

	if (ctx->gil) {
		if (!gil_take(ctx->gil, ctx->stop))
			return -stop_sig(ctx);
		held = true;
	}
	slice = now_ns();
	for (;;) {
		int64_t now;
		int sig = stop_sig(ctx);

		if (sig) {
			ret = -sig;
			break;
		}
		if (s->ops != SPEC_UNSET && ops >= s->ops)
			break;
		now = now_ns();
		if (now - start >= limit)
			break;
		if (held && now - slice >= ctx->gil->interval_ns) {
			/* Switch interval over: let the next waiter in, queue again. */
			gil_release(ctx->gil);
			held = gil_take(ctx->gil, ctx->stop);
			if (!held)
				continue;   /* stopped while waiting: the check above returns */
			slice = now_ns();
		}
		cpu_op(&st);
		ops++;
	}
	if (held)
		gil_release(ctx->gil);
	if (ret)
		return ret;

	elapsed = now_ns() - start;
	wl_printf(ctx, 1, "cpu ops=%lld elapsed=%.3f ops_per_sec=%.1f checksum=%016llx\n",
		  (long long)ops, secs(elapsed),
		  elapsed > 0 ? (double)ops / secs(elapsed) : 0.0,
		  (unsigned long long)cpu_checksum(&st));
	return 0;
}

/* --- io --------------------------------------------------------------- */

/* An anonymous scratch file: O_TMPFILE where the filesystem has it (it never
 * appears in the directory), else mkstemp + unlink.  Returns an fd or -errno. */
static int open_scratch(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (snprintf(path, sizeof path, "%s/pcfs-io.XXXXXX", dir) >= (int)sizeof path)
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int run_io(struct wl_ctx *ctx)
{
	const struct task_spec *s = ctx->spec;
	size_t size = s->size != SPEC_UNSET ? (size_t)s->size : DEFAULT_IO_SIZE;
	int64_t start = now_ns(), limit = run_limit_ns(ctx), ops = 0;
	char *buf;
	int fd, ret = 0;

	fd = open_scratch();
	if (fd < 0) {
		wl_printf(ctx, 2, "io: cannot create a temporary file: %s\n", strerror(-fd));
		return 1;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		wl_printf(ctx, 2, "io: cannot allocate %zu bytes\n", size);
		close(fd);
		return 1;
	}
	memset(buf, 0xa5, size);

	for (;;) {
		int err, sig = stop_sig(ctx);

		if (sig) {
			ret = -sig;
			break;
		}
		if (s->ops != SPEC_UNSET && ops >= s->ops)
			break;
		if (now_ns() - start >= limit)
			break;
		/* Rewrite the same block each time: every op still goes to the
		 * device (fdatasync), but the file never grows, however fast a
		 * cache-backed filesystem (tmpfs) makes the loop. */
		err = pwrite_all(fd, buf, size, 0);
		if (!err && fdatasync(fd) < 0 && errno != EINVAL)
			err = -errno;  /* EINVAL: the file cannot be synced; not an error here */
		if (err) {
			wl_printf(ctx, 2, "io: write: %s\n", strerror(-err));
			ret = 1;
			break;
		}
		ops++;
	}
	free(buf);
	close(fd);
	if (ret)
		return ret;
	wl_printf(ctx, 1, "io ops=%lld bytes=%lld elapsed=%.3f\n", (long long)ops,
		  (long long)ops * (long long)size, secs(now_ns() - start));
	return 0;
}

/* --- sleep, noop ------------------------------------------------------- */

static int run_sleep(struct wl_ctx *ctx)
{
	return hold_until(ctx, add_sat(now_ns(), hold_ns(ctx)));
}

/* --- mem -------------------------------------------------------------- */

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Write one byte in each of pages [first, first + n) of p, checking the stop
 * flag every TOUCH_BATCH pages.  Returns 0 or -signo. */
static int touch_pages(const struct wl_ctx *ctx, char *p, size_t first, size_t n)
{
	size_t pg = page_size();

	for (size_t i = 0; i < n; i++) {
		if (i % TOUCH_BATCH == 0 && stop_sig(ctx))
			return -stop_sig(ctx);
		((volatile char *)p)[(first + i) * pg] = 1;
	}
	return 0;
}

static int64_t pct_of(int64_t n, int pct)
{
	return n / 100 * pct + n % 100 * pct / 100;  /* no overflow for any size */
}

static int run_mem(struct wl_ctx *ctx)
{
	const struct task_spec *s = ctx->spec;
	int64_t size = s->size != SPEC_UNSET ? s->size : DEFAULT_MEM_SIZE;
	int pct = s->touch_pct != SPEC_UNSET ? s->touch_pct : DEFAULT_TOUCH_PCT;
	int64_t rate = ms_to_ns(s->rate_ms != SPEC_UNSET ? s->rate_ms : DEFAULT_RATE_MS);
	int64_t start = now_ns(), deadline = add_sat(start, hold_ns(ctx));
	size_t pg = page_size(), npages, target, batch, done = 0;
	int64_t next;
	char *p;
	int ret = 0;

	if (size <= 0) {
		wl_printf(ctx, 2, "mem: size must be positive\n");
		return 2;
	}
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		wl_printf(ctx, 2, "mem: mmap %lld bytes: %s\n", (long long)size, strerror(errno));
		return 1;
	}
	npages = ((size_t)size + pg - 1) / pg;
	target = (size_t)pct_of((int64_t)npages, pct);
	/* All at once, or step= bytes (rounded up to whole pages) per rate=. */
	batch = target;
	if (s->step != SPEC_UNSET)
		batch = s->step > 0 ? ((size_t)s->step + pg - 1) / pg : 1;

	/* Steps are scheduled on absolute times so they do not drift.  time=
	 * bounds the whole run, touching included. */
	next = start;
	while (done < target) {
		size_t n = target - done < batch ? target - done : batch;

		ret = touch_pages(ctx, p, done, n);
		if (ret)
			break;
		done += n;
		if (done == target)
			break;
		next = add_sat(next, rate);
		ret = hold_until(ctx, next < deadline ? next : deadline);
		if (ret || now_ns() >= deadline)
			break;
	}
	if (!ret) {
		size_t touched = done * pg < (size_t)size ? done * pg : (size_t)size;

		wl_printf(ctx, 1, "mem size=%lld touched=%zu\n", (long long)size, touched);
		ret = hold_until(ctx, deadline);
	}
	munmap(p, (size_t)size);
	return ret;
}

/* --- cow --------------------------------------------------------------
 *
 * The parent fills a region, then creates the child with
 * clone(CLONE_PARENT | SIGCHLD): a fork in every respect (the child gets the
 * region copy-on-write) except that the child's parent is our parent, the
 * pcfs daemon.  So the daemon, the only reaper of task processes, reaps it
 * and can make it a task of its own: it learns the pid from our first stdout
 * line, `cow size=B child=PID`.  The child starts writing only after that
 * line is out (a pipe says go), and it ends when we end (a pidfd on us), since
 * PR_SET_PDEATHSIG would watch the daemon, not us.
 */

struct cow_child_arg {
	const struct wl_ctx *ctx;
	char *p;
	size_t npages;
	int pct;
	int64_t deadline;
	int go;              /* read end: one byte once the parent has announced us */
	int parent_pidfd;    /* readable when the parent has ended */
};

/* The child: dirty pct% of the inherited pages, spread evenly, one byte per
 * page (each write makes the kernel copy that page), then hold until the
 * deadline or the parent's end. */
static int cow_child(void *argp)
{
	struct cow_child_arg *a = argp;
	/* Of the parent's context only the output is valid here: its stop flag
	 * is now a private copy nobody updates (the parent kills us instead),
	 * and another thread of a thread host may have held the GIL's mutex at
	 * the clone. */
	struct wl_ctx c = *a->ctx;
	size_t pg = page_size(), k = (size_t)pct_of((int64_t)a->npages, a->pct);
	char go = 0;

	c.stop = NULL;
	c.gil = NULL;
	while (read(a->go, &go, 1) < 0 && errno == EINTR)
		;
	if (go != 'g')
		_exit(1);     /* the parent died before announcing us */
	for (size_t i = 0; i < k; i++)
		((volatile char *)a->p)[i * a->npages / k * pg] ^= 0x5a;
	/* Bytes of memory made private: one page per byte written. */
	wl_printf(&c, 1, "cow-child written=%zu\n", k * pg);
	for (;;) {
		int64_t left = a->deadline - now_ns();
		struct pollfd pfd = { .fd = a->parent_pidfd, .events = POLLIN };

		if (left <= 0)
			break;
		if (poll(&pfd, 1, (int)(left / NSEC_PER_MSEC) + 1) > 0)
			break;    /* the parent has ended */
	}
	_exit(0);
}

/* Fill p page by page, checking the stop flag.  Returns 0 or -signo. */
static int fill_pages(const struct wl_ctx *ctx, char *p, size_t size)
{
	size_t pg = page_size();

	for (size_t off = 0; off < size; off += pg) {
		if ((off / pg) % TOUCH_BATCH == 0 && stop_sig(ctx))
			return -stop_sig(ctx);
		memset(p + off, 0xc3, size - off < pg ? size - off : pg);
	}
	return 0;
}

#define COW_CHILD_STACK (64 * 1024)

/* Start the child; returns its pid or -errno.  The pipe and pidfd are
 * closed here on every path. */
static pid_t cow_clone(struct cow_child_arg *a, int go[2])
{
	char *stack = mmap(NULL, COW_CHILD_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pid_t pid;
	int err;

	if (stack == MAP_FAILED)
		return -errno;
	a->go = go[0];
	pid = clone(cow_child, stack + COW_CHILD_STACK, CLONE_PARENT | SIGCHLD, a);
	err = errno;
	munmap(stack, COW_CHILD_STACK);   /* the child has its own copy */
	close(go[0]);
	close(a->parent_pidfd);
	return pid < 0 ? -err : pid;
}

static int run_cow(struct wl_ctx *ctx)
{
	const struct task_spec *s = ctx->spec;
	int64_t size = s->size != SPEC_UNSET ? s->size : DEFAULT_MEM_SIZE;
	int pct = s->write_pct != SPEC_UNSET ? s->write_pct : DEFAULT_WRITE_PCT;
	int64_t deadline = add_sat(now_ns(), hold_ns(ctx));
	size_t pg = page_size();
	struct cow_child_arg a = { .ctx = ctx, .pct = pct, .deadline = deadline };
	int go[2];
	pid_t child;
	char *p;
	int ret;

	if (size <= 0) {
		wl_printf(ctx, 2, "cow: size must be positive\n");
		return 2;
	}
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		wl_printf(ctx, 2, "cow: mmap %lld bytes: %s\n", (long long)size, strerror(errno));
		return 1;
	}
	ret = fill_pages(ctx, p, (size_t)size);
	if (ret) {
		munmap(p, (size_t)size);
		return ret;
	}
	a.p = p;
	a.npages = ((size_t)size + pg - 1) / pg;
	a.parent_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (a.parent_pidfd < 0 || pipe2(go, O_CLOEXEC) < 0) {
		wl_printf(ctx, 2, "cow: %s: %s\n", a.parent_pidfd < 0 ? "pidfd_open" : "pipe",
			  strerror(errno));
		if (a.parent_pidfd >= 0)
			close(a.parent_pidfd);
		munmap(p, (size_t)size);
		return 1;
	}
	child = cow_clone(&a, go);
	if (child < 0) {
		wl_printf(ctx, 2, "cow: clone: %s\n", strerror((int)-child));
		close(go[1]);
		munmap(p, (size_t)size);
		return 1;
	}
	/* Announce, then let the child start: the daemon knows its pid before
	 * anything the child does can end it. */
	wl_printf(ctx, 1, "cow size=%lld child=%d\n", (long long)size, (int)child);
	if (write(go[1], "g", 1) < 0)
		ret = 1;
	close(go[1]);
	if (!ret)
		ret = hold_until(ctx, deadline);
	if (ret < 0)
		kill(child, SIGKILL);   /* stopped: the child cannot see our flag */
	munmap(p, (size_t)size);
	return ret;
}

/* --- stack ------------------------------------------------------------ */

struct stack_walk {
	struct wl_ctx *ctx;
	int64_t depth;
	int64_t deadline;
	uintptr_t top;        /* address of the outermost frame's buffer */
	jmp_buf stopped;      /* back to run_stack with the stop signal */
};

/* Stopped: leave the whole recursion at once.  Unwinding frame by frame
 * would touch every stack page again, and at depth=1000000 (1 GiB of stack)
 * that alone takes far longer than the ~10 ms a stop may take. */
static _Noreturn void stack_abandon(struct stack_walk *w, int sig)
{
	longjmp(w->stopped, sig);
}

static int stack_bottom(struct stack_walk *w, uintptr_t here)
{
	uintptr_t lo = here < w->top ? here : w->top, hi = here < w->top ? w->top : here;
	int ret;

	wl_printf(w->ctx, 1, "stack depth=%lld bytes=%zu\n", (long long)w->depth,
		  (size_t)(hi - lo) + STACK_FRAME);
	ret = hold_until(w->ctx, w->deadline);
	if (ret)
		stack_abandon(w, -ret);
	return 0;
}

/* One frame: a written 1 KiB buffer, then the next frame.  The buffer is read
 * back after the call returns, which both checks that nothing scribbled on it
 * and keeps the call from becoming a tail call (which would reuse the frame). */
static __attribute__((noinline)) int stack_frame(struct stack_walk *w, int64_t level)
{
	volatile char buf[STACK_FRAME];
	int ret;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(level + (int64_t)i);
	if (level == 1)
		w->top = (uintptr_t)buf;
	if (level % 256 == 0 && stop_sig(w->ctx))
		stack_abandon(w, stop_sig(w->ctx));

	if (level < w->depth)
		ret = stack_frame(w, level + 1);
	else
		ret = stack_bottom(w, (uintptr_t)buf);
	if (ret == 0 && buf[0] != (char)level) {
		wl_printf(w->ctx, 2, "stack: frame %lld corrupted\n", (long long)level);
		ret = 1;
	}
	return ret;
}

static int run_stack(struct wl_ctx *ctx)
{
	struct stack_walk w = {
		.ctx = ctx,
		.depth = ctx->spec->depth != SPEC_UNSET ? ctx->spec->depth : DEFAULT_DEPTH,
		.deadline = add_sat(now_ns(), hold_ns(ctx)),
	};
	int sig;

	if (w.depth < 1)
		w.depth = 1;
	sig = setjmp(w.stopped);
	if (sig)
		return -sig;
	return stack_frame(&w, 1);
}

/* --- dispatch --------------------------------------------------------- */

int workload_run(struct wl_ctx *ctx)
{
	const char *name;

	switch (ctx->spec->workload) {
	case WL_CPU:
		return run_cpu(ctx);
	case WL_IO:
		return run_io(ctx);
	case WL_SLEEP:
		return run_sleep(ctx);
	case WL_MEM:
		return run_mem(ctx);
	case WL_COW:
		return run_cow(ctx);
	case WL_STACK:
		return run_stack(ctx);
	case WL_NOOP:
		return 0;
	case WL_EXEC:
	case WL_SH:
	case WL__COUNT:
		break;
	}
	name = workload_name(ctx->spec->workload);
	wl_printf(ctx, 2, "pcfs-worker: %s is not a built-in workload\n", name ? name : "?");
	return 2;
}
