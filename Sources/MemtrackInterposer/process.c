/* process.c: process bookkeeping. Every process gets its own run directory under MEM_DIR
 * (LD_PRELOAD is inherited, so children and exec'd images load us too), and the record must
 * be complete however the process ends:
 *   exit()          on_exit handler: freeres, leak check, final write-out, status "exit"
 *   _exit/_Exit     wrapped: `leak-check` says "skipped _exit", final write-out, status "exit"
 *   exec*           wrapped: write-out, status "exec"; the new image starts its own record
 *   fork            pthread_atfork: the child starts a record of its own
 *   fatal signals   our handler writes out, then hands on to the program's handler
 *   SIGKILL         nothing can run: at most the last settle window is lost
 *
 * Layer: process, on the writer, the leak check and everything below.
 */
#include "process.h"
#include "annotations.h"
#include "counters.h"
#include "credentials.h"
#include "failure.h"
#include "files.h"
#include "format.h"
#include "leakcheck.h"
#include "loaderwalk.h"
#include "lock.h"
#include "pending.h"
#include "quarantine.h"
#include "sources.h"
#include "stacks.h"
#include "status.h"
#include "sys.h"
#include "writer.h"
#include "stopworld.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>

/* MEM_DIR as first opened: its absolute path and identity. A forked child (which may have
 * changed directory) opens that path again and checks it is still the same directory. */
static char mem_path[4096];
static dev_t mem_device;
static ino_t mem_inode;
static atomic_int finished;             /* the final record has been written */

// ---- The run directory ----------------------------------------------------------------------
/* MEM_DIR must be safe to write into: in a shared sticky directory (/tmp) another user could
 * plant a symlink or a directory of their own under the name, and a run as root would then
 * write wherever it points. So MEM_DIR is opened without following a symlink and must belong
 * to us or to root, unless MEM_ALLOW_UNSAFE_DIR=1. One line on stderr says what was refused
 * (or allowed). */
static int open_mem_directory(void) {
    const char *path = getenv("MEM_DIR");
    if (!path || !*path) path = "mem";
    const char *override = getenv("MEM_ALLOW_UNSAFE_DIR");
    int allow_unsafe = override && override[0] == '1' && !override[1];
    int made = mkdir(path, 0700) == 0 ? 0 : errno;   /* EEXIST is the usual case */
    int fd = (int)memtrack_sys_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    const char *refusal = NULL;
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
        struct stat link;
        if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode)) {
            refusal = "is a symbolic link";
            if (allow_unsafe) fd = (int)memtrack_sys_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        }
    }
    struct stat status;
    if (fd >= 0 && !refusal && fstat(fd, &status) == 0 && status.st_uid != geteuid() && status.st_uid != 0)
        refusal = "is owned by another user";
    if (refusal) {
        char line[4200], *out = line, *end = line + sizeof line - 1;
        out = memtrack_put_text(out, end, allow_unsafe ? "memtrack: warning: MEM_DIR " : "MEM_DIR ");
        out = memtrack_put_text(out, end, path);
        out = memtrack_put_text(out, end, " ");
        out = memtrack_put_text(out, end, refusal);
        out = memtrack_put_text(out, end, allow_unsafe ? "; used anyway because MEM_ALLOW_UNSAFE_DIR=1\n"
                                                       : " (MEM_ALLOW_UNSAFE_DIR=1 allows it)");
        *out = 0;
        if (allow_unsafe) memtrack_say(line);
        else {   /* one line: memtrack: warning: MEM_DIR ... is ...: Operation not permitted; ... */
            if (fd >= 0) memtrack_sys_close(fd);
            memtrack_note_failure(line, EPERM, NULL);
            return -1;
        }
    }
    if (fd < 0) {
        /* mkdir's failure says more than open's: a MEM_DIR that could not be made in a
         * read-only parent is "read-only file system" or "permission denied", not "no such file". */
        memtrack_note_failure("opening MEM_DIR", errno == ENOENT && made && made != EEXIST ? made : errno, NULL);
        return -1;
    }
    return fd;
}

