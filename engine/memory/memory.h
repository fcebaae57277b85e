/* memory.h - the memory room as engine.c sees it: its row.  It samples every
 * live task's memory and scheduling figures (sample.c), keeps them for after
 * the end, and makes a cow task's child a task of its own (cow.c).
 */
#ifndef PCFS_MEMORY_H
#define PCFS_MEMORY_H

#include "core/core.h"

extern const struct room memory_room;

#endif
