/* internal.h: what the parts of the interposer share.
 *
 * The parts, one job each:
 *   entry.c       the exported allocation entry points (malloc, free, ...): thin
 *   bootstrap.c   finding the next allocator, the arena dlsym needs, configuration, start-up
 *   shadow.c      the live-set index: which addresses are live, freed or never allocated
 *   pending.c     deferred records: the table of young blocks and the writer thread
 *   quarantine.c  freed blocks held back from reuse, so stale frees are still caught
 *   records.c     formatting and writing record files (never stdio, never malloc)
 *   stacks.c      call stacks interned once per process, in the run directory's `stacks` file
 *   process.c     the run directory, fork, exec, exit and fatal signals
 *   unwind.c      the call-stack capture
 *
 * Rules for everything here: no stdio, nothing that can allocate, no lock a signal handler
 * could deadlock on without noticing, errno left as the program had it.
 */
#ifndef MEMTRACK_INTERNAL_H
#define MEMTRACK_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MEMTRACK_EXPORT __attribute__((visibility("default")))
/* initial-exec: the glibc manual's rule for malloc replacements, so no TLS access can call malloc. */
#define MEMTRACK_THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))
#define MEMTRACK_LIKELY(x) __builtin_expect(!!(x), 1)
#define MEMTRACK_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The deepest stack MEM_DEPTH may ask for; deeper requests are clamped. */
#define MEMTRACK_MAX_DEPTH 32

enum memtrack_via {
    MEMTRACK_VIA_MALLOC, MEMTRACK_VIA_CALLOC, MEMTRACK_VIA_REALLOC, MEMTRACK_VIA_REALLOCARRAY,
    MEMTRACK_VIA_POSIX_MEMALIGN, MEMTRACK_VIA_ALIGNED_ALLOC, MEMTRACK_VIA_MEMALIGN,
    MEMTRACK_VIA_VALLOC, MEMTRACK_VIA_PVALLOC, MEMTRACK_VIA_FREE, MEMTRACK_VIA_CFREE,
};
const char *memtrack_via_name(int via);

struct memtrack_stack {
    uint32_t depth;
    uintptr_t frames[MEMTRACK_MAX_DEPTH];
};

/* ---- bootstrap.c ---------------------------------------------------------------------- */

struct memtrack_config {
    int settle_ms;            /* MEM_SETTLE_MS: 0 = synchronous records */
    int depth;                /* MEM_DEPTH */
    int freeres;              /* MEM_FREERES */
    size_t quarantine_bytes;  /* MEM_QUARANTINE */
    size_t backlog_bytes;     /* MEM_BACKLOG: memory for records waiting for the writer */
};
extern struct memtrack_config memtrack_config;

struct memtrack_next_allocator {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
};
extern struct memtrack_next_allocator memtrack_next;

/* Non-zero while this thread runs tracker code: allocations made then are the tracker's own
 * (or libc's on its behalf) and are never recorded. Per thread, unlike the seeds' global flag. */
extern MEMTRACK_THREAD_LOCAL int memtrack_busy;

/* 0 until the next allocator is known; 1 after. */
extern atomic_int memtrack_ready;
void memtrack_bootstrap(void);
int memtrack_arena_owns(const void *pointer);
void *memtrack_arena_allocate(size_t size);

/* ---- shadow.c ------------------------------------------------------------------------- */

enum memtrack_shadow_state {
    MEMTRACK_NEVER = 0,          /* never returned by an allocation function */
    MEMTRACK_LIVE = 1,           /* live, recorded */
    MEMTRACK_FREED = 2,          /* freed (possibly handed out again later) */
    MEMTRACK_LIVE_INTERNAL = 3,  /* live, allocated on the tracker's behalf: never recorded */
};
/* Sets the state of the block at pointer and returns the previous one. */
int memtrack_shadow_exchange(const void *pointer, int state);
/* Moves a live block to FREED atomically; returns the previous state (the caller reports
 * NEVER or FREED as a bad free, and must then leave the state as it was). */
int memtrack_shadow_release(const void *pointer);

/* ---- records.c ------------------------------------------------------------------------ */

struct memtrack_block {
    uintptr_t address;
    uint64_t size;
    uint64_t sequence;
    uint32_t milliseconds;  /* since the process started */
    int32_t thread;
    uint8_t via;
    struct memtrack_stack stack;
};

struct memtrack_bad_free {
    uintptr_t address;
    int double_free;            /* 1: allocated and already freed; 0: never allocated */
    uint64_t sequence;
    uint32_t milliseconds;
    int32_t thread;
    uint8_t via;
    struct memtrack_stack stack;
    uint64_t size;              /* 0 when unknown */
    struct memtrack_stack alloc_stack;  /* depth 0 when unknown */
    struct memtrack_stack free_stack;   /* depth 0 when unknown */
};

/* The run directory this process writes into; -1 when recording is impossible. */
extern atomic_int memtrack_run_directory;
extern char memtrack_run_name[64];
extern uint64_t memtrack_start_milliseconds;   /* monotonic, for the ms= field */
extern atomic_uint_fast64_t memtrack_sequence;

