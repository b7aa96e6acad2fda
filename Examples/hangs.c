/* hangs.c: programs that hung or aborted under the tracker (issue 17, items 9-11).
 *   hangs sigfork N   a SIGALRM handler forks a child that only _exits, N times, while the
 *                     main thread allocates and frees; prints "forks N" and exits 0
 *   hangs parked N    a worker thread allocates and frees until a signal parks it in its
 *                     handler for good; main frees N blocks of its own and exits 0
 *   hangs drop UID    (as root) gives up root for UID, leaks a block and exits 0
 *   hangs loaderlock  a thread stays in a dl_iterate_phdr callback (the loader's lock held);
 *                     main raises SIGSEGV
 *   hangs loaderexit  the same thread; main leaks 555 bytes, prints "loader busy at exit" and
 *                     returns 0
 *   hangs loaderfork  the same, but main first forks a child that exits 0, and waits for it
 *   hangs readonly    leaks a block, makes its run directory read-only and exits 0 (as a user
 *                     other than root: root writes anyway)
 *   hangs resethand   a SIGCHLD handler with SA_RESETHAND, three children; prints what it saw
 *   hangs fill PATH   leaks a block, fills PATH's file system and exits 0
 *   hangs setids UID  keeps capabilities (PR_SET_KEEPCAPS), changes uid before gid as
 *                     `setpriv --reuid --regid` does, allocates, prints "ids UID" and exits 0
 * Untraced each exits 0; under the tracker the first hung every time, the second 4-6 runs in 10,
 * the third was aborted by glibc (134).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <link.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t forks;

static void fork_on_alarm(int signal_number) {
    (void)signal_number;
    int saved = errno;
    pid_t child = fork();
    if (child == 0) _exit(0);
    if (child > 0) forks++;
    errno = saved;
}

static int sigfork(int wanted) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = fork_on_alarm;
    action.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &action, NULL);
    struct itimerval every = {{0, 1000}, {0, 1000}};   /* every millisecond */
    setitimer(ITIMER_REAL, &every, NULL);
    void *held[64] = {0};
    for (unsigned long i = 0; forks < wanted; i++) {
        free(held[i % 64]);
        held[i % 64] = malloc(16 + i % 512);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 64; i++) free(held[i]);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
    printf("forks %s\n", forks >= wanted ? "done" : "short");
    return 0;
}

static sem_t parked;
static void park(int signal_number) {
    (void)signal_number;
    sem_post(&parked);
    for (;;) pause();
}

static void *churn(void *unused) {
    (void)unused;
    void *held[256] = {0};
    for (unsigned long i = 0;; i++) {
        free(held[i % 256]);
        held[i % 256] = malloc(16 + i % 200);
    }
    return NULL;
}

static int parked_exit(int count) {
    sem_init(&parked, 0, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = park;
    sigaction(SIGUSR2, &action, NULL);
    void **mine = malloc(sizeof(void *) * (size_t)count);
    for (int i = 0; i < count; i++) mine[i] = malloc(16 + i % 200);
    pthread_t worker;
    pthread_create(&worker, NULL, churn, NULL);
    usleep(20000);
    pthread_kill(worker, SIGUSR2);
    while (sem_wait(&parked) != 0) {}
    for (int i = 0; i < count; i++) free(mine[i]);
    free(mine);
    printf("parked\n");
    return 0;   /* exit() with the worker parked in its handler */
}

static int setids(int uid) {
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) { perror("prctl"); return 2; }
    if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) { perror("setresuid"); return 2; }
    /* The uid change cleared the effective set; raise it from the kept permitted set, as
     * setpriv does before it changes the gid. */
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, data) != 0) { perror("capget"); return 2; }
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) data[i].effective = data[i].permitted;
    if (syscall(SYS_capset, &header, data) != 0) { perror("capset"); return 2; }
    if (setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) != 0) { perror("setresgid"); return 2; }
    char *p = malloc(100);
    strcpy(p, "after");
    free(p);
    printf("ids %d %d\n", (int)getuid(), (int)getgid());
    return 0;
}

/* Gives up root for good (gid, then uid, no capabilities kept), then leaks a block and exits:
 * its run directory, root's with mode 0700, is no longer writable. */
static int drop(int uid) {
    if (setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) != 0) { perror("setresgid"); return 2; }
    if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) { perror("setresuid"); return 2; }
    char *leak = malloc(777);   /* HANGS: drop leak */
    strcpy(leak, "lost");
    leak = NULL;
    printf("dropped %d\n", (int)getuid());
    return 0;
}

/* A thread stays for good in a dl_iterate_phdr callback (which holds the loader's list lock);
 * then main dies of SIGSEGV (raised). Untraced it dies at once; the tracker's handler waited
 * for that lock to bring the module map up to date, for good. */
