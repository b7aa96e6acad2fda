/* loaderwalk.h: walks of the loader's list that wait for it a bounded while (loaderwalk.c).
 * Layer: state, on the table (the writer's doorbell). */
#ifndef MEMTRACK_LOADERWALK_H
#define MEMTRACK_LOADERWALK_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Runs work(data), which walks the loader's list, on the writer thread, and waits for it at
 * most 2 s (on this thread when it is the writer, when no writer runs, and when the writer did
 * not take it in time without being inside a walk itself). Returns 1 when it ran, 0 when the
 * loader kept it (or the writer's own walk) from ending in time: the failure is noted as
 * `what` + ": the loader stayed busy", work may still run later, so data must be static, and
 * every later call fails at once. work may run on the asking thread: it must not wait for a
 * lock that thread may hold (a signal handler's). */
int memtrack_loader_walk_bounded(void (*work)(void *data), void *data, const char *what);
/* The writer's side: runs the walk asked for, if any. */
void memtrack_loader_walk_serve(void);
/* The writer's own walks (its tick's module map) say so, for the failure's reason. */
void memtrack_loader_writer_walking(int walking);
/* A walk failed to end in time in this process. */
int memtrack_loader_stuck(void);
void memtrack_loader_walk_fork_child(void);

#pragma GCC visibility pop

#endif