/* A block as its record holds it: the stack interned (stacks.c). 40 bytes. */
struct memtrack_record {
    uintptr_t address;
    uint64_t size;
    uint64_t sequence;
    uint32_t milliseconds;
    int32_t thread;
    uint32_t stack_id;
    uint8_t via;
};

/* Interns the stack (if need be) and writes the block's symlink record. */
int memtrack_write_block(const struct memtrack_block *block);
int memtrack_write_record(const struct memtrack_record *record);
void memtrack_make_record(struct memtrack_record *record, const struct memtrack_block *block, uint32_t stack_id);
void memtrack_create_stacks_file(void);
int memtrack_append_stacks_file(const char *line, size_t length);
/* A writer pass or a flush checks the run directory once, then trusts it for its records. */
int memtrack_begin_trusted_pass(void);
void memtrack_end_trusted_pass(int previous);
void memtrack_remove_block_file(uintptr_t address);
void memtrack_write_bad_free(const struct memtrack_bad_free *event);
void memtrack_write_process_file(const char *parent_run_name);
void memtrack_open_status(void);
void memtrack_remember_run_directory(int fd);
int memtrack_is_run_directory(int fd);
void memtrack_write_status(const char *state, int value, const char *exec_path);
void memtrack_write_modules(int force_rewrite, int in_signal);
void memtrack_modules_fork_prepare(void);
void memtrack_modules_fork_parent(void);
void memtrack_modules_fork_child(void);
/* One warning per process, on the first thing the tracker could not do. */
void memtrack_note_failure(const char *operation, int error_number, atomic_uint_fast64_t *counter);
extern atomic_uint_fast64_t memtrack_unrecorded_blocks, memtrack_unremoved_records,
    memtrack_unrecorded_events;
void memtrack_say(const char *text);   /* one line on stderr, no allocation */
uint32_t memtrack_milliseconds_now(void);
int32_t memtrack_thread_id(void);
void memtrack_forget_thread_id(void);

/* Small formatting helpers that never allocate; each returns the new end of the buffer. */
char *memtrack_put_text(char *out, const char *end, const char *text);
char *memtrack_put_decimal(char *out, const char *end, uint64_t value);
char *memtrack_put_hex(char *out, const char *end, uintptr_t value);
char *memtrack_put_stack(char *out, const char *end, const struct memtrack_stack *stack);

/* ---- stacks.c ------------------------------------------------------------------------- */

/* The stack's id in this process's stacks file, its line written first if it is new. 0 when
 * the line could not be written (*error says why). Lock-free; safe in a signal handler. */
uint32_t memtrack_stack_id(const struct memtrack_stack *stack, int *error);
void memtrack_stacks_reset(void);

/* ---- pending.c ------------------------------------------------------------------------ */

void memtrack_pending_add(const struct memtrack_block *block);
/* Forgets the block's record: removes its table entry or its file. If known, copies the
 * allocation stack and size out (for the quarantine's double-free reports). */
void memtrack_pending_remove(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size);
/* Writes every pending record and removes every queued file. in_signal: do not wait on
 * locks this thread may hold. */
void memtrack_pending_flush(int in_signal);
void memtrack_pending_start_writer(void);
void memtrack_pending_fork_prepare(void);
void memtrack_pending_fork_parent(void);
void memtrack_pending_fork_child(void);
/* How the writing was shared, for `status`: records the writer wrote, records the program's
 * threads wrote because the backlog budget was spent, the most records ever waiting. */
extern atomic_uint_fast64_t memtrack_writer_records, memtrack_program_records, memtrack_backlog_peak,
    memtrack_program_removals;
/* Set when MEM_DIR is not on tmpfs (statfs): a writer falling behind then says so once. */
extern atomic_int memtrack_slow_directory;
/* After the final record at exit: everything later is written synchronously. */
extern atomic_int memtrack_synchronous;

/* ---- quarantine.c --------------------------------------------------------------------- */

/* Takes ownership of a freed block; releases older blocks to the next allocator's free. */
void memtrack_quarantine_put(void *pointer, uint64_t size, const struct memtrack_stack *alloc_stack,
                             const struct memtrack_stack *free_stack);
/* For a bad free: what the quarantine still knows of that address. Returns 1 if found. */
int memtrack_quarantine_find(uintptr_t address, uint64_t *size, struct memtrack_stack *alloc_stack,
                             struct memtrack_stack *free_stack);
void memtrack_quarantine_fork_prepare(void);
void memtrack_quarantine_fork_parent(void);
void memtrack_quarantine_fork_child(void);

/* ---- process.c ------------------------------------------------------------------------ */

void memtrack_process_start(void);
extern pid_t memtrack_pid;

/* ---- spin locks ----------------------------------------------------------------------- */
/* The lock word holds the owner's thread id, so a signal handler can tell "held by me"
 * (skip: the interrupted code owns it) from "held by another thread" (wait). Contended
 * waiters sleep on a futex (records.c). */
typedef atomic_int memtrack_lock;
void memtrack_lock_acquire(memtrack_lock *lock);
/* For signal handlers: 0 when this thread holds it, or when `attempts` waits (-1: no limit)
 * were not enough. */
int memtrack_lock_try_for_signal(memtrack_lock *lock, int attempts);
void memtrack_lock_release(memtrack_lock *lock);

#endif