/* Creates MEM_DIR/<pid> (or <pid>.2, <pid>.3... when taken: after exec the pid is the same)
 * with mode 0700, opened without following symlinks and checked to be ours. Returns the
 * directory open for the caller to remember and close: no descriptor is kept. */
static int open_run_directory(void) {
    int mem_directory;
    struct stat identity;
    if (mem_path[0]) {
        mem_directory = (int)memtrack_sys_openat(AT_FDCWD, mem_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (mem_directory < 0 || fstat(mem_directory, &identity) != 0 ||
            identity.st_dev != mem_device || identity.st_ino != mem_inode) {
            memtrack_note_failure("opening MEM_DIR again", mem_directory < 0 ? errno : ESTALE, NULL);
            if (mem_directory >= 0) memtrack_sys_close(mem_directory);
            return -1;
        }
    } else {
        mem_directory = open_mem_directory();
        if (mem_directory < 0) return -1;
        char link[32], *out = link;
        out = memtrack_put_text(out, link + sizeof link - 1, "/proc/self/fd/");
        *memtrack_put_decimal(out, link + sizeof link - 1, (uint64_t)mem_directory) = 0;
        ssize_t length = readlink(link, mem_path, sizeof mem_path - 1);
        mem_path[length > 0 ? length : 0] = 0;
        if (fstat(mem_directory, &identity) == 0) { mem_device = identity.st_dev; mem_inode = identity.st_ino; }
        else mem_path[0] = 0;
    }
    char name[64];
    for (int attempt = 1; attempt < 1000; attempt++) {
        char *out = name, *end = name + sizeof name - 1;
        out = memtrack_put_decimal(out, end, (uint64_t)memtrack_pid);
        if (attempt > 1) { out = memtrack_put_text(out, end, "."); out = memtrack_put_decimal(out, end, (uint64_t)attempt); }
        *out = 0;
        if (mkdirat(mem_directory, name, 0700) == 0) break;
        if (errno != EEXIST) {
            memtrack_note_failure(errno == EROFS ? "creating a run directory in MEM_DIR (read-only)"
                                                 : "creating a run directory in MEM_DIR", errno, NULL);
            memtrack_sys_close(mem_directory);
            return -1;
        }
    }
    int directory = (int)memtrack_sys_openat(mem_directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    int open_error = errno;
    memtrack_sys_close(mem_directory);
    struct stat status;
    if (directory < 0 || fstat(directory, &status) != 0 || status.st_uid != geteuid()) {
        memtrack_note_failure("opening the run directory", directory < 0 ? open_error : EPERM, NULL);
        if (directory >= 0) memtrack_sys_close(directory);
        return -1;
    }
    memcpy(memtrack_run_name, name, sizeof name);
    return directory;
}

// ---- Children that skipped fork's handlers ------------------------------------------------------
/* A child made by _Fork or a raw clone runs none of pthread_atfork's handlers, so it would go on
 * writing into its parent's record. The sentinel page is marked MADV_WIPEONFORK: the kernel
 * hands every such child a zeroed copy, and the entry points check the sentinel (one load) to
 * notice. Until the page exists, and if it cannot be made, the sentinel is a constant 1. */
static const int sentinel_constant = 1;
const volatile int *memtrack_fork_sentinel = &sentinel_constant;
static volatile int *sentinel_page;

static void arm_fork_sentinel(void) {
    if (!sentinel_page) {
        void *page = memtrack_sys_mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) return;
        if (madvise(page, (size_t)sysconf(_SC_PAGESIZE), MADV_WIPEONFORK) != 0) {   /* Linux < 4.14 */
            memtrack_sys_munmap(page, (size_t)sysconf(_SC_PAGESIZE));
            return;
        }
        sentinel_page = page;
    }
    *sentinel_page = 1;
    memtrack_fork_sentinel = sentinel_page;
}

static void begin_record(const char *parent_run_name) {
    arm_fork_sentinel();
    memtrack_world_note_foreign_threads();   /* before the tracker's own threads start */
    memtrack_pid = getpid();
    int directory = open_run_directory();
    if (directory >= 0) {
        memtrack_remember_run_directory(directory);
        memtrack_counters_open(directory);   /* mapped: no descriptor kept */
        /* A record costs 3 µs on tmpfs and 100 times that on a disk: the writer says so if it
         * falls behind there. */
        struct statfs filesystem;
        if (fstatfs(directory, &filesystem) == 0 && filesystem.f_type != TMPFS_MAGIC)
            atomic_store(&memtrack_slow_directory, 1);
        memtrack_sys_close(directory);
    }
    atomic_store(&memtrack_run_directory, directory >= 0 ? 1 : -1);
    if (directory < 0) return;
    memtrack_write_process_file(parent_run_name);
    memtrack_stacks_reset();
    memtrack_sources_reset();
    memtrack_create_stacks_file();
    memtrack_start_file_thread();
    memtrack_write_status("running", 0, NULL);
    memtrack_write_modules(1, 0);
    if (memtrack_config.settle_ms == 0) {
        atomic_store(&memtrack_synchronous, 1);
        memtrack_pending_flush(0);   /* blocks allocated before the directory existed */
    } else {
        memtrack_start_writer();
    }
}

/* The vfork child, or a clone that skipped fork's handlers, shares or copies our memory
 * without being us: it must not write into our record. */
static int is_our_process(void) {
    return atomic_load(&memtrack_run_directory) >= 0 && (pid_t)memtrack_sys_getpid() == memtrack_pid;
}

// ---- Ending -------------------------------------------------------------------------------------
static void (*cxx_freeres)(void), (*libc_freeres)(void);

/* The frees made now are the program's and must remove its records. Called by the exit check
 * (leakcheck.c) while the other threads are held, if there are any. */
static void call_freeres(void) {
    if (cxx_freeres) cxx_freeres();
    if (libc_freeres) libc_freeres();
}

/* The last word of this process image. */
static void finish(const char *state, int value, const char *exec_path, int in_signal) {
    if (!is_our_process()) return;
    atomic_store(&memtrack_synchronous, 1);   /* anything after this is written at once */
    memtrack_pending_flush(in_signal);
    memtrack_write_status(state, value, exec_path);
    /* Last, so that a crash inside the loader cannot cost the records or the status. The
     * loader's lock may never come free (a thread parked in a dl_iterate_phdr callback): the
     * walk is bounded (loaderwalk.c), and the status written again says so. Held: the other
     * threads are stopped, one may hold the loader's lock; at_exit wrote the map before it
     * stopped them. */
    if (!strcmp(state, "signal") || !memtrack_world_held) {
        const char *what = !strcmp(state, "signal") ? "updating the module map at a fatal signal"
                                                    : "updating the module map at exit";
        if (!memtrack_refresh_modules_bounded(what)) memtrack_write_status(state, value, exec_path);
    }
    atomic_store(&finished, 1);
}

static void at_exit(int status, void *unused) {
    (void)unused;
    if (!is_our_process()) return;
    if (memtrack_config.freeres) {
        memtrack_busy++;   /* dlsym's own allocations are ours, not the program's; looked up
                            * before any thread is stopped (dlsym takes the loader's lock) */
        cxx_freeres = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv");
        libc_freeres = (void (*)(void))dlsym(RTLD_DEFAULT, "__libc_freeres");
        memtrack_busy--;
    }
    memtrack_refresh_modules_bounded("updating the module map at exit");   /* while no thread is held: see finish */
    /* What is still reachable now, after destructors and freeres. */
    memtrack_leak_check_at_exit(memtrack_config.freeres ? call_freeres : NULL);
    finish("exit", status, NULL, 0);
}

static __attribute__((noreturn)) void exit_now(int status) {
    /* A vfork child shares its parent's memory and thread-locals: it must leave them as they
     * were (setting memtrack_busy here would turn tracking off in the parent). */
    if (!is_our_process()) memtrack_sys_exit_group(status);
    memtrack_busy = 1;
    if (is_our_process()) memtrack_leak_check_skipped("_exit");   /* no classification: say why */
    /* _exit is async-signal-safe: a handler may call it while this thread holds a shard lock. */
    finish("exit", status, NULL, 1);
    memtrack_sys_exit_group(status);
}

MEMTRACK_EXPORT void _exit(int status) { exit_now(status); }
MEMTRACK_EXPORT void _Exit(int status) { exit_now(status); }

// ---- exec ---------------------------------------------------------------------------------------
static void before_exec(const char *path) {
    memtrack_busy++;
    finish("exec", 0, path, 1);   /* execve is async-signal-safe too */
    memtrack_busy--;
}

/* exec failed: this image goes on, and so does its record. */
static void after_failed_exec(void) {
    int saved_errno = errno;
    if (is_our_process() && atomic_exchange(&finished, 0)) {
        memtrack_write_status("running", 0, NULL);
        if (memtrack_config.settle_ms) atomic_store(&memtrack_synchronous, 0);
    }
    errno = saved_errno;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

/* The vector forms, also called by the list forms below (not through the exported names). */
static int exec_vector_environment(const char *path, char *const argv[], char *const envp[]) {
    before_exec(path);
    int result = NEXT(execve)(path, argv, envp);
    after_failed_exec();
    return result;
}

static int exec_vector(const char *path, char *const argv[]) {
    before_exec(path);
    int result = NEXT(execv)(path, argv);
    after_failed_exec();
    return result;
}

static int exec_vector_path(const char *file, char *const argv[]) {
    before_exec(file);
    int result = NEXT(execvp)(file, argv);
    after_failed_exec();
    return result;
}

MEMTRACK_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
    return exec_vector_environment(path, argv, envp);
}
MEMTRACK_EXPORT int execv(const char *path, char *const argv[]) { return exec_vector(path, argv); }
MEMTRACK_EXPORT int execvp(const char *file, char *const argv[]) { return exec_vector_path(file, argv); }

MEMTRACK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    before_exec(file);
    int result = NEXT(execvpe)(file, argv, envp);
    after_failed_exec();
    return result;
}

