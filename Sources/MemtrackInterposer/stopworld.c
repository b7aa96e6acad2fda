/* stopworld.c: stops the program's other threads for the leak check, with no signal the
 * program can see (LSan's StopTheWorld, done with PTRACE_SEIZE).
 *
 * A thread cannot trace its own process, so a tracer task is cloned (sharing our memory, not
 * our thread group, exit signal 0: no SIGCHLD). It seizes every thread and interrupts it with
 * PTRACE_INTERRUPT: no SIGSTOP, nothing in any signal queue, nothing a signalfd can read, no
 * tgkill a seccomp filter could forbid. The thread's registers are read while it is stopped.
 *
 * An interrupted system call is restarted by the kernel (ERESTART*: nanosleep, poll, select,
 * futex, read...), except the few that return EINTR to any wake-up: epoll_wait, sigtimedwait,
 * semtimedop. The tracer rewrites that EINTR to ERESTARTNOHAND before letting the thread go,
 * so the kernel restarts those too (a real signal with a handler still turns it into EINTR).
 * Their timeout then starts again: the wait can last longer, never end early.
 *
 * A thread that cannot be seized (the process is traced by a debugger or strace, is not
 * dumpable, Yama forbids it) or that does not stop within 100 ms is left running: the caller
 * gets what /proc/self/task/TID/syscall says (its stack pointer and system call arguments when
 * it is blocked in one) and must read its memory as memory that may change.
 *
 * The tracer makes raw system calls only: it shares our thread pointer, so libc's errno and
 * anything else thread-local would be the calling thread's.
 *
 * Layer: check, on sys.
 */
#include "stopworld.h"
#include "format.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

#define STOP_DEADLINE_NS 100000000ll     /* a thread that has not stopped in 100 ms runs on */
#define LATE_DEADLINE_NS 1000000000ll    /* before letting go: how long to wait for the late ones */
#define TRACER_DEADLINE_MS 3000          /* the tracer itself must answer within this */
#define TRACER_STACK (64 * 1024)
#define ERESTARTNOHAND 514               /* the kernel's: restart when no handler runs */

enum { PHASE_WAIT = 0, PHASE_GO, PHASE_STOPPED, PHASE_RESUME };

#define raw6 memtrack_raw6   /* arch.h */
#define raw(n, a, b, c, d) raw6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static long long now_ns(void) {
    struct timespec now;
    raw(SYS_clock_gettime, CLOCK_MONOTONIC, &now, 0, 0);
    return (long long)now.tv_sec * 1000000000ll + now.tv_nsec;
}

static void futex_wake(_Atomic int *word) { raw6(SYS_futex, (long)word, FUTEX_WAKE, INT32_MAX, 0, 0, 0); }
static void futex_wait(_Atomic int *word, int value, long long timeout_ns) {
    struct timespec wait = {(time_t)(timeout_ns / 1000000000ll), (long)(timeout_ns % 1000000000ll)};
    raw6(SYS_futex, (long)word, FUTEX_WAIT, value, (long)&wait, 0, 0);
}

struct linux_dirent64 { uint64_t inode; int64_t offset; unsigned short length; unsigned char type; char name[]; };

static int parse_decimal(const char *p) {
    int value = 0;
    for (; *p >= '0' && *p <= '9'; p++) value = value * 10 + (*p - '0');
    return *p ? -1 : value;
}

/* Calls visit(tid, context) for each thread of process `pid` (0: this one); returns -1 when
 * /proc cannot be read. Raw system calls: the tracer runs it too. */
