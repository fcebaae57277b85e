/* rows_chan.c - /channels and /channels/NAME: message queues, duplex pipes
 * and sockets as files.
 *
 * One table serves the three kinds of channel directory: each row says which
 * kinds show it (`only`), so a queue shows put/get, a pipe a/b, a socket
 * put/get/address, and every one ctl and stat.  The message files are R_MSG
 * rows served by msg.c; `arg` names the end, which the engine maps to the
 * channel's queues.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define QUEUE (1u << CHAN_QUEUE)
#define PIPE (1u << CHAN_PIPE)
#define SOCKET (1u << CHAN_SOCKET)
#define FIFO (1u << CHAN_FIFO)

/* ---- /channels ----------------------------------------------------------------- */

static int chans_list(struct fs *fs, uint64_t obj, struct dirlist *out)
{
	struct chan_entry *v;
	size_t n;
	int rc = engine_chan_list(fs->eng, &v, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = dirlist_add(out, v[i].name, ino_make(N_CHAN, v[i].id, 0), S_IFDIR);
	free(v);
	return rc;
}

static int chans_lookup(struct fs *fs, uint64_t obj, const char *name, uint64_t *child)
{
	return engine_chan_lookup(fs->eng, name, child);
}

static int chans_rmdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c)
{
	uint64_t id;
	int rc = engine_chan_lookup(fs->eng, name, &id);
	return rc < 0 ? rc : engine_chan_remove(fs->eng, id);
}

/* A channel belongs to the caller that made it. */
static int create(struct fs *fs, const struct caller *c, const struct chan_spec *s,
		  uint64_t *id, char *err, size_t errlen)
{
	struct owner who = { .uid = c->uid, .gid = c->gid };
	return engine_chan_create_as(fs->eng, s, &who, id, err, errlen);
}

/* mkdir /channels/NAME: a queue with the configured defaults, in lines mode. */
static int chans_mkdir(struct fs *fs, uint64_t obj, const char *name, const struct caller *c,
		       uint64_t *child)
{
	struct chan_spec s = { .type = CHAN_QUEUE };
	char err[256] = "";
	if (!chan_name_ok(name)) {
		engine_log(fs->eng, "mkdir /channels/%.64s: refused: a channel name is 1 to %d of "
			   "A-Z a-z 0-9 . _ - (not . or ..)", name, CHAN_NAME_MAX);
		return -EINVAL;
	}
	strcpy(s.name, name);
	int rc = create(fs, c, &s, child, err, sizeof(err));
	if (rc < 0)
		engine_log(fs->eng, "mkdir /channels/%s: %s", name, err);
	return rc;
}

