/* shadow.h: the live-set index: which addresses are live, freed or never allocated (shadow.c). Layer: index. */
#ifndef MEMTRACK_SHADOW_H
#define MEMTRACK_SHADOW_H

#include "base.h"

#pragma GCC visibility push(hidden)

enum memtrack_shadow_state {
    MEMTRACK_NEVER = 0,          /* never returned by an allocation function */
    MEMTRACK_LIVE = 1,           /* live, recorded */
    MEMTRACK_FREED = 2,          /* freed (possibly handed out again later) */
    MEMTRACK_LIVE_INTERNAL = 3,  /* live, allocated on the tracker's behalf: never recorded */
    MEMTRACK_UNTRACKED = -1,     /* the index has no memory for this address: not known either way */
};
/* For the leak check: every LIVE block in address order; whether [start, end) holds any granule
 * ever handed out; the index's own mappings. */
void memtrack_shadow_for_each_live(void (*visit)(uintptr_t address, void *context), void *context);
int memtrack_shadow_any_known(uintptr_t start, uintptr_t end);
void memtrack_shadow_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
/* Sets the state of the block at pointer and returns the previous one. */
int memtrack_shadow_exchange(const void *pointer, int state);
/* Moves a live block to FREED atomically; returns the previous state (the caller reports
 * NEVER or FREED as a bad free, and must then leave the state as it was). */
int memtrack_shadow_release(const void *pointer);
int memtrack_shadow_state(const void *pointer);   /* read only */

#pragma GCC visibility pop

#endif
