/* pending.c: deferred records. A new block first goes into a bounded in-memory table; only
 * blocks that outlive the settle time (MEM_SETTLE_MS) become records. Most blocks die within
 * microseconds, so most frees are a table removal with no system call.
 *
 * The table is split into shards by address (256-byte chunks), each with its own small lock:
 * no global lock, and two threads collide only when their blocks hash to the same shard. Each
 * shard has two parts:
 *   young     128 slots of full blocks (with their stacks), filled to 3/4 at most, found
 *             through a small index by address;
 *   backlog   a growable hash table of compact entries (the stack interned, 32 bytes each)
 *             that takes a young shard's oldest quarter when the young part is full. It grows
 *             within MEM_BACKLOG bytes for all shards together.
 * A free finds its block in either part and no record is ever written for it. A writer thread
 * wakes every half settle time, removes the records of freed blocks (queued per shard by the
 * freeing thread) and writes the settled blocks of both parts. When the backlog budget is spent,
 * the thread applying the events (below) writes the record at once.
 *
 * The backlog is the writer's: the program's threads only queue events for it. A young block
 * moving out and a free of a block that is not young are each a 32-byte event in the shard's
 * ring (`events`), which the writer applies in order (a free: drop the backlog entry, or queue
 * the removal of the record). The backlog's cache and TLB misses, most of a large heap's
 * bookkeeping, are then on the writer's core; a thread finding its ring full applies it itself.
 * A free that needs the allocation's size (a sized delete) looks at once (forget_locked).
 *
 * The writer makes its system calls outside the shard locks, so the program's threads never
 * wait for a file operation: it takes a batch of removals or of records out of a shard, notes
 * their addresses in the shard (`in_flight`), unlocks, does the calls, and locks again to
 * finish. A free of a block whose record is in flight marks it; the writer then removes the
 * record it has just made. A thread that writes a record itself skips addresses in flight.
 *
 * Ordering: a record for address A is only ever removed by a free of A, and A can only be
 * handed out again after that free. The writer always takes queued removals before records,
 * and writes only blocks allocated before its pass began (seq < the sequence number read
 * first), so a queued removal can never delete the record of a block allocated later at A.
 *
 * A free in a signal handler that interrupted its own thread inside a shard cannot wait for
 * that shard: it puts the address on the shard's small lock-free deferred list, and the
 * interrupted code does the removal when it lets go of the shard (unlock_shard).
 *
 * Layer: table, on records. The writer thread itself is writer.c, a layer above the leak check
 * (whose requests it serves); it drives the passes through the functions below.
 */
#include "pending.h"
#include "failure.h"
#include "files.h"
#include "lock.h"
#include "records.h"
#include "stacks.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SHARD_COUNT 64
#define SHARD_SLOTS 128
#define SHARD_LIMIT (SHARD_SLOTS * 3 / 4)
/* Removals a shard can queue between two writer wakes before the freeing thread unlinks
 * itself. */
#define REMOVAL_SLOTS 256
/* Records or removals the writer takes out of a shard per lock hold. */
#define BATCH 64
#define BACKLOG_MIN_SLOTS 1024
/* The longest run of occupied slots an insert may step over (32 KiB of entries). Past it the
 * shard grows, or, with the budget spent, the block is written from the allocating thread, as
 * when the budget is spent. A lookup steps at most as far as the longest placement into its
 * table (backlog_reach: the inserts, and the rehash into a table twice the size, which halves
 * its load), since a deletion only moves entries nearer home. Measured without the bound: the longest
 * inserts were 153 steps (python-malloc, 1.2M inserts) and 550 (perl, 1.0M); the means 1.4
 * and 5.6 (`status`: backlog-probe-max, backlog-probe-steps / backlog-inserts). */
#define BACKLOG_MAX_PROBE 1024
/* Frees a signal handler made while its own thread held the shard (see pending_remove). Since
 * neighbouring blocks share a shard, a handler that frees a run of them defers them all to one
 * shard: fault 3's handler frees 16 at a time, and 16 slots overflowed. */
#define DEFERRED_SLOTS 64
/* The last records and backlog entries removed from a shard, for double-free reports (16,384
 * for all shards: a free of a backlog block reaches the quarantine without its size or stack,
 * which its report then finds here). */
#define REMOVED_SLOTS 256
/* Events a shard queues for the writer; the writer is woken when one shard holds EVENT_WAKE. */
#define EVENT_SLOTS 256
#define EVENT_WAKE 128
/* A free event is the freed address with this bit set (tracked blocks are 8-byte aligned). */
#define FREE_EVENT 1

/* A waiting block in 32 bytes (a memtrack_record is 48): the backlog is most of the tracker's
 * memory with a large heap, and its cache and TLB misses most of the table's time. The stack
 * id carries a memtrack.h location (memtrack_stack_id_at); a block of 4 GiB or more is written
 * instead of waiting here. */
struct backlog_entry {
    uintptr_t address;              /* 0: empty */
    uint64_t sequence_via_family;   /* sequence << 8 | via << 2 | family */
    uint32_t size;
    uint32_t milliseconds;
    uint32_t stack_id;
    int32_t thread;
};
_Static_assert(sizeof(struct backlog_entry) == MEMTRACK_BACKLOG_ENTRY_BYTES, "two backlog entries a cache line");

static inline uint64_t entry_sequence(const struct backlog_entry *entry) { return entry->sequence_via_family >> 8; }

/* A block whose record was removed, as the record gave it (known 0: removed unread). */
struct removed_record {
    uintptr_t address;
    uint64_t size;
    uint32_t stack_id;
    uint32_t known;
};

struct shard {
    memtrack_lock lock;
    atomic_int deferred_count;
    uintptr_t deferred[DEFERRED_SLOTS];
    int count;
    int removal_count;
    int in_flight_count;
    int in_flight_removals;              /* 1: in_flight holds removals; 0: records */
    unsigned backlog_slots, backlog_count, backlog_cursor;
    /* No backlog entry is older than backlog_oldest_ms (a lower bound): the writer's pass skips
     * the sweep of a backlog with nothing settled, instead of reading all of it every tick (a
     * sixth of the writer's time with a million blocks waiting). sweep_oldest_ms gathers the
     * bound of the sweep under way, which becomes backlog_oldest_ms when the sweep ends. */
    uint32_t backlog_oldest_ms, sweep_oldest_ms;
    /* For `status`: inserts into the backlog, the slots they stepped over, the longest run. */
    uint64_t backlog_inserts, backlog_probe_steps;
    unsigned backlog_probe_max;
    unsigned backlog_reach;    /* no entry of this table is further than this from its home */
    struct backlog_entry *backlog;       /* mmap'd, backlog_slots entries; address 0 is empty */
    uintptr_t in_flight[BATCH];          /* low bit set: the block was freed meanwhile */
    uintptr_t *removals;                 /* removal_space, or a larger mmap'd queue */
    unsigned removal_capacity;
    uintptr_t removal_space[REMOVAL_SLOTS];
    /* The young part's index, a linear-probing table by address: each slot's address (0 when
     * empty), its block's sequence and where the block is in `blocks`. Probes read the 1 KiB
     * of addresses instead of a line of each 312-byte block (a free's probe missed the cache
     * in 29 % of its samples in perl's teardown), make_room finds the oldest in the 1 KiB of
     * sequences (9 % of perl's samples before), and a deletion's backward shift moves index
     * entries, not blocks (the blocks' copies were 5 % of python-malloc's samples). */
    uint64_t slot_sequence[SHARD_SLOTS];
    uintptr_t slot_address[SHARD_SLOTS];
    uint8_t slot_block[SHARD_SLOTS];
    /* The blocks, each where it was put; a set bit of used_blocks is a block in use. An insert
     * takes the lowest free block, so a shard whose blocks die young reuses a few warm ones. */
    uint64_t used_blocks[SHARD_SLOTS / 64];
    struct memtrack_block blocks[SHARD_SLOTS];
    /* The records removed last, newest at removed_next - 1: a block freed twice after its
     * record was written has no size or stack in the quarantine, and its record is gone by the
     * second free. The writer reads each record as it removes it (one readlinkat, on its own
     * thread); a program thread that removes one itself leaves a mark that it is not known. */
    struct removed_record removed[REMOVED_SLOTS];
    unsigned removed_next;
    /* Events for the backlog, oldest first: an entry to add, or a freed address | FREE_EVENT. */
    unsigned event_count;
    struct backlog_entry events[EVENT_SLOTS];
} __attribute__((aligned(64)));

