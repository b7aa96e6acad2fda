/* leakcheck.c: the leak check. Which live blocks are still reachable, and which are lost, with
 * valgrind memcheck's definitions and its default heuristics (--leak-check-heuristics=all).
 *
 * The steps, one function each:
 *   module_segments   writable PT_LOAD segments of every module (before anything is stopped:
 *                     dl_iterate_phdr takes the loader lock, which a stopped thread may hold)
 *   stop_world        every other thread is stopped by a ptrace tracer (stopworld.c): no
 *                     signal; one that cannot be stopped runs on and is read as it runs
 *   read_maps         /proc/self/maps: anonymous memory that may hold roots, which file
 *                     mappings are executable (the multipleinheritance heuristic), and which
 *                     memory may be read with plain loads
 *   collect_blocks    the live set from the index (shadow.c), sorted by address for free; each
 *                     block's extent: the requested size when the pending table still has it,
 *                     otherwise the allocator's usable size, read from glibc's chunk header
 *                     without trusting it (see the catalog's Leak kinds)
 *   mark_roots        modules, anonymous memory, thread registers and stacks, then drain:
 *                     valgrind's marking, sweeping the heap in address order
 *   mark_loader_blocks  blocks the dynamic loader allocated are roots (as LSan)
 *   classify_lost     valgrind's cliques: what unreached blocks reach is indirectly lost
 *   write_result      `leak-check`, atomically (temporary name, then rename)
 *
 * Never malloc here: the stopped threads may hold the allocator's locks. Memory is mmapped.
 * Mark state is 16 bytes per live block, and the work list is threaded through it.
 *
 * Never fault here either: the program's memory may be damaged (a header overwritten), hold
 * guard pages (PROT_NONE inside a block or a data segment), or change under us (a thread that
 * could not be stopped). Plain loads are used only where nothing can change (every thread
 * stopped) and the maps read after the stop say the memory is private anonymous and readable;
 * everything else is copied with process_vm_readv (saferead.c), which fails instead of faulting.
 *
 * Layer: check, on stopworld.c, the table, the state and the records below.
 */
#include "leakcheck.h"
#include "loaderwalk.h"
#include "annotations.h"
#include "failure.h"
#include "files.h"
#include "format.h"
#include "lock.h"
#include "pending.h"
#include "quarantine.h"
#include "records.h"
#include "shadow.h"
#include "stacks.h"
#include "sys.h"
#include "arch.h"
#include "saferead.h"
#include "stopworld.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PAGE 4096ull
#define RED_ZONE MEMTRACK_RED_ZONE  /* arch.h: below SP, still the function's own */
#define MAX_THREADS MEMTRACK_WORLD_MAX_THREADS   /* threads stopped per check; more are noted */
#define WINDOW_BYTES (256 * 1024)  /* memory read by copy goes through a window this large */
#define MAX_RANGES 4096            /* module segments and excluded ranges */
#define MAX_NOTES 16

// ---- Memory of our own ------------------------------------------------------------------------
/* Every mapping the check makes is remembered, so that it is never taken for a root. */
struct range { uintptr_t start, end; };

static void *map_memory(size_t bytes) {
    void *memory = memtrack_sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

// ---- Block mark state -------------------------------------------------------------------------
/* word: the address (47 bits) and the flags above it; granules: the extent in 16-byte units
 * (blocks over 64 GiB are cut there); next: the work list. */
struct mark { uint64_t word; uint32_t granules; uint32_t next; };

#define ADDRESS_MASK ((1ull << 47) - 1)
#define STATE_SHIFT 47
#define STATE_MASK (3ull << STATE_SHIFT)
#define QUEUED (1ull << 49)      /* on the work list */
#define EXACT (1ull << 50)       /* the extent is the requested size */
#define LOADER (1ull << 51)      /* allocated by the dynamic loader */
#define LOOKED_UP (1ull << 52)   /* the record has been read */
#define FIRST_CHECKED (1ull << 53)  /* FIRST_IS_VTABLE is known */
#define FIRST_IS_VTABLE (1ull << 54) /* the block's first word points at a vtable */
#define UNSIZED (1ull << 55)     /* the allocator's header did not give a believable extent */
#define PAD_SHIFT 56             /* granules * 16 - pad = size */
#define LIST_END UINT32_MAX

enum { UNREACHED = 0, POSSIBLE = 1, REACHABLE = 2, INDIRECT = 3 };

static inline uintptr_t block_start(const struct mark *m) { return (uintptr_t)(m->word & ADDRESS_MASK); }
static inline int block_state(const struct mark *m) { return (int)((m->word & STATE_MASK) >> STATE_SHIFT); }
static inline void set_state(struct mark *m, int state) {
    m->word = (m->word & ~STATE_MASK) | ((uint64_t)state << STATE_SHIFT);
}
static inline uint64_t block_size(const struct mark *m) {
    return ((uint64_t)m->granules << 4) - ((m->word >> PAD_SHIFT) & 15);
}
static void set_size(struct mark *m, uint64_t size) {
    uint64_t granules = (size + 15) >> 4;
    uint64_t pad = (granules << 4) - size;
    if (granules > UINT32_MAX) { granules = UINT32_MAX; pad = 0; }
    m->granules = (uint32_t)granules;
    m->word = (m->word & ~(15ull << PAD_SHIFT)) | (pad << PAD_SHIFT);
}

// ---- The state of one check -------------------------------------------------------------------
struct module_range { uintptr_t start, end; int starts_only; };

struct check {
    uint64_t sequence;
    int on_request;
    uint32_t began_ms;
    /* blocks */
    struct mark *marks;
    size_t mark_bytes, count, filled;
    uintptr_t lowest, highest;    /* [lowest, highest): where any block lies */
    uint32_t work;                /* top of the work list (depth-first mode) */
    size_t pending;               /* blocks queued for a scan */
    size_t sweep_low;             /* address-order mode: the lowest queued index, or above */
    int depth_first;
    /* roots */
    struct module_range modules[MAX_RANGES];
    int module_count;
    struct range own[MAX_RANGES];         /* the tracker's memory: never roots */
    int own_count;
    struct range loader_text[8];          /* ld.so's executable segments */
    int loader_text_count;
    struct range *maps;                   /* /proc/self/maps, in order */
    unsigned char *map_kind;
    size_t map_count, map_bytes;
    /* reading */
    int stable;                           /* nothing can change: plain loads where KIND_DIRECT */
    int copy_only;                        /* for now, every read is a copy */
    int copy_unavailable;                 /* process_vm_readv is not allowed here */
    int allocator_glibc;                  /* the allocator is glibc's: its chunk header is known */
    long map_hint;                        /* the mapping of the last plain load */
    size_t find_hint;                     /* the block find_block found last */
    uintptr_t *samples;                   /* every SAMPLE_STRIDE-th block's start (in marks' mapping) */
    size_t sample_count;
    uintptr_t *window;                    /* WINDOW_BYTES for copied memory */
    uintptr_t main_stack_start, main_stack_end;   /* the [stack] mapping */
    /* threads */
    struct memtrack_world world;
    int threads_found, threads_scanned;
    int notes;
    char note[MAX_NOTES][128];
    int clique;                           /* -1 while marking from roots */
    uint32_t *leaders;                    /* per block: the clique leader that reached it */
    size_t leader_bytes;
};

// ---- Finding the block a word points into --------------------------------------------------------
/* find_block first searches the start of every 64th block (1.7 KiB for perl's 13,500 blocks at
 * exit, in L1), then the 64 blocks after the one it found: six dependent loads of the block
 * array instead of fourteen. */
#define SAMPLE_STRIDE 64
/* gcc makes find_block's `?:` a conditional move; clang (SwiftPM's compiler) made a branch of it,
 * and of a mask too, unless told the outcome is unpredictable. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_unpredictable)
#define UNPREDICTABLE(condition) __builtin_unpredictable(condition)
#endif
#endif
#ifndef UNPREDICTABLE
#define UNPREDICTABLE(condition) (condition)
#endif
/* Index of the block holding address, or -1. A zero-size block is hit by its start only. */
static long find_block(struct check *c, uintptr_t address) {
    /* The last block starting at or below address, by a binary search without branches (a
     * conditional move a step): the outcome of each comparison is random, and mispredicting
     * half of them made this search most of the exit check on perl's arenas (5M words). */
    const struct mark *m = c->marks;
    size_t n = c->count;
    if (!n) return -1;
    /* First the block the last search found, and the next: neighbouring words often point to
     * neighbouring blocks (an arena of headers pointing to their bodies, in order). perl's
     * exit check: 122 -> 103 ms. */
    size_t hint = c->find_hint;
    if (hint + 1 < n && block_start(&m[hint]) <= address && address < block_start(&m[hint + 1])) {
        m += hint;
        n = 1;
    } else if (hint + 2 < n && block_start(&m[hint + 1]) <= address && address < block_start(&m[hint + 2])) {
        m += hint + 1;
        n = 1;
    } else {
        const uintptr_t *sample = c->samples;
        size_t k = c->sample_count;
        while (k > 1) {
            size_t half = k / 2;
            sample = UNPREDICTABLE(sample[half] <= address) ? sample + half : sample;
            k -= half;
        }
        size_t first = (size_t)(sample - c->samples) * SAMPLE_STRIDE;
        m += first;
        n = n - first < SAMPLE_STRIDE ? n - first : SAMPLE_STRIDE;
    }
    while (n > 1) {
        size_t half = n / 2;
        m = UNPREDICTABLE(block_start(&m[half]) <= address) ? m + half : m;
        n -= half;
    }
    c->find_hint = (size_t)(m - c->marks);
    uintptr_t start = block_start(m);
    if (start > address) return -1;
    if (address == start || address - start < block_size(m)) return (long)(m - c->marks);
    return -1;
}

/* Queues a block for a scan. Marking starts in address order (sweeps over the mark array:
 * the heap is read in the order it lies in memory, which is several times faster than chasing
 * pointers through it) and goes depth-first, through the `next` links, when sweeps find too
 * little to do (long chains pointing backwards), and for the cliques. */
static inline void push(struct check *c, long index) {
    struct mark *m = &c->marks[index];
    if (m->word & QUEUED) return;   /* it will be scanned in its newest state */
    m->word |= QUEUED;
    c->pending++;
    if (c->depth_first) { m->next = c->work; c->work = (uint32_t)index; }
    else if ((size_t)index < c->sweep_low) c->sweep_low = (size_t)index;
}

// ---- Reading a block's record ---------------------------------------------------------------------
/* The requested size and the first frame of the allocation stack: from the writer's backlog
 * (pending.c) while the record waits there, else from the record (records.c's reader). Returns 1
 * if the record was found. */
static int read_block_record(uintptr_t address, uint64_t *size, uintptr_t *first_frame) {
    if (memtrack_pending_backlog_lookup(address, size, first_frame)) return 1;
    struct memtrack_record_fields fields;
    if (!memtrack_read_block_record(address, &fields, NULL)) return 0;
    *size = fields.size;
    *first_frame = fields.first_frame;
    return 1;
}

static int in_loader(const struct check *c, uintptr_t address) {
    for (int i = 0; i < c->loader_text_count; i++)
        if (address >= c->loader_text[i].start && address < c->loader_text[i].end) return 1;
    return 0;
}

/* Learns a block's requested size (and whether the loader allocated it) from its record. */
static void learn_record(const struct check *c, struct mark *m) {
    if (m->word & (EXACT | LOOKED_UP)) return;
    m->word |= LOOKED_UP;
    uint64_t size = 0;
    uintptr_t first_frame = 0;
    if (!read_block_record(block_start(m), &size, &first_frame)) return;
    if (size <= block_size(m) || (m->word & UNSIZED)) set_size(m, size);
    m->word = (m->word & ~UNSIZED) | EXACT;
    if (first_frame && in_loader(c, first_frame)) m->word |= LOADER;
}

static void learn_pending(const struct memtrack_block *block, void *context) {
    struct check *c = context;
    long i = find_block(c, block->address);
    if (i < 0 || block_start(&c->marks[i]) != block->address) return;
    struct mark *m = &c->marks[i];
    if (block->size <= block_size(m) || (m->word & UNSIZED)) set_size(m, block->size);
    m->word = (m->word & ~UNSIZED) | EXACT | LOOKED_UP;
    if (block->stack.depth && in_loader(c, block->stack.frames[0])) m->word |= LOADER;
}

static void add_own(uintptr_t start, size_t bytes, void *context);

// ---- /proc/self/maps ------------------------------------------------------------------------------
enum { KIND_READ_FILE = 1, KIND_EXEC_FILE = 2, KIND_ANONYMOUS = 4, KIND_READABLE = 8, KIND_DIRECT = 16 };

/* Index of the mapping holding address, or -1. */
static long find_map(const struct check *c, uintptr_t address) {
    size_t low = 0, high = c->map_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (c->maps[middle].start <= address) low = middle + 1; else high = middle;
    }
    if (low == 0 || address >= c->maps[low - 1].end) return -1;
    return (long)(low - 1);
}

