/* lock.h: spin locks that know their owner, and signals put aside while one is held (lock.c).
 * Layer: lock. */
#ifndef MEMTRACK_LOCK_H
#define MEMTRACK_LOCK_H

#include "base.h"

#include <signal.h>

#pragma GCC visibility push(hidden)

/* The lock word holds the owner's thread id, so a signal handler can tell "held by me"
 * (skip: the interrupted code owns it) from "held by another thread" (wait). Contended
 * waiters sleep on a futex. */
typedef atomic_int memtrack_lock;
void memtrack_lock_acquire(memtrack_lock *lock);
/* Whether the calling thread holds it (a signal handler that interrupted the holder). */
int memtrack_lock_held_by_me(memtrack_lock *lock);
/* For signal handlers: 0 when this thread holds it, or when `attempts` waits (-1: as many as
 * 2 seconds allow) were not enough. */
int memtrack_lock_try_for_signal(memtrack_lock *lock, int attempts);
void memtrack_lock_release(memtrack_lock *lock);

/* How many tracker locks this thread holds (or waits for); signals that arrive meanwhile are
 * put aside and sent again when it reaches 0. */
extern MEMTRACK_THREAD_LOCAL int memtrack_locks_held;
extern MEMTRACK_THREAD_LOCAL volatile int memtrack_deferred_signal_count;
/* Whether the signal was raised by an instruction (never put aside: it would fault again). */
int memtrack_signal_is_fault(int signal_number, const siginfo_t *info);
/* Returns 1 if the signal was put aside (this thread holds a tracker lock). */
int memtrack_defer_signal(int signal_number, const siginfo_t *info);
void memtrack_send_deferred_signals(void);
/* A forked child: none of the parent's signals is the child's, nor its locks. */
void memtrack_forget_deferred_signals(void);

#pragma GCC visibility pop

#endif
