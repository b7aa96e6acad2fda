/* interposer_unit.c: unit tests of the interposer's inner parts, linked against their own .c
 * files (InterposerUnitTests builds and runs it; the list of files is there):
 *   radix, shadow  the per-address index: lookups, creation, both granules, walks
 *   lock           mutual exclusion under contention (spinning and futex sleeping), owner
 *                  checks, and a signal put aside while a lock is held, sent at release
 *   unwind         the call chain of a known function, each frame inside the expected caller
 *   table          the young table and the backlog (pending.c, with the real records below
 *                  it): insert, lookup by removal, collisions, bounded probes, growth, flush
 *                  to records
 *   loaderwalk     a walk asked of a pretend writer: made by the writer when it serves; made
 *                  here when it does not and is not inside a walk of its own; given up after
 *                  2 s when it is (the loader holds it), noted once, and refused at once after
 * Only the layers up to the table are linked, and loaderwalk.c, which needs nothing else: if
 * the table needed anything above it, this program would not link. Prints `ok NAME` per unit; the first failure prints `FAIL NAME: why`
 * and exits 1.
 */
#include "base.h"
#include "failure.h"
#include "files.h"
#include "loaderwalk.h"
#include "lock.h"
#include "pending.h"
#include "radix.h"
#include "records.h"
#include "shadow.h"
#include "sources.h"
#include "stacks.h"
#include "sys.h"
#include "unwind.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *unit = "";
#define CHECK(condition, ...)                                                    \
    do {                                                                         \
        if (!(condition)) {                                                      \
            printf("FAIL %s: %s (line %d): ", unit, #condition, __LINE__);       \
            printf(__VA_ARGS__);                                                 \
            printf("\n");                                                        \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

// ---- radix and shadow ---------------------------------------------------------------------
static void count_mapping(uintptr_t start, size_t bytes, void *context) {
    (void)start;
    size_t *total = context;
    total[0]++;
    total[1] += bytes;
}

static void test_radix(void) {
    unit = "radix";
    static struct memtrack_radix index;
    unsigned shift = 99;
    uintptr_t a = 0x7f0012345670, b = a + 16, far = a + ((uintptr_t)1 << 22);   /* far: the next leaf */
    CHECK(memtrack_radix_word_for(&index, 4, a, 0, &shift) == NULL, "an empty index has no path");
    memtrack_radix_word *wa = memtrack_radix_word_for(&index, 4, a, 1, &shift);
    CHECK(wa != NULL, "create maps the path");
    unsigned shift_a = shift;
    memtrack_radix_word *wb = memtrack_radix_word_for(&index, 4, b, 0, &shift);
    CHECK(wb == wa && shift == shift_a + 2, "the next granule is the next two bits of the same word (%u, %u)", shift_a, shift);
    CHECK(memtrack_radix_word_for(&index, 4, a | 15, 0, &shift) == wa && shift == shift_a, "one granule is 16 bytes");
    atomic_fetch_or(wa, (uint64_t)2 << shift_a);
    memtrack_radix_word *again = memtrack_radix_word_for(&index, 4, a, 1, &shift);
    CHECK(again == wa && ((atomic_load(again) >> shift) & 3) == 2, "create on an existing path finds the same word");
    CHECK(memtrack_radix_word_for(&index, 4, far, 0, &shift) == NULL, "the next leaf does not exist yet");
    CHECK(memtrack_radix_word_for(&index, 4, far, 1, &shift) != NULL, "the next leaf is created");
    CHECK(memtrack_radix_word_for(&index, 4, (uintptr_t)1 << 47, 1, &shift) == NULL, "beyond 47 bits: no index");
    size_t mappings[2] = {0, 0};
    memtrack_radix_for_each_mapping(&index, 4, count_mapping, mappings);
    size_t leaf_bytes = memtrack_radix_leaf_words(4) * 8;
    CHECK(mappings[0] == 3 && mappings[1] == MEMTRACK_RADIX_MIDDLE_ENTRIES * 8 + 2 * leaf_bytes,
          "one middle and two leaves: %zu mappings, %zu bytes", mappings[0], mappings[1]);
    /* 8-byte granules (family.c's): a leaf holds twice as many states. */
    static struct memtrack_radix fine;
    memtrack_radix_word *w1 = memtrack_radix_word_for(&fine, 3, a, 1, &shift);
    unsigned s1 = shift;
    memtrack_radix_word *w2 = memtrack_radix_word_for(&fine, 3, a + 8, 1, &shift);
    CHECK(w1 == w2 && shift == s1 + 2, "8-byte granules");
    printf("ok radix\n");
}

struct live_list { uintptr_t addresses[16]; int count; };
static void note_live(uintptr_t address, void *context) {
    struct live_list *list = context;
    if (list->count < 16) list->addresses[list->count] = address;
    list->count++;
}

static void test_shadow(void) {
    unit = "shadow";
    uintptr_t base = 0x5a0000000000;
    const void *aligned = (const void *)base, *odd = (const void *)(base + 8), *next = (const void *)(base + 32);
    CHECK(memtrack_shadow_state(aligned) == MEMTRACK_NEVER, "never allocated");
    CHECK(memtrack_shadow_release(aligned) == MEMTRACK_NEVER, "a free of a never-allocated address says so");
    CHECK(memtrack_shadow_exchange(aligned, MEMTRACK_LIVE) == MEMTRACK_NEVER, "first allocation");
    CHECK(memtrack_shadow_exchange(odd, MEMTRACK_LIVE) == MEMTRACK_NEVER, "8 mod 16 is a block of its own");
    CHECK(memtrack_shadow_exchange(next, MEMTRACK_LIVE_INTERNAL) == MEMTRACK_NEVER, "an internal block");
    CHECK(memtrack_shadow_state(aligned) == MEMTRACK_LIVE && memtrack_shadow_state(odd) == MEMTRACK_LIVE, "both live");
    struct live_list live = {{0}, 0};
    memtrack_shadow_for_each_live(note_live, &live);
    CHECK(live.count == 2 && live.addresses[0] == base && live.addresses[1] == base + 8,
          "the live blocks in address order, internal ones left out: %d", live.count);
    CHECK(memtrack_shadow_release(aligned) == MEMTRACK_LIVE, "free of a live block");
    CHECK(memtrack_shadow_release(aligned) == MEMTRACK_FREED, "the second free is a double free");
    CHECK(memtrack_shadow_state(odd) == MEMTRACK_LIVE, "the neighbour is untouched");
    CHECK(memtrack_shadow_any_known(base, base + 16) && !memtrack_shadow_any_known(base + 4096, base + 8192),
          "known ranges");
    printf("ok shadow\n");
}

// ---- locks ----------------------------------------------------------------------------------
#define LOCK_THREADS 4
#define LOCK_ROUNDS 200000
static memtrack_lock counter_lock;
static long counter;
static atomic_int owner_errors;

static void *lock_worker(void *unused) {
    (void)unused;
    for (int i = 0; i < LOCK_ROUNDS; i++) {
        memtrack_lock_acquire(&counter_lock);
        if (!memtrack_lock_held_by_me(&counter_lock)) atomic_fetch_add(&owner_errors, 1);
        long seen = counter;
        if (i % 1000 == 0) sched_yield();   /* a holder that sleeps: others spin, then wait on the futex */
        counter = seen + 1;
        memtrack_lock_release(&counter_lock);
        if (memtrack_lock_held_by_me(&counter_lock)) atomic_fetch_add(&owner_errors, 1);
    }
    return NULL;
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int number) { (void)number; usr1_seen++; }

static void test_lock(void) {
    unit = "lock";
    pthread_t threads[LOCK_THREADS];
    for (int i = 0; i < LOCK_THREADS; i++) CHECK(pthread_create(&threads[i], NULL, lock_worker, NULL) == 0, "thread");
    for (int i = 0; i < LOCK_THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(counter == (long)LOCK_THREADS * LOCK_ROUNDS, "every increment counted: %ld", counter);
    CHECK(atomic_load(&owner_errors) == 0, "the owner check was wrong %d times", atomic_load(&owner_errors));
    CHECK(counter_lock == 0 && memtrack_locks_held == 0, "free at the end (%d, %d)", counter_lock, memtrack_locks_held);

    /* A signal handler that interrupted the holder: try_for_signal says no at once. */
    memtrack_lock_acquire(&counter_lock);
    CHECK(memtrack_lock_try_for_signal(&counter_lock, -1) == 0, "held by me: not taken");
    /* A signal arriving now is put aside and sent again when the last lock is let go. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, NULL);
    sigset_t usr1;   /* the parent may have started us with it blocked */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGUSR1;
    info.si_code = SI_USER;
    CHECK(memtrack_defer_signal(SIGUSR1, &info) == 1, "put aside while a lock is held");
    CHECK(usr1_seen == 0 && memtrack_deferred_signal_count == 1, "not delivered yet");
    memtrack_lock_release(&counter_lock);
    CHECK(usr1_seen == 1 && memtrack_deferred_signal_count == 0, "delivered once at release: %d", (int)usr1_seen);
    CHECK(memtrack_defer_signal(SIGUSR1, &info) == 0, "no lock held: runs now");
    siginfo_t fault = info;
    fault.si_signo = SIGSEGV;
    fault.si_code = SEGV_MAPERR;
    memtrack_lock_acquire(&counter_lock);
    CHECK(memtrack_defer_signal(SIGSEGV, &fault) == 0, "a fault is never put aside");
    memtrack_lock_release(&counter_lock);
    printf("ok lock\n");
}

// ---- the unwinder -----------------------------------------------------------------------------
/* Global and never inlined, so that dladdr (the program is linked -rdynamic) names each frame's
 * function; the volatile work after each call keeps it from being a tail call. */
volatile int unwind_sink;
uintptr_t unwind_frames[8];
int unwind_depth;
__attribute__((noinline)) void unit_leaf(void) {
    unwind_depth = memtrack_unwind(unwind_frames, 8);
    unwind_sink++;
}
__attribute__((noinline)) void unit_middle(void) { unit_leaf(); unwind_sink++; }
__attribute__((noinline)) void unit_outer(void) { unit_middle(); unwind_sink++; }

static const char *function_at(uintptr_t address) {
    Dl_info info;
    /* A return address points after the call: address - 1 is inside the calling function. */
    if (!dladdr((void *)(address - 1), &info) || !info.dli_sname) return "?";
    return info.dli_sname;
}

__attribute__((noinline)) void test_unwind(void) {
    unit = "unwind";
    unit_outer();
    CHECK(unwind_depth >= 3, "at least three frames: %d", unwind_depth);
    const char *expected[] = {"unit_middle", "unit_outer", "test_unwind"};
    for (int i = 0; i < 3; i++)
        CHECK(!strcmp(function_at(unwind_frames[i]), expected[i]), "frame %d is in %s, not %s", i,
              function_at(unwind_frames[i]), expected[i]);
    printf("ok unwind\n");
    unwind_sink++;
}

// ---- the table ----------------------------------------------------------------------------------
#define TABLE_BLOCKS 70000
static uintptr_t block_address(int i) { return 0x300000000000 + (uintptr_t)i * 48; }
/* Block 7 is 5 GiB: too large for a backlog entry, its record is written when it leaves the young part. */
#define HUGE_BLOCK 7
static uint64_t block_size(int i) { return i == HUGE_BLOCK ? 5ull << 30 : 1 + (uint64_t)i % 1000; }
static uint32_t unit_source;   /* a memtrack.h location, on every fifth block */
static const int block_via[4] = {MEMTRACK_VIA_MALLOC, MEMTRACK_VIA_NEW, MEMTRACK_VIA_NEW_ARRAY, MEMTRACK_VIA_CALLOC};
static const char block_via_letter[4] = {'m', 'n', 'N', 'c'};
static const char *block_family_field[4] = {"", " f=n", " f=a", ""};

static void make_block(struct memtrack_block *block, int i) {
    memset(block, 0, sizeof *block);
    block->address = block_address(i);
    block->size = block_size(i);
    block->sequence = (uint64_t)i + 1;
    block->milliseconds = 1000 + (uint32_t)i / 1000;   /* 1000 .. 1069: a writer pass can split them */
    block->thread = 1 + i % 3;
    block->via = (uint8_t)block_via[i % 4];
    block->family = (uint8_t)(i % 4 == 1 ? MEMTRACK_FAMILY_NEW : i % 4 == 2 ? MEMTRACK_FAMILY_ARRAY : MEMTRACK_FAMILY_MALLOC);
    if (i % 5 == 0) block->source = unit_source, block->source_line = 100 + (uint32_t)i % 3;
    block->stack.depth = 2;
    block->stack.frames[0] = 0x1000 + (uintptr_t)(i % 7);
    block->stack.frames[1] = 0x2000;
}

static void visit_young(const struct memtrack_block *block, void *context) { (void)block; ++*(int *)context; }

/* The record of block i: 1 with its size, 0 when there is none. */
static int record_size(const char *directory, int i, uint64_t *size) {
    char path[512], target[256];
    snprintf(path, sizeof path, "%s/0x%lx.mem", directory, (unsigned long)block_address(i));
    ssize_t length = readlink(path, target, sizeof target - 1);
    if (length <= 0) return 0;
    target[length] = 0;
    const char *field = strstr(target, " s=");
    *size = field ? strtoull(field + 3, NULL, 10) : 0;
    return 1;
}

/* Block i's record holds every field it was made with (the stack's id aside). */
static int record_matches(const char *directory, int i, char *target, size_t capacity) {
    char path[512], before[128], after[64];
    snprintf(path, sizeof path, "%s/0x%lx.mem", directory, (unsigned long)block_address(i));
    ssize_t length = readlink(path, target, capacity - 1);
    if (length <= 0) return 0;
    target[length] = 0;
    snprintf(before, sizeof before, "2 s=%lu q=%d t=%d m=%u v=%c k=", (unsigned long)block_size(i), i + 1, 1 + i % 3,
             1000 + (unsigned)i / 1000, block_via_letter[i % 4]);
    if (i % 5 == 0) snprintf(after, sizeof after, "%s l=%u:%d", block_family_field[i % 4], unit_source, 100 + i % 3);
    else snprintf(after, sizeof after, "%s", block_family_field[i % 4]);
    const char *id = target + strlen(before);
    if (strncmp(target, before, strlen(before)) || *id < '1' || *id > '9') return 0;
    while (*id >= '0' && *id <= '9') id++;
    return !strcmp(id, after);
}

/* The block records in the run directory. */
static int count_records(const char *directory) {
    DIR *listing = opendir(directory);
    int files = 0;
    for (struct dirent *entry; listing && (entry = readdir(listing));) files += strstr(entry->d_name, ".mem") != NULL;
    if (listing) closedir(listing);
    return files;
}

/* Bounded probes: 150 chunks of 128 bytes whose blocks share one shard and whose homes are one
 * window of a 2,048-slot table (the hashes are pending.c's): 1,200 blocks that would make one
 * run of occupied slots. No insert may step over more than 1,024 (the shard grows instead), and
 * every block is found again with its size. */
static uint64_t fibonacci(uint64_t x) { return x * 0x9E3779B97F4A7C15ull; }

static void test_probe_bound(void) {
    enum { CHUNKS = 150, PER_CHUNK = 8 };
    static uintptr_t chunks[CHUNKS];
    uintptr_t region = 0x500000000000;
    uint64_t shard = fibonacci(region >> 8) >> 58, window = (fibonacci(region >> 7) >> 26) & 2047;
    int found = 0;
    for (uintptr_t chunk = region >> 7; found < CHUNKS; chunk++)
        if (fibonacci(chunk >> 1) >> 58 == shard && ((fibonacci(chunk) >> 26) & 2047) == window) chunks[found++] = chunk << 7;
    struct memtrack_block block;
    uint64_t sequence = 1u << 30;
    for (int c = 0; c < CHUNKS; c++)
        for (int k = 0; k < PER_CHUNK; k++) {
            memset(&block, 0, sizeof block);
            block.address = chunks[c] + (uintptr_t)k * 16;
            block.size = 7 + (uint64_t)k;
            block.sequence = sequence++;
            block.milliseconds = 500;
            block.thread = 1;
            block.stack.depth = 1;
            block.stack.frames[0] = 0x3000;
            memtrack_pending_add(&block);
        }
    uint64_t inserts, steps, longest;
    memtrack_pending_probe_counts(&inserts, &steps, &longest);
    CHECK(inserts >= CHUNKS * PER_CHUNK - 128, "the colliding blocks went to the backlog: %lu inserts", (unsigned long)inserts);
    CHECK(longest >= 256, "the colliding blocks made a long run: the longest insert stepped over %lu", (unsigned long)longest);
    CHECK(longest <= 1024, "no insert steps over more than 1,024 slots: %lu", (unsigned long)longest);
    for (int c = 0; c < CHUNKS; c++)
        for (int k = 0; k < PER_CHUNK; k++) {
            uint64_t size = 0;
            memtrack_pending_remove(chunks[c] + (uintptr_t)k * 16, NULL, &size);
            CHECK(size == 7 + (uint64_t)k, "colliding block %d.%d found with its size: %lu", c, k, (unsigned long)size);
        }
    CHECK(memtrack_pending_backlog_records() == 0, "the colliding blocks are all gone");
}

static void test_table(const char *scratch) {
    unit = "table";
    char directory[512];
    snprintf(directory, sizeof directory, "%s/run", scratch);
    CHECK(mkdir(directory, 0700) == 0, "mkdir %s: %s", directory, strerror(errno));
    int fd = open(directory, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0, "open the run directory");
    memtrack_remember_run_directory(fd);
    atomic_store(&memtrack_run_directory, fd);
    memtrack_create_stacks_file();
    unit_source = memtrack_sources_intern("unit.c", "unit_function");
    CHECK(unit_source != 0, "a source interned");
    test_probe_bound();

    /* Insert: far more blocks than the young parts hold, so most move to the backlogs, which
     * grow past their first size (1,024 slots a shard). */
    struct memtrack_block block;
    for (int i = 0; i < TABLE_BLOCKS; i++) {
        make_block(&block, i);
        memtrack_pending_add(&block);
    }
    CHECK(memtrack_pending_backlog_records() > 0, "blocks moved to the backlog");
    /* The 5 GiB block left the young part early (it is the oldest of its shard), as a record. */
    char target[256];
    CHECK(count_records(directory) == 1 && record_matches(directory, HUGE_BLOCK, target, sizeof target),
          "the 5 GiB block's record, written as it left the young part: %d records", count_records(directory));
    CHECK(atomic_load(&memtrack_program_records) == 1, "written by the program's thread");
    /* The peak is a sample (the writer takes one every tick): none has been taken yet. */
    CHECK(atomic_load(&memtrack_backlog_peak) == 0, "backlog peak before a sample %lu", (unsigned long)atomic_load(&memtrack_backlog_peak));
    CHECK(memtrack_pending_sample_backlog() >= 60000, "backlog sample");
    CHECK(atomic_load(&memtrack_backlog_peak) >= 60000, "backlog peak %lu", (unsigned long)atomic_load(&memtrack_backlog_peak));
    /* Tables at most 3/4 full of 32-byte entries: 42 bytes or more per waiting block, all counted. */
    CHECK(atomic_load(&memtrack_backlog_peak_bytes) >= memtrack_pending_backlog_records() * 32 * 4 / 3,
          "backlog bytes %lu for %lu blocks", (unsigned long)atomic_load(&memtrack_backlog_peak_bytes),
          (unsigned long)memtrack_pending_backlog_records());
    int young = 0;
    memtrack_pending_visit(visit_young, &young);
    CHECK((uint64_t)young + memtrack_pending_backlog_records() == TABLE_BLOCKS - 1, "every block in one part: %d young + %lu backlog",
          young, (unsigned long)memtrack_pending_backlog_records());
    CHECK(count_records(directory) == 1, "nothing else written before a flush: %d records", count_records(directory));

    /* Lookup by removal: every third block, from either part, gives back its size and stack. */
    int removed = 0, from_young = 0, from_backlog = 0;
    for (int i = 0; i < TABLE_BLOCKS; i += 3) {
        struct memtrack_stack stack = {0};
        uint64_t size = UINT64_MAX;
        uint32_t stack_id = 0;
        memtrack_pending_remove_noting_stack(block_address(i), &stack, &size, &stack_id);
        CHECK(size == block_size(i), "block %d: size %lu", i, (unsigned long)size);
        if (!stack.depth) {
            CHECK(stack_id && memtrack_read_stack(stack_id, &stack), "block %d: its stack id %u", i, stack_id);
            from_backlog++;
        } else {
            from_young++;
        }
        CHECK(stack.depth == 2 && stack.frames[0] == 0x1000 + (uintptr_t)(i % 7) && stack.frames[1] == 0x2000,
              "block %d: its stack", i);
        removed++;
    }
    CHECK(from_young > 0 && from_backlog > 0, "both parts looked up: %d young, %d backlog", from_young, from_backlog);
    uint64_t unknown = UINT64_MAX;
    memtrack_pending_remove(0x400000000000, NULL, &unknown);
    CHECK(unknown == UINT64_MAX, "an address never added is not found");

    /* Collisions: sixteen blocks in one 256-byte chunk share a shard and two homes; taking out the
     * middle ones must leave the others findable (backward-shift deletion). */
    uintptr_t chunk = 0x310000000000;
    for (int k = 0; k < 16; k++) {
        memset(&block, 0, sizeof block);
        block.address = chunk + (uintptr_t)k * 16;
        block.size = 5000 + (uint64_t)k;
        block.sequence = TABLE_BLOCKS + 1 + (uint64_t)k;
        memtrack_pending_add(&block);
    }
    for (int k = 4; k < 12; k++) {
        uint64_t size = 0;
        memtrack_pending_remove(chunk + (uintptr_t)k * 16, NULL, &size);
        CHECK(size == 5000 + (uint64_t)k, "collision %d removed with its size", k);
    }
    for (int k = 0; k < 16; k++) {
        if (k >= 4 && k < 12) continue;
        uint64_t size = 0;
        memtrack_pending_remove(chunk + (uintptr_t)k * 16, NULL, &size);
        CHECK(size == 5000 + (uint64_t)k, "collision %d still found after its neighbours went", k);
    }

    /* Writer passes: one before any block is settled writes nothing (each backlog's sweep is
     * skipped: no entry is that old); one at 1034 ms writes exactly the blocks allocated by
     * then, from either part; the same pass again finds nothing more. */
    memtrack_pending_writer_pass(999, UINT64_MAX, 0, 0);
    CHECK(count_records(directory) == 1, "a pass before any block settled wrote %d records", count_records(directory) - 1);
    int settled = 0;
    for (int i = 0; i < TABLE_BLOCKS; i++) settled += i % 3 != 0 && 1000 + i / 1000 <= 1034;
    memtrack_pending_writer_pass(1034, UINT64_MAX, 0, 0);
    CHECK(count_records(directory) == settled, "a pass at 1034 ms wrote %d records, not %d", count_records(directory), settled);
    memtrack_pending_writer_pass(1034, UINT64_MAX, 0, 0);
    CHECK(count_records(directory) == settled, "the same pass again wrote %d records, not %d", count_records(directory), settled);
    for (int i = 0; i < TABLE_BLOCKS; i += 997) {
        uint64_t size = 0;
        CHECK(record_size(directory, i, &size) == (i % 3 != 0 && 1000 + i / 1000 <= 1034), "block %d after the pass at 1034 ms", i);
    }

    /* Flush: exactly the blocks still in the table become records, with their sizes. */
    memtrack_pending_flush(0);
    CHECK(memtrack_pending_backlog_records() == 0, "the backlog is empty after a flush");
    int files = count_records(directory);
    CHECK(files == TABLE_BLOCKS - removed, "%d records for %d blocks", files, TABLE_BLOCKS - removed);
    for (int i = 0; i < TABLE_BLOCKS; i++) {
        uint64_t size = 0;
        int present = record_size(directory, i, &size);
        CHECK(present == (i % 3 != 0), "block %d: record %s", i, present ? "present" : "missing");
        CHECK(!present || size == block_size(i), "block %d: record size %lu", i, (unsigned long)size);
        /* Every field, through either part: location, family, via, thread, sequence, time. */
        CHECK(!present || record_matches(directory, i, target, sizeof target), "block %d: record %s", i, target);
    }
    /* A settled block's free queues its record's removal; the next flush does it. */
    uint64_t size = 0;
    memtrack_pending_remove(block_address(1), NULL, &size);
    memtrack_pending_flush(0);
    CHECK(!record_size(directory, 1, &size), "the freed block's record is gone");
    printf("ok table\n");
}

// ---- loaderwalk ------------------------------------------------------------------------------
static atomic_int walked_on;   /* the thread that made the walk */
static void note_walker(void *unused) { (void)unused; atomic_store(&walked_on, memtrack_thread_id()); }

static atomic_int serving_thread;
static void *serve_until_walked(void *unused) {
    (void)unused;
    atomic_store(&serving_thread, memtrack_thread_id());
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 5000 && !atomic_load(&walked_on); i++) {
        memtrack_loader_walk_serve();
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static uint32_t elapsed_since(uint32_t start) { return memtrack_milliseconds_now() - start; }

static void test_loaderwalk(void) {
    unit = "loaderwalk";
    memtrack_pending_set_writer_running(1);   /* a pretend writer, with another thread's id */
    atomic_store(&memtrack_writer_thread, 1);
    pthread_t writer;
    CHECK(pthread_create(&writer, NULL, serve_until_walked, NULL) == 0, "thread");
    CHECK(memtrack_loader_walk_bounded(note_walker, NULL, "unit walk") == 1, "a served walk ran");
    pthread_join(writer, NULL);
    CHECK(atomic_load(&walked_on) == atomic_load(&serving_thread), "on the writer (%d, %d)", atomic_load(&walked_on), atomic_load(&serving_thread));

    atomic_store(&walked_on, 0);   /* nobody serves, the writer is not inside a walk: made here */
    uint32_t start = memtrack_milliseconds_now();
    CHECK(memtrack_loader_walk_bounded(note_walker, NULL, "unit walk") == 1, "a walk the writer did not take ran here");
    CHECK(atomic_load(&walked_on) == memtrack_thread_id() && !memtrack_loader_stuck(), "here, not stuck");
    CHECK(elapsed_since(start) >= 1900 && elapsed_since(start) < 4000, "after the 2 s wait (%u ms)", elapsed_since(start));

    atomic_store(&walked_on, 0);   /* the writer inside a walk of its own that does not end */
    memtrack_loader_writer_walking(1);
    start = memtrack_milliseconds_now();
    CHECK(memtrack_loader_walk_bounded(note_walker, NULL, "unit walk") == 0, "given up");
    CHECK(elapsed_since(start) >= 1900 && elapsed_since(start) < 4000, "after 2 s (%u ms)", elapsed_since(start));
    CHECK(!atomic_load(&walked_on) && memtrack_loader_stuck(), "not walked here, stuck");
    const char *error = memtrack_first_error();
    CHECK(error && !strcmp(error, "unit walk: the loader stayed busy: Connection timed out"), "noted: %s", error ? error : "nothing");
    start = memtrack_milliseconds_now();
    CHECK(memtrack_loader_walk_bounded(note_walker, NULL, "unit walk") == 0 && elapsed_since(start) < 100, "refused at once");
    memtrack_loader_writer_walking(0);
    memtrack_pending_set_writer_running(0);
    atomic_store(&memtrack_writer_thread, 0);
    printf("ok %s\n", unit);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    CHECK(argc == 2, "usage: interposer_unit SCRATCH-DIRECTORY");
    test_radix();
    test_shadow();
    test_lock();
    test_unwind();
    test_table(argv[1]);
    test_loaderwalk();   /* last: it leaves the process's first failure noted */
    return 0;
}
