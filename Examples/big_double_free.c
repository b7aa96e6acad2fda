// big_double_free.c: a thread frees a 2 MiB block twice. The block is too large for the
// quarantine to hold back, yet the report has all three stacks: the allocation, the first
// free and the second.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *twice(void *unused)
{
    (void)unused;
    char *block = malloc(2 << 20);        // BIG: malloc
    block[0] = 1;
    free(block);                          // BIG: first free
    free(block);                          // BIG: second free
    return NULL;
}

int main(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, twice, NULL) != 0) return 2;
    pthread_join(thread, NULL);
    puts("big_double_free: done");
    return 0;
}