_Static_assert(SHARD_SLOTS == 2 * 64, "used_blocks is two words, slot_block a byte");

static struct shard shards[SHARD_COUNT];
/* Held by the writer for a whole pass, and by a flush: a flush must not finish (and the process
 * exit) while the writer holds records or removals it has taken out but not yet done. */
static memtrack_lock pass_lock;
atomic_int memtrack_synchronous;
static atomic_int writer_running;        /* the doorbell: see "For the writer thread" */
static atomic_int drain_requested;       /* a shard's events reached EVENT_WAKE */
atomic_uint_fast64_t memtrack_writer_records, memtrack_program_records, memtrack_backlog_peak;
atomic_uint_fast64_t memtrack_program_removals, memtrack_behind_blocks, memtrack_backlog_peak_bytes;
atomic_uint_fast64_t memtrack_backlog_peak_slots;
atomic_int memtrack_slow_directory;
static atomic_size_t backlog_bytes;      /* mapped by all shards' backlogs */
/* The writer thread, for the leak check: it is the tracker's, never stopped or scanned. */
atomic_int memtrack_writer_thread;
atomic_uintptr_t memtrack_writer_stack_address;

static inline uint64_t hash_address(uintptr_t address) {
    return (uint64_t)(address >> 4) * 0x9E3779B97F4A7C15ull;   /* Fibonacci hashing */
}
static inline uint64_t hash_chunk(uintptr_t address) {
    return (uint64_t)(address >> 8) * 0x9E3779B97F4A7C15ull;
}
/* Locality: the blocks of one 256-byte chunk share a shard, and in its backlog the blocks of
 * one 128-byte chunk take neighbouring slots from a hashed base (8 slots, 16 bytes each).
 * Allocators hand out neighbouring addresses one after another, so a run of inserts touches a
 * few lines of the table instead of one line each at random. The backlog is tens of MiB for a
 * million blocks, and its cache misses were most of perl's and python's bookkeeping: CPU time
 * fell 20 % and 13 % against a hash of the whole address. Wider windows cluster: 256-byte
 * chunks over 16 slots took 18.3 probe steps per insert in perl's 1.0M and 5.7 in python's
 * 1.2M, 128-byte ones over 8 slots 5.6 and 1.4 (a hash of the whole address: 1.8 and 1.9,
 * without the locality), measured with status's backlog-probe-steps. */
static inline struct shard *shard_for(uintptr_t address) {
    return &shards[hash_chunk(address) >> 58];
}
static inline unsigned home_slot(uintptr_t address) {
    return (unsigned)(hash_address(address) >> 20) & (SHARD_SLOTS - 1);
}
static inline unsigned backlog_home(uintptr_t address, unsigned slots) {
    uint64_t base = (uint64_t)(address >> 7) * 0x9E3779B97F4A7C15ull;
    return ((unsigned)(base >> 26) + (unsigned)((address >> 4) & 7)) & (slots - 1);
}

// ---- The young part --------------------------------------------------------------------------
static inline struct memtrack_block *slot_block(struct shard *shard, unsigned slot) {
    return &shard->blocks[shard->slot_block[slot]];
}

static int find_slot(struct shard *shard, uintptr_t address) {
    for (unsigned i = home_slot(address), probes = 0; probes < SHARD_SLOTS; i = (i + 1) & (SHARD_SLOTS - 1), probes++) {
        if (shard->slot_address[i] == address) return (int)i;
        if (!shard->slot_address[i]) return -1;
    }
    return -1;
}

/* Linear-probing deletion by backward shift: no tombstones, so probes never lengthen. */
static void delete_slot(struct shard *shard, unsigned hole) {
    unsigned block = shard->slot_block[hole];
    shard->used_blocks[block / 64] &= ~(1ull << (block % 64));
    unsigned next = hole;
    for (;;) {
        next = (next + 1) & (SHARD_SLOTS - 1);
        uintptr_t address = shard->slot_address[next];
        if (!address) break;
        unsigned home = home_slot(address);
        int stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
        if (stays) continue;
        shard->slot_sequence[hole] = shard->slot_sequence[next];
        shard->slot_address[hole] = address;
        shard->slot_block[hole] = shard->slot_block[next];
        hole = next;
    }
    shard->slot_sequence[hole] = 0;
    shard->slot_address[hole] = 0;
    shard->count--;
}

static void insert_slot(struct shard *shard, const struct memtrack_block *block) {
    unsigned i = home_slot(block->address);
    while (shard->slot_address[i]) i = (i + 1) & (SHARD_SLOTS - 1);
    unsigned word = ~shard->used_blocks[0] ? 0 : 1;   /* never both full: count < SHARD_SLOTS - 1 */
    unsigned taken = word * 64 + (unsigned)__builtin_ctzll(~shard->used_blocks[word]);
    shard->used_blocks[word] |= 1ull << (taken % 64);
    memtrack_copy_block(&shard->blocks[taken], block);
    shard->slot_block[i] = (uint8_t)taken;
    shard->slot_sequence[i] = block->sequence;
    shard->slot_address[i] = block->address;
    shard->count++;
}

// ---- The backlog -----------------------------------------------------------------------------
/* An entry the sweep under way will not read (added, or moved behind its cursor): the bound the
 * sweep ends with must still hold it. */
static inline void note_sweep_entry(struct shard *shard, uint32_t milliseconds) {
    if (milliseconds < shard->sweep_oldest_ms) shard->sweep_oldest_ms = milliseconds;
}

static int backlog_find(struct shard *shard, uintptr_t address) {
    unsigned mask = shard->backlog_slots - 1;
    if (!shard->backlog_count) return -1;
    for (unsigned i = backlog_home(address, shard->backlog_slots), steps = 0; steps <= shard->backlog_reach;
         i = (i + 1) & mask, steps++) {
        if (shard->backlog[i].address == address) return (int)i;
        if (!shard->backlog[i].address) return -1;
    }
    return -1;
}

static void backlog_delete(struct shard *shard, unsigned hole) {
    unsigned mask = shard->backlog_slots - 1, next = hole;
    for (;;) {
        next = (next + 1) & mask;
        uintptr_t address = shard->backlog[next].address;
        if (!address) break;
        unsigned home = backlog_home(address, shard->backlog_slots);
        int stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
        if (stays) continue;
        shard->backlog[hole] = shard->backlog[next];
        /* From the part of the table the sweep has yet to read to the part it has read. */
        if (hole < shard->backlog_cursor && next >= shard->backlog_cursor)
            note_sweep_entry(shard, shard->backlog[hole].milliseconds);
        hole = next;
    }
    shard->backlog[hole].address = 0;
    shard->backlog_count--;
}

/* The first free slot from the address's home, and in *steps the occupied slots stepped over;
 * -1 when that would be more than `limit`. */
static long free_slot(const struct backlog_entry *table, unsigned slots, uintptr_t address, unsigned limit,
                      unsigned *steps) {
    unsigned i = backlog_home(address, slots);
    for (*steps = 0; table[i].address; i = (i + 1) & (slots - 1))
        if (++*steps > limit) return -1;
    return i;
}

