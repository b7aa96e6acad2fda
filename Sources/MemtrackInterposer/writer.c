/* writer.c: the writer thread. It wakes every half settle time, writes the settled blocks and
 * the queued removals out of the table (pending.c), keeps the module map and the status up to
 * date, answers memdir's check requests, and helps a flush at exit. Layer: writer, on the
 * requests (which run the leak check) and the table.
 */
#include "writer.h"
#include "capabilities.h"
#include "failure.h"
#include "files.h"
#include "loaderwalk.h"
#include "pending.h"
#include "requests.h"
#include "status.h"
#include "sys.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

/* The settle policy. A block normally becomes a record once it is MEM_SETTLE_MS old. But when
 * the program allocates faster than the writer makes records, the writer is behind: more
 * blocks wait than it can write in one settle time (at the rate it measured, below). Writing
 * them then costs a create now and, for a heap the program frees soon (an interpreter's run, a
 * batch job), a removal later, and the removals left at exit are made while the program waits.
 * So while the writer is behind, and for MEM_SETTLE_BACKLOG_MS after, blocks wait up to
 * MEM_SETTLE_BACKLOG_MS instead; a heap built and freed within it costs no record at all.
 *
 * The wait shrinks as the backlog's memory (MEM_BACKLOG) fills: the whole wait up to 3/4 of
 * what the budget holds, MEM_SETTLE_MS from 15/16, in proportion between. The writer thus
 * starts on the oldest blocks while a quarter of the budget is left, and the program's own
 * threads write records only when it cannot keep up at all. A fixed threshold (100,000 blocks)
 * and a fixed wait (1 s) were a cliff: python-malloc with 300,000 dicts wrote 120,000 to
 * 270,000 records, most of them removed again at exit, and now writes under 12,000.
 *
 * The "after" keeps a teardown, which empties the backlog within milliseconds, from having its
 * last blocks written just before it frees them. What a SIGKILL can lose is the backlog, which
 * `status` bounds (backlog-peak, settle-backlog-ms); any other end writes it all out.
 * Called by the writer thread only. */
static int behind_seen;          /* the writer was behind at behind_seen_ms (a forked child's is not) */
static uint32_t behind_seen_ms;
/* Records a second the writer's passes made (an average of the passes that wrote at least
 * MEASURED_PASS records; file removals in the same pass make it low, never high). It starts
 * below what this VM's tmpfs gives (about 140,000 a second; ext4 gives a few thousand). */
#define MEASURED_PASS 256
static double records_per_second = 100000;
/* Below this many blocks the writer is never behind: a program's start-up burst is not a
 * reason to hold its blocks back for seconds. */
#define BEHIND_FLOOR 10000

/* Blocks the writer makes in one settle time, and no fewer than BEHIND_FLOOR; kept in
 * memtrack_behind_blocks for the status. */
static uint64_t behind_blocks(void) {
    double blocks = records_per_second * (double)memtrack_config.settle_ms / 1000.0;
    uint64_t behind = blocks > BEHIND_FLOOR ? (uint64_t)blocks : BEHIND_FLOOR;
    atomic_store_explicit(&memtrack_behind_blocks, behind, memory_order_relaxed);
    return behind;
}

static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void measure_pass(uint64_t written, uint64_t nanoseconds) {
    if (written < MEASURED_PASS || !nanoseconds) return;
    double rate = (double)written * 1e9 / (double)nanoseconds;
    records_per_second = records_per_second * 0.75 + rate * 0.25;
}

static uint32_t writer_settle_ms(uint32_t now) {
    uint32_t settle = (uint32_t)memtrack_config.settle_ms;
    uint64_t waiting = memtrack_pending_sample_backlog();
    if (waiting >= behind_blocks()) {
        behind_seen = 1;
        behind_seen_ms = now;
    }
    uint32_t longest = (uint32_t)memtrack_config.settle_backlog_ms;
    if (!behind_seen || now - behind_seen_ms >= longest || longest <= settle) return settle;
    /* What the budget holds: each shard's table doubles at 3/4 full while the budget allows,
     * so a block takes 4/3 to 8/3 entries of it; 7/4 here (56 bytes: python's 1.2M blocks took
     * 56, perl's 1.0M 67), so the wait is shortest well before the budget is spent. */
    double capacity = (double)memtrack_config.backlog_bytes / (MEMTRACK_BACKLOG_ENTRY_BYTES * 7.0 / 4);
    double fill = capacity > 0 ? (double)waiting / capacity : 1.0;
    if (fill >= 15.0 / 16) return settle;
    if (fill <= 3.0 / 4) return longest;
    return settle + (uint32_t)((double)(longest - settle) * (15.0 / 16 - fill) * (16.0 / 3));
}