static int for_each_task(pid_t pid, void (*visit)(int tid, void *context), void *context) {
    char path[64];
    char *out = memtrack_put_text(path, path + 40, "/proc/");
    out = pid ? memtrack_put_decimal(out, path + 56, (uint64_t)pid) : memtrack_put_text(out, path + 56, "self");
    *memtrack_put_text(out, path + 63, "/task") = 0;
    int fd = (int)raw(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    char buffer[4096];
    for (;;) {
        long n = raw(SYS_getdents64, fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        for (long offset = 0; offset < n;) {
            struct linux_dirent64 *entry = (struct linux_dirent64 *)(buffer + offset);
            offset += entry->length;
            int tid = parse_decimal(entry->name);
            if (tid > 0) visit(tid, context);
        }
    }
    raw(SYS_close, fd, 0, 0, 0);
    return 0;
}

struct listing { struct memtrack_world *world; int added; };

static void list_thread(int tid, void *context) {
    struct listing *listing = context;
    struct memtrack_world *world = listing->world;
    int known = tid == world->self;
    for (int s = 0; s < world->skip_count && !known; s++) known = world->skip[s] == tid;
    for (int i = 0; i < world->count && !known; i++) known = world->threads[i].tid == tid;
    if (known) return;
    if (world->count == MEMTRACK_WORLD_MAX_THREADS) { world->overflow++; return; }
    struct memtrack_world_thread *t = &world->threads[world->count];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    world->count++;
    listing->added++;
}

/* Adds the threads of the process not listed yet (none of self or skip); returns how many. */
static int list_threads(struct memtrack_world *world) {
    struct listing listing = {world, 0};
    for_each_task(world->pid, list_thread, &listing);
    return listing.added;
}

/* The system call thread `tid` is blocked in, from /proc/PID/task/TID/syscall; -1 if none or
 * unknown. The tracer is a process of its own: /proc/self would be its own. */
static long blocked_in(const struct memtrack_world *world, int tid) {
    char path[80], text[32];
    char *out = memtrack_put_text(path, path + 40, "/proc/");
    out = memtrack_put_decimal(out, path + 56, (uint64_t)world->pid);
    out = memtrack_put_text(out, path + 62, "/task/");
    out = memtrack_put_decimal(out, path + 72, (uint64_t)tid);
    *memtrack_put_text(out, path + 79, "/syscall") = 0;
    int fd = (int)raw(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    long n = raw(SYS_read, fd, text, sizeof text - 1, 0);
    raw(SYS_close, fd, 0, 0, 0);
    if (n <= 0 || text[0] < '0' || text[0] > '9') return -1;   /* "running", or "-1 SP PC" */
    long number = 0;
    for (long i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++) number = number * 10 + (text[i] - '0');
    return number;
}

// ---- The tracer (a task of its own, on its own stack) -----------------------------------------
/* Waits, until the deadline, for the seized threads to report their interrupt stop. A real
 * signal met on the way is delivered as it would have been (PTRACE_CONT with it). */
static void collect_stops(struct memtrack_world *world, long long deadline, int late) {
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < world->count; i++) {
            struct memtrack_world_thread *t = &world->threads[i];
            if (!t->seized || atomic_load(&t->state) != MEMTRACK_THREAD_RUNNING || t->late_stop) continue;
            int status = 0;
            long r = raw(SYS_wait4, t->tid, &status, __WALL | WNOHANG, 0);
            if (r == 0 || r == -EINTR) { waiting++; continue; }
            if (r < 0 || !WIFSTOPPED(status)) {   /* ended, or no longer ours */
                t->seized = 0;
                atomic_store(&t->state, MEMTRACK_THREAD_GONE);
                continue;
            }
            if ((status >> 16) != PTRACE_EVENT_STOP) {   /* a signal-delivery stop */
                raw(SYS_ptrace, PTRACE_CONT, t->tid, 0, WSTOPSIG(status));
                waiting++;
                continue;
            }
            if (late) { t->late_stop = 1; continue; }
            memtrack_regs registers;
            if (memtrack_get_registers(t->tid, &registers) == 0) {
                memcpy(t->registers, &registers, sizeof t->registers);
                t->register_count = MEMTRACK_WORLD_REGISTERS;
                t->stack_pointer = MEMTRACK_REGS_SP(registers);
                atomic_store(&t->state, MEMTRACK_THREAD_STOPPED);
            } else {
                t->late_stop = 1;   /* stopped, but not readable: let it go like a late one */
                t->error = EIO;
            }
        }
        if (!waiting || now_ns() >= deadline) return;
        struct timespec pause = {0, 200000};
        raw(SYS_nanosleep, &pause, 0, 0, 0);
    }
}

/* An EINTR that only our interrupt caused becomes a restart (see the top of the file). */
static void let_go(struct memtrack_world_thread *t) {
    memtrack_restart_interrupted(t->tid, -EINTR, -ERESTARTNOHAND, SYS_close);   /* arch.h */
    raw(SYS_ptrace, PTRACE_DETACH, t->tid, 0, 0);
    t->seized = 0;
}

static int tracer_main(void *argument) {
    struct memtrack_world *world = argument;
    /* If the process dies meanwhile, so does the tracer (it holds the process's memory). */
    raw(SYS_prctl, PR_SET_PDEATHSIG, 9 /* SIGKILL */, 0, 0);
    long long give_up = now_ns() + (long long)TRACER_DEADLINE_MS * 1000000ll;
    while (atomic_load(&world->phase) == PHASE_WAIT && now_ns() < give_up) futex_wait(&world->phase, PHASE_WAIT, 10000000);
    /* A thread not stopped yet may start another: list again until no new one appears
     * (LSan does the same). */
    long long deadline = now_ns() + STOP_DEADLINE_NS;
    for (int pass = 0, from = 0; pass < 16; pass++) {
        for (int i = from; i < world->count; i++) {
            struct memtrack_world_thread *t = &world->threads[i];
            /* arch.h: where our interrupt would end its wait with EINTR, the thread is left be. */
            if (MEMTRACK_INTERRUPT_MAY_SHOW && memtrack_interrupt_would_show(blocked_in(world, t->tid))) {
                t->error = EINTR;
                continue;
            }
            long r = raw(SYS_ptrace, PTRACE_SEIZE, t->tid, 0, 0);
            if (r < 0) { t->error = (int)-r; if (r == -ESRCH) atomic_store(&t->state, MEMTRACK_THREAD_GONE); continue; }
            t->seized = 1;
            r = raw(SYS_ptrace, PTRACE_INTERRUPT, t->tid, 0, 0);
            if (r < 0) t->error = (int)-r;
        }
        collect_stops(world, deadline, 0);
        from = world->count;
        if (!list_threads(world)) break;
    }
    for (int i = 0; i < world->count; i++)
        if (atomic_load(&world->threads[i].state) == MEMTRACK_THREAD_RUNNING && !world->threads[i].error)
            world->threads[i].error = ETIMEDOUT;
    atomic_store(&world->phase, PHASE_STOPPED);
    futex_wake(&world->phase);
    while (atomic_load(&world->phase) != PHASE_RESUME) futex_wait(&world->phase, PHASE_STOPPED, 1000000000ll);
    /* The late ones: their system call was interrupted too, so wait for their stop and let
     * them go properly. Any still not stopped are detached by the kernel when we exit. */
    collect_stops(world, now_ns() + LATE_DEADLINE_NS, 1);
    for (int i = 0; i < world->count; i++) {
        struct memtrack_world_thread *t = &world->threads[i];
        if (t->seized && (atomic_load(&t->state) == MEMTRACK_THREAD_STOPPED || t->late_stop)) let_go(t);
    }
    raw(SYS_exit, 0, 0, 0, 0);
    return 0;
}

// ---- The calling side ---------------------------------------------------------------------------
/* Yama's ptrace_scope (-1: no Yama). */
static int yama_scope(void) {
    char text[8] = {0};
    int fd = (int)raw(SYS_openat, AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    long n = raw(SYS_read, fd, text, sizeof text - 1, 0);
    raw(SYS_close, fd, 0, 0, 0);
    return n > 0 && text[0] >= '0' && text[0] <= '9' ? text[0] - '0' : -1;
}

/* /proc/self/task/TID/syscall as words: "NR ARG1..ARG6 SP PC" (9) while the thread is blocked
 * in a system call, "-1 SP PC" (3) when it is stopped outside one; 0 for "running" or unknown. */
static int read_syscall_words(int tid, uint64_t words[9]) {
    char path[64], text[256];
    char *out = memtrack_put_text(path, path + 40, "/proc/self/task/");
    out = memtrack_put_decimal(out, path + 60, (uint64_t)tid);
    *memtrack_put_text(out, path + 63, "/syscall") = 0;
    int fd = (int)raw(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return 0;
    long n = raw(SYS_read, fd, text, sizeof text - 1, 0);
    raw(SYS_close, fd, 0, 0, 0);
    if (n <= 0) return 0;
    text[n] = 0;
    int count = 0;
    for (char *p = text; *p && count < 9;) {
        while (*p == ' ' || *p == '\n') p++;
        if (!*p) break;
        uint64_t value = 0;
        if (p[0] == '0' && p[1] == 'x') {
            for (p += 2;; p++) {
                int digit = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
                if (digit < 0) break;
                value = value * 16 + (uint64_t)digit;
            }
        } else if (p[0] == '-' || (p[0] >= '0' && p[0] <= '9')) {
            int negative = *p == '-';
            for (p += negative; *p >= '0' && *p <= '9'; p++) value = value * 10 + (uint64_t)(*p - '0');
            if (negative) value = (uint64_t)-(int64_t)value;
        } else {
            return 0;   /* "running" */
        }
        words[count++] = value;
        while (*p && *p != ' ' && *p != '\n') p++;
    }
    return count == 9 || count == 3 ? count : 0;
}

/* What /proc tells of a thread left running: its system call's arguments and stack pointer
 * while it is blocked in one, its stack pointer when blocked outside one. */
static void describe_running(struct memtrack_world_thread *t) {
    uint64_t words[9];
    int count = read_syscall_words(t->tid, words);
    t->register_count = 0;
    t->stack_pointer = 0;
    if (count == 9) {
        for (int r = 0; r < 6; r++) t->registers[r] = words[1 + r];
        t->register_count = 6;
        t->stack_pointer = (uintptr_t)words[7];
    } else if (count == 3) {
        t->stack_pointer = (uintptr_t)words[1];
    }
}

int memtrack_world_thread_position(const struct memtrack_world_thread *t, long *number, uintptr_t *pc) {
    uint64_t words[9];
    int count = read_syscall_words(t->tid, words);
    if (!count) return 0;
    *number = (long)(int64_t)words[0];
    *pc = (uintptr_t)words[count - 1];
    return 1;
}

/* Threads that were there before the tracker started: none in a program started the usual
 * way; qemu-user's own threads (which the program's ptrace cannot stop) under emulation. */
static int foreign[8], foreign_count;

static void note_foreign(int tid, void *self) {
    if (tid != *(int *)self && foreign_count < 8) foreign[foreign_count++] = tid;
}

void memtrack_world_note_foreign_threads(void) {
    foreign_count = 0;
    int self = (int)raw(SYS_gettid, 0, 0, 0, 0);
    for_each_task(0, note_foreign, &self);
}

int memtrack_world_is_foreign(int tid) {
    for (int i = 0; i < foreign_count; i++) if (foreign[i] == tid) return 1;
    return 0;
}

struct others { int self, skip_count, count; const int *skip; };

static void count_other(int tid, void *context) {
    struct others *o = context;
    int known = tid == o->self || memtrack_world_is_foreign(tid);
    for (int s = 0; s < o->skip_count && !known; s++) known = o->skip[s] == tid;
    o->count += !known;
}

int memtrack_world_count_others(int self, const int *skip, int skip_count) {
    struct others o = {self, skip_count, 0, skip};
    return for_each_task(0, count_other, &o) < 0 ? -1 : o.count;
}

static void finish_running(struct memtrack_world *world) {
    world->running = 0;
    for (int i = 0; i < world->count; i++) {
        struct memtrack_world_thread *t = &world->threads[i];
        if (atomic_load(&t->state) != MEMTRACK_THREAD_RUNNING) continue;
        describe_running(t);
        world->running++;
    }
}

void memtrack_world_stop(struct memtrack_world *world, int self, const int *skip, int skip_count, int may_set_ptracer) {
    world->count = world->overflow = world->running = 0;
    world->tracer = 0;
    world->tracer_stack = NULL;
    world->pid = (pid_t)raw(SYS_getpid, 0, 0, 0, 0);
    world->self = self;
    world->skip_count = skip_count < 4 ? skip_count : 4;
    for (int s = 0; s < world->skip_count; s++) world->skip[s] = skip[s];
    atomic_store(&world->phase, PHASE_WAIT);
    list_threads(world);
    if (!world->count) return;   /* no other thread: nothing to stop */
    world->tracer_stack_bytes = TRACER_STACK;
    void *stack = memtrack_sys_mmap(NULL, TRACER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    int error = ENOMEM;
    if (stack != MAP_FAILED) {
        world->tracer_stack = stack;
        /* No CLONE_THREAD (a thread may not trace its own group), exit signal 0 (no SIGCHLD;
         * only a __WALL wait sees it), CLONE_FILES (no copy of the program's descriptors). */
        int pid = clone(tracer_main, (char *)stack + TRACER_STACK - 64, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, world);
        if (pid > 0) world->tracer = pid;
        else error = errno;
    }
    if (!world->tracer) {
        for (int i = 0; i < world->count; i++) world->threads[i].error = error;
        finish_running(world);
        return;
    }
    if (may_set_ptracer && yama_scope() == 1) raw(SYS_prctl, PR_SET_PTRACER, world->tracer, 0, 0);
    atomic_store(&world->phase, PHASE_GO);
    futex_wake(&world->phase);
    long long give_up = now_ns() + (long long)TRACER_DEADLINE_MS * 1000000ll;
    while (atomic_load(&world->phase) != PHASE_STOPPED) {
        long long left = give_up - now_ns();
        if (left <= 0) break;
        futex_wait(&world->phase, PHASE_GO, left);
    }
    if (atomic_load(&world->phase) != PHASE_STOPPED) {
        /* The tracer is stuck: end it (its tracees are let go by the kernel) and scan the
         * threads as running. */
        raw(SYS_kill, world->tracer, 9, 0, 0);
        raw(SYS_wait4, world->tracer, 0, __WALL, 0);
        world->tracer = 0;
        for (int i = 0; i < world->count; i++) {
            struct memtrack_world_thread *t = &world->threads[i];
            if (atomic_load(&t->state) == MEMTRACK_THREAD_STOPPED) atomic_store(&t->state, MEMTRACK_THREAD_RUNNING);
            t->error = ETIMEDOUT;
        }
    }
    finish_running(world);
}

void memtrack_world_resume(struct memtrack_world *world) {
    if (world->tracer) {
        atomic_store(&world->phase, PHASE_RESUME);
        futex_wake(&world->phase);
        while (raw(SYS_wait4, world->tracer, 0, __WALL, 0) == -EINTR) {}
        world->tracer = 0;
    }
    if (world->tracer_stack) memtrack_sys_munmap(world->tracer_stack, world->tracer_stack_bytes);
    world->tracer_stack = NULL;
}

