/* counters.c: allocation statistics (libmemusage's numbers) kept in the run directory's
 * `counters` file, mapped MAP_SHARED: calls per entry point, bytes requested, current and peak
 * heap, and a power-of-two size histogram. Nothing here makes a system call after the file is
 * mapped, and the page cache keeps the numbers when the process dies, like the records.
 *
 * No contended cache line on the hot path: every thread takes a slot of its own (1 KiB) and
 * updates it with plain adds (one writer per slot, so no atomic read-modify-write is needed;
 * the inline half is in counters.h); the reader sums the slots. Threads beyond SLOT_COUNT
 * share one overflow slot, updated with atomic adds. The heap total is the one number that needs all threads at once:
 * each slot keeps its own unpublished change, and only when that reaches PUBLISH_BYTES either
 * way is it added to the shared total, and the peak raised. So the reader's current heap
 * (shared total + every slot's unpublished change) is exact. Each slot also keeps the highest
 * its change reached since it last published; the peak is the published total plus that mark,
 * exact for one thread and within PUBLISH_BYTES per thread otherwise.
 *
 * Heap bytes are what the allocator reports with malloc_usable_size (read from glibc's chunk
 * header when glibc is the allocator): the requested size of a block whose record has settled
 * is no longer in memory when it is freed.
 *
 * Layout (little-endian, the catalog's Record format, "counters"): a 4 KiB header page, then SLOT_COUNT + 1 slots.
 *
 * Layer: state.
 */
#include "counters.h"
#include "failure.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define HEADER_BYTES (MEMTRACK_COUNTER_HEADER_WORDS * 8)
#define SLOT_COUNT MEMTRACK_COUNTER_SLOTS
#define SLOT_WORDS MEMTRACK_COUNTER_SLOT_WORDS
#define BUCKETS 65                        /* bucket b: sizes with bit length b (0 for size 0) */

/* Header words, after the 32-byte text "memtrack/1 counters\n". */
enum {
    H_SLOT_COUNT = 4, H_SLOT_WORDS, H_SLOTS_OFFSET, H_BUCKETS, H_PUBLISH_BYTES,
    H_HEAP_PUBLISHED, H_HEAP_PEAK, H_PID,
};

#define FILE_BYTES (HEADER_BYTES + (SLOT_COUNT + 1) * SLOT_WORDS * 8)

/* Counts made before the run directory exists (loader, constructors) go here, and are copied
 * into the file when it is mapped. */
static uint64_t bootstrap_area[FILE_BYTES / 8] __attribute__((aligned(64)));
uint64_t *memtrack_counter_area = bootstrap_area;
static int next_slot;
/* 1 + this thread's slot index, 0 until assigned. Both survive fork with the one thread the
 * child has, which keeps its slot (the child's file starts at zero). */
static MEMTRACK_THREAD_LOCAL int my_slot;
MEMTRACK_THREAD_LOCAL size_t memtrack_counter_slot_offset;
int memtrack_chunk_headers_readable;

static uint64_t *slot_words(uint64_t *base, int index) {
    return base + MEMTRACK_COUNTER_HEADER_WORDS + (size_t)index * SLOT_WORDS;
}

/* This thread's slot index, assigned at its first count; SLOT_COUNT is the shared overflow slot. */
static int slot_index(void) {
    if (my_slot) return my_slot - 1;
    int index = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED);
    if (index >= SLOT_COUNT) index = SLOT_COUNT;
    my_slot = index + 1;
    if (index < SLOT_COUNT)   /* from now on, the inline path */
        memtrack_counter_slot_offset = MEMTRACK_COUNTER_HEADER_WORDS + (size_t)index * SLOT_WORDS;
    return index;
}

/* Raises the peak by what the slot's high-water mark says the heap reached since its last
 * publish (exact with one thread), and moves the slot's change into the shared total. */
