/* records.c: formatting and writing record files.
 *
 * Every record is formatted into a buffer on the stack and written with one write(2): no
 * stdio (it allocates and is not signal-safe). File operations go through syscall(2) rather
 * than the libc wrappers so that none of them is a pthread cancellation point: a thread
 * cancelled inside malloc must not die holding a lock. A block record is a symlink whose
 * target holds its fields (format 2): one symlinkat to create, one unlinkat to remove, and no
 * data page; other records are written whole under a temporary name and renamed into place.
 * No fsync: the records must survive the process, not the machine. Descriptors are used only
 * by the tracker's own threads, in tables of their own (see "The file thread").
 */
#include "internal.h"
#include "arch.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

atomic_int memtrack_run_directory = -1;
char memtrack_run_name[64];
uint64_t memtrack_start_milliseconds;
atomic_uint_fast64_t memtrack_sequence;
atomic_uint_fast64_t memtrack_unrecorded_blocks, memtrack_unremoved_records, memtrack_unrecorded_events;
/* Set in the writer thread, which has a descriptor table of its own (see the run directory). */
static MEMTRACK_THREAD_LOCAL int private_files;

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
/* The writer's descriptor 2 is not the program's stderr (its table is its own): it reaches the
 * program's through /proc/self/fd/2, which names the thread group leader's table. */
