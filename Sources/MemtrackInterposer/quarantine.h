/* quarantine.h: freed blocks held back from reuse, so stale frees are still caught (quarantine.c). Layer: state. */
#ifndef MEMTRACK_QUARANTINE_H
#define MEMTRACK_QUARANTINE_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Takes ownership of a freed block; releases older blocks to the next allocator's free.
 * alloc_stack_id: the allocation stack's id in the stacks file when alloc_stack is empty (a
 * block that waited in the backlog keeps only that), else 0. */
void memtrack_quarantine_put(void *pointer, uint64_t size, const struct memtrack_stack *alloc_stack,
                             uint32_t alloc_stack_id, const struct memtrack_stack *free_stack);
/* For a bad free: what the quarantine still knows of that address. Returns 1 if found. The
 * allocation stack comes back as frames, or as an id to read from the stacks file. */
int memtrack_quarantine_find(uintptr_t address, uint64_t *size, struct memtrack_stack *alloc_stack,
                             uint32_t *alloc_stack_id, struct memtrack_stack *free_stack);
void memtrack_quarantine_visit(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
void memtrack_quarantine_fork_prepare(void);
void memtrack_quarantine_fork_parent(void);
void memtrack_quarantine_fork_child(void);

#pragma GCC visibility pop

#endif
