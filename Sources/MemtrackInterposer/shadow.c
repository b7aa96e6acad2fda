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
 *
 * Layer: index, on radix.c.
 */
#include "shadow.h"
#include "radix.h"

/* 16-byte granules; addresses that are 8 modulo 16 in the second index. */
#define GRANULE_SHIFT 4
#define LEAF_WORDS memtrack_radix_leaf_words(GRANULE_SHIFT)
static struct memtrack_radix aligned_index, odd_index;
typedef memtrack_radix_word leaf_word;

/* Returns the word holding the granule's state, creating the path when create is set. */
static inline leaf_word *word_for(uintptr_t address, int create, unsigned *shift) {
    return memtrack_radix_word_for((address & 8) ? &odd_index : &aligned_index, GRANULE_SHIFT, address, create, shift);
}

/* A part of the index could not be mapped: an address with no index is not known to be never
 * allocated, and a free of it is passed on, not reported. */
static int index_incomplete(void) {
    return atomic_load(&aligned_index.incomplete) || atomic_load(&odd_index.incomplete);
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
    if (!word) return index_incomplete() ? MEMTRACK_UNTRACKED : MEMTRACK_NEVER;
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
    for (uintptr_t top = 0; top < MEMTRACK_RADIX_TOP_ENTRIES; top++) {
        if (!atomic_load(&aligned_index.top[top]) && !atomic_load(&odd_index.top[top])) continue;
        for (uintptr_t middle = 0; middle < MEMTRACK_RADIX_MIDDLE_ENTRIES; middle++) {
            leaf_word *aligned_leaf = memtrack_radix_leaf(&aligned_index, top, middle);
            leaf_word *odd_leaf = memtrack_radix_leaf(&odd_index, top, middle);
            if (!aligned_leaf && !odd_leaf) continue;
            uintptr_t base = (top << MEMTRACK_RADIX_MIDDLE_SHIFT) | (middle << MEMTRACK_RADIX_LEAF_SHIFT);
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
    for (uintptr_t address = start & ~(uintptr_t)511; address < end && !(address >> MEMTRACK_RADIX_ADDRESS_BITS);) {
        uintptr_t leaf_end = (address | (((uintptr_t)1 << MEMTRACK_RADIX_LEAF_SHIFT) - 1)) + 1;
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
    memtrack_radix_for_each_mapping(&aligned_index, GRANULE_SHIFT, visit, context);
    memtrack_radix_for_each_mapping(&odd_index, GRANULE_SHIFT, visit, context);
}

int memtrack_shadow_state(const void *pointer) {
    unsigned shift;
    leaf_word *word = word_for((uintptr_t)pointer, 0, &shift);
    return word ? (int)((atomic_load_explicit(word, memory_order_relaxed) >> shift) & 3) : MEMTRACK_NEVER;
}
