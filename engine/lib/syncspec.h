/* syncspec.h - the control lines of /sync: what makes an object, and what
 * an object's ctl takes.  Each file's grammar is one cmdtab (cmdtab.h).
 *
 * Pure: libc, cmdtab and spec's duration parser; reentrant.
 */
#ifndef PCFS_SYNCSPEC_H
#define PCFS_SYNCSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYNC_NAME_MAX 64
#define SYNC_VALUE_MAX 1000000       /* a semaphore's most units */
#define SYNC_PARTIES_MAX 100000

enum sync_kind { SYNC_LOCK, SYNC_SEMAPHORE, SYNC_EVENT, SYNC_BARRIER };

/* "lock", "semaphore", "event", "barrier" */
const char *sync_kind_name(enum sync_kind k);
/* [A-Za-z0-9._-]{1,SYNC_NAME_MAX}, not "." or ".." */
bool sync_name_ok(const char *name);

/* A line of /sync/ctl:
 *   lock NAME
 *   semaphore NAME value=N [bounded]      (N: 0..SYNC_VALUE_MAX, default 1)
 *   event NAME
 *   barrier NAME parties=N [timeout=DUR]  (N: 1..SYNC_PARTIES_MAX) */
struct sync_spec {
	enum sync_kind kind;
	char name[SYNC_NAME_MAX + 1];
	int64_t value;        /* semaphore */
	bool bounded;
	unsigned parties;     /* barrier */
	int64_t timeout_ms;   /* barrier: -1 none */
};
/* 0, or -EINVAL (or the tokenizer's errors) with a one-line reason. */
int sync_parse_create(const char *line, struct sync_spec *out, char *err, size_t errlen);

/* A line of /sync/NAME/ctl: set | clear (event), abort | reset (barrier),
 * release [N] (semaphore: N units given without a hold, default 1). */
enum sync_op { SYNC_OP_SET = 1, SYNC_OP_CLEAR, SYNC_OP_ABORT, SYNC_OP_RESET, SYNC_OP_RELEASE };
struct sync_cmd {
	enum sync_op op;
	int64_t n;            /* release */
};
int sync_parse_ctl(const char *line, struct sync_cmd *out, char *err, size_t errlen);
/* The operation's name ("set") and the kind it applies to. */
const char *sync_op_name(enum sync_op op);
enum sync_kind sync_op_kind(enum sync_op op);

/* ---- /shm ---- */
#define SHM_SIZE_MAX (UINT64_C(1) << 40)   /* a segment's largest size= */

enum shm_kind { SHM_SEGMENT, SHM_VALUE };
const char *shm_kind_name(enum shm_kind k);

/* A line of /shm/ctl:
 *   segment NAME size=SIZE          (SIZE: 0 .. SHM_SIZE_MAX, 4k 64M 1G)
 *   value NAME [N]                  (a 64-bit integer, N its first value) */
struct shm_spec {
	enum shm_kind kind;
	char name[SYNC_NAME_MAX + 1];
	uint64_t size;
	int64_t value;
};
int shm_parse_create(const char *line, struct shm_spec *out, char *err, size_t errlen);

/* A line of /shm/NAME/ctl: a segment's `size=SIZE`; a value's `add N`,
 * `set N`, `cas OLD NEW` (N, OLD, NEW: signed 64-bit). */
enum shm_op { SHM_OP_SIZE = 1, SHM_OP_ADD, SHM_OP_SET, SHM_OP_CAS };
struct shm_cmd {
	enum shm_op op;
	uint64_t size;
	int64_t a, b;         /* add/set: a; cas: a OLD, b NEW */
};
int shm_parse_ctl(const char *line, enum shm_kind kind, struct shm_cmd *out, char *err,
		  size_t errlen);

#endif
