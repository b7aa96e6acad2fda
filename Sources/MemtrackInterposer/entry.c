/* entry.c: the allocation entry points the program calls. Each one does three things: make
 * sure the next allocator is known, call it, and tell the tracker. The stack is captured here,
 * in the entry point itself, so that its first frame is the program's call site.
 *
 * A thread that is already inside the tracker (memtrack_busy) gets the next allocator
 * directly and its block is marked as the tracker's own: never recorded, freed quietly.
 *
 * Layer: api: the allocation entry points, on everything below.
 */
#include "annotations.h"
#include "bootstrap.h"
#include "cxx.h"
#include "family.h"
#include "failure.h"
#include "leakcheck.h"
#include "loader.h"
#include "pending.h"
#include "process.h"
#include "quarantine.h"
#include "records.h"
#include "shadow.h"
#include "sys.h"
#include "counters.h"
#include "unwind.h"

#include <errno.h>
#include <string.h>

// ---- Shared paths ---------------------------------------------------------------------------
static void *internal_block(void *pointer) {
    if (pointer) memtrack_shadow_exchange(pointer, MEMTRACK_LIVE_INTERNAL);
    return pointer;
}

static inline __attribute__((always_inline)) void track_allocation(void *pointer, size_t size, int via, struct memtrack_block *block) {
    block->source = 0;
    if (MEMTRACK_UNLIKELY(memtrack_thread_annotations |
                          atomic_load_explicit(&memtrack_annotations_active, memory_order_relaxed)) &&
        memtrack_annotate_allocation(block, pointer, size)) {   /* paused or not tracing yet: never recorded */
        if (memtrack_shadow_exchange(pointer, MEMTRACK_LIVE_INTERNAL) == MEMTRACK_LIVE)
            memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
        return;
    }
    int previous = memtrack_shadow_exchange(pointer, MEMTRACK_LIVE);
    if (MEMTRACK_UNLIKELY(previous == MEMTRACK_UNTRACKED)) {
        /* The index could not grow (ulimit -v): its free will be passed on unchecked. */
        memtrack_note_failure("indexing a live block", ENOMEM, &memtrack_unrecorded_blocks);
        return;
    }
    /* LIVE here means the block was freed by a path we do not see (another library calling
     * the allocator's internals): its record is stale. */
    if (previous == MEMTRACK_LIVE) memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    memtrack_family_set(pointer, block->family);   /* also clears a family left by an unseen free */
    block->address = (uintptr_t)pointer;
    block->size = size;
    block->sequence = atomic_fetch_add_explicit(&memtrack_sequence, 1, memory_order_relaxed) + 1;
    block->milliseconds = memtrack_milliseconds_now();
    block->thread = memtrack_thread_id();
    block->via = (uint8_t)via;
    if (MEMTRACK_UNLIKELY(block->stack.depth && memtrack_in_loader(block->stack.frames[0])))
        memtrack_note_loader_block(block->address);
    memtrack_counters_allocated(via, pointer, size);
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
    uint32_t alloc_stack_id = 0;
    /* A block whose record had been written left the quarantine nothing of its allocation. */
    if (event.double_free &&
        memtrack_quarantine_find(event.address, &event.size, &event.alloc_stack, &alloc_stack_id, &event.free_stack) &&
        !event.alloc_stack.depth && !alloc_stack_id)
        memtrack_pending_removed_record(event.address, &event.size, &alloc_stack_id);
    if (alloc_stack_id && !event.alloc_stack.depth) memtrack_read_stack(alloc_stack_id, &event.alloc_stack);
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
    if (state == MEMTRACK_LIVE_INTERNAL) memtrack_forget_paused_block((uintptr_t)pointer);
    if (state == MEMTRACK_UNTRACKED) { memtrack_next.free(pointer); return; }
    if (state == MEMTRACK_LIVE) {
        memtrack_family_take(pointer);
        memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    }
    memtrack_next.free(pointer);
}

