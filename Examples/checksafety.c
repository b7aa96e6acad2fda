/* checksafety.c: programs the exit leak check must not change (issue 17, items 1-7). Each mode
 * behaves the same with and without the tracker: same output, exit status 0.
 *
 *   malloc1          valgrind's memcheck/tests/malloc1.c: writes p[-1] of a live block (the
 *                    allocator's header); prints "expect ADDRESS definitely"
 *   guard            LSan's leak_check_segv: PROT_NONE pages inside a live 10 MiB block and
 *                    inside a writable data segment; blocks stored past the guard pages are
 *                    still reachable; prints DONE
 *   flip N           a thread that blocks every signal, and that a helper process keeps traced
 *                    (so nothing else can stop it), flips pages of a heap block and of an
 *                    anonymous mapping between PROT_NONE and read-write; exits after N ms
 *   sleepers [serve] five threads sleep in nanosleep, poll, epoll_wait, select, sigtimedwait for
 *                    a minute; any early return (EINTR) exits 3. serve: prints "ready PID",
 *                    answers each stdin line with "tick N" (after allocating a block, so that
 *                    each `memdir check PID` has a new sequence number), exits when stdin closes
 *   seccomp          a filter that kills the process on rt_tgsigqueueinfo, tgkill and tkill,
 *                    while a second thread sleeps
 *   signalfd [serve] every signal blocked and read through a signalfd by a thread, which
 *                    prints "got signal N" for each; serve as above
 *   dlopenglobal LIB dlopen(LIB, RTLD_GLOBAL): the loader's global scope grows in a heap block
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul

static void fail(const char *what) { perror(what); exit(2); }

// ---- malloc1 -----------------------------------------------------------------------------------
/* valgrind's test, as it is: a use after free, then a write before a live block. */
static __attribute__((noinline)) void really(void) {
    char *p = malloc(10);
    for (int i = 0; i < 10; i++) p[i] = 'z';
    free(p);
    p[1] = 'z';
    p = malloc(10);
    p[2] = 'z';
    p[-1] = 'z';
    printf("expect %p definitely\n", (void *)p);
}

// ---- guard -------------------------------------------------------------------------------------
static char data[10 * 1024 * 1024];
static void *volatile big;

static int guard(void) {
    big = malloc(10 * 1024 * 1024);
    uintptr_t inside = ((uintptr_t)big + PAGE - 1) & ~(PAGE - 1);
    uintptr_t in_data = ((uintptr_t)data + PAGE - 1) & ~(PAGE - 1);
    /* Past the guard pages: these blocks are reachable only from there. */
    void *behind_block = malloc(40), *behind_data = malloc(48);
    *(void **)(inside + 64 * 1024) = behind_block;
    *(void **)(in_data + 64 * 1024) = behind_data;
    if (mprotect((void *)inside, 16 * 1024, PROT_NONE) || mprotect((void *)in_data, 16 * 1024, PROT_NONE))
        fail("mprotect");
    printf("expect %p reachable\nexpect %p reachable\n", behind_block, behind_data);
    fprintf(stderr, "DONE\n");
    return 0;
}

// ---- flip --------------------------------------------------------------------------------------
static char *volatile flip_block, *volatile flip_map;
static sem_t flipper_ready;
static atomic_int flipper_tid;

static void *flipper(void *unused) {
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    atomic_store(&flipper_tid, (int)syscall(SYS_gettid));
    sem_post(&flipper_ready);
    uintptr_t pages[2] = {((uintptr_t)flip_block + PAGE - 1) & ~(PAGE - 1), (uintptr_t)flip_map};
    for (unsigned long i = 0;; i++) {
        void *page = (void *)pages[i & 1];
        mprotect(page, 64 * 1024, PROT_NONE);
        mprotect(page, 64 * 1024, PROT_READ | PROT_WRITE);
    }
    return NULL;
}

