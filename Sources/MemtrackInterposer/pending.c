/* pending.c: deferred records. A new block first goes into a bounded in-memory table; only
 * blocks that outlive the settle time (MEM_SETTLE_MS) become files. Most blocks die within
 * microseconds, so most frees are a table removal with no system call.
 *
 * The table is split into shards by address, each with its own small lock: no global lock,
 * and two threads collide only when their blocks hash to the same shard. A writer thread
 * wakes every half settle time, removes the files of freed blocks (queued per shard by the
 * freeing thread, so the program never waits for unlink) and writes the survivors. When a
 * shard is full, the thread that adds to it writes its oldest entry itself: the tracker's
 * memory stays bounded and a program that allocates faster than the writer pays for it.
 *
 * Ordering: a file for address A is only ever removed by a free of A, and A can only be handed
 * out again after that free. The writer empties the removal queues first and then writes only
 * entries allocated before it began (seq < the sequence number read before emptying), so a
 * queued removal can never delete the file of a block allocated later at the same address.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

/* 64 shards x 128 slots: 8,192 young blocks, about 2.5 MiB at the deepest stacks. Shards are
 * filled to 3/4 at most, so probes stay short. */
#define SHARD_COUNT 64
#define SHARD_SLOTS 128
#define SHARD_LIMIT (SHARD_SLOTS * 3 / 4)
/* Removals a shard can queue between two writer wakes before the freeing thread unlinks
 * itself. */
#define REMOVAL_SLOTS 256
/* Files written per lock hold: one, so a thread that frees into the same shard waits for at
 * most one file write (a millisecond on a slow disk; it sleeps meanwhile, see records.c). */
#define WRITES_PER_HOLD 1

/* Frees a signal handler made while its own thread held the shard (see pending_remove). */
#define DEFERRED_SLOTS 16

struct shard {
    memtrack_lock lock;
    atomic_int deferred_count;
    uintptr_t deferred[DEFERRED_SLOTS];
    int count;
    int removal_count;
    uintptr_t removals[REMOVAL_SLOTS];
    struct memtrack_block slots[SHARD_SLOTS];   /* address 0 marks an empty slot */
} __attribute__((aligned(64)));

static struct shard shards[SHARD_COUNT];
/* Held by the writer for a whole pass, and by a flush: a flush must not finish (and the process
 * exit) while the writer holds removals it has taken from the queues but not yet done. */
static memtrack_lock pass_lock;
atomic_int memtrack_synchronous;
static atomic_int writer_running;
/* The writer thread, for the leak check: it is the tracker's, never stopped or scanned. */
atomic_int memtrack_writer_thread;
atomic_uintptr_t memtrack_writer_stack_address;

static inline uint64_t hash_address(uintptr_t address) {
    return (uint64_t)(address >> 4) * 0x9E3779B97F4A7C15ull;   /* Fibonacci hashing */
}
static inline struct shard *shard_for(uintptr_t address) {
    return &shards[hash_address(address) >> 58];
}
static inline unsigned home_slot(uintptr_t address) {
    return (unsigned)(hash_address(address) >> 20) & (SHARD_SLOTS - 1);
}

static int find_slot(struct shard *shard, uintptr_t address) {
    for (unsigned i = home_slot(address), probes = 0; probes < SHARD_SLOTS; i = (i + 1) & (SHARD_SLOTS - 1), probes++) {
        if (shard->slots[i].address == address) return (int)i;
        if (!shard->slots[i].address) return -1;
    }
    return -1;
}

/* Linear-probing deletion by backward shift: no tombstones, so probes never lengthen. */
static void delete_slot(struct shard *shard, unsigned hole) {
    unsigned next = hole;
    for (;;) {
        next = (next + 1) & (SHARD_SLOTS - 1);
        uintptr_t address = shard->slots[next].address;
        if (!address) break;
        unsigned home = home_slot(address);
        int stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
        if (stays) continue;
        shard->slots[hole] = shard->slots[next];
        hole = next;
    }
    shard->slots[hole].address = 0;
    shard->count--;
}

