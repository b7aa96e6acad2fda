/* records.c: formatting and writing record files.
 *
 * Every record is formatted into a buffer on the stack and written with one write(2): no
 * stdio (it allocates and is not signal-safe). File operations go through syscall(2) rather
 * than the libc wrappers so that none of them is a pthread cancellation point: a thread
 * cancelled inside malloc must not die holding a lock. A block record is a symlink whose
 * target holds its fields (format 2): one symlinkat to create, one unlinkat to remove, and no
 * data page. No fsync: the records must survive the process, not the machine.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <linux/futex.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

atomic_int memtrack_run_directory = -1;
char memtrack_run_name[64];
uint64_t memtrack_start_milliseconds;
atomic_uint_fast64_t memtrack_sequence;
atomic_uint_fast64_t memtrack_unrecorded_blocks, memtrack_unremoved_records, memtrack_unrecorded_events;

static const char *const via_names[] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "free", "cfree",
};
const char *memtrack_via_name(int via) { return via_names[via]; }

// ---- System calls that are never cancellation points ------------------------------------
static int raw_openat(int directory, const char *name, int flags, int mode) {
    return (int)syscall(SYS_openat, directory, name, flags, mode);
}
static int raw_close(int fd) { return (int)syscall(SYS_close, fd); }
static int raw_unlinkat(int directory, const char *name) {
    return (int)syscall(SYS_unlinkat, directory, name, 0);
}
static ssize_t raw_write_all(int fd, const char *text, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t n = syscall(SYS_write, fd, text + done, length - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -1 : (ssize_t)done;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

// ---- Small things ------------------------------------------------------------------------
void memtrack_say(const char *text) {
    raw_write_all(2, text, strlen(text));
}

uint32_t memtrack_milliseconds_now(void) {
    struct timespec now;
    /* The coarse clock is read from the vDSO without a system call; its few-ms resolution is
     * far finer than any settle time worth using. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    return (uint32_t)(ms - memtrack_start_milliseconds);
}

static MEMTRACK_THREAD_LOCAL int32_t cached_thread_id;
int32_t memtrack_thread_id(void) {
    if (MEMTRACK_UNLIKELY(!cached_thread_id)) cached_thread_id = (int32_t)syscall(SYS_gettid);
    return cached_thread_id;
}
void memtrack_forget_thread_id(void) { cached_thread_id = 0; }

/* A lock word holds its owner's thread id, plus LOCK_WAITERS when a thread sleeps on it.
 * Critical sections are usually a few hundred nanoseconds, so a thread spins briefly; but a
 * writer may hold a shard for a file write, which takes a millisecond on a slow disk, so after
 * that a thread sleeps in futex_wait instead of burning the core the writer needs. */
#define LOCK_WAITERS 0x40000000   /* above any thread id: pid_max is at most 2^22 */
#define LOCK_SPINS 100

