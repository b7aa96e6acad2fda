/* pending.h: the table of young blocks and the backlog of records waiting for the writer
 * (pending.c). Layer: table. */
#ifndef MEMTRACK_PENDING_H
#define MEMTRACK_PENDING_H

#include "base.h"

#include <time.h>

#pragma GCC visibility push(hidden)

void memtrack_pending_add(const struct memtrack_block *block);
/* A cache hint for the backlog slot a sized delete of this address will look at. */
void memtrack_pending_prefetch_free(uintptr_t address);
/* Forgets the block's record: removes its young entry, or queues the rest for the writer. A young
 * block's allocation stack and size are copied out (for the quarantine's double-free reports). */
void memtrack_pending_remove(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size);
/* The same at once, also for a backlog entry, whose size is copied out and its stack's id given
 * in *stack_id (a sized delete's check, mismatch reports). */
void memtrack_pending_remove_noting_stack(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size,
                                          uint32_t *stack_id);
/* A double free's report, for a block whose record was removed at its first free: the size and
 * stack id the record gave. Returns 1 if known. */
int memtrack_pending_removed_record(uintptr_t address, uint64_t *size, uint32_t *stack_id);
/* Writes every pending record and removes every queued file. in_signal: do not wait on
 * locks this thread may hold. */
void memtrack_pending_flush(int in_signal);
int memtrack_pending_writer_exists(void);
void memtrack_pending_fork_prepare(void);
void memtrack_pending_fork_parent(void);
void memtrack_pending_fork_child(void);
/* A child forked in a signal handler: only the locks and the writer are let go (the code the
 * handler interrupted may be in the middle of a table update; fork_child clears them later). */
void memtrack_pending_fork_child_unprepared(void);
/* For the leak check (leakcheck.c): the young blocks' records; the writer held between passes;
 * the writer thread's id and an address on its stack (0 until it runs). */
void memtrack_pending_visit(void (*visit)(const struct memtrack_block *block, void *context), void *context);
int memtrack_pending_pause_writer(void);
void memtrack_pending_drain_for_check(void);
int memtrack_pending_backlog_lookup(uintptr_t address, uint64_t *size, uintptr_t *first_frame);
void memtrack_pending_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
int memtrack_pending_writer_thread(void);
void memtrack_pending_resume_writer(void);
extern atomic_int memtrack_writer_thread;
extern atomic_uintptr_t memtrack_writer_stack_address;
/* How the writing was shared, for `status`: records the writer wrote, records the program's
 * threads wrote because the backlog budget was spent, the most records ever waiting. */
extern atomic_uint_fast64_t memtrack_writer_records, memtrack_program_records, memtrack_backlog_peak,
    memtrack_program_removals;
/* The backlog tables' slots when backlog-peak was sampled (its load factor). */
extern atomic_uint_fast64_t memtrack_backlog_peak_slots;
/* Inserts into the backlogs, the occupied slots they stepped over, the longest such run. */
void memtrack_pending_probe_counts(uint64_t *inserts, uint64_t *steps, uint64_t *longest);
/* Set when MEM_DIR is not on tmpfs (statfs): a writer falling behind then says so once. */
extern atomic_int memtrack_slow_directory;
/* After the final record at exit: everything later is written synchronously. */
extern atomic_int memtrack_synchronous;

/* Wakes the writer (a set*id call, a flush, a module refresh). */
void memtrack_pending_wake_writer(void);
/* Ends the writer's own pass after its current batch and wakes it (a thread waits for it);
 * the writer clears the call with memtrack_pending_writer_called before it looks why. */
void memtrack_pending_call_writer(void);
void memtrack_pending_writer_called(void);

/* The memory a waiting block takes in a backlog table (pending.c), not counting free slots. */
#define MEMTRACK_BACKLOG_ENTRY_BYTES 32

/* For the writer thread (writer.c), which drives the passes. */
int memtrack_pending_set_writer_running(int running);   /* returns the old value */
uint64_t memtrack_pending_backlog_records(void);
/* The same, also noted as the status's backlog-peak if it is the most seen. */
uint64_t memtrack_pending_sample_backlog(void);
/* The backlog from which the writer counts as behind (writer.c's settle policy), for status. */
extern atomic_uint_fast64_t memtrack_behind_blocks;
/* The most bytes the backlogs and removal queues were seen to map (at the same samples). */
extern atomic_uint_fast64_t memtrack_backlog_peak_bytes;
void memtrack_pending_wait_for_work(const struct timespec *tick);
/* Whether a shard's events wait for the writer, and applying them all (pass held). */
int memtrack_pending_drain_requested(void);
void memtrack_pending_drain_events(void);
int memtrack_pending_flush_requested(void);
void memtrack_pending_flush_helped(void);
void memtrack_pending_begin_pass(void);
void memtrack_pending_end_pass(void);
void memtrack_pending_warn_if_slow(void);
void memtrack_pending_writer_pass(uint32_t cutoff_ms, uint64_t before_sequence, int yields, int removals_first);

#pragma GCC visibility pop

#endif