static void insert_slot(struct shard *shard, const struct memtrack_block *block) {
    unsigned i = home_slot(block->address);
    while (shard->slots[i].address) i = (i + 1) & (SHARD_SLOTS - 1);
    shard->slots[i] = *block;
    shard->count++;
}

static void forget_locked(struct shard *shard, uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size, int *queued);

/* Releases a shard, first doing the removals that signal handlers on this thread deferred
 * while it was held. A handler may add more while this runs: each is taken off with a
 * compare-and-swap, so none is lost or done twice. */
static void unlock_shard(struct shard *shard) {
    for (;;) {
        int count = atomic_load(&shard->deferred_count);
        if (!count) break;
        uintptr_t address = shard->deferred[count - 1];
        if (!atomic_compare_exchange_strong(&shard->deferred_count, &count, count - 1)) continue;
        int queued = 0;
        forget_locked(shard, address, NULL, NULL, &queued);
        if (!queued) memtrack_remove_block_file(address);
    }
    memtrack_lock_release(&shard->lock);
}

/* A full shard writes its oldest entry. Queued removals go first: one of them may be for an
 * earlier block at the address about to be written. */
static void write_oldest(struct shard *shard) {
    for (int i = 0; i < shard->removal_count; i++) memtrack_remove_block_file(shard->removals[i]);
    shard->removal_count = 0;
    int oldest = -1;
    for (int i = 0; i < SHARD_SLOTS; i++)
        if (shard->slots[i].address && (oldest < 0 || shard->slots[i].sequence < shard->slots[oldest].sequence))
            oldest = i;
    if (oldest < 0) return;
    memtrack_write_block(&shard->slots[oldest]);
    delete_slot(shard, (unsigned)oldest);
}

void memtrack_pending_add(const struct memtrack_block *block) {
    if (atomic_load_explicit(&memtrack_synchronous, memory_order_relaxed) &&
        atomic_load_explicit(&memtrack_run_directory, memory_order_relaxed) >= 0) {
        memtrack_write_block(block);
        return;
    }
    struct shard *shard = shard_for(block->address);
    memtrack_lock_acquire(&shard->lock);
    if (shard->count >= SHARD_LIMIT) write_oldest(shard);
    insert_slot(shard, block);
    unlock_shard(shard);
}

/* With the shard held: drops the address's table entry, or queues its file's removal for the
 * writer (*queued = 0 when the caller must remove the file itself). */
static void forget_locked(struct shard *shard, uintptr_t address, struct memtrack_stack *alloc_stack,
                          uint64_t *size, int *queued) {
    int slot = find_slot(shard, address);
    if (slot >= 0) {
        if (alloc_stack) *alloc_stack = shard->slots[slot].stack;
        if (size) *size = shard->slots[slot].size;
        delete_slot(shard, (unsigned)slot);
        *queued = 1;   /* nothing left to remove */
        return;
    }
    /* The block has a file (or had no chance of one). Queue its removal for the writer. */
    if (atomic_load_explicit(&writer_running, memory_order_relaxed) &&
        !atomic_load_explicit(&memtrack_synchronous, memory_order_relaxed) &&
        shard->removal_count < REMOVAL_SLOTS) {
        shard->removals[shard->removal_count++] = address;
        *queued = 1;
    }
}

void memtrack_pending_remove(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size) {
    struct shard *shard = shard_for(address);
    if (MEMTRACK_UNLIKELY(memtrack_lock_held_by_me(&shard->lock))) {
        /* A signal handler that frees, interrupting this thread inside the shard: waiting would
         * wait forever. The interrupted code does the removal when it lets go of the shard,
         * before any other thread can see the address again. */
        int count = atomic_load(&shard->deferred_count);
        while (count < DEFERRED_SLOTS &&
               (shard->deferred[count] = address, !atomic_compare_exchange_strong(&shard->deferred_count, &count, count + 1))) {}
        if (count >= DEFERRED_SLOTS) memtrack_note_failure("removing a block record in a signal handler", EAGAIN, &memtrack_unremoved_records);
        return;
    }
    memtrack_lock_acquire(&shard->lock);
    int queued = 0;
    forget_locked(shard, address, alloc_stack, size, &queued);
    unlock_shard(shard);
    if (!queued) memtrack_remove_block_file(address);
}

