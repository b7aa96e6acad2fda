/* stacks.h: call stacks interned once per process in the `stacks` file (stacks.c).
 * Layer: records. */
#ifndef MEMTRACK_STACKS_H
#define MEMTRACK_STACKS_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* The stack's id in this process's stacks file, its line written first if it is new. 0 when
 * the line could not be written (*error says why). Lock-free; safe in a signal handler. */
uint32_t memtrack_stack_id(const struct memtrack_stack *stack, int *error);
/* The same for a block with a memtrack.h location (source != 0): the id carries it. */
uint32_t memtrack_stack_id_at(const struct memtrack_stack *stack, uint32_t source, uint32_t line, int *error);
/* The location stack `id` was interned with; returns 0 (and source 0) when none. */
int memtrack_stack_location(uint32_t id, uint32_t *source, uint32_t *line);
void memtrack_stacks_reset(void);
/* The innermost frame of stack `id` (kept in memory for the leak check), 0 when unknown. */
uintptr_t memtrack_stack_first_frame(uint32_t id);
void memtrack_stacks_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
/* Creates the stacks file with its header (with the run directory). */
void memtrack_create_stacks_file(void);
/* Stack `id` from the stacks file in `directory` (the run directory). Returns 1 if found. */
int memtrack_stacks_read_line(int directory, uint64_t id, struct memtrack_stack *stack);

#pragma GCC visibility pop

#endif
