/* internal.h: what the parts of the interposer share.
 *
 * The parts, one job each:
 *   entry.c       the exported allocation entry points (malloc, free, ...): thin
 *   bootstrap.c   finding the next allocator, the arena dlsym needs, configuration, start-up
 *   children.c    which processes are traced (MEM_TRACE_CHILDREN): the others restart untraced
 *   shadow.c      the live-set index: which addresses are live, freed or never allocated
 *   pending.c     deferred records: the table of young blocks and the writer thread
 *   quarantine.c  freed blocks held back from reuse, so stale frees are still caught
 *   records.c     formatting and writing record files (never stdio, never malloc), atomically,
 *                 through the file thread: no descriptor in the program's table
 *   stacks.c      call stacks interned once per process, in the run directory's `stacks` file
 *   process.c     the run directory, fork, exec, exit and signals
 *   credentials.c set*id calls: the tracker's threads follow the caller's capabilities
 *   unwind.c      the call-stack capture
 *   leakcheck.c   the leak check: which live blocks are still reachable, and which are lost
 *   cxx.c         the C++ operator new/delete family, forwarded to the next one with a marker
 *   family.c      which family (malloc, new, new[]) allocated each live block
 *   deepbind.c    libraries opened with RTLD_DEEPBIND; dlmopen namespaces
 *   loader.c      where the dynamic loader's code is (its blocks get the deepest stacks)
 *   counters.c    allocation statistics in the mapped `counters` file
 *   requests.c    requests from memdir (check-request), served by the writer thread
 *   shm.c         shared memory: mappings and SysV/POSIX segments the program never gives back
 *   annotations.c what the program tells us: pause/resume, ignore, root regions, on-demand
 *                 checks, source locations (memtrack.h), and LSan's names for them
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
    MEMTRACK_VIA_NEW, MEMTRACK_VIA_NEW_ARRAY, MEMTRACK_VIA_NEW_ALIGNED, MEMTRACK_VIA_NEW_ARRAY_ALIGNED,
    MEMTRACK_VIA_DELETE, MEMTRACK_VIA_DELETE_ARRAY,
};
const char *memtrack_via_name(int via);

struct memtrack_stack {
    uint32_t depth;
    uintptr_t frames[MEMTRACK_MAX_DEPTH];
};

/* ---- children.c ----------------------------------------------------------------------- */

/* In a process MEM_TRACE_CHILDREN or MEM_TRACE_CHILDREN_SKIP leave untraced: execs the same
 * program again without libmemtrack.so in LD_PRELOAD, and does not return. */
void memtrack_restart_if_untraced(char **argv, char **envp);

/* ---- bootstrap.c ---------------------------------------------------------------------- */

struct memtrack_config {
    int settle_ms;            /* MEM_SETTLE_MS: 0 = synchronous records */
    int depth;                /* MEM_DEPTH */
    int freeres;              /* MEM_FREERES */
    size_t quarantine_bytes;  /* MEM_QUARANTINE */
    int leak_check;           /* MEM_LEAK_CHECK */
    int counters;             /* MEM_COUNTERS */
    uint32_t trace_after_ms;  /* MEM_TRACE_AFTER, in ms: blocks allocated earlier are not recorded */
    size_t backlog_bytes;     /* MEM_BACKLOG: memory for records waiting for the writer */
    int settle_backlog_ms;    /* MEM_SETTLE_BACKLOG_MS: the settle time while the backlog is large */
};
/* The backlog is large from this many blocks on (see pending.c's writer). */
#define MEMTRACK_LARGE_BACKLOG 100000
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
size_t memtrack_arena_bytes_after(const void *pointer);

/* ---- shadow.c ------------------------------------------------------------------------- */

enum memtrack_shadow_state {
    MEMTRACK_NEVER = 0,          /* never returned by an allocation function */
    MEMTRACK_LIVE = 1,           /* live, recorded */
    MEMTRACK_FREED = 2,          /* freed (possibly handed out again later) */
    MEMTRACK_LIVE_INTERNAL = 3,  /* live, allocated on the tracker's behalf: never recorded */
    MEMTRACK_UNTRACKED = -1,     /* the index has no memory for this address: not known either way */
};
/* For the leak check: every LIVE block in address order; whether [start, end) holds any granule
 * ever handed out; the index's own mappings. */