/* Doubles the shard's backlog if the budget allows (past_budget: even if not). Returns 0 when it
 * may not grow. */
static int backlog_grow(struct shard *shard, int past_budget) {
    unsigned slots = shard->backlog_slots ? shard->backlog_slots * 2 : BACKLOG_MIN_SLOTS;
    size_t bytes = (size_t)slots * sizeof(struct backlog_entry);
    size_t old_bytes = (size_t)shard->backlog_slots * sizeof(struct backlog_entry);
    if (!past_budget &&
        atomic_load_explicit(&backlog_bytes, memory_order_relaxed) + bytes - old_bytes > memtrack_config.backlog_bytes)
        return 0;
    /* Populated: a probe reads a slot before the insert writes it, so an untouched page would
     * first map the shared zero page, and the write would then replace it with a TLB flush on
     * every core running the process (4.5 % of perl's samples were those IPIs). The table is
     * at least 3/8 full once grown, so every page is written soon anyway. */
    void *fresh = memtrack_sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (fresh == MAP_FAILED) return 0;
    struct backlog_entry *table = fresh;
    unsigned reach = 0, steps;
    for (unsigned i = 0; i < shard->backlog_slots; i++)
        if (shard->backlog[i].address) {
            table[free_slot(table, slots, shard->backlog[i].address, UINT_MAX, &steps)] = shard->backlog[i];
            if (steps > reach) reach = steps;
        }
    shard->backlog_reach = reach;
    if (shard->backlog) memtrack_sys_munmap(shard->backlog, old_bytes);
    atomic_fetch_add(&backlog_bytes, bytes - old_bytes);
    shard->backlog = fresh;
    shard->backlog_slots = slots;
    shard->backlog_cursor = 0;   /* places changed: the writer's sweep starts over */
    shard->sweep_oldest_ms = UINT32_MAX;
    return 1;
}

/* Doubles the shard's removal queue within the same budget. Returns 0 when it may not grow. */
static int grow_removals(struct shard *shard) {
    if (!shard->removals) { shard->removals = shard->removal_space; shard->removal_capacity = REMOVAL_SLOTS; return 1; }
    unsigned capacity = shard->removal_capacity * 2;
    size_t bytes = (size_t)capacity * sizeof(uintptr_t);
    size_t old_bytes = shard->removals == shard->removal_space ? 0 : (size_t)shard->removal_capacity * sizeof(uintptr_t);
    if (atomic_load_explicit(&backlog_bytes, memory_order_relaxed) + bytes - old_bytes > memtrack_config.backlog_bytes)
        return 0;
    uintptr_t *fresh = memtrack_sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) return 0;
    memcpy(fresh, shard->removals, (size_t)shard->removal_count * sizeof(uintptr_t));
    if (old_bytes) memtrack_sys_munmap(shard->removals, old_bytes);
    atomic_fetch_add(&backlog_bytes, bytes - old_bytes);
    shard->removals = fresh;
    shard->removal_capacity = capacity;
    return 1;
}

/* Blocks in all backlogs, read without the shards' locks: a hint. Per-shard counts, summed when
 * asked (by the writer, every tick): a process-wide atomic counter bumped on every move to the
 * backlog and every removal from it was a fifth of pending_add's samples in python-malloc. */
uint64_t memtrack_pending_backlog_records(void) {
    uint64_t waiting = 0;
    for (int i = 0; i < SHARD_COUNT; i++) waiting += __atomic_load_n(&shards[i].backlog_count, __ATOMIC_RELAXED);
    return waiting;
}

/* The status's backlog-peak: the most blocks seen waiting at one of these samples (the writer
 * takes one every tick, the exit flush one before it writes). */
uint64_t memtrack_pending_sample_backlog(void) {
    uint64_t waiting = memtrack_pending_backlog_records();
    uint64_t bytes = atomic_load_explicit(&backlog_bytes, memory_order_relaxed);
    uint64_t peak_bytes = atomic_load_explicit(&memtrack_backlog_peak_bytes, memory_order_relaxed);
    while (bytes > peak_bytes && !atomic_compare_exchange_weak(&memtrack_backlog_peak_bytes, &peak_bytes, bytes)) {}
    uint64_t peak = atomic_load_explicit(&memtrack_backlog_peak, memory_order_relaxed);
    while (waiting > peak && !atomic_compare_exchange_weak(&memtrack_backlog_peak, &peak, waiting)) {}
    if (waiting > peak) {   /* the tables' slots at the peak: its load factor */
        uint64_t slots = 0;
        for (int i = 0; i < SHARD_COUNT; i++) slots += __atomic_load_n(&shards[i].backlog_slots, __ATOMIC_RELAXED);
        atomic_store_explicit(&memtrack_backlog_peak_slots, slots, memory_order_relaxed);
    }
    return waiting;
}

/* Inserts into the backlogs, the occupied slots they stepped over, and the longest such run,
 * read without the shards' locks (for `status`). */
void memtrack_pending_probe_counts(uint64_t *inserts, uint64_t *steps, uint64_t *longest) {
    *inserts = *steps = *longest = 0;
    for (int i = 0; i < SHARD_COUNT; i++) {
        *inserts += __atomic_load_n(&shards[i].backlog_inserts, __ATOMIC_RELAXED);
        *steps += __atomic_load_n(&shards[i].backlog_probe_steps, __ATOMIC_RELAXED);
        unsigned run = __atomic_load_n(&shards[i].backlog_probe_max, __ATOMIC_RELAXED);
        if (run > *longest) *longest = run;
    }
}

/* The record an entry stands for, to write it. */
static void entry_record(struct memtrack_record *record, const struct backlog_entry *entry) {
    record->address = entry->address;
    record->size = entry->size;
    record->sequence = entry_sequence(entry);
    record->milliseconds = entry->milliseconds;
    record->thread = entry->thread;
    record->via = (uint8_t)(entry->sequence_via_family >> 2 & 63);
    record->family = (uint8_t)(entry->sequence_via_family & 3);
    record->stack_id = entry->stack_id;
    uint32_t source, line;
    memtrack_stack_location(entry->stack_id, &source, &line);
    memtrack_record_set_source(record, source, line);
}

/* The entry that stands for a young block (its stack interned). Returns 0 when its stack could
 * not be interned or it does not fit an entry. */
static int make_entry(const struct memtrack_block *block, struct backlog_entry *entry) {
    if (MEMTRACK_UNLIKELY(block->size > UINT32_MAX)) return 0;
    int error;
    uint32_t stack_id = memtrack_stack_id_at(&block->stack, block->source, block->source_line, &error);
    if (!stack_id) return 0;
    *entry = (struct backlog_entry){
        .address = block->address,
        .sequence_via_family = block->sequence << 8 | (uint64_t)(block->via & 63) << 2 | (block->family & 3),
        .size = (uint32_t)block->size,
        .milliseconds = block->milliseconds,
        .stack_id = stack_id,
        .thread = block->thread,
    };
    return 1;
}

/* Puts an entry into the backlog. Returns 0 when the budget is spent (past_budget: only when no
 * memory can be had). */
