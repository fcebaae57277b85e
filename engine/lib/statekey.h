/* statekey.h - the name of a mountpoint's default state dir.
 *
 * The canonical mountpoint path escaped as `systemd-escape --path` does
 * (slashes become '-', "/" is "-"), except that a byte outside [A-Za-z0-9:_.]
 * and a leading '.' become +NN rather than \xNN: Slurm strips backslashes
 * from the --output paths of the spool below the dir.  Two mountpoints never
 * share a dir, and a person can tell whose it is.  A name longer than STATEKEY_MAX keeps its
 * head and ends in a hash of the whole path (a file name is at most 255
 * bytes).
 *
 * Pure code (unit-tested in tests/unit/test_journal.c).
 */
#ifndef PCFS_STATEKEY_H
#define PCFS_STATEKEY_H

#include <stddef.h>

#define STATEKEY_MAX 200

/* The key of an absolute, canonical path into buf (at least STATEKEY_MAX + 1
 * bytes); 0, or -EINVAL for a path that is not absolute. */
int statekey(const char *path, char *buf, size_t len);

#endif