void memtrack_shadow_for_each_live(void (*visit)(uintptr_t address, void *context), void *context);
int memtrack_shadow_any_known(uintptr_t start, uintptr_t end);
void memtrack_shadow_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
/* Sets the state of the block at pointer and returns the previous one. */
int memtrack_shadow_exchange(const void *pointer, int state);
/* Moves a live block to FREED atomically; returns the previous state (the caller reports
 * NEVER or FREED as a bad free, and must then leave the state as it was). */
int memtrack_shadow_release(const void *pointer);
int memtrack_shadow_state(const void *pointer);   /* read only */

/* ---- records.c ------------------------------------------------------------------------ */

struct memtrack_block {
    uintptr_t address;
    uint64_t size;
    uint64_t sequence;
    uint32_t milliseconds;  /* since the process started */
    int32_t thread;
    uint8_t via;
    uint8_t family;         /* enum memtrack_family; written as family= when not malloc */
    uint32_t source, source_line;   /* memtrack.h's location (annotations.c); source 0: none */
    struct memtrack_stack stack;
};

/* Copies of a stack or a block that stop at the stack's depth: a whole struct is 312 bytes,
 * and most stacks are a few frames deep (memcpy was 8 % of churn's instructions). */
static inline void memtrack_copy_stack(struct memtrack_stack *to, const struct memtrack_stack *from) {
    uint32_t depth = from->depth <= MEMTRACK_MAX_DEPTH ? from->depth : MEMTRACK_MAX_DEPTH;
    __builtin_memcpy(to, from, offsetof(struct memtrack_stack, frames) + depth * sizeof(uintptr_t));
}
static inline void memtrack_copy_block(struct memtrack_block *to, const struct memtrack_block *from) {
    uint32_t depth = from->stack.depth <= MEMTRACK_MAX_DEPTH ? from->stack.depth : MEMTRACK_MAX_DEPTH;
    __builtin_memcpy(to, from, offsetof(struct memtrack_block, stack.frames) + depth * sizeof(uintptr_t));
}

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
    const char *kind;           /* NULL: double-free or invalid-free; else mismatched-free/-size */
    uint8_t family;             /* mismatches: the family that allocated the block */
    uint64_t freed_size;        /* mismatched-size: the size the sized delete was given */
};

/* >= 0 while this process records into its run directory; -1 when recording is impossible.
 * Not a descriptor the tracker keeps open: records.c opens the directory for each use. */
extern atomic_int memtrack_run_directory;
extern char memtrack_run_name[64];
extern uint64_t memtrack_start_milliseconds;   /* monotonic, for the ms= field */
extern atomic_uint_fast64_t memtrack_sequence;

/* A block as its record holds it: the stack interned (stacks.c). 48 bytes. */
struct memtrack_record {
    uintptr_t address;
    uint64_t size;
    uint64_t sequence;
    uint32_t milliseconds;
    int32_t thread;
    uint32_t stack_id;
    uint8_t via;
    uint8_t family;                 /* enum memtrack_family */
    uint32_t source, source_line;   /* as in memtrack_block */
};

/* Interns the stack (if need be) and writes the block's symlink record. */
int memtrack_write_block(const struct memtrack_block *block);
int memtrack_write_record(const struct memtrack_record *record);
void memtrack_make_record(struct memtrack_record *record, const struct memtrack_block *block, uint32_t stack_id);
void memtrack_create_stacks_file(void);
int memtrack_append_stacks_file(const char *line, size_t length);
/* memtrack.h's locations of format 2 records: `ID FILE\tFUNCTION` lines (annotations.c). */
int memtrack_append_sources_file(const char *line, size_t length);
void memtrack_remove_block_file(uintptr_t address);
void memtrack_read_block(uintptr_t address, uint64_t *size, struct memtrack_stack *stack);
/* The same, either record format; stack may be NULL. Returns 1 if the record was read. */
int memtrack_read_block_record(uintptr_t address, uint64_t *size, struct memtrack_stack *stack);
/* Stack `id` from the run directory's stacks file. Returns 1 if found. */
int memtrack_read_stack(uint32_t id, struct memtrack_stack *stack);
void memtrack_write_bad_free(const struct memtrack_bad_free *event);
void memtrack_write_process_file(const char *parent_run_name);
/* Remembers the freshly created run directory (its path and identity); the caller closes fd. */
void memtrack_remember_run_directory(int fd);
/* Gives the calling tracker thread a descriptor table of its own (the writer, the file thread). */
void memtrack_use_private_descriptors(void);
/* The thread that does every file operation of program threads (see records.c). */
void memtrack_start_file_thread(void);
void memtrack_files_fork_prepare(void);
void memtrack_files_fork_parent(void);
void memtrack_files_fork_child(void);
/* Writes name in directory under a temporary name, then renames it into place. 0 or errno. */
int memtrack_write_file_atomically(int directory, const char *name, const char *text, size_t length);
void memtrack_write_status(const char *state, int value, const char *exec_path);
int memtrack_write_status_mark(const char *why);
void memtrack_write_modules(int force_rewrite, int in_signal);
void memtrack_modules_fork_refresh(void);
void memtrack_modules_fork_prepare(void);
void memtrack_modules_fork_parent(void);
void memtrack_modules_fork_child(void);
void memtrack_modules_fork_child_unprepared(void);
/* One warning per process, on the first thing the tracker could not do. */
void memtrack_note_failure(const char *operation, int error_number, atomic_uint_fast64_t *counter);
extern atomic_uint_fast64_t memtrack_unrecorded_blocks, memtrack_unremoved_records,
    memtrack_unrecorded_events;