static int backlog_insert(struct shard *shard, const struct backlog_entry *entry, int past_budget) {
    if ((shard->backlog_count + 1) * 4 > shard->backlog_slots * 3 && !backlog_grow(shard, past_budget)) return 0;
    /* A free slot within BACKLOG_MAX_PROBE steps of the entry's home, or after growing. */
    unsigned steps;
    long slot = free_slot(shard->backlog, shard->backlog_slots, entry->address, BACKLOG_MAX_PROBE, &steps);
    if (slot < 0) {
        if (!backlog_grow(shard, past_budget)) return 0;
        slot = free_slot(shard->backlog, shard->backlog_slots, entry->address, UINT_MAX, &steps);
    }
    shard->backlog[slot] = *entry;
    shard->backlog_inserts++;
    shard->backlog_probe_steps += steps;
    if (steps > shard->backlog_probe_max) shard->backlog_probe_max = steps;
    if (steps > shard->backlog_reach) shard->backlog_reach = steps;
    if (!shard->backlog_count || entry->milliseconds < shard->backlog_oldest_ms)
        shard->backlog_oldest_ms = entry->milliseconds;
    note_sweep_entry(shard, entry->milliseconds);
    __atomic_store_n(&shard->backlog_count, shard->backlog_count + 1, __ATOMIC_RELAXED);
    return 1;
}

static void note_removed(struct shard *shard, const struct removed_record *removed) {
    shard->removed[shard->removed_next++ % REMOVED_SLOTS] = *removed;
}

/* The writer's removal of a record, read first (3.5 µs more a removal on this VM, on the
 * writer's thread) when a double free can be reported with what it read: with no quarantine,
 * its report has no stacks of the block anyway. Not in the final flush (synchronous): the
 * process is ending, and a teardown's removals are thousands (python's 5,600 read at exit
 * cost 22 µs each on xfs, on the exiting thread). */
static void remove_reading(uintptr_t address, struct removed_record *removed) {
    removed->address = address;
    removed->size = 0;
    removed->stack_id = 0;
    removed->known = 0;
    if (!memtrack_config.quarantine_bytes || atomic_load_explicit(&memtrack_synchronous, memory_order_relaxed))
        memtrack_remove_block_file(address);
    else removed->known = (uint32_t)memtrack_remove_block_file_noting(address, &removed->size, &removed->stack_id);
}

/* The same with the shard held, noted at once. */
static void remove_noting(struct shard *shard, uintptr_t address) {
    struct removed_record removed;
    remove_reading(address, &removed);
    note_removed(shard, &removed);
}

static int in_flight(const struct shard *shard, uintptr_t address) {
    for (int i = 0; i < shard->in_flight_count; i++)
        if ((shard->in_flight[i] & ~(uintptr_t)1) == address) return 1;
    return 0;
}

static void unlock_shard(struct shard *shard);
static void apply_events(struct shard *shard, int by_writer);
static void wake_writer(void);

/* Writes a block's record from this thread (no room for it in memory). Queued removals and
 * events go first: one of them may be for an earlier block at the address about to be written. */
static void write_now(struct shard *shard, const struct memtrack_block *block, const struct backlog_entry *entry,
                      int by_writer) {
    if (shard->event_count) apply_events(shard, by_writer);
    for (int i = 0; i < shard->removal_count; i++) {
        memtrack_remove_block_file(shard->removals[i]);
        note_removed(shard, &(struct removed_record){.address = shard->removals[i]});
    }
    shard->removal_count = 0;
    if (block) memtrack_write_block(block);
    else {
        struct memtrack_record record;
        entry_record(&record, entry);
        memtrack_write_record(&record);
    }
    atomic_fetch_add_explicit(by_writer ? &memtrack_writer_records : &memtrack_program_records, 1, memory_order_relaxed);
    if (!by_writer) memtrack_pending_warn_if_slow();
}

/* An entry the events move into the backlog, or, with the budget spent, write. A removal of an
 * earlier record at the address may be in flight on the writer's thread: such an entry goes
 * into the backlog past the budget rather than race the removal with a new record. */
static void add_entry(struct shard *shard, const struct backlog_entry *entry, int by_writer) {
    if (backlog_insert(shard, entry, 0)) return;
    if (!in_flight(shard, entry->address)) write_now(shard, NULL, entry, by_writer);
    else if (!backlog_insert(shard, entry, 1))
        memtrack_note_failure("keeping a block's record in memory", ENOMEM, &memtrack_unrecorded_blocks);
}

/* Whether the writer takes the backlog's work: it applies the events and does the removals. */
static inline int writer_takes_events(void) {
    return atomic_load_explicit(&writer_running, memory_order_relaxed) &&
           !atomic_load_explicit(&memtrack_synchronous, memory_order_relaxed);
}

static void queue_event(struct shard *shard, const struct backlog_entry *event) {
    if (MEMTRACK_UNLIKELY(shard->event_count == EVENT_SLOTS)) apply_events(shard, 0);   /* the writer is behind */
    shard->events[shard->event_count++] = *event;
    if (MEMTRACK_UNLIKELY(shard->event_count == EVENT_WAKE) &&
        !atomic_load_explicit(&drain_requested, memory_order_relaxed)) {
        atomic_store(&drain_requested, 1);
        wake_writer();
    }
}

/* Moves a young entry to the backlog: an event for the writer, or with no writer at once. */
static void move_out(struct shard *shard, unsigned slot) {
    struct backlog_entry entry;
    const struct memtrack_block *block = slot_block(shard, slot);
    if (!make_entry(block, &entry)) write_now(shard, block, NULL, 0);
    else if (writer_takes_events()) queue_event(shard, &entry);
    else {
        if (shard->event_count) apply_events(shard, 0);
        add_entry(shard, &entry, 0);
    }
    delete_slot(shard, slot);
}

/* The young part is full: its oldest entries move out, those in the oldest quarter of the
 * span of sequences it holds (about a quarter of them). One scan for a batch: a scan for each
 * single oldest entry was a third of pending_add's time in perl and python. The oldest are the
 * likeliest to live on, so the young part keeps the blocks most likely to die in it. Entries
 * whose address the writer has in flight stay (the writer may be making or removing a record
 * at that address). */
static void make_room(struct shard *shard) {
    int busy = shard->in_flight_count != 0;
    uint64_t oldest = UINT64_MAX, newest = 0;
    for (int i = 0; i < SHARD_SLOTS; i++) {
        uint64_t sequence = shard->slot_sequence[i];
        if (!sequence || (busy && in_flight(shard, shard->slot_address[i]))) continue;
        if (sequence < oldest) oldest = sequence;
        if (sequence > newest) newest = sequence;
    }
    if (!newest) return;   /* all in flight: the spare slots take the new block */
    uint64_t limit = oldest + (newest - oldest) / 4;
    /* The batch's blocks (the oldest here: cold by now, their first three lines hold a stack
     * of MEM_DEPTH's default), fetched in parallel. With the blocks fetched too, medians of
     * per-pair time ratios 0.95 (python-malloc) and 0.94 (perl), 14 pairs. */
    for (unsigned i = 0; i < SHARD_SLOTS; i++)
        if (shard->slot_sequence[i] && shard->slot_sequence[i] <= limit) {
            const char *block = (const char *)slot_block(shard, i);
            __builtin_prefetch(block);
            __builtin_prefetch(block + 64);
            __builtin_prefetch(block + 128);
        }
    for (unsigned i = 0; i < SHARD_SLOTS;) {
        uint64_t sequence = shard->slot_sequence[i];
        if (!sequence || sequence > limit || (busy && in_flight(shard, shard->slot_address[i]))) { i++; continue; }
        move_out(shard, i);   /* another entry may have moved into slot i: look at it again */
    }
}

/* A hint, read without the shard's lock (a stale table or size only makes a useless prefetch,
 * which cannot fault), for a free that will look in the backlog itself (a sized delete): made
 * before it unwinds, the cache miss overlaps the walk instead of following it. A plain free
 * leaves the backlog to the writer and needs none. */
void memtrack_pending_prefetch_free(uintptr_t address) {
    struct shard *shard = shard_for(address);
    struct backlog_entry *table = __atomic_load_n(&shard->backlog, __ATOMIC_RELAXED);
    unsigned slots = __atomic_load_n(&shard->backlog_slots, __ATOMIC_RELAXED);
    if (table && slots) __builtin_prefetch(&table[backlog_home(address, slots)]);
}