static int flip(int milliseconds) {
    flip_block = malloc(1 << 20);
    flip_map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!flip_block || flip_map == MAP_FAILED) fail("memory");
    memset(flip_block, 1, 1 << 20);
    memset(flip_map, 1, 1 << 20);
    sem_init(&flipper_ready, 0, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, flipper, NULL)) fail("pthread_create");
    sem_wait(&flipper_ready);
    /* A helper keeps the flipper traced, as a debugger would: no one else can stop it. */
    int ready[2];
    if (pipe(ready)) fail("pipe");
    pid_t parent = getpid();
    pid_t helper = fork();
    if (helper == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char answer = ptrace(PTRACE_SEIZE, atomic_load(&flipper_tid), 0, 0) == 0 ? 'y' : 'n';
        if (write(ready[1], &answer, 1) != 1) _exit(1);
        while (getppid() == parent) pause();
        _exit(0);
    }
    char answer = 0;
    if (read(ready[0], &answer, 1) != 1) fail("helper");
    if (answer != 'y') fprintf(stderr, "note: the helper could not trace the flipper\n");
    struct timespec wait = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
    nanosleep(&wait, NULL);
    printf("flipped\n");
    return 0;   /* exit while the flipper runs */
}

// ---- sleepers ----------------------------------------------------------------------------------
static sem_t asleep;
static atomic_int sleeper_tids[5];

static void woke(const char *call, long result) {
    fprintf(stderr, "%s returned %ld early (%s)\n", call, result, result < 0 ? strerror(errno) : "no error");
    _exit(3);   /* a worker that treats EINTR as fatal */
}

static void *sleeper(void *argument) {
    int kind = (int)(intptr_t)argument;
    atomic_store(&sleeper_tids[kind], (int)syscall(SYS_gettid));
    sem_post(&asleep);
    long result;
    switch (kind) {
    case 0: {
        struct timespec minute = {60, 0};
        result = nanosleep(&minute, NULL);
        woke("nanosleep", result);
    }
    case 1: {
        int fds[2];
        if (pipe(fds)) fail("pipe");
        struct pollfd poll_fd = {fds[0], POLLIN, 0};
        result = poll(&poll_fd, 1, 60000);
        woke("poll", result);
    }
    case 2: {
        int epoll = epoll_create1(0);
        struct epoll_event event;
        result = epoll_wait(epoll, &event, 1, 60000);
        woke("epoll_wait", result);
    }
    case 3: {
        int fds[2];
        if (pipe(fds)) fail("pipe");
        fd_set read_set;
        FD_ZERO(&read_set);
        FD_SET(fds[0], &read_set);
        struct timeval minute = {60, 0};
        result = select(fds[0] + 1, &read_set, NULL, NULL, &minute);
        woke("select", result);
    }
    default: {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        struct timespec minute = {60, 0};
        result = sigtimedwait(&set, NULL, &minute);
        woke("sigtimedwait", result);
    }
    }
    return NULL;
}

/* Waits until the thread is asleep in the kernel (state S in its stat), at most 5 s. */
static void wait_asleep(int tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    for (int attempt = 0; attempt < 5000; attempt++) {
        char text[512] = {0};
        FILE *file = fopen(path, "r");
        if (!file) return;
        size_t n = fread(text, 1, sizeof text - 1, file);
        fclose(file);
        text[n] = 0;
        char *state = strrchr(text, ')');
        if (state && state[1] == ' ' && state[2] == 'S') return;
        struct timespec millisecond = {0, 1000000};
        nanosleep(&millisecond, NULL);
    }
}

/* Until stdin closes, each line allocates a block (so that each `memdir check` sees a new
 * sequence number) and is answered "tick N". */
static void *volatile ticks[64];
static void wait_for_stdin_close(void) {
    char buffer[256];
    int count = 0;
    for (;;) {
        ssize_t n = read(0, buffer, sizeof buffer);
        if (n <= 0) return;
        for (ssize_t i = 0; i < n; i++) {
            if (buffer[i] != '\n') continue;
            ticks[count % 64] = malloc(16);
            printf("tick %d\n", ++count);
            fflush(stdout);
        }
    }
}

