/* lock.c: the tracker's spin locks, and the signals put aside while a thread holds one.
 * Layer: lock, on sys.
 *
 * A lock word holds its owner's thread id, so a signal handler can tell "held by me" (skip: the
 * interrupted code owns it) from "held by another thread" (wait). A signal that arrives while
 * its thread holds a tracker lock is put aside and sent again when the thread lets go of its
 * last one (process.c's handler asks memtrack_defer_signal): a handler that never returns
 * would otherwise keep the lock for good.
 */
#include "lock.h"
#include "arch.h"
#include "sys.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

/* A lock word holds its owner's thread id, plus LOCK_WAITERS when a thread sleeps on it.
 * Critical sections are usually a few hundred nanoseconds, so a thread spins briefly; but a
 * writer may hold a shard for a file write, which takes a millisecond on a slow disk, so after
 * that a thread sleeps in futex_wait instead of burning the core the writer needs.
 *
 * The release is a plain store when no sleeper is flagged: an exchange (a locked instruction)
 * waits for every store before it to reach the cache, and those are the shard table's stores
 * that missed it: 6.5 % of perl's samples and 4.5 % of cc1's sat on that exchange. The price
 * is a window between the release's load and its store in which a thread may flag itself and
 * go to sleep unseen; so a sleep lasts at most SLEEP_BOUND_NS, after which the sleeper looks
 * again. (That needs the owner preempted inside those two instructions.) */
#define LOCK_WAITERS 0x40000000   /* above any thread id: pid_max is at most 2^22 */
#define LOCK_SPINS 100
#define SLEEP_BOUND_NS 1000000