static struct timespec milliseconds_span(uint32_t milliseconds) {
    return (struct timespec){milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
}

static void *writer_main(void *unused) {
    (void)unused;
    atomic_store(&memtrack_writer_stack_address, (uintptr_t)&unused);
    atomic_store(&memtrack_writer_thread, memtrack_thread_id());
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);   /* signals are the program's, not ours */
    memtrack_busy = 1;                          /* whatever libc allocates for us is ours */
    memtrack_use_private_descriptors();         /* files.c */
    int tick_ms = memtrack_config.settle_ms / 2;
    if (tick_ms < 1) tick_ms = 1;
    if (tick_ms > 100) tick_ms = 100;          /* an idle server's survivors appear within settle + 100 ms */
    struct timespec tick = milliseconds_span((uint32_t)tick_ms);
    uint64_t reported_peak = 0, reported_program = 0;
    struct timespec wait = tick;
    uint32_t last_pass_ms = memtrack_milliseconds_now();
    for (;;) {
        int refresh_modules = 0;
        memtrack_pending_wait_for_work(&wait);
        wait = tick;
        memtrack_credentials_follow();   /* a set*id call waits for this (credentials.c) */
        memtrack_loader_walk_serve();    /* a fatal signal, exit or fork waits for this (loaderwalk.c) */
        /* Woken because a shard's events filled half its ring: apply them all, then sleep on
         * until the tick is due (a memdir check's request waits for it, a flush does not). */
        if (memtrack_pending_drain_requested()) {
            memtrack_pending_begin_pass();
            memtrack_pending_drain_events();
            memtrack_pending_end_pass();
            uint32_t since = memtrack_milliseconds_now() - last_pass_ms;
            if (since < (uint32_t)tick_ms && !memtrack_pending_flush_requested()) {
                wait = milliseconds_span((uint32_t)tick_ms - since);
                continue;
            }
        }
        last_pass_ms = memtrack_milliseconds_now();
        memtrack_pending_begin_pass();
        int helping = memtrack_pending_flush_requested();
        if (!atomic_load(&memtrack_synchronous) || helping) {   /* after the final record, only a flush's help */
            /* memdir check: write out every young block, then answer */
            int check_requested = !helping && memtrack_requests_take();
            uint32_t now = memtrack_milliseconds_now();
            uint32_t cutoff_ms = UINT32_MAX;
            uint64_t before_sequence = atomic_load(&memtrack_sequence) + 1;
            int yields = 0;
            if (!helping && !check_requested) {
                uint32_t settle = writer_settle_ms(now);
                yields = 1;
                /* Younger than the settle time, the process has no block old enough: a cutoff of
                 * 0 would pass the blocks of its first millisecond (thousands in a tight loop). */
                if (now >= settle) cutoff_ms = now - settle;
                else before_sequence = 0;
            }
            uint64_t written = atomic_load(&memtrack_writer_records), started = monotonic_ns();
            memtrack_pending_writer_pass(cutoff_ms, before_sequence, yields, !helping);
            measure_pass(atomic_load(&memtrack_writer_records) - written, monotonic_ns() - started);
            if (helping) {   /* the flushing thread writes the status and modules */
                memtrack_pending_flush_helped();
                memtrack_pending_end_pass();
                continue;
            }
            refresh_modules = 1;
            if (check_requested) memtrack_requests_answer();
            memtrack_pending_warn_if_slow();
            /* The status shows how far behind the writer got, even after a SIGKILL. */
            uint64_t peak = atomic_load(&memtrack_backlog_peak), program = atomic_load(&memtrack_program_records);
            if ((peak != reported_peak || program != reported_program) && !atomic_load(&memtrack_synchronous)) {
                memtrack_write_status("running", 0, NULL);
                reported_peak = peak;
                reported_program = program;
            }
        }
        memtrack_pending_end_pass();
        /* Outside the pass: a walk of the loader's list can wait for good (a thread parked in a
         * dl_iterate_phdr callback), and an exit's flush waits for the pass to end. */
        if (refresh_modules) {
            memtrack_loader_writer_walking(1);
            memtrack_write_modules(0, 0);
            memtrack_loader_writer_walking(0);
        }
    }
    return NULL;
}

void memtrack_start_writer(void) {
    if (memtrack_config.settle_ms == 0 || atomic_load(&memtrack_run_directory) < 0) return;
    if (memtrack_pending_set_writer_running(1)) return;
    pthread_attr_t attributes;
    pthread_t thread;
    memtrack_busy++;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);   /* batches and buffers: about 40 KiB */
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
        memtrack_pending_set_writer_running(0);
        atomic_store(&memtrack_synchronous, 1);
        memtrack_pending_flush(0);
    }
}

/* A forked child has no writer, and its backlog is new. */
void memtrack_writer_fork_child(void) { behind_seen = 0; }