static const char *parse_hex_field(const char *p, uintptr_t *value) {
    uintptr_t v = 0;
    for (;; p++) {
        int digit = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (digit < 0) break;
        v = v * 16 + (uintptr_t)digit;
    }
    *value = v;
    return p;
}

/* Reads /proc/self/maps with raw system calls into memory of our own. */
static int read_maps(struct check *c) {
    size_t capacity = 1 << 20;
    char *text = NULL;
    size_t length = 0;
    for (int attempt = 0; attempt < 6; attempt++, capacity *= 4) {
        text = map_memory(capacity);
        if (!text) return 0;
        int fd = (int)memtrack_sys_openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) { memtrack_sys_munmap(text, capacity); return 0; }
        length = 0;
        for (;;) {
            ssize_t n = memtrack_sys_read(fd, text + length, capacity - 1 - length);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            length += (size_t)n;
            if (length >= capacity - 1) break;
        }
        memtrack_sys_close(fd);
        if (length < capacity - 1) break;
        memtrack_sys_munmap(text, capacity);
        text = NULL;
    }
    add_own((uintptr_t)text, capacity, c);   /* it is in the maps it read, and gone after */
    if (!text) return 0;
    text[length] = 0;
    size_t lines = 0;
    for (size_t i = 0; i < length; i++) lines += text[i] == '\n';
    c->map_bytes = (lines + 1) * (sizeof(struct range) + 1);
    c->maps = map_memory(c->map_bytes);
    if (!c->maps) { memtrack_sys_munmap(text, capacity); return 0; }
    c->map_kind = (unsigned char *)(c->maps + lines + 1);
    c->map_count = 0;
    for (char *line = text; *line && c->map_count < lines;) {
        char *next = strchr(line, '\n');
        if (next) *next = 0;
        uintptr_t start, end, ignored;
        const char *p = parse_hex_field(line, &start);
        p = parse_hex_field(p + 1, &end);
        char r = p[1], w = p[2], x = p[3], shared = p[4];
        p += 6;
        p = parse_hex_field(p, &ignored);                  /* offset */
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;                        /* device */
        while (*p == ' ') p++;
        uintptr_t inode = 0;
        while (*p >= '0' && *p <= '9') inode = inode * 10 + (uintptr_t)(*p++ - '0');
        while (*p == ' ') p++;
        const char *path = p;
        unsigned char kind = 0;
        /* Device files may raise SIGBUS when read: never looked at (but /dev/shm is tmpfs). */
        int device = !strncmp(path, "/dev/", 5) && strncmp(path, "/dev/shm/", 9);
        if (r == 'r' && !device && strcmp(path, "[vvar]") && strcmp(path, "[vsyscall]")) kind |= KIND_READABLE;
        if (r == 'r' && path[0] == '/' && inode && !device) {
            kind |= KIND_READ_FILE;
            if (x == 'x') kind |= KIND_EXEC_FILE;
        }
        /* Anonymous private writable memory, named or not; never [heap] (the allocator's),
         * [stack] (scanned from SP), [vvar] or [vsyscall]. */
        if (r == 'r' && w == 'w' && shared == 'p' && (!path[0] || !strncmp(path, "[anon:", 6)))
            kind |= KIND_ANONYMOUS;
        /* Private memory no file backs: a plain load cannot fault while nothing changes (a
         * file mapping can raise SIGBUS once its file is truncated). */
        if (r == 'r' && shared == 'p' && (!path[0] || !strncmp(path, "[anon:", 6) || !strcmp(path, "[heap]") ||
                                          !strcmp(path, "[stack]")))
            kind |= KIND_DIRECT;
        if (!strcmp(path, "[stack]")) { c->main_stack_start = start; c->main_stack_end = end; }
        c->maps[c->map_count] = (struct range){start, end};
        c->map_kind[c->map_count++] = kind;
        if (!next) break;
        line = next + 1;
    }
    memtrack_sys_munmap(text, capacity);
    return 1;
}

// ---- The tracker's own memory -----------------------------------------------------------------
static void add_own(uintptr_t start, size_t bytes, void *context) {
    struct check *c = context;
    if (c->own_count && c->own[c->own_count - 1].end == start) { c->own[c->own_count - 1].end = start + bytes; return; }
    if (c->own_count < MAX_RANGES) c->own[c->own_count++] = (struct range){start, start + bytes};
}

/* Sorts and merges the own ranges, so a page test is one binary search. */
static void settle_own(struct check *c) {
    for (int gap = c->own_count / 2; gap > 0; gap /= 2)   /* shell sort: no allocation, small n */
        for (int i = gap; i < c->own_count; i++)
            for (int j = i; j >= gap && c->own[j - gap].start > c->own[j].start; j -= gap) {
                struct range t = c->own[j]; c->own[j] = c->own[j - gap]; c->own[j - gap] = t;
            }
    int merged = 0;
    for (int i = 0; i < c->own_count; i++) {
        if (merged && c->own[i].start <= c->own[merged - 1].end) {
            if (c->own[i].end > c->own[merged - 1].end) c->own[merged - 1].end = c->own[i].end;
        } else {
            c->own[merged++] = c->own[i];
        }
    }
    c->own_count = merged;
}