MEMTRACK_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
    before_exec("(fexecve)");
    int result = NEXT(fexecve)(fd, argv, envp);
    after_failed_exec();
    return result;
}

/* execl, execlp and execle take their arguments as a list; gather them (on the stack: no
 * allocation) and go through the vector forms above. */
#define GATHER_ARGUMENTS(first, arguments)                                          \
    va_list list;                                                                   \
    size_t count = 1;                                                               \
    va_start(list, first);                                                          \
    while (va_arg(list, char *)) count++;                                           \
    va_end(list);                                                                   \
    char *arguments[count + 1];                                                     \
    arguments[0] = (char *)first;                                                   \
    va_start(list, first);                                                          \
    for (size_t i = 1; i <= count; i++) arguments[i] = va_arg(list, char *);

#include <stdarg.h>
MEMTRACK_EXPORT int execl(const char *path, const char *argument, ...) {
    GATHER_ARGUMENTS(argument, arguments)
    va_end(list);
    return exec_vector(path, arguments);
}

MEMTRACK_EXPORT int execlp(const char *file, const char *argument, ...) {
    GATHER_ARGUMENTS(argument, arguments)
    va_end(list);
    return exec_vector_path(file, arguments);
}

MEMTRACK_EXPORT int execle(const char *path, const char *argument, ...) {
    GATHER_ARGUMENTS(argument, arguments)
    char *const *environment = va_arg(list, char *const *);
    va_end(list);
    return exec_vector_environment(path, arguments, environment);
}