static void futex_wait(memtrack_lock *lock, int value) {
    syscall(SYS_futex, lock, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

void memtrack_lock_acquire(memtrack_lock *lock) {
    int me = memtrack_thread_id();
    for (int spins = 0; spins < LOCK_SPINS; spins++) {
        int free_value = 0;
        if (atomic_load_explicit(lock, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(lock, &free_value, me, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        __builtin_ia32_pause();
    }
    for (;;) {
        int value = atomic_load_explicit(lock, memory_order_relaxed);
        if (value == 0) {
            /* Others may still sleep on it: keep the flag so our release wakes one. */
            if (atomic_compare_exchange_weak_explicit(lock, &value, me | LOCK_WAITERS,
                                                      memory_order_acquire, memory_order_relaxed))
                return;
            continue;
        }
        if (!(value & LOCK_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(lock, &value, value | LOCK_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        futex_wait(lock, value | LOCK_WAITERS);
    }
}

void memtrack_lock_release(memtrack_lock *lock) {
    if (atomic_exchange_explicit(lock, 0, memory_order_release) & LOCK_WAITERS)
        syscall(SYS_futex, lock, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int memtrack_lock_try_for_signal(memtrack_lock *lock, int attempts) {
    int me = memtrack_thread_id();
    for (; attempts != 0; attempts--) {
        int owner = atomic_load(lock);
        if ((owner & ~LOCK_WAITERS) == me) return 0;   /* the interrupted code holds it */
        int free_value = 0;
        if (owner == 0 && atomic_compare_exchange_weak(lock, &free_value, me)) return 1;
        if (owner & LOCK_WAITERS) {
            /* Take it with the flag kept, so the release still wakes the sleepers. */
            free_value = 0;
            if (atomic_load(lock) == 0 && atomic_compare_exchange_weak(lock, &free_value, me | LOCK_WAITERS)) return 1;
        }
        sched_yield();   /* another thread holds it and will let go */
    }
    return 0;
}

char *memtrack_put_text(char *out, const char *end, const char *text) {
    while (*text && out < end) *out++ = *text++;
    return out;
}

char *memtrack_put_decimal(char *out, const char *end, uint64_t value) {
    char digits[20];
    int count = 0;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (count && out < end) *out++ = digits[--count];
    return out;
}

char *memtrack_put_hex(char *out, const char *end, uintptr_t value) {
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    int count = 0;
    do { digits[count++] = hex[value & 15]; value >>= 4; } while (value);
    out = memtrack_put_text(out, end, "0x");
    while (count && out < end) *out++ = digits[--count];
    return out;
}

char *memtrack_put_stack(char *out, const char *end, const struct memtrack_stack *stack) {
    for (uint32_t i = 0; i < stack->depth; i++) {
        if (i) out = memtrack_put_text(out, end, ",");
        out = memtrack_put_hex(out, end, stack->frames[i]);
    }
    return out;
}

/* Escapes a value that runs to the end of its line (README: \\ \n \t \xHH). */
static char *put_escaped(char *out, const char *end, const char *text, size_t length) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < length && out + 4 < end; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\\') { *out++ = '\\'; *out++ = '\\'; }
        else if (c == '\n') { *out++ = '\\'; *out++ = 'n'; }
        else if (c == '\t') { *out++ = '\\'; *out++ = 't'; }
        else if (c < 0x20 || c == 0x7f) { *out++ = '\\'; *out++ = 'x'; *out++ = hex[c >> 4]; *out++ = hex[c & 15]; }
        else *out++ = (char)c;
    }
    return out;
}

// ---- Failures ----------------------------------------------------------------------------
static atomic_int warned;
static char first_error[160];

void memtrack_note_failure(const char *operation, int error_number, atomic_uint_fast64_t *counter) {
    if (counter) atomic_fetch_add(counter, 1);
    if (atomic_exchange(&warned, 1)) return;
    const char *description = strerrordesc_np(error_number);   /* static text: no allocation */
    char *out = first_error, *end = first_error + sizeof first_error - 1;
    out = memtrack_put_text(out, end, operation);
    out = memtrack_put_text(out, end, ": ");
    out = memtrack_put_text(out, end, description ? description : "unknown error");
    *out = 0;
    char line[320];
    out = line;
    end = line + sizeof line - 1;
    out = memtrack_put_text(out, end, "memtrack: warning: ");
    out = memtrack_put_text(out, end, first_error);
    out = memtrack_put_text(out, end, "; the leak record is incomplete from here on\n");
    raw_write_all(2, line, (size_t)(out - line));
}

// ---- Block files -------------------------------------------------------------------------
static char *put_block_name(char *out, const char *end, uintptr_t address) {
    out = memtrack_put_hex(out, end, address);
    return memtrack_put_text(out, end, ".mem");
}

// ---- Our descriptors, checked before use ---------------------------------------------------
/* A program may close every descriptor (a daemon does) and open its own files, which then get
 * our numbers. Before a descriptor of ours is used it is checked to still be the file we opened
 * (one fstat); the run directory is opened again by its path when it is not. */
struct identity { dev_t device; ino_t inode; };
static struct identity run_identity, status_identity;
static char run_path[4096];

static int identify(int fd, struct identity *identity) {
    struct stat status;
    if (fd < 0 || syscall(SYS_fstat, fd, &status) != 0) return -1;
    identity->device = status.st_dev;
    identity->inode = status.st_ino;
    return 0;
}
static int is_same(int fd, const struct identity *expected) {
    struct identity now;
    return identify(fd, &now) == 0 && now.device == expected->device && now.inode == expected->inode;
}

void memtrack_remember_run_directory(int fd) {
    char link[32], *out = link, *end = link + sizeof link - 1;
    out = memtrack_put_text(out, end, "/proc/self/fd/");
    out = memtrack_put_decimal(out, end, (uint64_t)fd);
    *out = 0;
    ssize_t length = syscall(SYS_readlink, link, run_path, sizeof run_path - 1);
    run_path[length > 0 ? length : 0] = 0;
    if (identify(fd, &run_identity) != 0) run_path[0] = 0;
}

/* Whether fd is still the run directory we opened (for closing it in a forked child). */
int memtrack_is_run_directory(int fd) { return is_same(fd, &run_identity); }

static int run_directory(void) {
    int directory = atomic_load(&memtrack_run_directory);
    if (directory < 0 || is_same(directory, &run_identity)) return directory;
    if (!run_path[0]) return -1;
    int fresh = raw_openat(AT_FDCWD, run_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fresh < 0) return -1;
    if (!is_same(fresh, &run_identity)) { raw_close(fresh); errno = ENOENT; return -1; }
    int high = (int)syscall(SYS_fcntl, fresh, F_DUPFD_CLOEXEC, 512);
    if (high >= 0) { raw_close(fresh); fresh = high; }
    /* The old number is the program's now: never close it. */
    if (!atomic_compare_exchange_strong(&memtrack_run_directory, &directory, fresh)) {
        raw_close(fresh);
        return directory;
    }
    return fresh;
}

/* The fields every block and bad-free line has, in the order README gives. */
static char *put_event_fields(char *out, const char *end, uint64_t sequence, int32_t thread,
                              uint32_t milliseconds, int via, const struct memtrack_stack *stack) {
    out = memtrack_put_text(out, end, " seq=");
    out = memtrack_put_decimal(out, end, sequence);
    out = memtrack_put_text(out, end, " thread=");
    out = memtrack_put_decimal(out, end, (uint64_t)thread);
    out = memtrack_put_text(out, end, " ms=");
    out = memtrack_put_decimal(out, end, milliseconds);
    out = memtrack_put_text(out, end, " via=");
    out = memtrack_put_text(out, end, memtrack_via_name(via));
    out = memtrack_put_text(out, end, " stack=");
    return memtrack_put_stack(out, end, stack);
}

/* Creates (or replaces) a record file with one write. Returns 0 or an errno value. */
static int write_file(const char *name, const char *text, size_t length) {
    int directory = run_directory();
    if (directory < 0) return errno ? errno : EBADF;
    int fd = raw_openat(directory, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    ssize_t written = raw_write_all(fd, text, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    raw_close(fd);
    if (error) raw_unlinkat(directory, name);   /* a cut-short record would read as malformed */
    return error;
}

// ---- Block records, version 2: one symlink each ------------------------------------------
/* The letter a block record's v= field gives each entry point (README, record format 2). */
static const char via_letters[] = "mcrapAMvP";

/* Outside a writer pass (or a flush) the run directory is checked (one fstat) before each use;
 * inside one it was checked once at the start of the pass. A number the program reused for a
 * file between the check and a use only makes symlinkat or unlinkat fail with ENOTDIR, and is
 * then checked again. */
static MEMTRACK_THREAD_LOCAL int directory_trusted;

int memtrack_begin_trusted_pass(void) {
    int previous = directory_trusted;
    directory_trusted = 0;
    directory_trusted = run_directory() >= 0;
    return previous;
}
void memtrack_end_trusted_pass(int previous) { directory_trusted = previous; }

static int record_directory(void) {
    if (directory_trusted) return atomic_load_explicit(&memtrack_run_directory, memory_order_relaxed);
    return run_directory();
}
static int is_stale_directory_error(int error) { return error == EBADF || error == ENOTDIR; }

/* `2 s=SIZE q=SEQ t=THREAD m=MS v=LETTER k=STACKID`: about 35 bytes, at most 88. Targets up
 * to 127 bytes live inside a tmpfs inode, up to 59 inside an ext4 one: no data page. */
static size_t format_target(char *target, const char *end, const struct memtrack_record *record) {
    char *out = target;
    out = memtrack_put_text(out, end, "2 s=");
    out = memtrack_put_decimal(out, end, record->size);
    out = memtrack_put_text(out, end, " q=");
    out = memtrack_put_decimal(out, end, record->sequence);
    out = memtrack_put_text(out, end, " t=");
    out = memtrack_put_decimal(out, end, (uint64_t)record->thread);
    out = memtrack_put_text(out, end, " m=");
    out = memtrack_put_decimal(out, end, record->milliseconds);
    out = memtrack_put_text(out, end, " v=");
    if (out < end) *out++ = via_letters[record->via < sizeof via_letters - 1 ? record->via : 0];
    out = memtrack_put_text(out, end, " k=");
    out = memtrack_put_decimal(out, end, record->stack_id);
    *out = 0;
    return (size_t)(out - target);
}

int memtrack_write_record(const struct memtrack_record *record) {
    char name[32], target[128];
    *put_block_name(name, name + sizeof name - 1, record->address) = 0;
    format_target(target, target + sizeof target - 1, record);
    int directory = record_directory(), error = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (directory < 0) { error = errno ? errno : EBADF; break; }
        if (syscall(SYS_symlinkat, target, directory, name) == 0) { error = 0; break; }
        error = errno;
        if (error == EEXIST) raw_unlinkat(directory, name);   /* a stale record at this address */
        else if (is_stale_directory_error(error)) directory = run_directory();
        else break;
    }
    if (error) memtrack_note_failure("writing a block record", error, &memtrack_unrecorded_blocks);
    return error;
}

void memtrack_make_record(struct memtrack_record *record, const struct memtrack_block *block, uint32_t stack_id) {
    record->address = block->address;
    record->size = block->size;
    record->sequence = block->sequence;
    record->milliseconds = block->milliseconds;
    record->thread = block->thread;
    record->via = block->via;
    record->stack_id = stack_id;
}

int memtrack_write_block(const struct memtrack_block *block) {
    int error;
    uint32_t stack_id = memtrack_stack_id(&block->stack, &error);
    if (!stack_id) {
        memtrack_note_failure("writing a stack", error ? error : EIO, &memtrack_unrecorded_blocks);
        return error ? error : EIO;
    }
    struct memtrack_record record;
    memtrack_make_record(&record, block, stack_id);
    return memtrack_write_record(&record);
}

/* The stacks file is created with its header when the run directory is; lines are appended
 * with O_APPEND, one write each (atomic against other appenders). Opened per line: new stacks
 * are rare next to records, and holding no descriptor leaves nothing for a daemon to close. */
void memtrack_create_stacks_file(void) {
    static const char header[] = "memtrack/2 stacks\n";
    int error = write_file("stacks", header, sizeof header - 1);
    if (error) memtrack_note_failure("creating the stacks file", error, NULL);
}

int memtrack_append_stacks_file(const char *line, size_t length) {
    int directory = record_directory(), error = EBADF;
    for (int attempt = 0; attempt < 2 && directory >= 0; attempt++) {
        int fd = raw_openat(directory, "stacks", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) {
            error = errno;
            if (is_stale_directory_error(error)) { directory = run_directory(); continue; }
            return error;
        }
        ssize_t written = raw_write_all(fd, line, length);
        error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
        raw_close(fd);
        return error;
    }
    return error;
}

void memtrack_remove_block_file(uintptr_t address) {
    if (atomic_load(&memtrack_run_directory) < 0) return;
    int directory = record_directory();
    char name[32];
    *put_block_name(name, name + sizeof name - 1, address) = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (directory < 0) { memtrack_note_failure("removing a block record", EBADF, &memtrack_unremoved_records); return; }
        /* ENOENT is expected and harmless: a block inherited across fork (its file is in the
         * parent's record) or one whose record could not be written. The shadow index, not the
         * file, decides whether a free is legitimate. */
        if (raw_unlinkat(directory, name) == 0 || errno == ENOENT) return;
        if (!is_stale_directory_error(errno)) break;
        directory = run_directory();
    }
    memtrack_note_failure("removing a block record", errno, &memtrack_unremoved_records);
}

// ---- Bad frees ---------------------------------------------------------------------------
void memtrack_write_bad_free(const struct memtrack_bad_free *event) {
    char line[256 + 3 * MEMTRACK_MAX_DEPTH * 20];
    char *out = line, *end = line + sizeof line - 1;
    out = memtrack_put_text(out, end, event->double_free ? "memtrack/1 double-free" : "memtrack/1 invalid-free");
    out = memtrack_put_text(out, end, " address=");
    out = memtrack_put_hex(out, end, event->address);
    out = put_event_fields(out, end, event->sequence, event->thread, event->milliseconds, event->via, &event->stack);
    if (event->size) {
        out = memtrack_put_text(out, end, " size=");
        out = memtrack_put_decimal(out, end, event->size);
    }
    if (event->alloc_stack.depth) {
        out = memtrack_put_text(out, end, " alloc-stack=");
        out = memtrack_put_stack(out, end, &event->alloc_stack);
    }
    if (event->free_stack.depth) {
        out = memtrack_put_text(out, end, " free-stack=");
        out = memtrack_put_stack(out, end, &event->free_stack);
    }
    *out++ = '\n';

    char name[48];
    char *n = name, *name_end = name + sizeof name - 1;
    n = memtrack_put_text(n, name_end, "bad-");
    n = memtrack_put_decimal(n, name_end, event->sequence);
    n = memtrack_put_text(n, name_end, ".free");
    *n = 0;
    int error = write_file(name, line, (size_t)(out - line));
    if (error) memtrack_note_failure("writing a bad-free record", error, &memtrack_unrecorded_events);

    /* The one line on stderr that says what happened and where to look. */
    char message[256];
    char *m = message, *message_end = message + sizeof message - 1;
    m = memtrack_put_text(m, message_end, event->double_free ? "memtrack: double free of " : "memtrack: invalid free of ");
    m = memtrack_put_hex(m, message_end, event->address);
    m = memtrack_put_text(m, message_end, " from ");
    m = memtrack_put_hex(m, message_end, event->stack.depth ? event->stack.frames[0] : 0);
    m = memtrack_put_text(m, message_end, " (not passed to free; recorded as ");
    m = memtrack_put_text(m, message_end, memtrack_run_name);
    m = memtrack_put_text(m, message_end, "/");
    m = memtrack_put_text(m, message_end, name);
    m = memtrack_put_text(m, message_end, ")\n");
    raw_write_all(2, message, (size_t)(m - message));
}

// ---- process, status and modules --------------------------------------------------------
static char *put_key(char *out, const char *end, const char *key, const char *value, size_t length) {
    out = memtrack_put_text(out, end, key);
    out = memtrack_put_text(out, end, " ");
    out = put_escaped(out, end, value, length);
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
    int fd = raw_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return 0;
    size_t length = 0;
    while (length < capacity) {
        ssize_t n = syscall(SYS_read, fd, buffer + length, capacity - length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        length += (size_t)n;
    }
    raw_close(fd);
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
    int error = write_file("process", text, (size_t)(out - text));
    if (error) memtrack_note_failure("writing the process record", error, NULL);
}

/* The status file stays open from the start, so that the last word can be written even when
 * the program has used up its file descriptors. */
static int status_fd = -1;

void memtrack_open_status(void) {
    /* A forked child's is the parent's; unless the program has given its number to a file. */
    if (status_fd >= 0 && is_same(status_fd, &status_identity)) syscall(SYS_close, status_fd);
    status_fd = -1;
    int directory = run_directory();
    if (directory < 0) return;
    int fd = raw_openat(directory, "status", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) { memtrack_note_failure("creating the status record", errno, NULL); return; }
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 512);   /* out of the numbers a program expects to get */
    if (high >= 0) { raw_close(fd); fd = high; }
    if (identify(fd, &status_identity) != 0) { raw_close(fd); return; }
    status_fd = fd;
}

void memtrack_write_status(const char *state, int value, const char *exec_path) {
    char text[1024 + 4096];
    char *out = text, *end = text + sizeof text - 1;
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
    out = put_key_number(out, end, "unrecorded-events", atomic_load(&memtrack_unrecorded_events));
    out = put_key_number(out, end, "writer-records", atomic_load(&memtrack_writer_records));
    out = put_key_number(out, end, "program-records", atomic_load(&memtrack_program_records));
    out = put_key_number(out, end, "program-removals", atomic_load(&memtrack_program_removals));
    out = put_key_number(out, end, "backlog-peak", atomic_load(&memtrack_backlog_peak));
    out = put_key_number(out, end, "backlog-budget-bytes", memtrack_config.backlog_bytes);
    if (atomic_load(&warned) && first_error[0]) out = put_key(out, end, "error", first_error, strlen(first_error));
    size_t length = (size_t)(out - text);
    if (status_fd >= 0 && !is_same(status_fd, &status_identity)) status_fd = -1;   /* closed by the program */
    if (status_fd < 0) { write_file("status", text, length); return; }
    if (syscall(SYS_pwrite64, status_fd, text, length, 0) == (long)length)
        syscall(SYS_ftruncate, status_fd, length);
}

// ---- The module map ------------------------------------------------------------------------
/* Every executable segment ever seen, so an address recorded before a dlclose still finds its
 * library. 1024 segments covers programs with hundreds of libraries. */
#define MAX_SEGMENTS 1024
struct segment { uintptr_t base, start, end; uint64_t path_hash; };
static struct segment segments[MAX_SEGMENTS];
static int segment_count, segments_written;
static unsigned long long last_adds = ~0ull, last_subs = ~0ull;
static memtrack_lock modules_lock;
static char modules_text[128 * 1024];
static size_t modules_length;

static uint64_t hash_text(const char *text) {
    uint64_t hash = 1469598103934665603ull;
    while (*text) hash = (hash ^ (unsigned char)*text++) * 1099511628211ull;
    return hash;
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
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || !(header->p_flags & PF_X)) continue;
        uintptr_t start = info->dlpi_addr + header->p_vaddr, end = start + header->p_memsz;
        int known = 0;
        for (int j = 0; j < segment_count && !known; j++)
            known = segments[j].start == start && segments[j].end == end && segments[j].path_hash == hash;
        if (known || segment_count == MAX_SEGMENTS) continue;
        segments[segment_count++] = (struct segment){info->dlpi_addr, start, end, hash};
        char *out = modules_text + modules_length, *limit = modules_text + sizeof modules_text - 1;
        out = memtrack_put_text(out, limit, "module seq=");
        /* The first snapshot covers what was loaded before anything was allocated. */
        out = memtrack_put_decimal(out, limit, segments_written ? atomic_load(&memtrack_sequence) : 0);
        out = memtrack_put_text(out, limit, " base=");
        out = memtrack_put_hex(out, limit, info->dlpi_addr);
        out = memtrack_put_text(out, limit, " start=");
        out = memtrack_put_hex(out, limit, start);
        out = memtrack_put_text(out, limit, " end=");
        out = memtrack_put_hex(out, limit, end);
        out = memtrack_put_text(out, limit, " path=");
        out = put_escaped(out, limit, path, strlen(path));
        out = memtrack_put_text(out, limit, "\n");
        if (out < limit) modules_length = (size_t)(out - modules_text);
    }
    return 0;
}

/* fork: the writer thread may hold modules_lock (it updates the map every tick); a child
 * forked then would wait for it forever in begin_record. */
void memtrack_modules_fork_prepare(void) { memtrack_lock_acquire(&modules_lock); }
void memtrack_modules_fork_parent(void) { memtrack_lock_release(&modules_lock); }
void memtrack_modules_fork_child(void) { memtrack_lock_release(&modules_lock); }

/* Brings the modules file up to date. Cheap when nothing was loaded or unloaded since the last
 * call: dl_iterate_phdr's first callback carries the load and unload counters. */
void memtrack_write_modules(int force_rewrite, int in_signal) {
    /* In a signal handler (or _exit, which may be called from one), skip it if this very thread
     * was interrupted while updating the map. dl_iterate_phdr's lock is recursive. */
    if (in_signal) { if (!memtrack_lock_try_for_signal(&modules_lock, -1)) return; }
    else memtrack_lock_acquire(&modules_lock);
    if (!modules_length) {
        modules_length = (size_t)(memtrack_put_text(modules_text, modules_text + 64, "memtrack/1 modules\n") - modules_text);
    }
    int first = 1;
    dl_iterate_phdr(collect_segments, &first);
    if (force_rewrite || segments_written != segment_count) {
        int error = write_file("modules", modules_text, modules_length);
        if (error) memtrack_note_failure("writing the module map", error, NULL);
        segments_written = segment_count;
    }
    memtrack_lock_release(&modules_lock);
}
