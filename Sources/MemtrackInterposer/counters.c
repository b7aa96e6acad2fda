/* counters.c: allocation statistics (libmemusage's numbers) kept in the run directory's
 * `counters` file, mapped MAP_SHARED: calls per entry point, bytes requested, current and peak
 * heap, and a power-of-two size histogram. Nothing here makes a system call after the file is
 * mapped, and the page cache keeps the numbers when the process dies, like the records.
 *
 * No contended cache line on the hot path: every thread takes a slot of its own (1 KiB) and
 * updates it with plain relaxed loads and stores (one writer per slot, so no read-modify-write
 * is needed); the reader sums the slots. Threads beyond SLOT_COUNT share one overflow slot,
 * updated with atomic adds. The heap total is the one number that needs all threads at once:
 * each slot keeps its own unpublished change, and only when that reaches PUBLISH_BYTES either
 * way is it added to the shared total, and the peak raised. So the reader's current heap
 * (shared total + every slot's unpublished change) is exact. Each slot also keeps the highest
 * its change reached since it last published; the peak is the published total plus that mark,
 * exact for one thread and within PUBLISH_BYTES per thread otherwise.
 *
 * Heap bytes are what the allocator reports with malloc_usable_size: the requested size of a
 * block whose record has settled is no longer in memory when it is freed.
 *
 * Layout (little-endian, README "counters"): a 4 KiB header page, then SLOT_COUNT + 1 slots.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define HEADER_BYTES 4096
#define SLOT_COUNT 128                    /* threads with a slot of their own */
#define SLOT_WORDS 128                    /* 1 KiB per slot: whole cache lines, never shared */
#define CALL_WORDS 16                     /* calls[via], via < 16 */
#define BUCKETS 65                        /* bucket b: sizes with bit length b (0 for size 0) */
#define PUBLISH_BYTES (64 * 1024)         /* error bound of the peak, per thread */

/* Header words, after the 32-byte text "memtrack/1 counters\n". */
enum {
    H_SLOT_COUNT = 4, H_SLOT_WORDS, H_SLOTS_OFFSET, H_BUCKETS, H_PUBLISH_BYTES,
    H_HEAP_PUBLISHED, H_HEAP_PEAK, H_PID,
};
/* Slot words. */
enum { S_CALLS = 0, S_BYTES = CALL_WORDS, S_HEAP_DELTA, S_LIVE_BLOCKS, S_DELTA_HIGH, S_HISTOGRAM = 32 };

#define FILE_BYTES (HEADER_BYTES + (SLOT_COUNT + 1) * SLOT_WORDS * 8)

typedef _Atomic uint64_t word;

/* Counts made before the run directory exists (loader, constructors) go here, and are copied
 * into the file when it is mapped. */
static word bootstrap_area[FILE_BYTES / 8] __attribute__((aligned(64)));
static word *_Atomic area = bootstrap_area;
static atomic_int next_slot;
/* 1 + this thread's slot index; 0 until the thread first counts. Survives fork with the one
 * thread the child has, which keeps its slot (the child's file starts at zero). */
static MEMTRACK_THREAD_LOCAL int my_slot;

static inline word *slot_words(word *base, int index) {
    return base + HEADER_BYTES / 8 + (size_t)index * SLOT_WORDS;
}

static inline int slot_index(void) {
    if (MEMTRACK_LIKELY(my_slot)) return my_slot - 1;
    int index = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed);
    if (index >= SLOT_COUNT) index = SLOT_COUNT;   /* the shared overflow slot */
    my_slot = index + 1;
    return index;
}

/* One writer per slot: a plain add. The overflow slot has many: an atomic add. */
static inline void add(word *w, uint64_t value, int shared) {
    if (shared) atomic_fetch_add_explicit(w, value, memory_order_relaxed);
    else atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) + value, memory_order_relaxed);
}

/* Moves this slot's change into the shared total and raises the peak by what the slot's own
 * high-water mark says the heap reached since its last publish (exact with one thread). */
