/* stacks.c: call stacks interned once per process.
 *
 * A block record (a symlink, records.c) names its allocation stack by a small id. The run
 * directory's `stacks` file maps ids to frames, one line per stack, each line appended with a
 * single write(2) before the id is handed out, so no record can ever name a stack that is not
 * on disk. A crash can at worst leave a torn last line, which no record refers to.
 *
 * The table from stack to id is lock-free: a thread that finds another one still writing the
 * line for the same stack does not wait (it may be a signal handler interrupting that very
 * thread): it writes a line of its own under a fresh id. Duplicate lines are harmless. When the
 * table is full, every new stack gets a fresh line. The table (4 MiB of address space) is mapped
 * on first use; only the pages holding stacks are ever touched.
 *
 * Layer: records, on files and format.
 */
#include "stacks.h"
#include "failure.h"
#include "files.h"
#include "format.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TABLE_SLOTS (1u << 18)
#define TABLE_LIMIT (TABLE_SLOTS / 4 * 3)
#define MAX_PROBES 64
/* check: 0 while the owner writes the line; FAILED when it could not; else the second hash. */
#define CHECK_FAILED 1u

struct interned {
    _Atomic uint64_t key;     /* first hash, never 0 */
    uint32_t id;
    _Atomic uint32_t check;   /* second hash with bit 1 set, published after id */
};

static _Atomic(struct interned *) table;
static atomic_uint next_id = 1;
static atomic_uint used_slots;

static struct interned *the_table(void) {
    struct interned *current = atomic_load_explicit(&table, memory_order_acquire);
    if (MEMTRACK_LIKELY(current != NULL)) return current;
    void *fresh = memtrack_sys_mmap(NULL, TABLE_SLOTS * sizeof(struct interned), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fresh == MAP_FAILED) return NULL;
    if (!atomic_compare_exchange_strong(&table, &current, (struct interned *)fresh)) {
        memtrack_sys_munmap(fresh, TABLE_SLOTS * sizeof(struct interned));
        return current;
    }
    return fresh;
}

/* Two independent hashes of the frames (the table's key and the check), in one pass: the two
 * multiply chains run side by side, so the second costs almost nothing (two passes were 2 % of
 * perl's samples). */
static void hash_stack(const struct memtrack_stack *stack, uint64_t key_seed, uint64_t check_seed,
                       uint64_t *key, uint64_t *check) {
    uint64_t a = key_seed ^ stack->depth, b = check_seed ^ stack->depth;
    for (uint32_t i = 0; i < stack->depth; i++) {
        a ^= stack->frames[i];
        b ^= stack->frames[i];
        a *= 0x9E3779B97F4A7C15ull;
        b *= 0x9E3779B97F4A7C15ull;
        a ^= a >> 29;
        b ^= b >> 29;
    }
    *key = a;
    *check = b;
}

/* One line, one write: `ID 0xFRAME,0xFRAME...\n`. Returns 0 or an errno value. */
static int append_line(uint32_t id, const struct memtrack_stack *stack) {
    char line[32 + MEMTRACK_MAX_DEPTH * 20];
    char *out = line, *end = line + sizeof line - 1;
    out = memtrack_put_decimal(out, end, id);
    out = memtrack_put_text(out, end, " ");
    out = memtrack_put_stack(out, end, stack);
    *out++ = '\n';
    return memtrack_append_record_file("stacks", line, (size_t)(out - line), 0);
}

/* Each id's innermost frame, so the leak check can tell the loader's blocks from their records
 * without reading the stacks file: 8 MiB of address space, touched only where ids are. */
#define FIRST_FRAME_IDS (1u << 20)
static _Atomic(uint64_t *) first_frames;

/* The memtrack.h location an id was interned with (memtrack_stack_id_at): a block waiting in
 * the table keeps only its stack's id (pending.c), so the id carries the location too. The same
 * frames with another location get an id (and a stacks line) of their own. 8 MiB of address
 * space, touched only where located ids are. */
static _Atomic(uint64_t *) locations;

