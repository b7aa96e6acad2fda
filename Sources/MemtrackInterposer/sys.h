/* sys.h: the sys layer, the lowest of the interposer (sys.c): the tracker's own calls to the
 * kernel and to the definitions it wraps, bound so that they never reach an exported name.
 *
 * libmemtrack.so exports mmap, munmap, mremap, sigaction, dlopen, dlclose, malloc, free and
 * more. A call of one of those names from inside the library goes through its own PLT slot:
 * it would run the tracker's wrapper (shm.c's munmap scans its mapping table under a lock), or
 * whatever an earlier object (the program, an earlier preload) defines under that name. So the
 * tracker's own memory comes from raw system calls, and its signal actions and dlopen/dlclose
 * go to the next definition (dlsym(RTLD_NEXT)), found once. A test reads `readelf -r` of the
 * built library and fails on any relocation against a name the library exports.
 */
#ifndef MEMTRACK_SYS_H
#define MEMTRACK_SYS_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <stddef.h>
#include <sys/types.h>

struct link_map;
struct stat;

#pragma GCC visibility push(hidden)

/* mmap(2), munmap(2), mremap(2) as system calls: errno set, MAP_FAILED / -1 on failure. */
void *memtrack_sys_mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset);
int memtrack_sys_munmap(void *address, size_t length);
void *memtrack_sys_mremap(void *old_address, size_t old_length, size_t new_length, int flags, void *new_address);
/* An anonymous private read-write mapping (MAP_NORESERVE when lazy), or NULL. */
void *memtrack_sys_map_anonymous(size_t bytes, int extra_flags);

/* libc's sigaction (the next definition): the kernel's struct sigaction has another layout,
 * and libc supplies the restorer that x86-64 requires (SA_RESTORER). */
int memtrack_sys_sigaction(int signal_number, const struct sigaction *action, struct sigaction *old);
/* The next dlopen and dlclose, for the tracker's own RTLD_NOLOAD look-ups. */
void *memtrack_sys_dlopen(const char *file, int mode);
int memtrack_sys_dlclose(void *handle);
/* The first object of the base namespace's list (the executable), or NULL. */
struct link_map *memtrack_sys_first_object(void);
/* Finds the definitions above while dlsym is safe (start-up, not a signal handler). The
 * functions find them on first use too, for a call made before start-up. */
void memtrack_sys_resolve(void);

/* exit_group(2): the process ends here, nothing else runs. */
__attribute__((noreturn)) void memtrack_sys_exit_group(int status);

/* File system calls that are never cancellation points; errno set, -1 on failure. */
int memtrack_sys_openat(int directory, const char *name, int flags, int mode);
int memtrack_sys_close(int fd);
int memtrack_sys_unlinkat(int directory, const char *name);
ssize_t memtrack_sys_read(int fd, void *buffer, size_t length);
/* The kernel's ids, uncached (glibc's getpid is a vfork child's too; see memtrack_thread_id). */
pid_t memtrack_sys_getpid(void);
pid_t memtrack_sys_gettid(void);
/* All of text, retrying EINTR and short writes; what was written, or -1. */
ssize_t memtrack_sys_write_all(int fd, const char *text, size_t length);

int memtrack_sys_fstat(int fd, struct stat *status);
int memtrack_sys_fstatat(int directory, const char *path, struct stat *status, int flags);
ssize_t memtrack_sys_readlinkat(int directory, const char *path, char *buffer, size_t length);
int memtrack_sys_renameat(int from_directory, const char *from, int to_directory, const char *to);
int memtrack_sys_symlinkat(const char *target, int directory, const char *name);
ssize_t memtrack_sys_pwrite(int fd, const void *text, size_t length, off_t offset);
int memtrack_sys_ftruncate(int fd, off_t length);
int memtrack_sys_unshare(int flags);
int memtrack_sys_close_range(unsigned first, unsigned last, unsigned flags);

/* Processes and signals: a signal to one thread, with its siginfo (rt_tgsigqueueinfo) or, with
 * info NULL, without (tgkill). */
pid_t memtrack_sys_getppid(void);
int memtrack_sys_execve(const char *path, char *const argv[], char *const envp[]);
int memtrack_sys_send_signal(pid_t process, pid_t thread, int signal_number, const siginfo_t *info);
int memtrack_sys_sigaltstack(const stack_t *stack, stack_t *old);
/* capget(2), capset(2): header and data are the kernel's __user_cap_* structures. */
int memtrack_sys_capget(void *header, void *data);
int memtrack_sys_capset(void *header, const void *data);

/* Private futexes: sleep while *word == value (for at most timeout: -1 with errno ETIMEDOUT
 * then), wake up to count sleepers. */
void memtrack_sys_futex_wait(atomic_int *word, int value);
int memtrack_sys_futex_wait_for(atomic_int *word, int value, const struct timespec *timeout);
void memtrack_sys_futex_wake(atomic_int *word, int count);

/* Milliseconds since start (memtrack_start_milliseconds), from the coarse monotonic clock. */
uint32_t memtrack_milliseconds_now(void);
/* This thread's kernel id, cached; forgotten in a forked child. */
int32_t memtrack_thread_id(void);
void memtrack_forget_thread_id(void);

#pragma GCC visibility pop

#endif
