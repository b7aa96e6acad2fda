/* backlog_double_free.c: a double free of a block that had left the young part of the tracker's
 * table. `kept` is allocated first, then 20,000 more blocks are kept live: more than the young
 * part holds (64 shards of 96), so `kept` moves on to the backlog, where a block keeps only its
 * stack's id. With a long settle time it is still there, not yet a record, when it is freed
 * twice: the report still has its size, allocation and first free. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *kept = malloc(40);                  // BACKLOG: kept malloc
    void **others = malloc(20000 * sizeof *others);
    for (int i = 0; i < 20000; i++) others[i] = malloc(24);
    free(kept);                               // BACKLOG: first free
    free(kept);                               // BACKLOG: second free
    for (int i = 0; i < 20000; i++) free(others[i]);
    free(others);
    puts("backlog_double_free: done");
    return 0;
}
