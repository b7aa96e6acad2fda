/* family.c: which allocation family each live C++ block belongs to (new or new[]), so that a
 * free of a settled block, whose record is only on disk, can still check its deallocation.
 *
 * A parallel index to shadow.c's, kept apart because the live-set index has no spare bits:
 * two bits per 8-byte granule (0 = malloc family, 1 = new, 2 = new[]). Only C++ blocks are
 * ever written, so a C program maps nothing and pays one load of an empty directory per free;
 * a C++ program pays 1/32 of the span its new'd blocks cover, mapped lazily. The granule is 8
 * bytes rather than shadow.c's 16 so that 8-byte aligned allocators need no second index.
 */
#include "internal.h"

#include <sys/mman.h>

/* 47-bit user addresses: 13 bits of top directory, 12 of middle, 19 bits of granules per leaf
 * (a leaf covers 4 MiB of address space in 128 KiB of bits, of which only touched pages cost). */
#define ADDRESS_BITS 47
#define GRANULE_SHIFT 3
#define LEAF_SHIFT 22
#define MIDDLE_SHIFT 34
#define TOP_ENTRIES (1u << (ADDRESS_BITS - MIDDLE_SHIFT))
#define MIDDLE_ENTRIES (1u << (MIDDLE_SHIFT - LEAF_SHIFT))
#define LEAF_GRANULES (1u << (LEAF_SHIFT - GRANULE_SHIFT))
#define LEAF_WORDS (LEAF_GRANULES / 32)

typedef _Atomic uint64_t leaf_word;
typedef _Atomic(leaf_word *) middle_entry;

static _Atomic(middle_entry *) directory[TOP_ENTRIES];
atomic_int memtrack_any_family;   /* 0 until the first C++ block: C programs skip the walk */

static void *map_zeroed(size_t bytes) {
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

static leaf_word *word_for(uintptr_t address, int create, unsigned *shift) {
    if (address >> ADDRESS_BITS) return NULL;
    _Atomic(middle_entry *) *top = &directory[address >> MIDDLE_SHIFT];
    middle_entry *middle = atomic_load_explicit(top, memory_order_acquire);
    if (!middle) {
        if (!create) return NULL;
        middle_entry *fresh = map_zeroed(MIDDLE_ENTRIES * sizeof(middle_entry));
        if (!fresh) return NULL;
        middle_entry *none = NULL;
        if (atomic_compare_exchange_strong(top, &none, fresh)) middle = fresh;
        else { munmap(fresh, MIDDLE_ENTRIES * sizeof(middle_entry)); middle = none; }
    }
    middle_entry *slot = &middle[(address >> LEAF_SHIFT) & (MIDDLE_ENTRIES - 1)];
    leaf_word *leaf = atomic_load_explicit(slot, memory_order_acquire);
    if (!leaf) {
        if (!create) return NULL;
        leaf_word *fresh = map_zeroed(LEAF_WORDS * sizeof(leaf_word));
        if (!fresh) return NULL;
        leaf_word *none = NULL;
        if (atomic_compare_exchange_strong(slot, &none, fresh)) leaf = fresh;
        else { munmap(fresh, LEAF_WORDS * sizeof(leaf_word)); leaf = none; }
    }
    unsigned granule = (unsigned)((address >> GRANULE_SHIFT) & (LEAF_GRANULES - 1));
    *shift = (granule & 31) * 2;
    return &leaf[granule >> 5];
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