/* One of the arrays above (FIRST_FRAME_IDS words), mapped on first use; NULL if it cannot be.
 * Lock-free: of two threads (or a handler and the code it interrupted) mapping it at once, one
 * keeps its mapping and the other unmaps its own. */
static uint64_t *words_by_id(_Atomic(uint64_t *) *array) {
    uint64_t *words = atomic_load_explicit(array, memory_order_acquire);
    if (words) return words;
    void *fresh = memtrack_sys_mmap(NULL, FIRST_FRAME_IDS * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fresh == MAP_FAILED) return NULL;
    if (!atomic_compare_exchange_strong(array, &words, (uint64_t *)fresh)) {
        memtrack_sys_munmap(fresh, FIRST_FRAME_IDS * sizeof(uint64_t));
        return words;
    }
    return fresh;
}

_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "first frames are kept as 64-bit words");

static void note_first_frame(uint32_t id, const struct memtrack_stack *stack) {
    uint64_t *frames = words_by_id(&first_frames);
    if (frames && id < FIRST_FRAME_IDS) frames[id] = stack->depth ? stack->frames[0] : 0;
}

uintptr_t memtrack_stack_first_frame(uint32_t id) {
    uint64_t *frames = atomic_load_explicit(&first_frames, memory_order_acquire);
    return frames && id < FIRST_FRAME_IDS ? frames[id] : 0;
}

static void note_location(uint32_t id, uint32_t source, uint32_t line) {
    uint64_t *located = words_by_id(&locations);
    if (located && id < FIRST_FRAME_IDS) located[id] = (uint64_t)source << 32 | line;
}

int memtrack_stack_location(uint32_t id, uint32_t *source, uint32_t *line) {
    uint64_t *located = atomic_load_explicit(&locations, memory_order_acquire);
    uint64_t location = located && id < FIRST_FRAME_IDS ? located[id] : 0;
    *source = (uint32_t)(location >> 32);
    *line = (uint32_t)location;
    return *source != 0;
}

static uint32_t fresh_line(const struct memtrack_stack *stack, uint32_t source, uint32_t line, int *error) {
    uint32_t id = atomic_fetch_add(&next_id, 1);
    note_first_frame(id, stack);
    /* Noted before the line is written, so before any record can name the id. An id beyond
     * the notes cannot carry a location: it gets none (0), and the caller writes without. */
    if (source) {
        if (id >= FIRST_FRAME_IDS) { *error = EOVERFLOW; return 0; }
        note_location(id, source, line);
        if (!atomic_load_explicit(&locations, memory_order_acquire)) { *error = ENOMEM; return 0; }
    }
    *error = append_line(id, stack);
    return *error ? 0 : id;
}

uint32_t memtrack_stack_id(const struct memtrack_stack *stack, int *error) {
    return memtrack_stack_id_at(stack, 0, 0, error);
}

uint32_t memtrack_stack_id_at(const struct memtrack_stack *stack, uint32_t source, uint32_t line, int *error) {
    *error = 0;
    struct interned *slots = the_table();
    if (!slots) return fresh_line(stack, source, line, error);
    uint64_t location = source ? ((uint64_t)source << 32 | line) * 0xD6E8FEB86659FD93ull : 0;
    uint64_t key, check_hash;
    hash_stack(stack, 0x243F6A8885A308D3ull ^ location, 0x13198A2E03707344ull ^ (location >> 7), &key, &check_hash);
    key |= 1;
    uint32_t check = (uint32_t)check_hash | 2;
    for (uint32_t i = (uint32_t)(key >> 40) & (TABLE_SLOTS - 1), probes = 0; probes < MAX_PROBES;
         i = (i + 1) & (TABLE_SLOTS - 1), probes++) {
        struct interned *slot = &slots[i];
        uint64_t found = atomic_load_explicit(&slot->key, memory_order_acquire);
        if (found == 0) {
            if (atomic_load_explicit(&used_slots, memory_order_relaxed) >= TABLE_LIMIT) break;
            if (atomic_compare_exchange_strong(&slot->key, &found, key)) {
                atomic_fetch_add_explicit(&used_slots, 1, memory_order_relaxed);
                uint32_t id = fresh_line(stack, source, line, error);
                slot->id = id;
                atomic_store_explicit(&slot->check, id ? check : CHECK_FAILED, memory_order_release);
                return id;
            }
        }
        if (found != key) continue;
        uint32_t seen = atomic_load_explicit(&slot->check, memory_order_acquire);
        if (seen == check) return slot->id;
        if (seen == 0) break;   /* being written by another thread, or by the one we interrupted */
    }
    return fresh_line(stack, source, line, error);
}

