/* base.h: what every part of the interposer shares: its conventions, the data types that pass
 * between layers, the settings and the few process-wide variables (defined in state.c).
 *
 * The interposer is built in layers. A file calls into its own layer and the ones below it,
 * never above; each layer's header (the .h of each file) declares only that file's functions,
 * and a file includes only what is below it. InterposerLayerTests draws the structure from
 * the sources (includes, and calls read with nm from each object) and checks it against this
 * list, which it reads from here: keep one `layer NAME: FILES` line per layer, bottom first.
 *
 *   layer base: base.h state.c sys.c saferead.c arch.h arch/x86_64.h arch/aarch64.h
 *   layer lock: lock.c capabilities.c
 *   layer format: format.c names.c failure.c
 *   layer index: radix.c shadow.c family.c loader.c unwind.c
 *   layer files: files.c
 *   layer records: stacks.c sources.c records.c
 *   layer table: pending.c
 *   layer state: quarantine.c counters.c annotations.c loaderwalk.c status.c
 *   layer check: stopworld.c leakcheck.c
 *   layer requests: requests.c
 *   layer writer: writer.c
 *   layer process: children.c credentials.c shm.c deepbind.c process.c bootstrap.c
 *   layer api: cxx.c entry.c api.c
 *
 * One job each: sys talks to the kernel and to the definitions we wrap; lock, format and
 * failure are the tools every writer of records needs; index keeps per-address state and
 * finds call stacks; files writes into the run directory through the file thread; records
 * formats stacks, source locations, blocks and bad frees; table holds young blocks until the
 * writer writes them; state is what the program's calls change besides the table (the
 * quarantine, counters, annotations) and the status and module records; check stops the world
 * and classifies; the writer thread serves memdir's requests; process follows the process
 * through fork, exec, signals, set*id and shared memory; api is what the program calls.
 *
 * Rules for everything here: no stdio, nothing that can allocate, no lock a signal handler
 * could deadlock on without noticing, errno left as the program had it.
 */
#ifndef MEMTRACK_BASE_H
#define MEMTRACK_BASE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Everything declared in the interposer's headers is hidden (read straight from the library's
 * data, not through the GOT); only what a definition marks MEMTRACK_EXPORT is exported. System
 * headers are included before each push, so libc's declarations keep their visibility. */
#define MEMTRACK_EXPORT __attribute__((visibility("default")))
/* initial-exec: the glibc manual's rule for malloc replacements, so no TLS access can call malloc. */
#define MEMTRACK_THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))
#define MEMTRACK_LIKELY(x) __builtin_expect(!!(x), 1)
#define MEMTRACK_UNLIKELY(x) __builtin_expect(!!(x), 0)

#pragma GCC visibility push(hidden)

/* The deepest stack MEM_DEPTH may ask for; deeper requests are clamped. */
#define MEMTRACK_MAX_DEPTH 32

enum memtrack_via {
    MEMTRACK_VIA_MALLOC, MEMTRACK_VIA_CALLOC, MEMTRACK_VIA_REALLOC, MEMTRACK_VIA_REALLOCARRAY,
    MEMTRACK_VIA_POSIX_MEMALIGN, MEMTRACK_VIA_ALIGNED_ALLOC, MEMTRACK_VIA_MEMALIGN,
    MEMTRACK_VIA_VALLOC, MEMTRACK_VIA_PVALLOC, MEMTRACK_VIA_FREE, MEMTRACK_VIA_CFREE,
    MEMTRACK_VIA_NEW, MEMTRACK_VIA_NEW_ARRAY, MEMTRACK_VIA_NEW_ALIGNED, MEMTRACK_VIA_NEW_ARRAY_ALIGNED,
    MEMTRACK_VIA_DELETE, MEMTRACK_VIA_DELETE_ARRAY,
};

enum memtrack_family { MEMTRACK_FAMILY_MALLOC = 0, MEMTRACK_FAMILY_NEW = 1, MEMTRACK_FAMILY_ARRAY = 2 };