// ---- dlclose --------------------------------------------------------------------------------------
/* Before a library goes away, make sure the module map has it: leaks it made must still
 * resolve. (dlopen is not wrapped: glibc uses dlopen's caller to find RUNPATH, and a wrapper
 * would change which libraries a program finds.) */
MEMTRACK_EXPORT int dlclose(void *handle) {
    if (is_our_process()) {
        memtrack_busy++;
        memtrack_write_modules(0, 0);
        memtrack_busy--;
    }
    int result = memtrack_sys_dlclose(handle);
    memtrack_unwind_invalidate();
    return result;
}

// ---- fork -----------------------------------------------------------------------------------------
static void fork_prepare(void) {
    memtrack_busy++;
    memtrack_modules_fork_refresh();   /* first: it may wait for the loader, holding nothing */
    /* modules_lock before the shards: its holder may wait for the loader's lock, whose holder
     * (a thread in dlopen or dlclose) may free, which takes a shard lock. Taking the shards
     * first closed that circle and hung the parent (about 1 run in 10 of 200 forks). */
    memtrack_modules_fork_prepare();
    memtrack_pending_fork_prepare();
    memtrack_quarantine_fork_prepare();
    memtrack_files_fork_prepare();
    memtrack_annotations_fork_prepare();
}

static void fork_parent(void) {
    memtrack_annotations_fork_release();
    memtrack_files_fork_parent();
    memtrack_quarantine_fork_parent();
    memtrack_pending_fork_parent();
    memtrack_modules_fork_parent();
    memtrack_busy--;
}

