/* entry.c: the allocation entry points the program calls. Each one does three things: make
 * sure the next allocator is known, call it, and tell the tracker. The stack is captured here,
 * in the entry point itself, so that its first frame is the program's call site.
 *
 * A thread that is already inside the tracker (memtrack_busy) gets the next allocator
 * directly and its block is marked as the tracker's own: never recorded, freed quietly.
 */
#include "internal.h"
#include "unwind.h"

#include <errno.h>
#include <string.h>

// ---- Shared paths ---------------------------------------------------------------------------
static void *internal_block(void *pointer) {
    if (pointer) memtrack_shadow_exchange(pointer, MEMTRACK_LIVE_INTERNAL);
    return pointer;
}

static void track_allocation(void *pointer, size_t size, int via, struct memtrack_block *block) {
    int previous = memtrack_shadow_exchange(pointer, MEMTRACK_LIVE);
    if (MEMTRACK_UNLIKELY(previous == MEMTRACK_UNTRACKED)) {
        /* The index could not grow (ulimit -v): its free will be passed on unchecked. */
        memtrack_note_failure("indexing a live block", ENOMEM, &memtrack_unrecorded_blocks);
        return;
    }
    /* LIVE here means the block was freed by a path we do not see (another library calling
     * the allocator's internals): its record is stale. */
    if (previous == MEMTRACK_LIVE) memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    block->address = (uintptr_t)pointer;
    block->size = size;
    block->sequence = atomic_fetch_add_explicit(&memtrack_sequence, 1, memory_order_relaxed) + 1;
    block->milliseconds = memtrack_milliseconds_now();
    block->thread = memtrack_thread_id();
    block->via = (uint8_t)via;
    memtrack_pending_add(block);
}

static void report_bad_free(void *pointer, int state, int via, const struct memtrack_stack *stack) {
    struct memtrack_bad_free event;
    memset(&event, 0, sizeof event);
    event.address = (uintptr_t)pointer;
    event.double_free = state == MEMTRACK_FREED;
    event.sequence = atomic_fetch_add(&memtrack_sequence, 1) + 1;
    event.milliseconds = memtrack_milliseconds_now();
    event.thread = memtrack_thread_id();
    event.via = (uint8_t)via;
    event.stack = *stack;
    if (event.double_free)
        memtrack_quarantine_find(event.address, &event.size, &event.alloc_stack, &event.free_stack);
    memtrack_write_bad_free(&event);
}

/* The state a free may act on: LIVE or LIVE_INTERNAL. Pointers that no allocator could have
 * returned (not 8-byte aligned) never reach the index. */
static int release_state(void *pointer) {
    if ((uintptr_t)pointer & 7) return MEMTRACK_NEVER;
    return memtrack_shadow_release(pointer);
}

/* A free made while the tracker itself is running (libc working on our behalf). */
static void internal_free(void *pointer) {
    int state = release_state(pointer);
    if (state == MEMTRACK_FREED) return;   /* never hand the heap a double free */
    if (state == MEMTRACK_UNTRACKED) { memtrack_next.free(pointer); return; }
    if (state == MEMTRACK_LIVE) memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    memtrack_next.free(pointer);
}

/* A legitimate free of a live block: forget its record, then quarantine or release it. */
static void release_block(void *pointer, int state, const struct memtrack_stack *free_stack) {
    if (state == MEMTRACK_LIVE_INTERNAL || state == MEMTRACK_UNTRACKED) { memtrack_next.free(pointer); return; }
    if (!memtrack_config.quarantine_bytes) {
        memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
        memtrack_next.free(pointer);
        return;
    }
    struct memtrack_stack alloc_stack;
    uint64_t size = 0;
    alloc_stack.depth = 0;
    memtrack_pending_remove((uintptr_t)pointer, &alloc_stack, &size);
    memtrack_quarantine_put(pointer, size, &alloc_stack, free_stack);
}

static inline int ensure_ready(void) {
    if (MEMTRACK_LIKELY(atomic_load_explicit(&memtrack_ready, memory_order_acquire))) return 1;
    if (memtrack_busy) return 0;   /* re-entered from dlsym while bootstrapping */
    memtrack_bootstrap();
    return 1;
}

/* Every allocating entry point ends the same way; a macro keeps the stack capture in the
 * entry point's own frame (a helper function would add itself to the stack). */
#define TRACK_RESULT(pointer, size, via)                                                   \
    do {                                                                                   \
        if (pointer) {                                                                     \
            struct memtrack_block block;                                                   \
            block.stack.depth = (uint32_t)memtrack_unwind(block.stack.frames,              \
                                                          memtrack_config.depth);          \
            track_allocation(pointer, size, via, &block);                                  \
        }                                                                                  \
    } while (0)