void memtrack_say(const char *text);   /* one line on stderr, no allocation */
uint32_t memtrack_milliseconds_now(void);
int32_t memtrack_thread_id(void);
void memtrack_forget_thread_id(void);

/* The run directory for one use, opened by path and checked; -1 when unusable. Give it back
 * with memtrack_record_directory_done. */
int memtrack_record_directory(void);
void memtrack_record_directory_done(int fd);
/* One-line records of other kinds (shm.c), through the file thread, atomically; 0 or errno. */
int memtrack_write_record_file(const char *name, const char *text, size_t length);
int memtrack_remove_record_file(const char *name);
ssize_t memtrack_write_all(int fd, const char *text, size_t length);
/* Small formatting helpers that never allocate; each returns the new end of the buffer. */
char *memtrack_put_text(char *out, const char *end, const char *text);
char *memtrack_put_decimal(char *out, const char *end, uint64_t value);
char *memtrack_put_hex(char *out, const char *end, uintptr_t value);
char *memtrack_put_stack(char *out, const char *end, const struct memtrack_stack *stack);
/* Escapes a value that runs to the end of its line (README: \\ \n \t \xHH). */
char *memtrack_put_escaped(char *out, const char *end, const char *text);
/* The run directory, re-opened if the program took our descriptor; -1 when unusable. */

/* ---- stacks.c ------------------------------------------------------------------------- */

/* The stack's id in this process's stacks file, its line written first if it is new. 0 when
 * the line could not be written (*error says why). Lock-free; safe in a signal handler. */
uint32_t memtrack_stack_id(const struct memtrack_stack *stack, int *error);
void memtrack_stacks_reset(void);
/* The innermost frame of stack `id` (kept in memory for the leak check), 0 when unknown. */
uintptr_t memtrack_stack_first_frame(uint32_t id);
void memtrack_stacks_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);

/* ---- pending.c ------------------------------------------------------------------------ */

void memtrack_pending_add(const struct memtrack_block *block);
/* A cache hint for the backlog slot a free of this address will look at. */
void memtrack_pending_prefetch_free(uintptr_t address);
/* Forgets the block's record: removes its table entry or its file. If known, copies the
 * allocation stack and size out (for the quarantine's double-free reports). */
void memtrack_pending_remove(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size);
/* The same, reading a backlog entry's stack back from the stacks file (mismatch reports). */
void memtrack_pending_remove_noting_stack(uintptr_t address, struct memtrack_stack *alloc_stack, uint64_t *size,
                                          uint32_t *stack_id);
/* Writes every pending record and removes every queued file. in_signal: do not wait on
 * locks this thread may hold. */
void memtrack_pending_flush(int in_signal);
void memtrack_pending_start_writer(void);
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
int memtrack_pending_backlog_lookup(uintptr_t address, uint64_t *size, uintptr_t *first_frame);
void memtrack_pending_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
int memtrack_pending_writer_thread(void);
void memtrack_pending_resume_writer(void);
extern atomic_int memtrack_writer_thread;
/* The file thread (records.c): a tracker thread too, never stopped or scanned. */
extern atomic_int memtrack_file_thread;
extern atomic_uintptr_t memtrack_file_thread_stack_address;
extern atomic_uintptr_t memtrack_writer_stack_address;
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
void memtrack_quarantine_visit(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context);
void memtrack_quarantine_fork_prepare(void);
void memtrack_quarantine_fork_parent(void);
void memtrack_quarantine_fork_child(void);