void memtrack_pending_add(const struct memtrack_block *block) {
    if (atomic_load_explicit(&memtrack_synchronous, memory_order_relaxed) &&
        atomic_load_explicit(&memtrack_run_directory, memory_order_relaxed) >= 0) {
        memtrack_write_block(block);
        return;
    }
    struct shard *shard = shard_for(block->address);
    memtrack_lock_acquire(&shard->lock);
    if (shard->count >= SHARD_LIMIT) make_room(shard);
    if (shard->count < SHARD_SLOTS - 1) insert_slot(shard, block);
    else write_now(shard, block, NULL, 0);
    unlock_shard(shard);
}

/* With the shard held, for an address that is not young: drops its backlog entry, marks its
 * record in flight, or queues its record's removal for the writer. Returns 0 when the caller
 * must remove the record itself. *size, *stack_id: a backlog entry's, if asked. */
static int forget_settled(struct shard *shard, uintptr_t address, uint64_t *size, uint32_t *stack_id) {
    int slot = backlog_find(shard, address);
    if (slot >= 0) {   /* the stack is interned: the quarantine's reports do without it */
        const struct backlog_entry *entry = &shard->backlog[slot];
        if (size) *size = entry->size;
        if (stack_id) *stack_id = entry->stack_id;
        if (memtrack_config.quarantine_bytes)   /* for a double free's report */
            note_removed(shard, &(struct removed_record){.address = address, .size = entry->size,
                                                          .stack_id = entry->stack_id, .known = 1});
        backlog_delete(shard, (unsigned)slot);
        return 1;
    }
    if (!shard->in_flight_removals)
        for (int i = 0; i < shard->in_flight_count; i++)
            if (shard->in_flight[i] == address) {   /* the writer removes it once written */
                shard->in_flight[i] |= 1;
                return 1;
            }
    /* The block has a record (or had no chance of one). Queue its removal for the writer. */
    if (writer_takes_events() && (shard->removal_count < (int)shard->removal_capacity || grow_removals(shard))) {
        shard->removals[shard->removal_count++] = address;
        return 1;
    }
    note_removed(shard, &(struct removed_record){.address = address});   /* unknown */
    return 0;
}

static inline void prefetch_event_slot(const struct shard *shard, unsigned event) {
    if (shard->backlog_slots)
        __builtin_prefetch(&shard->backlog[backlog_home(shard->events[event].address & ~(uintptr_t)FREE_EVENT, shard->backlog_slots)]);
}

/* Applies the shard's events in order, with the shard held: by the writer or a flush (by_writer),
 * or by a program thread whose ring is full or which needs the backlog as it is now. */
static void apply_events(struct shard *shard, int by_writer) {
    /* Emptied first, so that a record written on the way (write_now) finds no events to apply.
     * Nothing queues one meanwhile: the shard is held, and a signal handler's free on this
     * thread waits in the deferred list until unlock_shard. */
    unsigned count = shard->event_count;
    shard->event_count = 0;
    /* The backlog is tens of MiB: fetch the slots of the events a few ahead. */
    for (unsigned i = 0; i < count && i < 8; i++) prefetch_event_slot(shard, i);
    for (unsigned i = 0; i < count; i++) {
        if (i + 8 < count) prefetch_event_slot(shard, i + 8);
        const struct backlog_entry *event = &shard->events[i];
        if (!event->address) continue;   /* withdrawn by a sized delete (forget_locked) */
        if (event->address & FREE_EVENT) {
            uintptr_t address = event->address & ~(uintptr_t)FREE_EVENT;
            if (!forget_settled(shard, address, NULL, NULL)) {
                memtrack_remove_block_file(address);
                atomic_fetch_add_explicit(&memtrack_program_removals, 1, memory_order_relaxed);
            }
        } else {
            add_entry(shard, event, by_writer);
        }
    }
}

/* The newest of the shard's events for the address (an entry, or a free of an earlier block
 * there), or -1. */
static int newest_event(const struct shard *shard, uintptr_t address) {
    for (unsigned i = shard->event_count; i-- > 0;)
        if ((shard->events[i].address & ~(uintptr_t)FREE_EVENT) == address) return (int)i;
    return -1;
}

/* With the shard held: drops the address's young entry, or hands the rest to the writer as a
 * free event. Asked for the stack id (a sized delete's check needs the size now), it looks
 * itself: an entry still among the events is withdrawn there, and the backlog is read at once
 * unless a free of an earlier block at the address waits among them (then they are applied
 * first). Applying them all for every sized delete made the thread that deletes what others
 * allocate (threaded.cpp's consumer) do the others' backlog work: 20 % more time, 35 MiB more
 * memory while its producers ran ahead. *queued = 0 when the caller must remove the record
 * itself. */
static void forget_locked(struct shard *shard, uintptr_t address, struct memtrack_stack *alloc_stack,
                          uint64_t *size, uint32_t *stack_id, int *queued) {
    *queued = 1;
    int slot = find_slot(shard, address);
    if (slot >= 0) {
        if (alloc_stack) memtrack_copy_stack(alloc_stack, &slot_block(shard, (unsigned)slot)->stack);
        if (size) *size = slot_block(shard, (unsigned)slot)->size;
        delete_slot(shard, (unsigned)slot);
        return;
    }
    if (!stack_id && writer_takes_events()) {
        queue_event(shard, &(struct backlog_entry){.address = address | FREE_EVENT});
        return;
    }
    int newest = shard->event_count ? newest_event(shard, address) : -1;
    if (newest >= 0 && !(shard->events[newest].address & FREE_EVENT)) {
        struct backlog_entry *entry = &shard->events[newest];
        if (size) *size = entry->size;
        if (stack_id) *stack_id = entry->stack_id;
        entry->address = 0;   /* never reaches the backlog, and no record was made of it */
        return;
    }
    if (newest >= 0) apply_events(shard, 0);
    *queued = forget_settled(shard, address, size, stack_id);
}

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
        forget_locked(shard, address, NULL, NULL, NULL, &queued);
        if (!queued) memtrack_remove_block_file(address);
    }
    memtrack_lock_release(&shard->lock);
}

static void remove_pending(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size, uint32_t *stack_id) {
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
    forget_locked(shard, address, alloc_stack, size, stack_id, &queued);
    unlock_shard(shard);
    if (!queued) {
        memtrack_remove_block_file(address);
        atomic_fetch_add_explicit(&memtrack_program_removals, 1, memory_order_relaxed);
    }
}

void memtrack_pending_remove(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size) {
    remove_pending(address, alloc_stack, size, NULL);
}

/* The same, for a checked deallocation: a backlog entry keeps only its stack's id in the stacks
 * file, handed back in *stack_id (0 otherwise), so that the file is read only for a report. */
void memtrack_pending_remove_noting_stack(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size,
                                          uint32_t *stack_id) {
    *stack_id = 0;
    remove_pending(address, alloc_stack, size, stack_id);
}

/* For a double free's report when the quarantine knows nothing of the block's allocation (its
 * record had been written): the size and stack id the record gave. A removal still queued or in
 * flight is read from the record itself; the writer may have removed it and not yet noted it
 * (it notes a batch when it takes the shard again): then look again, a bounded number of times.
 * Returns 1 if known. */
