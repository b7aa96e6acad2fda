/* shadow.c: the live-set index. For every 16-byte granule of the address space that an
 * allocator has handed out, two bits say: never allocated, live, freed, or live on the
 * tracker's behalf.
 *
 * Why not let "unlink found no file" decide double frees, as the seeds do? Because the file
 * may be missing for reasons that are not the program's fault: the block has not been written
 * yet (deferred mode), the disk was full, or the block was inherited across fork and its file
 * is in the parent's run directory. A false double free would leak the block and change what
 * the program does. The index costs 1/64 of the heap's address span (2 bits per 16 bytes), is
 * inherited by a forked child for free (copy-on-write), and answers in two dependent loads
 * with no system call.
 *
 * Blocks are at least 16-byte aligned under glibc. Some allocators (jemalloc) return 8-byte
 * aligned blocks for 8-byte requests, so addresses that are 8 modulo 16 get a second index.
 */
#include "internal.h"

#include <sys/mman.h>

/* 47-bit user addresses: 13 bits of top directory, 12 of middle, 18 bits of granules per leaf
 * (a leaf covers 4 MiB of address space in 64 KiB of bits). Leaves and middles are mapped
 * lazily, so a program's index costs only what its heap spans. */
#define ADDRESS_BITS 47
#define GRANULE_SHIFT 4
#define LEAF_SHIFT 22
#define MIDDLE_SHIFT 34
#define TOP_ENTRIES (1u << (ADDRESS_BITS - MIDDLE_SHIFT))
#define MIDDLE_ENTRIES (1u << (MIDDLE_SHIFT - LEAF_SHIFT))
#define LEAF_GRANULES (1u << (LEAF_SHIFT - GRANULE_SHIFT))
#define LEAF_WORDS (LEAF_GRANULES / 32)   /* 32 two-bit states per 64-bit word */

typedef _Atomic uint64_t leaf_word;
typedef _Atomic(leaf_word *) middle_entry;

static _Atomic(middle_entry *) aligned_directory[TOP_ENTRIES];
static _Atomic(middle_entry *) odd_directory[TOP_ENTRIES];
/* Set once a part of the index could not be mapped (ulimit -v): from then on an address with
 * no index is not known to be never allocated, and a free of it is passed on, not reported. */
static atomic_int index_incomplete;

static void *map_zeroed(size_t bytes) {
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

/* Returns the word holding the granule's state, creating the path when create is set. */
static leaf_word *word_for(uintptr_t address, int create, unsigned *shift) {
    if (address >> ADDRESS_BITS) return NULL;
    _Atomic(middle_entry *) *directory = (address & 8) ? odd_directory : aligned_directory;
    _Atomic(middle_entry *) *top = &directory[address >> MIDDLE_SHIFT];
    middle_entry *middle = atomic_load_explicit(top, memory_order_acquire);
    if (!middle) {
        if (!create) return NULL;
        middle_entry *fresh = map_zeroed(MIDDLE_ENTRIES * sizeof(middle_entry));
        if (!fresh) { atomic_store(&index_incomplete, 1); return NULL; }
        middle_entry *none = NULL;
        if (atomic_compare_exchange_strong(top, &none, fresh)) middle = fresh;
        else { munmap(fresh, MIDDLE_ENTRIES * sizeof(middle_entry)); middle = none; }
    }
    middle_entry *slot = &middle[(address >> LEAF_SHIFT) & (MIDDLE_ENTRIES - 1)];
    leaf_word *leaf = atomic_load_explicit(slot, memory_order_acquire);
    if (!leaf) {
        if (!create) return NULL;
        leaf_word *fresh = map_zeroed(LEAF_WORDS * sizeof(leaf_word));
        if (!fresh) { atomic_store(&index_incomplete, 1); return NULL; }
        leaf_word *none = NULL;
        if (atomic_compare_exchange_strong(slot, &none, fresh)) leaf = fresh;
        else { munmap(fresh, LEAF_WORDS * sizeof(leaf_word)); leaf = none; }
    }
    unsigned granule = (unsigned)((address >> GRANULE_SHIFT) & (LEAF_GRANULES - 1));
    *shift = (granule & 31) * 2;
    return &leaf[granule >> 5];
}

int memtrack_shadow_exchange(const void *pointer, int state) {
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, 1, &shift);
    if (!word) return MEMTRACK_UNTRACKED;   /* no memory for the index: the block goes untracked */
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed), updated;
    do {
        updated = (old & ~((uint64_t)3 << shift)) | ((uint64_t)state << shift);
    } while (!atomic_compare_exchange_weak(word, &old, updated));
    return (int)((old >> shift) & 3);
}

