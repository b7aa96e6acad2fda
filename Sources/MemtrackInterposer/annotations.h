/* annotations.h: what the program tells the tracker: pause, ignore, root regions, locations (annotations.c). Layer: state. */
#ifndef MEMTRACK_ANNOTATIONS_H
#define MEMTRACK_ANNOTATIONS_H

#include "base.h"

#pragma GCC visibility push(hidden)

/* Non-zero when this thread is paused or has noted a source location; with the global
 * memtrack_annotations_active, the allocation path's only cost when nothing is annotated. */
extern MEMTRACK_THREAD_LOCAL int memtrack_thread_annotations;
extern atomic_int memtrack_annotations_active;
/* For a new block: picks up the noted source location; returns 1 if the block must not be
 * recorded (this thread is paused, or MEM_TRACE_AFTER has not passed yet). */
int memtrack_annotate_allocation(struct memtrack_block *block, void *pointer, size_t size);
/* A block that is not recorded (LIVE_INTERNAL) is freed or moved: it is no longer a root. */
void memtrack_forget_paused_block(uintptr_t address);
void memtrack_start_tracing_after(uint32_t milliseconds);
/* What api.c's exported functions do (memtrack.h, and LSan's names for them). */
void memtrack_annotations_pause(void);
void memtrack_annotations_resume(void);
void memtrack_annotations_note_location(const char *file, int line, const char *function);
int memtrack_annotations_ignore(const void *pointer);
void memtrack_annotations_register_root_region(const void *start, size_t size);
void memtrack_annotations_unregister_root_region(const void *start, size_t size);
/* For the leak check: blocks the program asked us to ignore (memtrack_ignore,
 * __lsan_ignore_object), still live; and the registered root regions. */
int memtrack_is_ignored(uintptr_t address);
void memtrack_for_each_ignored(void (*visit)(uintptr_t start, size_t size, void *context), void *context);
void memtrack_for_each_root_region(void (*visit)(uintptr_t start, size_t size, void *context), void *context);

void memtrack_annotations_fork_prepare(void);
void memtrack_annotations_fork_release(void);

#pragma GCC visibility pop

#endif
