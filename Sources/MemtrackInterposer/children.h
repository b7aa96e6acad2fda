/* children.h: which processes are traced (children.c). Layer: process. */
#ifndef MEMTRACK_CHILDREN_H
#define MEMTRACK_CHILDREN_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* In a process MEM_TRACE_CHILDREN or MEM_TRACE_CHILDREN_SKIP leave untraced: execs the same
 * program again without libmemtrack.so in LD_PRELOAD, and does not return. */
void memtrack_restart_if_untraced(char **argv, char **envp);

#pragma GCC visibility pop

#endif
