/* radix.c: the sparse per-address index's growth and walk (radix.h says what it is).
 * Layer: index, on sys (its memory is mapped with raw system calls). */
#include "radix.h"
#include "sys.h"

#include <sys/mman.h>

/* Publishes a freshly mapped, zeroed table in *slot, or takes the one another thread
 * published first (and gives ours back). */
static void *install(_Atomic(void *) *slot, size_t bytes, atomic_int *incomplete) {
    void *present = atomic_load_explicit(slot, memory_order_acquire);
    if (present) return present;
    void *fresh = memtrack_sys_map_anonymous(bytes, MAP_NORESERVE);
    if (!fresh) { atomic_store(incomplete, 1); return NULL; }
    if (atomic_compare_exchange_strong(slot, &present, fresh)) return fresh;
    memtrack_sys_munmap(fresh, bytes);
    return present;
}

memtrack_radix_word *memtrack_radix_create(struct memtrack_radix *index, unsigned granule_shift, uintptr_t address,
                                           unsigned *shift) {
    if (address >> MEMTRACK_RADIX_ADDRESS_BITS) return NULL;
    memtrack_radix_middle *middle = install((_Atomic(void *) *)&index->top[address >> MEMTRACK_RADIX_MIDDLE_SHIFT],
                                            MEMTRACK_RADIX_MIDDLE_ENTRIES * sizeof(memtrack_radix_middle), &index->incomplete);
    if (!middle) return NULL;
    size_t leaf_bytes = memtrack_radix_leaf_words(granule_shift) * sizeof(memtrack_radix_word);
    memtrack_radix_word *leaf = install((_Atomic(void *) *)&middle[(address >> MEMTRACK_RADIX_LEAF_SHIFT) & (MEMTRACK_RADIX_MIDDLE_ENTRIES - 1)],
                                        leaf_bytes, &index->incomplete);
    if (!leaf) return NULL;
    unsigned granule = (unsigned)((address >> granule_shift) & (memtrack_radix_leaf_granules(granule_shift) - 1));
    *shift = (granule & 31) * 2;
    return &leaf[granule >> 5];
}

void memtrack_radix_for_each_mapping(struct memtrack_radix *index, unsigned granule_shift,
                                     void (*visit)(uintptr_t start, size_t bytes, void *context), void *context) {
    size_t leaf_bytes = memtrack_radix_leaf_words(granule_shift) * sizeof(memtrack_radix_word);
    for (uintptr_t top = 0; top < MEMTRACK_RADIX_TOP_ENTRIES; top++) {
        memtrack_radix_middle *middle = atomic_load(&index->top[top]);
        if (!middle) continue;
        visit((uintptr_t)middle, MEMTRACK_RADIX_MIDDLE_ENTRIES * sizeof(memtrack_radix_middle), context);
        for (uintptr_t m = 0; m < MEMTRACK_RADIX_MIDDLE_ENTRIES; m++) {
            memtrack_radix_word *leaf = atomic_load(&middle[m]);
            if (leaf) visit((uintptr_t)leaf, leaf_bytes, context);
        }
    }
}