static void fork_child(void) {
    memtrack_forget_thread_id();
    memtrack_deferred_signal_count = 0;   /* signals put aside in the parent are the parent's */
    memtrack_annotations_fork_release();
    memtrack_files_fork_child();
    memtrack_modules_fork_child();
    memtrack_quarantine_fork_child();
    memtrack_pending_fork_child();
    memtrack_writer_fork_child();
    memtrack_loader_walk_fork_child();
    char parent[64];
    memcpy(parent, memtrack_run_name, sizeof parent);
    atomic_store(&memtrack_run_directory, -1);   /* the parent's: no descriptor to close */
    atomic_store(&finished, 0);
    begin_record(parent);
    memtrack_forget_deferred_signals();   /* every lock the prepare handler took is let go */
    memtrack_busy--;
}

/* The first tracked call in a child that skipped fork's handlers: do what fork_child does. The
 * parent's other threads do not exist here; locks they held are released as fork_child does. */
void memtrack_process_forked_unseen(void) {
    if ((pid_t)memtrack_sys_getpid() == memtrack_pid) { *sentinel_page = 1; return; }
    memtrack_busy++;
    fork_child();   /* ends with memtrack_busy-- */
}

// ---- fork in a signal handler ------------------------------------------------------------------
/* A signal handler may fork (a single-threaded program may: glibc then takes none of its locks).
 * The tracker's threads make every program multi-threaded in glibc's eyes, so glibc's fork
 * takes its malloc locks, and our prepare handler takes the record tables: a handler that
 * interrupted this thread inside malloc or free would wait for locks the thread itself holds,
 * forever. When the calling thread is inside the tracker (memtrack_busy), which is the only way
 * it can hold one of those locks, fork is made with _Fork, which takes no lock and runs no
 * handler, as glibc's fork does in a single-threaded program except for the program's own
 * pthread_atfork handlers, which are not run then (the catalog's Limits). The child lets go of the
 * tracker's locks at once (the threads that held them do not exist in it), records nothing
 * until the interrupted call has returned, and then starts its own record through the fork
 * sentinel, as a child of _Fork does. */
static pid_t (*next_fork)(void);
static pid_t (*next_underscore_fork)(void);

static void find_fork(void) {
    if (!next_fork) next_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
    if (!next_underscore_fork) next_underscore_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "_Fork");
}

static void fork_child_unprepared(void) {
    memtrack_forget_thread_id();
    memtrack_deferred_signal_count = 0;   /* the parent's (the interrupted code's locks are still counted) */
    atomic_store(&memtrack_run_directory, -1);   /* the parent's record: write nothing into it */
    memtrack_pending_fork_child_unprepared();
    memtrack_quarantine_fork_child();
    memtrack_files_fork_child();
    memtrack_modules_fork_child_unprepared();
    memtrack_loader_walk_fork_child();
    memtrack_annotations_fork_release();
}

MEMTRACK_EXPORT pid_t fork(void) {
    if (!next_fork) {   /* before start-up (a constructor's fork): dlsym is still safe there */
        memtrack_busy++;
        find_fork();
        memtrack_busy--;
    }
    if (!memtrack_busy || !next_underscore_fork || !is_our_process()) return next_fork();
    pid_t child = next_underscore_fork();
    if (child == 0) fork_child_unprepared();
    return child;
}