struct memtrack_stack {
    uint32_t depth;
    uintptr_t frames[MEMTRACK_MAX_DEPTH];
};

/* A live block as the allocation path sees it. */
struct memtrack_block {
    uintptr_t address;
    uint64_t size;
    uint64_t sequence;
    uint32_t milliseconds;  /* since the process started */
    int32_t thread;
    uint8_t via;
    uint8_t family;         /* enum memtrack_family; written as family= when not malloc */
    uint32_t source, source_line;   /* memtrack.h's location (sources.c); source 0: none */
    struct memtrack_stack stack;
};

/* Copies of a stack or a block that stop at the stack's depth: a whole struct is 312 bytes,
 * and most stacks are a few frames deep (memcpy was 8 % of churn's instructions). The first
 * MEMTRACK_COPIED_FRAMES (MEM_DEPTH's default) go in one copy of a size known when compiling,
 * which the compiler makes a few vector moves: a copy of the depth's size was `rep movsq`,
 * whose start-up was a fifth of pending_add's samples in python-malloc. Deeper frames follow. */
#define MEMTRACK_COPIED_FRAMES 12
static inline void memtrack_copy_stack(struct memtrack_stack *to, const struct memtrack_stack *from) {
    uint32_t depth = from->depth <= MEMTRACK_MAX_DEPTH ? from->depth : MEMTRACK_MAX_DEPTH;
    __builtin_memcpy(to, from, offsetof(struct memtrack_stack, frames) + MEMTRACK_COPIED_FRAMES * sizeof(uintptr_t));
    if (depth > MEMTRACK_COPIED_FRAMES)
        __builtin_memcpy(&to->frames[MEMTRACK_COPIED_FRAMES], &from->frames[MEMTRACK_COPIED_FRAMES],
                         (depth - MEMTRACK_COPIED_FRAMES) * sizeof(uintptr_t));
}
static inline void memtrack_copy_block(struct memtrack_block *to, const struct memtrack_block *from) {
    uint32_t depth = from->stack.depth <= MEMTRACK_MAX_DEPTH ? from->stack.depth : MEMTRACK_MAX_DEPTH;
    __builtin_memcpy(to, from, offsetof(struct memtrack_block, stack.frames) + MEMTRACK_COPIED_FRAMES * sizeof(uintptr_t));
    if (depth > MEMTRACK_COPIED_FRAMES)
        __builtin_memcpy(&to->stack.frames[MEMTRACK_COPIED_FRAMES], &from->stack.frames[MEMTRACK_COPIED_FRAMES],
                         (depth - MEMTRACK_COPIED_FRAMES) * sizeof(uintptr_t));
}

/* ---- Settings (MEM_*, read by bootstrap.c) ------------------------------------------------ */
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
/* The backlog is large from this many blocks on (see writer.c). */
extern struct memtrack_config memtrack_config;

/* ---- The next allocator (found by bootstrap.c) -------------------------------------------- */
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

/* ---- Process-wide state --------------------------------------------------------------------- */
/* Non-zero while this thread runs tracker code: allocations made then are the tracker's own
 * (or libc's on its behalf) and are never recorded. Per thread, unlike the seeds' global flag. */
extern MEMTRACK_THREAD_LOCAL int memtrack_busy;
/* 0 until the next allocator is known; 1 after. */
extern atomic_int memtrack_ready;
/* This process (set at start and in a forked child, process.c). */
extern pid_t memtrack_pid;
/* Monotonic milliseconds at start, for the ms= field. */
extern uint64_t memtrack_start_milliseconds;
/* The last sequence number given to an event (seq=). */
extern atomic_uint_fast64_t memtrack_sequence;
/* Set in a tracker thread that has a descriptor table of its own (files.c): its descriptor 2
 * is not the program's stderr. */
extern MEMTRACK_THREAD_LOCAL int memtrack_private_files;

#pragma GCC visibility pop

#endif
