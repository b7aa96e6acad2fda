/* quarantine.c: freed blocks held back from reuse.
 *
 * glibc hands a just-freed address straight to the next malloc of that size. A stale free(p)
 * would then remove the new block's record and go unnoticed. Holding freed blocks for a while
 * (MEM_QUARANTINE bytes, oldest released first) keeps their addresses out of circulation, so a
 * stale free finds them FREED and is reported, with the stack that first freed them.
 *
 * Split into shards, each a ring with its own lock. A thread keeps the blocks it frees in a
 * shard of its own (assigned at its first free, round robin): releasing the oldest block calls
 * the allocator's free, which takes the lock of the arena the block came from, and a shard shared
 * by address would have one thread release another's blocks. Untraced, a thread whose frees are
 * its own blocks never waits for another thread's arena; with a shared shard it waited for the
 * arena of a thread parked in a signal handler inside malloc, for good (issue 17, item 10). With
 * more than 16 freeing threads, shards are shared again.
 *
 * Layer: state.
 */
#include "quarantine.h"
#include "lock.h"
#include "counters.h"

#include <string.h>

/* A shard of 4,096 blocks bounds a thread's quarantine at 4,096 blocks whatever MEM_QUARANTINE
 * says, so one thread's bookkeeping stays near 1.3 MiB (untouched shards cost no memory). Stacks
 * kept here are cut to 16 frames: enough to name the first free's site in a report.
 *
 * History: a block leaving the quarantine (the oldest, or one too large to hold back at all)
 * leaves its metadata behind: address, size, allocation and free stacks, no memory. A double
 * free of it still gets all three stacks. The ring has 256 slots more than it ever holds, so
 * the 256 blocks that left last keep their slots behind the oldest held one until the ring
 * comes round: leaving copies nothing (a copy of both stacks to a separate history was a fifth
 * of the quarantine's instructions). */
#define QUARANTINE_SHARDS 16
#define QUARANTINE_SLOTS 4096
#define HISTORY_SLOTS 256
#define RING_SLOTS (QUARANTINE_SLOTS + HISTORY_SLOTS)
#define RELEASE_BATCH 64   /* blocks released per lock hold (kept on the stack of free) */
#define KEPT_FRAMES 16

struct kept_stack { uint32_t depth; uintptr_t frames[KEPT_FRAMES]; };
struct held_block {
    void *pointer;
    uint64_t bytes;      /* what it holds back: the allocator's usable size */
    uint64_t size;       /* what the program asked for, when known */
    uint64_t departed;   /* 0 while held; then when it left (a process-wide count): the newest wins */
    uint32_t alloc_stack_id;   /* when alloc_stack is empty: its id in the stacks file, or 0 */
    struct kept_stack alloc_stack, free_stack;
};
struct quarantine_shard {
    memtrack_lock lock;
    unsigned head, count;      /* the oldest held block's slot, and how many are held */
    unsigned departed_count;   /* slots behind head with a block that left (at most HISTORY_SLOTS) */
    uint64_t bytes;
    uint64_t budget;           /* MEM_QUARANTINE's share for budget_shards shards in use */
    unsigned budget_shards;
    struct held_block ring[RING_SLOTS];
} __attribute__((aligned(64)));

static struct quarantine_shard quarantine[QUARANTINE_SHARDS];
static atomic_uint_fast64_t departures;
static atomic_uint next_shard;
static MEMTRACK_THREAD_LOCAL unsigned thread_shard;   /* 1 + the index; 0 until the first free */

static inline unsigned ring_slot(unsigned slot) { return slot >= RING_SLOTS ? slot - RING_SLOTS : slot; }

/* The oldest block leaves for the allocator; its slot stays behind as history. */
static void *release_oldest(struct quarantine_shard *shard) {
    struct held_block *oldest = &shard->ring[shard->head];
    oldest->departed = atomic_fetch_add_explicit(&departures, 1, memory_order_relaxed) + 1;
    shard->bytes -= oldest->bytes;
    shard->head = ring_slot(shard->head + 1);
    shard->count--;
    if (shard->departed_count < HISTORY_SLOTS) shard->departed_count++;
    return oldest->pointer;
}

static void keep(struct kept_stack *kept, const struct memtrack_stack *stack) {
    kept->depth = stack && stack->depth < KEPT_FRAMES ? stack->depth : (stack ? KEPT_FRAMES : 0);
    if (kept->depth) memcpy(kept->frames, stack->frames, kept->depth * sizeof(uintptr_t));
}

static void unkeep(struct memtrack_stack *stack, const struct kept_stack *kept) {
    stack->depth = kept->depth;
    memcpy(stack->frames, kept->frames, kept->depth * sizeof(uintptr_t));
}

static struct quarantine_shard *shard_for_this_thread(void) {
    if (MEMTRACK_UNLIKELY(!thread_shard)) thread_shard = 1 + atomic_fetch_add(&next_shard, 1) % QUARANTINE_SHARDS;
    return &quarantine[thread_shard - 1];
}