int memtrack_pending_removed_record(uintptr_t address, uint64_t *size, uint32_t *stack_id) {
    struct shard *shard = shard_for(address);
    if (memtrack_lock_held_by_me(&shard->lock)) return 0;   /* a handler inside its own thread's hold */
    for (int attempt = 0; attempt < 64; attempt++) {
        memtrack_lock_acquire(&shard->lock);
        if (shard->event_count) apply_events(shard, 0);   /* the free of it may wait there */
        int waiting = in_flight(shard, address), known = 0;
        for (int i = 0; i < shard->removal_count && !waiting; i++) waiting = shard->removals[i] == address;
        for (unsigned back = 1; !waiting && back <= REMOVED_SLOTS && back <= shard->removed_next; back++) {
            const struct removed_record *removed = &shard->removed[(shard->removed_next - back) % REMOVED_SLOTS];
            if (removed->address != address) continue;
            known = (int)removed->known;   /* the newest removal at the address: this block's */
            *size = removed->size;
            *stack_id = removed->stack_id;
            break;
        }
        unlock_shard(shard);
        if (!waiting) return known;
        struct memtrack_record_fields fields;
        if (memtrack_read_block_record(address, &fields, NULL)) {
            *size = fields.size;
            *stack_id = fields.stack_id;
            return 1;
        }
        sched_yield();
    }
    return 0;
}

// ---- Writing out ---------------------------------------------------------------------------
struct pass {
    uint32_t cutoff_ms;          /* write blocks allocated at or before this */
    uint64_t before_sequence;    /* and before this sequence number */
    int in_signal;
    int skip_busy;               /* leave a shard with another pass's batch out for later */
    int yields;                  /* the writer's own pass: ends early when the leak check waits */
    int removals_first;          /* the writer's own pass: see write_out */
};

/* Set while the leak check waits for the writer's pass to end (memtrack_pending_pause_writer). */
static atomic_int pause_requested;
/* Set while a thread waits for the writer to walk the loader's list (loaderwalk.c): a pass on a
 * disk can take seconds, and the walk's asker gives up after 2 s. */
static atomic_int call_requested;
static int pass_yields(const struct pass *pass) {
    return pass->yields && (atomic_load_explicit(&pause_requested, memory_order_relaxed) ||
                            atomic_load_explicit(&call_requested, memory_order_relaxed));
}

static int lock_shard(struct shard *shard, int in_signal) {
    if (in_signal) {
        if (memtrack_lock_try_for_signal(&shard->lock, -1)) return 1;
        /* Held by the code this handler interrupted, or by a thread stuck for seconds: the
         * shard's young records are not written, and the record says it is incomplete. */
        memtrack_note_failure("writing records in a signal handler: a record table stayed locked", EDEADLK,
                              &memtrack_unrecorded_events);
        return 0;
    }
    memtrack_lock_acquire(&shard->lock);
    return 1;
}

static int eligible(uintptr_t address, uint32_t milliseconds, uint64_t sequence, const struct pass *pass) {
    return address && milliseconds <= pass->cutoff_ms && sequence < pass->before_sequence;
}

/* Takes a batch of settled records out of the shard (young entries first, then the backlog
 * from its sweep cursor). Young entries' stacks are interned later, outside the lock. */
static int take_records(struct shard *shard, const struct pass *pass, struct memtrack_block *young,
                        int *young_count, struct backlog_entry *old) {
    int taken = 0;
    *young_count = 0;
    for (unsigned i = 0; i < SHARD_SLOTS && taken < BATCH;) {
        struct memtrack_block *block = slot_block(shard, i);
        if (!shard->slot_address[i] || !eligible(block->address, block->milliseconds, block->sequence, pass)) { i++; continue; }
        memtrack_copy_block(&young[(*young_count)++], block);
        shard->in_flight[taken++] = block->address;
        delete_slot(shard, i);   /* another entry may have moved into slot i: look at it again */
    }
    if (shard->backlog_oldest_ms > pass->cutoff_ms || !pass->before_sequence)   /* none settled */
        shard->backlog_cursor = shard->backlog_slots;
    while (shard->backlog_count && shard->backlog_cursor < shard->backlog_slots && taken < BATCH) {
        struct backlog_entry *entry = &shard->backlog[shard->backlog_cursor];
        if (!eligible(entry->address, entry->milliseconds, entry_sequence(entry), pass)) {
            if (entry->address) note_sweep_entry(shard, entry->milliseconds);
            shard->backlog_cursor++;
            if (shard->backlog_cursor == shard->backlog_slots) shard->backlog_oldest_ms = shard->sweep_oldest_ms;
            continue;
        }
        old[taken - *young_count] = *entry;
        shard->in_flight[taken++] = entry->address;
        backlog_delete(shard, shard->backlog_cursor);
    }
    shard->in_flight_count = taken;
    shard->in_flight_removals = 0;
    return taken;
}

/* Removals queued in the other shards (read without their locks: a hint). */
static unsigned removals_elsewhere(const struct shard *except) {
    unsigned waiting = 0;
    for (int i = 0; i < SHARD_COUNT; i++)
        if (&shards[i] != except) waiting += (unsigned)__atomic_load_n(&shards[i].removal_count, __ATOMIC_RELAXED);
    return waiting;
}

enum shard_work { SHARD_ALL, SHARD_RESUME, SHARD_REMOVALS };

/* Empties the shard: removals first, then settled records, a batch per lock hold. SHARD_RESUME
 * goes on with the backlog sweep where an interrupted call left it; SHARD_REMOVALS does only
 * the removals. Returns 1 when it stopped early because removals wait in other shards. */
static int write_shard(struct shard *shard, const struct pass *pass, enum shard_work work) {
    struct memtrack_block young[BATCH];
    struct backlog_entry old[BATCH];
    uintptr_t removals[BATCH];
    struct removed_record removed[BATCH];
    int interrupted = 0;
    if (!lock_shard(shard, pass->in_signal)) return 0;
    if (work == SHARD_ALL) shard->backlog_cursor = 0, shard->sweep_oldest_ms = UINT32_MAX;
    for (;;) {
        /* A signal handler's flush may meet the writer's batch out of this shard: it does its
         * own work under the lock then, leaving the writer's in-flight list alone. */
        int hold = shard->in_flight_count != 0;
        if (hold && !pass->in_signal && pass->skip_busy) break;
        if (hold && !pass->in_signal) {
            unlock_shard(shard);
            sched_yield();
            memtrack_lock_acquire(&shard->lock);
            continue;
        }
        /* The events first: a free among them may queue a removal that must precede a record
         * at its address, and a block among them is not settled in the backlog yet. What they
         * write counts as the pass's (the writer's or the exit flush's: writer-records). */
        if (shard->event_count) apply_events(shard, 1);
        int count = 0, young_count = 0, removing = shard->removal_count != 0;
        if (removing) {
            while (shard->removal_count && count < BATCH) {
                removals[count] = shard->removals[--shard->removal_count];
                count++;
            }
            if (hold) {
                for (int i = 0; i < count; i++) remove_noting(shard, removals[i]);
                continue;
            }
            memcpy(shard->in_flight, removals, (size_t)count * sizeof removals[0]);
            shard->in_flight_count = count;
            shard->in_flight_removals = 1;
        } else if (hold) {
            int found = -1;
            for (unsigned i = 0; i < SHARD_SLOTS && found < 0; i++) {
                const struct memtrack_block *block = slot_block(shard, i);
                if (shard->slot_address[i] && eligible(block->address, block->milliseconds, block->sequence, pass))
                    found = (int)i;
            }
            if (found >= 0) { memtrack_write_block(slot_block(shard, (unsigned)found)); delete_slot(shard, (unsigned)found); continue; }
            for (unsigned i = 0; i < shard->backlog_slots; i++)
                if (eligible(shard->backlog[i].address, shard->backlog[i].milliseconds, entry_sequence(&shard->backlog[i]), pass)) {
                    struct memtrack_record record;
                    entry_record(&record, &shard->backlog[i]);
                    memtrack_write_record(&record);
                    backlog_delete(shard, i);
                    i--;
                }
            break;
        } else if (work == SHARD_REMOVALS) {
            break;
        } else {
            count = take_records(shard, pass, young, &young_count, old);
        }
        if (!count) break;
        unlock_shard(shard);
        if (removing) {
            for (int i = 0; i < count; i++) remove_reading(removals[i], &removed[i]);
        } else {
            for (int i = 0; i < young_count; i++) memtrack_write_block(&young[i]);
            for (int i = 0; i < count - young_count; i++) {
                struct memtrack_record record;
                entry_record(&record, &old[i]);
                memtrack_write_record(&record);
            }
            atomic_fetch_add_explicit(&memtrack_writer_records, (uint64_t)count, memory_order_relaxed);
        }
        if (!lock_shard(shard, pass->in_signal)) return 0;  /* cannot happen: signals see no in-flight */
        for (int i = 0; i < count; i++) {
            if (removing) note_removed(shard, &removed[i]);
            else if (shard->in_flight[i] & 1) remove_noting(shard, shard->in_flight[i] & ~(uintptr_t)1);
        }
        shard->in_flight_count = 0;
        if (pass_yields(pass)) break;
        if (pass->yields && atomic_load_explicit(&drain_requested, memory_order_relaxed)) {
            unlock_shard(shard);   /* no shard held while the others' events are applied */
            memtrack_pending_drain_events();
            memtrack_lock_acquire(&shard->lock);
        }
        if (!removing && pass->removals_first && removals_elsewhere(shard) >= BATCH) { interrupted = 1; break; }
    }
    unlock_shard(shard);
    return interrupted;
}

