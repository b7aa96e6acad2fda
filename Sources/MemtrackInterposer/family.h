/* family.h: which family (malloc, new, new[]) allocated each live block (family.c). Layer: index. */
#ifndef MEMTRACK_FAMILY_H
#define MEMTRACK_FAMILY_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Until the first C++ block every block is malloc's: a C program pays one load per call. */
extern atomic_int memtrack_any_family;
void memtrack_family_set_slow(const void *pointer, int family);
int memtrack_family_take_slow(const void *pointer);
static inline void memtrack_family_set(const void *pointer, int family) {
    if (family != MEMTRACK_FAMILY_MALLOC || atomic_load_explicit(&memtrack_any_family, memory_order_relaxed))
        memtrack_family_set_slow(pointer, family);
}
/* Reads the block's family and resets it to MALLOC. */
static inline int memtrack_family_take(const void *pointer) {
    if (MEMTRACK_LIKELY(!atomic_load_explicit(&memtrack_any_family, memory_order_relaxed))) return MEMTRACK_FAMILY_MALLOC;
    return memtrack_family_take_slow(pointer);
}
int memtrack_family_peek(const void *pointer);

#pragma GCC visibility pop

#endif
