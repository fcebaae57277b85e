/* sync.h - the sync room as the others see it: its row only.  Its objects
 * (locks, semaphores, events, barriers of /sync) are reached through the
 * engine's API (engine.h, "synchronization objects"). */
#ifndef PCFS_SYNC_H
#define PCFS_SYNC_H

#include "core/core.h"

extern const struct room sync_room;

#endif