void memtrack_quarantine_put(void *pointer, uint64_t size, const struct memtrack_stack *alloc_stack,
                             uint32_t alloc_stack_id, const struct memtrack_stack *free_stack) {
    uint64_t bytes = memtrack_usable_size(pointer);
    if (!bytes) bytes = size;
    /* The budget is shared by the shards in use: one thread alone has all of it. */
    unsigned in_use = atomic_load_explicit(&next_shard, memory_order_relaxed);
    in_use = in_use < 1 ? 1 : in_use > QUARANTINE_SHARDS ? QUARANTINE_SHARDS : in_use;
    void *release[RELEASE_BATCH];
    int release_count = 0;
    struct quarantine_shard *shard = shard_for_this_thread();
    memtrack_lock_acquire(&shard->lock);
    if (MEMTRACK_UNLIKELY(shard->budget_shards != in_use)) {   /* a division only when it changes */
        shard->budget = memtrack_config.quarantine_bytes / in_use;
        shard->budget_shards = in_use;
    }
    uint64_t budget = shard->budget;
    /* The blocks released next were freed thousands of frees ago: their slots and the chunk
     * headers the allocator's free reads are cold. Fetched ahead (slots 32 on, headers 16 on),
     * the misses overlap the program's work instead of stalling free: glibc's free fell from
     * 5.9 % of python-malloc's samples to 0.5 %, and time by 7 % (python-malloc) and 15 %
     * (perl), medians of per-pair ratios over 14 and 10 interleaved pairs. */
    if (shard->count > 64) {
        __builtin_prefetch(&shard->ring[ring_slot(shard->head + 32)]);
        __builtin_prefetch((const char *)shard->ring[ring_slot(shard->head + 16)].pointer - 16, 1);
    }
    if (shard->count == QUARANTINE_SLOTS)   /* full: the oldest goes first */
        release[release_count++] = release_oldest(shard);
    struct held_block *held = &shard->ring[ring_slot(shard->head + shard->count)];
    held->pointer = pointer;
    held->bytes = bytes;
    held->size = size;
    held->departed = 0;
    held->alloc_stack_id = alloc_stack_id;
    keep(&held->alloc_stack, alloc_stack);
    keep(&held->free_stack, free_stack);
    shard->count++;
    shard->bytes += bytes;
    for (;;) {
        while (shard->count && shard->bytes > budget && release_count < RELEASE_BATCH)
            release[release_count++] = release_oldest(shard);
        int more = shard->count && shard->bytes > budget;
        memtrack_lock_release(&shard->lock);
        /* Released addresses stay FREED in the shadow index until an allocator hands them out. */
        for (int i = 0; i < release_count; i++) memtrack_next.free(release[i]);
        if (!more) break;
        release_count = 0;
        memtrack_lock_acquire(&shard->lock);
    }
}

/* A bad free is rare: every shard is searched (any thread may have freed the block). */
int memtrack_quarantine_find(uintptr_t address, uint64_t *size, struct memtrack_stack *alloc_stack,
                             uint32_t *alloc_stack_id, struct memtrack_stack *free_stack) {
    int found = 0;
    for (int s = 0; s < QUARANTINE_SHARDS && !found; s++) {
        struct quarantine_shard *shard = &quarantine[s];
        memtrack_lock_acquire(&shard->lock);
        for (unsigned i = 0; i < shard->count && !found; i++) {
            struct held_block *held = &shard->ring[ring_slot(shard->head + i)];
            if ((uintptr_t)held->pointer != address) continue;
            *size = held->size;
            *alloc_stack_id = held->alloc_stack_id;
            unkeep(alloc_stack, &held->alloc_stack);
            unkeep(free_stack, &held->free_stack);
            found = 1;
        }
        memtrack_lock_release(&shard->lock);
    }
    /* Not held back (any more): the block that left last with the address, in any shard. */
    uint64_t newest = 0;
    for (int s = 0; s < QUARANTINE_SHARDS && !found; s++) {
        struct quarantine_shard *shard = &quarantine[s];
        memtrack_lock_acquire(&shard->lock);
        for (unsigned back = 1; back <= shard->departed_count; back++) {
            struct held_block *remembered = &shard->ring[ring_slot(shard->head + RING_SLOTS - back)];
            if ((uintptr_t)remembered->pointer != address || remembered->departed <= newest) continue;
            newest = remembered->departed;
            *size = remembered->size;
            *alloc_stack_id = remembered->alloc_stack_id;
            unkeep(alloc_stack, &remembered->alloc_stack);
            unkeep(free_stack, &remembered->free_stack);
        }
        memtrack_lock_release(&shard->lock);
    }
    return found || newest;
}

void memtrack_quarantine_fork_prepare(void) {
    for (int i = 0; i < QUARANTINE_SHARDS; i++) memtrack_lock_acquire(&quarantine[i].lock);
}
void memtrack_quarantine_fork_parent(void) {
    for (int i = 0; i < QUARANTINE_SHARDS; i++) memtrack_lock_release(&quarantine[i].lock);
}
void memtrack_quarantine_fork_child(void) {
    for (int i = 0; i < QUARANTINE_SHARDS; i++) memtrack_lock_release(&quarantine[i].lock);
}

/* For the leak check: every held block's extent (freed memory is never a root). Shards held
 * by a stopped thread are skipped after a few attempts. */
void memtrack_quarantine_visit(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context) {
    for (int i = 0; i < QUARANTINE_SHARDS; i++) {
        struct quarantine_shard *shard = &quarantine[i];
        if (!memtrack_lock_try_for_signal(&shard->lock, 100)) continue;
        for (unsigned k = 0; k < shard->count; k++) {
            const struct held_block *held = &shard->ring[ring_slot(shard->head + k)];
            if (held->pointer) visit((uintptr_t)held->pointer, (size_t)held->bytes, context);
        }
        memtrack_lock_release(&shard->lock);
    }
}
