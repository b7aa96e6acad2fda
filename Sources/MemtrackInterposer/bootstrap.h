/* bootstrap.h: finding the next allocator, the arena dlsym needs, start-up (bootstrap.c). Layer: process. */
#ifndef MEMTRACK_BOOTSTRAP_H
#define MEMTRACK_BOOTSTRAP_H

#include "base.h"

#pragma GCC visibility push(hidden)

void memtrack_bootstrap(void);
int memtrack_arena_owns(const void *pointer);
void *memtrack_arena_allocate(size_t size);
size_t memtrack_arena_bytes_after(const void *pointer);

#pragma GCC visibility pop

#endif