static void publish(word *base, word *slot, int64_t delta, int shared) {
    if (shared) {   /* take exactly what we saw, others may be adding */
        if (!atomic_compare_exchange_strong(&slot[S_HEAP_DELTA], &(uint64_t){(uint64_t)delta}, 0)) return;
    } else {
        atomic_store_explicit(&slot[S_HEAP_DELTA], 0, memory_order_relaxed);
    }
    int64_t high = (int64_t)atomic_exchange_explicit(&slot[S_DELTA_HIGH], 0, memory_order_relaxed);
    uint64_t before = atomic_fetch_add_explicit(&base[H_HEAP_PUBLISHED], (uint64_t)delta, memory_order_relaxed);
    int64_t reached = (int64_t)before + (high > delta ? high : delta);
    uint64_t peak = atomic_load_explicit(&base[H_HEAP_PEAK], memory_order_relaxed);
    while (reached > (int64_t)peak &&
           !atomic_compare_exchange_weak_explicit(&base[H_HEAP_PEAK], &peak, (uint64_t)reached, memory_order_relaxed, memory_order_relaxed)) {
    }
}

static inline void change_heap(word *base, word *slot, int64_t bytes, int shared) {
    word *delta_word = &slot[S_HEAP_DELTA];
    add(delta_word, (uint64_t)bytes, shared);
    int64_t delta = (int64_t)atomic_load_explicit(delta_word, memory_order_relaxed);
    if (bytes > 0 && delta > (int64_t)atomic_load_explicit(&slot[S_DELTA_HIGH], memory_order_relaxed))
        atomic_store_explicit(&slot[S_DELTA_HIGH], (uint64_t)delta, memory_order_relaxed);
    if (MEMTRACK_UNLIKELY(delta >= PUBLISH_BYTES || delta <= -PUBLISH_BYTES)) publish(base, slot, delta, shared);
}

static inline int bucket_of(uint64_t size) { return size ? 64 - __builtin_clzll(size) : 0; }

void memtrack_counters_allocated(int via, void *pointer, size_t size) {
    word *base = atomic_load_explicit(&area, memory_order_relaxed);
    int index = slot_index();
    int shared = index == SLOT_COUNT;
    word *slot = slot_words(base, index);
    add(&slot[S_CALLS + via], 1, shared);
    add(&slot[S_BYTES], size, shared);
    add(&slot[S_HISTOGRAM + bucket_of(size)], 1, shared);
    add(&slot[S_LIVE_BLOCKS], 1, shared);
    change_heap(base, slot, (int64_t)memtrack_next.malloc_usable_size(pointer), shared);
}

void memtrack_counters_freed(int via, void *pointer, int state) {
    word *base = atomic_load_explicit(&area, memory_order_relaxed);
    int index = slot_index();
    int shared = index == SLOT_COUNT;
    word *slot = slot_words(base, index);
    /* realloc's release of the old block is part of the realloc call, counted once above. */
    if (via == MEMTRACK_VIA_FREE || via == MEMTRACK_VIA_CFREE) add(&slot[S_CALLS + via], 1, shared);
    if (state != MEMTRACK_LIVE) return;
    add(&slot[S_LIVE_BLOCKS], (uint64_t)-1, shared);
    change_heap(base, slot, -(int64_t)memtrack_next.malloc_usable_size(pointer), shared);
}

/* Creates and maps `counters` in the new run directory (at start, and in a forked child). */
void memtrack_counters_open(int directory) {
    int saved_errno = errno;
    word *old = atomic_load(&area);
    int fd = (int)syscall(SYS_openat, directory, "counters", O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    void *mapped = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, FILE_BYTES) == 0)
        mapped = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0) syscall(SYS_close, fd);
    if (mapped == MAP_FAILED) {
        memtrack_note_failure("creating the counters file", errno, NULL);
        errno = saved_errno;
        return;
    }
    word *fresh = mapped;
    /* The first image keeps what it counted before the directory existed; a forked child
     * counts only its own calls. */
    if (old == bootstrap_area) memcpy((void *)fresh, (const void *)bootstrap_area, FILE_BYTES);
    else memset((void *)fresh, 0, FILE_BYTES);
    memcpy((void *)fresh, "memtrack/1 counters\n", 20);
    atomic_store(&fresh[H_SLOT_COUNT], SLOT_COUNT + 1);
    atomic_store(&fresh[H_SLOT_WORDS], SLOT_WORDS);
    atomic_store(&fresh[H_SLOTS_OFFSET], HEADER_BYTES);
    atomic_store(&fresh[H_BUCKETS], BUCKETS);
    atomic_store(&fresh[H_PUBLISH_BYTES], PUBLISH_BYTES);
    atomic_store(&fresh[H_PID], (uint64_t)memtrack_pid);
    atomic_store(&area, fresh);
    if (old != bootstrap_area) munmap((void *)old, FILE_BYTES);   /* the parent's, in a child */
    errno = saved_errno;
}