static int overlaps_own(const struct check *c, uintptr_t start, uintptr_t end) {
    int low = 0, high = c->own_count;
    while (low < high) {
        int middle = (low + high) / 2;
        if (c->own[middle].start < end) low = middle + 1; else high = middle;
    }
    return low > 0 && c->own[low - 1].end > start;
}

// ---- Modules ---------------------------------------------------------------------------------------
static int module_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct check *c = data;
    int own = 0, allocator = 0;
    uintptr_t loader_base = (uintptr_t)getauxval(AT_BASE);
    int loader = loader_base && info->dlpi_addr == loader_base;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + header->p_vaddr, end = start + header->p_memsz;
        if ((uintptr_t)&module_segments >= start && (uintptr_t)&module_segments < end) own = 1;
        if ((uintptr_t)memtrack_next.malloc >= start && (uintptr_t)memtrack_next.malloc < end) allocator = 1;
    }
    if (allocator && info->dlpi_name) {   /* glibc's malloc: its chunk header is known */
        const char *base = strrchr(info->dlpi_name, '/');
        c->allocator_glibc = !strncmp(base ? base + 1 : info->dlpi_name, "libc.so", 7);
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + header->p_vaddr, end = start + header->p_memsz;
        /* The rest of the last page is mapped with the segment, and ld.so keeps its private
         * heap there (its early allocations, e.g. the main link map, which holds the global
         * scope that dlopen(RTLD_GLOBAL) grows in a heap block): valgrind scans it too. */
        if (header->p_flags & PF_W) end = (end + PAGE - 1) & ~(PAGE - 1);
        if (loader && (header->p_flags & PF_X) && c->loader_text_count < 8)
            c->loader_text[c->loader_text_count++] = (struct range){start, end};
        if (!(header->p_flags & PF_W)) continue;
        if (own) { add_own(start & ~(PAGE - 1), ((end + PAGE - 1) & ~(PAGE - 1)) - (start & ~(PAGE - 1)), c); continue; }
        /* The allocator's own state (glibc's main_arena) points at chunk headers, which lie
         * inside the neighbouring blocks: from its segments only start pointers count. */
        if (c->module_count < MAX_RANGES) c->modules[c->module_count++] = (struct module_range){start, end, allocator};
    }
    return 0;
}

// ---- Reading the program's memory ------------------------------------------------------------
/* Whether [address, end) may be read with plain loads: every thread is stopped, so no mapping
 * changes, and the maps say it is private memory no file backs, in one mapping. */
static int direct_ok(struct check *c, uintptr_t address, uintptr_t end) {
    if (!c->stable || c->copy_only) return 0;
    long i = c->map_hint;
    if (i < 0 || (size_t)i >= c->map_count || address < c->maps[i].start || address >= c->maps[i].end) {
        i = find_map(c, address);
        if (i < 0) return 0;
        c->map_hint = i;
    }
    return (c->map_kind[i] & KIND_DIRECT) && end <= c->maps[i].end;
}

/* Copies words from the program's memory; returns how many bytes could be read (0 at a page
 * that cannot be). */
static size_t copy_memory(struct check *c, void *to, uintptr_t from, size_t bytes) {
    if (!c->copy_unavailable) {
        long copied = memtrack_safe_copy(to, from, bytes);
        if (copied >= 0) return (size_t)copied;
        c->copy_unavailable = 1;
        if (c->notes < MAX_NOTES)
            memtrack_put_text(c->note[c->notes], c->note[c->notes] + 120, "process_vm_readv is not allowed: memory that may change was not read")[0] = 0;
        if (c->notes < MAX_NOTES) c->notes++;
    }
    /* Without a safe copy, only what cannot change is read: readable in the maps, with
     * every thread stopped. */
    long i = find_map(c, from);
    if (!c->stable || i < 0 || !(c->map_kind[i] & KIND_READABLE) || from + bytes > c->maps[i].end) return 0;
    memcpy(to, (const void *)from, bytes);
    return bytes;
}

/* Up to `count` words at address (8-aligned): how many could be read. */
static int read_words(struct check *c, uintptr_t address, uint64_t *out, int count) {
    if (direct_ok(c, address, address + (size_t)count * 8)) {
        memcpy(out, (const void *)address, (size_t)count * 8);
        return count;
    }
    return (int)(copy_memory(c, out, address, (size_t)count * 8) / 8);
}

static int read_word(struct check *c, uintptr_t address, uint64_t *value) {
    return read_words(c, address, value, 1) == 1;
}

// ---- Heuristics (valgrind's, for interior pointers) ----------------------------------------------
/* A vtable: in a readable file mapping, its first up to 20 words are null or point into
 * executable file mappings, and at least two are not null. */
static int is_vtable(struct check *c, uintptr_t pointer) {
    long i = find_map(c, pointer);
    if (i < 0 || !(c->map_kind[i] & KIND_READ_FILE)) return 0;
    uintptr_t last = pointer + 20 * sizeof(uintptr_t);
    if (last > c->maps[i].end - sizeof(uintptr_t)) last = c->maps[i].end - sizeof(uintptr_t);
    uint64_t words[21];
    int count = last >= pointer ? read_words(c, pointer, words, (int)((last - pointer) / 8 + 1)) : 0;
    int functions = 0;
    for (int k = 0; k < count; k++) {
        uintptr_t target = words[k];
        if (!target) continue;
        long j = find_map(c, target);
        if (j < 0 || !(c->map_kind[j] & KIND_EXEC_FILE)) return 0;
        if (++functions == 2) return 1;
    }
    return 0;
}

/* stdstring, length64, newarray, multipleinheritance: mc_leakcheck.c's predicates. */
static int heuristic_accepts(struct check *c, struct mark *m, uintptr_t pointer) {
    uintptr_t start = block_start(m);
    uint64_t size = block_size(m);
    uint64_t data[2];
    int words = size >= 16 ? read_words(c, start, data, 2) : size >= 8 ? read_words(c, start, data, 1) : 0;
    if (pointer == start + 24 && size >= 24 && words == 2) {   /* stdstring: length capacity refcount chars */
        uint64_t capacity = data[1];
        if (capacity < size && 24 + capacity + 1 == size && data[0] <= capacity) return 1;
    }
    if (pointer == start + 8 && size >= 8 && words >= 1) {
        uint64_t length = data[0];
        if (length > 0 && size - 8 == length) return 1;     /* length64 */
        if (length > 0 && (size - 8) % length == 0) return 1;   /* newarray: the element count */
    }
    if (!(pointer & 7) && pointer + 8 <= start + size && size >= 8 && words >= 1) {   /* multipleinheritance */
        /* Whether the first word is a vtable is asked once per block: an interpreter's arenas
         * take millions of interior pointers (perl's leak check spent most of its time here). */
        if (!(m->word & FIRST_CHECKED)) {
            uintptr_t first = data[0];
            m->word |= FIRST_CHECKED;
            if (!(first & 7) && first >= PAGE && is_vtable(c, first)) m->word |= FIRST_IS_VTABLE;
        }
        uint64_t inner;
        if ((m->word & FIRST_IS_VTABLE) && read_word(c, pointer, &inner) && !(inner & 7) && inner >= PAGE &&
            is_vtable(c, inner))
            return 1;
    }
    return 0;
}

// ---- Marking -----------------------------------------------------------------------------------
/* Allocators keep up to 23 bytes beyond the request in a block (glibc): an interior pointer
 * that near the end, or one a heuristic looks at, needs the requested size from the record. */
static long confirm_interior(struct check *c, long i, uintptr_t pointer) {
    struct mark *m = &c->marks[i];
    if (m->word & (EXACT | LOOKED_UP)) return i;
    uintptr_t start = block_start(m);
    if (pointer + 24 >= start + block_size(m) || pointer == start + 8 || pointer == start + 24) {
        learn_record(c, m);
        return find_block(c, pointer) == i ? i : -1;
    }
    return i;
}

/* One word that may point into a block. Root phase (clique < 0): valgrind's
 * lc_push_without_clique_if_a_chunk_ptr; clique phase: lc_push_with_clique_if_a_chunk_ptr. */