int memtrack_shadow_release(const void *pointer) {
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, 0, &shift);
    if (!word) return atomic_load(&index_incomplete) ? MEMTRACK_UNTRACKED : MEMTRACK_NEVER;
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed), updated;
    do {
        int state = (int)((old >> shift) & 3);
        if (state == MEMTRACK_NEVER || state == MEMTRACK_FREED) return state;
        updated = (old & ~((uint64_t)3 << shift)) | ((uint64_t)MEMTRACK_FREED << shift);
    } while (!atomic_compare_exchange_weak(word, &old, updated));
    return (int)((old >> shift) & 3);
}

// ---- Walking the index (the leak check, leakcheck.c) -----------------------------------------
/* Granules whose state is LIVE, as a mask of the low bit of each two-bit state. */
static inline uint64_t live_bits(uint64_t word) {
    return word & ~(word >> 1) & 0x5555555555555555ull;
}

/* Calls visit for every LIVE block, in address order: the two directories cover the same
 * leaves, and within a granule the 16-aligned address comes before the 8-mod-16 one. */
void memtrack_shadow_for_each_live(void (*visit)(uintptr_t address, void *context), void *context) {
    for (uintptr_t top = 0; top < TOP_ENTRIES; top++) {
        middle_entry *aligned_middle = atomic_load(&aligned_directory[top]);
        middle_entry *odd_middle = atomic_load(&odd_directory[top]);
        if (!aligned_middle && !odd_middle) continue;
        for (uintptr_t middle = 0; middle < MIDDLE_ENTRIES; middle++) {
            leaf_word *aligned_leaf = aligned_middle ? atomic_load(&aligned_middle[middle]) : NULL;
            leaf_word *odd_leaf = odd_middle ? atomic_load(&odd_middle[middle]) : NULL;
            if (!aligned_leaf && !odd_leaf) continue;
            uintptr_t base = (top << MIDDLE_SHIFT) | (middle << LEAF_SHIFT);
            for (uintptr_t w = 0; w < LEAF_WORDS; w++) {
                uint64_t aligned = aligned_leaf ? live_bits(atomic_load_explicit(&aligned_leaf[w], memory_order_relaxed)) : 0;
                uint64_t odd = odd_leaf ? live_bits(atomic_load_explicit(&odd_leaf[w], memory_order_relaxed)) : 0;
                for (uint64_t either = aligned | odd; either; either &= either - 1) {
                    unsigned bit = (unsigned)__builtin_ctzll(either);
                    uintptr_t address = base + ((w * 32 + bit / 2) << GRANULE_SHIFT);
                    if (aligned & ((uint64_t)1 << bit)) visit(address, context);
                    if (odd & ((uint64_t)1 << bit)) visit(address + 8, context);
                }
            }
        }
    }
}

/* Whether any granule in [start, end) was ever handed out (live, freed or internal): such
 * memory belongs to an allocator and is not a root. Word granularity (512 bytes). */
int memtrack_shadow_any_known(uintptr_t start, uintptr_t end) {
    for (uintptr_t address = start & ~(uintptr_t)511; address < end && !(address >> ADDRESS_BITS);) {
        uintptr_t leaf_end = (address | (((uintptr_t)1 << LEAF_SHIFT) - 1)) + 1;
        for (int d = 0; d < 2; d++) {
            unsigned shift;
            leaf_word *word = word_for(address | (d ? 8 : 0), 0, &shift);
            if (!word) continue;
            uintptr_t stop = end < leaf_end ? end : leaf_end;
            for (uintptr_t a = address; a < stop; a += 512, word++)
                if (atomic_load_explicit(word, memory_order_relaxed)) return 1;
        }
        address = leaf_end;
    }
    return 0;
}

/* Calls visit for every mapping the index itself lives in (never roots). */
void memtrack_shadow_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context) {
    for (int d = 0; d < 2; d++) {
        _Atomic(middle_entry *) *directory = d ? odd_directory : aligned_directory;
        for (uintptr_t top = 0; top < TOP_ENTRIES; top++) {
            middle_entry *middle = atomic_load(&directory[top]);
            if (!middle) continue;
            visit((uintptr_t)middle, MIDDLE_ENTRIES * sizeof(middle_entry), context);
            for (uintptr_t m = 0; m < MIDDLE_ENTRIES; m++) {
                leaf_word *leaf = atomic_load(&middle[m]);
                if (leaf) visit((uintptr_t)leaf, LEAF_WORDS * sizeof(leaf_word), context);
            }
        }
    }
}

int memtrack_shadow_state(const void *pointer) {
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, 0, &shift);
    return word ? (int)((atomic_load_explicit(word, memory_order_relaxed) >> shift) & 3) : MEMTRACK_NEVER;
}
