/* stress/threads.c: N threads churn malloc/free with cross-thread frees, realloc chains,
 * posix_memalign and calloc; at the end thread t leaks (t+1) blocks of 1000+t bytes.
 * Usage: threads [threads=8] [iterations=200000] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 1024
static int thread_count = 8, iterations = 200000;
/* One mailbox per thread: others drop blocks into it, the owner frees them (cross-thread). */
static _Atomic(void *) mailbox[64][RING];

static void *worker(void *arg) {
    int t = (int)(long)arg;
    unsigned seed = 12345u + (unsigned)t;
    void *local[64] = {0};
    for (int i = 0; i < iterations; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        int slot = r % 64;
        if (local[slot]) {
            if (r & 0x10000) {   /* hand it to another thread to free */
                int other = (int)((r >> 4) % (unsigned)thread_count);
                void *old = atomic_exchange(&mailbox[other][r % RING], local[slot]);
                free(old);
            } else if (r & 0x20000) {   /* grow it: a realloc chain */
                void *p = realloc(local[slot], 16 + (r % 4096));
                if (!p) abort();
                local[slot] = p;
                continue;
            } else {
                free(local[slot]);
            }
            local[slot] = NULL;
        }
        switch (r % 4) {
        case 0: local[slot] = malloc(1 + r % 512); break;
        case 1: local[slot] = calloc(1 + r % 8, 32); break;
        case 2: if (posix_memalign(&local[slot], 64 << (r % 4), 100)) abort(); break;
        case 3: local[slot] = realloc(NULL, 1 + r % 300); break;
        }
        if (!local[slot]) abort();
        memset(local[slot], 1, 1);
        /* drain my mailbox a little */
        void *m = atomic_exchange(&mailbox[t][i % RING], NULL);
        free(m);
    }
    for (int s = 0; s < 64; s++) free(local[s]);
    /* the deliberate leaks */
    for (int k = 0; k <= t; k++) {
        char *leak = malloc(1000 + (size_t)t);
        if (!leak) abort();
        leak[0] = 1;
        __asm__ volatile("" ::"r"(leak) : "memory");
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) thread_count = atoi(argv[1]);
    if (argc > 2) iterations = atoi(argv[2]);
    if (thread_count > 64) thread_count = 64;
    pthread_t threads[64];
    for (int t = 0; t < thread_count; t++)
        if (pthread_create(&threads[t], NULL, worker, (void *)(long)t)) abort();
    for (int t = 0; t < thread_count; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < 64; t++)
        for (int i = 0; i < RING; i++) free(atomic_exchange(&mailbox[t][i], NULL));
    printf("done\n");
    return 0;
}