static void publish_delta(uint64_t *base, uint64_t *slot, int64_t delta, int shared) {
    if (shared) {   /* take exactly what we saw, others may be adding */
        uint64_t expected = (uint64_t)delta;
        if (!__atomic_compare_exchange_n(&slot[MEMTRACK_SLOT_HEAP_DELTA], &expected, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return;
    } else {
        __atomic_store_n(&slot[MEMTRACK_SLOT_HEAP_DELTA], 0, __ATOMIC_RELAXED);
    }
    int64_t high = (int64_t)__atomic_exchange_n(&slot[MEMTRACK_SLOT_DELTA_HIGH], 0, __ATOMIC_RELAXED);
    uint64_t before = __atomic_fetch_add(&base[H_HEAP_PUBLISHED], (uint64_t)delta, __ATOMIC_RELAXED);
    int64_t reached = (int64_t)before + (high > delta ? high : delta);
    uint64_t peak = __atomic_load_n(&base[H_HEAP_PEAK], __ATOMIC_RELAXED);
    while (reached > (int64_t)peak &&
           !__atomic_compare_exchange_n(&base[H_HEAP_PEAK], &peak, (uint64_t)reached, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

void memtrack_counters_publish(uint64_t *slot) {
    publish_delta(__atomic_load_n(&memtrack_counter_area, __ATOMIC_RELAXED), slot,
                  (int64_t)slot[MEMTRACK_SLOT_HEAP_DELTA], 0);
}

/* The slow path: a thread's first count, or the overflow slot many threads share (atomic adds). */
static void add(uint64_t *w, uint64_t value, int shared) {
    if (shared) __atomic_fetch_add(w, value, __ATOMIC_RELAXED);
    else *w += value;
}

static void change_heap(uint64_t *slot, int64_t bytes, int shared) {
    uint64_t *delta_word = &slot[MEMTRACK_SLOT_HEAP_DELTA];
    add(delta_word, (uint64_t)bytes, shared);
    int64_t delta = (int64_t)__atomic_load_n(delta_word, __ATOMIC_RELAXED);
    if (bytes > 0 && delta > (int64_t)__atomic_load_n(&slot[MEMTRACK_SLOT_DELTA_HIGH], __ATOMIC_RELAXED))
        __atomic_store_n(&slot[MEMTRACK_SLOT_DELTA_HIGH], (uint64_t)delta, __ATOMIC_RELAXED);
    if (delta >= MEMTRACK_COUNTER_PUBLISH || delta <= -MEMTRACK_COUNTER_PUBLISH)
        publish_delta(__atomic_load_n(&memtrack_counter_area, __ATOMIC_RELAXED), slot, delta, shared);
}

/* With MEM_COUNTERS=0 no thread gets a slot, so every call comes here and ends at once. */
void memtrack_counters_allocated_slow(int via, void *pointer, size_t size) {
    if (!memtrack_config.counters) return;
    int index = slot_index();
    int shared = index == SLOT_COUNT;
    uint64_t *slot = slot_words(__atomic_load_n(&memtrack_counter_area, __ATOMIC_RELAXED), index);
    add(&slot[MEMTRACK_SLOT_CALLS + via], 1, shared);
    add(&slot[MEMTRACK_SLOT_BYTES], size, shared);
    add(&slot[MEMTRACK_SLOT_HISTOGRAM + memtrack_size_bucket(size)], 1, shared);
    add(&slot[MEMTRACK_SLOT_LIVE_BLOCKS], 1, shared);
    change_heap(slot, (int64_t)memtrack_usable_size(pointer), shared);
}

void memtrack_counters_freed_slow(int via, void *pointer, int state) {
    if (!memtrack_config.counters) return;
    int index = slot_index();
    int shared = index == SLOT_COUNT;
    uint64_t *slot = slot_words(__atomic_load_n(&memtrack_counter_area, __ATOMIC_RELAXED), index);
    if (via == MEMTRACK_VIA_FREE || via == MEMTRACK_VIA_CFREE) add(&slot[MEMTRACK_SLOT_CALLS + via], 1, shared);
    if (state != MEMTRACK_LIVE) return;
    add(&slot[MEMTRACK_SLOT_LIVE_BLOCKS], (uint64_t)-1, shared);
    change_heap(slot, -(int64_t)memtrack_usable_size(pointer), shared);
}

/* Whether glibc's chunk size word can stand in for malloc_usable_size: the next allocator must
 * be glibc's (not a preloaded jemalloc or malloc-debug), which the probes show by agreeing on
 * a small block, a large one and a page-aligned one (mmapped chunks, too). */
void memtrack_counters_probe_chunk_headers(void) {
    if (!memtrack_next.malloc || !memtrack_next.free || !memtrack_next.malloc_usable_size || !memtrack_next.memalign) return;
    static const size_t sizes[] = {24, 1000, 300000};
    int agree = 1;
    for (int i = 0; i < 4 && agree; i++) {
        void *probe = i < 3 ? memtrack_next.malloc(sizes[i]) : memtrack_next.memalign(4096, 100);
        if (!probe) return;
        memtrack_chunk_headers_readable = 1;
        size_t from_header = memtrack_usable_size(probe);
        memtrack_chunk_headers_readable = 0;
        agree = from_header == memtrack_next.malloc_usable_size(probe);
        memtrack_next.free(probe);
    }
    memtrack_chunk_headers_readable = agree;
}

/* Creates and maps `counters` in the new run directory (at start, and in a forked child). */
void memtrack_counters_open(int directory) {
    if (!memtrack_config.counters) {   /* start-up may have counted before the setting was read */
        memtrack_counter_slot_offset = 0;
        return;
    }
    int saved_errno = errno;
    uint64_t *old = __atomic_load_n(&memtrack_counter_area, __ATOMIC_RELAXED);
    int fd = (int)memtrack_sys_openat(directory, "counters", O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    void *mapped = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, FILE_BYTES) == 0)
        mapped = memtrack_sys_mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0) memtrack_sys_close(fd);
    if (mapped == MAP_FAILED) {
        memtrack_note_failure("creating the counters file", errno, NULL);
        errno = saved_errno;
        return;
    }
    uint64_t *fresh = mapped;
    /* The first image keeps what it counted before the directory existed; a forked child
     * counts only its own calls. */
    if (old == bootstrap_area) memcpy((void *)fresh, (const void *)bootstrap_area, FILE_BYTES);
    else memset((void *)fresh, 0, FILE_BYTES);
    memcpy((void *)fresh, "memtrack/1 counters\n", 20);
    __atomic_store_n(&fresh[H_SLOT_COUNT], SLOT_COUNT + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&fresh[H_SLOT_WORDS], SLOT_WORDS, __ATOMIC_RELAXED);
    __atomic_store_n(&fresh[H_SLOTS_OFFSET], HEADER_BYTES, __ATOMIC_RELAXED);
    __atomic_store_n(&fresh[H_BUCKETS], BUCKETS, __ATOMIC_RELAXED);
    __atomic_store_n(&fresh[H_PUBLISH_BYTES], MEMTRACK_COUNTER_PUBLISH, __ATOMIC_RELAXED);
    __atomic_store_n(&fresh[H_PID], (uint64_t)memtrack_pid, __ATOMIC_RELAXED);
    __atomic_store_n(&memtrack_counter_area, fresh, __ATOMIC_RELEASE);
    if (old != bootstrap_area) memtrack_sys_munmap((void *)old, FILE_BYTES);   /* the parent's, in a child */
    errno = saved_errno;
}