static inline void visit_word(struct check *c, uintptr_t word, int prior_definite, int starts_only) {
    long i = find_block(c, word);
    if (i < 0) return;
    struct mark *m = &c->marks[i];
    int state = block_state(m);
    uintptr_t start = block_start(m);
    if (c->clique >= 0) {
        if (state != UNREACHED || i == c->clique) return;
        if (word != start && (i = confirm_interior(c, i, word)) < 0) return;
        set_state(&c->marks[i], INDIRECT);
        if (c->leaders) c->leaders[i] = (uint32_t)c->clique;
        push(c, i);
        return;
    }
    if (state == REACHABLE) return;
    int as_start = word == start;
    if (!as_start) {
        if (starts_only) return;
        /* Not from definite memory, an interior pointer can only make an unreached block
         * possibly reachable: a heuristic's answer would change nothing. */
        if (!prior_definite && state != UNREACHED) return;
        if ((i = confirm_interior(c, i, word)) < 0) return;
        if (prior_definite) as_start = heuristic_accepts(c, m, word);
    }
    if (as_start && prior_definite) { set_state(m, REACHABLE); push(c, i); }
    else if (state == UNREACHED) { set_state(m, POSSIBLE); push(c, i); }
}

static void scan_words(struct check *c, const uintptr_t *word, const uintptr_t *stop, int prior_definite, int starts_only) {
    uintptr_t lowest = c->lowest, span = c->highest - c->lowest;
    for (; word < stop; word++) {
        uintptr_t value = *word;
        if (value - lowest < span) visit_word(c, value, prior_definite, starts_only);
    }
}

/* Every aligned word of [start, end) that can be read: plain loads where nothing can change,
 * otherwise copied through the window; an unreadable page (a guard page, or one a running
 * thread just protected) is skipped, and where the maps say nothing is mapped or readable,
 * the whole mapping is. */
static void scan_range(struct check *c, uintptr_t start, uintptr_t end, int prior_definite, int starts_only) {
    start = (start + 7) & ~(uintptr_t)7;
    end &= ~(uintptr_t)7;
    while (start < end) {
        if (direct_ok(c, start, end)) {
            scan_words(c, (const uintptr_t *)start, (const uintptr_t *)end, prior_definite, starts_only);
            return;
        }
        long i = find_map(c, start);
        if (i < 0 || !(c->map_kind[i] & KIND_READABLE)) {
            /* Not mapped, or not readable, when the maps were read: on to the next mapping. */
            size_t next = i < 0 ? 0 : (size_t)i + 1;
            if (i < 0) {
                size_t low = 0, high = c->map_count;
                while (low < high) {
                    size_t middle = (low + high) / 2;
                    if (c->maps[middle].start <= start) low = middle + 1; else high = middle;
                }
                next = low;
            }
            if (next >= c->map_count || c->maps[next].start >= end) return;
            start = c->maps[next].start;
            continue;
        }
        uintptr_t to = end < c->maps[i].end ? end : c->maps[i].end;
        if (direct_ok(c, start, to)) {
            scan_words(c, (const uintptr_t *)start, (const uintptr_t *)to, prior_definite, starts_only);
            start = to;
            continue;
        }
        while (start < to) {
            size_t want = to - start < WINDOW_BYTES ? (size_t)(to - start) : WINDOW_BYTES;
            size_t got = copy_memory(c, c->window, start, want) & ~(size_t)7;
            scan_words(c, c->window, c->window + got / 8, prior_definite, starts_only);
            start += got;
            if (got < want) start = (start & ~(PAGE - 1)) + PAGE;   /* past the page that failed */
        }
        start = to;
    }
}

static void scan_block(struct check *c, size_t index) {
    struct mark *m = &c->marks[index];
    m->word &= ~QUEUED;
    c->pending--;
    uintptr_t start = block_start(m);
    scan_range(c, start, start + block_size(m), block_state(m) != POSSIBLE, 0);
}

static void go_depth_first(struct check *c) {
    c->depth_first = 1;
    c->work = LIST_END;
    for (size_t i = c->count; i-- > 0;)
        if (c->marks[i].word & QUEUED) { c->marks[i].next = c->work; c->work = (uint32_t)i; }
}

/* Scans queued blocks until none is left (valgrind's lc_process_markstack). */
static void drain(struct check *c) {
    while (c->pending) {
        if (c->depth_first) {
            while (c->work != LIST_END) {
                uint32_t index = c->work;
                c->work = c->marks[index].next;
                scan_block(c, index);
            }
            continue;
        }
        size_t i = c->sweep_low, passed = 0, scanned = 0;
        c->sweep_low = c->count;
        for (; i < c->count && c->pending; i++, passed++)
            if (c->marks[i].word & QUEUED) { scan_block(c, i); scanned++; }
        if (c->pending && scanned * 256 < passed) go_depth_first(c);
    }
}

// ---- Live blocks ---------------------------------------------------------------------------------
static void count_block(uintptr_t address, void *context) { (void)address; ((struct check *)context)->count++; }
static void fill_block(uintptr_t address, void *context) {
    struct check *c = context;
    if (c->filled < c->count) c->marks[c->filled++].word = address;
}

/* glibc's malloc_usable_size, from the chunk header before the block, read without faulting and
 * not trusted: a program may have overwritten it (valgrind's malloc1 writes p[-1]), and glibc's
 * own function then reads wherever the damaged size points. A believable header gives a chunk
 * that ends before the next live block and whose next chunk says this one is in use. */
#define UNKNOWN_SIZE UINT64_MAX
static uint64_t glibc_usable_size(struct check *c, uintptr_t start, uintptr_t next) {
    uint64_t header, following;
    if (start < PAGE || !read_word(c, start - 8, &header)) return UNKNOWN_SIZE;
    uint64_t chunk = header & ~7ull, room = next ? next - start : UINT64_MAX;
    if (header & 2) {   /* mmapped: the chunk is whole pages */
        if (chunk < PAGE || (chunk & (PAGE - 1)) || chunk - 16 > room) return UNKNOWN_SIZE;
        return chunk - 16;
    }
    if (chunk < 32 || (chunk & 15) || chunk > room || chunk > (1ull << 46)) return UNKNOWN_SIZE;
    if (!read_word(c, start - 8 + chunk, &following) || !(following & 1)) return UNKNOWN_SIZE;
    return chunk - 8;
}

/* The live set, in address order, with each block's extent. */
static int collect_blocks(struct check *c) {
    c->count = 0;
    memtrack_shadow_for_each_live(count_block, c);
    size_t sample_bytes = (c->count / SAMPLE_STRIDE + 1) * sizeof(uintptr_t);
    c->mark_bytes = ((c->count + 1) * sizeof(struct mark) + sample_bytes + PAGE - 1) & ~(PAGE - 1);
    c->marks = map_memory(c->mark_bytes);
    if (!c->marks) return 0;
    add_own((uintptr_t)c->marks, c->mark_bytes, c);
    c->samples = (uintptr_t *)(c->marks + c->count + 1);
    c->filled = 0;
    memtrack_shadow_for_each_live(fill_block, c);
    c->count = c->filled;
    c->sample_count = 0;
    for (size_t i = 0; i < c->count; i += SAMPLE_STRIDE) c->samples[c->sample_count++] = block_start(&c->marks[i]);
    size_t (*usable)(void *) = memtrack_next.malloc_usable_size;
    for (size_t i = 0; i < c->count; i++) {
        struct mark *m = &c->marks[i];
        uintptr_t next = i + 1 < c->count ? block_start(&c->marks[i + 1]) : 0;
        uint64_t size = c->allocator_glibc ? glibc_usable_size(c, block_start(m), next)
                        : usable ? usable((void *)block_start(m)) : UNKNOWN_SIZE;
        if (size == UNKNOWN_SIZE) { m->word |= UNSIZED; size = 0; }
        set_size(m, size);
        m->next = LIST_END;
    }
    c->work = LIST_END;
    c->sweep_low = c->count;
    memtrack_pending_visit(learn_pending, c);
    /* A damaged header: the size the tracker recorded. */
    size_t unsized = 0;
    for (size_t i = 0; i < c->count; i++) {
        if (!(c->marks[i].word & UNSIZED)) continue;
        c->marks[i].word &= ~LOOKED_UP;
        learn_record(c, &c->marks[i]);
        unsized += (c->marks[i].word & UNSIZED) != 0;
    }
    if (unsized && c->notes < MAX_NOTES) {
        char *out = c->note[c->notes], *end = out + sizeof c->note[0] - 1;
        out = memtrack_put_decimal(out, end, unsized);
        *memtrack_put_text(out, end, " blocks have a damaged allocator header and no record: their contents were not scanned") = 0;
        c->notes++;
    }
    if (c->count) {
        c->lowest = block_start(&c->marks[0]);
        struct mark *last = &c->marks[c->count - 1];
        c->highest = block_start(last) + block_size(last) + 1;
    }
    return 1;
}

// ---- Roots ---------------------------------------------------------------------------------------
/* Whether a page of anonymous memory belongs to an allocator or to a block: a granule the index
 * knows, or a live block overlapping it. */
