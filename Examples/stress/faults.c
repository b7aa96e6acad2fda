/* stress/faults.c: reproductions of the faults of issue 7, one subcommand each. Every one
 * behaves the same untraced and traced; what the tracker must not do is described with it.
 *
 *   forkdl LIB N      a thread loops dlopen/dlclose of LIB while main forks N children that
 *                     exec `true` (fault 1: a child must not hang on the loader's lock; one
 *                     that takes over 10 s is killed and counted as hung, and forking stops)
 *   vforkexit         a vfork child whose exec fails calls _exit; then the parent leaks 1234
 *                     bytes, frees a block twice and frees an interior pointer (fault 2)
 *   sigfree N         another thread sends N SIGUSR1 to main, whose handler frees blocks while
 *                     main allocates (fault 3: no deadlock)
 *   exitrace          exit while 4 threads allocate and keep 500 blocks each (fault 4)
 *   daemonfork DIR    (run under ulimit -n 64) close every descriptor, open DIR (as 3 to 11)
 *                     and DIR/data, fork a worker that
 *                     leaks 2222 bytes (fault 5: nothing may be written into DIR)
 *   closerange N      main runs close_range + open + write N times while a thread allocates
 *                     (fault 6: main's own descriptor must never be closed under it)
 *   freefds LIMIT     sets RLIMIT_NOFILE to LIMIT and prints how many descriptors it can open
 *                     (fault 7)
 *   vlimit [leak]     under RLIMIT_AS set just above what an 8 MiB block needs, allocates one
 *                     and frees it (or leaks it) (faults 8 and 9)
 *   dlchurn DIR N     dlopen/dlclose DIR/lib1.so .. DIR/libN.so; only libN's churn_leak leaks
 *                     (fault 12)
 *   forkannotate N    a thread loops __lsan_register/unregister_root_region while main forks N
 *                     children that register one too (fault 1's kin: no child may hang)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void *keep(void *p) { __asm__ volatile("" ::"r"(p) : "memory"); return p; }

// ---- forkdl ---------------------------------------------------------------------------------
static const char *churn_library;
static atomic_int stop;

static void *dlopen_loop(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        void *handle = dlopen(churn_library, RTLD_NOW | RTLD_LOCAL);
        if (handle) dlclose(handle);
    }
    return NULL;
}

/* Waits for a child at most 10 s (polling: the child cannot be waited on with a timeout);
 * a child still there then is hung: it is killed, so it cannot hold the caller's pipes open. */
static int wait_or_kill(pid_t child, int *status) {
    for (int waited_ms = 0; waited_ms < 10000; waited_ms++) {
        pid_t done = waitpid(child, status, WNOHANG);
        if (done == child) return 1;
        if (done < 0) return 0;
        usleep(1000);
    }
    kill(child, SIGKILL);
    waitpid(child, status, 0);
    return 0;
}

/* Runs `loop` on a thread while main forks `count` children, each running `in_child` (which
 * execs or exits); a child that takes over 10 s is hung, and forking stops. */
static int fork_during(void *(*loop)(void *), void (*in_child)(void), int count) {
    pthread_t thread;
    pthread_create(&thread, NULL, loop, NULL);
    int failures = 0, hung = 0, forked = 0;
    for (int i = 0; i < count && !hung; i++) {
        pid_t child = fork();
        if (child == 0) in_child();
        forked++;
        int status;
        if (child < 0) failures++;
        else if (!wait_or_kill(child, &status)) hung++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status)) failures++;
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    printf("forked %d, failed %d, hung %d\n", forked, failures, hung);
    return failures || hung;
}

static void exec_true(void) {
    execl("/bin/true", "true", (char *)NULL);
    _exit(126);
}

static int forkdl(const char *library, int count) {
    churn_library = library;
    return fork_during(dlopen_loop, exec_true, count);
}

