/* cxx.h: the markers an operator new or delete wrapper leaves for the allocation entry points (cxx.c). Layer: api. */
#ifndef MEMTRACK_CXX_H
#define MEMTRACK_CXX_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Set by an operator new wrapper around its call of the next operator new; the first
 * allocation entry point reached takes it (success or failure) and, on success, records the
 * block with the wrapper's stack and via. */
struct memtrack_cxx_allocation {
    uint8_t via;
    uint64_t size;          /* what the program asked for */
    void *claimed;          /* the block the entry point recorded */
    struct memtrack_stack stack;
};
extern MEMTRACK_THREAD_LOCAL struct memtrack_cxx_allocation *memtrack_cxx_allocation;

/* Set by an operator delete wrapper around its call of the next operator delete; free takes
 * it when the pointer matches. */
struct memtrack_cxx_deallocation {
    void *pointer;
    uint8_t via;
    uint8_t family;         /* what a matching allocation was: new or new[] */
    uint64_t size;          /* a sized delete's size; 0 when unsized */
    uint64_t alignment;     /* an aligned delete's alignment; 0 when none */
    struct memtrack_stack stack;   /* depth 0: free captures its own */
};
extern MEMTRACK_THREAD_LOCAL struct memtrack_cxx_deallocation *memtrack_cxx_deallocation;

#pragma GCC visibility pop

#endif
