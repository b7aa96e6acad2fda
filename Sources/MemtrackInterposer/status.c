/* status.c: the process-wide records: `process` (who ran, with which settings), `status` (how
 * the record stands, rewritten as it changes) and `modules` (every executable segment ever
 * loaded). Layer: state, on the table (the status shows how the writer shared the work).
 */
#include "status.h"
#include "arch.h"
#include "failure.h"
#include "files.h"
#include "format.h"
#include "loaderwalk.h"
#include "lock.h"
#include "pending.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static char *put_key(char *out, const char *end, const char *key, const char *value, size_t length) {
    out = memtrack_put_text(out, end, key);
    out = memtrack_put_text(out, end, " ");
    out = memtrack_put_escaped_length(out, end, value, length);
    return memtrack_put_text(out, end, "\n");
}

static char *put_key_number(char *out, const char *end, const char *key, uint64_t value) {
    out = memtrack_put_text(out, end, key);
    out = memtrack_put_text(out, end, " ");
    out = memtrack_put_decimal(out, end, value);
    return memtrack_put_text(out, end, "\n");
}

/* Reads a small /proc file into buffer; returns its length. */
static size_t read_proc(const char *path, char *buffer, size_t capacity) {
    int fd = memtrack_sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return 0;
    size_t length = 0;
    while (length < capacity) {
        ssize_t n = memtrack_sys_read(fd, buffer + length, capacity - length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        length += (size_t)n;
    }
    memtrack_sys_close(fd);
    return length;
}

static char executable_path[4096];

void memtrack_write_process_file(const char *parent_run_name) {
    /* Static: 64 KiB of command line does not belong on a stack we may be borrowing. */
    static char text[80 * 1024], arguments[64 * 1024];
    char *out = text, *end = text + sizeof text - 1;
    out = memtrack_put_text(out, end, "memtrack/1 process\n");
    out = put_key_number(out, end, "pid", (uint64_t)getpid());
    out = put_key_number(out, end, "ppid", (uint64_t)getppid());
    if (parent_run_name) out = put_key(out, end, "parent", parent_run_name, strlen(parent_run_name));
    ssize_t length = readlink("/proc/self/exe", executable_path, sizeof executable_path - 1);
    executable_path[length > 0 ? length : 0] = 0;
    out = put_key(out, end, "exe", executable_path, strlen(executable_path));
    size_t argument_bytes = read_proc("/proc/self/cmdline", arguments, sizeof arguments);
    for (size_t start = 0; start < argument_bytes;) {
        size_t stop = start;
        while (stop < argument_bytes && arguments[stop]) stop++;
        out = put_key(out, end, "arg", arguments + start, stop - start);
        start = stop + 1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    out = put_key_number(out, end, "start-unix-ms", (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
    out = put_key_number(out, end, "settle-ms", (uint64_t)memtrack_config.settle_ms);
    out = put_key_number(out, end, "depth", (uint64_t)memtrack_config.depth);
    out = put_key_number(out, end, "quarantine-bytes", (uint64_t)memtrack_config.quarantine_bytes);
    out = put_key_number(out, end, "freeres", (uint64_t)memtrack_config.freeres);
    int error = memtrack_write_record_file("process", text, (size_t)(out - text));
    if (error) memtrack_note_failure("writing the process record", error, NULL);
}

/* extra_events: added to unrecorded-events in the text only (a mark written before something
 * that may make the run directory unwritable, see credentials.c). Returns the length. */
static size_t format_status(char *text, size_t capacity, const char *state, int value, const char *exec_path,
                            uint64_t extra_events, const char *extra_error) {
    char *out = text, *end = text + capacity - 1;
    out = memtrack_put_text(out, end, "memtrack/1 status\nstate ");
    out = memtrack_put_text(out, end, state);
    out = memtrack_put_text(out, end, "\n");
    if (!strcmp(state, "exit")) out = put_key_number(out, end, "code", (uint64_t)value);
    if (!strcmp(state, "signal")) {
        out = put_key_number(out, end, "signal", (uint64_t)value);
        const char *abbreviation = sigabbrev_np(value);   /* static text */
        if (abbreviation) {
            out = memtrack_put_text(out, end, "signal-name SIG");
            out = memtrack_put_text(out, end, abbreviation);
            out = memtrack_put_text(out, end, "\n");
        }
    }
    if (exec_path) out = put_key(out, end, "exec-path", exec_path, strlen(exec_path));
    out = put_key_number(out, end, "unrecorded-blocks", atomic_load(&memtrack_unrecorded_blocks));
    out = put_key_number(out, end, "unremoved-records", atomic_load(&memtrack_unremoved_records));
    out = put_key_number(out, end, "unrecorded-events", atomic_load(&memtrack_unrecorded_events) + extra_events);
    out = put_key_number(out, end, "writer-records", atomic_load(&memtrack_writer_records));
    out = put_key_number(out, end, "program-records", atomic_load(&memtrack_program_records));
    out = put_key_number(out, end, "program-removals", atomic_load(&memtrack_program_removals));
    out = put_key_number(out, end, "backlog-peak", atomic_load(&memtrack_backlog_peak));
    out = put_key_number(out, end, "backlog-peak-bytes", atomic_load(&memtrack_backlog_peak_bytes));
    out = put_key_number(out, end, "backlog-peak-slots", atomic_load(&memtrack_backlog_peak_slots));
    uint64_t inserts, steps, longest;
    memtrack_pending_probe_counts(&inserts, &steps, &longest);
    out = put_key_number(out, end, "backlog-inserts", inserts);
    out = put_key_number(out, end, "backlog-probe-steps", steps);
    out = put_key_number(out, end, "backlog-probe-max", longest);
    out = put_key_number(out, end, "backlog-budget-bytes", memtrack_config.backlog_bytes);
    out = put_key_number(out, end, "settle-ms", (uint64_t)memtrack_config.settle_ms);
    out = put_key_number(out, end, "settle-backlog-ms", (uint64_t)memtrack_config.settle_backlog_ms);
    out = put_key_number(out, end, "large-backlog-blocks", atomic_load(&memtrack_behind_blocks));
    const char *first_error = memtrack_first_error();
    if (first_error) out = put_key(out, end, "error", first_error, strlen(first_error));
    else if (extra_error) out = put_key(out, end, "error", extra_error, strlen(extra_error));
    return (size_t)(out - text);
}

static int format_and_write_status(const char *state, int value, const char *exec_path, uint64_t extra_events,
                                   const char *extra_error) {
    char text[1024 + 4096];
    size_t length = format_status(text, sizeof text, state, value, exec_path, extra_events, extra_error);
    int error = memtrack_write_record_file("status", text, length);
    if (error) {
        /* A new status cannot be made (a full tmpfs, a directory no longer writable): count the
         * failure, then say so in the status we have, rewritten in place. */
        memtrack_note_failure("writing the status record", error, NULL);
        length = format_status(text, sizeof text, state, value, exec_path, extra_events, extra_error);
        memtrack_overwrite_record_file("status", text, length);
    }
    return error;
}

void memtrack_write_status(const char *state, int value, const char *exec_path) {
    format_and_write_status(state, value, exec_path, 0, NULL);
}

/* The status as it would read if one more event were lost, with why: written before the program
 * changes its credentials; the next ordinary status replaces it if the directory is still ours. */
int memtrack_write_status_mark(const char *why) {
    return format_and_write_status("running", 0, NULL, 1, why);
}



// ---- The module map ------------------------------------------------------------------------
/* Every executable segment ever seen, so an address recorded before a dlclose still finds its
 * library. Both the segment list and the file's text live in mappings that grow (mremap) as
 * libraries come and go: a program that loads and unloads thousands of libraries keeps all of
 * them. If a mapping cannot grow, the map says so: the record counts it as incomplete. */
struct segment { uintptr_t base, start, end; uint64_t path_hash; };
static struct segment *segments;
static size_t segment_capacity;
static int segment_count, segments_written;
static unsigned long long last_adds = ~0ull, last_subs = ~0ull;
static memtrack_lock modules_lock;
static char *modules_text;
static size_t modules_capacity, modules_length;
/* In a child forked from a multi-threaded process, another thread of the parent may have held
 * the loader's lock at the fork; dl_iterate_phdr would then wait for it forever. Such a child
 * keeps the map its parent had at the fork (refreshed in the prepare handler) until it execs. */
static int walk_unsafe;

/* Makes room for `needed` bytes in a growing anonymous mapping. Returns 0 when it cannot. */
static int ensure_room(void **buffer, size_t *capacity, size_t needed) {
    if (needed <= *capacity) return 1;
    size_t grown = *capacity ? *capacity : 64 * 1024;
    while (grown < needed) grown *= 2;
    void *moved = *buffer
        ? memtrack_sys_mremap(*buffer, *capacity, grown, MREMAP_MAYMOVE, NULL)
        : memtrack_sys_mmap(NULL, grown, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (moved == MAP_FAILED) {
        memtrack_note_failure("growing the module map", errno, &memtrack_unrecorded_events);
        return 0;
    }
    *buffer = moved;
    *capacity = grown;
    return 1;
}

static uint64_t hash_text(const char *text) {
    uint64_t hash = 1469598103934665603ull;
    while (*text) hash = (hash ^ (unsigned char)*text++) * 1099511628211ull;
    return hash;
}

/* The module's GNU build-id (NT_GNU_BUILD_ID in a PT_NOTE segment, which is always inside a
 * loaded segment), as hex, so that memdir can tell a `--binary` that is not the program that ran.
 * Writes nothing when the module has none. */
static char *put_build_id(char *out, const char *end, const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_NOTE) continue;
        const unsigned char *note = (const unsigned char *)(info->dlpi_addr + header->p_vaddr);
        const unsigned char *notes_end = note + header->p_memsz;
        while (note + sizeof(ElfW(Nhdr)) <= notes_end) {
            const ElfW(Nhdr) *h = (const ElfW(Nhdr) *)note;
            const unsigned char *name = note + sizeof *h;
            const unsigned char *desc = name + ((h->n_namesz + 3) & ~3u);
            const unsigned char *next = desc + ((h->n_descsz + 3) & ~3u);
            if (next > notes_end || next <= note) break;
            if (h->n_type == NT_GNU_BUILD_ID && h->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
                h->n_descsz > 0 && h->n_descsz <= 64) {
                static const char hex[] = "0123456789abcdef";
                out = memtrack_put_text(out, end, " build-id=");
                for (unsigned j = 0; j < h->n_descsz && out + 2 < end; j++) {
                    *out++ = hex[desc[j] >> 4];
                    *out++ = hex[desc[j] & 15];
                }
                return out;
            }
            note = next;
        }
    }
    return out;
}

/* data points at a flag that is set for the first module of a walk: its load and unload
 * counters (the same in every callback) say whether anything changed since the last walk. */
static int collect_segments(struct dl_phdr_info *info, size_t size, void *data) {
    int *first = data;
    if (*first && size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        if (info->dlpi_adds == last_adds && info->dlpi_subs == last_subs) return 1;   /* nothing new */
        last_adds = info->dlpi_adds;
        last_subs = info->dlpi_subs;
    }
    *first = 0;
    const char *path = info->dlpi_name;
    if (!path || !*path) path = executable_path;           /* the main program */
    if (!*path || !strncmp(path, "linux-vdso", 10)) return 0;  /* no file to resolve against */
    uint64_t hash = hash_text(path);
    size_t path_length = strlen(path);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || !(header->p_flags & PF_X)) continue;
        uintptr_t start = info->dlpi_addr + header->p_vaddr, end = start + header->p_memsz;
        int known = 0;
        for (int j = segment_count - 1; j >= 0 && !known; j--)
            known = segments[j].start == start && segments[j].end == end && segments[j].path_hash == hash;
        if (known) continue;
        /* A line is at most its fixed fields and build-id plus the path escaped (4 bytes a byte
         * at worst). */
        size_t line_room = 320 + 4 * path_length;
        if (!ensure_room((void **)&segments, &segment_capacity, (size_t)(segment_count + 1) * sizeof *segments) ||
            !ensure_room((void **)&modules_text, &modules_capacity, modules_length + line_room))
            return 1;
        segments[segment_count++] = (struct segment){info->dlpi_addr, start, end, hash};
        char *out = modules_text + modules_length, *limit = modules_text + modules_length + line_room;
        out = memtrack_put_text(out, limit, "module seq=");
        /* The first snapshot covers what was loaded before anything was allocated. */
        out = memtrack_put_decimal(out, limit, segments_written ? atomic_load(&memtrack_sequence) : 0);
        out = memtrack_put_text(out, limit, " base=");
        out = memtrack_put_hex(out, limit, info->dlpi_addr);
        out = memtrack_put_text(out, limit, " start=");
        out = memtrack_put_hex(out, limit, start);
        out = memtrack_put_text(out, limit, " end=");
        out = memtrack_put_hex(out, limit, end);
        out = put_build_id(out, limit, info);
        out = memtrack_put_text(out, limit, " machine=" MEMTRACK_ARCH_NAME);   /* a process loads only its own */
        out = memtrack_put_text(out, limit, " path=");
        out = memtrack_put_escaped_length(out, limit, path, path_length);
        out = memtrack_put_text(out, limit, "\n");
        modules_length = (size_t)(out - modules_text);
    }
    return 0;
}

/* fork: brings the map up to date while the parent may still walk the loader's list (the other
 * threads run on, so a thread inside dlopen finishes and lets go of the loader's lock), and
 * notes whether any thread besides this one and our writer could hold that lock at the fork.
 * /proc/self/task has one link per thread plus two. */
static int parent_had_threads;
void memtrack_modules_fork_refresh(void) {
    memtrack_refresh_modules_bounded("updating the module map at fork");
    struct stat task;
    long threads = memtrack_sys_fstatat(AT_FDCWD, "/proc/self/task", &task, 0) == 0 ? (long)task.st_nlink - 2 : 99;
    parent_had_threads = threads > 1 + memtrack_pending_writer_exists();
}
/* The writer may hold modules_lock (it updates the map every tick); a child forked then would
 * wait for it forever in begin_record. A writer stuck in a walk of the loader's list holds it
 * for good (loaderwalk.c): then, or after 2 s, the fork goes on without it, and the child lets
 * go of it as of every lock its parent's threads held. Per thread: two threads may fork at once. */
static MEMTRACK_THREAD_LOCAL int fork_holds_modules;
void memtrack_modules_fork_prepare(void) {
    fork_holds_modules = !memtrack_loader_stuck() && memtrack_lock_try_for_signal(&modules_lock, -1);
}
void memtrack_modules_fork_parent(void) {
    if (fork_holds_modules) memtrack_lock_release(&modules_lock);
    fork_holds_modules = 0;
}
void memtrack_modules_fork_child(void) {
    if (parent_had_threads) walk_unsafe = 1;
    if (fork_holds_modules) memtrack_lock_release(&modules_lock);
    else atomic_store(&modules_lock, 0);   /* a parent's thread held it; this thread counts no hold */
    fork_holds_modules = 0;
}
/* On the writer, or on the asking thread (loaderwalk.c), which may be a signal handler that
 * interrupted its own update of the map: then it does not wait for the map's lock. */
static void refresh_modules(void *unused) {
    (void)unused;
    memtrack_write_modules(0, memtrack_thread_id() != atomic_load(&memtrack_writer_thread));
}

/* The map brought up to date by the writer, waiting at most 2 s (loaderwalk.c): at a fatal
 * signal, at exit and at fork, where the loader's lock may never come free. Without a writer
 * (MEM_SETTLE_MS=0) the walk is made here. Returns 0 when it did not end in time (noted as
 * `what`). */
int memtrack_refresh_modules_bounded(const char *what) {
    return memtrack_loader_walk_bounded(refresh_modules, NULL, what);
}

/* A child forked in a signal handler (process.c): prepare did not run, and the tracker's own
 * threads may have held the loader's lock. */
void memtrack_modules_fork_child_unprepared(void) {
    parent_had_threads = 1;
    memtrack_modules_fork_child();
}

/* Brings the modules file up to date. Cheap when nothing was loaded or unloaded since the last
 * call: dl_iterate_phdr's first callback carries the load and unload counters. */
void memtrack_write_modules(int force_rewrite, int in_signal) {
    /* In a signal handler (or _exit, which may be called from one), skip it if this very thread
     * was interrupted while updating the map. dl_iterate_phdr's lock is recursive. */
    if (in_signal) { if (!memtrack_lock_try_for_signal(&modules_lock, -1)) return; }
    else memtrack_lock_acquire(&modules_lock);
    if (!modules_length && ensure_room((void **)&modules_text, &modules_capacity, 64)) {
        modules_length = (size_t)(memtrack_put_text(modules_text, modules_text + 64, "memtrack/1 modules\n") - modules_text);
    }
    int first = 1;
    if (!walk_unsafe && modules_length) dl_iterate_phdr(collect_segments, &first);
    if (modules_length && (force_rewrite || segments_written != segment_count)) {
        int error = memtrack_write_record_file("modules", modules_text, modules_length);
        if (error) memtrack_note_failure("writing the module map", error, NULL);
        segments_written = segment_count;
    }
    memtrack_lock_release(&modules_lock);
}