static int page_is_heap(const struct check *c, uintptr_t page) {
    if (memtrack_shadow_any_known(page, page + PAGE)) return 1;
    if (!c->count || page >= c->highest || page + PAGE <= c->lowest) return 0;
    size_t low = 0, high = c->count;
    while (low < high) {   /* first block starting at or after the page's end */
        size_t middle = (low + high) / 2;
        if (block_start(&c->marks[middle]) < page + PAGE) low = middle + 1; else high = middle;
    }
    if (low == 0) return 0;
    const struct mark *m = &c->marks[low - 1];
    return block_start(m) >= page || block_start(m) + block_size(m) > page;
}

/* Anonymous memory that holds no heap block and is not ours or a thread's stack: what programs
 * manage themselves (python's obmalloc arenas, the main thread's static TLS...). */
static void scan_anonymous(struct check *c, const struct range *skip, int skip_count) {
    unsigned char resident[1024];   /* mincore's answer for 1,024 pages at a time */
    for (size_t i = 0; i < c->map_count; i++) {
        if (!(c->map_kind[i] & KIND_ANONYMOUS)) continue;
        struct range map = c->maps[i];
        int skipped = 0;
        for (int s = 0; s < skip_count && !skipped; s++) skipped = skip[s].start >= map.start && skip[s].start < map.end;
        if (skipped) continue;
        uintptr_t run = 0;
        for (uintptr_t page = map.start; page < map.end; page += PAGE) {
            /* Pages never touched hold only zeros: skipped without reading them (a huge
             * reservation would otherwise be faulted in). */
            size_t slot = (size_t)((page - map.start) / PAGE) % sizeof resident;
            if (slot == 0) {
                size_t length = (size_t)(map.end - page) < sizeof resident * PAGE ? (size_t)(map.end - page) : sizeof resident * PAGE;
                if (mincore((void *)page, length, resident) != 0) memset(resident, 1, sizeof resident);
            }
            int usable = (resident[slot] & 1) && !overlaps_own(c, page, page + PAGE) && !page_is_heap(c, page);
            if (usable && !run) run = page;
            if (!usable && run) { scan_range(c, run, page, 1, 0); run = 0; }
        }
        if (run) scan_range(c, run, map.end, 1, 0);
    }
}

/* A thread's stack: from below its SP (the red zone) to the end of the mapping holding it. */
static void scan_stack(struct check *c, uintptr_t stack_pointer) {
    long i = find_map(c, stack_pointer);
    if (i < 0) return;
    uintptr_t start = stack_pointer - RED_ZONE;
    if (start < c->maps[i].start) start = c->maps[i].start;
    scan_range(c, start, c->maps[i].end, 1, 0);
}

/* At exit, the exiting thread's stack below the frame that called exit() holds only the exit
 * machinery's frames, with dead frames of the program's finished calls in their gaps (valgrind
 * sees those as undefined and ignores them; we cannot tell). So the scan starts at the return
 * address into exit's caller, found by unwinding. Returns `from` when it cannot be found. */
/* exit()'s code, looked up before any thread is stopped (dlsym and dladdr take the loader's
 * lock, which a stopped thread may hold). */
static struct range exit_function_code(void) {
    void *exit_function = dlsym(RTLD_DEFAULT, "exit");
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (!exit_function || !dladdr1(exit_function, &info, (void **)&symbol, RTLD_DL_SYMENT) || !symbol)
        return (struct range){0, 0};
    return (struct range){(uintptr_t)exit_function, (uintptr_t)exit_function + symbol->st_size};
}

static uintptr_t exit_caller_frame(uintptr_t from, const struct check *c, struct range exit_code) {
    /* exit never returns: its last instruction is a call, so a return address may be its end. */
    uintptr_t start = exit_code.start, end = exit_code.end;
    if (!start) return from;
    uintptr_t frames[MEMTRACK_MAX_DEPTH];
    int depth = memtrack_unwind(frames, MEMTRACK_MAX_DEPTH);
    uintptr_t caller_return = 0;
    for (int i = 0; i + 1 < depth && !caller_return; i++)
        if (frames[i] > start && frames[i] <= end) caller_return = frames[i + 1];
    long map = caller_return ? find_map(c, from) : -1;
    if (map < 0) return from;
    for (const uintptr_t *slot = (const uintptr_t *)(from & ~(uintptr_t)7); (uintptr_t)(slot + 1) <= c->maps[map].end; slot++)
        if (*slot == caller_return) return (uintptr_t)slot;
    return from;
}

/* A region the program named as a root (__lsan_register_root_region) or a block it asked us to
 * ignore (memtrack_ignore, __lsan_ignore_object: LSan scans those as roots too). Only the parts
 * that are mapped readable now: a registered region may have been unmapped since. */
static void scan_program_root(uintptr_t start, size_t size, void *context) {
    struct check *c = context;
    uintptr_t end = start + size;
    for (size_t i = 0; i < c->map_count && c->maps[i].start < end; i++) {
        if (!(c->map_kind[i] & KIND_READABLE) || c->maps[i].end <= start) continue;
        uintptr_t from = start > c->maps[i].start ? start : c->maps[i].start;
        uintptr_t to = end < c->maps[i].end ? end : c->maps[i].end;
        scan_range(c, from, to, 1, 0);
    }
}

/* Every root: module segments, anonymous memory, the threads' registers and stacks, and this
 * thread's (self_stack 0: this is the tracker's writer, which holds no roots). A thread that
 * could not be stopped gives what /proc says (its system call arguments), and its whole stack
 * mapping is read, as it runs. */
static void mark_roots(struct check *c, const uint64_t self_registers[MEMTRACK_SAVED_REGISTERS], uintptr_t self_stack) {
    /* Stacks are scanned from their SP only, the writer's not at all: scan_anonymous skips the
     * mappings that hold them. */
    struct range stacks[MAX_THREADS + 3];
    int stack_count = 0;
    uintptr_t writer_stack = atomic_load(&memtrack_writer_stack_address);
    if (writer_stack) stacks[stack_count++] = (struct range){writer_stack, writer_stack + 1};
    uintptr_t file_thread_stack = atomic_load(&memtrack_file_thread_stack_address);
    if (file_thread_stack) stacks[stack_count++] = (struct range){file_thread_stack, file_thread_stack + 1};
    if (self_stack) stacks[stack_count++] = (struct range){self_stack, self_stack + 1};
    struct memtrack_world *world = &c->world;
    int main_running = 0;
    pid_t pid = (pid_t)memtrack_sys_getpid();
    for (int i = 0; i < world->count; i++) {
        struct memtrack_world_thread *t = &world->threads[i];
        int state = atomic_load(&t->state);
        if (state == MEMTRACK_THREAD_STOPPED)
            stacks[stack_count++] = (struct range){t->stack_pointer, t->stack_pointer + 1};
        else if (state == MEMTRACK_THREAD_RUNNING && t->tid == pid)
            main_running = 1;
    }
    for (int i = 0; i < stack_count; i++) {
        long m = find_map(c, stacks[i].start);
        if (m >= 0) stacks[i].start = c->maps[m].start;
    }
    for (int i = 0; i < c->module_count; i++)
        scan_range(c, c->modules[i].start, c->modules[i].end, 1, c->modules[i].starts_only);
    /* Anonymous memory is copied even when every thread is stopped: the tracker's own file
     * thread runs on, and may unmap a buffer of its own after the maps were read. */
    c->copy_only = 1;
    scan_anonymous(c, stacks, stack_count);
    c->copy_only = 0;
    memtrack_for_each_root_region(scan_program_root, c);
    memtrack_for_each_ignored(scan_program_root, c);
    uintptr_t span = c->highest - c->lowest;
    for (int i = 0; i < world->count; i++) {
        struct memtrack_world_thread *t = &world->threads[i];
        int state = atomic_load(&t->state);
        if (state == MEMTRACK_THREAD_GONE) continue;
        for (int r = 0; r < t->register_count; r++)
            if (t->registers[r] - c->lowest < span) visit_word(c, t->registers[r], 1, 0);
        if (state == MEMTRACK_THREAD_STOPPED) {
            scan_stack(c, t->stack_pointer);
            c->threads_scanned++;
        }
        /* A running thread's stack other than the main one is anonymous memory, read above. */
    }
    if (main_running && c->main_stack_end) scan_range(c, c->main_stack_start, c->main_stack_end, 1, 0);
    if (self_stack) {
        for (int r = 0; r < MEMTRACK_SAVED_REGISTERS; r++)
            if (self_registers[r] - c->lowest < span) visit_word(c, self_registers[r], 1, 0);
        scan_stack(c, self_stack + RED_ZONE);   /* from the caller's frame up */
        c->threads_scanned++;
    }
}

// ---- Blocks the dynamic loader allocated -----------------------------------------------------------
/* Loader allocations (DTV, TLS blocks, link maps) are roots, as in LSan: a running thread's DTV
 * is reached only through an interior pointer (its TCB points one entry in), and valgrind calls
 * it possibly lost. The allocation path notes every block whose caller is in ld.so (below), so
 * the check reads the records of those only; the record confirms it (the address may have been
 * freed and reused). */
