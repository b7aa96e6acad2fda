/* annotations.c: what a program can tell the tracker (the catalog's "Source locations and
 * annotations"): the state behind the exported functions in api.c, which also gives them
 * LeakSanitizer's names:
 *   memtrack_pause/resume, __lsan_disable/enable   per thread, nesting: blocks allocated in
 *                                                  between are never recorded
 *   memtrack_ignore, __lsan_ignore_object          never report this block
 *   __lsan_(un)register_root_region                memory to scan as roots (for the leak check)
 *   memtrack_check, __lsan_do_(recoverable_)leak_check   an on-demand leak check
 *   memtrack_note_location                         the source location of the next allocation
 *                                                  (called by memtrack.h's macros)
 *   MEM_TRACE_AFTER=SECONDS                        blocks allocated earlier are never recorded
 *
 * Blocks that must not be recorded are marked as the tracker's own (LIVE_INTERNAL): freeing one
 * is quiet, freeing it twice is still a double free. The allocation path pays one thread-local
 * and one global load (entry.c) unless an annotation is in use.
 *
 * Layer: state, on the table (an ignored block leaves the table) and sources.
 */
#include "annotations.h"
#include "lock.h"
#include "pending.h"
#include "shadow.h"
#include "sources.h"
#include "sys.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

MEMTRACK_THREAD_LOCAL int memtrack_thread_annotations;   /* ANNOTATE_* bits of this thread */
atomic_int memtrack_annotations_active;                  /* ACTIVE_* bits, for every thread */

enum { ANNOTATE_PAUSED = 1, ANNOTATE_LOCATION = 2 };
enum { ACTIVE_TRACE_AFTER = 1 };

static MEMTRACK_THREAD_LOCAL int pause_depth;
static MEMTRACK_THREAD_LOCAL const char *noted_file, *noted_function;
static MEMTRACK_THREAD_LOCAL int noted_line;

// ---- Pausing -----------------------------------------------------------------------------
void memtrack_annotations_pause(void) {
    pause_depth++;
    memtrack_thread_annotations |= ANNOTATE_PAUSED;
}

void memtrack_annotations_resume(void) {
    if (pause_depth > 0 && --pause_depth == 0) memtrack_thread_annotations &= ~ANNOTATE_PAUSED;
}


void memtrack_start_tracing_after(uint32_t milliseconds) {
    memtrack_config.trace_after_ms = milliseconds;
    if (milliseconds) atomic_fetch_or(&memtrack_annotations_active, ACTIVE_TRACE_AFTER);
}

// ---- Source locations --------------------------------------------------------------------
void memtrack_annotations_note_location(const char *file, int line, const char *function) {
    noted_file = file;
    noted_line = line;
    noted_function = function;
    if (file) memtrack_thread_annotations |= ANNOTATE_LOCATION;
    else memtrack_thread_annotations &= ~ANNOTATE_LOCATION;
}

// ---- The allocation hook -----------------------------------------------------------------
static void note_paused_block(uintptr_t address, size_t size);
int memtrack_annotate_allocation(struct memtrack_block *block, void *pointer, size_t size) {
    int flags = memtrack_thread_annotations;
    if (flags & ANNOTATE_LOCATION) {
        /* One note, one block: whatever happens next, the note is used up. */
        memtrack_thread_annotations &= ~ANNOTATE_LOCATION;
        block->source = memtrack_sources_intern(noted_file, noted_function);
        block->source_line = (uint32_t)noted_line;
    }
    if (flags & ANNOTATE_PAUSED) {
        size_t usable = memtrack_next.malloc_usable_size ? memtrack_next.malloc_usable_size(pointer) : 0;
        note_paused_block((uintptr_t)pointer, usable > size ? size : usable ? usable : size);
        return 1;
    }
    if (atomic_load_explicit(&memtrack_annotations_active, memory_order_relaxed) & ACTIVE_TRACE_AFTER) {
        if (memtrack_milliseconds_now() < memtrack_config.trace_after_ms) return 1;
        atomic_fetch_and(&memtrack_annotations_active, ~ACTIVE_TRACE_AFTER);
    }
    return 0;
}