static int sleepers(int serve) {
    sem_init(&asleep, 0, 0);
    for (int kind = 0; kind < 5; kind++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, sleeper, (void *)(intptr_t)kind)) fail("pthread_create");
    }
    for (int kind = 0; kind < 5; kind++) sem_wait(&asleep);
    for (int kind = 0; kind < 5; kind++) wait_asleep(atomic_load(&sleeper_tids[kind]));
    if (serve) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        wait_for_stdin_close();
    }
    printf("slept\n");
    return 0;
}

// ---- seccomp -----------------------------------------------------------------------------------
static void *idle_thread(void *unused) {
    (void)unused;
    for (;;) pause();
    return NULL;
}

static int filtered(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, idle_thread, NULL)) fail("pthread_create");
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_tgsigqueueinfo, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tkill, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog program = {sizeof code / sizeof code[0], code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) fail("PR_SET_NO_NEW_PRIVS");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program)) fail("seccomp");
    printf("filtered\n");
    return 0;
}

// ---- signalfd ----------------------------------------------------------------------------------
static int signal_fd;
static sem_t reader_started;

static void *signal_reader(void *unused) {
    (void)unused;
    sem_post(&reader_started);
    for (;;) {
        struct signalfd_siginfo info;
        if (read(signal_fd, &info, sizeof info) != sizeof info) continue;
        printf("got signal %u\n", info.ssi_signo);
        fflush(stdout);
    }
    return NULL;
}

static int signals_by_fd(int serve) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);   /* inherited by the reader */
    signal_fd = signalfd(-1, &all, SFD_CLOEXEC);
    if (signal_fd < 0) fail("signalfd");
    sem_init(&reader_started, 0, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, signal_reader, NULL)) fail("pthread_create");
    sem_wait(&reader_started);
    if (serve) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        wait_for_stdin_close();
    }
    /* A signal still pending at exit would be read here. */
    struct pollfd poll_fd = {signal_fd, POLLIN, 0};
    printf("pending %d\n", poll(&poll_fd, 1, 0));
    return 0;
}

// ---- dlopenglobal ------------------------------------------------------------------------------
static void *volatile library;

static int open_global(const char *path) {
    library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!library) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    printf("opened\n");
    return 0;
}

// ---- spawners ----------------------------------------------------------------------------------
/* Threads that keep making threads, each of which mallocs and frees, while main returns: freeres
 * at exit must not run under their feet (it frees the loader's and libc's tables they use). */
static void *spawned_leaf(void *unused) {
    char *volatile p = malloc(64);
    p[0] = 1;
    free(p);
    return unused;
}

static void *spawner(void *unused) {
    for (;;) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, spawned_leaf, NULL) == 0) pthread_detach(thread);
    }
    return unused;
}

static int spawners(void) {
    for (int i = 0; i < 3; i++) {
        pthread_t thread;
        pthread_create(&thread, NULL, spawner, NULL);
    }
    struct timespec pause = {0, 50000000};
    nanosleep(&pause, NULL);
    printf("bye\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int serve = argc > 2 && !strcmp(argv[2], "serve");
    /* As started from a shell: a test runner's thread may hand its blocked signals down. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (!strcmp(mode, "malloc1")) { really(); return 0; }
    if (!strcmp(mode, "guard")) return guard();
    if (!strcmp(mode, "flip")) return flip(argc > 2 ? atoi(argv[2]) : 20);
    if (!strcmp(mode, "sleepers")) return sleepers(serve);
    if (!strcmp(mode, "seccomp")) return filtered();
    if (!strcmp(mode, "signalfd")) return signals_by_fd(serve);
    if (!strcmp(mode, "dlopenglobal") && argc > 2) return open_global(argv[2]);
    if (!strcmp(mode, "spawners")) return spawners();
    fprintf(stderr, "usage: checksafety malloc1|guard|flip [MS]|sleepers [serve]|seccomp|signalfd [serve]|dlopenglobal LIB|spawners\n");
    return 2;
}
