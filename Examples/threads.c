/* threads.c: NTHREADS threads churn through many blocks; each leaks exactly one block of the
 * size 1000 + its index (1001, 1002, ...). Blocks also cross threads: the main thread hands
 * every worker blocks to free, and frees the blocks the workers hand back. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 4
#define CHURN 500
#define HANDOFF 64

struct worker {
    int index;
    void *from_main[HANDOFF]; /* allocated by main, freed by the worker */
    void *to_main[HANDOFF];   /* allocated by the worker, freed by main */
    void *leak;
};

static pthread_barrier_t start;

static void *work(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(&start);
    for (int j = 0; j < CHURN; j++) {
        char *p = malloc((size_t)(j % 200) + 1);
        p[0] = (char)j;
        free(p);
    }
    for (int j = 0; j < HANDOFF; j++) {
        free(w->from_main[j]);
        w->to_main[j] = malloc(48);
    }
    w->leak = malloc(1000 + (size_t)w->index); /* LEAK: thread */
    return NULL;
}

int main(void)
{
    static struct worker workers[NTHREADS];
    pthread_t ids[NTHREADS];
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        workers[i].index = i + 1;
        for (int j = 0; j < HANDOFF; j++)
            workers[i].from_main[j] = malloc(24);
        if (pthread_create(&ids[i], NULL, work, &workers[i]) != 0)
            return 1;
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(ids[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        for (int j = 0; j < HANDOFF; j++)
            free(workers[i].to_main[j]);
    pthread_barrier_destroy(&start);
    printf("threads: %d leaks\n", NTHREADS);
    return 0;
}
