/* bootstrap.c: finding the next allocator, the arena dlsym needs, configuration, start-up.
 *
 * We forward to the next allocator in the lookup chain (dlsym(RTLD_NEXT, ...)), not to
 * __libc_malloc: a program linked with jemalloc, mimalloc or tcmalloc keeps its allocator.
 * dlsym itself may call calloc/malloc before we know where they are; those few requests are
 * served from a static arena and never freed.
 *
 * Layer: process: start-up, which starts every other part.
 */
#include "bootstrap.h"
#include "annotations.h"
#include "children.h"
#include "counters.h"
#include "failure.h"
#include "format.h"
#include "process.h"
#include "sys.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>


// ---- The arena for dlsym's own allocations -----------------------------------------------
/* glibc's dlsym allocates at most a few hundred bytes (its error buffer); 64 KiB leaves room
 * for other loaders and is static, so it costs nothing until touched. */
#define ARENA_BYTES (64 * 1024)
static _Alignas(64) unsigned char arena[ARENA_BYTES];
static atomic_size_t arena_used;

void *memtrack_arena_allocate(size_t size) {
    if (size > ARENA_BYTES) return NULL;   /* and no rounding below can wrap */
    size_t rounded = (size + 15) & ~(size_t)15;   /* malloc's alignment on x86_64 */
    size_t offset = atomic_fetch_add(&arena_used, rounded);
    if (offset + rounded > ARENA_BYTES) return NULL;
    return arena + offset;   /* static storage is already zero: calloc is satisfied too */
}

/* How many bytes from pointer (an arena block) to the arena's end: a realloc out of the arena
 * copies at most that many (the block's own size is not kept; the bytes after it are the arena's). */
size_t memtrack_arena_bytes_after(const void *pointer) {
    return (size_t)(arena + ARENA_BYTES - (const unsigned char *)pointer);
}

int memtrack_arena_owns(const void *pointer) {
    const unsigned char *p = pointer;
    return p >= arena && p < arena + ARENA_BYTES;
}

static void read_configuration(void);

// ---- Finding the next allocator -----------------------------------------------------------
static void *next_symbol(const char *name) {
    return dlsym(RTLD_NEXT, name);
}

/* Whether the next allocator is glibc's own (not a preloaded jemalloc or libc_malloc_debug),
 * whose chunk headers memtrack_usable_size may read; dladdr takes the loader's lock, as the
 * dlsym calls above do. */
static int allocator_is_glibcs(void) {
    Dl_info where;
    if (!memtrack_next.malloc_usable_size || !dladdr((void *)memtrack_next.malloc_usable_size, &where) || !where.dli_fname)
        return 0;
    const char *slash = strrchr(where.dli_fname, '/');
    return !strncmp(slash ? slash + 1 : where.dli_fname, "libc.so.", 8);
}

static atomic_int bootstrap_owner;   /* thread id of the thread resolving symbols, 0 when none */

void memtrack_bootstrap(void) {
    if (atomic_load(&memtrack_ready)) return;
    int me = (int)memtrack_sys_gettid();
    int expected = 0;
    if (!atomic_compare_exchange_strong(&bootstrap_owner, &expected, me)) {
        /* Another thread is resolving (or we re-entered through dlsym: then memtrack_busy is
         * set and the entry points use the arena instead of calling us). */
        while (!atomic_load(&memtrack_ready)) sched_yield();
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    memtrack_start_milliseconds = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    memtrack_busy++;
    memtrack_next.malloc = next_symbol("malloc");
    memtrack_next.free = next_symbol("free");
    memtrack_next.calloc = next_symbol("calloc");
    memtrack_next.realloc = next_symbol("realloc");
    memtrack_next.reallocarray = next_symbol("reallocarray");
    memtrack_next.posix_memalign = next_symbol("posix_memalign");
    memtrack_next.aligned_alloc = next_symbol("aligned_alloc");
    memtrack_next.memalign = next_symbol("memalign");
    memtrack_next.valloc = next_symbol("valloc");
    memtrack_next.pvalloc = next_symbol("pvalloc");
    memtrack_next.malloc_usable_size = next_symbol("malloc_usable_size");
    if (allocator_is_glibcs()) memtrack_counters_probe_chunk_headers();
    memtrack_busy--;
    read_configuration();   /* environ may not be set this early; the constructor reads it again */
    atomic_store(&memtrack_ready, 1);
}

// ---- Configuration --------------------------------------------------------------------------
/* Parses a whole non-negative decimal number; anything else keeps the default. */
static int parse_number(const char *text, unsigned long long *value) {
    if (!text || !*text) return 0;
    unsigned long long result = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9') return 0;
        if (result > (ULLONG_MAX - 9) / 10) return 0;
        result = result * 10 + (unsigned)(*c - '0');
    }
    *value = result;
    return 1;
}

/* Reads one setting; a value that is set but not a whole number keeps the default, with one
 * warning line (only when `complain`: the first, early read may not see the environment). */
static int read_setting(const char *name, unsigned long long *value, int complain) {
    const char *text = getenv(name);
    if (!text) return 0;
    if (parse_number(text, value)) return 1;
    if (complain) {
        char line[256];
        char *out = line, *end = line + sizeof line - 1;
        out = memtrack_put_text(out, end, "memtrack: warning: ");
        out = memtrack_put_text(out, end, name);
        out = memtrack_put_text(out, end, "=");
        out = memtrack_put_text(out, end, text);
        out = memtrack_put_text(out, end, " is not a whole number; using the default\n");
        *out = 0;
        memtrack_say(line);
    }
    return 0;
}

static void read_configuration_once(int complain) {
    unsigned long long value;
    if (read_setting("MEM_SETTLE_MS", &value, complain))
        memtrack_config.settle_ms = value > 600000 ? 600000 : (int)value;
    if (read_setting("MEM_DEPTH", &value, complain))
        memtrack_config.depth = value < 1 ? 1 : value > MEMTRACK_MAX_DEPTH ? MEMTRACK_MAX_DEPTH : (int)value;
    if (read_setting("MEM_FREERES", &value, complain)) memtrack_config.freeres = value != 0;
    if (read_setting("MEM_QUARANTINE", &value, complain)) memtrack_config.quarantine_bytes = (size_t)value;
    if (read_setting("MEM_LEAK_CHECK", &value, complain)) memtrack_config.leak_check = value != 0;
    if (read_setting("MEM_COUNTERS", &value, complain)) memtrack_config.counters = value != 0;
    if (read_setting("MEM_TRACE_AFTER", &value, complain))   /* seconds, capped at a day */
        memtrack_start_tracing_after(value > 86400 ? 86400000u : (uint32_t)value * 1000u);
    if (read_setting("MEM_BACKLOG", &value, complain)) memtrack_config.backlog_bytes = (size_t)value;
    if (read_setting("MEM_SETTLE_BACKLOG_MS", &value, complain))
        memtrack_config.settle_backlog_ms = value > 600000 ? 600000 : (int)value;
}

static void read_configuration(void) { read_configuration_once(0); }

/* Runs before main and before the program's own constructors. Entry points that run even
 * earlier (the loader's first mallocs) call memtrack_bootstrap themselves. */
__attribute__((constructor(101))) static void memtrack_constructor(int argc, char **argv, char **envp) {
    (void)argc;
    memtrack_restart_if_untraced(argv, envp);   /* returns only in a process we trace */
    memtrack_bootstrap();
    read_configuration_once(1);
    memtrack_process_start();
}