void memtrack_lock_acquire(memtrack_lock *lock) {
    int me = memtrack_thread_id();
    memtrack_locks_held++;   /* first: a signal from here on waits until we let go (below) */
    atomic_signal_fence(memory_order_seq_cst);
    for (int spins = 0; spins < LOCK_SPINS; spins++) {
        int free_value = 0;
        if (atomic_load_explicit(lock, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(lock, &free_value, me, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        memtrack_cpu_relax();
    }
    for (;;) {
        int value = atomic_load_explicit(lock, memory_order_relaxed);
        if (value == 0) {
            /* Others may still sleep on it: keep the flag so our release wakes one. */
            if (atomic_compare_exchange_weak_explicit(lock, &value, me | LOCK_WAITERS,
                                                      memory_order_acquire, memory_order_relaxed))
                return;
            continue;
        }
        if (!(value & LOCK_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(lock, &value, value | LOCK_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        static const struct timespec bound = {0, SLEEP_BOUND_NS};
        memtrack_sys_futex_wait_for(lock, value | LOCK_WAITERS, &bound);
    }
}

void memtrack_lock_release(memtrack_lock *lock) {
    int sleepers = atomic_load_explicit(lock, memory_order_relaxed) & LOCK_WAITERS;
    atomic_store_explicit(lock, 0, memory_order_release);
    if (MEMTRACK_UNLIKELY(sleepers)) memtrack_sys_futex_wake(lock, 1);
    atomic_signal_fence(memory_order_seq_cst);
    /* Never below 0: a forked child lets go of locks its parent's threads took. */
    if (--memtrack_locks_held <= 0) {
        memtrack_locks_held = 0;
        atomic_signal_fence(memory_order_seq_cst);
        if (MEMTRACK_UNLIKELY(memtrack_deferred_signal_count)) memtrack_send_deferred_signals();
    }
}

int memtrack_lock_held_by_me(memtrack_lock *lock) {
    return (atomic_load_explicit(lock, memory_order_relaxed) & ~LOCK_WAITERS) == memtrack_thread_id();
}

/* attempts < 0: until the lock is free, but at most SIGNAL_LOCK_PATIENCE_NS. A handler at exit
 * or a fatal signal must not outlive the program by waiting forever: a holder may itself be
 * stuck (stopped, or waiting for this thread), and untraced the program would have ended. */
#define SIGNAL_LOCK_PATIENCE_NS 2000000000ll
static long long monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);   /* async-signal-safe, through the vDSO */
    return now.tv_sec * 1000000000ll + now.tv_nsec;
}

int memtrack_lock_try_for_signal(memtrack_lock *lock, int attempts) {
    int me = memtrack_thread_id();
    long long deadline = attempts < 0 ? monotonic_ns() + SIGNAL_LOCK_PATIENCE_NS : 0;
    for (unsigned tries = 1; attempts != 0; attempts -= attempts > 0, tries++) {
        if (deadline && tries % 64 == 0 && monotonic_ns() > deadline) return 0;
        int owner = atomic_load(lock);
        if ((owner & ~LOCK_WAITERS) == me) return 0;   /* the interrupted code holds it */
        int free_value = 0;
        memtrack_locks_held++;   /* as in memtrack_lock_acquire; undone if not taken */
        atomic_signal_fence(memory_order_seq_cst);
        if (owner == 0 && atomic_compare_exchange_weak(lock, &free_value, me)) return 1;
        if (owner & LOCK_WAITERS) {
            /* Take it with the flag kept, so the release still wakes the sleepers. */
            free_value = 0;
            if (atomic_load(lock) == 0 && atomic_compare_exchange_weak(lock, &free_value, me | LOCK_WAITERS)) return 1;
        }
        if (--memtrack_locks_held <= 0) {
            memtrack_locks_held = 0;
            atomic_signal_fence(memory_order_seq_cst);
            if (MEMTRACK_UNLIKELY(memtrack_deferred_signal_count)) memtrack_send_deferred_signals();
        }
        sched_yield();   /* another thread holds it and will let go */
    }
    return 0;
}

// ---- Signals put aside while a tracker lock is held ------------------------------------------------
MEMTRACK_THREAD_LOCAL int memtrack_locks_held;
#define DEFERRED_SIGNALS 4
static MEMTRACK_THREAD_LOCAL siginfo_t deferred_signals[DEFERRED_SIGNALS];
MEMTRACK_THREAD_LOCAL volatile int memtrack_deferred_signal_count;

int memtrack_signal_is_fault(int signal_number, const siginfo_t *info) {
    return info && info->si_code > 0 &&
        (signal_number == SIGSEGV || signal_number == SIGBUS || signal_number == SIGILL ||
         signal_number == SIGFPE || signal_number == SIGTRAP || signal_number == SIGSYS);
}

/* Returns 1 if the signal was put aside. A standard signal already put aside is not put aside
 * twice (the kernel would have merged them too); when the list is full the handler runs now. */
int memtrack_defer_signal(int signal_number, const siginfo_t *info) {
    if (!memtrack_locks_held || !info || memtrack_signal_is_fault(signal_number, info)) return 0;
    int count = memtrack_deferred_signal_count;
    if (signal_number < SIGRTMIN)
        for (int i = 0; i < count; i++) if (deferred_signals[i].si_signo == signal_number) return 1;
    if (count >= DEFERRED_SIGNALS) return 0;
    deferred_signals[count] = *info;
    deferred_signals[count].si_signo = signal_number;
    atomic_signal_fence(memory_order_seq_cst);
    memtrack_deferred_signal_count = count + 1;
    return 1;
}

/* Called by memtrack_lock_release when the thread holds no tracker lock any more. A handler
 * interrupting this loop finds the list as it left it (it puts aside and sends again only its
 * own signals), so taking the last entry is safe. */
void memtrack_send_deferred_signals(void) {
    int saved_errno = errno;
    for (;;) {
        int count = memtrack_deferred_signal_count;
        if (count <= 0) break;
        siginfo_t info = deferred_signals[count - 1];
        atomic_signal_fence(memory_order_seq_cst);
        memtrack_deferred_signal_count = count - 1;
        /* To this thread, with the original siginfo: delivered on the way out of the call. If
         * that call is refused (a seccomp filter), the signal is sent without its siginfo. */
        pid_t process = getpid();
        long thread = memtrack_sys_gettid();
        if (memtrack_sys_send_signal(process, (pid_t)thread, info.si_signo, &info) != 0)
            memtrack_sys_send_signal(process, (pid_t)thread, info.si_signo, NULL);
    }
    errno = saved_errno;
}

/* A forked child: none of the parent's signals is the child's. */
void memtrack_forget_deferred_signals(void) {
    memtrack_deferred_signal_count = 0;
    memtrack_locks_held = 0;
}

