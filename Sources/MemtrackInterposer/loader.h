/* loader.h: where the dynamic loader's code is; how deep to capture a stack (loader.c). Layer: index. */
#ifndef MEMTRACK_LOADER_H
#define MEMTRACK_LOADER_H

#include "base.h"

#pragma GCC visibility push(hidden)

extern uintptr_t memtrack_loader_start, memtrack_loader_size;
extern atomic_int memtrack_loader_known;
void memtrack_loader_find(void);
/* Whether address is in the dynamic loader's code (found on first use). */
static inline int memtrack_in_loader(uintptr_t address) {
    if (MEMTRACK_UNLIKELY(!atomic_load_explicit(&memtrack_loader_known, memory_order_acquire)))
        memtrack_loader_find();
    return address - memtrack_loader_start < memtrack_loader_size;
}
/* How many frames to capture for an allocation called from return_address. */
static inline int memtrack_depth_for(uintptr_t return_address) {
    return memtrack_in_loader(return_address) ? MEMTRACK_MAX_DEPTH : memtrack_config.depth;
}

/* A stack cut off at MEM_DEPTH that went through the loader (a library's constructor running
 * inside dlopen) is taken again at full depth, so that it reaches the program's dlopen call. */
static inline int memtrack_stack_needs_more(const struct memtrack_stack *stack) {
    if (MEMTRACK_LIKELY(stack->depth < (uint32_t)memtrack_config.depth) || stack->depth >= MEMTRACK_MAX_DEPTH)
        return 0;
    for (uint32_t i = 0; i < stack->depth; i++)
        if (stack->frames[i] - memtrack_loader_start < memtrack_loader_size) return 1;
    return 0;
}

#pragma GCC visibility pop

#endif
