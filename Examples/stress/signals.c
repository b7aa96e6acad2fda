/* stress/signals.c: signal behaviour the tracker must not change. Modes:
 *   usr1     4 threads allocate while the main thread sends itself SIGUSR1 10,000 times (a
 *            do-nothing handler installed WITHOUT SA_RESTART by sigaction, then WITH it by
 *            signal()); a reader blocked in read() on a pipe must see EINTR in the first
 *            phase and must never see it in the second.
 *   pipe     SIGPIPE set to SIG_IGN; a write to a pipe with no reader must fail with EPIPE.
 *   query    sigaction(SIG, NULL, &old) for the watched signals must show SIG_DFL, flags 0 and
 *            an empty mask, exactly as without the tracker; prints what it saw.
 *   idle     leaks 3 blocks (100, 200, 300 bytes), prints "ready", sleeps until killed.
 *   exithandler  a SIGALRM handler calls _exit(7) while the main thread churns malloc/free. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static atomic_int stop;
static atomic_long handled;
static void on_usr1(int signal_number) { (void)signal_number; atomic_fetch_add(&handled, 1); }

static void *churn(void *arg) {
    unsigned seed = (unsigned)(long)arg;
    void *slots[128] = {0};
    while (!atomic_load(&stop)) {
        seed = seed * 1103515245u + 12345u;
        int s = (seed >> 8) % 128;
        free(slots[s]);
        slots[s] = malloc(1 + (seed >> 12) % 1000);
    }
    for (int s = 0; s < 128; s++) free(slots[s]);
    return NULL;
}

static int pipe_fds[2];
static atomic_int reader_eintr, reader_done, reader_started;
static pthread_t reader_thread;
static void *reader(void *arg) {
    (void)arg;
    char c;
    atomic_store(&reader_started, 1);
    for (;;) {
        ssize_t n = read(pipe_fds[0], &c, 1);
        if (n < 0 && errno == EINTR) { atomic_fetch_add(&reader_eintr, 1); continue; }
        if (n <= 0 || c == 'q') break;
    }
    atomic_store(&reader_done, 1);
    return NULL;
}

static int usr1_phase(int restart) {
    atomic_store(&reader_eintr, 0);
    atomic_store(&reader_done, 0);
    atomic_store(&reader_started, 0);
    if (pipe(pipe_fds)) return 2;
    pthread_create(&reader_thread, NULL, reader, NULL);
    /* The reader must be running before the signals start: with four allocating threads on two
     * cores it may not be scheduled within 20 ms, and signals that all arrive before its read()
     * interrupt nothing. Without SA_RESTART, signals go on (a bounded while) until one has
     * interrupted the read; with it, the same 5,000 as always. */
    for (int i = 0; i < 5000 && !atomic_load(&reader_started); i++) usleep(1000);
    usleep(20000);
    for (int i = 0; i < 5000 || (!restart && !atomic_load(&reader_eintr) && i < 200000); i++) {
        pthread_kill(reader_thread, SIGUSR1);
        if (i % 100 == 0) usleep(100);
    }
    usleep(20000);
    if (write(pipe_fds[1], "q", 1) != 1) return 2;
    pthread_join(reader_thread, NULL);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    int eintr = atomic_load(&reader_eintr);
    printf("phase %s: EINTR %s\n", restart ? "SA_RESTART" : "no SA_RESTART", eintr ? "seen" : "not seen");
    return restart ? eintr != 0 : eintr == 0;
}

static int mode_usr1(void) {
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) pthread_create(&threads[t], NULL, churn, (void *)(long)(t + 7));
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;   /* no SA_RESTART */
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);
    int failed = usr1_phase(0);
    signal(SIGUSR1, on_usr1);      /* BSD semantics: SA_RESTART */
    failed |= usr1_phase(1);
    atomic_store(&stop, 1);
    for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
    printf("handled: %s\n", atomic_load(&handled) > 0 ? "yes" : "no");
    return failed;
}

static int mode_pipe(void) {
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    if (pipe(fds)) return 2;
    close(fds[0]);
    ssize_t n = write(fds[1], "x", 1);
    printf("write: %zd %s\n", n, n < 0 ? strerror(errno) : "");
    return !(n < 0 && errno == EPIPE);
}

static int mode_query(void) {
    static const int numbers[] = {SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE, SIGTERM, SIGINT, SIGHUP,
                                  SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU};
    int failed = 0;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        struct sigaction old;
        memset(&old, 0x5a, sizeof old);   /* whatever sigaction does not fill shows */
        if (sigaction(numbers[i], NULL, &old) != 0) { printf("sigaction %d failed\n", numbers[i]); failed = 1; continue; }
        int empty = 1;
        for (int s = 1; s < NSIG; s++) if (sigismember(&old.sa_mask, s) == 1) empty = 0;
        int dfl = old.sa_handler == SIG_DFL;
        printf("SIG%s: %s flags=%#x mask=%s\n", sigabbrev_np(numbers[i]), dfl ? "SIG_DFL" : "other",
               (unsigned)old.sa_flags, empty ? "empty" : "non-empty");
        if (!dfl || !empty || old.sa_flags) failed = 1;
    }
    /* Install a handler with a mask and flags and read it back. */
    struct sigaction action, back;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    action.sa_flags = SA_RESTART | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGHUP);
    sigaction(SIGUSR2, &action, NULL);
    memset(&back, 0, sizeof back);
    sigaction(SIGUSR2, NULL, &back);
    int same = back.sa_handler == on_usr1 && (back.sa_flags & (SA_RESTART | SA_NODEFER)) == (SA_RESTART | SA_NODEFER) &&
               sigismember(&back.sa_mask, SIGHUP) == 1 && sigismember(&back.sa_mask, SIGINT) == 0;
    printf("read back: %s\n", same ? "same" : "different");
    return failed || !same;
}

static int mode_idle(void) {
    for (int size = 100; size <= 300; size += 100) {
        char *leak = malloc((size_t)size);
        leak[0] = 1;
        __asm__ volatile("" ::"r"(leak) : "memory");
    }
    void *freed = malloc(50);
    free(freed);
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
    return 0;
}

static void exit_now(int signal_number) { (void)signal_number; _exit(7); }

static int mode_exithandler(void) {
    signal(SIGALRM, exit_now);
    struct itimerval timer = {{0, 0}, {0, 2000}};
    setitimer(ITIMER_REAL, &timer, NULL);
    void *slots[512] = {0};
    for (unsigned i = 0;; i++) {
        unsigned s = (i * 2654435761u) >> 23;
        free(slots[s]);
        slots[s] = malloc(16 + i % 200);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    /* A launcher may hand us a blocked signal mask (a libdispatch thread spawning us does). */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (!strcmp(mode, "usr1")) return mode_usr1();
    if (!strcmp(mode, "pipe")) return mode_pipe();
    if (!strcmp(mode, "query")) return mode_query();
    if (!strcmp(mode, "idle")) return mode_idle();
    if (!strcmp(mode, "exithandler")) return mode_exithandler();
    fprintf(stderr, "usage: signals usr1|pipe|query|idle|exithandler\n");
    return 2;
}