#define MAX_LOADER_BLOCKS 8192
static atomic_uintptr_t loader_blocks[MAX_LOADER_BLOCKS];
static atomic_uint loader_block_count;

void memtrack_note_loader_block(uintptr_t address) {
    unsigned slot = atomic_fetch_add_explicit(&loader_block_count, 1, memory_order_relaxed);
    if (slot < MAX_LOADER_BLOCKS) atomic_store_explicit(&loader_blocks[slot], address, memory_order_relaxed);
}

static void consider_loader_block(struct check *c, long i) {
    struct mark *m = &c->marks[i];
    if (block_state(m) == REACHABLE) return;
    learn_record(c, m);
    if (m->word & LOADER) { set_state(m, REACHABLE); push(c, i); }
}

static void mark_loader_blocks(struct check *c) {
    unsigned noted = atomic_load(&loader_block_count);
    if (noted <= MAX_LOADER_BLOCKS) {
        for (unsigned k = 0; k < noted; k++) {
            uintptr_t address = atomic_load_explicit(&loader_blocks[k], memory_order_relaxed);
            long i = address ? find_block(c, address) : -1;
            if (i >= 0 && block_start(&c->marks[i]) == address) consider_loader_block(c, i);
        }
    } else {
        for (size_t i = 0; i < c->count; i++) consider_loader_block(c, (long)i);   /* too many to note */
    }
    drain(c);
}

/* valgrind's cliques: each block still unreached leads the blocks it reaches, which are then
 * indirectly lost; a leader reached by a later clique joins it. */
static void classify_lost(struct check *c) {
    if (!c->depth_first) go_depth_first(c);   /* nothing is queued: cliques are small walks */
    /* Who led each indirectly lost block, for LSan's suppressions (a suppressed block's
     * clique goes with it). Without the memory, the record just names no leaders. */
    c->leader_bytes = (c->count * sizeof(uint32_t) + PAGE - 1) & ~(PAGE - 1);
    c->leaders = c->count <= UINT32_MAX ? map_memory(c->leader_bytes) : NULL;
    for (size_t i = 0; i < c->count; i++) {
        if (block_state(&c->marks[i]) != UNREACHED) continue;
        c->clique = (int)i;
        push(c, (long)i);
        drain(c);
    }
    c->clique = -1;
}

// ---- Writing the result ------------------------------------------------------------------------
struct output { int fd; char *buffer, *out, *end; int failed; };

static void flush_output(struct output *o) {
    if (o->fd >= 0 && o->out > o->buffer &&
        memtrack_sys_write_all(o->fd, o->buffer, (size_t)(o->out - o->buffer)) != (ssize_t)(o->out - o->buffer))
        o->failed = 1;
    o->out = o->buffer;
}
static void put_line(struct output *o, const char *key, const char *text, int has_number, uint64_t number) {
    if (o->end - o->out < 256) flush_output(o);
    o->out = memtrack_put_text(o->out, o->end, key);
    if (text) { o->out = memtrack_put_text(o->out, o->end, " "); o->out = memtrack_put_text(o->out, o->end, text); }
    if (has_number) { o->out = memtrack_put_text(o->out, o->end, " "); o->out = memtrack_put_decimal(o->out, o->end, number); }
    *o->out++ = '\n';
}

static void record_names(int on_request, uint64_t sequence, char *temporary, char *final) {
    char *t = memtrack_put_text(temporary, temporary + 40, on_request ? ".leak-check-" : ".leak-check");
    char *f = memtrack_put_text(final, final + 40, on_request ? "leak-check-" : "leak-check");
    if (on_request) { t = memtrack_put_decimal(t, temporary + 60, sequence); f = memtrack_put_decimal(f, final + 60, sequence); }
    *memtrack_put_text(t, temporary + 63, ".tmp") = 0;
    *f = 0;
}