/* The table and the first frames: the tracker's own memory, for the leak check. */
void memtrack_stacks_for_each_mapping(void (*visit)(uintptr_t start, size_t bytes, void *context), void *context) {
    struct interned *slots = atomic_load(&table);
    if (slots) visit((uintptr_t)slots, TABLE_SLOTS * sizeof(struct interned), context);
    uint64_t *frames = atomic_load(&first_frames);
    if (frames) visit((uintptr_t)frames, FIRST_FRAME_IDS * sizeof(uintptr_t), context);
    uint64_t *located = atomic_load(&locations);
    if (located) visit((uintptr_t)located, FIRST_FRAME_IDS * sizeof(uint64_t), context);
}

/* A forked child starts its own run directory and stacks file: every id starts over. */
void memtrack_stacks_reset(void) {
    struct interned *slots = atomic_load(&table);
    if (slots && atomic_load(&used_slots))
        madvise(slots, TABLE_SLOTS * sizeof(struct interned), MADV_DONTNEED);   /* back to zeros */
    uint64_t *frames = atomic_load(&first_frames);
    if (frames && atomic_load(&next_id) > 1)
        madvise(frames, FIRST_FRAME_IDS * sizeof(uintptr_t), MADV_DONTNEED);
    uint64_t *located = atomic_load(&locations);
    if (located && atomic_load(&next_id) > 1)
        madvise(located, FIRST_FRAME_IDS * sizeof(uint64_t), MADV_DONTNEED);
    atomic_store(&used_slots, 0);
    atomic_store(&next_id, 1);
}

// ---- The stacks file ----------------------------------------------------------------------
/* The stacks file is created with its header when the run directory is; lines are appended
 * with O_APPEND, one write each (atomic against other appenders). Opened per line: new stacks
 * are rare next to records, and holding no descriptor leaves nothing for a daemon to close. */
void memtrack_create_stacks_file(void) {
    static const char header[] = "memtrack/2 stacks\n";
    int error = memtrack_write_record_file("stacks", header, sizeof header - 1);
    if (error) memtrack_note_failure("creating the stacks file", error, NULL);
}



/* Stack `id` from the stacks file (directory: the run directory). Returns 1 if found. */
int memtrack_stacks_read_line(int directory, uint64_t id, struct memtrack_stack *stack) {
    int fd = memtrack_sys_openat(directory, "stacks", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) return 0;
    char key[24], *k = memtrack_put_decimal(key, key + sizeof key - 2, id);
    *k++ = ' ';
    *k = 0;
    size_t key_length = (size_t)(k - key);
    static const size_t window = 16384;   /* longer than any line */
    char text[16384 + 1];
    size_t kept = 0;
    int found = 0, at_line_start = 1;
    for (;;) {
        ssize_t n = memtrack_sys_read(fd, text + kept, window - kept);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t length = kept + (size_t)n;
        text[length] = 0;
        size_t start = 0;   /* the current line */
        for (size_t i = 0; i < length; i++) {
            if (text[i] != '\n') continue;
            if (at_line_start && i - start > key_length && !memcmp(text + start, key, key_length)) {
                text[i] = 0;
                memtrack_parse_stack(text + start + key_length, stack);
                found = 1;
                break;
            }
            start = i + 1;
            at_line_start = 1;
        }
        if (found) break;
        kept = length - start;   /* a line cut by the window: keep it for the next read */
        if (kept >= window) { kept = 0; at_line_start = 0; }
        else memmove(text, text + start, kept);
    }
    memtrack_sys_close(fd);
    return found;
}