// ---- malloc and friends ---------------------------------------------------------------------
MEMTRACK_EXPORT void *malloc(size_t size) {
    if (!ensure_ready()) return memtrack_arena_allocate(size);
    if (memtrack_busy) return internal_block(memtrack_next.malloc(size));
    int saved_errno = errno;
    memtrack_busy = 1;
    void *pointer = memtrack_next.malloc(size);
    int result_errno = errno;
    TRACK_RESULT(pointer, size, MEMTRACK_VIA_MALLOC);
    memtrack_busy = 0;
    errno = pointer ? saved_errno : result_errno;
    return pointer;
}

MEMTRACK_EXPORT void *calloc(size_t count, size_t size) {
    if (!ensure_ready()) return memtrack_arena_allocate(count * size);   /* dlsym's small requests */
    if (memtrack_busy) return internal_block(memtrack_next.calloc(count, size));
    int saved_errno = errno;
    memtrack_busy = 1;
    void *pointer = memtrack_next.calloc(count, size);
    int result_errno = errno;
    TRACK_RESULT(pointer, count * size, MEMTRACK_VIA_CALLOC);
    memtrack_busy = 0;
    errno = pointer ? saved_errno : result_errno;
    return pointer;
}

#define ALIGNED_ENTRY(name, via, parameters, arguments, size)                              \
    MEMTRACK_EXPORT void *name parameters {                                                \
        if (!ensure_ready()) return NULL;                                                  \
        if (memtrack_busy) return internal_block(memtrack_next.name arguments);            \
        int saved_errno = errno;                                                           \
        memtrack_busy = 1;                                                                 \
        void *pointer = memtrack_next.name arguments;                                      \
        int result_errno = errno;                                                          \
        TRACK_RESULT(pointer, size, via);                                                  \
        memtrack_busy = 0;                                                                 \
        errno = pointer ? saved_errno : result_errno;                                      \
        return pointer;                                                                    \
    }

ALIGNED_ENTRY(aligned_alloc, MEMTRACK_VIA_ALIGNED_ALLOC, (size_t alignment, size_t size), (alignment, size), size)
ALIGNED_ENTRY(memalign, MEMTRACK_VIA_MEMALIGN, (size_t alignment, size_t size), (alignment, size), size)
ALIGNED_ENTRY(valloc, MEMTRACK_VIA_VALLOC, (size_t size), (size), size)
ALIGNED_ENTRY(pvalloc, MEMTRACK_VIA_PVALLOC, (size_t size), (size), size)

MEMTRACK_EXPORT int posix_memalign(void **result, size_t alignment, size_t size) {
    if (!ensure_ready()) return ENOMEM;
    if (memtrack_busy) {
        int error = memtrack_next.posix_memalign(result, alignment, size);
        if (!error) internal_block(*result);
        return error;
    }
    int saved_errno = errno;
    memtrack_busy = 1;
    void *pointer = NULL;
    int error = memtrack_next.posix_memalign(&pointer, alignment, size);
    if (!error) {
        TRACK_RESULT(pointer, size, MEMTRACK_VIA_POSIX_MEMALIGN);
        *result = pointer;
    }
    memtrack_busy = 0;
    errno = saved_errno;
    return error;
}

// ---- free -----------------------------------------------------------------------------------
#define FREE_ENTRY(name, via)                                                              \
    MEMTRACK_EXPORT void name(void *pointer) {                                             \
        if (!pointer || memtrack_arena_owns(pointer)) return;                              \
        if (!ensure_ready()) return;                                                       \
        int saved_errno = errno;                                                           \
        if (memtrack_busy) { internal_free(pointer); errno = saved_errno; return; }        \
        memtrack_busy = 1;                                                                 \
        int state = release_state(pointer);                                                \
        int bad = state == MEMTRACK_NEVER || state == MEMTRACK_FREED;                      \
        struct memtrack_stack stack;                                                       \
        stack.depth = 0;                                                                   \
        if (bad || (state == MEMTRACK_LIVE && memtrack_config.quarantine_bytes))           \
            stack.depth = (uint32_t)memtrack_unwind(stack.frames, memtrack_config.depth);  \
        if (bad) report_bad_free(pointer, state, via, &stack);                             \
        else release_block(pointer, state, &stack);                                        \
        memtrack_busy = 0;                                                                 \
        errno = saved_errno;                                                               \
    }

