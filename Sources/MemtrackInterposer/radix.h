/* radix.h: the one sparse index the interposer keeps per address (radix.c). Layer: index.
 *
 * Two bits of state for every granule of the 47-bit user address space, in a three-level
 * radix tree: 13 bits of top directory, 12 of middle, and leaves of 4 MiB of address space.
 * Middles and leaves are mapped lazily (MAP_NORESERVE), so an index costs only what the
 * addresses it was told about span, and a forked child inherits it copy-on-write. Readers
 * take no lock: a path, once published, never changes. shadow.c keeps the live set in two
 * (16-byte granules, and a second index for 8-modulo-16 addresses); family.c keeps C++
 * families in one of 8-byte granules.
 */
#ifndef MEMTRACK_RADIX_H
#define MEMTRACK_RADIX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

#define MEMTRACK_RADIX_ADDRESS_BITS 47
#define MEMTRACK_RADIX_LEAF_SHIFT 22
#define MEMTRACK_RADIX_MIDDLE_SHIFT 34
#define MEMTRACK_RADIX_TOP_ENTRIES (1u << (MEMTRACK_RADIX_ADDRESS_BITS - MEMTRACK_RADIX_MIDDLE_SHIFT))
#define MEMTRACK_RADIX_MIDDLE_ENTRIES (1u << (MEMTRACK_RADIX_MIDDLE_SHIFT - MEMTRACK_RADIX_LEAF_SHIFT))

typedef _Atomic uint64_t memtrack_radix_word;   /* 32 two-bit states */
typedef _Atomic(memtrack_radix_word *) memtrack_radix_middle;

struct memtrack_radix {
    _Atomic(memtrack_radix_middle *) top[MEMTRACK_RADIX_TOP_ENTRIES];
    /* Set once a part could not be mapped (ulimit -v): from then on an address with no path
     * is not known to have no state. */
    atomic_int incomplete;
};
/* All zero when empty (static storage, in .bss). Each function takes the index's granule shift
 * (log2 of the bytes one state covers): a constant of its user's. */

/* Granules and words of one leaf. */
static inline size_t memtrack_radix_leaf_granules(unsigned granule_shift) {
    return (size_t)1 << (MEMTRACK_RADIX_LEAF_SHIFT - granule_shift);
}
static inline size_t memtrack_radix_leaf_words(unsigned granule_shift) {
    return memtrack_radix_leaf_granules(granule_shift) / 32;
}

/* Creates the path to address (mapping a middle and a leaf as needed) and returns its word,
 * or NULL when no memory could be mapped. */
memtrack_radix_word *memtrack_radix_create(struct memtrack_radix *index, unsigned granule_shift, uintptr_t address,
                                           unsigned *shift);

/* The leaf under top entry `top` and middle entry `middle`, or NULL. */
static inline memtrack_radix_word *memtrack_radix_leaf(struct memtrack_radix *index, uintptr_t top, uintptr_t middle) {
    memtrack_radix_middle *entries = atomic_load_explicit(&index->top[top], memory_order_acquire);
    return entries ? atomic_load_explicit(&entries[middle], memory_order_acquire) : NULL;
}

/* The word holding address's state (its bit offset in *shift); NULL when the path does not
 * exist and create is 0. A constant granule_shift makes the lookup shifts and two dependent
 * loads. */
static inline memtrack_radix_word *memtrack_radix_word_for(struct memtrack_radix *index, unsigned granule_shift,
                                                            uintptr_t address, int create, unsigned *shift) {
    if (address >> MEMTRACK_RADIX_ADDRESS_BITS) return NULL;
    memtrack_radix_word *leaf = memtrack_radix_leaf(index, address >> MEMTRACK_RADIX_MIDDLE_SHIFT,
                                                    (address >> MEMTRACK_RADIX_LEAF_SHIFT) & (MEMTRACK_RADIX_MIDDLE_ENTRIES - 1));
    if (__builtin_expect(!leaf, 0)) return create ? memtrack_radix_create(index, granule_shift, address, shift) : NULL;
    unsigned granule = (unsigned)((address >> granule_shift) & (memtrack_radix_leaf_granules(granule_shift) - 1));
    *shift = (granule & 31) * 2;
    return &leaf[granule >> 5];
}

/* Calls visit for every mapping the index lives in (the leak check never scans them). */
void memtrack_radix_for_each_mapping(struct memtrack_radix *index, unsigned granule_shift,
                                     void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);

#pragma GCC visibility pop

#endif
