/* threads8.c: 8 threads each leak 100 blocks at one line (800 in all), while freeing as many;
 * thread i's blocks are 100 + i bytes, so each thread's leaks can be told apart. */
#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 8
#define LEAKS 100

static pthread_barrier_t start;
static void *volatile sink;

static void *work(void *arg)
{
    size_t index = (size_t)arg;
    pthread_barrier_wait(&start);
    for (int j = 0; j < LEAKS; j++) {
        free(malloc(64 + (size_t)j));
        sink = malloc(100 + index); /* LEAK: thread */
    }
    return NULL;
}

int main(void)
{
    pthread_t threads[NTHREADS];
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (size_t i = 0; i < NTHREADS; i++) pthread_create(&threads[i], NULL, work, (void *)i);
    for (int i = 0; i < NTHREADS; i++) pthread_join(threads[i], NULL);
    sink = NULL;
    return 0;
}
