/* sys.c: the sys layer (layer base, see the layers in base.h): the tracker's own calls to the
 * kernel and to the next definitions of the names it wraps (sys.h says why).
 *
 * Memory: raw system calls through syscall(2) (libc's, which the library does not export):
 * never the exported mmap wrapper, never a cancellation point. Signal actions and dlopen:
 * the next definition, found with dlsym(RTLD_NEXT) and kept in an atomic. dlsym may allocate:
 * start-up calls memtrack_sys_resolve while its thread is marked busy, so that those blocks
 * are the tracker's.
 */
#include "sys.h"
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <time.h>

#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

// ---- Memory ----------------------------------------------------------------------------------
void *memtrack_sys_mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    return (void *)syscall(SYS_mmap, address, length, protection, flags, fd, offset);
}

int memtrack_sys_munmap(void *address, size_t length) {
    return (int)syscall(SYS_munmap, address, length);
}

void *memtrack_sys_mremap(void *old_address, size_t old_length, size_t new_length, int flags, void *new_address) {
    return (void *)syscall(SYS_mremap, old_address, old_length, new_length, flags, new_address);
}

void *memtrack_sys_map_anonymous(size_t bytes, int extra_flags) {
    void *memory = memtrack_sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

// ---- The next definitions --------------------------------------------------------------------
static int (*_Atomic next_sigaction)(int, const struct sigaction *, struct sigaction *);
static void *(*_Atomic next_dlopen)(const char *, int);
static int (*_Atomic next_dlclose)(void *);

void memtrack_sys_resolve(void) {
    if (!atomic_load(&next_sigaction))
        atomic_store(&next_sigaction, (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction"));
    if (!atomic_load(&next_dlopen)) atomic_store(&next_dlopen, (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen"));
    if (!atomic_load(&next_dlclose)) atomic_store(&next_dlclose, (int (*)(void *))dlsym(RTLD_NEXT, "dlclose"));
}

int memtrack_sys_sigaction(int signal_number, const struct sigaction *action, struct sigaction *old) {
    int (*next)(int, const struct sigaction *, struct sigaction *) = atomic_load(&next_sigaction);
    if (__builtin_expect(!next, 0)) { memtrack_sys_resolve(); next = atomic_load(&next_sigaction); }
    return next(signal_number, action, old);
}

void *memtrack_sys_dlopen(const char *file, int mode) {
    void *(*next)(const char *, int) = atomic_load(&next_dlopen);
    if (__builtin_expect(!next, 0)) { memtrack_sys_resolve(); next = atomic_load(&next_dlopen); }
    return next(file, mode);
}

int memtrack_sys_dlclose(void *handle) {
    int (*next)(void *) = atomic_load(&next_dlclose);
    if (__builtin_expect(!next, 0)) { memtrack_sys_resolve(); next = atomic_load(&next_dlclose); }
    return next(handle);
}

struct link_map *memtrack_sys_first_object(void) {
    struct link_map *map = NULL;
    void *main_handle = memtrack_sys_dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
    if (main_handle) { dlinfo(main_handle, RTLD_DI_LINKMAP, &map); memtrack_sys_dlclose(main_handle); }
    return map;
}

// ---- Files: system calls that are never cancellation points -------------------------------
/* Through syscall(2) rather than the libc wrappers, so that none of them is a pthread
 * cancellation point: a thread cancelled inside malloc must not die holding a lock. */
int memtrack_sys_openat(int directory, const char *name, int flags, int mode) {
    return (int)syscall(SYS_openat, directory, name, flags, mode);
}
int memtrack_sys_close(int fd) { return (int)syscall(SYS_close, fd); }
int memtrack_sys_unlinkat(int directory, const char *name) {
    return (int)syscall(SYS_unlinkat, directory, name, 0);
}
ssize_t memtrack_sys_write_all(int fd, const char *text, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t n = syscall(SYS_write, fd, text + done, length - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -1 : (ssize_t)done;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

ssize_t memtrack_sys_read(int fd, void *buffer, size_t length) { return syscall(SYS_read, fd, buffer, length); }
pid_t memtrack_sys_getpid(void) { return (pid_t)syscall(SYS_getpid); }
pid_t memtrack_sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int memtrack_sys_fstat(int fd, struct stat *status) { return (int)syscall(SYS_fstat, fd, status); }
int memtrack_sys_fstatat(int directory, const char *path, struct stat *status, int flags) {
    return (int)syscall(SYS_newfstatat, directory, path, status, flags);
}
ssize_t memtrack_sys_readlinkat(int directory, const char *path, char *buffer, size_t length) {
    return syscall(SYS_readlinkat, directory, path, buffer, length);
}
int memtrack_sys_renameat(int from_directory, const char *from, int to_directory, const char *to) {
    return (int)syscall(SYS_renameat, from_directory, from, to_directory, to);
}
int memtrack_sys_symlinkat(const char *target, int directory, const char *name) {
    return (int)syscall(SYS_symlinkat, target, directory, name);
}
ssize_t memtrack_sys_pwrite(int fd, const void *text, size_t length, off_t offset) {
    return syscall(SYS_pwrite64, fd, text, length, offset);
}
int memtrack_sys_ftruncate(int fd, off_t length) { return (int)syscall(SYS_ftruncate, fd, length); }
int memtrack_sys_unshare(int flags) { return (int)syscall(SYS_unshare, flags); }
int memtrack_sys_close_range(unsigned first, unsigned last, unsigned flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

// ---- Processes, signals, capabilities ---------------------------------------------------------
pid_t memtrack_sys_getppid(void) { return (pid_t)syscall(SYS_getppid); }
int memtrack_sys_execve(const char *path, char *const argv[], char *const envp[]) {
    return (int)syscall(SYS_execve, path, argv, envp);
}
int memtrack_sys_send_signal(pid_t process, pid_t thread, int signal_number, const siginfo_t *info) {
    if (info) return (int)syscall(SYS_rt_tgsigqueueinfo, process, thread, signal_number, info);
    return (int)syscall(SYS_tgkill, process, thread, signal_number);
}
int memtrack_sys_sigaltstack(const stack_t *stack, stack_t *old) { return (int)syscall(SYS_sigaltstack, stack, old); }
int memtrack_sys_capget(void *header, void *data) { return (int)syscall(SYS_capget, header, data); }
int memtrack_sys_capset(void *header, const void *data) { return (int)syscall(SYS_capset, header, data); }

// ---- Futexes, time, thread ids ----------------------------------------------------------------
void memtrack_sys_futex_wait(atomic_int *word, int value) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
int memtrack_sys_futex_wait_for(atomic_int *word, int value, const struct timespec *timeout) {
    return (int)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, timeout, NULL, 0);
}
void memtrack_sys_futex_wake(atomic_int *word, int count) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
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


// ---- Ending ----------------------------------------------------------------------------------
void memtrack_sys_exit_group(int status) {
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}