FREE_ENTRY(free, MEMTRACK_VIA_FREE)
FREE_ENTRY(cfree, MEMTRACK_VIA_CFREE)

// ---- realloc --------------------------------------------------------------------------------
/* realloc cannot go through the quarantine: when the block moves, the next allocator frees the
 * old address itself. The old record goes before the call, because once the allocator has
 * freed the old address another thread may be handed it and record it anew. */
static void *reallocate(void *pointer, size_t size, int via, struct memtrack_stack *stack) {
    if (!pointer) {   /* realloc(NULL, n) is malloc(n), recorded as realloc */
        void *result = memtrack_next.realloc(NULL, size);
        if (result) {
            struct memtrack_block block;
            block.stack = *stack;
            int result_errno = errno;
            track_allocation(result, size, via, &block);
            errno = result_errno;
        }
        return result;
    }
    int state = release_state(pointer);
    if (state == MEMTRACK_UNTRACKED) {   /* not known either way: as untraced */
        void *result = memtrack_next.realloc(pointer, size);
        if (result) {
            struct memtrack_block block;
            block.stack = *stack;
            int result_errno = errno;
            track_allocation(result, size, via, &block);
            errno = result_errno;
        }
        return result;
    }
    if (state == MEMTRACK_NEVER || state == MEMTRACK_FREED) {
        report_bad_free(pointer, state, via, stack);
        errno = ENOMEM;   /* as valgrind: the bad pointer is left alone and the call fails */
        return NULL;
    }
    struct memtrack_stack old_stack;
    uint64_t old_size = 0;
    old_stack.depth = 0;
    if (state == MEMTRACK_LIVE) memtrack_pending_remove((uintptr_t)pointer, &old_stack, &old_size);
    void *result = memtrack_next.realloc(pointer, size);
    if (!result) {
        if (size == 0) return NULL;   /* glibc's realloc(p, 0): p is freed, NULL returned */
        /* Failed: the old block is still the program's. Put its record back. */
        memtrack_shadow_exchange(pointer, state);
        if (state == MEMTRACK_LIVE) {
            struct memtrack_block block;
            block.stack = old_stack.depth ? old_stack : *stack;
            block.size = old_stack.depth ? old_size : size;
            int saved_errno = errno;
            track_allocation(pointer, (size_t)block.size, via, &block);
            errno = saved_errno;
        }
        return NULL;
    }
    if (state == MEMTRACK_LIVE_INTERNAL) return internal_block(result);
    struct memtrack_block block;
    block.stack = *stack;
    track_allocation(result, size, via, &block);
    return result;
}

/* realloc and reallocarray differ only in how they get the size; the stack must be captured
 * in the entry point itself, hence a macro. */
#define REALLOC_ENTRY_BODY(pointer, size, via)                                             \
    if (!ensure_ready()) return memtrack_arena_allocate(size);                             \
    if (memtrack_arena_owns(pointer)) {   /* an arena block cannot be resized in place */   \
        void *moved = malloc(size);                                                        \
        if (moved) memcpy(moved, pointer, size);   /* arena blocks are followed by arena bytes */ \
        return moved;                                                                      \
    }                                                                                      \
    if (memtrack_busy) return internal_reallocate(pointer, size);                          \
    int saved_errno = errno;                                                               \
    memtrack_busy = 1;                                                                     \
    struct memtrack_stack stack;                                                           \
    stack.depth = (uint32_t)memtrack_unwind(stack.frames, memtrack_config.depth);          \
    void *result = reallocate(pointer, size, via, &stack);                                 \
    int result_errno = errno;                                                              \
    memtrack_busy = 0;                                                                     \
    errno = result || (pointer && !size) ? saved_errno : result_errno;                     \
    return result;

static void *internal_reallocate(void *pointer, size_t size) {
    if (!pointer) return internal_block(memtrack_next.malloc(size));
    int state = release_state(pointer);
    if (state == MEMTRACK_LIVE) memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    void *result = memtrack_next.realloc(pointer, size);
    if (!result && size && state != MEMTRACK_UNTRACKED) memtrack_shadow_exchange(pointer, state);
    return internal_block(result);
}

MEMTRACK_EXPORT void *realloc(void *pointer, size_t size) {
    REALLOC_ENTRY_BODY(pointer, size, MEMTRACK_VIA_REALLOC)
}

MEMTRACK_EXPORT void *reallocarray(void *pointer, size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) { errno = ENOMEM; return NULL; }
    REALLOC_ENTRY_BODY(pointer, bytes, MEMTRACK_VIA_REALLOCARRAY)
}