static int open_output(struct output *o, const char *temporary, char *buffer, size_t capacity) {
    o->buffer = o->out = buffer;
    o->end = buffer + capacity - 1;
    o->failed = 0;
    int directory = memtrack_record_directory();
    o->fd = directory < 0 ? -1 : (int)memtrack_sys_openat(directory, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    memtrack_record_directory_done(directory);
    return o->fd >= 0;
}

/* Closes the temporary file and renames it into place: a reader sees all of it or none. */
static void publish_output(struct output *o, const char *temporary, const char *final) {
    flush_output(o);
    memtrack_sys_close(o->fd);
    int directory = memtrack_record_directory();
    if (o->failed || directory < 0 || memtrack_sys_renameat(directory, temporary, directory, final) != 0) {
        if (directory >= 0) memtrack_sys_unlinkat(directory, temporary);
        memtrack_note_failure("writing the leak check", errno ? errno : ENOSPC, NULL);
    }
    memtrack_record_directory_done(directory);
}

static const char *const kind_names[] = {"definitely", "possibly", NULL, "indirectly"};

static uint64_t write_result(const struct check *c, uint64_t duration_us) {
    static char buffer[64 * 1024];   /* static: the check may run on the writer's small stack */
    char temporary[64], final[64];
    record_names(c->on_request, c->sequence, temporary, final);
    struct output o;
    uint64_t lost = 0;
    for (size_t i = 0; i < c->count; i++) {
        int state = block_state(&c->marks[i]);
        lost += state == UNREACHED || state == INDIRECT;
    }
    if (!open_output(&o, temporary, buffer, sizeof buffer)) return lost;
    put_line(&o, "memtrack/1 leak-check", NULL, 0, 0);
    put_line(&o, "result", "complete", 0, 0);
    put_line(&o, "when", c->on_request ? "request" : "exit", 0, 0);
    put_line(&o, "seq", NULL, 1, c->sequence);
    put_line(&o, "ms", NULL, 1, c->began_ms);
    put_line(&o, "duration-us", NULL, 1, duration_us);
    put_line(&o, "threads", NULL, 1, (uint64_t)c->threads_found);
    put_line(&o, "threads-scanned", NULL, 1, (uint64_t)c->threads_scanned);
    put_line(&o, "blocks", NULL, 1, c->count);
    for (int i = 0; i < c->notes; i++) put_line(&o, "note", c->note[i], 0, 0);
    for (size_t i = 0; i < c->count; i++) {
        int state = block_state(&c->marks[i]);
        if (state == REACHABLE) continue;
        if (o.end - o.out < 256) flush_output(&o);
        o.out = memtrack_put_text(o.out, o.end, "lost ");
        o.out = memtrack_put_hex(o.out, o.end, block_start(&c->marks[i]));
        o.out = memtrack_put_text(o.out, o.end, " ");
        o.out = memtrack_put_text(o.out, o.end, kind_names[state]);
        *o.out++ = '\n';
        /* `leader ADDRESS LEADER`: a line of its own, which readers that do not know it skip
         * (unknown keys are ignored), so the format's version stays. */
        if (state == INDIRECT && c->leaders) {
            o.out = memtrack_put_text(o.out, o.end, "leader ");
            o.out = memtrack_put_hex(o.out, o.end, block_start(&c->marks[i]));
            o.out = memtrack_put_text(o.out, o.end, " ");
            o.out = memtrack_put_hex(o.out, o.end, block_start(&c->marks[c->leaders[i]]));
            *o.out++ = '\n';
        }
    }
    put_line(&o, "end", NULL, 0, 0);
    publish_output(&o, temporary, final);
    return lost;
}

static pid_t written_by;   /* the process image that wrote `leak-check` */

/* `result skipped REASON` or `result failed REASON`: no classification. */
static void write_unclassified(int on_request, uint64_t sequence, const char *result, const char *reason) {
    char buffer[512], temporary[64], final[64];
    record_names(on_request, sequence, temporary, final);
    struct output o;
    if (!open_output(&o, temporary, buffer, sizeof buffer)) return;
    put_line(&o, "memtrack/1 leak-check", NULL, 0, 0);
    if (o.end - o.out > 256) {
        o.out = memtrack_put_text(o.out, o.end, "result ");
        o.out = memtrack_put_text(o.out, o.end, result);
    }
    put_line(&o, "", reason, 0, 0);
    put_line(&o, "when", on_request ? "request" : "exit", 0, 0);
    put_line(&o, "seq", NULL, 1, sequence);
    put_line(&o, "ms", NULL, 1, memtrack_milliseconds_now());
    put_line(&o, "end", NULL, 0, 0);
    publish_output(&o, temporary, final);
}

void memtrack_leak_check_skipped(const char *reason) {
    if (written_by == (pid_t)memtrack_sys_getpid()) return;   /* exit's check came first */
    int saved_errno = errno;
    write_unclassified(0, atomic_load(&memtrack_sequence), "skipped", reason);
    written_by = (pid_t)memtrack_sys_getpid();
    errno = saved_errno;
}

// ---- Stopping the other threads -----------------------------------------------------------------
static const char *error_name(int error) {
    switch (error) {
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EIO: return "EIO";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";   /* qemu-user: no clone(CLONE_VM) that is not a thread */
    case ETIMEDOUT: return "did not stop within 100 ms";
    case EINTR: return "in a wait an interrupt ends";   /* arch.h: left running */
    default: return "error";
    }
}

/* Every thread but this one and the tracker's, stopped by stopworld.c (unless `held`: the
 * exit path stopped them already, see memtrack_leak_check_at_exit). One that could not be
 * stopped gets a note: its registers were not read (only its system call's arguments), its
 * stack was read as it ran. Plain loads are used only when every thread stopped. */
static void stop_world(struct check *c, int self, int self_is_tracker, int on_request, int held) {
    int skip[2] = {memtrack_pending_writer_thread(), atomic_load(&memtrack_file_thread)};
    /* At exit the program's own PR_SET_PTRACER choice no longer matters; on request it does. */
    if (!held) memtrack_world_stop(&c->world, self, skip, 2, !on_request);
    if (c->world.tracer_stack) add_own((uintptr_t)c->world.tracer_stack, c->world.tracer_stack_bytes, c);
    int present = 0;
    for (int i = 0; i < c->world.count; i++) {
        struct memtrack_world_thread *t = &c->world.threads[i];
        int state = atomic_load(&t->state);
        if (state == MEMTRACK_THREAD_GONE) continue;
        present++;
        if (state != MEMTRACK_THREAD_RUNNING || c->notes >= MAX_NOTES) continue;
        char *out = c->note[c->notes], *end = out + sizeof c->note[0] - 1;
        out = memtrack_put_text(out, end, "thread ");
        out = memtrack_put_decimal(out, end, (uint64_t)t->tid);
        out = memtrack_put_text(out, end, " was not stopped (");
        out = memtrack_put_text(out, end, t->error == ETIMEDOUT || t->error == EINTR ? "" : "ptrace: ");
        out = memtrack_put_text(out, end, error_name(t->error));
        *memtrack_put_text(out, end, "): its stack was read as it ran, its registers were not") = 0;
        c->notes++;
    }
    c->threads_found = present + c->world.overflow + (self_is_tracker ? 0 : 1);
    if (c->world.overflow && c->notes < MAX_NOTES) {
        char *out = c->note[c->notes], *end = out + sizeof c->note[0] - 1;
        out = memtrack_put_decimal(out, end, (uint64_t)c->world.overflow);
        *memtrack_put_text(out, end, " threads beyond the first 1024 were not stopped or scanned") = 0;
        c->notes++;
    }
    c->stable = !c->world.running && !c->world.overflow;
    c->map_hint = -1;
}

/* Whether this thread runs under a seccomp filter (Seccomp: 2 in its status). */
static int under_seccomp_filter(void) {
    char text[4096];
    int fd = (int)memtrack_sys_openat(AT_FDCWD, "/proc/thread-self/status", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return 0;
    ssize_t length = memtrack_sys_read(fd, text, sizeof text - 1);
    memtrack_sys_close(fd);
    if (length <= 0) return 0;
    text[length] = 0;
    const char *line = strstr(text, "\nSeccomp:");
    if (!line) return 0;
    line += 9;
    while (*line == ' ' || *line == '\t') line++;
    return *line >= '1' && *line <= '9';
}

// ---- The check ----------------------------------------------------------------------------------
static struct check the_check;   /* one check at a time (busy below); too big for a stack */
static atomic_int busy;

static uint64_t microseconds_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

static void walk_module_segments(void *check) { dl_iterate_phdr(module_segments, check); }

/* Why a check is skipped when the loader's list could not be walked: without the modules'
 * segments (the roots in their data) every block would look lost. */
static const char loader_not_walked[] = "the loader's list was not walked in time";

/* What the check needs from the loader, taken before any thread is stopped: dl_iterate_phdr,
 * dlsym and dladdr take the loader's lock, which a stopped thread may hold. The walk is made
 * by the writer and waited for at most 2 s (loaderwalk.c): a thread may stay in a
 * dl_iterate_phdr callback for good, and the exit of an untraced program does not wait for it.
 * Returns 0 when the walk did not end in time (`c` is then the stuck walk's, not to be read). */
static int prepare(struct check *c, int on_request, uint64_t sequence, struct range *exit_code) {
    if (memtrack_loader_stuck()) return 0;
    memset(c, 0, sizeof *c);   /* 160 KiB: nothing next to a scan of the heap */
    c->clique = -1;
    c->on_request = on_request;
    c->sequence = sequence;
    c->began_ms = memtrack_milliseconds_now();
    if (!memtrack_loader_walk_bounded(walk_module_segments, c, "the leak check's walk of the loader's list")) return 0;
    *exit_code = on_request ? (struct range){0, 0} : exit_function_code();
    c->window = map_memory(WINDOW_BYTES);
    if (c->window) add_own((uintptr_t)c->window, WINDOW_BYTES, c);
    return 1;
}

/* The check itself, on a prepared `c`, with `busy` and memtrack_busy taken by the caller.
 * held: the other threads are stopped already, and stay stopped (the exit path's freeres). */
static int classify(struct check *c, int self, int self_is_tracker, const uint64_t registers[MEMTRACK_SAVED_REGISTERS],
                    uintptr_t caller_stack, struct range exit_code, int held, const char *note) {
    int on_request = c->on_request;
    /* The writer finishes its pass first (at exit it may be writing many records): that wait
     * is not the classification's. */
    int paused = self_is_tracker ? 0 : memtrack_pending_pause_writer();
    memtrack_pending_drain_for_check();
    uint64_t began_us = microseconds_now();
    stop_world(c, self, self_is_tracker, on_request, held);
    if (note && c->notes < MAX_NOTES) {
        char *out = c->note[c->notes], *end = out + sizeof c->note[0] - 1;
        *memtrack_put_text(out, end, note) = 0;
        c->notes++;
    }
    uint64_t lost = 0;
    int ran = c->window && read_maps(c) && collect_blocks(c);
    if (ran) {
        add_own((uintptr_t)c->maps, c->map_bytes, c);
        memtrack_shadow_for_each_mapping(add_own, c);
        /* The backlogs and the stacks table first: the quarantine's blocks (up to 4,096 ranges)
         * may fill the table of own ranges. */
        memtrack_pending_for_each_mapping(add_own, c);
        memtrack_stacks_for_each_mapping(add_own, c);
        memtrack_quarantine_visit(add_own, c);
        settle_own(c);
        if (c->count) {
            uintptr_t live = 0;   /* this thread's stack, from the caller's frame (0: not ours to scan) */
            if (!self_is_tracker) live = on_request ? caller_stack : exit_caller_frame(caller_stack, c, exit_code);
            mark_roots(c, registers, live);
            drain(c);
            mark_loader_blocks(c);
            classify_lost(c);
        } else {
            for (int i = 0; i < c->world.count; i++)
                c->threads_scanned += atomic_load(&c->world.threads[i].state) == MEMTRACK_THREAD_STOPPED;
            c->threads_scanned += !self_is_tracker;
        }
    }
    if (!held) memtrack_world_resume(&c->world);
    if (ran) {
        lost = write_result(c, microseconds_now() - began_us);
        if (!on_request) written_by = (pid_t)memtrack_sys_getpid();
    } else {
        write_unclassified(on_request, c->sequence, "failed", "no memory for the check");   /* mmap failed */
    }
    if (c->marks) memtrack_sys_munmap(c->marks, c->mark_bytes);
    if (c->maps) memtrack_sys_munmap(c->maps, c->map_bytes);
    if (c->window) memtrack_sys_munmap(c->window, WINDOW_BYTES);
    if (c->leaders) memtrack_sys_munmap(c->leaders, c->leader_bytes);
    c->leaders = NULL;
    c->marks = NULL;
    c->maps = NULL;
    c->window = NULL;
    if (paused) memtrack_pending_resume_writer();
    return ran ? (int)(lost > INT32_MAX ? INT32_MAX : lost) : -1;
}

__attribute__((noinline)) int memtrack_leak_check_now(int on_request) {
    /* This thread's callee-saved registers, before anything here changes them. */
    uint64_t registers[MEMTRACK_SAVED_REGISTERS] = {0};
    memtrack_save_registers(registers);   /* arch.h */
    uintptr_t caller_stack = (uintptr_t)__builtin_frame_address(0);
    if (atomic_load(&memtrack_run_directory) < 0) return -1;
    int saved_errno = errno;
    uint64_t sequence = atomic_load(&memtrack_sequence);
    if (!memtrack_config.leak_check) {
        write_unclassified(on_request, sequence, "skipped", "disabled");   /* memdir check gets an answer too */
        if (!on_request) written_by = (pid_t)memtrack_sys_getpid();
        errno = saved_errno;
        return -1;
    }
    if (atomic_exchange(&busy, 1)) { errno = saved_errno; return -1; }
    memtrack_busy++;
    int self = (int)memtrack_sys_gettid();
    int self_is_tracker = self == atomic_load(&memtrack_writer_thread) || self == atomic_load(&memtrack_file_thread);
    int result = -1;
    if (under_seccomp_filter()) {
        /* Any system call the check makes (clone, ptrace, process_vm_readv...) may be the one
         * the filter kills the process for. */
        write_unclassified(on_request, sequence, "skipped", "seccomp filter");
        if (!on_request) written_by = (pid_t)memtrack_sys_getpid();
    } else {
        struct check *c = &the_check;
        struct range exit_code;
        if (prepare(c, on_request, sequence, &exit_code)) {
            result = classify(c, self, self_is_tracker, registers, caller_stack, exit_code, 0, NULL);
        } else {
            write_unclassified(on_request, sequence, "skipped", loader_not_walked);
            if (!on_request) written_by = (pid_t)memtrack_sys_getpid();
        }
    }
    memtrack_busy--;
    atomic_store(&busy, 0);
    errno = saved_errno;
    return result;
}

// ---- At exit: freeres while the other threads are held ------------------------------------------
/* freeres (MEM_FREERES) frees libc's buffers and the loader's tables. A thread that still ran
 * would use them: a SIGSEGV, or a double free freeres caused. So with other threads alive,
 * freeres runs only while they are stopped where they hold none of libc's locks or ours, and
 * they stay stopped until the process ends (exit_group takes them; the tracer dies with us).
 * Where no such moment comes within a bound, or they cannot be stopped, freeres is not run
 * and the check says so: libc's own buffers are then still reachable, as they are untraced. */
#define SYSTEM_TEXT_MAX 16
struct system_text { struct range text[SYSTEM_TEXT_MAX]; int count; struct range ours; };

static int system_text_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct system_text *s = data;
    static const char *const names[] = {"libc.so", "ld-linux", "ld64.so", "libstdc++.so", "libgcc_s.so", "libpthread.so", "libdl.so"};
    const char *base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    base = base ? base + 1 : (info->dlpi_name ? info->dlpi_name : "");
    int system = 0;
    for (size_t n = 0; n < sizeof names / sizeof names[0] && !system; n++) system = !strncmp(base, names[n], strlen(names[n]));
    uintptr_t loader_base = (uintptr_t)getauxval(AT_BASE);
    if (loader_base && info->dlpi_addr == loader_base) system = 1;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || !(header->p_flags & PF_X)) continue;
        uintptr_t start = info->dlpi_addr + header->p_vaddr, end = start + header->p_memsz;
        if ((uintptr_t)&system_text_segments >= start && (uintptr_t)&system_text_segments < end) s->ours = (struct range){start, end};
        else if (system && s->count < SYSTEM_TEXT_MAX) s->text[s->count++] = (struct range){start, end};
    }
    return 0;
}
static void walk_system_text(void *system) { dl_iterate_phdr(system_text_segments, system); }

