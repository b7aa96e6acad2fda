/* process.h: the run directory, fork, exec, exit and signals (process.c). Layer: process. */
#ifndef MEMTRACK_PROCESS_H
#define MEMTRACK_PROCESS_H

#include "base.h"

#pragma GCC visibility push(hidden)

void memtrack_process_start(void);
/* Zero in a child made by _Fork or a raw clone that has not started its own record yet. */
extern const volatile int *memtrack_fork_sentinel;
void memtrack_process_forked_unseen(void);

#pragma GCC visibility pop

#endif