// ---- vforkexit ------------------------------------------------------------------------------
static int vforkexit(void) {
    keep(malloc(4321));
    pid_t child = vfork();
    if (child == 0) {
        execl("/nonexistent/program", "program", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(child, &status, 0);
    keep(malloc(1234));
    char *twice = keep(malloc(40));
    free(twice);
    free(keep(twice));
    char *block = keep(malloc(64));
    free(keep(block + 16));
    free(block);
    printf("child exit %d\n", WEXITSTATUS(status));
    return 0;
}

// ---- sigfree --------------------------------------------------------------------------------
#define POOL 256
static void *volatile pool[POOL];
static volatile sig_atomic_t next_slot;
static pthread_t main_thread;

static void free_some(int signal_number) {
    (void)signal_number;
    for (int i = 0; i < 16; i++) {
        int slot = (next_slot + i) % POOL;
        void *p = pool[slot];
        pool[slot] = NULL;
        free(p);
    }
    next_slot = (next_slot + 16) % POOL;
}

static void *send_signals(void *count) {
    for (long i = 0; i < (long)count; i++) {
        pthread_kill(main_thread, SIGUSR1);
        if (i % 64 == 0) sched_yield();
    }
    atomic_store(&stop, 1);
    return NULL;
}

static int sigfree(long count) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = free_some;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &action, NULL);
    main_thread = pthread_self();
    sigset_t usr1;   /* a parent may have started us with it blocked */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    for (int i = 0; i < POOL; i++) pool[i] = malloc(24);
    pthread_t sender;
    pthread_create(&sender, NULL, send_signals, (void *)count);
    for (unsigned long n = 0; !atomic_load(&stop); n++) {
        int slot = (int)(n % POOL);
        void *fresh = malloc(24);
        if (!pool[slot]) { pool[slot] = fresh; continue; }
        free(fresh);
    }
    pthread_join(sender, NULL);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    for (int i = 0; i < POOL; i++) free(pool[i]);
    printf("done\n");
    return 0;
}

// ---- exitrace -------------------------------------------------------------------------------
#define KEPT 500
static atomic_int warmed_up;

static void *allocate_forever(void *unused) {
    (void)unused;
    void *kept[KEPT] = {0};
    for (unsigned long n = 0;; n++) {
        int slot = (int)(n % KEPT);
        free(kept[slot]);
        kept[slot] = malloc(16 + n % 200);
        if (n == 4 * KEPT) atomic_fetch_add(&warmed_up, 1);
    }
    return NULL;
}

static int exitrace(void) {
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, allocate_forever, NULL);
    while (atomic_load(&warmed_up) < 4) sched_yield();
    exit(0);
}

