/* failure.h: one warning per process, and the counts of what the record is missing
 * (failure.c). Layer: format. */
#ifndef MEMTRACK_FAILURE_H
#define MEMTRACK_FAILURE_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* One warning per process, on the first thing the tracker could not do; counts it in counter
 * (NULL: unrecorded events). */
void memtrack_note_failure(const char *operation, int error_number, atomic_uint_fast64_t *counter);
extern atomic_uint_fast64_t memtrack_unrecorded_blocks, memtrack_unremoved_records,
    memtrack_unrecorded_events;
/* The first failure ("operation: description"), or NULL. */
const char *memtrack_first_error(void);
/* One line on stderr (the program's, from any thread), no allocation. */
void memtrack_say(const char *text);

#pragma GCC visibility pop

#endif