/* A blocked system call in which a thread of libc holds none of libc's locks that freeres or
 * the rest of exit take (read may hold a FILE's lock: exit does not wait for those). */
static int quiet_wait(long number) {
    switch (number) {
    case SYS_read: case SYS_readv: case SYS_pread64: case SYS_recvfrom: case SYS_recvmsg: case SYS_accept4:
    case SYS_ppoll: case SYS_pselect6: case SYS_epoll_pwait: case SYS_nanosleep: case SYS_clock_nanosleep:
    case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait: case SYS_wait4: case SYS_waitid: case SYS_futex:
#ifdef SYS_accept
    case SYS_accept:
#endif
#ifdef SYS_poll
    case SYS_poll:
#endif
#ifdef SYS_select
    case SYS_select:
#endif
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
#ifdef SYS_pause
    case SYS_pause:
#endif
        return 1;
    default:
        return 0;
    }
}

/* Whether every other thread is stopped, outside libc, the loader, libstdc++ and this library,
 * or waiting quietly in libc: 1 yes, 0 one is busy there (it may leave soon), -1 one could not
 * be stopped (a host's own threads, such as qemu-user's, do not count). Writes why into `why`. */
static int world_held_safely(const struct memtrack_world *world, const struct system_text *s, char *why, const char *why_end) {
    int running = world->overflow;
    for (int i = 0; i < world->count; i++)
        running += atomic_load(&world->threads[i].state) == MEMTRACK_THREAD_RUNNING && !memtrack_world_is_foreign(world->threads[i].tid);
    if (running) {
        *memtrack_put_text(why, why_end, "freeres not run: not every thread could be stopped; libc's own blocks stay reachable") = 0;
        return -1;
    }
    for (int i = 0; i < world->count; i++) {
        const struct memtrack_world_thread *t = &world->threads[i];
        if (atomic_load(&t->state) != MEMTRACK_THREAD_STOPPED) continue;
        long number;
        uintptr_t pc;
        if (!memtrack_world_thread_position(t, &number, &pc)) number = -2, pc = 0;
        int in_system = 0;
        for (int r = 0; r < s->count && !in_system; r++) in_system = pc >= s->text[r].start && pc < s->text[r].end;
        int ours = pc >= s->ours.start && pc < s->ours.end;   /* our locks: never a quiet place */
        if (number == -2 || ours || (in_system && !quiet_wait(number))) {
            char *out = memtrack_put_text(why, why_end, "freeres not run: thread ");
            out = memtrack_put_decimal(out, why_end, (uint64_t)t->tid);
            *memtrack_put_text(out, why_end, " stayed busy inside libc; libc's own blocks stay reachable") = 0;
            return 0;
        }
    }
    return 1;
}

static uint64_t monotonic_ms(void) { return microseconds_now() / 1000; }

int memtrack_world_held;

__attribute__((noinline)) int memtrack_leak_check_at_exit(void (*freeres)(void)) {
    uint64_t registers[MEMTRACK_SAVED_REGISTERS] = {0};
    memtrack_save_registers(registers);   /* arch.h */
    uintptr_t caller_stack = (uintptr_t)__builtin_frame_address(0);
    if (!freeres) return memtrack_leak_check_now(0);
    if (atomic_load(&memtrack_run_directory) < 0) { freeres(); return -1; }
    int saved_errno = errno;
    int self = (int)memtrack_sys_gettid();
    int skip[2] = {memtrack_pending_writer_thread(), atomic_load(&memtrack_file_thread)};
    if (under_seccomp_filter() || atomic_exchange(&busy, 1)) {
        /* No stop is possible (or a requested check holds the world): freeres only alone. */
        if (memtrack_world_count_others(self, skip, 2) == 0) freeres();
        errno = saved_errno;
        return memtrack_leak_check_now(0);
    }
    memtrack_busy++;
    struct check *c = &the_check;
    struct range exit_code;
    /* Static: a walk that did not end in time may still fill it (loaderwalk.c). */
    static struct system_text system;
    int walked = !memtrack_loader_stuck();
    if (walked) {
        system = (struct system_text){0};
        walked = memtrack_loader_walk_bounded(walk_system_text, &system, "the leak check's walk of the loader's list") &&
                 prepare(c, 0, 0, &exit_code);   /* before any stop: it asks the loader */
    }
    if (!walked) {
        /* No roots, no check; and no freeres, which needs the other threads held. */
        write_unclassified(0, atomic_load(&memtrack_sequence), "skipped", loader_not_walked);
        written_by = (pid_t)memtrack_sys_getpid();
        memtrack_busy--;
        atomic_store(&busy, 0);
        errno = saved_errno;
        return -1;
    }
    char why[128] = {0};
    int held = 0;
    uint64_t give_up = monotonic_ms() + 200;
    for (;;) {
        memtrack_world_stop(&c->world, self, skip, 2, 1);
        int safe = c->world.count ? world_held_safely(&c->world, &system, why, why + sizeof why - 1) : 1;
        if (safe > 0) { held = 1; break; }   /* (no other thread: nothing to hold) */
        memtrack_world_resume(&c->world);
        if (safe < 0 || monotonic_ms() >= give_up) break;
        struct timespec pause = {0, 1000000};   /* let the busy thread leave libc */
        nanosleep(&pause, NULL);
    }
    if (held) {
        memtrack_busy--;
        freeres();   /* its frees are the program's: they remove its records */
        memtrack_busy++;
    }
    int result = -1;
    c->sequence = atomic_load(&memtrack_sequence);   /* blocks made until now are classified */
    c->began_ms = memtrack_milliseconds_now();
    if (memtrack_config.leak_check) {
        /* Not held: classify stops the world itself, and notes why freeres did not run. */
        result = classify(c, self, 0, registers, caller_stack, exit_code, held, held ? NULL : why);
    } else {
        if (c->window) memtrack_sys_munmap(c->window, WINDOW_BYTES);
        c->window = NULL;
        write_unclassified(0, c->sequence, "skipped", "disabled");
    }
    written_by = (pid_t)memtrack_sys_getpid();
    if (held) memtrack_world_held = c->world.tracer != 0;
    memtrack_busy--;
    atomic_store(&busy, 0);
    errno = saved_errno;
    return result;
}
