/* leak_roots.c: blocks kept only in one kind of root each, printed as "expect ADDRESS KIND":
 * a global, memory the program mapped itself (as python's obmalloc arenas), the stack of a
 * thread still running at exit, a register of a thread spinning at
 * exit, static TLS (__thread) of the main thread and of a live thread, the dynamic TLS of a
 * dlopened library, and pthread-specific data. One block is lost, as a control. The program
 * exits with status 3 while two threads still run: the check must not change that.
 * `leak_roots blocked` blocks every signal before it starts its threads (they inherit the mask);
 * otherwise every signal is unblocked first (a test runner's threads block them all, and a
 * child inherits the mask of the thread that started it). */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void expect(const void *block, const char *kind) { printf("expect %p %s\n", block, kind); }

static void *in_global;
static __thread void *in_static_tls;
static pthread_key_t key;
static atomic_int ready;
static pthread_mutex_t never_unlocked = PTHREAD_MUTEX_INITIALIZER;

/* Nothing but this thread's stack (and its TLS) holds its blocks; it then blocks forever. */
static void *holder(void *unused) {
    (void)unused;
    void *volatile on_stack = malloc(72);
    in_static_tls = malloc(88);
    pthread_setspecific(key, malloc(104));
    expect(on_stack, "reachable");
    expect(in_static_tls, "reachable");
    expect(pthread_getspecific(key), "reachable");
    fflush(stdout);
    atomic_fetch_add(&ready, 1);
    pthread_mutex_lock(&never_unlocked);   /* main holds it: blocks until the process ends */
    return on_stack;
}

/* The block's address lives only in r12 while the thread spins; memory holds it xor-ed. */
#define SCRAMBLE 0x5a5a5a5a5a5a5a5aull
uintptr_t scrambled_address;
extern void *spinner(void *);
__asm__(
    ".text\n"
    ".globl spinner\n"
    ".type spinner, @function\n"
    "spinner:\n"
    "    push %rbp\n"
    "    mov $56, %edi\n"
    "    call malloc@PLT\n"
    "    mov %rax, %r12\n"
    "    movabs $0x5a5a5a5a5a5a5a5a, %rcx\n"
    "    xor %rcx, %rax\n"
    "    mov %rax, scrambled_address(%rip)\n"
    "    xor %eax, %eax\n"
    "    xor %ecx, %ecx\n"
    "    xor %edx, %edx\n"
    "    xor %esi, %esi\n"
    "    xor %edi, %edi\n"
    "    xor %r8d, %r8d\n"
    "    xor %r9d, %r9d\n"
    "    xor %r10d, %r10d\n"
    "    xor %r11d, %r11d\n"
    "1:  pause\n"
    "    jmp 1b\n"
    ".size spinner, .-spinner\n");

int main(int argc, char **argv) {
    sigset_t mask;
    if (argc > 1 && strcmp(argv[1], "blocked") == 0) sigfillset(&mask);
    else sigemptyset(&mask);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    pthread_key_create(&key, NULL);
    pthread_mutex_lock(&never_unlocked);

    in_global = malloc(40);
    expect(in_global, "reachable");
    in_static_tls = malloc(48);
    expect(in_static_tls, "reachable");
    void **arena = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) return 1;
    arena[70000] = malloc(112);   /* in the arena's 137th page: the others were never touched */
    expect(arena[70000], "reachable");
    arena = NULL;
    pthread_setspecific(key, malloc(64));
    expect(pthread_getspecific(key), "reachable");

    char path[4096];
    snprintf(path, sizeof path, "%s", argv[0]);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "tls_plugin.so");
    void *plugin = dlopen(path, RTLD_NOW);
    if (!plugin) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    void *(*keep)(size_t) = (void *(*)(size_t))dlsym(plugin, "tls_plugin_keep");
    expect(keep(80), "reachable");

    void *lost = malloc(32);
    expect(lost, "definitely");
    lost = NULL;

    pthread_t thread;
    pthread_create(&thread, NULL, holder, NULL);
    pthread_create(&thread, NULL, spinner, NULL);
    while (atomic_load(&ready) < 1 || !__atomic_load_n(&scrambled_address, __ATOMIC_ACQUIRE)) sched_yield();
    expect((void *)(scrambled_address ^ SCRAMBLE), "reachable");
    fflush(stdout);
    exit(3);
}