// ---- Signals ----------------------------------------------------------------------------------------
/* Our handler sits in front of the program's for every signal the program handles, and for the
 * signals whose default action ends the process (the sigaction and signal wrappers below keep
 * it there and show the program its own). It does two jobs:
 *   - at a fatal signal, write out the record before the process dies;
 *   - keep a handler from running while its thread holds a tracker lock. A handler that never
 *     returns (a thread parked in it for good, as stop-the-world runtimes do) would otherwise
 *     keep that lock for good, and every other thread's free in the same table, and the exit,
 *     would wait for it. Such a signal is put aside and sent again (same siginfo) the moment the
 *     thread lets go of its last lock (memtrack_lock_release), a few hundred nanoseconds later.
 *     Faults (SIGSEGV... raised by an instruction) are never put aside: the instruction would
 *     fault again. */
static const int watched_signals[] = {
    SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS,
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ,
};
/* The program's action for each signal, published by pointer: sigaction may run on one thread
 * while a handler reads on another, so the handler must never copy a half-written action. A
 * slot of the ring is reused only after 512 later changes. */
#define ACTION_SLOTS 512
static struct sigaction action_slots[ACTION_SLOTS];
static atomic_uint next_action_slot;
static struct sigaction *_Atomic program_action[NSIG];
static const struct sigaction default_program_action;   /* SIG_DFL, no flags */
static int watching[NSIG];
static atomic_int wrapped[NSIG];   /* a program handler of an unwatched signal, behind ours */

static void set_program_action(int signal_number, const struct sigaction *action) {
    struct sigaction *slot = &action_slots[atomic_fetch_add(&next_action_slot, 1) % ACTION_SLOTS];
    *slot = *action;
    atomic_store(&program_action[signal_number], slot);
}
static struct sigaction get_program_action(int signal_number) {
    const struct sigaction *action = atomic_load(&program_action[signal_number]);
    return action ? *action : default_program_action;
}

static int is_watched(int signal_number) {
    return signal_number > 0 && signal_number < NSIG && watching[signal_number];
}

static void on_signal(int signal_number, siginfo_t *info, void *context);

/* libc's sigaction (sys.c), not the raw system call: the kernel's struct sigaction has another
 * layout (flags before the mask, an 8-byte mask), and libc supplies the restorer. */
#define real_sigaction memtrack_sys_sigaction

/* Puts our handler in front, with the program's flags and mask so its semantics (SA_RESTART,
 * SA_ONSTACK, what is blocked) stay as the program asked. */