// ---- Ignored blocks and root regions -----------------------------------------------------
/* Small fixed tables, as LSan's: annotations are for a few special objects, not for every
 * block. An ignored block's record is removed at once and it becomes the tracker's own, so it
 * is never reported; the table keeps its address for the leak check (its contents are roots). */
#define MAX_IGNORED 1024
#define MAX_ROOT_REGIONS 256
struct region { uintptr_t start; size_t size; };
static struct region ignored[MAX_IGNORED];
static struct region roots[MAX_ROOT_REGIONS];
static memtrack_lock tables_lock;

int memtrack_is_ignored(uintptr_t address) {
    if (memtrack_shadow_state((const void *)address) != MEMTRACK_LIVE_INTERNAL) return 0;   /* freed since */
    for (int i = 0; i < MAX_IGNORED; i++) if (ignored[i].start == address) return 1;
    return 0;
}

// ---- Blocks allocated while paused --------------------------------------------------------
/* LSan's meaning of __lsan_disable (and memtrack_pause): a block allocated in between is never
 * reported, and it is still a root: what it points to is not lost. (Left out of the leak check
 * altogether, its pointees were reported definitely lost.) They are kept in a hash set of their
 * own, growable, since a paused stretch can allocate many; a free takes the block out. */
static struct region *paused_blocks;      /* mmap'd, paused_capacity slots; start 0: empty */
static size_t paused_capacity, paused_count;
static atomic_int any_paused_blocks;