static int backlog_waiting(void) {
    if (memtrack_pending_backlog_records()) return 1;
    for (int i = 0; i < SHARD_COUNT; i++)
        if (__atomic_load_n(&shards[i].event_count, __ATOMIC_RELAXED)) return 1;
    return 0;
}

/* The writer's own pass puts removals before new records across all shards, not only within
 * one: a record waiting for removal shows a freed block, and when the program frees much (a
 * teardown), records it would write now are mostly of blocks about to be freed: each would
 * cost a create and a removal, and removals left queued at exit are done while the program
 * waits (perl's exit waited 1.3 s for them). */
static void write_out(const struct pass *pass) {
    for (int i = 0; i < SHARD_COUNT && !pass_yields(pass); i++) {
        enum shard_work work = SHARD_ALL;
        while (write_shard(&shards[i], pass, work) && !pass_yields(pass)) {
            for (int j = 0; j < SHARD_COUNT && !pass_yields(pass); j++)
                if (j != i && __atomic_load_n(&shards[j].removal_count, __ATOMIC_RELAXED))
                    write_shard(&shards[j], pass, SHARD_REMOVALS);
            work = SHARD_RESUME;
        }
    }
}

/* The exit flush goes from the back while the writer helps from the front: they meet once. */
static void write_out_backwards(const struct pass *pass) {
    for (int i = SHARD_COUNT - 1; i >= 0; i--) write_shard(&shards[i], pass, SHARD_ALL);
}

/* The writer sleeps on this word between passes; a flush wakes it to help. */
static atomic_int writer_wake;
static atomic_int flush_requested;

static void wake_writer(void) {
    atomic_fetch_add(&writer_wake, 1);
    memtrack_sys_futex_wake(&writer_wake, 1);
}
void memtrack_pending_wake_writer(void) { if (atomic_load(&writer_running)) wake_writer(); }
/* Ends the writer's own pass after its current batch, and wakes the writer. */
void memtrack_pending_call_writer(void) {
    atomic_store(&call_requested, 1);
    memtrack_pending_wake_writer();
}
void memtrack_pending_writer_called(void) { atomic_store(&call_requested, 0); }

// ---- For the writer thread (writer.c) ---------------------------------------------------------
static atomic_int warned_slow;
/* On a disk (not tmpfs) a writer that cannot keep up makes the program slow: say so, once. */
void memtrack_pending_warn_if_slow(void) {
    if (!atomic_load_explicit(&memtrack_slow_directory, memory_order_relaxed)) return;
    uint64_t waiting = memtrack_pending_backlog_records();
    if ((waiting < 100000 && !atomic_load(&memtrack_program_records)) || atomic_exchange(&warned_slow, 1)) return;
    memtrack_say("memtrack: warning: MEM_DIR is not on tmpfs and the record writer is falling behind, "
                 "so the program runs slower; put MEM_DIR on tmpfs (e.g. MEM_DIR=/dev/shm/mem) for speed\n");
}

/* Whether a writer runs; set by the writer's start (0 when its thread could not be made). */
int memtrack_pending_set_writer_running(int running) { return atomic_exchange(&writer_running, running); }

/* Sleeps until woken or for tick, unless a flush asks for help or a thread waits for a call
 * (made, perhaps, before this writer first came here). */
void memtrack_pending_wait_for_work(const struct timespec *tick) {
    int wake = atomic_load(&writer_wake);
    if (!atomic_load(&flush_requested) && !atomic_load(&call_requested) && !atomic_load(&drain_requested))
        memtrack_sys_futex_wait_for(&writer_wake, wake, tick);
}

int memtrack_pending_drain_requested(void) { return atomic_load_explicit(&drain_requested, memory_order_relaxed); }

/* Applies every shard's events (the writer, holding no shard; or the leak check, which leaves a
 * shard that another thread holds for long as it is: its lookups read the events too). */
static void drain_events(int by_writer) {
    atomic_store(&drain_requested, 0);   /* a ring filling from now on asks again */
    for (int i = 0; i < SHARD_COUNT; i++) {
        struct shard *shard = &shards[i];
        if (!__atomic_load_n(&shard->event_count, __ATOMIC_RELAXED)) continue;
        if (by_writer) memtrack_lock_acquire(&shard->lock);
        else if (!memtrack_lock_try_for_signal(&shard->lock, 100)) continue;
        apply_events(shard, by_writer);
        unlock_shard(shard);
    }
}
void memtrack_pending_drain_events(void) { drain_events(1); }
int memtrack_pending_flush_requested(void) { return atomic_load(&flush_requested); }
void memtrack_pending_flush_helped(void) { atomic_store(&flush_requested, 0); }

/* A pass holds pass_lock (see memtrack_pending_flush): between begin and end, passes. */
void memtrack_pending_begin_pass(void) { memtrack_lock_acquire(&pass_lock); }
void memtrack_pending_end_pass(void) { memtrack_lock_release(&pass_lock); }
/* Writes the blocks allocated at or before cutoff_ms and before before_sequence, and the
 * queued removals; yields: ends early when the leak check waits (memtrack_pending_pause_writer). */
void memtrack_pending_writer_pass(uint32_t cutoff_ms, uint64_t before_sequence, int yields, int removals_first) {
    struct pass pass = {.cutoff_ms = cutoff_ms, .before_sequence = before_sequence, .skip_busy = 1,
                        .yields = yields, .removals_first = removals_first};
    write_out(&pass);
}

void memtrack_pending_flush(int in_signal) {
    if (atomic_load(&memtrack_run_directory) < 0) return;
    struct pass pass = {UINT32_MAX, UINT64_MAX, in_signal, 0};
    memtrack_pending_sample_backlog();
    if (!in_signal && atomic_load(&writer_running)) {
        /* Two threads write a large live set at exit: the writer takes shards from the front
         * while this thread does the same from the back; a shard with the other's batch out is
         * left to the other, and the passes below catch what is left. */
        atomic_store(&flush_requested, 1);
        wake_writer();
        pass.skip_busy = 1;
        write_out_backwards(&pass);
        pass.skip_busy = 0;
    }
    /* The writer's pass must end before this one does: it may hold records or removals it has
     * taken out but not done. In a signal handler the writer may be waiting for a shard this
     * thread holds: wait for its pass a bounded while (a few thousand yields), then go ahead. */
    int have_pass = in_signal ? memtrack_lock_try_for_signal(&pass_lock, 5000) : (memtrack_lock_acquire(&pass_lock), 1);
    atomic_store(&flush_requested, 0);
    write_out(&pass);
    /* Frees that raced with the pass above queued their removals after it looked; backlog
     * entries moved by a concurrent delete may have slipped behind a sweep cursor. */
    for (int round = 0; round < 4 && backlog_waiting(); round++) write_out(&pass);
    write_out(&pass);
    if (have_pass) memtrack_lock_release(&pass_lock);
}