// ---- Writing out ---------------------------------------------------------------------------
/* Empties one shard's removal queue. Returns 0 if the shard could not be locked (signal).
 * Each unlink happens under the lock: an address taken off the queue but not yet unlinked
 * would let a full shard (write_oldest) write a new block's file at that address first, and
 * the late unlink would then delete the new record. */
static int drain_removals(struct shard *shard, int in_signal) {
    if (in_signal) { if (!memtrack_lock_try_for_signal(&shard->lock, -1)) return 0; }
    else memtrack_lock_acquire(&shard->lock);
    for (int done = 0; shard->removal_count > 0;) {
        memtrack_remove_block_file(shard->removals[--shard->removal_count]);
        if (++done % WRITES_PER_HOLD == 0 && !in_signal) {
            unlock_shard(shard);
            memtrack_lock_acquire(&shard->lock);
        }
    }
    unlock_shard(shard);
    return 1;
}

/* Writes the shard's entries allocated at or before `cutoff_ms` and before `before_sequence`. */
static void write_settled(struct shard *shard, uint32_t cutoff_ms, uint64_t before_sequence, int in_signal) {
    if (in_signal) { if (!memtrack_lock_try_for_signal(&shard->lock, -1)) return; }
    else memtrack_lock_acquire(&shard->lock);
    int written = 0;
    for (unsigned i = 0; i < SHARD_SLOTS;) {
        struct memtrack_block *block = &shard->slots[i];
        if (!block->address || block->milliseconds > cutoff_ms || block->sequence >= before_sequence) { i++; continue; }
        memtrack_write_block(block);
        delete_slot(shard, i);   /* another entry may have moved into slot i: look at it again */
        if (++written % WRITES_PER_HOLD == 0 && !in_signal) {
            unlock_shard(shard);
            memtrack_lock_acquire(&shard->lock);
        }
    }
    unlock_shard(shard);
}

static void write_out(uint32_t cutoff_ms, uint64_t before_sequence, int in_signal) {
    for (int i = 0; i < SHARD_COUNT; i++) drain_removals(&shards[i], in_signal);
    for (int i = 0; i < SHARD_COUNT; i++) write_settled(&shards[i], cutoff_ms, before_sequence, in_signal);
}

void memtrack_pending_flush(int in_signal) {
    if (atomic_load(&memtrack_run_directory) < 0) return;
    /* In a signal handler the writer may be waiting for a shard this thread holds: wait for its
     * pass a bounded while (a few thousand yields), then go ahead without it. */
    int have_pass = in_signal ? memtrack_lock_try_for_signal(&pass_lock, 5000) : (memtrack_lock_acquire(&pass_lock), 1);
    write_out(UINT32_MAX, UINT64_MAX, in_signal);
    /* Frees that raced with the pass above queued their removals after it looked. */
    for (int i = 0; i < SHARD_COUNT; i++) drain_removals(&shards[i], in_signal);
    if (have_pass) memtrack_lock_release(&pass_lock);
}

// ---- The writer thread ------------------------------------------------------------------------
static void *writer_main(void *unused) {
    (void)unused;
    atomic_store(&memtrack_writer_stack_address, (uintptr_t)&unused);
    atomic_store(&memtrack_writer_thread, memtrack_thread_id());
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);   /* signals are the program's, not ours */
    memtrack_busy = 1;                          /* whatever libc allocates for us is ours */
    memtrack_use_private_descriptors();   /* records.c */
    int tick_ms = memtrack_config.settle_ms / 2;
    if (tick_ms < 1) tick_ms = 1;
    if (tick_ms > 100) tick_ms = 100;          /* an idle server's survivors appear within settle + 100 ms */
    struct timespec tick = {tick_ms / 1000, (long)(tick_ms % 1000) * 1000000L};
    for (;;) {
        nanosleep(&tick, NULL);
        memtrack_lock_acquire(&pass_lock);
        if (!atomic_load(&memtrack_synchronous)) {   /* after the final record, nothing is queued */
            int check_requested = memtrack_requests_take();   /* memdir check: write out every young block */
            uint64_t before_sequence = atomic_load(&memtrack_sequence) + 1;
            uint32_t now = memtrack_milliseconds_now();
            uint32_t cutoff = now > (uint32_t)memtrack_config.settle_ms ? now - (uint32_t)memtrack_config.settle_ms : 0;
            write_out(check_requested ? UINT32_MAX : cutoff, before_sequence, 0);
            memtrack_write_modules(0, 0);
            if (check_requested) memtrack_requests_answer();
        }
        memtrack_lock_release(&pass_lock);
    }
    return NULL;
}