static int install_handler(int signal_number, const struct sigaction *program) {
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_signal;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    if (program->sa_handler != SIG_DFL) {
        ours.sa_flags = (program->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
        ours.sa_mask = program->sa_mask;
    }
    return real_sigaction(signal_number, &ours, NULL);   /* libc's, not ours: it supplies the restorer */
}

static void on_signal(int signal_number, siginfo_t *info, void *context) {
    int saved_errno = errno;
    if (memtrack_defer_signal(signal_number, info)) { errno = saved_errno; return; }
    struct sigaction program = get_program_action(signal_number);
    if (program.sa_handler == SIG_DFL && !watching[signal_number]) {
        /* A handler of a signal we do not watch, reset by SA_RESETHAND: the default action is
         * the kernel's to apply (it may be to ignore, stop or continue). */
        atomic_store(&wrapped[signal_number], 0);
        struct sigaction default_action;
        memset(&default_action, 0, sizeof default_action);
        default_action.sa_handler = SIG_DFL;
        real_sigaction(signal_number, &default_action, NULL);
        memtrack_sys_send_signal(getpid(), memtrack_sys_gettid(), signal_number, info);
        errno = saved_errno;
        return;
    }
    if (program.sa_handler == SIG_DFL) {
        /* The process is about to die: write out everything, then die as it would have. */
        memtrack_busy++;
        finish("signal", signal_number, NULL, 1);
        struct sigaction default_action;
        memset(&default_action, 0, sizeof default_action);
        default_action.sa_handler = SIG_DFL;
        real_sigaction(signal_number, &default_action, NULL);
        /* A fault re-executes its instruction and dies; anything else is raised again. The
         * signal is blocked while we run, so it arrives as soon as we return. */
        if (!memtrack_signal_is_fault(signal_number, info) || signal_number == SIGSYS)
            memtrack_sys_send_signal(getpid(), memtrack_sys_gettid(), signal_number, NULL);
        errno = saved_errno;
        return;
    }
    if (program.sa_handler == SIG_IGN) { errno = saved_errno; return; }
    /* The program handles it and may well go on: write out what is pending, keep recording. */
    if (signal_number == SIGSEGV || signal_number == SIGBUS || signal_number == SIGILL ||
        signal_number == SIGFPE || signal_number == SIGABRT) {
        memtrack_busy++;
        if (is_our_process()) memtrack_pending_flush(1);
        memtrack_busy--;
    }
    if (program.sa_flags & SA_RESETHAND) {
        struct sigaction reset = program;
        reset.sa_handler = SIG_DFL;
        reset.sa_flags &= ~SA_SIGINFO;
        set_program_action(signal_number, &reset);
    }
    errno = saved_errno;
    if (program.sa_flags & SA_SIGINFO) program.sa_sigaction(signal_number, info, context);
    else program.sa_handler(signal_number);
}

/* The program's sigaction, and signal() in terms of it. */
static int program_sigaction(int signal_number, const struct sigaction *action, struct sigaction *old) {
    if (signal_number <= 0 || signal_number >= NSIG || signal_number == SIGKILL || signal_number == SIGSTOP)
        return real_sigaction(signal_number, action, old);
    if (is_watched(signal_number)) {
        if (old) *old = get_program_action(signal_number);
        if (!action) return 0;
        if (action->sa_handler == SIG_IGN) {
            /* Honoured for real: an ignored signal must not even interrupt a system call. */
            int result = real_sigaction(signal_number, action, NULL);
            if (result == 0) set_program_action(signal_number, action);
            return result;
        }
        set_program_action(signal_number, action);
        install_handler(signal_number, action);
        return 0;
    }
    /* Another signal: ours goes in front of a program handler; SIG_DFL and SIG_IGN are the
     * kernel's to apply. */
    struct sigaction previous;
    if (real_sigaction(signal_number, NULL, &previous) != 0) return -1;   /* EINVAL: glibc's own */
    if (atomic_load(&wrapped[signal_number])) previous = get_program_action(signal_number);
    if (action) {
        int handled = action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN;
        if (handled) {
            set_program_action(signal_number, action);
            if (install_handler(signal_number, action) != 0) return -1;
        } else if (real_sigaction(signal_number, action, NULL) != 0) {
            return -1;
        }
        atomic_store(&wrapped[signal_number], handled);
    }
    if (old) *old = previous;
    return 0;
}

MEMTRACK_EXPORT int sigaction(int signal_number, const struct sigaction *action, struct sigaction *old) {
    return program_sigaction(signal_number, action, old);
}

MEMTRACK_EXPORT sighandler_t signal(int signal_number, sighandler_t handler) {
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;   /* glibc's signal() has BSD semantics */
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, signal_number);
    if (program_sigaction(signal_number, &action, &old) < 0) return SIG_ERR;
    return old.sa_handler;
}

static void watch_signals(void) {
    for (size_t i = 0; i < sizeof watched_signals / sizeof watched_signals[0]; i++) {
        int signal_number = watched_signals[i];
        struct sigaction current;
        if (real_sigaction(signal_number, NULL, &current) != 0) continue;
        /* Ignored at start (nohup, a shell's background job): leave it ignored and unwatched. */
        if (current.sa_handler == SIG_IGN) continue;
        set_program_action(signal_number, &current);
        watching[signal_number] = 1;
        install_handler(signal_number, &current);
    }
}

// ---- Start ------------------------------------------------------------------------------------------
void memtrack_process_start(void) {
    memtrack_busy++;
    find_fork();   /* here: dlsym is not safe in the signal handler that may fork */
    memtrack_sys_resolve();   /* likewise for sigaction, which a handler may call */
    memtrack_credentials_start();
    begin_record(NULL);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    on_exit(at_exit, NULL);
    watch_signals();
    memtrack_busy--;
}
