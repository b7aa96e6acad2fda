/* stress/waves.c: a long-running program. `waves` waves of `per_wave` blocks (sizes 16..1039);
 * each wave lives ~100 ms (freed three waves later, 50 ms apart), so most blocks outlive the
 * settle time and get a file that must then be removed. Every 10th wave leaks one block of
 * 20000+wave bytes. Expected record: exactly those leaks.
 * Usage: waves [waves=50] [per_wave=6000] [threads=2] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int waves = 50, per_wave = 6000, threads = 2;

static void *run(void *arg) {
    int t = (int)(long)arg;
    int share = per_wave / threads;
    void **ring[3];
    for (int k = 0; k < 3; k++) ring[k] = calloc((size_t)share, sizeof(void *));
    unsigned seed = 99u + (unsigned)t;
    for (int w = 0; w < waves + 3; w++) {
        void **slot = ring[w % 3];
        for (int i = 0; i < share; i++) { free(slot[i]); slot[i] = NULL; }   /* the wave from 100 ms ago */
        if (w < waves) {
            for (int i = 0; i < share; i++) {
                seed = seed * 1103515245u + 12345u;
                slot[i] = malloc(16 + (seed >> 8) % 1024);
            }
            if (t == 0 && w % 10 == 0) {
                char *leak = malloc(20000 + (size_t)w);
                leak[0] = 1;
                __asm__ volatile("" ::"r"(leak) : "memory");
            }
        }
        usleep(50000);
    }
    for (int k = 0; k < 3; k++) free(ring[k]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) waves = atoi(argv[1]);
    if (argc > 2) per_wave = atoi(argv[2]);
    if (argc > 3) threads = atoi(argv[3]);
    pthread_t ids[16];
    for (int t = 0; t < threads && t < 16; t++) pthread_create(&ids[t], NULL, run, (void *)(long)t);
    for (int t = 0; t < threads && t < 16; t++) pthread_join(ids[t], NULL);
    printf("waves done\n");
    return 0;
}
