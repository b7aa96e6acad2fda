/* quarantine_history.c: double frees of blocks that have left the quarantine. A thread's
 * quarantine holds its last 4,096 frees; a block leaving it keeps its stacks among the last 256
 * that left. `recent` is freed, 4,100 more blocks are freed (so it leaves), then it is freed
 * again: the report has its allocation and first free. `forgotten` is freed, 4,400 more are
 * freed (it left more than 256 departures ago), then it is freed again: still a double free
 * (the address was never handed out again), without the first free's stack. The filler blocks
 * have another size than both, so glibc does not hand either address out again. */
#include <stdio.h>
#include <stdlib.h>

static void churn(int count)
{
    for (int i = 0; i < count; i++) free(malloc(200));
}

int main(void)
{
    char *recent = malloc(24);      // HISTORY: recent malloc
    char *forgotten = malloc(56);   // HISTORY: forgotten malloc
    free(recent);                   // HISTORY: recent first free
    churn(4100);
    free(recent);                   // HISTORY: recent second free
    free(forgotten);                // HISTORY: forgotten first free
    churn(4400);
    free(forgotten);                // HISTORY: forgotten second free
    puts("quarantine_history: done");
    return 0;
}
