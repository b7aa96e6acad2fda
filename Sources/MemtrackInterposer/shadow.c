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