/* A legitimate free of a live block: forget its record, then quarantine or release it. */
static inline __attribute__((always_inline)) void release_block(void *pointer, int state, const struct memtrack_stack *free_stack) {
    if (state == MEMTRACK_LIVE_INTERNAL || state == MEMTRACK_UNTRACKED) {
        if (state == MEMTRACK_LIVE_INTERNAL) memtrack_forget_paused_block((uintptr_t)pointer);
        memtrack_next.free(pointer);
        return;
    }
    if (!memtrack_config.quarantine_bytes) {
        memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
        memtrack_next.free(pointer);
        return;
    }
    /* A young block's size and stack come with it; an older one's are the writer's to drop, and
     * a double free's report finds them where the writer noted them (pending.c). */
    struct memtrack_stack alloc_stack;
    uint64_t size = 0;
    alloc_stack.depth = 0;
    memtrack_pending_remove((uintptr_t)pointer, &alloc_stack, &size);
    memtrack_quarantine_put(pointer, size, &alloc_stack, 0, free_stack);
}

static inline int ensure_ready(void) {
    if (MEMTRACK_LIKELY(atomic_load_explicit(&memtrack_ready, memory_order_acquire))) {
        if (MEMTRACK_UNLIKELY(!*memtrack_fork_sentinel) && !memtrack_busy) memtrack_process_forked_unseen();
        return 1;
    }
    if (memtrack_busy) return 0;   /* re-entered from dlsym while bootstrapping */
    memtrack_bootstrap();
    return 1;
}

/* Every allocating entry point ends the same way; a macro keeps the stack capture in the
 * entry point's own frame (a helper function would add itself to the stack). */
