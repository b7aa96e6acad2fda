/* sources.h: memtrack.h's source locations and the `sources` file (sources.c). Layer: records. */
#ifndef MEMTRACK_SOURCES_H
#define MEMTRACK_SOURCES_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* The id of (file, function), its texts copied in if new; 0 when the table is full. */
uint32_t memtrack_sources_intern(const char *file, const char *function);
/* Format 2: appends the source's line to the `sources` file once; 0 or an errno value. */
int memtrack_publish_source(uint32_t source);
void memtrack_sources_reset(void);   /* a forked child's record starts its own sources file */
void memtrack_sources_fork_prepare(void);
void memtrack_sources_fork_release(void);

#pragma GCC visibility pop

#endif
