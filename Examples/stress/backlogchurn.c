/* stress/backlogchurn.c: blocks past the young table, freed by other threads while their events
 * wait for the writer. Each of `threads` threads, for `rounds` rounds, allocates 3,000 blocks
 * (16..79 bytes: enough live blocks to move most out of the young table), frees a third at once,
 * reallocates a third, and hands the rest to the next thread, which frees them. Odd rounds sleep
 * 120 ms first, so survivors outlive MEM_SETTLE_MS and get records that the frees must remove.
 * At the end thread t leaks (t+1) blocks of 2000+t bytes, allocated first (they wait in the
 * backlog, or get records, the whole run). Expected record: exactly those leaks.
 * Usage: backlogchurn [threads=4] [rounds=6] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PER_ROUND 3000
#define MAX_THREADS 16
static int thread_count = 4, rounds = 6;
static pthread_barrier_t round_barrier;
/* What thread t hands to thread t+1 each round (freed there after the barrier). */
static char *handed[MAX_THREADS][PER_ROUND];

static void hold_on(char *block) { __asm__ volatile("" ::"r"(block) : "memory"); }

static void *worker(void *arg) {
    int t = (int)(long)arg;
    for (int k = 0; k <= t; k++) {   /* the deliberate leaks */
        char *leak = malloc(2000 + (size_t)t);
        if (!leak) abort();
        memset(leak, 1, 8);
        hold_on(leak);
    }
    char *blocks[PER_ROUND];
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < PER_ROUND; i++) {
            blocks[i] = malloc(16 + (size_t)(i & 63));
            if (!blocks[i]) abort();
            blocks[i][0] = (char)i;
        }
        if (round & 1) nanosleep(&(struct timespec){0, 120 * 1000000L}, NULL);
        for (int i = 0; i < PER_ROUND; i++) {
            if (i % 3 == 1) { free(blocks[i]); blocks[i] = NULL; }
            else if (i % 3 == 2) {
                char *moved = realloc(blocks[i], 100 + (size_t)(i & 63));
                if (!moved) abort();
                blocks[i] = moved;
            }
        }
        for (int i = 0; i < PER_ROUND; i++) {
            handed[t][i] = i % 3 == 0 ? blocks[i] : NULL;
            if (i % 3 == 2) free(blocks[i]);
        }
        pthread_barrier_wait(&round_barrier);   /* every thread has handed its blocks */
        int from = (t + thread_count - 1) % thread_count;
        for (int i = 0; i < PER_ROUND; i++) free(handed[from][i]);
        pthread_barrier_wait(&round_barrier);   /* every hand-over is freed before the next */
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) thread_count = atoi(argv[1]);
    if (argc > 2) rounds = atoi(argv[2]);
    if (thread_count < 1 || thread_count > MAX_THREADS || rounds < 1) {
        fprintf(stderr, "usage: backlogchurn [threads=4 (1-16)] [rounds=6]\n");
        return 2;
    }
    pthread_barrier_init(&round_barrier, NULL, (unsigned)thread_count);
    pthread_t threads[MAX_THREADS];
    for (long t = 0; t < thread_count; t++)
        if (pthread_create(&threads[t], NULL, worker, (void *)t)) abort();
    for (int t = 0; t < thread_count; t++) pthread_join(threads[t], NULL);
    printf("done\n");
    return 0;
}