#define TRACK_RESULT(pointer_, size_, via_)                                                \
    do {                                                                                   \
        struct memtrack_cxx_allocation *cxx_ = take_cxx_allocation();                      \
        if (pointer_) {                                                                    \
            struct memtrack_block block;                                                   \
            if (MEMTRACK_UNLIKELY(cxx_ != NULL)) {                                         \
                claim_cxx_allocation(cxx_, pointer_, &block);                              \
                track_allocation(pointer_, (size_t)cxx_->size, block.via, &block);         \
            } else {                                                                       \
                block.family = MEMTRACK_FAMILY_MALLOC;                                     \
                block.stack.depth = (uint32_t)memtrack_unwind(block.stack.frames,          \
                    memtrack_depth_for((uintptr_t)__builtin_return_address(0)));           \
                if (MEMTRACK_UNLIKELY(memtrack_stack_needs_more(&block.stack)))            \
                    block.stack.depth = (uint32_t)memtrack_unwind(block.stack.frames,      \
                                                                  MEMTRACK_MAX_DEPTH);     \
                track_allocation(pointer_, size_, via_, &block);                           \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* An operator new wrapper (cxx.c) is waiting on this allocation: it is taken on success and
 * on failure alike, so that a bad_alloc thrown past the wrapper leaves no stale marker. */
static inline struct memtrack_cxx_allocation *take_cxx_allocation(void) {
    struct memtrack_cxx_allocation *cxx = memtrack_cxx_allocation;
    if (MEMTRACK_UNLIKELY(cxx != NULL)) memtrack_cxx_allocation = NULL;
    return cxx;
}

/* The block is recorded as the operator's, with the stack the wrapper took at the call site. */
static void claim_cxx_allocation(struct memtrack_cxx_allocation *cxx, void *pointer, struct memtrack_block *block) {
    cxx->claimed = pointer;
    block->stack.depth = cxx->stack.depth;   /* only the frames taken: the struct is 264 bytes */
    memcpy(block->stack.frames, cxx->stack.frames, cxx->stack.depth * sizeof(uintptr_t));
    block->via = cxx->via;
    block->family = cxx->via == MEMTRACK_VIA_NEW || cxx->via == MEMTRACK_VIA_NEW_ALIGNED
        ? MEMTRACK_FAMILY_NEW : MEMTRACK_FAMILY_ARRAY;
}

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
    if (!ensure_ready()) {   /* dlsym's small requests */
        size_t bytes;
        if (__builtin_mul_overflow(count, size, &bytes)) { errno = ENOMEM; return NULL; }
        return memtrack_arena_allocate(bytes);
    }
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
    } else {
        take_cxx_allocation();
    }
    memtrack_busy = 0;
    errno = saved_errno;
    return error;
}

// ---- free -----------------------------------------------------------------------------------
/* A free reached from an operator delete wrapper (cxx.c) carries the delete's via, expected
 * family, size and stack. */
#define FREE_ENTRY(name, via_)                                                             \
    MEMTRACK_EXPORT void name(void *pointer) {                                             \
        if (!pointer || memtrack_arena_owns(pointer)) return;                              \
        if (!ensure_ready()) return;                                                       \
        int saved_errno = errno;                                                           \
        if (memtrack_busy) { internal_free(pointer); errno = saved_errno; return; }        \
        memtrack_busy = 1;                                                                 \
        const struct memtrack_cxx_deallocation *cxx = take_cxx_deallocation(pointer);      \
        int state = release_state(pointer);                                                \
        memtrack_counters_freed(via_, pointer, state);                                      \
        int bad = state == MEMTRACK_NEVER || state == MEMTRACK_FREED;                      \
        int family = state == MEMTRACK_LIVE ? memtrack_family_take(pointer) : MEMTRACK_FAMILY_MALLOC; \
        int expected = cxx ? cxx->family : MEMTRACK_FAMILY_MALLOC;                         \
        int checked = state == MEMTRACK_LIVE && (family != expected || (cxx && cxx->size)); \
        if (checked) memtrack_pending_prefetch_free((uintptr_t)pointer);                  \
        struct memtrack_stack own_stack;                                                   \
        const struct memtrack_stack *stack = &own_stack;                                   \
        own_stack.depth = 0;                                                               \
        if (cxx && cxx->stack.depth) stack = &cxx->stack;                                  \
        else if (bad || checked || (state == MEMTRACK_LIVE && memtrack_config.quarantine_bytes)) \
            own_stack.depth = (uint32_t)memtrack_unwind(own_stack.frames, memtrack_config.depth); \
        int event_via = cxx ? cxx->via : via_;                                             \
        if (bad) report_bad_free(pointer, state, event_via, stack);                        \
        else if (checked) release_checked(pointer, family, event_via, cxx, stack);         \
        else release_block(pointer, state, stack);                                         \
        memtrack_busy = 0;                                                                 \
        errno = saved_errno;                                                               \
    }

static inline const struct memtrack_cxx_deallocation *take_cxx_deallocation(void *pointer) {
    struct memtrack_cxx_deallocation *cxx = memtrack_cxx_deallocation;
    if (MEMTRACK_LIKELY(cxx == NULL) || cxx->pointer != pointer) return NULL;
    memtrack_cxx_deallocation = NULL;
    return cxx;
}

/* Whether a sized delete's size matches the allocation's. Aligned new rounds nothing we
 * record (the wrapper records what the program asked for), so sizes compare exactly. */
static int same_size(uint64_t allocated, uint64_t freed) { return allocated == freed; }

/* A live block whose deallocation does not match its allocation (free of a new'd block,
 * delete of a malloc'd one, delete[] of a new'd one...), or any sized delete. Reported as
 * valgrind does, then freed normally: the program goes on exactly as untraced. */
static void release_checked(void *pointer, int family, int via, const struct memtrack_cxx_deallocation *cxx,
                            const struct memtrack_stack *free_stack) {
    struct memtrack_bad_free event;
    memset(&event, 0, sizeof event);
    int expected = cxx ? cxx->family : MEMTRACK_FAMILY_MALLOC;
    /* The size the block was allocated with: from the young table or the backlog, in memory;
     * from its file only for a mismatch (a settled block's stack is only there, and the
     * removal below queues the file for unlinking). A sized delete touches no file unless it
     * is reported: most are of the right size. */
    const uint64_t unknown = UINT64_MAX;
    uint64_t allocated = unknown;
    uint32_t stack_id;
    struct memtrack_record_fields record;
    if (family != expected && memtrack_read_block_record((uintptr_t)pointer, &record, &event.alloc_stack))
        allocated = record.size;
    memtrack_pending_remove_noting_stack((uintptr_t)pointer, &event.alloc_stack, &allocated, &stack_id);
    if (allocated != unknown) event.size = allocated;
    if (family != expected) {
        event.kind = "mismatched-free";
    } else if (allocated != unknown ? !same_size(allocated, cxx->size)
                                    : memtrack_next.malloc_usable_size && cxx->size > memtrack_next.malloc_usable_size(pointer)) {
        event.kind = "mismatched-size";
        event.freed_size = cxx->size;
    }
    if (event.kind && stack_id && !event.alloc_stack.depth) memtrack_read_stack(stack_id, &event.alloc_stack);
    if (event.kind) {
        event.address = (uintptr_t)pointer;
        event.double_free = 0;
        event.family = (uint8_t)family;
        event.sequence = atomic_fetch_add(&memtrack_sequence, 1) + 1;
        event.milliseconds = memtrack_milliseconds_now();
        event.thread = memtrack_thread_id();
        event.via = (uint8_t)via;
        event.stack = *free_stack;
        memtrack_write_bad_free(&event);
    }
    if (memtrack_config.quarantine_bytes) memtrack_quarantine_put(pointer, event.size, &event.alloc_stack, stack_id, free_stack);
    else memtrack_next.free(pointer);
}

FREE_ENTRY(free, MEMTRACK_VIA_FREE)
FREE_ENTRY(cfree, MEMTRACK_VIA_CFREE)

// ---- realloc --------------------------------------------------------------------------------
/* realloc cannot go through the quarantine: when the block moves, the next allocator frees the
 * old address itself. The old record goes before the call, because once the allocator has
 * freed the old address another thread may be handed it and record it anew. */
/* Records what the next allocator's realloc returned, if anything, as a malloc-family block
 * with the realloc's stack, errno left as realloc set it. */
static void *track_reallocated(void *result, size_t size, int via, const struct memtrack_stack *stack) {
    if (result) {
        struct memtrack_block block;
        block.family = MEMTRACK_FAMILY_MALLOC;
        memtrack_copy_stack(&block.stack, stack);
        int result_errno = errno;
        track_allocation(result, size, via, &block);
        errno = result_errno;
    }
    return result;
}

static void *reallocate(void *pointer, size_t size, int via, struct memtrack_stack *stack) {
    /* realloc(NULL, n) is malloc(n), recorded as realloc; an untracked block (the index could
     * not grow) is passed on as untraced. Either way the result is a new malloc-family block. */
    int state = pointer ? release_state(pointer) : MEMTRACK_UNTRACKED;
    if (state == MEMTRACK_UNTRACKED) return track_reallocated(memtrack_next.realloc(pointer, size), size, via, stack);
    memtrack_counters_freed(via, pointer, state);
    if (state == MEMTRACK_NEVER || state == MEMTRACK_FREED) {
        report_bad_free(pointer, state, via, stack);
        errno = ENOMEM;   /* as valgrind: the bad pointer is left alone and the call fails */
        return NULL;
    }
    struct memtrack_stack old_stack;
    uint64_t old_size = 0;
    old_stack.depth = 0;
    if (state == MEMTRACK_LIVE) {
        memtrack_family_take(pointer);   /* the moved or resized block is malloc's from now on */
        memtrack_pending_remove((uintptr_t)pointer, &old_stack, &old_size);
    }
    if (state == MEMTRACK_LIVE_INTERNAL) memtrack_forget_paused_block((uintptr_t)pointer);
    void *result = memtrack_next.realloc(pointer, size);
    if (!result) {
        if (size == 0) return NULL;   /* glibc's realloc(p, 0): p is freed, NULL returned */
        /* Failed: the old block is still the program's. Put its record back. */
        memtrack_shadow_exchange(pointer, state);
        if (state == MEMTRACK_LIVE) {
            struct memtrack_block block;
            block.family = MEMTRACK_FAMILY_MALLOC;
            block.stack = old_stack.depth ? old_stack : *stack;
            block.size = old_stack.depth ? old_size : size;
            int saved_errno = errno;
            track_allocation(pointer, (size_t)block.size, via, &block);
            errno = saved_errno;
        }
        return NULL;
    }
    if (state == MEMTRACK_LIVE_INTERNAL) return internal_block(result);
    return track_reallocated(result, size, via, stack);
}

/* Our own malloc under a hidden name: an arena block (dlsym's, at start-up) moved by realloc
 * becomes a tracked block, without a call through our exported name (whose PLT slot a program
 * defining malloc would take). */
void *memtrack_entry_malloc(size_t) __attribute__((alias("malloc"), visibility("hidden")));

/* realloc and reallocarray differ only in how they get the size; the stack must be captured
 * in the entry point itself, hence a macro. */
#define REALLOC_ENTRY_BODY(pointer, size, via)                                             \
    if (!ensure_ready()) return memtrack_arena_allocate(size);                             \
    if (memtrack_arena_owns(pointer)) {   /* an arena block cannot be resized in place */  \
        void *moved = memtrack_entry_malloc(size);                                         \
        size_t available_ = memtrack_arena_bytes_after(pointer);   /* never past the arena */ \
        if (moved) memcpy(moved, pointer, size < available_ ? size : available_);           \
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
    if (state == MEMTRACK_LIVE_INTERNAL) memtrack_forget_paused_block((uintptr_t)pointer);
    if (state == MEMTRACK_LIVE) {
        memtrack_family_take(pointer);
        memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    }
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