// ---- daemonfork -----------------------------------------------------------------------------
static int daemonfork(const char *directory) {
    for (int fd = 3; fd < 1024; fd++) close(fd);
    int datadir = open(directory, O_RDONLY | O_DIRECTORY);
    if (datadir < 0) { perror("open"); return 2; }
    for (int i = 0; i < 8; i++)   /* the numbers a tracker may have held */
        if (dup(datadir) < 0) return 2;
    int data = openat(datadir, "data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    pid_t child = fork();
    if (child == 0) {
        keep(malloc(2222));
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    if (write(data, "data\n", 5) != 5) return 2;
    printf("worker exit %d\n", WEXITSTATUS(status));
    return 0;
}

// ---- closerange -----------------------------------------------------------------------------
/* Blocks live long enough (a ring of 100,000) to outlast the settle time: the writer thread
 * writes and removes record files all the time. */
#define RING 100000
static void *allocate_slowly(void *unused) {
    (void)unused;
    void **kept = calloc(RING, sizeof *kept);
    for (unsigned long n = 0; !atomic_load(&stop); n++) {
        int slot = (int)(n % RING);
        free(kept[slot]);
        kept[slot] = malloc(32 + n % 64);
    }
    for (int i = 0; i < RING; i++) free(kept[i]);
    free(kept);
    return NULL;
}

static int closerange(long count) {
    pthread_t thread;
    pthread_create(&thread, NULL, allocate_slowly, NULL);
    long failures = 0;
    for (long i = 0; i < count; i++) {
        syscall(SYS_close_range, 3, ~0u, 0);
        int fd = open("/dev/null", O_WRONLY);
        for (int j = 0; j < 20 && fd >= 0; j++)
            if (write(fd, "x", 1) != 1) { failures++; break; }
        if (fd >= 0 && close(fd) != 0) failures++;
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    printf("failures %ld\n", failures);
    return failures != 0;
}

// ---- freefds --------------------------------------------------------------------------------
static int freefds(int limit) {
    struct rlimit low = {(rlim_t)limit, (rlim_t)limit};
    setrlimit(RLIMIT_NOFILE, &low);
    int opened = 0;
    while (open("/dev/null", O_RDONLY) >= 0) opened++;
    printf("opened %d\n", opened);
    return 0;
}

// ---- vlimit ---------------------------------------------------------------------------------
/* VmSize from /proc/self/status, read without stdio (which would allocate). */
static long vm_size_kib(void) {
    char text[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t length = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    if (length <= 0) return -1;
    text[length] = 0;
    char *line = strstr(text, "VmSize:");
    return line ? strtol(line + 7, NULL, 10) : -1;
}

static int vlimit(int leak) {
    const size_t size = 8u << 20;   /* mmap'd by malloc: a fresh 4 MiB region of the index */
    free(keep(malloc(64)));   /* the heap exists before the limit is measured */
    struct rlimit saved;
    getrlimit(RLIMIT_AS, &saved);
    /* Room for the block (rounded up to a page) plus 16 KiB: not for a 64 KiB index leaf. */
    struct rlimit tight = {(rlim_t)vm_size_kib() * 1024 + size + 4096 + 16384, saved.rlim_max};
    setrlimit(RLIMIT_AS, &tight);
    char *block = malloc(size);
    setrlimit(RLIMIT_AS, &saved);
    if (!block) { printf("malloc failed\n"); return 1; }
    block[0] = 1;
    if (!leak) free(block);
    printf("ok\n");
    return 0;
}

// ---- dlchurn --------------------------------------------------------------------------------
static int dlchurn(const char *directory, int count) {
    for (int i = 1; i <= count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/lib%d.so", directory, i);
        void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!handle) { printf("dlopen %s: %s\n", path, dlerror()); return 1; }
        if (i == count) {
            void *(*leak)(size_t) = (void *(*)(size_t))dlsym(handle, "churn_leak");
            keep(leak(3333));
        }
        dlclose(handle);
    }
    printf("loaded %d\n", count);
    return 0;
}

// ---- forkannotate ------------------------------------------------------------------------
/* LSan's annotations, provided by libmemtrack.so when it is preloaded (weak: this program links
 * without it). */
extern void __lsan_register_root_region(const void *start, size_t size) __attribute__((weak));
extern void __lsan_unregister_root_region(const void *start, size_t size) __attribute__((weak));
static char root_region[64];

static void *annotate_loop(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        __lsan_register_root_region(root_region, sizeof root_region);
        __lsan_unregister_root_region(root_region, sizeof root_region);
    }
    return NULL;
}

static void register_and_exit(void) {
    __lsan_register_root_region(root_region, sizeof root_region);
    _exit(0);
}

/* A thread registers and unregisters a root region in a loop while main forks children that
 * register one too (the tracker's table lock, held by the looping thread at the fork, must not
 * stay held in the child). */
static int forkannotate(int count) {
    if (!__lsan_register_root_region) { printf("not preloaded\n"); return 2; }
    return fork_during(annotate_loop, register_and_exit, count);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "forkdl") && argc > 3) return forkdl(argv[2], atoi(argv[3]));
    if (!strcmp(what, "vforkexit")) return vforkexit();
    if (!strcmp(what, "sigfree") && argc > 2) return sigfree(atol(argv[2]));
    if (!strcmp(what, "exitrace")) return exitrace();
    if (!strcmp(what, "daemonfork") && argc > 2) return daemonfork(argv[2]);
    if (!strcmp(what, "closerange") && argc > 2) return closerange(atol(argv[2]));
    if (!strcmp(what, "freefds") && argc > 2) return freefds(atoi(argv[2]));
    if (!strcmp(what, "vlimit")) return vlimit(argc > 2 && !strcmp(argv[2], "leak"));
    if (!strcmp(what, "dlchurn") && argc > 3) return dlchurn(argv[2], atoi(argv[3]));
    if (!strcmp(what, "forkannotate") && argc > 2) return forkannotate(atoi(argv[2]));
    fprintf(stderr, "usage: faults forkdl|vforkexit|sigfree|exitrace|daemonfork|closerange|freefds|vlimit|dlchurn|forkannotate ...\n");
    return 2;
}