void memtrack_pending_start_writer(void) {
    if (memtrack_config.settle_ms == 0 || atomic_load(&memtrack_run_directory) < 0) return;
    if (atomic_exchange(&writer_running, 1)) return;
    pthread_attr_t attributes;
    pthread_t thread;
    memtrack_busy++;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);   /* formatting buffers are a few KiB */
    /* Born with every signal blocked: no handler (the program's, or the leak check's stop
     * signal) may ever run on the writer. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int error = pthread_create(&thread, &attributes, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attributes);
    if (!error) pthread_setname_np(thread, "memtrack-writer");
    memtrack_busy--;
    if (error) {
        /* No thread: fall back to synchronous records, which need none. */
        atomic_store(&writer_running, 0);
        atomic_store(&memtrack_synchronous, 1);
        memtrack_pending_flush(0);
    }
}

// ---- The leak check (leakcheck.c) -----------------------------------------------------------
/* Shows the check every young block the table holds. A shard held by a thread the check has
 * stopped is skipped after a few attempts: its blocks keep the allocator's usable size. */
void memtrack_pending_visit(void (*visit)(const struct memtrack_block *block, void *context), void *context) {
    for (int i = 0; i < SHARD_COUNT; i++) {
        struct shard *shard = &shards[i];
        if (!memtrack_lock_try_for_signal(&shard->lock, 100)) continue;
        for (int j = 0; j < SHARD_SLOTS; j++)
            if (shard->slots[j].address) visit(&shard->slots[j], context);
        memtrack_lock_release(&shard->lock);
    }
}

/* Keeps the writer between passes while the check runs (it would otherwise move entries from
 * the table to files under the check's feet). Returns 1 if taken. */
/* The writer's thread id, waiting (at most 100 ms) for a writer just created to say it. */
int memtrack_pending_writer_thread(void) {
    struct timespec pause = {0, 100000};
    for (int i = 0; i < 1000 && atomic_load(&writer_running) && !atomic_load(&memtrack_writer_thread); i++)
        nanosleep(&pause, NULL);
    return atomic_load(&memtrack_writer_thread);
}

int memtrack_pending_pause_writer(void) { return memtrack_lock_try_for_signal(&pass_lock, 20000); }
void memtrack_pending_resume_writer(void) { memtrack_lock_release(&pass_lock); }

// ---- fork ------------------------------------------------------------------------------------
void memtrack_pending_fork_prepare(void) {
    memtrack_lock_acquire(&pass_lock);
    for (int i = 0; i < SHARD_COUNT; i++) memtrack_lock_acquire(&shards[i].lock);
}

void memtrack_pending_fork_parent(void) {
    for (int i = 0; i < SHARD_COUNT; i++) unlock_shard(&shards[i]);
    memtrack_lock_release(&pass_lock);
}

/* The child's young blocks belong to the parent's record, which the parent will write; the
 * child's record holds only what the child allocates. Only occupied slots are cleared, so the
 * child does not copy the whole table. */
void memtrack_pending_fork_child(void) {
    for (int i = 0; i < SHARD_COUNT; i++) {
        struct shard *shard = &shards[i];
        if (shard->count)
            for (int j = 0; j < SHARD_SLOTS; j++)
                if (shard->slots[j].address) shard->slots[j].address = 0;
        shard->count = 0;
        shard->removal_count = 0;
        atomic_store(&shard->deferred_count, 0);   /* the parent's to do */
        memtrack_lock_release(&shard->lock);
    }
    memtrack_lock_release(&pass_lock);
    atomic_store(&writer_running, 0);   /* threads do not survive fork */
    atomic_store(&memtrack_writer_thread, 0);
}

int memtrack_pending_writer_exists(void) { return atomic_load(&writer_running); }
