/* memtrack: fast call-stack capture for the allocation hooks (see unwind.c for the design). */
#ifndef MEMTRACK_UNWIND_H
#define MEMTRACK_UNWIND_H

#include <stdint.h>

#pragma GCC visibility push(hidden)

/* Writes up to max_frames return addresses into frames and returns how many.
 * frames[0] is the return address of the function that called memtrack_unwind
 * (what __builtin_return_address(0) gives in that function), frames[1] the one above, etc.
 * Never allocates, takes no lock that a signal handler could deadlock on, never faults. */
int memtrack_unwind(uintptr_t *frames, int max_frames);

/* Forget every cached unwind rule (in all threads, lazily: each thread drops its cache at its
 * next memtrack_unwind). Call it after dlclose, because a later dlopen may put different code
 * at the same addresses. Async-signal-safe, a single atomic increment. */
void memtrack_unwind_invalidate(void);

#pragma GCC visibility pop

#endif
