/* files.c: the run directory and every file operation in it. Layer: files, on sys, lock and
 * format.
 *
 * Records are written with system calls, never stdio (it allocates and is not signal-safe),
 * and never from a descriptor in the program's table (see the file thread below). A block
 * record is a symlink whose target holds its fields: one symlinkat to create, one unlinkat to
 * remove, and no data page; other records are written whole under a temporary name and renamed
 * into place. No fsync: the records must survive the process, not the machine.
 */
#include "files.h"
#include "capabilities.h"
#include "format.h"
#include "lock.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

atomic_int memtrack_run_directory = -1;
char memtrack_run_name[64];

// ---- The run directory, held open by no one but the writer -------------------------------
/* A program may close every descriptor (a daemon does), close_range() them while another
 * thread is inside the tracker, or count the descriptors it has left. So the tracker keeps no
 * descriptor in the program's table between two uses: every record write opens the run
 * directory by its absolute path, checks it is still the directory we created (one fstat),
 * and closes it again. The writer thread is the exception: it has a descriptor table of its
 * own (unshare(CLONE_FILES), see memtrack_use_private_descriptors), which the program can neither see, close nor
 * run out of, so it keeps the directory open there. */
struct identity { dev_t device; ino_t inode; };
static struct identity run_identity;
static char run_path[4096];
static MEMTRACK_THREAD_LOCAL int private_directory = -1;   /* in this thread's own table */

static int identify(int fd, struct identity *identity) {
    struct stat status;
    if (fd < 0 || memtrack_sys_fstat(fd, &status) != 0) return -1;
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
    ssize_t length = memtrack_sys_readlinkat(AT_FDCWD, link, run_path, sizeof run_path - 1);
    run_path[length > 0 ? length : 0] = 0;
    if (identify(fd, &run_identity) != 0) run_path[0] = 0;
}

