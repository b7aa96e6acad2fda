/* loaderwalk.c: walks of the loader's list that may not wait for good. dl_iterate_phdr (the
 * module map, the leak check's roots) waits for the loader's lock, and a thread that stays
 * inside a dl_iterate_phdr callback, or inside dlopen, holds that lock for good. An untraced
 * program does not care: its exit and its death by a signal never walk the list. So at a fatal
 * signal, at exit and at fork the walk is made by the writer, which no signal interrupts and
 * whose wait stops nothing of the program's, and the asking thread waits for it at most 2 s
 * (the catalog's Reliability: a handler at a fatal signal waits at most 2 s for anything).
 * After one such wait the loader is taken to be stuck and later walks fail at once, so that an
 * exit that would walk three times waits 2 s, not 6.
 *
 * One walk at a time: a second asker waits for the first, within its own 2 s. A walk that did
 * not end keeps the slot for good (the writer may still run it, into its static data). A walk
 * the writer did not take in time while it was not inside a walk of its own (it answers a long
 * `memdir check`, say) is taken back and made on the asking thread.
 *
 * Layer: state, on the table (the writer's doorbell).
 */
#include "loaderwalk.h"
#include "failure.h"
#include "format.h"
#include "pending.h"
#include "sys.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define WAIT_MS 2000

/* The walk asked for: ASKED by a thread, TAKEN by the writer, DONE when it ended. */
enum { NO_WALK, ASKED, TAKEN, DONE };
static atomic_int walk_state;
static void (*requested_work)(void *);
static void *requested_data;
static atomic_int slot_taken, walks_done, stuck;
/* The writer is inside a walk (its own tick's or one asked for): a walk that does not end is
 * the loader's doing. */
static atomic_int writer_walking;

/* Past the deadline, on a clock that wraps after 49 days. */
static int past(uint32_t deadline) { return (int32_t)(memtrack_milliseconds_now() - deadline) >= 0; }

static int give_up(const char *what) {
    if (!atomic_exchange(&stuck, 1)) {
        char failure[192];   /* memtrack_note_failure copies it */
        char *out = memtrack_put_text(failure, failure + sizeof failure - 1, what);
        out = memtrack_put_text(out, failure + sizeof failure - 1, ": the loader stayed busy");
        *out = 0;
        memtrack_note_failure(failure, ETIMEDOUT, NULL);
    }
    return 0;
}

/* The 2 s ran out before the writer took the walk. Inside a walk of its own, the loader is
 * what holds it; else it is busy elsewhere (answering a long memdir check): walk here, as a
 * process without a writer does. */
static int walk_here_unless_stuck(void (*work)(void *data), void *data, const char *what) {
    if (atomic_load(&writer_walking)) return give_up(what);
    work(data);
    return 1;
}

static void release_slot(void) {
    atomic_store(&slot_taken, 0);
    memtrack_sys_futex_wake(&slot_taken, 1);
}

int memtrack_loader_walk_bounded(void (*work)(void *data), void *data, const char *what) {
    int writer = atomic_load(&memtrack_writer_thread);
    if (!memtrack_pending_writer_exists() || (writer && writer == memtrack_thread_id())) {
        work(data);
        return 1;
    }
    if (atomic_load(&stuck)) return 0;
    uint32_t deadline = memtrack_milliseconds_now() + WAIT_MS;   /* the vDSO's clock: signal-safe */
    const struct timespec step = {0, 10000000};   /* 10 ms */
    for (int free_slot = 0; !atomic_compare_exchange_strong(&slot_taken, &free_slot, 1); free_slot = 0) {
        if (atomic_load(&stuck)) return 0;
        if (past(deadline)) return walk_here_unless_stuck(work, data, what);   /* another asker still waits */
        memtrack_sys_futex_wait_for(&slot_taken, 1, &step);
    }
    requested_work = work;
    requested_data = data;
    atomic_store(&walk_state, ASKED);
    memtrack_pending_call_writer();   /* a writer just made sees the request when it starts */
    for (;;) {
        int done = atomic_load(&walks_done);
        if (atomic_load(&walk_state) == DONE) break;
        if (past(deadline)) {
            int asked = ASKED;
            if (!atomic_compare_exchange_strong(&walk_state, &asked, NO_WALK)) return give_up(what);   /* taken: the slot stays */
            release_slot();
            return walk_here_unless_stuck(work, data, what);
        }
        memtrack_sys_futex_wait_for(&walks_done, done, &step);
    }
    atomic_store(&walk_state, NO_WALK);
    release_slot();
    return 1;
}

void memtrack_loader_walk_serve(void) {
    memtrack_pending_writer_called();   /* before the look: a call made after it is seen next time */
    int asked = ASKED;
    if (!atomic_compare_exchange_strong(&walk_state, &asked, TAKEN)) return;
    atomic_store(&writer_walking, 1);
    requested_work(requested_data);
    atomic_store(&writer_walking, 0);
    atomic_store(&walk_state, DONE);
    atomic_fetch_add(&walks_done, 1);
    memtrack_sys_futex_wake(&walks_done, INT32_MAX);
}

int memtrack_loader_stuck(void) { return atomic_load(&stuck); }
void memtrack_loader_writer_walking(int walking) { atomic_store(&writer_walking, walking); }

/* A forked child has one thread and no writer yet: whatever the parent's walk was, it is not
 * the child's. (A child of a stuck parent walks on its own thread, as without a writer.) */
void memtrack_loader_walk_fork_child(void) {
    atomic_store(&walk_state, NO_WALK);
    atomic_store(&slot_taken, 0);
    atomic_store(&writer_walking, 0);
}
