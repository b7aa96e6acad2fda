/* sources.c: memtrack.h's source locations (file, line, function): the texts kept once per
 * process, and the `sources` file that format 2 records name them in (the catalog's Record format, version 2).
 * Layer: records, on files and format. */
#include "sources.h"
#include "files.h"
#include "format.h"
#include "lock.h"

#include <errno.h>
#include <string.h>

/* The texts are copied once into a pool, because the program may unload the module holding
 * __FILE__ before the block's record is written. 1,024 distinct (file, function) pairs in
 * 64 KiB; beyond that, blocks keep only their stack. */
#define SOURCE_SLOTS 1024
#define SOURCE_POOL (64 * 1024)
struct source {
    _Atomic uintptr_t file_key;   /* published last: readers need no lock */
    uintptr_t function_key;
    uint32_t file_offset, function_offset;
};
static struct source sources[SOURCE_SLOTS];
static char source_pool[SOURCE_POOL];
static size_t source_pool_used = 1;   /* offset 0 means "none" */
static memtrack_lock sources_lock;

static uint32_t pool_copy(const char *text) {
    size_t length = strnlen(text, 1024);
    if (source_pool_used + length + 1 > SOURCE_POOL) return 0;
    uint32_t offset = (uint32_t)source_pool_used;
    memcpy(source_pool + offset, text, length);
    source_pool[offset + length] = 0;
    source_pool_used += length + 1;
    return offset;
}

/* The slot number + 1 of (file, function), added if new; 0 when the table is full. */
static uint32_t intern_source(const char *file, const char *function, int *locked) {
    uintptr_t key = (uintptr_t)file, function_key = (uintptr_t)function;
    uint32_t home = (uint32_t)((key >> 3) ^ (function_key >> 3) * 31) & (SOURCE_SLOTS - 1);
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t probe = 0; probe < SOURCE_SLOTS; probe++) {
            struct source *s = &sources[(home + probe) & (SOURCE_SLOTS - 1)];
            uintptr_t found = atomic_load_explicit(&s->file_key, memory_order_acquire);
            if (found == key && s->function_key == function_key) return (uint32_t)(s - sources) + 1;
            if (found) continue;
            if (pass == 0) break;   /* not there: take the lock and insert */
            uint32_t file_offset = pool_copy(file), function_offset = pool_copy(function ? function : "");
            if (!file_offset || !function_offset) return 0;
            s->function_key = function_key;
            s->file_offset = file_offset;
            s->function_offset = function_offset;
            atomic_store_explicit(&s->file_key, key, memory_order_release);
            return (uint32_t)(s - sources) + 1;
        }
        if (pass == 0) { memtrack_lock_acquire(&sources_lock); *locked = 1; }
    }
    return 0;
}

/* The id of (file, function), added if new; 0 when the table is full. */
uint32_t memtrack_sources_intern(const char *file, const char *function) {
    int locked = 0;
    uint32_t id = intern_source(file, function, &locked);
    if (locked) memtrack_lock_release(&sources_lock);
    return id;
}

/* Format 2 records name a location by its slot number (`l=ID:LINE`); the `sources` file maps
 * it to `ID FILE<tab>FUNCTION` (both escaped, so neither holds a tab), written once per
 * process before the first record that names it. */
static atomic_uchar source_published[SOURCE_SLOTS];

int memtrack_publish_source(uint32_t source) {
    if (!source || source > SOURCE_SLOTS) return EINVAL;
    atomic_uchar *published = &source_published[source - 1];
    if (atomic_load_explicit(published, memory_order_acquire) == 2) return 0;
    unsigned char expected = 0;
    if (!atomic_compare_exchange_strong(published, &expected, 1)) return 0;   /* being written */
    const struct source *s = &sources[source - 1];
    char line[32 + 2 * 4 * 1024 + 4];
    char *out = line, *end = line + sizeof line - 1;
    out = memtrack_put_decimal(out, end, source);
    out = memtrack_put_text(out, end, " ");
    out = memtrack_put_escaped(out, end, source_pool + s->file_offset);
    out = memtrack_put_text(out, end, "\t");
    out = memtrack_put_escaped(out, end, source_pool + s->function_offset);
    *out++ = '\n';
    int error = memtrack_append_record_file("sources", line, (size_t)(out - line), 1);
    atomic_store_explicit(published, error ? 0 : 2, memory_order_release);
    return error;
}

void memtrack_sources_reset(void) {
    for (int i = 0; i < SOURCE_SLOTS; i++) atomic_store_explicit(&source_published[i], 0, memory_order_relaxed);
}

/* fork: another thread inside memtrack_sources_intern at the fork would leave the lock held
 * forever in the child. A leaf lock: nothing else is taken under it. */
void memtrack_sources_fork_prepare(void) { memtrack_lock_acquire(&sources_lock); }
void memtrack_sources_fork_release(void) { memtrack_lock_release(&sources_lock); }