static size_t paused_home(uintptr_t address, size_t capacity) {
    return (size_t)(((uint64_t)(address >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & (capacity - 1);
}

static void paused_place(struct region *table, size_t capacity, struct region entry) {
    size_t i = paused_home(entry.start, capacity);
    while (table[i].start) i = (i + 1) & (capacity - 1);
    table[i] = entry;
}

/* With tables_lock held. Returns 0 when the set cannot grow (the block is then left out). */
static int paused_grow(void) {
    size_t capacity = paused_capacity ? paused_capacity * 2 : 1024;
    struct region *fresh = memtrack_sys_mmap(NULL, capacity * sizeof *fresh, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) return 0;
    for (size_t i = 0; i < paused_capacity; i++) if (paused_blocks[i].start) paused_place(fresh, capacity, paused_blocks[i]);
    if (paused_blocks) memtrack_sys_munmap(paused_blocks, paused_capacity * sizeof *paused_blocks);
    paused_blocks = fresh;
    paused_capacity = capacity;
    return 1;
}

static void note_paused_block(uintptr_t address, size_t size) {
    memtrack_lock_acquire(&tables_lock);
    if ((paused_count + 1) * 4 <= paused_capacity * 3 || paused_grow()) {
        paused_place(paused_blocks, paused_capacity, (struct region){address, size});
        paused_count++;
        atomic_store(&any_paused_blocks, 1);
    }
    memtrack_lock_release(&tables_lock);
}

/* A block the tracker does not record (LIVE_INTERNAL) is being freed or moved. */
void memtrack_forget_paused_block(uintptr_t address) {
    if (MEMTRACK_LIKELY(!atomic_load_explicit(&any_paused_blocks, memory_order_relaxed))) return;
    memtrack_lock_acquire(&tables_lock);
    size_t mask = paused_capacity - 1;
    for (size_t i = paused_capacity ? paused_home(address, paused_capacity) : 0; paused_capacity && paused_blocks[i].start; i = (i + 1) & mask) {
        if (paused_blocks[i].start != address) continue;
        /* Backward-shift deletion: no tombstones. */
        size_t hole = i, next = i;
        for (;;) {
            next = (next + 1) & mask;
            if (!paused_blocks[next].start) break;
            size_t home = paused_home(paused_blocks[next].start, paused_capacity);
            int stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
            if (stays) continue;
            paused_blocks[hole] = paused_blocks[next];
            hole = next;
        }
        paused_blocks[hole].start = 0;
        paused_count--;
        break;
    }
    memtrack_lock_release(&tables_lock);
}

void memtrack_for_each_ignored(void (*visit)(uintptr_t start, size_t size, void *context), void *context) {
    for (int i = 0; i < MAX_IGNORED; i++)
        if (ignored[i].start && memtrack_is_ignored(ignored[i].start)) visit(ignored[i].start, ignored[i].size, context);
    /* The threads are stopped: one holding the lock may be growing the set; then it is skipped. */
    if (!atomic_load(&any_paused_blocks) || !memtrack_lock_try_for_signal(&tables_lock, 100)) return;
    for (size_t i = 0; i < paused_capacity; i++)
        if (paused_blocks[i].start && memtrack_shadow_state((const void *)paused_blocks[i].start) == MEMTRACK_LIVE_INTERNAL)
            visit(paused_blocks[i].start, paused_blocks[i].size, context);
    memtrack_lock_release(&tables_lock);
}

void memtrack_for_each_root_region(void (*visit)(uintptr_t start, size_t size, void *context), void *context) {
    for (int i = 0; i < MAX_ROOT_REGIONS; i++) if (roots[i].size) visit(roots[i].start, roots[i].size, context);
}

/* Returns 0, or -1 when pointer is not a live block recorded for the program. */
int memtrack_annotations_ignore(const void *pointer) {
    if (!pointer || !atomic_load(&memtrack_ready)) return -1;
    memtrack_busy++;
    int previous = memtrack_shadow_exchange(pointer, MEMTRACK_LIVE_INTERNAL);
    if (previous != MEMTRACK_LIVE) {
        memtrack_shadow_exchange(pointer, previous);   /* not ours to change */
        memtrack_busy--;
        return previous == MEMTRACK_LIVE_INTERNAL ? 0 : -1;
    }
    memtrack_pending_remove((uintptr_t)pointer, NULL, NULL);
    size_t size = memtrack_next.malloc_usable_size ? memtrack_next.malloc_usable_size((void *)pointer) : 0;
    memtrack_lock_acquire(&tables_lock);
    int slot = -1;
    for (int i = 0; i < MAX_IGNORED && slot < 0; i++)
        if (!ignored[i].start || !memtrack_is_ignored(ignored[i].start)) slot = i;   /* empty or freed */
    if (slot >= 0) ignored[slot] = (struct region){ (uintptr_t)pointer, size };
    memtrack_lock_release(&tables_lock);
    memtrack_busy--;
    return 0;
}

void memtrack_annotations_register_root_region(const void *start, size_t size) {
    memtrack_lock_acquire(&tables_lock);
    for (int i = 0; i < MAX_ROOT_REGIONS; i++)
        if (!roots[i].size) { roots[i] = (struct region){ (uintptr_t)start, size }; break; }
    memtrack_lock_release(&tables_lock);
}

void memtrack_annotations_unregister_root_region(const void *start, size_t size) {
    memtrack_lock_acquire(&tables_lock);
    for (int i = 0; i < MAX_ROOT_REGIONS; i++)
        if (roots[i].start == (uintptr_t)start && roots[i].size == size) { roots[i].size = 0; break; }
    memtrack_lock_release(&tables_lock);
}

/* fork: another thread inside an annotation at the fork would leave its lock held forever in
 * the child. Both locks are leaves (nothing else is taken under them), so they go last. */
void memtrack_annotations_fork_prepare(void) {
    memtrack_sources_fork_prepare();
    memtrack_lock_acquire(&tables_lock);
}
void memtrack_annotations_fork_release(void) {
    /* The child goes on with the parent's blocks: the set stays as it is (they are the child's
     * memory too, and still roots of what they point to). */
    memtrack_lock_release(&tables_lock);
    memtrack_sources_fork_release();
}