static int ends[2];
static int stay(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info; (void)size; (void)data;
    if (write(ends[1], "c", 1) != 1) _exit(3);
    for (;;) pause();
    return 0;
}
static void *walk_forever(void *unused) {
    (void)unused;
    dl_iterate_phdr(stay, NULL);
    return NULL;
}

static int park_in_the_loader(void) {
    if (pipe(ends) != 0) { perror("pipe"); return 0; }
    pthread_t walker;
    pthread_create(&walker, NULL, walk_forever, NULL);
    char byte;
    if (read(ends[0], &byte, 1) != 1) { fprintf(stderr, "the callback did not run\n"); return 0; }
    return 1;
}

static int loaderlock(void) {
    if (!park_in_the_loader()) return 2;
    printf("loader busy\n");
    raise(SIGSEGV);
    return 0;
}

/* The exit walked the loader's list (the module map, the leak check's roots) and waited for
 * that lock for good; untraced, exit never walks it. */
static int loaderexit(int fork_first) {
    if (!park_in_the_loader()) return 2;
    if (fork_first) {   /* fork's prepare handler walked the list too */
        pid_t child = fork();
        if (child == 0) _exit(0);
        int status = -1;
        if (child < 0 || waitpid(child, &status, 0) != child || status != 0) { fprintf(stderr, "child: %d\n", status); return 2; }
    }
    char *leak = malloc(555);   /* HANGS: loaderexit leak */
    strcpy(leak, "lost");
    leak = NULL;
    printf("loader busy at exit\n");
    return 0;
}

/* Leaks a block, then makes its own run directory (MEM_DIR/PID) read-only, as a program might
 * that tidies permissions under its working directory, and exits: no record made after that
 * can be created, the exit-time `leak-check` included. */
static int readonly_run_directory(void) {
    char *leak = malloc(555);   /* HANGS: readonly leak */
    strcpy(leak, "lost");
    leak = NULL;
    const char *mem = getenv("MEM_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%d", mem ? mem : "mem", (int)getpid());
    if (chmod(path, 0500) != 0) { perror(path); return 2; }
    printf("read-only\n");
    return 0;
}

/* SIGCHLD with SA_RESETHAND: the handler runs once, then the default (ignore) applies. The
 * tracker's handler sits in front of every program handler; it must hand the reset default back
 * to the kernel, not treat it as a fatal signal. */
static volatile sig_atomic_t children_seen;
static void on_child(int signal_number) { (void)signal_number; children_seen++; }
static int resethand(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_child;
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGCHLD, &action, NULL);
    for (int i = 0; i < 3; i++) {
        pid_t child = fork();
        if (child == 0) _exit(0);
        waitpid(child, NULL, 0);
    }
    struct sigaction now;
    sigaction(SIGCHLD, NULL, &now);
    free(malloc(10));
    printf("seen %d reset %d\n", (int)children_seen, now.sa_handler == SIG_DFL);
    return 0;
}

/* Leaks a block, then fills the file system at path (the MEM_DIR's, in the test) until it is
 * full, and exits: the tracker's `leak-check` record cannot be written at exit. */
static int fill(const char *path) {
    char *leak = malloc(1234);   /* HANGS: fill leak */
    strcpy(leak, "lost");
    leak = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(path); return 2; }
    static char page[65536];
    while (write(fd, page, sizeof page) > 0) {}
    for (int size = 4096; size > 0; size /= 2) while (write(fd, page, (size_t)size) > 0) {}
    close(fd);
    printf("full\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t ours;   /* a test runner may start us with them blocked */
    sigemptyset(&ours);
    sigaddset(&ours, SIGALRM);
    sigaddset(&ours, SIGUSR2);
    sigaddset(&ours, SIGCHLD);
    sigaddset(&ours, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &ours, NULL);
    const char *mode = argc > 1 ? argv[1] : "";
    int number = argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(mode, "sigfork")) return sigfork(number ? number : 300);
    if (!strcmp(mode, "parked")) return parked_exit(number ? number : 100000);
    if (!strcmp(mode, "setids")) return setids(number ? number : 65534);
    if (!strcmp(mode, "fill") && argc > 2) return fill(argv[2]);
    if (!strcmp(mode, "drop")) return drop(number ? number : 65534);
    if (!strcmp(mode, "loaderlock")) return loaderlock();
    if (!strcmp(mode, "loaderexit")) return loaderexit(0);
    if (!strcmp(mode, "loaderfork")) return loaderexit(1);
    if (!strcmp(mode, "readonly")) return readonly_run_directory();
    if (!strcmp(mode, "resethand")) return resethand();
    fprintf(stderr, "usage: hangs sigfork N | parked N | setids UID | fill PATH | drop UID | loaderlock | readonly | resethand\n");
    return 64;
}