/* ctl: one channel per line; the first bad line stops the write. */
static int store_chans_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			   const struct caller *c, char *err, size_t errlen)
{
	char line[512];
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len, n = end - pos;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "line too long (the limit is %zu bytes)",
				 sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos = end + 1;
		if (strspn(line, " \t\r") == n || line[strspn(line, " \t")] == '#')
			continue;
		struct chan_spec s;
		uint64_t id;
		int rc = chan_parse_create(line, &s, err, errlen);
		if (rc == 0)
			rc = create(fs, c, &s, &id, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const struct row chans_rows[] = {
	CTL("ctl", 0666, store_chans_ctl),   /* every user let in may make channels */
};

const struct dirdesc dir_chans = {
	.rows = chans_rows,
	.nrows = sizeof(chans_rows) / sizeof(chans_rows[0]),
	.mode = 01777,   /* writable by all, sticky: anyone let in removes their own */
	.child = N_CHAN,
	.list = chans_list,
	.lookup = chans_lookup,
	.rmdir = chans_rmdir,
	.mkdir = chans_mkdir,
};

/* ---- /channels/NAME --------------------------------------------------------------- */

static bool chan_exists(struct fs *fs, uint64_t id)
{
	return engine_chan_type(fs->eng, id) >= 0;
}

static unsigned chan_variant(struct fs *fs, uint64_t id)
{
	int t = engine_chan_type(fs->eng, id);
	return t < 0 ? 0 : 1u << t;
}

static int take(struct fs *fs, struct handle *h, size_t room, struct chan_msg **out)
{
	return engine_chan_take(fs->eng, h->obj, (enum chan_end)h->row->arg, room, out);
}

static ssize_t give(struct fs *fs, struct handle *h, const char *head, size_t hlen,
		    const char *buf, size_t len)
{
	return engine_chan_write(fs->eng, h->obj, (enum chan_end)h->row->arg, head, hlen, buf,
				 len);
}

static int give_last(struct fs *fs, struct handle *h, const char *buf, size_t len)
{
	return engine_chan_put(fs->eng, h->obj, (enum chan_end)h->row->arg, buf, len);
}

static bool waits(struct fs *fs, struct handle *h, size_t hlen, const char *buf, size_t len)
{
	return engine_chan_write_waits(fs->eng, h->obj, (enum chan_end)h->row->arg, hlen, buf,
				       len);
}

static unsigned events(struct fs *fs, struct handle *h, size_t len)
{
	return engine_chan_events(fs->eng, h->obj, (enum chan_end)h->row->arg, len);
}

static void blocked(struct fs *fs, struct handle *h, bool writer, int delta)
{
	engine_chan_blocked(fs->eng, h->obj, writer, delta);
}

static const struct msgops chan_msgops = {
	.take = take, .give = give, .give_last = give_last, .waits = waits, .events = events,
	.blocked = blocked,
};

static int show_address(struct fs *fs, uint64_t id, struct strbuf *out)
{
	struct chan_info ci;
	int rc = engine_chan_info(fs->eng, id, &ci);
	if (rc < 0)
		return rc;
	if (ci.address[0])
		sb_printf(out, "%s\n", ci.address);
	return 0;
}

/* A fifo's figures are the kernel's: what its buffer holds now, and its
 * size (nothing counts messages that never pass through pcfs). */
static int kv_fifo_stat(struct fs *fs, struct emit *e, const struct chan_info *ci)
{
	emit_uint(e, "bytes", ci->q[0].bytes);
	emit_uint(e, "max_bytes", ci->max_bytes);
	emit_bool(e, "closed", ci->closed);
	emit_str(e, "fifo", ci->address);
	emit_owner(fs, e, &ci->owner);
	return 0;
}

static int kv_stat(struct fs *fs, uint64_t id, struct emit *e)
{
	struct chan_info ci;
	int rc = engine_chan_info(fs->eng, id, &ci);
	if (rc < 0)
		return rc;
	const struct chan_q *q = ci.q;
	emit_str(e, "name", ci.name);
	emit_str(e, "type", chan_type_name(ci.type));
	if (ci.type == CHAN_FIFO)
		return kv_fifo_stat(fs, e, &ci);
	emit_uint(e, "depth", q[0].depth + q[1].depth);
	emit_uint(e, "capacity", ci.capacity);
	emit_uint(e, "maxmsg", ci.maxmsg);
	emit_str(e, "mode", chan_mode_name(ci.mode));
	emit_uint(e, "bytes", q[0].bytes + q[1].bytes);
	emit_uint(e, "max_bytes", ci.max_bytes);
	emit_uint(e, "puts", q[0].puts + q[1].puts);
	emit_uint(e, "gets", q[0].gets + q[1].gets);
	emit_uint(e, "bytes_put", q[0].bytes_put + q[1].bytes_put);
	emit_uint(e, "bytes_got", q[0].bytes_got + q[1].bytes_got);
	emit_uint(e, "blocked_readers", ci.blocked_readers);
	emit_uint(e, "blocked_writers", ci.blocked_writers);
	emit_bool(e, "closed", ci.closed);
	if (ci.type == CHAN_PIPE) {   /* the two directions on their own */
		emit_uint(e, "depth_a_to_b", q[0].depth);
		emit_uint(e, "depth_b_to_a", q[1].depth);
	}
	if (ci.type == CHAN_SOCKET) {
		emit_str(e, "address", ci.address);
		emit_uint(e, "clients", ci.clients);
		emit_uint(e, "to_clients", q[1].depth);
	}
	emit_uint(e, "wired", ci.wired);
	emit_owner(fs, e, &ci.owner);
	return 0;
}

/* ctl: one command per line ("close", "capacity=N", "mode=lines|message"). */
static int chan_cmd(struct fs *fs, uint64_t obj, const char *cmd, char *err, size_t errlen)
{
	return engine_chan_ctl(fs->eng, obj, cmd, err, errlen);
}

static int store_chan_ctl(struct fs *fs, struct handle *h, const char *buf, size_t len,
			  const struct caller *c, char *err, size_t errlen)
{
	return run_commands(fs, h->obj, buf, len, NULL, chan_cmd, err, errlen);
}

static const struct row chan_rows[] = {
	MSG("put", 0200, &chan_msgops, CHAN_END_PUT, OBJ_CHANNEL, QUEUE | SOCKET),
	MSG("get", 0400, &chan_msgops, CHAN_END_GET, OBJ_CHANNEL, QUEUE | SOCKET),
	MSG("a", 0600, &chan_msgops, CHAN_END_A, OBJ_CHANNEL, PIPE),
	MSG("b", 0600, &chan_msgops, CHAN_END_B, OBJ_CHANNEL, PIPE),
	{ .name = "address", .mode = 0444, .kind = R_TEXT, .show = show_address, .only = SOCKET },
	{ .name = "fifo", .mode = 0555, .kind = R_DIR, .subdir = N_CHANFIFO, .only = FIFO },
	CTL("ctl", 0600, store_chan_ctl),
	KV("stat", 0444, kv_stat),
};

/* fifo: a symlink to the kernel FIFO its users open themselves. */
static int fifo_readlink(struct fs *fs, uint64_t id, struct strbuf *out)
{
	struct chan_info ci;
	int rc = engine_chan_info(fs->eng, id, &ci);
	if (rc < 0)
		return rc;
	sb_adds(out, ci.address);
	return sb_error(out);
}

const struct dirdesc dir_chanfifo = {
	.mode = 0777,
	.exists = chan_exists,
	.readlink = fifo_readlink,
	.owned_by = OBJ_CHANNEL,
};

const struct dirdesc dir_chan = {
	.rows = chan_rows,
	.nrows = sizeof(chan_rows) / sizeof(chan_rows[0]),
	.mode = 0555,
	.exists = chan_exists,
	.variant = chan_variant,
	.owned_by = OBJ_CHANNEL,
};