/* ---- leakcheck.c ---------------------------------------------------------------------- */

/* Classifies every live block now and writes `leak-check` (on_request 0, `when exit`) or
 * `leak-check-SEQ` (on_request 1, `when request`). Other threads are stopped for the scan only.
 * Returns the number of definitely and indirectly lost blocks, or -1 if it could not run. */
int memtrack_leak_check_now(int on_request);
/* At exit: runs `freeres` (NULL: none) where it is safe, then the check (leakcheck.c). */
int memtrack_leak_check_at_exit(void (*freeres)(void));
/* Set when the exit check left the other threads stopped (they end with the process). */
extern int memtrack_world_held;
/* The allocation path: notes a block whose caller is the dynamic loader (memtrack_in_loader). */
void memtrack_note_loader_block(uintptr_t address);
/* `result skipped REASON` as `leak-check`, signal-safe (for _exit). */
void memtrack_leak_check_skipped(const char *reason);
/* ---- annotations.c ------------------------------------------------------------------- */

/* Non-zero when this thread is paused or has noted a source location; with the global
 * memtrack_annotations_active, the allocation path's only cost when nothing is annotated. */
extern MEMTRACK_THREAD_LOCAL int memtrack_thread_annotations;
extern atomic_int memtrack_annotations_active;
/* For a new block: picks up the noted source location; returns 1 if the block must not be
 * recorded (this thread is paused, or MEM_TRACE_AFTER has not passed yet). */
int memtrack_annotate_allocation(struct memtrack_block *block, void *pointer, size_t size);
/* A block that is not recorded (LIVE_INTERNAL) is freed or moved: it is no longer a root. */
void memtrack_forget_paused_block(uintptr_t address);
void memtrack_start_tracing_after(uint32_t milliseconds);
/* ` src=FILE:LINE:FUNCTION` text of a block's source location (escaped). */
char *memtrack_put_source(char *out, const char *end, uint32_t source, uint32_t line);
/* Format 2: appends the source's line to the `sources` file once; 0 or an errno value. */
int memtrack_publish_source(uint32_t source);
void memtrack_sources_reset(void);   /* a forked child's record starts its own sources file */
/* For the leak check: blocks the program asked us to ignore (memtrack_ignore,
 * __lsan_ignore_object), still live; and the registered root regions. */
int memtrack_is_ignored(uintptr_t address);
void memtrack_for_each_ignored(void (*visit)(uintptr_t start, size_t size, void *context), void *context);
void memtrack_for_each_root_region(void (*visit)(uintptr_t start, size_t size, void *context), void *context);

/* ---- process.c ------------------------------------------------------------------------ */

void memtrack_process_start(void);
extern pid_t memtrack_pid;
/* Zero in a child made by _Fork or a raw clone that has not started its own record yet. */
extern const volatile int *memtrack_fork_sentinel;
void memtrack_process_forked_unseen(void);

/* ---- credentials.c -------------------------------------------------------------------- */

void memtrack_credentials_start(void);
/* The tracker's threads call it when woken: they take the capabilities a set*id caller has. */
void memtrack_credentials_follow(void);
void memtrack_pending_wake_writer(void);
/* The module map brought up to date by the writer, waiting at most 2 s (fatal signals). */
int memtrack_pending_refresh_modules_bounded(void);
void memtrack_files_wake(void);

/* ---- family.c and cxx.c -------------------------------------------------------------- */

enum memtrack_family { MEMTRACK_FAMILY_MALLOC = 0, MEMTRACK_FAMILY_NEW = 1, MEMTRACK_FAMILY_ARRAY = 2 };
const char *memtrack_family_name(int family);
/* Until the first C++ block every block is malloc's: a C program pays one load per call. */
extern atomic_int memtrack_any_family;
void memtrack_family_set_slow(const void *pointer, int family);
int memtrack_family_take_slow(const void *pointer);
static inline void memtrack_family_set(const void *pointer, int family) {
    if (family != MEMTRACK_FAMILY_MALLOC || atomic_load_explicit(&memtrack_any_family, memory_order_relaxed))
        memtrack_family_set_slow(pointer, family);
}
/* Reads the block's family and resets it to MALLOC. */
static inline int memtrack_family_take(const void *pointer) {
    if (MEMTRACK_LIKELY(!atomic_load_explicit(&memtrack_any_family, memory_order_relaxed))) return MEMTRACK_FAMILY_MALLOC;
    return memtrack_family_take_slow(pointer);
}
int memtrack_family_peek(const void *pointer);