void memtrack_say(const char *text) {
    if (!private_files) { raw_write_all(2, text, strlen(text)); return; }
    int fd = raw_openat(AT_FDCWD, "/proc/self/fd/2", O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC, 0);
    if (fd < 0) return;
    raw_write_all(fd, text, strlen(text));
    raw_close(fd);
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
    memtrack_locks_held++;   /* first: a signal from here on waits until we let go (process.c) */
    atomic_signal_fence(memory_order_seq_cst);
    for (int spins = 0; spins < LOCK_SPINS; spins++) {
        int free_value = 0;
        if (atomic_load_explicit(lock, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(lock, &free_value, me, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        memtrack_cpu_relax();
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
    atomic_signal_fence(memory_order_seq_cst);
    /* Never below 0: a forked child lets go of locks its parent's threads took. */
    if (--memtrack_locks_held <= 0) {
        memtrack_locks_held = 0;
        atomic_signal_fence(memory_order_seq_cst);
        if (MEMTRACK_UNLIKELY(memtrack_deferred_signal_count)) memtrack_send_deferred_signals();
    }
}

int memtrack_lock_held_by_me(memtrack_lock *lock) {
    return (atomic_load_explicit(lock, memory_order_relaxed) & ~LOCK_WAITERS) == memtrack_thread_id();
}

/* attempts < 0: until the lock is free, but at most SIGNAL_LOCK_PATIENCE_NS. A handler at exit
 * or a fatal signal must not outlive the program by waiting forever: a holder may itself be
 * stuck (stopped, or waiting for this thread), and untraced the program would have ended. */
#define SIGNAL_LOCK_PATIENCE_NS 2000000000ll
static long long monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);   /* async-signal-safe, through the vDSO */
    return now.tv_sec * 1000000000ll + now.tv_nsec;
}

int memtrack_lock_try_for_signal(memtrack_lock *lock, int attempts) {
    int me = memtrack_thread_id();
    long long deadline = attempts < 0 ? monotonic_ns() + SIGNAL_LOCK_PATIENCE_NS : 0;
    for (unsigned tries = 1; attempts != 0; attempts -= attempts > 0, tries++) {
        if (deadline && tries % 64 == 0 && monotonic_ns() > deadline) return 0;
        int owner = atomic_load(lock);
        if ((owner & ~LOCK_WAITERS) == me) return 0;   /* the interrupted code holds it */
        int free_value = 0;
        memtrack_locks_held++;   /* as in memtrack_lock_acquire; undone if not taken */
        atomic_signal_fence(memory_order_seq_cst);
        if (owner == 0 && atomic_compare_exchange_weak(lock, &free_value, me)) return 1;
        if (owner & LOCK_WAITERS) {
            /* Take it with the flag kept, so the release still wakes the sleepers. */
            free_value = 0;
            if (atomic_load(lock) == 0 && atomic_compare_exchange_weak(lock, &free_value, me | LOCK_WAITERS)) return 1;
        }
        if (--memtrack_locks_held <= 0) {
            memtrack_locks_held = 0;
            atomic_signal_fence(memory_order_seq_cst);
            if (MEMTRACK_UNLIKELY(memtrack_deferred_signal_count)) memtrack_send_deferred_signals();
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
    /* A record of another kind that could not be written (leak-check, process, modules, status)
     * leaves the record incomplete too: it counts as an unrecorded event, so that `status` says
     * so (memdir reads incompleteness from these counters). */
    atomic_fetch_add(counter ? counter : &memtrack_unrecorded_events, 1);
    if (atomic_exchange(&warned, 1)) return;
    const char *description = strerrordesc_np(error_number);   /* static text: no allocation */
    char *out = first_error, *end = first_error + sizeof first_error - 1;
    out = memtrack_put_text(out, end, operation);
    out = memtrack_put_text(out, end, ": ");
    out = memtrack_put_text(out, end, description ? description : "unknown error");
    *out = 0;
    char line[4400];
    out = line;
    end = line + sizeof line - 1;
    out = memtrack_put_text(out, end, "memtrack: warning: ");
    out = memtrack_put_text(out, end, operation);
    out = memtrack_put_text(out, end, ": ");
    out = memtrack_put_text(out, end, description ? description : "unknown error");
    out = memtrack_put_text(out, end, "; the leak record is incomplete from here on\n");
    *out = 0;
    memtrack_say(line);
}

// ---- Block files -------------------------------------------------------------------------
static char *put_block_name(char *out, const char *end, uintptr_t address) {
    out = memtrack_put_hex(out, end, address);
    return memtrack_put_text(out, end, ".mem");
}

// ---- The run directory, held open by no one but the writer -------------------------------
/* A program may close every descriptor (a daemon does), close_range() them while another
 * thread is inside the tracker, or count the descriptors it has left. So the tracker keeps no
 * descriptor in the program's table between two uses: every record write opens the run
 * directory by its absolute path, checks it is still the directory we created (one fstat),
 * and closes it again. The writer thread is the exception: it has a descriptor table of its
 * own (unshare(CLONE_FILES), see pending.c), which the program can neither see, close nor
 * run out of, so it keeps the directory open there. */
struct identity { dev_t device; ino_t inode; };
static struct identity run_identity;
static char run_path[4096];
static MEMTRACK_THREAD_LOCAL int private_directory = -1;   /* in this thread's own table */

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
    ssize_t length = syscall(SYS_readlinkat, AT_FDCWD, link, run_path, sizeof run_path - 1);
    run_path[length > 0 ? length : 0] = 0;
    if (identify(fd, &run_identity) != 0) run_path[0] = 0;
}

/* Opens the run directory for one use; give it back with put_run_directory. */
static int get_run_directory(void) {
    if (private_files && private_directory >= 0) return private_directory;
    if (!run_path[0] || atomic_load(&memtrack_run_directory) < 0) { errno = EBADF; return -1; }
    int fd = raw_openat(AT_FDCWD, run_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (!is_same(fd, &run_identity)) { raw_close(fd); errno = ESTALE; return -1; }
    if (private_files) private_directory = fd;
    return fd;
}

static void put_run_directory(int fd) {
    if (fd >= 0 && !(private_files && fd == private_directory)) raw_close(fd);
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

/* Writes a record so that it appears whole or not at all: under a temporary name that memdir
 * ignores ('.' + name + '.' + thread + '.tmp'), then renamed into place. A thread killed by
 * exit_group between the two, or a full disk, leaves at most a stray temporary file, never a
 * record cut short. Returns 0 or an errno value. */
int memtrack_write_file_atomically(int directory, const char *name, const char *text, size_t length) {
    char temporary[96], *out = temporary, *end = temporary + sizeof temporary - 1;
    out = memtrack_put_text(out, end, ".");
    out = memtrack_put_text(out, end, name);
    out = memtrack_put_text(out, end, ".");
    out = memtrack_put_decimal(out, end, (uint64_t)memtrack_thread_id());
    out = memtrack_put_text(out, end, ".tmp");
    *out = 0;
    int fd = raw_openat(directory, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    ssize_t written = raw_write_all(fd, text, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    raw_close(fd);
    if (!error && syscall(SYS_renameat, directory, temporary, directory, name) != 0) error = errno;
    if (error) raw_unlinkat(directory, temporary);
    return error;
}

// ---- The file thread ----------------------------------------------------------------------
/* Every descriptor the tracker uses lives in a table of its own. A program thread that must
 * write or remove a record (synchronous mode, a full shard, a bad free, the final flush) does
 * not open anything itself: a descriptor it opened could be closed by another program thread's
 * close_range(), the number given to the program's next open(), and then written into or
 * closed under the program. It hands the operation to the file thread, which has unshared its
 * descriptor table, and sleeps until it is done. A signal handler that interrupted its own
 * thread's hand-off, a thread running before the file thread exists (start-up, a fork child's
 * first records: one thread only) or after it could not be made does the work itself. */
enum { FILE_WRITE, FILE_REMOVE, FILE_SYMLINK, FILE_APPEND, FILE_APPEND_CREATE, FILE_OVERWRITE };
struct file_request {
    int operation;
    const char *name;
    const char *text;
    size_t length;
    int result;
    atomic_int done;   /* futex word */
};
static memtrack_lock request_lock;               /* one request at a time */
static struct file_request *_Atomic pending_request;
static atomic_int request_signal;                /* futex word the file thread sleeps on */
static atomic_int file_thread_running;

/* A block record (format 2): the target is its text. A stale record at the same address (a
 * block whose free was not seen) is replaced. */
static int make_symlink(int directory, const char *name, const char *target) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (syscall(SYS_symlinkat, target, directory, name) == 0) return 0;
        if (errno != EEXIST) return errno;
        raw_unlinkat(directory, name);
    }
    return EEXIST;
}

/* One line appended with one write (O_APPEND: atomic against other appenders). */
static int append_line(int directory, const char *name, const char *line, size_t length, int create) {
    int fd = raw_openat(directory, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) return errno;
    ssize_t written = raw_write_all(fd, line, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    raw_close(fd);
    return error;
}

/* The existing file rewritten in place: no new name, inode or page. For the status when a
 * whole new file cannot be made (a full tmpfs, a directory that became unwritable), so that it
 * can still say the record is incomplete. */
static int overwrite_file(int directory, const char *name, const char *text, size_t length) {
    int fd = raw_openat(directory, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return errno;
    ssize_t written = syscall(SYS_pwrite64, fd, text, length, 0);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    if (!error && syscall(SYS_ftruncate, fd, (off_t)length) != 0) error = errno;
    raw_close(fd);
    return error;
}

static int do_file_operation(int operation, const char *name, const char *text, size_t length) {
    int directory = get_run_directory();
    if (directory < 0) return errno ? errno : EBADF;
    int error = 0;
    if (operation == FILE_WRITE) error = memtrack_write_file_atomically(directory, name, text, length);
    else if (operation == FILE_SYMLINK) error = make_symlink(directory, name, text);
    else if (operation == FILE_APPEND || operation == FILE_APPEND_CREATE) error = append_line(directory, name, text, length, operation == FILE_APPEND_CREATE);
    else if (operation == FILE_OVERWRITE) error = overwrite_file(directory, name, text, length);
    else if (raw_unlinkat(directory, name) < 0) error = errno;
    put_run_directory(directory);
    return error;
}

/* Creating and removing a block record needs no descriptor: a program thread does those itself,
 * on the run directory's absolute path, rather than hand them to the file thread (two context
 * switches each: the most of perl's time once its backlog budget was spent). The path was
 * read from the directory we created, which is ours and checked at start; 0 when it is too long
 * for this small buffer (then the file thread does it). */
static int by_path(int operation, const char *name, const char *text, int *error) {
    char path[512], *out = path, *end = path + sizeof path - 1;
    if (operation != FILE_SYMLINK && operation != FILE_REMOVE) return 0;
    if (!run_path[0] || atomic_load(&memtrack_run_directory) < 0) return 0;
    out = memtrack_put_text(out, end, run_path);
    out = memtrack_put_text(out, end, "/");
    out = memtrack_put_text(out, end, name);
    if (out >= end) return 0;
    *out = 0;
    if (operation == FILE_SYMLINK) *error = make_symlink(AT_FDCWD, path, text);
    else *error = raw_unlinkat(AT_FDCWD, path) < 0 ? errno : 0;
    return 1;
}

static int file_operation(int operation, const char *name, const char *text, size_t length) {
    if (private_files || !atomic_load(&file_thread_running) || memtrack_lock_held_by_me(&request_lock))
        return do_file_operation(operation, name, text, length);
    int saved_errno = errno, error = 0;
    if (by_path(operation, name, text, &error)) { errno = saved_errno; return error; }
    struct file_request request = {operation, name, text, length, 0, 0};
    memtrack_lock_acquire(&request_lock);
    atomic_store(&pending_request, &request);
    atomic_fetch_add(&request_signal, 1);
    syscall(SYS_futex, &request_signal, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    while (!atomic_load(&request.done)) futex_wait(&request.done, 0);
    memtrack_lock_release(&request_lock);
    errno = saved_errno;
    return request.result;
}

/* The writer (pending.c) and the file thread work in descriptor tables of their own: the
 * program's close_range() cannot close theirs, they can never close one of the program's, and
 * theirs do not count against the program's RLIMIT_NOFILE numbers. The copy of the program's
 * table is closed at once (a copy of a pipe's write end would keep its reader from EOF); 0, 1
 * and 2 are filled with /dev/null so no record is ever opened under a standard number. */
void memtrack_use_private_descriptors(void) {
    if (syscall(SYS_unshare, CLONE_FILES) != 0) return;   /* then it shares, as other threads do */
    if (syscall(SYS_close_range, 0, ~0u, 0) != 0)
        for (int fd = 0; fd < 65536; fd++) syscall(SYS_close, fd);
    for (int i = 0; i < 3; i++) raw_openat(AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC, 0);
    private_files = 1;
}

atomic_int memtrack_file_thread;                  /* its thread id, for the leak check */
atomic_uintptr_t memtrack_file_thread_stack_address;

static void *file_thread_main(void *unused) {
    (void)unused;
    atomic_store(&memtrack_file_thread_stack_address, (uintptr_t)&unused);
    atomic_store(&memtrack_file_thread, memtrack_thread_id());
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    memtrack_busy = 1;
    memtrack_use_private_descriptors();
    for (int seen = 0;;) {
        int now = atomic_load(&request_signal);
        if (now == seen) { futex_wait(&request_signal, now); continue; }
        seen = now;
        memtrack_credentials_follow();   /* a set*id call waits for this (credentials.c) */
        struct file_request *request = atomic_exchange(&pending_request, NULL);
        if (!request) continue;
        request->result = do_file_operation(request->operation, request->name, request->text, request->length);
        atomic_store(&request->done, 1);
        syscall(SYS_futex, &request->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

void memtrack_start_file_thread(void) {
    if (atomic_load(&file_thread_running)) return;
    pthread_attr_t attributes;
    pthread_t thread;
    memtrack_busy++;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    if (pthread_create(&thread, &attributes, file_thread_main, NULL) == 0) {
        pthread_setname_np(thread, "memtrack-files");
        atomic_store(&file_thread_running, 1);
    }
    pthread_attr_destroy(&attributes);
    memtrack_busy--;
}

void memtrack_files_wake(void) {
    if (!atomic_load(&file_thread_running)) return;
    atomic_fetch_add(&request_signal, 1);
    syscall(SYS_futex, &request_signal, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* fork: no request may be in flight; the child has no file thread until it starts one. */
void memtrack_files_fork_prepare(void) { memtrack_lock_acquire(&request_lock); }
void memtrack_files_fork_parent(void) { memtrack_lock_release(&request_lock); }
void memtrack_files_fork_child(void) {
    atomic_store(&file_thread_running, 0);
    atomic_store(&memtrack_file_thread, 0);
    atomic_store(&memtrack_file_thread_stack_address, 0);
    atomic_store(&pending_request, NULL);
    memtrack_lock_release(&request_lock);
}

/* Creates (or replaces) a record file in the run directory. Returns 0 or an errno value. */
static int write_file(const char *name, const char *text, size_t length) {
    return file_operation(FILE_WRITE, name, text, length);
}

/* For records written in pieces (the leak check): the run directory for one use, checked as
 * above; give it back with memtrack_record_directory_done. */
int memtrack_record_directory(void) { return get_run_directory(); }
void memtrack_record_directory_done(int fd) { put_run_directory(fd); }

ssize_t memtrack_write_all(int fd, const char *text, size_t length) { return raw_write_all(fd, text, length); }

/* One-line records of other kinds (shm.c): through the file thread, atomically. */
int memtrack_write_record_file(const char *name, const char *text, size_t length) {
    return file_operation(FILE_WRITE, name, text, length);
}
int memtrack_remove_record_file(const char *name) { return file_operation(FILE_REMOVE, name, NULL, 0); }

// ---- Block records, version 2: one symlink each ------------------------------------------
/* The letter a block record's v= field gives each entry point, by via number (README, record
 * format 2). free and cfree never allocate a block. */
static const char via_letters[] = "mcrapAMvP??nNbB";

/* `2 s=SIZE q=SEQ t=THREAD m=MS v=LETTER k=STACKID`, then ` f=n` / ` f=a` for a block of new or
 * new[], ` l=SOURCE:LINE` for one with a memtrack.h location: about 35 bytes, at most 110.
 * Targets up to 127 bytes live inside a tmpfs inode, up to 59 inside an ext4 one: no data page. */
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
    if (record->family == MEMTRACK_FAMILY_NEW) out = memtrack_put_text(out, end, " f=n");
    if (record->family == MEMTRACK_FAMILY_ARRAY) out = memtrack_put_text(out, end, " f=a");
    if (record->source) {
        out = memtrack_put_text(out, end, " l=");
        out = memtrack_put_decimal(out, end, record->source);
        out = memtrack_put_text(out, end, ":");
        out = memtrack_put_decimal(out, end, record->source_line);
    }
    *out = 0;
    return (size_t)(out - target);
}

/* Writes the symlink: from a tracker thread in its own table, from a program thread through
 * the file thread (see file_operation). */
int memtrack_write_record(const struct memtrack_record *record) {
    char name[32], target[128];
    *put_block_name(name, name + sizeof name - 1, record->address) = 0;
    size_t length = format_target(target, target + sizeof target - 1, record);
    int error = file_operation(FILE_SYMLINK, name, target, length);
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
    record->family = block->family;
    record->stack_id = stack_id;
    /* A location whose line cannot be written is left out: the block keeps its stack. */
    record->source = block->source && memtrack_publish_source(block->source) == 0 ? block->source : 0;
    record->source_line = block->source_line;
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
    return file_operation(FILE_APPEND, "stacks", line, length);
}

/* The `sources` file (memtrack.h's locations, format 2) is created by its first line. */
int memtrack_append_sources_file(const char *line, size_t length) {
    return file_operation(FILE_APPEND_CREATE, "sources", line, length);
}

static uint64_t parse_decimal(const char **text) {
    uint64_t value = 0;
    for (; **text >= '0' && **text <= '9'; (*text)++) value = value * 10 + (uint64_t)(**text - '0');
    return value;
}

/* `0xFRAME,0xFRAME...` up to the end of the text or a space or newline. */
static void parse_stack(const char *field, struct memtrack_stack *stack) {
    uint32_t depth = 0;
    while (depth < MEMTRACK_MAX_DEPTH && field[0] == '0' && field[1] == 'x') {
        uintptr_t value = 0;
        for (field += 2;; field++) {
            char c = *field;
            int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (digit < 0) break;
            value = value * 16 + (uintptr_t)digit;
        }
        stack->frames[depth++] = value;
        if (*field != ',') break;
        field++;
    }
    stack->depth = depth;
}

/* Stack `id` from the stacks file (directory: the run directory). Returns 1 if found. */
static int read_stack_line(int directory, uint64_t id, struct memtrack_stack *stack) {
    int fd = raw_openat(directory, "stacks", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
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
        ssize_t n = syscall(SYS_read, fd, text + kept, window - kept);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t length = kept + (size_t)n;
        text[length] = 0;
        size_t start = 0;   /* the current line */
        for (size_t i = 0; i < length; i++) {
            if (text[i] != '\n') continue;
            if (at_line_start && i - start > key_length && !memcmp(text + start, key, key_length)) {
                text[i] = 0;
                parse_stack(text + start + key_length, stack);
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
    raw_close(fd);
    return found;
}

/* The one reader of block records, for a mismatch report on a settled block and for the leak
 * check. Either format: the requested size, the stack's id (format 2) and first frame, and the
 * whole stack if `stack` is not NULL (format 2: a read of the stacks file, which the leak
 * check, with the world stopped, does without). Returns 1 if the record was found with its
 * size; leaves everything alone otherwise. */
int memtrack_read_block_record(uintptr_t address, struct memtrack_record_fields *fields, struct memtrack_stack *stack) {
    int directory = get_run_directory();
    if (directory < 0) return 0;
    char name[32], text[256 + MEMTRACK_MAX_DEPTH * 20 + 2100];
    *put_block_name(name, name + sizeof name - 1, address) = 0;
    ssize_t length = -1;
    int fd = raw_openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd >= 0) {
        length = syscall(SYS_read, fd, text, sizeof text - 1);
        raw_close(fd);
    } else if (errno == ELOOP) {   /* format 2: a symlink */
        length = syscall(SYS_readlinkat, directory, name, text, sizeof text - 1);
    }
    if (length <= 0) { put_run_directory(directory); return 0; }
    text[length] = 0;
    struct memtrack_record_fields read = {0, 0, 0};
    int found = 0;
    if (text[0] == '2' && text[1] == ' ') {
        const char *field = strstr(text, " s=");
        if (field) { field += 3; read.size = parse_decimal(&field); found = 1; }
        field = strstr(text, " k=");
        if (field) {
            field += 3;
            read.stack_id = (uint32_t)parse_decimal(&field);
            read.first_frame = memtrack_stack_first_frame(read.stack_id);
            if (found && stack) read_stack_line(directory, read.stack_id, stack);
        }
    } else {
        const char *field = strstr(text, " size=");
        if (field) { field += 6; read.size = parse_decimal(&field); found = 1; }
        field = strstr(text, " stack=");
        struct memtrack_stack parsed;
        if (field) {
            parse_stack(field + 7, &parsed);
            read.first_frame = parsed.depth ? parsed.frames[0] : 0;
            if (found && stack) memtrack_copy_stack(stack, &parsed);
        }
    }
    put_run_directory(directory);
    if (found) *fields = read;
    return found;
}

/* For a block whose record waits in the writer's backlog (pending.c): its stack by id. */
int memtrack_read_stack(uint32_t id, struct memtrack_stack *stack) {
    int directory = get_run_directory();
    if (directory < 0) return 0;
    int found = read_stack_line(directory, id, stack);
    put_run_directory(directory);
    return found;
}

void memtrack_remove_block_file(uintptr_t address) {
    if (atomic_load(&memtrack_run_directory) < 0) return;
    char name[32];
    *put_block_name(name, name + sizeof name - 1, address) = 0;
    /* ENOENT is expected and harmless: a block inherited across fork (its file is in the
     * parent's record) or one whose record could not be written. The shadow index, not the
     * file, decides whether a free is legitimate. */
    int error = file_operation(FILE_REMOVE, name, NULL, 0);
    if (error && error != ENOENT) memtrack_note_failure("removing a block record", error, &memtrack_unremoved_records);
}

// ---- Bad frees ---------------------------------------------------------------------------
void memtrack_write_bad_free(const struct memtrack_bad_free *event) {
    char line[256 + 3 * MEMTRACK_MAX_DEPTH * 20];
    char *out = line, *end = line + sizeof line - 1;
    const char *kind = event->kind ? event->kind : event->double_free ? "double-free" : "invalid-free";
    out = memtrack_put_text(out, end, "memtrack/1 ");
    out = memtrack_put_text(out, end, kind);
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
    if (event->kind) {   /* the mismatches: what allocated the block, what the delete was told */
        out = memtrack_put_text(out, end, " family=");
        out = memtrack_put_text(out, end, memtrack_family_name(event->family));
        if (event->freed_size) {
            out = memtrack_put_text(out, end, " freed-size=");
            out = memtrack_put_decimal(out, end, event->freed_size);
        }
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
    m = memtrack_put_text(m, message_end, "memtrack: ");
    m = memtrack_put_text(m, message_end, event->kind ? event->kind : event->double_free ? "double free" : "invalid free");
    m = memtrack_put_text(m, message_end, " of ");
    m = memtrack_put_hex(m, message_end, event->address);
    if (event->kind) {
        m = memtrack_put_text(m, message_end, " (");
        m = memtrack_put_text(m, message_end, memtrack_family_name(event->family));
        m = memtrack_put_text(m, message_end, " block, ");
        m = memtrack_put_text(m, message_end, memtrack_via_name(event->via));
        m = memtrack_put_text(m, message_end, ")");
    }
    m = memtrack_put_text(m, message_end, " from ");
    m = memtrack_put_hex(m, message_end, event->stack.depth ? event->stack.frames[0] : 0);
    m = memtrack_put_text(m, message_end, event->kind ? " (freed as usual; recorded as " : " (not passed to free; recorded as ");
    m = memtrack_put_text(m, message_end, memtrack_run_name);
    m = memtrack_put_text(m, message_end, "/");
    m = memtrack_put_text(m, message_end, name);
    m = memtrack_put_text(m, message_end, ")\n");
    *m = 0;
    memtrack_say(message);
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
    out = put_key_number(out, end, "backlog-budget-bytes", memtrack_config.backlog_bytes);
    out = put_key_number(out, end, "settle-ms", (uint64_t)memtrack_config.settle_ms);
    out = put_key_number(out, end, "settle-backlog-ms", (uint64_t)memtrack_config.settle_backlog_ms);
    out = put_key_number(out, end, "large-backlog-blocks", MEMTRACK_LARGE_BACKLOG);
    if (atomic_load(&warned) && first_error[0]) out = put_key(out, end, "error", first_error, strlen(first_error));
    else if (extra_error) out = put_key(out, end, "error", extra_error, strlen(extra_error));
    return (size_t)(out - text);
}

static int format_and_write_status(const char *state, int value, const char *exec_path, uint64_t extra_events,
                                   const char *extra_error) {
    char text[1024 + 4096];
    size_t length = format_status(text, sizeof text, state, value, exec_path, extra_events, extra_error);
    int error = write_file("status", text, length);
    if (error) {
        /* A new status cannot be made (a full tmpfs, a directory no longer writable): count the
         * failure, then say so in the status we have, rewritten in place. */
        memtrack_note_failure("writing the status record", error, NULL);
        length = format_status(text, sizeof text, state, value, exec_path, extra_events, extra_error);
        file_operation(FILE_OVERWRITE, "status", text, length);
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
        out = put_escaped(out, limit, path, path_length);
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
    memtrack_write_modules(0, 0);
    struct stat task;
    long threads = syscall(SYS_newfstatat, AT_FDCWD, "/proc/self/task", &task, 0) == 0 ? (long)task.st_nlink - 2 : 99;
    parent_had_threads = threads > 1 + memtrack_pending_writer_exists();
}
/* The writer may hold modules_lock (it updates the map every tick); a child forked then would
 * wait for it forever in begin_record. */
void memtrack_modules_fork_prepare(void) { memtrack_lock_acquire(&modules_lock); }
void memtrack_modules_fork_parent(void) { memtrack_lock_release(&modules_lock); }
void memtrack_modules_fork_child(void) {
    if (parent_had_threads) walk_unsafe = 1;
    memtrack_lock_release(&modules_lock);
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
        int error = write_file("modules", modules_text, modules_length);
        if (error) memtrack_note_failure("writing the module map", error, NULL);
        segments_written = segment_count;
    }
    memtrack_lock_release(&modules_lock);
}

// ---- For the other record kinds (shm.c, annotations.c) ---------------------------------------
/* The run directory, checked to still be ours (see run_directory); -1 when unusable. */
char *memtrack_put_escaped(char *out, const char *end, const char *text) {
    return put_escaped(out, end, text, strlen(text));
}