/* Opens the run directory for one use; give it back with put_run_directory. */
static int get_run_directory(void) {
    if (memtrack_private_files && private_directory >= 0) return private_directory;
    if (!run_path[0] || atomic_load(&memtrack_run_directory) < 0) { errno = EBADF; return -1; }
    int fd = memtrack_sys_openat(AT_FDCWD, run_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (!is_same(fd, &run_identity)) { memtrack_sys_close(fd); errno = ESTALE; return -1; }
    if (memtrack_private_files) private_directory = fd;
    return fd;
}

static void put_run_directory(int fd) {
    if (fd >= 0 && !(memtrack_private_files && fd == private_directory)) memtrack_sys_close(fd);
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
    int fd = memtrack_sys_openat(directory, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    ssize_t written = memtrack_sys_write_all(fd, text, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    memtrack_sys_close(fd);
    if (!error && memtrack_sys_renameat(directory, temporary, directory, name) != 0) error = errno;
    if (error) memtrack_sys_unlinkat(directory, temporary);
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
        if (memtrack_sys_symlinkat(target, directory, name) == 0) return 0;
        if (errno != EEXIST) return errno;
        memtrack_sys_unlinkat(directory, name);
    }
    return EEXIST;
}

/* One line appended with one write (O_APPEND: atomic against other appenders). Opened by name
 * each time, not kept open: a `stacks` removed under us must make the next append fail (and the
 * record say it is incomplete), not go on into an unlinked file that no reader will see. */
static int append_line(int directory, const char *name, const char *line, size_t length, int create) {
    int fd = memtrack_sys_openat(directory, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) return errno;
    ssize_t written = memtrack_sys_write_all(fd, line, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    memtrack_sys_close(fd);
    return error;
}

/* The existing file rewritten in place: no new name, inode or page. For the status when a
 * whole new file cannot be made (a full tmpfs, a directory that became unwritable), so that it
 * can still say the record is incomplete. */
static int overwrite_file(int directory, const char *name, const char *text, size_t length) {
    int fd = memtrack_sys_openat(directory, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return errno;
    ssize_t written = memtrack_sys_pwrite(fd, text, length, 0);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : ENOSPC);
    if (!error && memtrack_sys_ftruncate(fd, (off_t)length) != 0) error = errno;
    memtrack_sys_close(fd);
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
    else if (memtrack_sys_unlinkat(directory, name) < 0) error = errno;
    put_run_directory(directory);
    return error;
}

/* Creating and removing a block record needs no descriptor: a program thread does those itself,
 * on the run directory's absolute path, rather than hand them to the file thread (two context
 * switches each: the most of perl's time once its backlog budget was spent). The path was
 * read from the directory we created, which is ours and checked at start; 0 when it is too long
 * for this small buffer (then the file thread does it). */
static int record_path(char *path, size_t size, const char *name) {
    char *out = path, *end = path + size - 1;
    if (!run_path[0] || atomic_load(&memtrack_run_directory) < 0) return 0;
    out = memtrack_put_text(out, end, run_path);
    out = memtrack_put_text(out, end, "/");
    out = memtrack_put_text(out, end, name);
    if (out >= end) return 0;
    *out = 0;
    return 1;
}

static int by_path(int operation, const char *name, const char *text, int *error) {
    char path[512];
    if (operation != FILE_SYMLINK && operation != FILE_REMOVE) return 0;
    if (!record_path(path, sizeof path, name)) return 0;
    if (operation == FILE_SYMLINK) *error = make_symlink(AT_FDCWD, path, text);
    else *error = memtrack_sys_unlinkat(AT_FDCWD, path) < 0 ? errno : 0;
    return 1;
}

static int file_operation(int operation, const char *name, const char *text, size_t length) {
    if (memtrack_private_files || !atomic_load(&file_thread_running) || memtrack_lock_held_by_me(&request_lock))
        return do_file_operation(operation, name, text, length);
    int saved_errno = errno, error = 0;
    if (by_path(operation, name, text, &error)) { errno = saved_errno; return error; }
    struct file_request request = {operation, name, text, length, 0, 0};
    memtrack_lock_acquire(&request_lock);
    atomic_store(&pending_request, &request);
    atomic_fetch_add(&request_signal, 1);
    memtrack_sys_futex_wake(&request_signal, 1);
    while (!atomic_load(&request.done)) memtrack_sys_futex_wait(&request.done, 0);
    memtrack_lock_release(&request_lock);
    errno = saved_errno;
    return request.result;
}

/* The writer (writer.c) and the file thread work in descriptor tables of their own: the
 * program's close_range() cannot close theirs, they can never close one of the program's, and
 * theirs do not count against the program's RLIMIT_NOFILE numbers. The copy of the program's
 * table is closed at once (a copy of a pipe's write end would keep its reader from EOF); 0, 1
 * and 2 are filled with /dev/null so no record is ever opened under a standard number. */
void memtrack_use_private_descriptors(void) {
    if (memtrack_sys_unshare(CLONE_FILES) != 0) return;   /* then it shares, as other threads do */
    if (memtrack_sys_close_range(0, ~0u, 0) != 0)
        for (int fd = 0; fd < 65536; fd++) memtrack_sys_close(fd);
    for (int i = 0; i < 3; i++) memtrack_sys_openat(AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC, 0);
    memtrack_private_files = 1;
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
        if (now == seen) { memtrack_sys_futex_wait(&request_signal, now); continue; }
        seen = now;
        memtrack_credentials_follow();   /* a set*id call waits for this (credentials.c) */
        struct file_request *request = atomic_exchange(&pending_request, NULL);
        if (!request) continue;
        request->result = do_file_operation(request->operation, request->name, request->text, request->length);
        atomic_store(&request->done, 1);
        memtrack_sys_futex_wake(&request->done, 1);
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
    memtrack_sys_futex_wake(&request_signal, 1);
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

/* For records written in pieces (the leak check): the run directory for one use, checked as
 * above; give it back with memtrack_record_directory_done. */
int memtrack_record_directory(void) { return get_run_directory(); }
void memtrack_record_directory_done(int fd) { put_run_directory(fd); }

/* A block record's target, read without a descriptor in the program's table: in the thread's
 * own table, or by the run directory's absolute path (as by_path). Returns its length, or -1. */
ssize_t memtrack_read_record_link(const char *name, char *text, size_t size) {
    char path[512];
    if (!memtrack_private_files && record_path(path, sizeof path, name)) return memtrack_sys_readlinkat(AT_FDCWD, path, text, size);
    int directory = get_run_directory();
    if (directory < 0) return -1;
    ssize_t length = memtrack_sys_readlinkat(directory, name, text, size);
    put_run_directory(directory);
    return length;
}

/* Through the file thread, each; 0 or an errno value. */
int memtrack_write_record_file(const char *name, const char *text, size_t length) {
    return file_operation(FILE_WRITE, name, text, length);
}
int memtrack_remove_record_file(const char *name) { return file_operation(FILE_REMOVE, name, NULL, 0); }
int memtrack_symlink_record_file(const char *name, const char *target, size_t length) {
    return file_operation(FILE_SYMLINK, name, target, length);
}
int memtrack_append_record_file(const char *name, const char *line, size_t length, int create) {
    return file_operation(create ? FILE_APPEND_CREATE : FILE_APPEND, name, line, length);
}
int memtrack_overwrite_record_file(const char *name, const char *text, size_t length) {
    return file_operation(FILE_OVERWRITE, name, text, length);
}
