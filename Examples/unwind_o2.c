/* unwind_o2.c: call chains a frame-pointer walk cannot follow. Built with -O2 (and -g) by the
 * aarch64 tests, where gcc omits frame pointers, like the distribution's libc. Each block is
 * reached through a chain whose every frame is asserted (function and line):
 *   24 bytes  make_buffer <- main                        a helper that calls only malloc
 *   40 bytes  by_key <- (libc's qsort) <- sort_keys <- main   a callback called by libc
 *   strdup    copy_name <- main                          allocated inside libc
 *   64 bytes  on_signal <- (trampoline) <- spin <- main  a handler that interrupted a leaf
 *             loop, whose return address is still in the link register
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep[4];
static char name[] = "name";
static volatile int spinning, handled;

static __attribute__((noinline)) char *make_buffer(size_t size)
{
    char *buffer = malloc(size);                          // CHAIN: make_buffer
    if (buffer) memset(buffer, 'b', size);
    return buffer;
}

static int by_key(const void *a, const void *b)
{
    if (!keep[1]) keep[1] = malloc(40);                   // CHAIN: by_key
    return *(const int *)a - *(const int *)b;
}

static __attribute__((noinline)) int sort_keys(int *keys, size_t count)
{
    qsort(keys, count, sizeof *keys, by_key);             // CHAIN: sort_keys
    return keys[0];
}

static __attribute__((noinline)) char *copy_name(const char *name)
{
    char *copy = strdup(name);                            // CHAIN: copy_name
    if (copy) copy[0] = 'N';
    return copy;
}

static void on_signal(int signal_number)
{
    (void)signal_number;
    keep[3] = malloc(64);                                 // CHAIN: on_signal
    handled = 1;
}

/* A leaf: no frame, the return address stays in x30 while it waits for the handler. */
static __attribute__((noinline)) void spin(void)
{
    spinning = 1;
    while (!handled) { }                                  // CHAIN: spin
}

static void *interrupter(void *main_thread)
{
    while (!spinning) { }
    pthread_kill(*(pthread_t *)main_thread, SIGUSR1);
    return NULL;
}

int main(void)
{
    keep[0] = make_buffer(24);                            // CHAIN: main make_buffer
    int keys[] = {5, 3, 9, 1, 7};
    int smallest = sort_keys(keys, 5);                    // CHAIN: main sort_keys
    keep[2] = copy_name(name);                            // CHAIN: main copy_name

    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGUSR1, &action, NULL);
    sigset_t unblock;   // a test runner may start us with signals blocked
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    pthread_t self = pthread_self(), thread;
    pthread_create(&thread, NULL, interrupter, &self);
    spin();                                               // CHAIN: main spin
    pthread_join(thread, NULL);
    return smallest == 1 ? 0 : 2;
}