// ---- The leak check (leakcheck.c) -----------------------------------------------------------
/* Shows the check every young block the table holds. A shard held by a thread the check has
 * stopped is skipped after a few attempts: its blocks keep the allocator's usable size. */
void memtrack_pending_visit(void (*visit)(const struct memtrack_block *block, void *context), void *context) {
    for (int i = 0; i < SHARD_COUNT; i++) {
        struct shard *shard = &shards[i];
        if (!memtrack_lock_try_for_signal(&shard->lock, 100)) continue;
        for (unsigned j = 0; j < SHARD_SLOTS; j++)
            if (shard->slot_address[j]) visit(slot_block(shard, j), context);
        memtrack_lock_release(&shard->lock);
    }
}

/* A block whose record waits in the backlog, read as the check reads a record (on demand):
 * its requested size and its stack's first frame. Returns 1 if found. */
int memtrack_pending_backlog_lookup(uintptr_t address, uint64_t *size, uintptr_t *first_frame) {
    struct shard *shard = shard_for(address);
    if (!memtrack_lock_try_for_signal(&shard->lock, 100)) return 0;
    /* Events not yet applied (the check applied them all before it stopped the threads; a few
     * may have come since), newest first: the block's own, or a free of an earlier one. */
    const struct backlog_entry *entry = NULL;
    int newest = newest_event(shard, address);
    if (newest >= 0 && !(shard->events[newest].address & FREE_EVENT)) entry = &shard->events[newest];
    if (newest < 0) {
        int slot = backlog_find(shard, address);
        if (slot >= 0) entry = &shard->backlog[slot];
    }
    if (entry) {
        *size = entry->size;
        *first_frame = memtrack_stack_first_frame(entry->stack_id);
    }
    memtrack_lock_release(&shard->lock);
    return entry != NULL;
}

/* The backlogs' and removal queues' mappings: the tracker's own memory, which holds block
 * addresses and must not count as roots. Read with the program's threads stopped. */
void memtrack_pending_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context) {
    for (int i = 0; i < SHARD_COUNT; i++) {
        struct shard *shard = &shards[i];
        if (shard->backlog) visit((uintptr_t)shard->backlog, (size_t)shard->backlog_slots * sizeof(struct backlog_entry), context);
        if (shard->removals && shard->removals != shard->removal_space)
            visit((uintptr_t)shard->removals, (size_t)shard->removal_capacity * sizeof(uintptr_t), context);
    }
}

/* The writer's thread id, waiting (at most 100 ms) for a writer just created to say it. */
int memtrack_pending_writer_thread(void) {
    struct timespec pause = {0, 100000};
    for (int i = 0; i < 1000 && atomic_load(&writer_running) && !atomic_load(&memtrack_writer_thread); i++)
        nanosleep(&pause, NULL);
    return atomic_load(&memtrack_writer_thread);
}

/* Keeps the writer between passes while the check runs (it would otherwise move entries from
 * the table to files under the check's feet). Returns 1 if taken. */
int memtrack_pending_pause_writer(void) {
    atomic_store(&pause_requested, 1);   /* the writer's pass ends after its current batch */
    int taken = memtrack_lock_try_for_signal(&pass_lock, 20000);
    /* On a disk a batch takes tens of ms: wait for it (at most about 2 s), sleeping. */
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 2000 && !taken; i++) {
        nanosleep(&pause, NULL);
        taken = memtrack_lock_try_for_signal(&pass_lock, 1);
    }
    atomic_store(&pause_requested, 0);
    return taken;
}

/* The events into the backlog, before the check maps its own memory (applying them may grow a
 * table) and stops the threads; its lookups scan only what comes after. */
void memtrack_pending_drain_for_check(void) { drain_events(0); }
void memtrack_pending_resume_writer(void) { memtrack_lock_release(&pass_lock); }

int memtrack_pending_writer_exists(void) { return atomic_load(&writer_running); }

// ---- fork ------------------------------------------------------------------------------------
/* Not pass_lock: a writer pass over a large backlog takes seconds, and fork must not wait for
 * it. The child starts with empty tables and no writer, so the pass is no concern of its. */
void memtrack_pending_fork_prepare(void) {
    for (int i = 0; i < SHARD_COUNT; i++) memtrack_lock_acquire(&shards[i].lock);
}

void memtrack_pending_fork_parent(void) {
    for (int i = 0; i < SHARD_COUNT; i++) unlock_shard(&shards[i]);
}

void memtrack_pending_fork_child_unprepared(void) {
    for (int i = 0; i < SHARD_COUNT; i++) atomic_store(&shards[i].lock, 0);
    atomic_store(&pass_lock, 0);
    atomic_store(&flush_requested, 0);
    atomic_store(&writer_running, 0);
    atomic_store(&drain_requested, 0);
    atomic_store(&memtrack_writer_thread, 0);
}

/* The child's young and backlogged blocks belong to the parent's record, which the parent will
 * write; the child's record holds only what the child allocates. Only occupied slots are
 * cleared, so the child does not copy the whole table; the backlogs are unmapped. */
void memtrack_pending_fork_child(void) {
    for (int i = 0; i < SHARD_COUNT; i++) {
        struct shard *shard = &shards[i];
        if (shard->count)
            for (int j = 0; j < SHARD_SLOTS; j++) shard->slot_sequence[j] = 0, shard->slot_address[j] = 0;
        shard->used_blocks[0] = shard->used_blocks[1] = 0;
        shard->count = 0;
        shard->removal_count = 0;
        if (shard->removals && shard->removals != shard->removal_space)
            memtrack_sys_munmap(shard->removals, (size_t)shard->removal_capacity * sizeof(uintptr_t));
        shard->removals = NULL;
        shard->removal_capacity = 0;
        shard->in_flight_count = 0;
        shard->event_count = 0;                    /* the parent's blocks */
        atomic_store(&shard->deferred_count, 0);   /* the parent's to do */
        if (shard->backlog) memtrack_sys_munmap(shard->backlog, (size_t)shard->backlog_slots * sizeof(struct backlog_entry));
        shard->backlog = NULL;
        shard->backlog_slots = shard->backlog_count = shard->backlog_cursor = 0;
        shard->backlog_oldest_ms = shard->sweep_oldest_ms = 0;
        shard->backlog_inserts = shard->backlog_probe_steps = 0;
        shard->backlog_probe_max = shard->backlog_reach = 0;
        memtrack_lock_release(&shard->lock);
    }
    atomic_store(&backlog_bytes, 0);
    atomic_store(&memtrack_backlog_peak, 0);
    atomic_store(&memtrack_backlog_peak_bytes, 0);
    atomic_store(&memtrack_backlog_peak_slots, 0);
    atomic_store(&memtrack_writer_records, 0);
    atomic_store(&memtrack_program_records, 0);
    atomic_store(&memtrack_program_removals, 0);
    atomic_store(&pass_lock, 0);          /* the parent's writer may have held it */
    atomic_store(&flush_requested, 0);
    atomic_store(&drain_requested, 0);
    atomic_store(&writer_running, 0);   /* threads do not survive fork */
    atomic_store(&memtrack_writer_thread, 0);
}
