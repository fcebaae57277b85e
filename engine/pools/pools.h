/* pools.h - the pools room as engine.c sees it: its row.  Pools of workers
 * running futures (concurrent.futures as files), with an executor each:
 * local worker processes or threads, or Slurm jobs.
 */
#ifndef PCFS_POOLS_H
#define PCFS_POOLS_H

#include "core/core.h"

extern const struct room pools_room;

#endif
