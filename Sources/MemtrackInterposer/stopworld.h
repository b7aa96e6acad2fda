/* stopworld.h: stopping the program's other threads for the leak check (stopworld.c). */
#ifndef MEMTRACK_STOPWORLD_H
#define MEMTRACK_STOPWORLD_H

#include "arch.h"   /* MEMTRACK_WORLD_REGISTERS */

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#pragma GCC visibility push(hidden)

#define MEMTRACK_WORLD_MAX_THREADS 1024

enum memtrack_thread_state {
    MEMTRACK_THREAD_RUNNING = 0,   /* not stopped: see `error` */
    MEMTRACK_THREAD_STOPPED = 1,   /* stopped; `registers` and `stack_pointer` are its own */
    MEMTRACK_THREAD_GONE = 2,      /* ended meanwhile */
};

struct memtrack_world_thread {
    int tid;
    _Atomic int state;
    int error;             /* why it runs: an errno of ptrace or clone, or ETIMEDOUT */
    int seized;            /* the tracer holds it (it may stop after the deadline) */
    int late_stop;         /* stopped after the deadline: detach it with care, do not scan it */
    uintptr_t stack_pointer;   /* 0: unknown (a running thread outside a system call) */
    int register_count;    /* all of them when stopped; the 6 system call arguments when blocked */
    uint64_t registers[MEMTRACK_WORLD_REGISTERS];
};

struct memtrack_world {
    struct memtrack_world_thread threads[MEMTRACK_WORLD_MAX_THREADS];
    int count;
    int overflow;          /* threads beyond MEMTRACK_WORLD_MAX_THREADS */
    int running;           /* threads not stopped (not counting those gone) */
    pid_t pid, tracer;
    int self, skip[4], skip_count;   /* threads never stopped: the caller, the tracker's */
    void *tracer_stack;
    size_t tracer_stack_bytes;
    _Atomic int phase;
};

/* Stops every thread of the process but `self` and the `skip` ones, without a signal: a
 * tracer task ptrace-interrupts them. A thread that cannot be stopped is left running, with
 * what /proc tells of it. may_set_ptracer: allowed to name the tracer with PR_SET_PTRACER
 * (Yama), which replaces the program's own choice. */
void memtrack_world_stop(struct memtrack_world *world, int self, const int *skip, int skip_count, int may_set_ptracer);

/* Lets the stopped threads go on, each exactly where it was (an interrupted system call is
 * restarted, never failed with EINTR). */
void memtrack_world_resume(struct memtrack_world *world);

/* Where a stopped thread is, from /proc: the system call it is blocked in (-1: none) and its
 * pc. Returns 0 when /proc does not say. */
int memtrack_world_thread_position(const struct memtrack_world_thread *t, long *number, uintptr_t *pc);

/* Notes the threads there before the tracker starts (at start and in a fork child): a host's,
 * such as qemu-user's, never the program's. */
void memtrack_world_note_foreign_threads(void);
int memtrack_world_is_foreign(int tid);

/* How many threads the process has besides `self`, the `skip` ones and the foreign ones (-1: unknown). */
int memtrack_world_count_others(int self, const int *skip, int skip_count);

#pragma GCC visibility pop

#endif
