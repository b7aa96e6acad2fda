/* writer.h: the writer thread (writer.c). Layer: writer. */
#ifndef MEMTRACK_WRITER_H
#define MEMTRACK_WRITER_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Starts the writer (MEM_SETTLE_MS > 0); without a thread, records become synchronous. */
void memtrack_start_writer(void);
void memtrack_writer_fork_child(void);

#pragma GCC visibility pop

#endif