/* Set by an operator new wrapper around its call of the next operator new; the first
 * allocation entry point reached takes it (success or failure) and, on success, records the
 * block with the wrapper's stack and via. */
struct memtrack_cxx_allocation {
    uint8_t via;
    uint64_t size;          /* what the program asked for */
    void *claimed;          /* the block the entry point recorded */
    struct memtrack_stack stack;
};
extern MEMTRACK_THREAD_LOCAL struct memtrack_cxx_allocation *memtrack_cxx_allocation;

/* Set by an operator delete wrapper around its call of the next operator delete; free takes
 * it when the pointer matches. */
struct memtrack_cxx_deallocation {
    void *pointer;
    uint8_t via;
    uint8_t family;         /* what a matching allocation was: new or new[] */
    uint64_t size;          /* a sized delete's size; 0 when unsized */
    uint64_t alignment;     /* an aligned delete's alignment; 0 when none */
    struct memtrack_stack stack;   /* depth 0: free captures its own */
};
extern MEMTRACK_THREAD_LOCAL struct memtrack_cxx_deallocation *memtrack_cxx_deallocation;

/* ---- loader.c ------------------------------------------------------------------------- */

extern uintptr_t memtrack_loader_start, memtrack_loader_size;
extern atomic_int memtrack_loader_known;
void memtrack_loader_find(void);
/* Whether address is in the dynamic loader's code (found on first use). */
static inline int memtrack_in_loader(uintptr_t address) {
    if (MEMTRACK_UNLIKELY(!atomic_load_explicit(&memtrack_loader_known, memory_order_acquire)))
        memtrack_loader_find();
    return address - memtrack_loader_start < memtrack_loader_size;
}
/* How many frames to capture for an allocation called from return_address. */
static inline int memtrack_depth_for(uintptr_t return_address) {
    return memtrack_in_loader(return_address) ? MEMTRACK_MAX_DEPTH : memtrack_config.depth;
}

/* A stack cut off at MEM_DEPTH that went through the loader (a library's constructor running
 * inside dlopen) is taken again at full depth, so that it reaches the program's dlopen call. */
static inline int memtrack_stack_needs_more(const struct memtrack_stack *stack) {
    if (MEMTRACK_LIKELY(stack->depth < (uint32_t)memtrack_config.depth) || stack->depth >= MEMTRACK_MAX_DEPTH)
        return 0;
    for (uint32_t i = 0; i < stack->depth; i++)
        if (stack->frames[i] - memtrack_loader_start < memtrack_loader_size) return 1;
    return 0;
}

/* ---- spin locks ----------------------------------------------------------------------- */
/* The lock word holds the owner's thread id, so a signal handler can tell "held by me"
 * (skip: the interrupted code owns it) from "held by another thread" (wait). Contended
 * waiters sleep on a futex (records.c). */
typedef atomic_int memtrack_lock;
void memtrack_lock_acquire(memtrack_lock *lock);
/* Whether the calling thread holds it (a signal handler that interrupted the holder). */
int memtrack_lock_held_by_me(memtrack_lock *lock);
/* For signal handlers: 0 when this thread holds it, or when `attempts` waits (-1: as many as
 * 2 seconds allow) were not enough. */
int memtrack_lock_try_for_signal(memtrack_lock *lock, int attempts);
void memtrack_lock_release(memtrack_lock *lock);
/* How many tracker locks this thread holds (or waits for); signals that arrive meanwhile are
 * put aside and sent again when it reaches 0 (process.c). */
extern MEMTRACK_THREAD_LOCAL int memtrack_locks_held;
extern MEMTRACK_THREAD_LOCAL volatile int memtrack_deferred_signal_count;
void memtrack_send_deferred_signals(void);

/* ---- counters.c, requests.c ----------------------------------------------------------- */

/* The per-call counters are inline, in counters.h. */
void memtrack_counters_open(int directory);
void memtrack_annotations_fork_prepare(void);
void memtrack_annotations_fork_release(void);
void memtrack_counters_probe_chunk_headers(void);
int memtrack_requests_take(void);
void memtrack_requests_answer(void);
/* Takes a sequence number for an on-demand check, so that its answer's name is new. */
void memtrack_unique_check_sequence(void);

#endif
