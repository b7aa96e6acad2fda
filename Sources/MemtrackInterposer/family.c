/* family.c: which allocation family each live C++ block belongs to (new or new[]), so that a
 * free of a settled block, whose record is only on disk, can still check its deallocation.
 *
 * A parallel index to shadow.c's, kept apart because the live-set index has no spare bits:
 * two bits per 8-byte granule (0 = malloc family, 1 = new, 2 = new[]). Only C++ blocks are
 * ever written, so a C program maps nothing and pays one load of an empty directory per free;
 * a C++ program pays 1/32 of the span its new'd blocks cover, mapped lazily. The granule is 8
 * bytes rather than shadow.c's 16 so that 8-byte aligned allocators need no second index.
 *
 * Layer: index, on radix.c.
 */
#include "family.h"
#include "radix.h"

/* 8-byte granules: a leaf covers 4 MiB of address space in 128 KiB of bits, of which only
 * touched pages cost. */
#define GRANULE_SHIFT 3
static struct memtrack_radix family_index;
typedef memtrack_radix_word leaf_word;
atomic_int memtrack_any_family;   /* 0 until the first C++ block: C programs skip the walk */

static inline leaf_word *word_for(uintptr_t address, int create, unsigned *shift) {
    return memtrack_radix_word_for(&family_index, GRANULE_SHIFT, address, create, shift);
}

static int exchange(leaf_word *word, unsigned shift, int family) {
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed), updated;
    do {
        if ((int)((old >> shift) & 3) == family) return family;   /* the common case: no store */
        updated = (old & ~((uint64_t)3 << shift)) | ((uint64_t)family << shift);
    } while (!atomic_compare_exchange_weak(word, &old, updated));
    return (int)((old >> shift) & 3);
}

void memtrack_family_set_slow(const void *pointer, int family) {
    if (!atomic_load_explicit(&memtrack_any_family, memory_order_relaxed)) {
        if (family == MEMTRACK_FAMILY_MALLOC) return;   /* a C program: nothing to clear */
        atomic_store(&memtrack_any_family, 1);
    }
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, family != MEMTRACK_FAMILY_MALLOC, &shift);
    if (word) exchange(word, shift, family);
    /* No memory for the index: the block reads as malloc's; a delete of it is then reported
     * as a mismatch only if the index could not be extended, which mmap failing already warns. */
}

int memtrack_family_take_slow(const void *pointer) {
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, 0, &shift);
    return word ? exchange(word, shift, MEMTRACK_FAMILY_MALLOC) : MEMTRACK_FAMILY_MALLOC;
}

int memtrack_family_peek(const void *pointer) {
    if (!atomic_load_explicit(&memtrack_any_family, memory_order_relaxed)) return MEMTRACK_FAMILY_MALLOC;
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, 0, &shift);
    return word ? (int)((atomic_load_explicit(word, memory_order_relaxed) >> shift) & 3) : MEMTRACK_FAMILY_MALLOC;
}
