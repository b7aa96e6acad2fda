/* counters.h: the hot half of counters.c, inline in the entry points. Layout and design are
 * described in counters.c. A thread with a slot of its own updates it with plain adds (one
 * writer per slot; the reader is memdir, in another process, summing whole words); the first
 * call of a thread, and threads beyond SLOT_COUNT, take counters.c's slow path. Inlining, plain
 * adds and reading the chunk header took the counters from 110 to 51 instructions per
 * malloc/free pair (callgrind on churn 200000: +2.7 %, from +5.5 %; the catalog's Long-running programs).
 * Layer: state. */
#ifndef MEMTRACK_COUNTERS_H
#define MEMTRACK_COUNTERS_H

#include "base.h"
#include "shadow.h"

#pragma GCC visibility push(hidden)

#define MEMTRACK_COUNTER_HEADER_WORDS (4096 / 8)
#define MEMTRACK_COUNTER_SLOTS 128          /* threads with a slot of their own */
#define MEMTRACK_COUNTER_SLOT_WORDS 128     /* 1 KiB per slot: whole cache lines, never shared */
#define MEMTRACK_COUNTER_CALL_WORDS 16      /* calls[via], via < 16 */
#define MEMTRACK_COUNTER_PUBLISH (64 * 1024) /* error bound of the peak, per thread */
enum {
    MEMTRACK_SLOT_CALLS = 0,
    MEMTRACK_SLOT_BYTES = MEMTRACK_COUNTER_CALL_WORDS,
    MEMTRACK_SLOT_HEAP_DELTA,
    MEMTRACK_SLOT_LIVE_BLOCKS,
    MEMTRACK_SLOT_DELTA_HIGH,
    MEMTRACK_SLOT_HISTOGRAM = 32,
};

/* Hidden: read straight from the library's data, not through the GOT (one load, not two). */
#define MEMTRACK_HIDDEN __attribute__((visibility("hidden")))
extern MEMTRACK_HIDDEN uint64_t *memtrack_counter_area;              /* header, then the slots */
/* Word offset of this thread's own slot in the area; 0 until assigned, and for threads that
 * share the overflow slot: both take the slow path. */
extern MEMTRACK_HIDDEN MEMTRACK_THREAD_LOCAL size_t memtrack_counter_slot_offset;
extern MEMTRACK_HIDDEN int memtrack_chunk_headers_readable;          /* see memtrack_usable_size */

void memtrack_counters_allocated_slow(int via, void *pointer, size_t size);
void memtrack_counters_freed_slow(int via, void *pointer, int state);
void memtrack_counters_publish(uint64_t *slot);
/* Maps the counters file in the run directory (directory: open for the call). */
void memtrack_counters_open(int directory);
/* Whether glibc's chunk headers give the usable size (memtrack_usable_size), checked at start. */
void memtrack_counters_probe_chunk_headers(void);

/* What malloc_usable_size(pointer) returns for a live block. With glibc's allocator (checked
 * once at start, by comparing on probe blocks) it is read from the chunk's size word: a
 * call into glibc costs 13 instructions, this 4, on every allocation and free. */
static inline size_t memtrack_usable_size(void *pointer) {
    if (MEMTRACK_LIKELY(memtrack_chunk_headers_readable)) {
        size_t size_word = ((const size_t *)pointer)[-1];   /* size | NON_MAIN | MMAPPED (2) | PREV_INUSE */
        return (size_word & ~(size_t)7) - 8 - ((size_word & 2) << 2);   /* mmapped: 16 bytes of header */
    }
    return memtrack_next.malloc_usable_size ? memtrack_next.malloc_usable_size(pointer) : 0;
}

static inline uint64_t *memtrack_own_counter_slot(void) {
    size_t offset = memtrack_counter_slot_offset;
    if (MEMTRACK_UNLIKELY(!offset)) return NULL;
    return __atomic_load_n(&memtrack_counter_area, __ATOMIC_RELAXED) + offset;
}

static inline int memtrack_size_bucket(uint64_t size) { return size ? 64 - __builtin_clzll(size) : 0; }

/* A recorded allocation (pointer non-NULL) of `size` requested bytes through `via`. */
static inline void memtrack_counters_allocated(int via, void *pointer, size_t size) {
    uint64_t *slot = memtrack_own_counter_slot();
    if (MEMTRACK_UNLIKELY(!slot)) {   /* a thread's first count, the overflow slot, or MEM_COUNTERS=0 */
        if (memtrack_config.counters) memtrack_counters_allocated_slow(via, pointer, size);
        return;
    }
    slot[MEMTRACK_SLOT_CALLS + via]++;
    slot[MEMTRACK_SLOT_BYTES] += size;
    slot[MEMTRACK_SLOT_HISTOGRAM + memtrack_size_bucket(size)]++;
    slot[MEMTRACK_SLOT_LIVE_BLOCKS]++;
    int64_t delta = (int64_t)(slot[MEMTRACK_SLOT_HEAP_DELTA] += memtrack_usable_size(pointer));
    if (delta > (int64_t)slot[MEMTRACK_SLOT_DELTA_HIGH]) {
        slot[MEMTRACK_SLOT_DELTA_HIGH] = (uint64_t)delta;
        if (MEMTRACK_UNLIKELY(delta >= MEMTRACK_COUNTER_PUBLISH)) memtrack_counters_publish(slot);
    }
}

/* A free of `pointer` through `via`, whose index state was `state` (only LIVE lowers the heap). */
static inline void memtrack_counters_freed(int via, void *pointer, int state) {
    uint64_t *slot = memtrack_own_counter_slot();
    if (MEMTRACK_UNLIKELY(!slot)) {
        if (memtrack_config.counters) memtrack_counters_freed_slow(via, pointer, state);
        return;
    }
    /* realloc's release of the old block is part of the realloc call, counted once. */
    if (via == MEMTRACK_VIA_FREE || via == MEMTRACK_VIA_CFREE) slot[MEMTRACK_SLOT_CALLS + via]++;
    if (state != MEMTRACK_LIVE) return;
    slot[MEMTRACK_SLOT_LIVE_BLOCKS]--;
    int64_t delta = (int64_t)(slot[MEMTRACK_SLOT_HEAP_DELTA] -= memtrack_usable_size(pointer));
    if (MEMTRACK_UNLIKELY(delta <= -MEMTRACK_COUNTER_PUBLISH)) memtrack_counters_publish(slot);
}

#pragma GCC visibility pop

#endif
