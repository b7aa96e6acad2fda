/* writer.c: the writer thread. It wakes every half settle time, writes the settled blocks and
 * the queued removals out of the table (pending.c), keeps the module map and the status up to
 * date, answers memdir's check requests, and helps a flush at exit. Layer: writer, on the
 * requests (which run the leak check) and the table.
 */
#include "writer.h"
#include "capabilities.h"
#include "failure.h"
#include "files.h"
#include "pending.h"
#include "requests.h"
#include "status.h"
#include "sys.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

/* At a fatal signal the module map must be brought up to date, but dl_iterate_phdr waits for the
 * loader's lock, and the thread holding it may never let go (it may be waiting for this one). So
 * the writer, which no signal interrupts, walks the list, and this thread waits at most 2 s for
 * it (the catalog's Reliability: a handler at a fatal signal waits at most 2 s for anything). Without a writer
 * (MEM_SETTLE_MS=0) the walk is made here. */
static atomic_int modules_requested, modules_refreshed;

int memtrack_writer_refresh_modules_bounded(void) {
    if (!memtrack_pending_writer_exists()) { memtrack_write_modules(0, 1); return 1; }   /* a writer just made sees the request when it starts */
    int ticket = atomic_fetch_add(&modules_requested, 1) + 1;
    memtrack_pending_wake_writer();
    struct timespec step = {0, 10000000};   /* 10 ms */
    for (int waited = 0; waited < 200; waited++) {
        int done = atomic_load(&modules_refreshed);
        if (done >= ticket) return 1;
        memtrack_sys_futex_wait_for(&modules_refreshed, done, &step);
    }
    memtrack_note_failure("updating the module map at a fatal signal: the loader stayed busy", ETIMEDOUT, NULL);
    return 0;
}

static void refresh_modules_if_asked(void) {
    int wanted = atomic_load(&modules_requested);
    if (wanted == atomic_load(&modules_refreshed)) return;
    memtrack_write_modules(0, 0);
    atomic_store(&modules_refreshed, wanted);
    memtrack_sys_futex_wake(&modules_refreshed, INT32_MAX);
}


/* While the backlog is large (the program allocates faster than records can be made), and for
 * MEM_SETTLE_BACKLOG_MS after, blocks wait that long instead of MEM_SETTLE_MS. A program that
 * builds a large heap and frees it within that time (an interpreter's run, a batch job) then
 * costs no record for it: each would be a create now and a removal later, and the removals left
 * at exit are made while the program waits (python-malloc: 2.05 s with 50 ms, 1.47 s with 1 s).
 * The "after" keeps a teardown, which empties the backlog within milliseconds, from having its
 * last blocks written just before it frees them. The price is the SIGKILL bound, which becomes
 * the larger of this time and the backlog meanwhile; the backlog was about a second of
 * allocations in such runs anyway. Called by the writer thread only. */
static int large_seen;          /* the backlog was large at large_seen_ms (a forked child's is not) */
static uint32_t large_seen_ms;

static uint32_t writer_settle_ms(uint32_t now) {
    uint32_t settle = (uint32_t)memtrack_config.settle_ms;
    if (memtrack_pending_sample_backlog() >= MEMTRACK_LARGE_BACKLOG) {
        large_seen = 1;
        large_seen_ms = now;
    }
    uint32_t backlog_settle = (uint32_t)memtrack_config.settle_backlog_ms;
    if (large_seen && now - large_seen_ms < backlog_settle && backlog_settle > settle) settle = backlog_settle;
    return settle;
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
    struct timespec tick = {tick_ms / 1000, (long)(tick_ms % 1000) * 1000000L};
    uint64_t reported_peak = 0, reported_program = 0;
    for (;;) {
        memtrack_pending_wait_for_work(&tick);
        memtrack_credentials_follow();   /* a set*id call waits for this (credentials.c) */
        refresh_modules_if_asked();      /* a fatal signal waits for this */
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
            memtrack_pending_writer_pass(cutoff_ms, before_sequence, yields, !helping);
            if (helping) {   /* the flushing thread writes the status and modules */
                memtrack_pending_flush_helped();
                memtrack_pending_end_pass();
                continue;
            }
            memtrack_write_modules(0, 0);
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
void memtrack_writer_fork_child(void) { large_seen = 0; }
